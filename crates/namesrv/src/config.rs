//! `namesrv.conf`: the keys of RocketMQ's name server that this one uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conf::{BadSetting, PropertiesError, Setting};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    pub listen_port: u16,
    /// How often expired brokers are looked for (RocketMQ: 5 s).
    pub scan_not_active_broker_interval: Duration,
    /// `GET_ALL_TOPIC_LIST_FROM_NAMESERVER` may be switched off, as in RocketMQ.
    pub enable_all_topic_list: bool,
    /// Where the KV config lives (RocketMQ: `$HOME/namesrv/kvConfig.json`).
    pub kv_config_path: PathBuf,
    /// Routes carry the topic's `orderTopicConf` (KV namespace `ORDER_TOPIC_CONFIG`) only
    /// when on, as in RocketMQ (default off).
    pub order_message_enable: bool,
    /// Limits of the listening port (`serverMaxConnections`, ...; see `conf::ServerLimits`).
    pub server_limits: conf::ServerLimits,
    /// Prometheus metrics, under the broker's keys (`metricsExporterType=PROM`,
    /// `metricsPromExporterHost`, `metricsPromExporterPort`, `metricsLabel`).
    pub metrics_exporter: conf::MetricsExporter,
    /// `aclEnable`: ACL 1.0 on the name server's port, from the same `plain_acl.yml` files
    /// as a broker's, under [`NamesrvConfig::rocketmq_home`].
    pub acl_enable: bool,
    /// `rocketmqHome`, else `$ROCKETMQ_HOME`: where `conf/plain_acl.yml` is.
    pub rocketmq_home: Option<PathBuf>,
}

/// RocketMQ's default `kvConfigPath`: `namesrv/kvConfig.json` under the user's home (under
/// the working directory when `HOME` is unset).
pub fn default_kv_config_path() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("namesrv")
        .join("kvConfig.json")
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        NamesrvConfig {
            listen_port: 9876,
            scan_not_active_broker_interval: Duration::from_secs(5),
            enable_all_topic_list: true,
            kv_config_path: default_kv_config_path(),
            order_message_enable: false,
            server_limits: conf::ServerLimits::default(),
            metrics_exporter: conf::MetricsExporter::default(),
            acl_enable: false,
            rocketmq_home: std::env::var_os("ROCKETMQ_HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NamesrvConfigError {
    #[error(transparent)]
    File(#[from] PropertiesError),
    #[error("bad name server config: {0}")]
    Bad(#[from] BadSetting),
}

impl NamesrvConfig {
    /// Reads `path`; returns the config and the settings it does not know (to be logged).
    pub fn load(path: &Path) -> Result<(NamesrvConfig, Vec<Setting>), NamesrvConfigError> {
        let settings = conf::read_file(path)?;
        let mut config = NamesrvConfig::default();
        let mut unknown = Vec::new();
        for setting in settings {
            if !config.apply(&setting)? {
                unknown.push(setting);
            }
        }
        Ok((config, unknown))
    }

    pub fn apply(&mut self, s: &Setting) -> Result<bool, BadSetting> {
        if self.server_limits.apply(s)? || self.metrics_exporter.apply(s)? {
            return Ok(true);
        }
        match s.key.as_str() {
            "listenPort" => self.listen_port = s.parse_u16()?,
            "scanNotActiveBrokerInterval" => {
                let ms = s.parse_u64()?;
                if !(100..=600_000).contains(&ms) {
                    return Err(s.bad("must be between 100 and 600000 ms"));
                }
                self.scan_not_active_broker_interval = Duration::from_millis(ms);
            }
            "enableAllTopicList" => self.enable_all_topic_list = s.parse_bool()?,
            "kvConfigPath" => self.kv_config_path = PathBuf::from(s.non_empty()?),
            "orderMessageEnable" => self.order_message_enable = s.parse_bool()?,
            "aclEnable" => self.acl_enable = s.parse_bool()?,
            "rocketmqHome" => self.rocketmq_home = Some(PathBuf::from(s.non_empty()?)),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_unknown_and_bad_keys() {
        let mut config = NamesrvConfig::default();
        let settings = conf::parse("listenPort=19876\nbrokerRole=SLAVE\n");
        assert!(config.apply(&settings[0]).unwrap());
        assert!(!config.apply(&settings[1]).unwrap());
        assert_eq!(config.listen_port, 19876);
        let bad = conf::parse("scanNotActiveBrokerInterval=1\n");
        assert!(config.apply(&bad[0]).is_err());
    }

    #[test]
    fn connection_limits_are_read_from_namesrv_conf() {
        let mut config = NamesrvConfig::default();
        let settings = conf::parse("serverMaxConnections=64\nserverChannelMaxIdleTimeSeconds=5\n");
        for setting in &settings {
            assert!(config.apply(setting).unwrap(), "{}", setting.key);
        }
        assert_eq!(config.server_limits.max_connections, 64);
        assert_eq!(
            config.server_limits.channel_max_idle,
            Duration::from_secs(5)
        );
        assert!(config
            .apply(&conf::parse("serverMaxConnections=0\n")[0])
            .is_err());
    }

    #[test]
    fn order_message_enable_is_off_unless_set() {
        let mut config = NamesrvConfig::default();
        assert!(!config.order_message_enable);
        let settings = conf::parse("orderMessageEnable=true\norderMessageEnable=maybe\n");
        assert!(config.apply(&settings[0]).unwrap());
        assert!(config.order_message_enable);
        assert!(config.apply(&settings[1]).is_err());
    }

    #[test]
    fn kv_config_path_defaults_to_rocketmqs_and_can_be_set() {
        let config = NamesrvConfig::default();
        assert!(
            config.kv_config_path.ends_with("namesrv/kvConfig.json"),
            "{}",
            config.kv_config_path.display()
        );
        if let Some(home) = std::env::var_os("HOME") {
            assert!(config.kv_config_path.starts_with(home));
        }
        let mut config = NamesrvConfig::default();
        let set = conf::parse("kvConfigPath=/var/lib/ns/kv.json\nkvConfigPath=\n");
        assert!(config.apply(&set[0]).unwrap());
        assert_eq!(config.kv_config_path, PathBuf::from("/var/lib/ns/kv.json"));
        assert!(config.apply(&set[1]).is_err(), "an empty path is refused");
    }
}
