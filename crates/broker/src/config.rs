//! The broker's configuration, read from RocketMQ's `broker.conf` keys.
//!
//! Unknown keys are logged and ignored, as RocketMQ does, so an operator's existing file
//! works; a known key with a bad value stops start-up with the line and the reason. The
//! store's keys are the store's: [`BrokerConfig::store`] reads them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conf::{BadSetting, PropertiesError, Setting};
use store::StoreConfig;

/// A broker group member as `dLegerPeers` lists it: `n0-127.0.0.1:40911`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DLedgerPeer {
    pub id: String,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub broker_cluster_name: String,
    pub broker_name: String,
    pub broker_id: u64,
    pub listen_port: u16,
    pub namesrv_addrs: Vec<String>,
    pub broker_ip1: String,
    /// Address the client port binds (not a RocketMQ key: RocketMQ always binds all
    /// interfaces). `bindAddress`.
    pub bind_address: String,
    pub auto_create_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub default_topic_queue_nums: u32,
    /// `maxMessageSize`: the largest body a producer may send (the store's record limits
    /// follow from it).
    pub max_message_size: u32,
    pub long_polling_enable: bool,
    pub short_polling_time: Duration,
    pub register_name_server_period: Duration,
    /// A client silent this long (no heartbeat) is dropped and its connection closed.
    pub channel_expired_timeout: Duration,
    pub broker_permission: u32,
    pub region_id: String,
    pub trace_on: bool,
    pub slave_read_enable: bool,
    /// `enablePropertyFilter`: SQL92 subscriptions (RocketMQ's default: off).
    pub enable_property_filter: bool,
    /// `storeReplyMessageEnable`: replies (request-reply) are stored as well as pushed.
    pub store_reply_message_enable: bool,
    pub enable_dledger_commit_log: bool,
    pub dledger_group: String,
    pub dledger_peers: Vec<DLedgerPeer>,
    pub dledger_self_id: String,
    pub preferred_leader_id: Option<String>,
    /// `dLegerFlushIntervalMs` (this project's key; DLedger's own `flushFileInterval` has
    /// the same default): with ASYNC_FLUSH, the least time between two fsyncs of a member's
    /// log. Consumers see a message once a quorum fsynced it, so it bounds how much later
    /// than its acknowledgement a message becomes visible; 0 fsyncs back to back. SYNC_FLUSH
    /// always fsyncs back to back: its sends wait for the fsync.
    pub dledger_flush_interval: Duration,
    /// `dLegerSecret` (this project's key): group members prove it to each other on their
    /// raft links; a member without it (or with another) is refused.
    pub dledger_secret: Option<raft::transport::LinkSecret>,
    /// `rejectTransactionMessage`: transactional sends are refused (NO_PERMISSION).
    pub reject_transaction_message: bool,
    /// `transactionTimeOut`: a half message is first checked back this long after it was
    /// born (its `CHECK_IMMUNITY_TIME_IN_SECONDS`, if longer, instead).
    pub transaction_timeout: Duration,
    /// `transactionCheckInterval`: how often open transactions are checked back.
    pub transaction_check_interval: Duration,
    /// `transactionCheckMax`: checks before a half message goes to
    /// `TRANS_CHECK_MAX_TIME_TOPIC`.
    pub transaction_check_max: u32,
    /// `masterShutdownForwardMs` (not RocketMQ's): how long a group master stopped with
    /// SIGTERM keeps its client port open after handing leadership off, forwarding the
    /// sends that still reach it to the new master. Longer than the clients' route poll
    /// (30 s in RocketMQ's clients), so no producer sends to a closed port.
    pub master_shutdown_forward: Duration,
    /// `timerWheelEnable`: RocketMQ 5 timer messages are accepted (off: refused).
    pub timer_wheel_enable: bool,
    /// `timerMaxDelaySec`: the longest delay a timer message may ask for.
    pub timer_max_delay: Duration,
    /// `timerPrecisionMs`: timer messages are delivered in slots this long.
    pub timer_precision_ms: i64,
    /// `timerStopDequeue`: the master holds timer messages back instead of delivering them
    /// when due (they keep arriving and waiting); changeable while the broker runs.
    pub timer_stop_dequeue: bool,
    /// `recallMessageEnable`: RECALL_MESSAGE (370) may cancel a pending timer message
    /// (RocketMQ's default: off).
    pub recall_message_enable: bool,
    /// `enableTopicMessageTypeCheck`: a send whose kind (normal, FIFO, delay, transaction)
    /// differs from its topic's `message.type` attribute is refused, as RocketMQ 5's
    /// proxy refuses it. Off by default here: a 4.x application sending delayed messages
    /// to a topic without the attribute would be refused otherwise.
    pub enable_topic_message_type_check: bool,
    /// `enableGrpcServer`: serve RocketMQ 5's gRPC protocol (the clients that otherwise
    /// need RocketMQ's proxy) on `grpcServerPort`.
    pub enable_grpc_server: bool,
    /// `grpcServerPort`: the gRPC port (RocketMQ's proxy's default, 8081).
    pub grpc_server_port: u16,
    /// `tlsTestModeEnable`: a client starting a TLS handshake on the gRPC port gets a
    /// self-signed certificate made at start-up (RocketMQ's proxy's default); off, the
    /// certificate and key of `tlsCertPath` / `tlsKeyPath`.
    pub tls_test_mode_enable: bool,
    /// `tlsCertPath`: PEM certificate chain for TLS on the gRPC port (default
    /// `$ROCKETMQ_HOME/conf/tls/rocketmq.crt`, as RocketMQ's proxy).
    pub tls_cert_path: Option<PathBuf>,
    /// `tlsKeyPath`: its PEM private key (default `$ROCKETMQ_HOME/conf/tls/rocketmq.key`).
    pub tls_key_path: Option<PathBuf>,
    /// `defaultMessageRequestMode`: how a consumer group reads a topic for which no
    /// `mqadmin setConsumeMode` was given: PULL (RocketMQ's default) or POP.
    pub default_message_request_mode: remoting::body::pop::MessageRequestMode,
    /// `defaultPopShareQueueNum`: with POP the default mode, how many other consumers'
    /// queues each consumer also pops (-1 or 0: every queue).
    pub default_pop_share_queue_num: i32,
    /// `popFromRetryProbability`: of each hundred pops, how many look at the group's pop
    /// retry topic first (the others look there when the topic had too little).
    pub pop_from_retry_probability: u32,
    /// `reviveInterval`: how often a master looks for popped messages whose invisible time
    /// ran out unacknowledged.
    pub revive_interval: Duration,
    /// `popCkMaxBufferSize`: most pop checkpoints (one per queue a pop took messages
    /// from) open at once on this broker; pops beyond it are told POLLING_FULL.
    pub pop_ck_max_buffer_size: usize,
    /// `maxLmqConsumeQueueNum`: most lite topics (each an LMQ with a ConsumeQueue file and
    /// its memory map) this broker holds; a message to a new one beyond is refused with
    /// LMQ_QUOTA_EXCEEDED.
    pub max_lmq_consume_queue_num: usize,
    /// Limits of each client port (the client port and the VIP channel each):
    /// `serverMaxConnections`, `serverPartialFrameBudgetBytes`, `serverFrameReadTimeoutMs`,
    /// `serverChannelMaxIdleTimeSeconds`.
    pub server_limits: conf::ServerLimits,
    /// `aclEnable`: ACL 1.0, from `plain_acl.yml` under [`BrokerConfig::rocketmq_home`].
    pub acl_enable: bool,
    /// Where RocketMQ's `conf/plain_acl.yml` and `conf/acl/` are: `rocketmqHome` (this
    /// project's key, for brokers without the environment), else `$ROCKETMQ_HOME`.
    pub rocketmq_home: Option<PathBuf>,
    /// ACL 2.0: `authenticationEnabled`, `authorizationEnabled`, `initAuthenticationUser`,
    /// `innerClientAuthenticationCredentials`, the whitelists.
    pub auth: crate::auth::config::AuthConfig,
    /// Prometheus metrics: `metricsExporterType` (DISABLE or PROM),
    /// `metricsPromExporterHost`, `metricsPromExporterPort` (5557), `metricsLabel`.
    pub metrics_exporter: conf::MetricsExporter,
    /// The store's settings (CommitLog, flushing, retention, disk limits, delay levels).
    pub store: StoreConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: default_broker_name(),
            broker_id: 0,
            listen_port: 10911,
            namesrv_addrs: Vec::new(),
            broker_ip1: "127.0.0.1".into(),
            bind_address: "0.0.0.0".into(),
            auto_create_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            max_message_size: 4 * 1024 * 1024,
            long_polling_enable: true,
            short_polling_time: Duration::from_millis(1000),
            register_name_server_period: Duration::from_secs(30),
            channel_expired_timeout: Duration::from_secs(120),
            broker_permission: 6,
            region_id: "DefaultRegion".into(),
            trace_on: true,
            slave_read_enable: false,
            enable_property_filter: false,
            store_reply_message_enable: true,
            enable_dledger_commit_log: false,
            dledger_group: String::new(),
            dledger_peers: Vec::new(),
            dledger_self_id: String::new(),
            preferred_leader_id: None,
            dledger_flush_interval: Duration::from_millis(10),
            dledger_secret: None,
            reject_transaction_message: false,
            transaction_timeout: Duration::from_millis(6_000),
            transaction_check_interval: Duration::from_millis(30_000),
            transaction_check_max: 15,
            master_shutdown_forward: Duration::from_secs(35),
            timer_wheel_enable: true,
            timer_max_delay: Duration::from_secs(3 * 24 * 3600),
            timer_precision_ms: 1000,
            timer_stop_dequeue: false,
            recall_message_enable: false,
            enable_topic_message_type_check: false,
            enable_grpc_server: true,
            grpc_server_port: 8081,
            tls_test_mode_enable: true,
            tls_cert_path: None,
            tls_key_path: None,
            default_message_request_mode: remoting::body::pop::MessageRequestMode::Pull,
            default_pop_share_queue_num: -1,
            pop_from_retry_probability: 20,
            revive_interval: Duration::from_millis(1000),
            pop_ck_max_buffer_size: 200_000,
            max_lmq_consume_queue_num: 20_000,
            server_limits: conf::ServerLimits::default(),
            metrics_exporter: conf::MetricsExporter::default(),
            acl_enable: false,
            auth: Default::default(),
            rocketmq_home: std::env::var_os("ROCKETMQ_HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            store: StoreConfig::new(default_store_root()),
        }
    }
}

