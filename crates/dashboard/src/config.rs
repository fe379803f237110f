//! The dashboard's settings, under the keys of Apache's RocketMQ Dashboard (a Spring Boot
//! application): `server.address`, `server.port`, `rocketmq.config.namesrvAddrs`,
//! `rocketmq.config.aclEnabled`, `rocketmq.config.accessKey`/`secretKey`. They come from
//! a `key=value` file (`-c`), then the command line.

use conf::{BadSetting, Setting};

/// The port RocketMQ Dashboard's own instructions publish it on.
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardConfig {
    /// Address to listen on (Spring's default: every interface).
    pub address: String,
    pub port: u16,
    pub namesrv_addrs: Vec<String>,
    /// Changes need a signed-in admin account (the brokers run with ACL on).
    pub acl_enabled: bool,
    /// What the dashboard signs its own reads with when ACL is on.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            address: "0.0.0.0".to_owned(),
            port: DEFAULT_PORT,
            namesrv_addrs: Vec::new(),
            acl_enabled: false,
            access_key: None,
            secret_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Bad(#[from] BadSetting),
    #[error("no name server: set rocketmq.config.namesrvAddrs, -n, or NAMESRV_ADDR")]
    NoNameServer,
    #[error("rocketmq.config.accessKey and rocketmq.config.secretKey go together")]
    HalfCredentials,
}

impl DashboardConfig {
    /// Applies a config file's settings over the current values; returns the settings it
    /// does not know (a RocketMQ Dashboard `application.properties` also holds Spring's and
    /// logging keys), for the caller to warn about.
    pub fn apply<'a>(&mut self, settings: &'a [Setting]) -> Result<Vec<&'a Setting>, ConfigError> {
        let mut unknown = Vec::new();
        for s in settings {
            match s.key.as_str() {
                "server.address" => self.address = s.non_empty()?,
                "server.port" => self.port = s.parse_u16()?,
                // The older dashboards' singular key, and the newer plural one.
                "rocketmq.config.namesrvAddr" | "rocketmq.config.namesrvAddrs" => {
                    self.namesrv_addrs = split_addrs(&s.value);
                }
                "rocketmq.config.aclEnabled" => self.acl_enabled = s.parse_bool()?,
                "rocketmq.config.accessKey" => self.access_key = non_blank(&s.value),
                "rocketmq.config.secretKey" => self.secret_key = non_blank(&s.value),
                _ => unknown.push(s),
            }
        }
        Ok(unknown)
    }

    /// Checks what must hold before serving.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.namesrv_addrs.is_empty() {
            return Err(ConfigError::NoNameServer);
        }
        if self.access_key.is_some() != self.secret_key.is_some() {
            return Err(ConfigError::HalfCredentials);
        }
        Ok(())
    }

    /// The name server list as the client library takes it.
    pub fn namesrv(&self) -> String {
        self.namesrv_addrs.join(";")
    }
}

/// `a:9876;b:9876` or `a:9876,b:9876`, as operators write either.
pub fn split_addrs(value: &str) -> Vec<String> {
    value
        .split([';', ','])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

fn non_blank(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboards_keys_are_read_bad_values_refused_and_unknown_keys_returned() {
        let mut config = DashboardConfig::default();
        config
            .apply(&conf::parse(
                "server.port=8082\nrocketmq.config.namesrvAddrs=a:9876;b:9876\n\
                 rocketmq.config.aclEnabled=true\nrocketmq.config.accessKey=ak\n\
                 rocketmq.config.secretKey=sk\n",
            ))
            .unwrap();
        assert_eq!(config.port, 8082);
        assert_eq!(config.namesrv(), "a:9876;b:9876");
        assert!(config.acl_enabled);
        config.validate().unwrap();

        let settings = conf::parse("spring.application.name=dash\nserver.prot=1\n");
        let unknown = DashboardConfig::default().apply(&settings).unwrap();
        let keys: Vec<&str> = unknown.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["spring.application.name", "server.prot"]);
        let bad = conf::parse("server.port=http\n");
        assert!(DashboardConfig::default().apply(&bad).is_err());
        assert!(matches!(
            DashboardConfig::default().validate(),
            Err(ConfigError::NoNameServer)
        ));
        let mut half = DashboardConfig::default();
        half.apply(&conf::parse(
            "rocketmq.config.namesrvAddr=a:9876\nrocketmq.config.accessKey=ak\n",
        ))
        .unwrap();
        assert!(matches!(half.validate(), Err(ConfigError::HalfCredentials)));
    }
}
