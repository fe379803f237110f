//! Everything a request processor can reach: config, role, the message store, metadata
//! managers, client tables, parked pulls and counters. Shared as `Arc<BrokerContext>`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use remoting::body::{perm, TopicConfig};
use remoting::message::UniqIdGenerator;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::{ConsumerManager, ProducerManager, RebalanceLockManager};
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::long_poll::LongPollHub;
use crate::metadata::persist::config_dir;
use crate::metadata::topic::TopicDefaults;
use crate::metadata::{
    ConsumerOffsetManager, MetaError, MetadataOp, SubscriptionGroupManager, TopicConfigManager,
    TopicOp,
};
use crate::role::{Role, RoleState};
use crate::stats::BrokerStats;
use crate::store_facade::MessageStore;

/// Bounds on tables clients can grow.
pub mod limits {
    /// REGISTER_BROKER and GET_ALL_TOPIC_CONFIG carry the whole table in one frame of at
    /// most 16 MiB; 30 000 topics of the longest names (~400 bytes of JSON each) fit.
    pub const MAX_TOPICS: usize = 30_000;
    pub const MAX_SUBSCRIPTION_GROUPS: usize = 100_000;
    pub const MAX_OFFSET_KEYS: usize = 1_000_000;
    pub const MAX_CONSUMER_GROUPS: usize = 100_000;
    pub const MAX_PRODUCER_GROUPS: usize = 100_000;
    pub const MAX_CHANNELS_PER_GROUP: usize = 10_000;
    pub const MAX_LOCK_ENTRIES: usize = 1_000_000;
    /// Pulls held open at once, across all connections.
    pub const MAX_PARKED_PULLS: usize = 100_000;
    /// Messages in one batch send.
    pub const MAX_BATCH_MESSAGES: usize = 1024;
}

/// RocketMQ `rocketmq.broker.rebalance.lockMaxLiveTime`.
pub const REBALANCE_LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

pub struct BrokerContext {
    pub config: BrokerConfig,
    /// `brokerIP1:port` as registered and written into every record's STOREHOST.
    pub store_host: SocketAddr,
    pub broker_addr: String,
    pub role: RoleState,
    pub store: Arc<dyn MessageStore>,
    pub topics: TopicConfigManager,
    pub groups: SubscriptionGroupManager,
    pub offsets: ConsumerOffsetManager,
    pub consumers: ConsumerManager,
    pub producers: ProducerManager,
    pub locks: RebalanceLockManager,
    pub long_poll: Arc<LongPollHub>,
    pub stats: BrokerStats,
    /// Fired when name servers must hear about a topic change now.
    pub registration_needed: Notify,
    /// Cancelled at shutdown: parked pulls answer at once.
    pub shutdown: CancellationToken,
    pub uniq_ids: UniqIdGenerator,
    pub boot_timestamp_ms: i64,
}

impl BrokerContext {
    /// Opens the metadata under `storePathRootDir/config` and wires the store's arrival
    /// listener to the long-polling hub. `port` is the port actually bound.
    pub fn new(
        config: BrokerConfig,
        port: u16,
        store: Arc<dyn MessageStore>,
    ) -> Result<Arc<BrokerContext>, MetaError> {
        let ip: IpAddr = config.broker_ip1.parse().map_err(|_| {
            MetaError::Invalid(format!(
                "brokerIP1 `{}` is not an IP address",
                config.broker_ip1
            ))
        })?;
        let store_host = SocketAddr::new(ip, port);
        let dir = config_dir(&config.store_path_root_dir);
        let defaults = TopicDefaults {
            cluster_name: config.broker_cluster_name.clone(),
            broker_name: config.broker_name.clone(),
            auto_create_topic_enable: config.auto_create_topic_enable,
            default_topic_queue_nums: config.default_topic_queue_nums,
        };
        let topics = TopicConfigManager::open(&dir, &defaults, limits::MAX_TOPICS)?;
        let groups = SubscriptionGroupManager::open(&dir, limits::MAX_SUBSCRIPTION_GROUPS)?;
        let offsets = ConsumerOffsetManager::open(&dir, limits::MAX_OFFSET_KEYS)?;
        let long_poll = LongPollHub::new(limits::MAX_PARKED_PULLS);
        let hub = Arc::clone(&long_poll);
        store.set_arrival_listener(Arc::new(move |topic: &str, queue_id: i32, _max: i64| {
            hub.on_arrival(topic, queue_id)
        }));
        let role = RoleState::new(Role::Master, config.broker_id);
        Ok(Arc::new(BrokerContext {
            broker_addr: store_host.to_string(),
            store_host,
            role,
            store,
            topics,
            groups,
            offsets,
            consumers: ConsumerManager::new(
                limits::MAX_CONSUMER_GROUPS,
                limits::MAX_CHANNELS_PER_GROUP,
            ),
            producers: ProducerManager::new(
                limits::MAX_PRODUCER_GROUPS,
                limits::MAX_CHANNELS_PER_GROUP,
            ),
            locks: RebalanceLockManager::new(REBALANCE_LOCK_MAX_LIVE, limits::MAX_LOCK_ENTRIES),
            long_poll,
            stats: BrokerStats::default(),
            registration_needed: Notify::new(),
            shutdown: CancellationToken::new(),
            uniq_ids: UniqIdGenerator::new(ip),
            boot_timestamp_ms: now_ms(),
            config,
        }))
    }

    /// Applies a topic change and, if the table changed, asks for an immediate
    /// registration with the name servers.
    pub fn apply_topic_op(&self, op: TopicOp) -> Result<Option<Arc<TopicConfig>>, MetaError> {
        let applied = self.topics.apply(op)?;
        if applied.changed {
            self.registration_needed.notify_one();
        }
        Ok(applied.config)
    }

    /// Applies any metadata op here (what a raft group's nodes do with each committed op).
    pub fn apply_metadata(&self, op: MetadataOp) -> Result<(), MetaError> {
        match op {
            MetadataOp::Topic(op) => self.apply_topic_op(op).map(|_| ()),
            MetadataOp::Subscription(op) => self.groups.apply(op).map(|_| ()),
            MetadataOp::Offset(op) => self.offsets.apply(op),
        }
    }

    /// The topic, created with `queue_nums` queues and `perm` if absent (retry and DLQ
    /// topics: RocketMQ `createTopicInSendMessageBackMethod`).
    pub fn topic_or_create(
        &self,
        topic: &str,
        queue_nums: i32,
        topic_perm: i32,
    ) -> Result<Arc<TopicConfig>, MetaError> {
        if let Some(config) = self.topics.get(topic) {
            return Ok(config);
        }
        let config = TopicConfig::new(topic, queue_nums.max(1), queue_nums.max(1), topic_perm);
        self.apply_topic_op(TopicOp::Create(config))?
            .ok_or_else(|| MetaError::Invalid(format!("topic {topic} vanished while created")))
    }

    /// Switches role (a replicated group's leader change) and re-registers at once, so
    /// name servers route clients to the new master.
    pub fn change_role(&self, role: Role, broker_id: u64) {
        if self.role.set(role, broker_id) {
            tracing::info!(?role, broker_id, "broker role changed");
            self.registration_needed.notify_one();
        }
    }

    /// Whether the broker as a whole takes writes (its role and `brokerPermission`).
    pub fn is_writeable(&self) -> bool {
        perm::is_writeable(self.config.broker_permission as i32)
    }

    pub fn is_readable(&self) -> bool {
        perm::is_readable(self.config.broker_permission as i32)
    }
}