fn default_broker_name() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "broker-a".into())
}

fn default_store_root() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join("store"))
        .unwrap_or_else(|| PathBuf::from("store"))
}

/// Why a configuration cannot start a broker.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] PropertiesError),
    #[error("bad broker config: {0}")]
    Bad(#[from] BadSetting),
    #[error("bad broker config: {0}")]
    Inconsistent(String),
}

/// Frame headers, properties and the record layout add well under this to a body; the
/// remoting layer's 16 MiB frame limit must still hold a maximal message.
const MAX_MESSAGE_SIZE_LIMIT: u32 = 15 * 1024 * 1024;

impl BrokerConfig {
    /// The PEM certificate and key for TLS on the gRPC port (`tlsCertPath`, `tlsKeyPath`,
    /// else RocketMQ's proxy's places under the RocketMQ home).
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        let under_home = |name: &str| {
            self.rocketmq_home
                .clone()
                .unwrap_or_default()
                .join("conf")
                .join("tls")
                .join(name)
        };
        (
            self.tls_cert_path
                .clone()
                .unwrap_or_else(|| under_home("rocketmq.crt")),
            self.tls_key_path
                .clone()
                .unwrap_or_else(|| under_home("rocketmq.key")),
        )
    }

    /// The settings of this broker's own clients (to the name servers and the other
    /// members of its group): signed with `innerClientAuthenticationCredentials` when set.
    pub fn inner_client_config(&self) -> remoting::client::ClientConfig {
        remoting::client::ClientConfig {
            credentials: self.auth.inner_client_credentials(),
            ..Default::default()
        }
    }

    /// Reads `path`; `-n` on the command line may override `namesrvAddr`.
    pub fn load(path: &Path) -> Result<(BrokerConfig, Vec<Setting>), ConfigError> {
        let settings = conf::read_file(path)?;
        let mut config = BrokerConfig::default();
        let ignored = config.apply_all(&settings)?;
        Ok((config, ignored))
    }

    /// Applies settings in order; returns those it does not know (for the caller to log).
    pub fn apply_all(&mut self, settings: &[Setting]) -> Result<Vec<Setting>, ConfigError> {
        let mut unknown = Vec::new();
        for setting in settings {
            if !self.apply(setting)? {
                unknown.push(setting.clone());
            }
        }
        self.validate()?;
        Ok(unknown)
    }

    /// Applies one setting; `Ok(false)` when the key is not one this broker uses.
    pub fn apply(&mut self, s: &Setting) -> Result<bool, BadSetting> {
        if self.server_limits.apply(s)? || self.metrics_exporter.apply(s)? || self.auth.apply(s)? {
            return Ok(true);
        }
        match s.key.as_str() {
            "brokerClusterName" => self.broker_cluster_name = s.non_empty()?,
            "brokerName" => self.broker_name = s.non_empty()?,
            "brokerId" => self.broker_id = s.parse_u64()?,
            "listenPort" => self.listen_port = s.parse_u16()?,
            "namesrvAddr" => self.namesrv_addrs = parse_namesrv_addrs(s)?,
            "brokerIP1" => {
                let ip = s.non_empty()?;
                // It goes into every offset msgId, which only holds an IP address.
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(s.bad("expected an IP address"));
                }
                self.broker_ip1 = ip
            }
            "bindAddress" => {
                let ip = s.non_empty()?;
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(s.bad("expected an IP address"));
                }
                self.bind_address = ip
            }
            "autoCreateTopicEnable" => self.auto_create_topic_enable = s.parse_bool()?,
            "autoCreateSubscriptionGroup" => {
                self.auto_create_subscription_group = s.parse_bool()?
            }
            "defaultTopicQueueNums" => self.default_topic_queue_nums = s.in_range(1, 1024)? as u32,
            "maxMessageSize" => {
                self.max_message_size = s.in_range(1, MAX_MESSAGE_SIZE_LIMIT as u64)? as u32
            }
            "longPollingEnable" => self.long_polling_enable = s.parse_bool()?,
            "shortPollingTimeMills" => {
                self.short_polling_time = Duration::from_millis(s.in_range(1, 60_000)?)
            }
            "registerNameServerPeriod" => {
                self.register_name_server_period = Duration::from_millis(s.in_range(1000, 60_000)?)
            }
            "channelExpiredTimeout" => {
                self.channel_expired_timeout = Duration::from_millis(s.in_range(1000, 3_600_000)?)
            }
            "brokerPermission" => self.broker_permission = s.in_range(0, 15)? as u32,
            "regionId" => self.region_id = s.non_empty()?,
            "traceOn" => self.trace_on = s.parse_bool()?,
            "slaveReadEnable" => self.slave_read_enable = s.parse_bool()?,
            "enablePropertyFilter" => self.enable_property_filter = s.parse_bool()?,
            "storeReplyMessageEnable" => self.store_reply_message_enable = s.parse_bool()?,
            "enableDLegerCommitLog" => self.enable_dledger_commit_log = s.parse_bool()?,
            "dLegerGroup" => self.dledger_group = s.non_empty()?,
            "dLegerPeers" => self.dledger_peers = parse_dledger_peers(s)?,
            "dLegerSelfId" => self.dledger_self_id = s.non_empty()?,
            "dLegerSecret" => {
                let secret = s.value.trim();
                if secret.len() < 8 {
                    // The error names the line, never the secret.
                    return Err(BadSetting {
                        value: "<hidden>".into(),
                        ..s.bad("a link secret needs at least 8 characters")
                    });
                }
                self.dledger_secret = Some(raft::transport::LinkSecret::new(secret));
            }
            "preferredLeaderId" | "preferredLeaderIds" => {
                self.preferred_leader_id = Some(s.non_empty()?)
            }
            "dLegerFlushIntervalMs" => {
                self.dledger_flush_interval = Duration::from_millis(s.in_range(0, 1_000)?)
            }
            "rejectTransactionMessage" => self.reject_transaction_message = s.parse_bool()?,
            "transactionTimeOut" => {
                self.transaction_timeout = Duration::from_millis(s.in_range(0, 86_400_000)?)
            }
            "transactionCheckInterval" => {
                self.transaction_check_interval =
                    Duration::from_millis(s.in_range(100, 86_400_000)?)
            }
            "transactionCheckMax" => self.transaction_check_max = s.in_range(1, 10_000)? as u32,
            "masterShutdownForwardMs" => {
                self.master_shutdown_forward = Duration::from_millis(s.in_range(0, 600_000)?)
            }
            "timerWheelEnable" => self.timer_wheel_enable = s.parse_bool()?,
            "timerMaxDelaySec" => {
                self.timer_max_delay = Duration::from_secs(s.in_range(1, 90 * 24 * 3600)?)
            }
            "timerPrecisionMs" => self.timer_precision_ms = s.in_range(10, 60_000)? as i64,
            "timerStopDequeue" => self.timer_stop_dequeue = s.parse_bool()?,
            "recallMessageEnable" => self.recall_message_enable = s.parse_bool()?,
            "enableTopicMessageTypeCheck" => {
                self.enable_topic_message_type_check = s.parse_bool()?
            }
            "enableGrpcServer" => self.enable_grpc_server = s.parse_bool()?,
            "aclEnable" => self.acl_enable = s.parse_bool()?,
            "rocketmqHome" => self.rocketmq_home = Some(PathBuf::from(s.non_empty()?)),
            "grpcServerPort" => self.grpc_server_port = s.parse_u16()?,
            "tlsTestModeEnable" => self.tls_test_mode_enable = s.parse_bool()?,
            "tlsCertPath" => self.tls_cert_path = Some(PathBuf::from(s.non_empty()?)),
            "tlsKeyPath" => self.tls_key_path = Some(PathBuf::from(s.non_empty()?)),
            "defaultMessageRequestMode" => {
                self.default_message_request_mode =
                    remoting::body::pop::MessageRequestMode::from_java_name(s.value.trim())
                        .ok_or_else(|| s.bad("expected PULL or POP"))?
            }
            "defaultPopShareQueueNum" => {
                let share = s.parse_i64()?;
                self.default_pop_share_queue_num = i32::try_from(share.max(-1))
                    .map_err(|_| s.bad("expected a number of consumers"))?
            }
            "popFromRetryProbability" => {
                self.pop_from_retry_probability = s.in_range(0, 100)? as u32
            }
            "reviveInterval" => {
                self.revive_interval = Duration::from_millis(s.in_range(10, 3_600_000)?)
            }
            "popCkMaxBufferSize" => {
                self.pop_ck_max_buffer_size = s.in_range(1, 10_000_000)? as usize
            }
            "maxLmqConsumeQueueNum" => {
                self.max_lmq_consume_queue_num = s.in_range(0, 1_000_000)? as usize
            }
            _ => return self.store.apply(s),
        }
        Ok(true)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enable_dledger_commit_log {
            return Ok(());
        }
        if self.dledger_peers.is_empty() {
            return Err(ConfigError::Inconsistent(
                "enableDLegerCommitLog=true needs dLegerPeers".into(),
            ));
        }
        if self.auth.enabled() && self.auth.inner_credentials.is_none() {
            return Err(ConfigError::Inconsistent(
                "authenticationEnabled or authorizationEnabled in a broker group needs \
                 innerClientAuthenticationCredentials: the members sign their requests to \
                 each other with it"
                    .into(),
            ));
        }
        if !self
            .dledger_peers
            .iter()
            .any(|p| p.id == self.dledger_self_id)
        {
            return Err(ConfigError::Inconsistent(format!(
                "dLegerSelfId `{}` is not one of the ids in dLegerPeers ({})",
                self.dledger_self_id,
                self.dledger_peers
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(preferred) = &self.preferred_leader_id {
            if !self.dledger_peers.iter().any(|p| &p.id == preferred) {
                return Err(ConfigError::Inconsistent(format!(
                    "preferredLeaderId `{preferred}` is not one of the ids in dLegerPeers"
                )));
            }
        }
        Ok(())
    }

    /// `ip:port` clients use to reach this broker.
    pub fn broker_addr(&self) -> String {
        format!("{}:{}", self.broker_ip1, self.listen_port)
    }

    /// The broker id a group member registers with while it is a slave: RocketMQ derives it
    /// from the digits of `dLegerSelfId` (n0 -> 1, n1 -> 2, ...).
    pub fn dledger_slave_id(&self) -> u64 {
        let digits: String = self
            .dledger_self_id
            .chars()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse::<u64>().map(|n| n + 1).unwrap_or(1)
    }
}

fn parse_namesrv_addrs(s: &Setting) -> Result<Vec<String>, BadSetting> {
    let addrs: Vec<String> = s
        .value
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    for addr in &addrs {
        check_host_port(addr).map_err(|reason| s.bad(reason))?;
    }
    if addrs.is_empty() {
        return Err(s.bad("expected host:port[;host:port...]"));
    }
    Ok(addrs)
}

fn check_host_port(addr: &str) -> Result<(), String> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("`{addr}` is not host:port")),
    }
}

