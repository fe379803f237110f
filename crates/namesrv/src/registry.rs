//! The route registry: which brokers are alive, what each serves, and the routes clients ask
//! for. Pure data and rules (no I/O, clock passed in), so every rule is unit-tested.
//!
//! The rules follow RocketMQ's `RouteInfoManager`:
//! - a broker address appears under one broker id only: registering it under a new id first
//!   drops the old one (this is what lets a broker group's master and slaves swap roles);
//! - only a master (broker id 0) defines the queues of its broker name's topics, and a
//!   master that re-registers the same topic table (the same data version and content)
//!   leaves the queues as they are, so an operator's WIPE_WRITE_PERM_OF_BROKER / ADD_WRITE_PERM_OF_BROKER
//!   holds until the broker's topics change or it registers afresh;
//! - a broker that stops re-registering is dropped after its heartbeat timeout, and one whose
//!   connection closes is dropped at once.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use remoting::body::{perm, BrokerData, DataVersion, QueueData, TopicRouteData};

/// RocketMQ's broker expiry (`BROKER_CHANNEL_EXPIRED_TIME`): brokers re-register every 30 s.
pub const DEFAULT_BROKER_TIMEOUT: Duration = Duration::from_secs(120);

/// The master's broker id.
pub const MASTER_ID: i64 = 0;

/// Bounds that keep a misbehaving (or hostile) broker from growing the registry without limit.
pub const MAX_TOPICS_PER_REGISTRATION: usize = 100_000;
pub const MAX_BROKERS: usize = 10_000;

/// A topic as a registering broker describes it: its name and this broker's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTopic {
    pub name: String,
    pub queues: QueueData,
}

/// A REGISTER_BROKER request, decoded.
#[derive(Debug, Clone)]
pub struct Registration {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: i64,
    pub ha_server_addr: String,
    pub enable_acting_master: bool,
    pub topics: Vec<RegisteredTopic>,
    /// The version of `topics` (the body's `dataVersion`): the broker bumps it whenever its
    /// topic table changes.
    pub data_version: DataVersion,
    pub timeout: Duration,
    /// Identifies the connection the registration came on, so the broker can be dropped when
    /// that connection closes.
    pub connection_id: Option<u64>,
    /// A broker group member's raft term (not RocketMQ's; absent from other brokers).
    pub raft_term: Option<u64>,
}

/// What REGISTER_BROKER answers: a slave learns where its master is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub master_addr: Option<String>,
    pub ha_server_addr: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(
        "registration carries {0} topics, more than the limit of {MAX_TOPICS_PER_REGISTRATION}"
    )]
    TooManyTopics(usize),
    #[error("registry already holds {MAX_BROKERS} brokers")]
    TooManyBrokers,
}

#[derive(Debug, Clone)]
struct LiveBroker {
    last_seen: Instant,
    timeout: Duration,
    ha_server_addr: String,
    connection_id: Option<u64>,
    cluster: String,
    broker_name: String,
    broker_id: i64,
    /// The topic table this broker last defined its routes with, as master.
    topics_seen: Option<TableSeen>,
    raft_term: Option<u64>,
}

/// A master's registered topic table: its version and a digest of what it listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableSeen {
    version: DataVersion,
    digest: u64,
}

impl TableSeen {
    fn of(reg: &Registration) -> TableSeen {
        let mut hasher = DefaultHasher::new();
        for topic in &reg.topics {
            topic.name.hash(&mut hasher);
            let q = &topic.queues;
            (
                q.read_queue_nums,
                q.write_queue_nums,
                q.perm,
                q.topic_sys_flag,
            )
                .hash(&mut hasher);
        }
        TableSeen {
            version: reg.data_version,
            digest: hasher.finish(),
        }
    }
}

/// How much a name server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryCensus {
    pub clusters: usize,
    /// Live broker addresses (a master and its slaves count once each).
    pub brokers: usize,
    pub topics: usize,
}

