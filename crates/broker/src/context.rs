//! Everything a request processor can reach: config, role, the message store, metadata
//! managers, client tables, parked pulls and counters. Shared as `Arc<BrokerContext>`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use message::UniqIdGenerator;
use remoting::body::{SubscriptionGroupConfig, TopicConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client_groups::{ConsumerManager, OffsetResets, ProducerManager, RebalanceLockManager};
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::consumer_filter::FilterCache;
use crate::counters::BrokerStats;
use crate::group::handoff::HandoffGate;
use crate::group::GroupMember;
use crate::limits;
use crate::live_config::LiveConfig;
use crate::long_poll::LongPollHub;
use crate::metadata::{
    ConsumerOffsetManager, MetaError, MetadataOp, MetadataTables, OffsetOp,
    SubscriptionGroupManager, SubscriptionOp, TopicConfigManager, TopicOp,
};
use crate::role::{Role, RoleState};
use crate::stats_items::StatsItems;
use crate::store_facade::MessageStore;
use crate::transaction::state::Transactions;
use message::DelayLevels;

/// RocketMQ `rocketmq.broker.rebalance.lockMaxLiveTime`.
pub const REBALANCE_LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

/// What an operator turned on to watch and guard the broker, made before the context (a
/// group member's raft node reports to the metrics from its start).
pub struct Oversight {
    pub metrics: crate::instruments::BrokerMetrics,
    pub acl: Option<Arc<crate::acl::files::AclFiles>>,
}

pub struct BrokerContext {
    pub config: BrokerConfig,
    /// `brokerIP1:port` as registered and written into every record's STOREHOST.
    pub store_host: SocketAddr,
    pub broker_addr: String,
    pub role: Arc<RoleState>,
    pub store: Arc<dyn MessageStore>,
    pub topics: Arc<TopicConfigManager>,
    pub groups: Arc<SubscriptionGroupManager>,
    pub offsets: Arc<ConsumerOffsetManager>,
    /// PULL or POP per topic and group (`mqadmin setConsumeMode`).
    pub request_modes: Arc<crate::metadata::RequestModeManager>,
    /// ACL 2.0's users and ACLs.
    pub auth: Arc<crate::metadata::AuthTable>,
    /// ACL 2.0's check, when `authenticationEnabled` or `authorizationEnabled` is set.
    pub auth_gate: Option<Arc<crate::auth::gate::AuthGate>>,
    /// The raft group this broker is a member of (DLedger mode); `None` when standalone.
    pub group: Option<Arc<GroupMember>>,
    /// Set while a stopping master hands leadership off.
    pub handoff: HandoffGate,
    pub consumers: ConsumerManager,
    /// Compiled SQL92 subscriptions.
    pub filters: FilterCache,
    pub producers: ProducerManager,
    pub locks: RebalanceLockManager,
    /// Offsets reset on this broker that consumers have not pulled since.
    pub offset_resets: OffsetResets,
    pub long_poll: Arc<LongPollHub>,
    pub stats: BrokerStats,
    /// Per-topic and per-group traffic over the last minute, hour and day.
    pub stats_items: StatsItems,
    /// Fired when name servers must hear about a topic or role change now.
    pub registration_needed: Arc<Notify>,
    /// Registration rounds done, for a request that answers only once the name servers
    /// know its change.
    pub registration_rounds: crate::registration_rounds::RegistrationRounds,
    /// Cancelled at shutdown: parked pulls answer at once.
    pub shutdown: CancellationToken,
    pub uniq_ids: UniqIdGenerator,
    pub boot_timestamp_ms: i64,
    /// `messageDelayLevel`, for sends with a `DELAY` level, retries and the schedule service.
    pub delay_levels: DelayLevels,
    /// Settings an operator may change while the broker runs; read these, not `config`.
    pub live: LiveConfig,
    /// On a master, its table of open transactions (see [`crate::transaction`]).
    pub transactions: Transactions,
    /// 5.x producers on their Telemetry streams, which transaction checks reach too.
    pub grpc_producers: Arc<crate::grpc::producers::TelemetryProducers>,
    /// The timer's settings, and the recall markers its service loaded (RECALL_MESSAGE
    /// refuses new recalls once too many are held).
    pub timer: crate::timer::TimerSettings,
    pub timer_recalls: parking_lot::Mutex<crate::timer::recalls::Recalls>,
    pub timer_status: crate::timer::TimerStatus,
    /// POP consumption's open checkpoints and queue locks (see [`crate::pop`]).
    pub pop: Arc<crate::pop::PopState>,
    /// Who consumes which lite topics (the metadata tables' registry).
    pub lite: Arc<crate::lite::LiteSubscriptions>,
    /// Topic routes from the name servers (QUERY_ASSIGNMENT answers for the cluster).
    pub routes: crate::route_lookup::RouteLookup,
    /// The gRPC port bound (`grpcServerPort`, or the one the system picked for 0).
    pub grpc_port: std::sync::atomic::AtomicU16,
    /// Prometheus counters and histograms (recorded only with `metricsExporterType=PROM`).
    pub metrics: crate::instruments::BrokerMetrics,
    /// ACL 1.0's files and rules, with `aclEnable=true`.
    pub acl: Option<Arc<crate::acl::files::AclFiles>>,
}

impl BrokerContext {
    /// Opens the metadata under `storePathRootDir/config` and wires the store's arrival
    /// listener to the long-polling hub. `port` is the port actually bound.
    pub fn new(
        config: BrokerConfig,
        port: u16,
        store: Arc<dyn MessageStore>,
        oversight: Oversight,
    ) -> Result<Arc<BrokerContext>, MetaError> {
        let tables = MetadataTables::open(&config)?;
        Self::assemble(
            config,
            port,
            store,
            tables,
            Arc::new(Notify::new()),
            None,
            oversight,
        )
    }

    /// A context over metadata tables the caller opened (a group member opens them before
    /// its store, which applies replicated ops to them). A group member starts as a slave
    /// with its derived broker id; the role manager promotes it.
    pub fn assemble(
        config: BrokerConfig,
        port: u16,
        store: Arc<dyn MessageStore>,
        tables: MetadataTables,
        registration_needed: Arc<Notify>,
        group: Option<Arc<GroupMember>>,
        oversight: Oversight,
    ) -> Result<Arc<BrokerContext>, MetaError> {
        let ip: IpAddr = config.broker_ip1.parse().map_err(|_| {
            MetaError::Invalid(format!(
                "brokerIP1 `{}` is not an IP address",
                config.broker_ip1
            ))
        })?;
        let store_host = SocketAddr::new(ip, port);
        let delay_levels = config.store.message_delay_level.clone();
        let long_poll = LongPollHub::new(limits::MAX_PARKED_PULLS);
        let lite = Arc::clone(&tables.lite);
        let (hub, lite_arrivals) = (Arc::clone(&long_poll), Arc::clone(&lite));
        store.reader().set_arrival_listener(Arc::new(
            move |topic: &str, queue_id: i32, _max: i64| {
                hub.on_arrival(topic, queue_id);
                lite_arrivals.on_arrival(topic);
            },
        ));
        let role = match group {
            Some(_) => Arc::new(RoleState::new(Role::Slave, config.dledger_slave_id())),
            None => Arc::new(RoleState::new(Role::Master, config.broker_id)),
        };
        Ok(Arc::new(BrokerContext {
            broker_addr: store_host.to_string(),
            store_host,
            role,
            store,
            topics: tables.topics,
            groups: tables.groups,
            offsets: tables.offsets,
            request_modes: tables.request_modes,
            auth_gate: config.auth.enabled().then(|| {
                Arc::new(crate::auth::gate::AuthGate::new(
                    config.auth.clone(),
                    config.broker_cluster_name.clone(),
                    Arc::clone(&tables.auth),
                ))
            }),
            auth: tables.auth,
            group,
            handoff: HandoffGate::new(config.inner_client_config()),
            consumers: ConsumerManager::new(
                limits::MAX_CONSUMER_GROUPS,
                limits::MAX_CHANNELS_PER_GROUP,
            ),
            filters: FilterCache::new(
                limits::MAX_CACHED_FILTERS,
                limits::MAX_CACHED_FILTER_TEXT_BYTES,
            ),
            producers: ProducerManager::new(
                limits::MAX_PRODUCER_GROUPS,
                limits::MAX_CHANNELS_PER_GROUP,
            ),
            locks: RebalanceLockManager::new(REBALANCE_LOCK_MAX_LIVE, limits::MAX_LOCK_ENTRIES),
            offset_resets: OffsetResets::new(limits::MAX_LOCK_ENTRIES),
            long_poll,
            stats: BrokerStats::default(),
            stats_items: StatsItems::default(),
            registration_needed,
            registration_rounds: Default::default(),
            shutdown: CancellationToken::new(),
            uniq_ids: UniqIdGenerator::new(ip),
            boot_timestamp_ms: now_ms(),
            delay_levels,
            live: LiveConfig::new(&config),
            transactions: Transactions::default(),
            grpc_producers: Default::default(),
            timer: crate::timer::TimerSettings::of(&config),
            timer_recalls: Default::default(),
            timer_status: Default::default(),
            pop: Arc::new(crate::pop::PopState::new(&config)),
            lite,
            routes: crate::route_lookup::RouteLookup::new(
                config.namesrv_addrs.clone(),
                config.inner_client_config(),
            ),
            grpc_port: std::sync::atomic::AtomicU16::new(config.grpc_server_port),
            metrics: oversight.metrics,
            acl: oversight.acl,
            config,
        }))
    }

    /// The metadata tables, shared.
    pub fn tables(&self) -> MetadataTables {
        MetadataTables {
            topics: Arc::clone(&self.topics),
            groups: Arc::clone(&self.groups),
            offsets: Arc::clone(&self.offsets),
            request_modes: Arc::clone(&self.request_modes),
            auth: Arc::clone(&self.auth),
            lite: Arc::clone(&self.lite),
        }
    }

    /// Applies any metadata op on this node, here and now (what a standalone broker does
    /// with each change, and what a group member does with each committed op); a topic
    /// change asks for an immediate registration with the name servers.
    pub fn apply_metadata(&self, op: MetadataOp) -> Result<(), MetaError> {
        let topics_changed = self.tables().apply(op)?;
        if topics_changed {
            self.registration_needed.notify_one();
        }
        Ok(())
    }

    /// Changes metadata: applied at once on a standalone broker; in a group, proposed
    /// through the raft log by the leader and applied on every member once committed
    /// (resolves after this node applied it). A follower refuses with
    /// [`MetaError::NotLeader`].
    pub async fn write_metadata(&self, op: MetadataOp) -> Result<(), MetaError> {
        match &self.group {
            None => self.apply_metadata(op),
            Some(group) => group.writer.write(op).await,
        }
    }

    /// Whether this node may change metadata now (standalone, or the group's master).
    pub fn can_write_metadata(&self) -> bool {
        self.group.is_none() || self.role.is_master()
    }

    /// Records a consumer offset a pull carried. Standalone: applied at once. Group
    /// master: coalesced with other commits into the next raft entry, without waiting (the
    /// pull must not wait for replication). Followers drop it: consumers commit to the
    /// master again on their next persist.
    pub fn commit_offset_soon(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        if self.offset_resets.is_pending(group, topic, queue_id) {
            // The consumer has not heard of the reset yet: this offset is the old one.
            return;
        }
        match &self.group {
            None => {
                let op = OffsetOp::Commit {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    queue_id,
                    offset,
                };
                if let Err(e) = self.offsets.apply(op) {
                    tracing::warn!(error = %e, %group, "consumer offset not committed");
                }
            }
            Some(member) if self.role.is_master() => {
                member.writer.commit_offset(group, topic, queue_id, offset)
            }
            Some(_) => {}
        }
    }

    /// Creates a topic unless it exists (auto-creation: the first creator wins) and returns
    /// the topic's config as it is after the write.
    pub async fn create_topic(&self, config: TopicConfig) -> Result<Arc<TopicConfig>, MetaError> {
        let topic = config.topic_name.clone();
        if let Some(existing) = self.topics.get(&topic) {
            return Ok(existing);
        }
        self.write_metadata(MetadataOp::Topic(TopicOp::Create(config)))
            .await?;
        self.topics
            .get(&topic)
            .ok_or_else(|| MetaError::Invalid(format!("topic {topic} was not created")))
    }

    /// A consumer group's config, auto-created (when `autoCreateSubscriptionGroup`) if
    /// absent. A group follower cannot create it and answers with the defaults the master
    /// will create, so pulls and heartbeats there still work during an election.
    pub async fn group_or_create(
        &self,
        group: &str,
    ) -> Result<Option<Arc<SubscriptionGroupConfig>>, MetaError> {
        if let Some(config) = self.groups.get(group) {
            return Ok(Some(config));
        }
        if !self.live.auto_create_subscription_group() {
            return Ok(None);
        }
        if !self.can_write_metadata() {
            return Ok(Some(Arc::new(SubscriptionGroupConfig::new(group))));
        }
        self.write_metadata(MetadataOp::Subscription(SubscriptionOp::Create(
            SubscriptionGroupConfig::new(group),
        )))
        .await?;
        Ok(self.groups.get(group))
    }

    /// The topic, created with `queue_nums` queues and `perm` if absent (retry and DLQ
    /// topics: RocketMQ `createTopicInSendMessageBackMethod`).
    pub async fn topic_or_create(
        &self,
        topic: &str,
        queue_nums: i32,
        topic_perm: i32,
    ) -> Result<Arc<TopicConfig>, MetaError> {
        if let Some(config) = self.topics.get(topic) {
            return Ok(config);
        }
        let config = TopicConfig::new(topic, queue_nums.max(1), queue_nums.max(1), topic_perm);
        self.create_topic(config).await
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the broker as a whole takes writes (its role and `brokerPermission`).
    pub fn is_writeable(&self) -> bool {
        self.live.is_writeable()
    }

    pub fn is_readable(&self) -> bool {
        self.live.is_readable()
    }
}