/// `n0-127.0.0.1:40911;n1-127.0.0.1:40912`: the id is the text before the first `-`.
fn parse_dledger_peers(s: &Setting) -> Result<Vec<DLedgerPeer>, BadSetting> {
    let mut peers: Vec<DLedgerPeer> = Vec::new();
    for part in s.value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, addr)) = part.split_once('-') else {
            return Err(s.bad(format!("`{part}` is not id-host:port")));
        };
        if id.is_empty() {
            return Err(s.bad(format!("`{part}` has an empty id")));
        }
        check_host_port(addr).map_err(|reason| s.bad(reason))?;
        if peers.iter().any(|p| p.id == id) {
            return Err(s.bad(format!("peer id `{id}` appears twice")));
        }
        peers.push(DLedgerPeer {
            id: id.to_string(),
            addr: addr.to_string(),
        });
    }
    match peers.len() {
        0 => Err(s.bad("no peer listed".to_owned())),
        n if n > raft::peers::MAX_GROUP_SIZE => Err(s.bad(format!(
            "a broker group has at most {} peers; got {n}",
            raft::peers::MAX_GROUP_SIZE
        ))),
        // An even count is what a member joining a running group lists (the group's
        // members and itself); as a group's size it only adds a member that cannot fail
        // without the others, which is worth a word at start-up.
        n if n % 2 == 0 => {
            tracing::warn!(
                peers = n,
                "dLegerPeers lists an even number of members: a group of {n} survives no more \
                 failures than one of {}; fine for a member joining a running group \
                 (mqadmin addGroupMember)",
                n - 1
            );
            Ok(peers)
        }
        _ => Ok(peers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<(BrokerConfig, Vec<Setting>), ConfigError> {
        let mut config = BrokerConfig::default();
        let unknown = config.apply_all(&conf::parse(text))?;
        Ok((config, unknown))
    }

    #[test]
    fn reads_rocketmq_keys() {
        let (c, unknown) = load(
            "brokerClusterName=C\nbrokerName=b\nbrokerId=0\nlistenPort=30911\n\
             namesrvAddr=127.0.0.1:9876;10.0.0.2:9876\nflushDiskType=SYNC_FLUSH\n\
             mapedFileSizeCommitLog=1048576\ndeleteWhen=04;16\nfileReservedTime=48\n\
             brokerRole=ASYNC_MASTER\ndiskSpaceWarningLevelRatio=95\n\
             diskSpaceCleanForciblyRatio=92\n",
        )
        .unwrap();
        assert!((c.store.disk_space_warning_level_ratio - 0.95).abs() < 1e-9);
        assert!((c.store.disk_space_clean_forcibly_ratio - 0.92).abs() < 1e-9);
        assert_eq!(c.listen_port, 30911);
        assert_eq!(c.namesrv_addrs.len(), 2);
        assert_eq!(c.store.flush_disk_type, store::FlushDiskType::SyncFlush);
        assert_eq!(c.store.mapped_file_size_commit_log, 1 << 20);
        assert_eq!(c.store.delete_when, vec![4, 16]);
        assert_eq!(c.store.file_reserved_time_hours, 48);
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].key, "brokerRole");
    }

    #[test]
    fn bad_values_are_start_up_errors() {
        for text in [
            "listenPort=70000",
            "flushDiskType=SOMETIMES",
            "autoCreateTopicEnable=yes",
            "namesrvAddr=localhost",
            "deleteWhen=25",
            "maxMessageSize=0",
            "mapedFileSizeCommitLog=12",
            "brokerIP1=my-host",
            "channelExpiredTimeout=5",
            "diskSpaceWarningLevelRatio=0.9",
            "dLegerFlushIntervalMs=5000",
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains("line 1"), "{text}: {err}");
        }
    }

    #[test]
    fn async_flush_groups_space_their_fsyncs_and_sync_flush_ones_never_do() {
        let group = "dLegerGroup=g\ndLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912\n\
                     dLegerSelfId=n0\nenableDLegerCommitLog=true\n";
        let interval = |extra: &str| {
            let (c, _) = load(&format!("{group}{extra}")).unwrap();
            crate::group::driver_config(&c).unwrap().min_sync_interval
        };
        assert_eq!(interval(""), Duration::from_millis(10));
        assert_eq!(
            interval("dLegerFlushIntervalMs=3\n"),
            Duration::from_millis(3)
        );
        assert_eq!(interval("dLegerFlushIntervalMs=0\n"), Duration::ZERO);
        assert_eq!(
            interval("flushDiskType=SYNC_FLUSH\ndLegerFlushIntervalMs=3\n"),
            Duration::ZERO
        );
    }

    #[test]
    fn the_link_secret_is_read_and_never_shown() {
        let (c, _) = load("dLegerSecret=group-secret-1\n").unwrap();
        assert_eq!(
            c.dledger_secret,
            Some(raft::transport::LinkSecret::new("group-secret-1"))
        );
        assert!(!format!("{c:?}").contains("group-secret-1"));
        let refused = load("dLegerSecret=short12\n").unwrap_err().to_string();
        assert!(refused.contains("dLegerSecret"), "{refused}");
        assert!(!refused.contains("short12"), "{refused}");
    }

    #[test]
    fn delay_levels_are_read_and_checked() {
        let (c, unknown) = load("messageDelayLevel=1s 30s 2m 1h 1d\n").unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.store.message_delay_level.to_string(), "1s 30s 2m 1h 1d");
        assert_eq!(
            BrokerConfig::default()
                .store
                .message_delay_level
                .to_string(),
            message::delay::DEFAULT_MESSAGE_DELAY_LEVEL
        );
        let too_many = format!(
            "messageDelayLevel={}\n",
            "1s ".repeat(message::delay::MAX_DELAY_LEVELS + 1)
        );
        for text in [
            "messageDelayLevel=1s 5x\n",
            "messageDelayLevel= \n",
            &too_many,
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains("messageDelayLevel"), "{text}: {err}");
        }
    }

    #[test]
    fn transaction_keys_have_rocketmqs_defaults() {
        let c = BrokerConfig::default();
        assert_eq!(c.transaction_timeout, Duration::from_secs(6));
        assert_eq!(c.transaction_check_interval, Duration::from_secs(30));
        assert_eq!(c.transaction_check_max, 15);
        assert!(!c.reject_transaction_message);
        let (c, unknown) = load(
            "transactionTimeOut=1000\ntransactionCheckInterval=500\ntransactionCheckMax=3\n\
             rejectTransactionMessage=true\n",
        )
        .unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.transaction_timeout, Duration::from_secs(1));
        assert_eq!(c.transaction_check_interval, Duration::from_millis(500));
        assert_eq!(c.transaction_check_max, 3);
        assert!(c.reject_transaction_message);
        for text in [
            "transactionCheckInterval=0",
            "transactionCheckMax=0",
            "transactionTimeOut=-1",
        ] {
            assert!(load(text).is_err(), "{text}");
        }
    }

    #[test]
    fn connection_limits_are_read_from_broker_conf() {
        let (c, unknown) = load("serverMaxConnections=50\nserverFrameReadTimeoutMs=500\n").unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.server_limits.max_connections, 50);
        assert_eq!(
            c.server_limits.frame_read_timeout,
            Duration::from_millis(500)
        );
        assert!(load("serverMaxConnections=0").is_err());
    }

    #[test]
    fn timer_settings_have_rocketmqs_keys_and_defaults() {
        let c = BrokerConfig::default();
        assert!(c.timer_wheel_enable);
        assert_eq!(c.timer_max_delay, Duration::from_secs(259_200));
        assert_eq!(c.timer_precision_ms, 1000);
        assert!(!c.recall_message_enable);
        assert!(!c.enable_topic_message_type_check);
        let (c, unknown) = load(
            "timerWheelEnable=false\ntimerMaxDelaySec=60\ntimerPrecisionMs=100\n\
             recallMessageEnable=true\nenableTopicMessageTypeCheck=true\n",
        )
        .unwrap();
        assert!(unknown.is_empty());
        assert!(!c.timer_wheel_enable);
        assert_eq!(c.timer_max_delay, Duration::from_secs(60));
        assert_eq!(c.timer_precision_ms, 100);
        assert!(c.recall_message_enable && c.enable_topic_message_type_check);
        for text in [
            "timerPrecisionMs=0",
            "timerMaxDelaySec=0",
            "timerWheelEnable=maybe",
        ] {
            assert!(load(text).is_err(), "{text}");
        }
    }

    #[test]
    fn dledger_group_settings() {
        let (c, _) = load(
            "enableDLegerCommitLog=true\ndLegerGroup=RaftNode00\n\
             dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n\
             dLegerSelfId=n1\n",
        )
        .unwrap();
        assert_eq!(c.dledger_peers.len(), 3);
        assert_eq!(c.dledger_peers[2].addr, "127.0.0.1:40913");
        assert_eq!(c.dledger_slave_id(), 2);
    }

    #[test]
    fn dledger_inconsistencies_are_caught() {
        for text in [
            "enableDLegerCommitLog=true\n",
            "enableDLegerCommitLog=true\ndLegerPeers=n0-a:1;n1-b:2;n2-c:3\ndLegerSelfId=n7\n",
            "dLegerPeers=n0-a:1;n1-b:2;n2-c:3;n3-d:4;n4-e:5;n5-f:6;n6-g:7;n7-h:8;n8-i:9;n9-j:10\n",
            "dLegerPeers=n0-a:1;n0-b:2;n2-c:3\n",
            "dLegerPeers=n0a:1\n",
        ] {
            assert!(load(text).is_err(), "{text}");
        }
    }
}
