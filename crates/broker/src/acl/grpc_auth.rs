//! How RocketMQ 5 clients sign gRPC calls: an `authorization` header
//! `MQv2-HMAC-SHA1 Credential=<accessKey>[/...], SignedHeaders=x-mq-date-time,
//! Signature=<hex>`, the signature an HmacSHA1 of the `x-mq-date-time` header's value
//! under the account's secret key.

use super::tables::AclRefusal;

/// The credentials a gRPC call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCredentials {
    pub access_key: String,
    signature: Vec<u8>,
    datetime: String,
}

impl GrpcCredentials {
    /// Reads the `authorization` and `x-mq-date-time` headers; `Ok(None)` when the call is
    /// not signed at all.
    pub fn parse(
        authorization: Option<&str>,
        datetime: Option<&str>,
    ) -> Result<Option<GrpcCredentials>, AclRefusal> {
        let Some(authorization) = authorization.filter(|a| !a.trim().is_empty()) else {
            return Ok(None);
        };
        let Some(datetime) = datetime.filter(|d| !d.is_empty()) else {
            return Err(AclRefusal("datetime is null.".into()));
        };
        let Some((_, fields)) = authorization.trim().split_once(' ') else {
            return Err(AclRefusal("authentication header is incorrect.".into()));
        };
        let (mut access_key, mut signature) = (None, None);
        for field in fields.split(',') {
            let Some((name, value)) = field.trim().split_once('=') else {
                return Err(AclRefusal("authentication header is incorrect.".into()));
            };
            match name {
                "Credential" => {
                    access_key = value.split('/').next().map(str::to_owned);
                }
                "Signature" => signature = Some(hex(value)?),
                _ => {}
            }
        }
        match (access_key, signature) {
            (Some(access_key), Some(signature)) if !access_key.is_empty() => {
                Ok(Some(GrpcCredentials {
                    access_key,
                    signature,
                    datetime: datetime.to_owned(),
                }))
            }
            _ => Err(AclRefusal("authentication header is incorrect.".into())),
        }
    }

    /// Whether the signature is the date-time's under `secret`, compared in constant time.
    pub fn proves(&self, secret: &str) -> bool {
        remoting::acl::verify_content(secret, self.datetime.as_bytes(), &self.signature)
    }
}

fn hex(text: &str) -> Result<Vec<u8>, AclRefusal> {
    let text = text.trim();
    let bad = || AclRefusal("the signature is not hexadecimal".into());
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex of the signature, as the 5.x clients make it (computed here independently of
    /// the code under test).
    fn sign(secret: &str, datetime: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(datetime.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    #[test]
    fn rocketmq_5_headers() {
        let datetime = "20261203T192500Z";
        let header = format!(
            "MQv2-HMAC-SHA1 Credential=grpcUser1, SignedHeaders=x-mq-date-time, Signature={}",
            sign("grpcSecret", datetime)
        );
        let credentials = GrpcCredentials::parse(Some(&header), Some(datetime))
            .unwrap()
            .unwrap();
        assert_eq!(credentials.access_key, "grpcUser1");
        assert!(credentials.proves("grpcSecret"));
        assert!(!credentials.proves("otherSecret"));
        let other_time = GrpcCredentials::parse(Some(&header), Some("20261203T192501Z"))
            .unwrap()
            .unwrap();
        assert!(!other_time.proves("grpcSecret"));
        assert_eq!(GrpcCredentials::parse(None, None).unwrap(), None);
        assert!(GrpcCredentials::parse(Some(&header), None).is_err());
        assert!(GrpcCredentials::parse(Some("garbage"), Some(datetime)).is_err());
        assert!(GrpcCredentials::parse(
            Some("MQv2-HMAC-SHA1 Credential=a, Signature=XYZ"),
            Some(datetime)
        )
        .is_err());
    }
}
