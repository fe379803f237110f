//! ACL 2.0's broker.conf keys, as RocketMQ 5.3 reads them into its `AuthConfig`.

use std::collections::HashSet;

use conf::{BadSetting, Setting};
use serde::Deserialize;

use super::model::Password;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// `authenticationEnabled`: every request must be signed by a known, enabled user.
    pub authentication_enabled: bool,
    /// `authorizationEnabled`: every request needs its resources allowed by the user's
    /// policies (super users pass).
    pub authorization_enabled: bool,
    /// `authenticationWhitelist` / `authorizationWhitelist`: request codes (decimal, or a
    /// gRPC request's full name such as `apache.rocketmq.v2.QueryRouteRequest`) that skip
    /// the stage, comma-separated.
    pub authentication_whitelist: HashSet<String>,
    pub authorization_whitelist: HashSet<String>,
    /// `initAuthenticationUser` (`{"username":..,"password":..}`): a super user created
    /// when missing.
    pub init_user: Option<(String, Password)>,
    /// `innerClientAuthenticationCredentials` (`{"accessKey":..,"secretKey":..}`): a super
    /// user created when missing, whose credentials sign the broker's own requests to the
    /// other members of its group.
    pub inner_credentials: Option<(String, Password)>,
}

#[derive(Deserialize)]
struct InitUser {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InnerCredentials {
    access_key: String,
    secret_key: String,
}

/// The keys RocketMQ uses to pick its providers, strategies and caches: this broker has
/// one built-in implementation of each, so they are understood and need no value.
const BUILT_IN_KEYS: &[&str] = &[
    "authenticationProvider",
    "authenticationMetadataProvider",
    "authenticationStrategy",
    "authorizationProvider",
    "authorizationMetadataProvider",
    "authorizationStrategy",
    "userCacheMaxNum",
    "userCacheExpiredSecond",
    "userCacheRefreshSecond",
    "aclCacheMaxNum",
    "aclCacheExpiredSecond",
    "aclCacheRefreshSecond",
    "statefulAuthenticationCacheMaxNum",
    "statefulAuthenticationCacheExpiredSecond",
    "statefulAuthorizationCacheMaxNum",
    "statefulAuthorizationCacheExpiredSecond",
];

/// The error of a key holding a secret names the line, never the value.
fn hidden(s: &Setting, reason: &str) -> BadSetting {
    BadSetting {
        value: "<hidden>".into(),
        ..s.bad(reason)
    }
}

fn whitelist(s: &Setting) -> HashSet<String> {
    s.value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

impl AuthConfig {
    /// Either stage on.
    pub fn enabled(&self) -> bool {
        self.authentication_enabled || self.authorization_enabled
    }

    /// Applies one setting; `Ok(false)` for a key that is not ACL 2.0's.
    pub fn apply(&mut self, s: &Setting) -> Result<bool, BadSetting> {
        match s.key.as_str() {
            "authenticationEnabled" => self.authentication_enabled = s.parse_bool()?,
            "authorizationEnabled" => self.authorization_enabled = s.parse_bool()?,
            "authenticationWhitelist" => self.authentication_whitelist = whitelist(s),
            "authorizationWhitelist" => self.authorization_whitelist = whitelist(s),
            "initAuthenticationUser" => {
                let user: InitUser = serde_json::from_str(s.value.trim())
                    .map_err(|_| hidden(s, r#"expected {"username":"..","password":".."}"#))?;
                if user.username.trim().is_empty() || user.password.is_empty() {
                    return Err(hidden(s, "the username and the password may not be blank"));
                }
                self.init_user = Some((user.username, Password::new(user.password)));
            }
            "innerClientAuthenticationCredentials" => {
                let inner: InnerCredentials = serde_json::from_str(s.value.trim())
                    .map_err(|_| hidden(s, r#"expected {"accessKey":"..","secretKey":".."}"#))?;
                if inner.access_key.trim().is_empty() || inner.secret_key.is_empty() {
                    return Err(hidden(
                        s,
                        "the access key and the secret key may not be blank",
                    ));
                }
                self.inner_credentials = Some((inner.access_key, Password::new(inner.secret_key)));
            }
            "migrateAuthFromV1Enabled" => {
                if s.parse_bool()? {
                    return Err(s.bad(
                        "not supported: create the users with mqadmin createUser and createAcl",
                    ));
                }
            }
            key if BUILT_IN_KEYS.contains(&key) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The credentials this broker signs its own requests with.
    pub fn inner_client_credentials(&self) -> Option<remoting::acl::Credentials> {
        self.inner_credentials
            .as_ref()
            .map(|(key, secret)| remoting::acl::Credentials::new(key.clone(), secret.expose()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> Result<AuthConfig, BadSetting> {
        let mut config = AuthConfig::default();
        for s in conf::parse(text) {
            assert!(config.apply(&s)?, "{}", s.key);
        }
        Ok(config)
    }

    #[test]
    fn rocketmqs_keys_read_and_secrets_stay_out_of_errors() {
        let config = applied(
            "authenticationEnabled=true\nauthorizationEnabled=true\n\
             authenticationMetadataProvider=org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider\n\
             initAuthenticationUser={\"username\":\"rocketmq\",\"password\":\"12345678\"}\n\
             innerClientAuthenticationCredentials={\"accessKey\":\"inner\",\"secretKey\":\"87654321\"}\n\
             authenticationWhitelist=105, 34\n",
        )
        .unwrap();
        assert!(config.authentication_enabled && config.authorization_enabled);
        assert_eq!(config.init_user.as_ref().unwrap().0, "rocketmq");
        assert_eq!(
            config.inner_credentials.as_ref().unwrap().1.expose(),
            "87654321"
        );
        assert!(config.authentication_whitelist.contains("34"));
        let bad =
            applied("initAuthenticationUser={\"username\":\"u\",\"password\":\"secret-text\"\n")
                .unwrap_err();
        assert!(!bad.to_string().contains("secret-text"), "{bad}");
        assert!(applied("migrateAuthFromV1Enabled=true\n").is_err());
    }
}