/// The registry itself. Callers wrap it in a lock.
#[derive(Debug, Default)]
pub struct Registry {
    cluster_brokers: BTreeMap<String, BTreeSet<String>>,
    brokers: BTreeMap<String, BrokerData>,
    topic_queues: BTreeMap<String, BTreeMap<String, QueueData>>,
    live: HashMap<String, LiveBroker>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(
        &mut self,
        reg: Registration,
        now: Instant,
    ) -> Result<RegisterOutcome, RegistryError> {
        if reg.topics.len() > MAX_TOPICS_PER_REGISTRATION {
            return Err(RegistryError::TooManyTopics(reg.topics.len()));
        }
        if !self.live.contains_key(&reg.broker_addr) && self.live.len() >= MAX_BROKERS {
            return Err(RegistryError::TooManyBrokers);
        }
        if let Some(master) = self.newer_master(&reg) {
            // A master frozen past its registration time wakes up still claiming the role;
            // letting it displace the master of a later term would leave clients without a
            // master once it registers as a slave, until the real one re-registers.
            tracing::warn!(broker = %reg.broker_name, stale = %reg.broker_addr, ?reg.raft_term,
                master = %master, "master claim of an older raft term ignored");
            if let Some(live) = self.live.get_mut(&reg.broker_addr) {
                live.last_seen = now;
            }
            let ha_server_addr = self.live.get(&master).map(|l| l.ha_server_addr.clone());
            return Ok(RegisterOutcome {
                master_addr: Some(master),
                ha_server_addr,
            });
        }

        // RocketMQ rewrites a master's queue data only on its first registration or when its
        // topic table's version changed; a periodic re-registration of the same table keeps
        // what an operator set (wiped or added write permission). A role change (a new
        // master, or an address moving to id 0) counts as a first registration. Beyond
        // RocketMQ, a table whose content changed under the same version (a broker that
        // rewrites its topics' perm for its brokerPermission without a new version) counts
        // as changed too.
        let seen = TableSeen::of(&reg);
        let same_topic_table = reg.broker_id == MASTER_ID
            && self
                .brokers
                .get(&reg.broker_name)
                .and_then(|b| b.broker_addrs.get(&MASTER_ID))
                == Some(&reg.broker_addr)
            && self.live.get(&reg.broker_addr).is_some_and(|l| {
                l.broker_name == reg.broker_name
                    && l.broker_id == MASTER_ID
                    && l.topics_seen == Some(seen)
            });

        self.cluster_brokers
            .entry(reg.cluster.clone())
            .or_default()
            .insert(reg.broker_name.clone());

        let broker = self
            .brokers
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: reg.cluster.clone(),
                broker_name: reg.broker_name.clone(),
                broker_addrs: BTreeMap::new(),
                enable_acting_master: reg.enable_acting_master,
                zone_name: None,
            });
        broker.cluster = reg.cluster.clone();
        broker.enable_acting_master = reg.enable_acting_master;
        // One address, one id: a slave promoted to master (or a master demoted) must not
        // linger under its old id.
        broker
            .broker_addrs
            .retain(|id, addr| *id == reg.broker_id || *addr != reg.broker_addr);
        let displaced = broker
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone())
            .filter(|old| *old != reg.broker_addr);
        if let Some(old_addr) = displaced {
            // The previous holder of this id (an old master) is no longer listed; forget its
            // liveness record so its expiry does not remove the new holder.
            if self
                .live
                .get(&old_addr)
                .is_some_and(|l| l.broker_name == reg.broker_name && l.broker_id == reg.broker_id)
            {
                self.live.remove(&old_addr);
            }
        }

        if reg.broker_id == MASTER_ID {
            self.replace_topics_of(&reg.broker_name, &reg.topics, same_topic_table);
        }

        self.live.insert(
            reg.broker_addr.clone(),
            LiveBroker {
                last_seen: now,
                timeout: reg.timeout,
                ha_server_addr: reg.ha_server_addr.clone(),
                connection_id: reg.connection_id,
                cluster: reg.cluster.clone(),
                broker_name: reg.broker_name.clone(),
                broker_id: reg.broker_id,
                topics_seen: (reg.broker_id == MASTER_ID).then_some(seen),
                raft_term: reg.raft_term,
            },
        );

        let mut outcome = RegisterOutcome::default();
        if reg.broker_id != MASTER_ID {
            if let Some(master) = self
                .brokers
                .get(&reg.broker_name)
                .and_then(|b| b.broker_addrs.get(&MASTER_ID))
            {
                outcome.ha_server_addr = self.live.get(master).map(|l| l.ha_server_addr.clone());
                outcome.master_addr = Some(master.clone());
            }
        }
        Ok(outcome)
    }

    /// The live master `reg` would displace when that master registered with a newer raft
    /// term than `reg` carries.
    fn newer_master(&self, reg: &Registration) -> Option<String> {
        if reg.broker_id != MASTER_ID {
            return None;
        }
        let claimed = reg.raft_term?;
        let master = self
            .brokers
            .get(&reg.broker_name)?
            .broker_addrs
            .get(&MASTER_ID)
            .filter(|addr| **addr != reg.broker_addr)?;
        let live = self.live.get(master)?;
        (live.broker_id == MASTER_ID && live.raft_term.is_some_and(|t| t > claimed))
            .then(|| master.clone())
    }

    /// Makes the master's topic list the truth for its broker name: topics it no longer has
    /// (deleted on the broker) stop listing it. With `keep_existing` (the same topic table
    /// as last time) queue data already listed stays as it is; only missing entries are
    /// added (a topic deleted on the name server alone comes back, as in RocketMQ).
    fn replace_topics_of(
        &mut self,
        broker_name: &str,
        topics: &[RegisteredTopic],
        keep_existing: bool,
    ) {
        let current: BTreeSet<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        self.topic_queues.retain(|topic, per_broker| {
            if !current.contains(topic.as_str()) {
                per_broker.remove(broker_name);
            }
            !per_broker.is_empty()
        });
        for topic in topics {
            let per_broker = self.topic_queues.entry(topic.name.clone()).or_default();
            if keep_existing && per_broker.contains_key(broker_name) {
                continue;
            }
            let mut queues = topic.queues.clone();
            queues.broker_name = broker_name.to_string();
            per_broker.insert(broker_name.to_string(), queues);
        }
    }

    /// WIPE_WRITE_PERM_OF_BROKER: clears the write bit of `broker_name`'s queues in every
    /// topic it serves, so clients stop sending to it (RocketMQ's way to drain a broker
    /// before stopping it). Returns how many topics it serves, each counted whether or not
    /// its write bit was already clear, as RocketMQ counts them.
    pub fn wipe_write_perm(&mut self, broker_name: &str) -> usize {
        self.set_perm_of(broker_name, |perm| perm & !perm::WRITE)
    }

    /// ADD_WRITE_PERM_OF_BROKER: sets `broker_name`'s queues in every topic it serves to
    /// read and write (RocketMQ sets exactly `PERM_READ | PERM_WRITE`). Returns how many
    /// topics it serves.
    pub fn add_write_perm(&mut self, broker_name: &str) -> usize {
        self.set_perm_of(broker_name, |_| perm::READ | perm::WRITE)
    }

    fn set_perm_of(&mut self, broker_name: &str, change: impl Fn(i32) -> i32) -> usize {
        let mut topics = 0;
        for per_broker in self.topic_queues.values_mut() {
            if let Some(queues) = per_broker.get_mut(broker_name) {
                queues.perm = change(queues.perm);
                topics += 1;
            }
        }
        topics
    }

    pub fn unregister(
        &mut self,
        cluster: &str,
        broker_name: &str,
        broker_addr: &str,
        broker_id: i64,
    ) {
        self.live.remove(broker_addr);
        let now_empty = match self.brokers.get_mut(broker_name) {
            Some(broker) => {
                if broker.broker_addrs.get(&broker_id).map(String::as_str) == Some(broker_addr) {
                    broker.broker_addrs.remove(&broker_id);
                }
                broker.broker_addrs.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.brokers.remove(broker_name);
            if let Some(names) = self.cluster_brokers.get_mut(cluster) {
                names.remove(broker_name);
                if names.is_empty() {
                    self.cluster_brokers.remove(cluster);
                }
            }
            self.topic_queues.retain(|_, per_broker| {
                per_broker.remove(broker_name);
                !per_broker.is_empty()
            });
        }
    }

    /// Drops brokers that have not re-registered within their timeout; returns their addresses.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<(String, LiveBroker)> = self
            .live
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_seen) > l.timeout)
            .map(|(a, l)| (a.clone(), l.clone()))
            .collect();
        for (addr, live) in &expired {
            self.unregister(&live.cluster, &live.broker_name, addr, live.broker_id);
        }
        expired.into_iter().map(|(a, _)| a).collect()
    }

    /// Drops every broker that registered over the connection that just closed.
    pub fn connection_closed(&mut self, connection_id: u64) -> Vec<String> {
        let gone: Vec<(String, LiveBroker)> = self
            .live
            .iter()
            .filter(|(_, l)| l.connection_id == Some(connection_id))
            .map(|(a, l)| (a.clone(), l.clone()))
            .collect();
        for (addr, live) in &gone {
            self.unregister(&live.cluster, &live.broker_name, addr, live.broker_id);
        }
        gone.into_iter().map(|(a, _)| a).collect()
    }

    /// The route of a topic, queues and brokers sorted by broker name.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topic_queues.get(topic)?;
        if queues.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            queue_datas: queues.values().cloned().collect(),
            broker_datas: queues
                .keys()
                .filter_map(|name| self.brokers.get(name).cloned())
                .collect(),
            ..TopicRouteData::default()
        })
    }

    /// All brokers by name, and broker names by cluster.
    pub fn cluster_info(
        &self,
    ) -> (
        &BTreeMap<String, BrokerData>,
        &BTreeMap<String, BTreeSet<String>>,
    ) {
        (&self.brokers, &self.cluster_brokers)
    }

    /// GET_SYSTEM_TOPIC_LIST_FROM_NS, as RocketMQ builds it: every cluster name and every
    /// broker name (RocketMQ treats each as a system topic), and one registered broker's
    /// address, the lowest id (the master, where listed) of the first broker name, for the
    /// caller to ask about the broker's own system topics.
    pub fn system_topics(&self) -> (BTreeSet<String>, Option<String>) {
        let mut names = BTreeSet::new();
        for (cluster, brokers) in &self.cluster_brokers {
            names.insert(cluster.clone());
            names.extend(brokers.iter().cloned());
        }
        let addr = self
            .brokers
            .values()
            .find_map(|b| b.broker_addrs.values().next().cloned());
        (names, addr)
    }

    /// Clusters, broker addresses and topics registered (the name server's metrics).
    pub fn census(&self) -> RegistryCensus {
        RegistryCensus {
            clusters: self.cluster_brokers.len(),
            brokers: self.live.len(),
            topics: self.topic_queues.len(),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topic_queues.keys().map(String::as_str)
    }

    /// Removes a topic from every broker (DELETE_TOPIC_IN_NAMESRV), or only from the brokers
    /// of one cluster when given.
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) {
        match cluster {
            None => {
                self.topic_queues.remove(topic);
            }
            Some(cluster) => {
                let names = self
                    .cluster_brokers
                    .get(cluster)
                    .cloned()
                    .unwrap_or_default();
                if let Some(per_broker) = self.topic_queues.get_mut(topic) {
                    per_broker.retain(|name, _| !names.contains(name));
                    if per_broker.is_empty() {
                        self.topic_queues.remove(topic);
                    }
                }
            }
        }
    }

    /// Topics served by the brokers of one cluster.
    pub fn topics_of_cluster(&self, cluster: &str) -> Vec<String> {
        let Some(names) = self.cluster_brokers.get(cluster) else {
            return Vec::new();
        };
        self.topic_queues
            .iter()
            .filter(|(_, per_broker)| per_broker.keys().any(|n| names.contains(n)))
            .map(|(t, _)| t.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> QueueData {
        QueueData {
            broker_name: String::new(),
            read_queue_nums: n,
            write_queue_nums: n,
            perm: 6,
            topic_sys_flag: 0,
        }
    }

    fn reg(name: &str, addr: &str, id: i64, topics: &[&str]) -> Registration {
        Registration {
            cluster: "C".into(),
            broker_name: name.into(),
            broker_addr: addr.into(),
            broker_id: id,
            ha_server_addr: format!("{addr}-ha"),
            enable_acting_master: false,
            topics: topics
                .iter()
                .map(|t| RegisteredTopic {
                    name: t.to_string(),
                    queues: queues(4),
                })
                .collect(),
            data_version: version(1),
            timeout: DEFAULT_BROKER_TIMEOUT,
            connection_id: None,
            raft_term: None,
        }
    }

    fn version(counter: i64) -> DataVersion {
        DataVersion {
            counter,
            state_version: 0,
            timestamp: 1_700_000_000_000,
        }
    }

    /// The perm of `broker`'s queues in `topic`'s route.
    fn perm_of(r: &Registry, topic: &str, broker: &str) -> i32 {
        r.route(topic)
            .and_then(|route| {
                route
                    .queue_datas
                    .into_iter()
                    .find(|q| q.broker_name == broker)
            })
            .map(|q| q.perm)
            .expect("the broker serves the topic")
    }

    #[test]
    fn master_defines_routes_and_slaves_learn_the_master() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("b", "m:1", 0, &["T"]), now).unwrap();
        let out = r
            .register(reg("b", "s:1", 1, &["T", "Other"]), now)
            .unwrap();
        assert_eq!(out.master_addr.as_deref(), Some("m:1"));
        assert_eq!(out.ha_server_addr.as_deref(), Some("m:1-ha"));
        let route = r.route("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
        // Only the master's topic list counts.
        assert!(r.route("Other").is_none());
    }

    fn in_term(mut reg: Registration, term: u64) -> Registration {
        reg.raft_term = Some(term);
        reg
    }

    fn master_of(r: &Registry, topic: &str) -> Option<String> {
        r.route(topic)?.broker_datas[0]
            .broker_addrs
            .get(&MASTER_ID)
            .cloned()
    }

    #[test]
    fn a_master_of_an_older_term_cannot_displace_the_newer_one() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(in_term(reg("g", "a:1", 0, &["T"]), 5), now)
            .unwrap();
        r.register(in_term(reg("g", "b:1", 2, &["T"]), 5), now)
            .unwrap();
        // b is elected in term 6 while a is frozen.
        r.register(in_term(reg("g", "b:1", 0, &["T"]), 6), now)
            .unwrap();
        assert_eq!(master_of(&r, "T").as_deref(), Some("b:1"));
        // a wakes past its registration time, still believing it leads term 5.
        let out = r
            .register(in_term(reg("g", "a:1", 0, &["T"]), 5), now)
            .unwrap();
        assert_eq!(
            out.master_addr.as_deref(),
            Some("b:1"),
            "told who the master is"
        );
        assert_eq!(master_of(&r, "T").as_deref(), Some("b:1"));
        // Then it learns its role and registers as a slave: the master stays.
        r.register(in_term(reg("g", "a:1", 1, &["T"]), 6), now)
            .unwrap();
        assert_eq!(master_of(&r, "T").as_deref(), Some("b:1"));
        let addrs = &r.route("T").unwrap().broker_datas[0].broker_addrs;
        assert_eq!(addrs.get(&1).map(String::as_str), Some("a:1"));
        // A master of a newer term still takes over, and so does one without a term.
        r.register(in_term(reg("g", "a:1", 0, &["T"]), 7), now)
            .unwrap();
        assert_eq!(master_of(&r, "T").as_deref(), Some("a:1"));
        r.register(reg("g", "b:1", 0, &["T"]), now).unwrap();
        assert_eq!(master_of(&r, "T").as_deref(), Some("b:1"));
    }

    #[test]
    fn unknown_topic_has_no_route() {
        assert!(Registry::new().route("nope").is_none());
    }

    #[test]
    fn role_swap_moves_the_address_to_its_new_id() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("g", "a:1", 0, &["T"]), now).unwrap();
        r.register(reg("g", "b:1", 2, &["T"]), now).unwrap();
        // b becomes master; a, back as a slave, registers with id 1.
        r.register(reg("g", "b:1", 0, &["T"]), now).unwrap();
        r.register(reg("g", "a:1", 1, &["T"]), now).unwrap();
        let addrs = &r.route("T").unwrap().broker_datas[0].broker_addrs;
        assert_eq!(addrs.get(&0).map(String::as_str), Some("b:1"));
        assert_eq!(addrs.get(&1).map(String::as_str), Some("a:1"));
        assert_eq!(addrs.len(), 2, "no address listed twice: {addrs:?}");
    }

    #[test]
    fn silent_brokers_expire_and_their_topics_go() {
        let mut r = Registry::new();
        let start = Instant::now();
        let mut short = reg("b", "m:1", 0, &["T"]);
        short.timeout = Duration::from_secs(5);
        r.register(short, start).unwrap();
        assert!(r.expire(start + Duration::from_secs(4)).is_empty());
        assert_eq!(
            r.expire(start + Duration::from_secs(6)),
            vec!["m:1".to_string()]
        );
        assert!(r.route("T").is_none());
        assert!(r.cluster_info().0.is_empty());
        assert!(r.cluster_info().1.is_empty());
    }

    #[test]
    fn closed_connection_drops_its_broker_only() {
        let mut r = Registry::new();
        let now = Instant::now();
        let mut a = reg("a", "a:1", 0, &["T"]);
        a.connection_id = Some(7);
        let mut b = reg("b", "b:1", 0, &["T"]);
        b.connection_id = Some(8);
        r.register(a, now).unwrap();
        r.register(b, now).unwrap();
        assert_eq!(r.connection_closed(7), vec!["a:1".to_string()]);
        let route = r.route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].broker_name, "b");
    }

    #[test]
    fn topics_removed_on_the_master_leave_the_route() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("b", "m:1", 0, &["T", "U"]), now).unwrap();
        r.register(reg("b", "m:1", 0, &["T"]), now).unwrap();
        assert!(r.route("U").is_none());
        assert!(r.route("T").is_some());
    }

    #[test]
    fn delete_topic_everywhere_or_per_cluster() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("b", "m:1", 0, &["T"]), now).unwrap();
        let mut other = reg("x", "x:1", 0, &["T"]);
        other.cluster = "D".into();
        r.register(other, now).unwrap();
        r.delete_topic("T", Some("C"));
        assert_eq!(r.route("T").unwrap().queue_datas[0].broker_name, "x");
        assert_eq!(r.topics_of_cluster("D"), vec!["T".to_string()]);
        r.delete_topic("T", None);
        assert!(r.route("T").is_none());
    }

    #[test]
    fn oversize_registrations_are_refused() {
        let mut r = Registry::new();
        let mut big = reg("b", "m:1", 0, &[]);
        big.topics = (0..=MAX_TOPICS_PER_REGISTRATION)
            .map(|i| RegisteredTopic {
                name: format!("t{i}"),
                queues: queues(1),
            })
            .collect();
        assert!(matches!(
            r.register(big, Instant::now()),
            Err(RegistryError::TooManyTopics(_))
        ));
    }

    #[test]
    fn wipe_and_add_write_perm_change_one_broker_in_every_topic() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("a", "a:1", 0, &["T", "U"]), now).unwrap();
        r.register(reg("b", "b:1", 0, &["T"]), now).unwrap();

        assert_eq!(r.wipe_write_perm("a"), 2);
        assert_eq!(perm_of(&r, "T", "a"), perm::READ);
        assert_eq!(perm_of(&r, "U", "a"), perm::READ);
        assert_eq!(
            perm_of(&r, "T", "b"),
            perm::READ_WRITE,
            "other brokers keep theirs"
        );
        // RocketMQ counts every topic of the broker, changed or not.
        assert_eq!(r.wipe_write_perm("a"), 2);
        assert_eq!(r.wipe_write_perm("nobody"), 0);

        assert_eq!(r.add_write_perm("a"), 2);
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE);
        assert_eq!(perm_of(&r, "U", "a"), perm::READ_WRITE);
        assert_eq!(r.add_write_perm("nobody"), 0);
    }

    #[test]
    fn add_write_perm_sets_read_write_whatever_the_broker_registered() {
        let mut r = Registry::new();
        let mut read_only = reg("a", "a:1", 0, &["T"]);
        read_only.topics[0].queues.perm = perm::READ | perm::INHERIT;
        r.register(read_only, Instant::now()).unwrap();
        assert_eq!(r.wipe_write_perm("a"), 1);
        assert_eq!(perm_of(&r, "T", "a"), perm::READ | perm::INHERIT);
        assert_eq!(r.add_write_perm("a"), 1);
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE);
    }

    #[test]
    fn a_wiped_perm_holds_until_the_broker_registers_a_new_topic_table() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("a", "a:1", 0, &["T", "U"]), now).unwrap();
        r.wipe_write_perm("a");

        // The periodic re-registration of the same table keeps the operator's change...
        r.register(reg("a", "a:1", 0, &["T", "U"]), now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ);
        // ...but a topic deleted on the name server alone comes back, with the broker's perm.
        r.delete_topic("U", None);
        r.register(reg("a", "a:1", 0, &["T", "U"]), now).unwrap();
        assert_eq!(perm_of(&r, "U", "a"), perm::READ_WRITE);
        assert_eq!(perm_of(&r, "T", "a"), perm::READ);

        // A new version (a topic created or updated on the broker) is the truth again.
        let mut changed = reg("a", "a:1", 0, &["T", "U"]);
        changed.data_version = version(2);
        r.register(changed, now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE);
    }

    #[test]
    fn a_table_that_changed_under_the_same_version_is_the_truth_again() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("a", "a:1", 0, &["T"]), now).unwrap();
        r.wipe_write_perm("a");
        r.add_write_perm("a");
        // The broker itself goes read-only (brokerPermission=4) and says so in every
        // topic, with its topic table's version unchanged.
        let mut read_only = reg("a", "a:1", 0, &["T"]);
        read_only.topics[0].queues.perm = perm::READ;
        r.register(read_only.clone(), now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ);
        r.add_write_perm("a");
        r.register(read_only, now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE, "unchanged again");
        r.register(reg("a", "a:1", 0, &["T"]), now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE);
    }

    #[test]
    fn a_wiped_perm_goes_when_the_broker_registers_afresh() {
        let mut r = Registry::new();
        let now = Instant::now();
        let mut first = reg("a", "a:1", 0, &["T"]);
        first.connection_id = Some(1);
        r.register(first, now).unwrap();
        r.wipe_write_perm("a");
        // Restarted: its old connection closed, then the same table registers again.
        r.connection_closed(1);
        r.register(reg("a", "a:1", 0, &["T"]), now).unwrap();
        assert_eq!(perm_of(&r, "T", "a"), perm::READ_WRITE);
    }

    #[test]
    fn a_new_master_defines_the_queues_even_with_the_same_table_version() {
        let mut r = Registry::new();
        let now = Instant::now();
        r.register(reg("g", "m:1", 0, &["T"]), now).unwrap();
        r.register(reg("g", "s:1", 1, &["T"]), now).unwrap();
        r.wipe_write_perm("g");
        // The slave takes over as master with a copy of the same table.
        r.register(reg("g", "s:1", 0, &["T"]), now).unwrap();
        assert_eq!(perm_of(&r, "T", "g"), perm::READ_WRITE);
    }

    #[test]
    fn system_topics_are_cluster_and_broker_names_with_one_broker_address() {
        let mut r = Registry::new();
        assert_eq!(r.system_topics(), (BTreeSet::new(), None));
        let now = Instant::now();
        r.register(reg("b", "b-slave:1", 1, &["T"]), now).unwrap();
        r.register(reg("b", "b-master:1", 0, &["T"]), now).unwrap();
        let mut other = reg("x", "x:1", 0, &["T"]);
        other.cluster = "D".into();
        r.register(other, now).unwrap();
        let (names, addr) = r.system_topics();
        let expected: BTreeSet<String> = ["C", "D", "b", "x"].map(String::from).into();
        assert_eq!(names, expected);
        assert_eq!(addr.as_deref(), Some("b-master:1"));
    }
}
