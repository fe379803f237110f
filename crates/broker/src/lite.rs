//! Lite topics (RocketMQ 5.5): many small topics under one `LITE` parent, each stored in a
//! queue of its own (an LMQ, see `message::topic::lmq_name`) and consumed in order by the
//! clients of a group that subscribed it (a LitePushConsumer names its lite topics one by
//! one, over gRPC's SyncLiteSubscription).
//!
//! This is the registry of those subscriptions, kept in memory as RocketMQ keeps it. Each
//! change is a metadata op ([`LiteOp`]): in a broker group it goes through the raft log and
//! every member applies it, so a new master serves the clients' lite topics at once after a
//! failover. After a restart the clients' next full sync (every 30 s) fills it again. A
//! client whose set has not been sent for [`EXPIRY_MS`] (by the ops' clock) is dropped.
//! Each client has a [`Notify`] that an arrival in one of its lite topics, or a change of
//! its set, wakes: its waiting pop then looks again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use message::topic::{lmq_name, LMQ_PREFIX};
use parking_lot::Mutex;
use remoting::body::lite::{LiteSubscriptionAction, LiteSubscriptionDto};
use tokio::sync::Notify;

/// How many lite topics a client may subscribe unless its group's `lite.sub.client.quota`
/// says otherwise (RocketMQ's default); the client checks it itself, from its settings.
pub const CLIENT_QUOTA: i32 = 2000;
/// What a client may name beyond its quota before the broker refuses (RocketMQ's proxy's
/// margin for sets that cross on the wire).
const CLIENT_QUOTA_MARGIN: usize = 300;
/// Most subscriptions (client, lite topic) the broker keeps (`maxLiteSubscriptionCount`).
pub const MAX_SUBSCRIPTIONS: usize = 100_000;
/// Most clients known at once, subscribed or only popping.
const MAX_CLIENTS: usize = 100_000;
/// A client whose set has not been sent for this long is gone
/// (`liteSubscriptionCheckTimeoutMills`).
pub const EXPIRY_MS: i64 = 180_000;
/// How often expired clients are looked for, at most.
const SWEEP_EVERY_MS: i64 = 10_000;
/// A COMPLETE_ADD keeps what a PARTIAL_ADD added this recently: the client may have sent the
/// partial one after the complete one, and calls overtake each other on the way (Node.js's
/// client sends its first, empty, COMPLETE_ADD as its first subscriptions go out).
const OVERTAKEN_MS: i64 = 5_000;

/// One change a client sent, and when the master took it: the clock expiry reads, the same
/// on every member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiteOp {
    pub change: LiteSubscriptionDto,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteRefusal {
    #[error("client {client} would subscribe {asked} lite topics; its quota is {quota}")]
    ClientQuota {
        client: String,
        asked: usize,
        quota: usize,
    },
    #[error("the broker keeps at most {MAX_SUBSCRIPTIONS} lite subscriptions")]
    BrokerQuota,
}

impl LiteRefusal {
    /// The limit it ran into.
    pub fn limit(&self) -> usize {
        match self {
            LiteRefusal::ClientQuota { quota, .. } => quota.saturating_add(CLIENT_QUOTA_MARGIN),
            LiteRefusal::BrokerQuota => MAX_SUBSCRIPTIONS,
        }
    }
}

struct Client {
    group: String,
    topic: String,
    /// Each LMQ, with when it was added.
    lmqs: BTreeMap<String, i64>,
    updated_ms: i64,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    clients: HashMap<String, Client>,
    /// LMQ → the clients that subscribed it.
    subscribers: HashMap<String, HashSet<String>>,
    subscriptions: usize,
    swept_ms: i64,
}

#[derive(Default)]
pub struct LiteSubscriptions {
    table: Mutex<Table>,
}

