//! ACL 1.0 request signatures, as RocketMQ's `AclClientRPCHook` makes them and its broker
//! checks them: the values of every ext field but `Signature`, in key order, then the body,
//! signed with HmacSHA1 under the account's secret key, in standard base64. The signer and
//! the checker are both here, so the client and the broker cannot drift apart.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::command::RemotingCommand;

/// Ext field naming the account.
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field carrying the signature.
pub const SIGNATURE: &str = "Signature";
/// Ext field carrying a security token (signed with the rest).
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// A field QUERY_MESSAGE adds after old Java clients (4.9.3 and older) signed, so brokers
/// leave it out of what those clients signed.
pub const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
/// The last version (4.9.3) whose Java client did not sign `_UNIQUE_KEY_QUERY`.
const LAST_VERSION_NOT_SIGNING_UNIQUE_KEY_QUERY: i32 = 399;

type HmacSha1 = Hmac<Sha1>;

/// An account's credentials, as a client holds them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Adds `AccessKey` (and `SecurityToken`) to `request` and signs it, headers as they go
    /// on the wire and body.
    pub fn sign(&self, request: &mut RemotingCommand) {
        request
            .ext_fields
            .insert_static(ACCESS_KEY, self.access_key.clone());
        if let Some(token) = &self.security_token {
            request
                .ext_fields
                .insert_static(SECURITY_TOKEN, token.clone());
        }
        request.ext_fields.remove(SIGNATURE);
        let mut mac = mac(&self.secret_key);
        feed(&mut mac, request, false);
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        request.ext_fields.insert_static(SIGNATURE, signature);
    }
}

/// Feeds what a request's signature covers to `mac`: every ext field's value but the
/// signature's, in key order (Java's string order, which is byte order for the ASCII names
/// headers use), then the body. `_UNIQUE_KEY_QUERY` is left out when `for_old_client` says
/// the sender's version did not sign it. Fed piece by piece: nothing is copied.
fn feed(mac: &mut HmacSha1, request: &RemotingCommand, for_old_client: bool) {
    for (key, value) in request.ext_fields.iter() {
        if key == SIGNATURE || (for_old_client && key == UNIQUE_KEY_QUERY) {
            continue;
        }
        mac.update(value.as_bytes());
    }
    mac.update(&request.body);
    for chunk in &request.body_chunks {
        mac.update(chunk);
    }
}

fn mac(secret: &str) -> HmacSha1 {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match HmacSha1::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Base64 of HmacSHA1(`secret`, `content`).
pub fn sign(secret: &str, content: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(content);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is HmacSHA1(`secret`, `content`), compared in constant time (the
/// gRPC front's signatures are of a header's value, not of a command).
pub fn verify_content(secret: &str, content: &[u8], signature: &[u8]) -> bool {
    let mut mac = mac(secret);
    mac.update(content);
    mac.verify_slice(signature).is_ok()
}

/// Whether `request` carries a valid signature under `secret`, compared in constant time.
pub fn verify(secret: &str, request: &RemotingCommand) -> bool {
    let Some(provided) = request.ext_field(SIGNATURE) else {
        return false;
    };
    let Ok(provided) = base64::engine::general_purpose::STANDARD.decode(provided.trim()) else {
        return false;
    };
    let old_client = request.version <= LAST_VERSION_NOT_SIGNING_UNIQUE_KEY_QUERY;
    let mut mac = mac(secret);
    feed(&mut mac, request, old_client);
    mac.verify_slice(&provided).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_signature_covers_values_in_key_order_then_the_body() {
        // A vector computed outside this project (the Rust port's tests hold it too).
        assert_eq!(
            sign("secret", b"aktokenfirstlastbody"),
            "wuJkFDNRMKY6aFXTDwT/vg0UC8M="
        );
        let mut request = RemotingCommand::request(10);
        request.ext_fields.insert("z".into(), "last".into());
        request.ext_fields.insert("a".into(), "first".into());
        request.body = Bytes::from_static(b"body");
        let credentials = Credentials {
            access_key: "ak".into(),
            secret_key: "secret".into(),
            security_token: Some("token".into()),
        };
        credentials.sign(&mut request);
        assert_eq!(
            request.ext_field(SIGNATURE),
            Some("wuJkFDNRMKY6aFXTDwT/vg0UC8M=")
        );
        assert!(verify("secret", &request));
        assert!(!verify("other-secret", &request));

        let mut tampered = request.clone();
        tampered.body = Bytes::from_static(b"bodx");
        assert!(!verify("secret", &tampered));
        let mut tampered = request.clone();
        tampered.ext_fields.insert("a".into(), "firsT".into());
        assert!(!verify("secret", &tampered));
        let mut unsigned = request.clone();
        unsigned.ext_fields.remove(SIGNATURE);
        assert!(!verify("secret", &unsigned));
        let mut garbage = request;
        garbage.ext_fields.insert(SIGNATURE.into(), "%%%".into());
        assert!(!verify("secret", &garbage));
    }

    #[test]
    fn old_java_clients_did_not_sign_the_unique_key_query_field() {
        let credentials = Credentials::new("ak", "secret-key");
        let mut request = RemotingCommand::request(12);
        request.ext_fields.insert("topic".into(), "T".into());
        credentials.sign(&mut request);
        // Added after signing, as 4.9.3's client did.
        request
            .ext_fields
            .insert(UNIQUE_KEY_QUERY.into(), "true".into());
        request.version = 399;
        assert!(verify("secret-key", &request));
        request.version = 401;
        assert!(!verify("secret-key", &request));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let printed = format!("{:?}", Credentials::new("ak", "very-secret"));
        assert!(!printed.contains("very-secret"), "{printed}");
    }
}