impl LiteSubscriptions {
    /// Applies one change a client sent; returns the LMQs it newly subscribed. `quota`: how
    /// many lite topics the client may have (`None`: no limit).
    pub fn apply(
        &self,
        change: &LiteSubscriptionDto,
        quota: Option<usize>,
        now_ms: i64,
    ) -> Result<Vec<String>, LiteRefusal> {
        let mut table = self.table.lock();
        table.sweep(now_ms);
        let named: BTreeMap<String, i64> = change
            .lite_topic_set
            .iter()
            .map(|lite| (lmq_name(&change.topic, lite), now_ms))
            .collect();
        let client_id = change.client_id.as_str();
        let current = table
            .clients
            .get(client_id)
            .filter(|c| c.group == change.group && c.topic == change.topic)
            .map(|c| c.lmqs.clone())
            .unwrap_or_default();
        let mut wanted = current.clone();
        match change.action {
            LiteSubscriptionAction::PartialAdd => {
                for (lmq, added_ms) in named {
                    wanted.entry(lmq).or_insert(added_ms);
                }
            }
            LiteSubscriptionAction::PartialRemove => {
                wanted.retain(|lmq, _| !named.contains_key(lmq))
            }
            LiteSubscriptionAction::CompleteAdd => {
                wanted.retain(|lmq, added_ms| {
                    named.contains_key(lmq) || now_ms - *added_ms < OVERTAKEN_MS
                });
                for (lmq, added_ms) in named {
                    wanted.entry(lmq).or_insert(added_ms);
                }
            }
            LiteSubscriptionAction::CompleteRemove => {
                table.remove(client_id);
                return Ok(Vec::new());
            }
        }
        if let Some(quota) = quota.filter(|q| wanted.len() > q.saturating_add(CLIENT_QUOTA_MARGIN))
        {
            return Err(LiteRefusal::ClientQuota {
                client: client_id.to_owned(),
                asked: wanted.len(),
                quota,
            });
        }
        let held = table.clients.get(client_id).map_or(0, |c| c.lmqs.len());
        if table.subscriptions - held + wanted.len() > MAX_SUBSCRIPTIONS {
            return Err(LiteRefusal::BrokerQuota);
        }
        let added: Vec<String> = wanted
            .keys()
            .filter(|lmq| !current.contains_key(*lmq))
            .cloned()
            .collect();
        let wake = table
            .remove(client_id)
            .unwrap_or_else(|| Arc::new(Notify::new()));
        if !table.clients.contains_key(client_id) && table.clients.len() >= MAX_CLIENTS {
            return Err(LiteRefusal::BrokerQuota);
        }
        table.insert(
            client_id,
            Client {
                group: change.group.clone(),
                topic: change.topic.clone(),
                lmqs: wanted,
                updated_ms: now_ms,
                wake: Arc::clone(&wake),
            },
        );
        tracing::debug!(client = client_id, action = ?change.action, added = added.len(),
            subscribed = table.clients.get(client_id).map_or(0, |c| c.lmqs.len()),
            "lite subscription changed");
        if !added.is_empty() {
            wake.notify_waiters();
        }
        Ok(added)
    }

    /// What wakes a pop of `client_id` (of `group` on `topic`) waiting for its lite topics:
    /// a client not subscribed yet is remembered with an empty set, so that its first
    /// subscription wakes it.
    pub fn attach(&self, client_id: &str, group: &str, topic: &str, now_ms: i64) -> Arc<Notify> {
        let mut table = self.table.lock();
        if let Some(client) = table.clients.get(client_id) {
            return Arc::clone(&client.wake);
        }
        let wake = Arc::new(Notify::new());
        if table.clients.len() < MAX_CLIENTS {
            table.insert(
                client_id,
                Client {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    lmqs: BTreeMap::new(),
                    updated_ms: now_ms,
                    wake: Arc::clone(&wake),
                },
            );
        }
        wake
    }

    /// The LMQs `client_id` consumes for `group` on `topic`.
    pub fn lmqs(&self, client_id: &str, group: &str, topic: &str) -> Vec<String> {
        self.table
            .lock()
            .clients
            .get(client_id)
            .filter(|c| c.group == group && c.topic == topic)
            .map(|c| c.lmqs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Messages became readable in `topic`: wake the pops of the clients subscribed to it,
    /// when it is an LMQ.
    pub fn on_arrival(&self, topic: &str) {
        if !topic.starts_with(LMQ_PREFIX) {
            return;
        }
        let table = self.table.lock();
        for client in table.subscribers.get(topic).into_iter().flatten() {
            if let Some(client) = table.clients.get(client) {
                client.wake.notify_waiters();
            }
        }
    }

    /// How many clients subscribed `lmq`.
    #[cfg(test)]
    pub fn subscribers(&self, lmq: &str) -> usize {
        self.table
            .lock()
            .subscribers
            .get(lmq)
            .map_or(0, HashSet::len)
    }
}

impl Table {
    fn insert(&mut self, client_id: &str, client: Client) {
        for lmq in client.lmqs.keys() {
            self.subscribers
                .entry(lmq.clone())
                .or_default()
                .insert(client_id.to_owned());
        }
        self.subscriptions += client.lmqs.len();
        self.clients.insert(client_id.to_owned(), client);
    }

    /// Forgets a client; returns what woke it.
    fn remove(&mut self, client_id: &str) -> Option<Arc<Notify>> {
        let client = self.clients.remove(client_id)?;
        for lmq in client.lmqs.keys() {
            if let Some(clients) = self.subscribers.get_mut(lmq) {
                clients.remove(client_id);
                if clients.is_empty() {
                    self.subscribers.remove(lmq);
                }
            }
        }
        self.subscriptions -= client.lmqs.len();
        Some(client.wake)
    }

    fn sweep(&mut self, now_ms: i64) {
        if now_ms - self.swept_ms < SWEEP_EVERY_MS {
            return;
        }
        self.swept_ms = now_ms;
        let expired: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, c)| now_ms - c.updated_ms > EXPIRY_MS)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Option<usize> = Some(CLIENT_QUOTA as usize);

    fn change(action: LiteSubscriptionAction, client: &str, lites: &[&str]) -> LiteSubscriptionDto {
        LiteSubscriptionDto {
            action,
            client_id: client.into(),
            group: "g".into(),
            topic: "P".into(),
            lite_topic_set: lites.iter().map(|l| l.to_string()).collect(),
            version: 0,
            offset_option: None,
        }
    }

    #[test]
    fn partial_and_complete_changes_make_the_clients_set() {
        use LiteSubscriptionAction::*;
        let subs = LiteSubscriptions::default();
        let added = subs
            .apply(&change(PartialAdd, "c1", &["a", "b"]), QUOTA, 0)
            .unwrap();
        assert_eq!(added, vec!["%LMQ%$P$a", "%LMQ%$P$b"]);
        assert_eq!(
            subs.apply(&change(PartialAdd, "c1", &["a"]), QUOTA, 0)
                .unwrap(),
            Vec::<String>::new()
        );
        subs.apply(&change(PartialRemove, "c1", &["a"]), QUOTA, 0)
            .unwrap();
        assert_eq!(subs.lmqs("c1", "g", "P"), vec!["%LMQ%$P$b"]);
        assert!(subs.lmqs("c1", "other", "P").is_empty());
        subs.apply(&change(CompleteAdd, "c1", &["c", "d"]), QUOTA, OVERTAKEN_MS)
            .unwrap();
        assert_eq!(subs.lmqs("c1", "g", "P"), vec!["%LMQ%$P$c", "%LMQ%$P$d"]);
        assert_eq!(subs.subscribers("%LMQ%$P$b"), 0);
        subs.apply(&change(PartialAdd, "c2", &["c"]), QUOTA, 0)
            .unwrap();
        assert_eq!(subs.subscribers("%LMQ%$P$c"), 2);
        subs.apply(&change(CompleteRemove, "c1", &[]), QUOTA, 0)
            .unwrap();
        assert_eq!(subs.subscribers("%LMQ%$P$c"), 1);
        assert!(subs.lmqs("c1", "g", "P").is_empty());
    }

    #[test]
    fn a_complete_set_keeps_what_a_partial_add_just_added() {
        use LiteSubscriptionAction::*;
        let subs = LiteSubscriptions::default();
        // Sent empty, then L0 added; the add arrived first.
        subs.apply(&change(PartialAdd, "c1", &["L0"]), QUOTA, 1_000)
            .unwrap();
        subs.apply(&change(CompleteAdd, "c1", &[]), QUOTA, 1_001)
            .unwrap();
        assert_eq!(subs.lmqs("c1", "g", "P"), vec!["%LMQ%$P$L0"]);
        // The next complete set, well after, is the whole truth.
        subs.apply(&change(CompleteAdd, "c1", &[]), QUOTA, 1_000 + OVERTAKEN_MS)
            .unwrap();
        assert!(subs.lmqs("c1", "g", "P").is_empty());
    }

    #[test]
    fn a_set_past_the_quota_is_refused_and_the_old_one_kept() {
        use LiteSubscriptionAction::*;
        let subs = LiteSubscriptions::default();
        subs.apply(&change(PartialAdd, "c1", &["a"]), QUOTA, 0)
            .unwrap();
        let names: Vec<String> = (0..CLIENT_QUOTA as usize + CLIENT_QUOTA_MARGIN + 1)
            .map(|i| format!("t{i}"))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let refused = subs.apply(&change(CompleteAdd, "c1", &names), QUOTA, 0);
        assert!(
            matches!(refused, Err(LiteRefusal::ClientQuota { .. })),
            "{refused:?}"
        );
        assert_eq!(subs.lmqs("c1", "g", "P"), vec!["%LMQ%$P$a"]);
    }

    #[test]
    fn clients_that_stop_syncing_are_dropped() {
        use LiteSubscriptionAction::*;
        let subs = LiteSubscriptions::default();
        subs.apply(&change(PartialAdd, "old", &["a"]), QUOTA, 0)
            .unwrap();
        subs.apply(&change(PartialAdd, "live", &["a"]), QUOTA, EXPIRY_MS)
            .unwrap();
        subs.apply(
            &change(CompleteAdd, "live", &["a"]),
            QUOTA,
            EXPIRY_MS + SWEEP_EVERY_MS + 1,
        )
        .unwrap();
        assert!(subs.lmqs("old", "g", "P").is_empty());
        assert_eq!(subs.subscribers("%LMQ%$P$a"), 1);
    }

    #[tokio::test]
    async fn an_arrival_or_a_new_subscription_wakes_the_clients_pop() {
        use LiteSubscriptionAction::*;
        let subs = LiteSubscriptions::default();
        let wake = subs.attach("c1", "g", "P", 0);
        let woken = wake.notified();
        subs.apply(&change(PartialAdd, "c1", &["a"]), QUOTA, 0)
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), woken)
            .await
            .unwrap();
        let woken = wake.notified();
        subs.on_arrival("%LMQ%$P$other");
        subs.on_arrival("%LMQ%$P$a");
        tokio::time::timeout(std::time::Duration::from_secs(1), woken)
            .await
            .unwrap();
    }
}
