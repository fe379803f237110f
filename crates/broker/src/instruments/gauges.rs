//! What a scrape reads from the broker at that moment, as gauges under RocketMQ 5's names
//! (`rocketmq_topic_number`, `rocketmq_consumer_lag_messages`, `rocketmq_storage_size`,
//! ...), plus a broker group member's raft state (`rocketmq_raft_*`, this project's own).

use std::collections::HashMap;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use remoting::body::ConsumeType;

use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::group::status::{self, GroupStatusBody};

type Labels = Vec<(&'static str, String)>;

/// Gauges with labels, filled once per scrape.
struct GaugeSet {
    family: Family<Labels, Gauge>,
}

impl GaugeSet {
    fn new() -> Self {
        GaugeSet {
            family: Family::default(),
        }
    }

    fn set(&self, labels: Labels, value: i64) {
        self.family.get_or_create(&labels).set(value);
    }

    fn add(&self, labels: Labels, value: i64) {
        self.family.get_or_create(&labels).inc_by(value);
    }

    fn register(self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.family);
    }
}

fn single(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let set = GaugeSet::new();
    set.set(Vec::new(), value);
    set.register(registry, name, help);
}

fn flag(value: bool) -> String {
    value.to_string()
}

/// Adds every gauge of this moment to `registry`.
pub async fn collect(ctx: &BrokerContext, registry: &mut Registry) {
    single(
        registry,
        "rocketmq_broker_permission",
        "Broker permission",
        i64::from(ctx.live.broker_permission()),
    );
    single(
        registry,
        "rocketmq_topic_number",
        "Active topic number",
        ctx.topics.len() as i64,
    );
    single(
        registry,
        "rocketmq_consumer_group_number",
        "Active subscription group number",
        ctx.groups.len() as i64,
    );
    connections(ctx, registry);
    consumer_lag(ctx, registry);
    pop(ctx, registry);
    half_messages(ctx, registry);
    timer(ctx, registry);
    timing(ctx, registry);
    storage(ctx, registry);
    if let Some(member) = ctx.group.as_deref() {
        let identity = status::MemberIdentity {
            broker_name: &ctx.config.broker_name,
            broker_addr: &ctx.broker_addr,
            broker_id: ctx.role.broker_id(),
        };
        if let Some(body) = status::group_status(identity, member).await {
            raft_state(&body, registry);
        }
    }
}

fn consume_mode(consume_type: ConsumeType) -> &'static str {
    match consume_type {
        ConsumeType::ConsumeActively => "pull",
        ConsumeType::ConsumePassively => "push",
        ConsumeType::ConsumePop => "pop",
    }
}

fn connections(ctx: &BrokerContext, registry: &mut Registry) {
    let producers = GaugeSet::new();
    for channel in ctx.producers.distinct_channels() {
        producers.add(
            vec![
                ("language", channel.language.name().to_ascii_lowercase()),
                (
                    "version",
                    remoting::command::version::desc(channel.version).to_ascii_lowercase(),
                ),
                ("protocol_type", "remoting".to_owned()),
            ],
            1,
        );
    }
    producers.register(
        registry,
        "rocketmq_producer_connections",
        "Producer connections",
    );
    let consumers = GaugeSet::new();
    for (group, consume_type, channel) in ctx.consumers.channels() {
        let is_system = flag(message::topic::is_system_group(&group));
        consumers.add(
            vec![
                ("consumer_group", group),
                ("language", channel.language.name().to_ascii_lowercase()),
                (
                    "version",
                    remoting::command::version::desc(channel.version).to_ascii_lowercase(),
                ),
                ("consume_mode", consume_mode(consume_type).to_owned()),
                ("protocol_type", "remoting".to_owned()),
                ("is_system", is_system),
            ],
            1,
        );
    }
    consumers.register(
        registry,
        "rocketmq_consumer_connections",
        "Consumer connections",
    );
}

/// Per topic and consumer group, from the committed offsets: messages not yet consumed
/// (`lag`), how long the oldest of them has waited (`lag_latency`), and messages popped but
/// not yet acknowledged (`inflight`; a pull consumer's are not known to the broker, as its
/// pulled offset is not reported) with the rest `ready`.
fn consumer_lag(ctx: &BrokerContext, registry: &mut Registry) {
    let lag_messages = GaugeSet::new();
    let lag_latency = GaugeSet::new();
    let inflight = GaugeSet::new();
    let ready = GaugeSet::new();
    let popped = popped_unacked(ctx);
    let now = now_ms();
    let reader = ctx.store.reader();
    for (topic, group, committed) in ctx.offsets.all() {
        let Some(config) = ctx.topics.get(&topic) else {
            continue;
        };
        let mut lag = 0i64;
        let mut oldest_waiting: Option<i64> = None;
        for queue_id in 0..config.read_queue_nums.max(0) {
            let max = reader.max_offset(&topic, queue_id);
            let consumed = committed.get(&queue_id).copied().unwrap_or(0).max(0);
            if consumed >= max {
                continue;
            }
            lag += max - consumed;
            if let Some(stored_at) = reader.message_store_time(&topic, queue_id, consumed) {
                oldest_waiting = Some(oldest_waiting.map_or(stored_at, |o| o.min(stored_at)));
            }
        }
        let in_flight = popped
            .get(&(group.clone(), topic.clone()))
            .copied()
            .unwrap_or(0);
        let labels = vec![
            ("topic", topic.clone()),
            ("consumer_group", group.clone()),
            ("is_retry", flag(message::topic::is_retry_topic(&topic))),
            (
                "is_system",
                flag(
                    message::topic::is_system_topic(&topic)
                        || message::topic::is_system_group(&group),
                ),
            ),
        ];
        lag_messages.set(labels.clone(), lag);
        lag_latency.set(
            labels.clone(),
            oldest_waiting.map_or(0, |stored_at| (now - stored_at).max(0)),
        );
        inflight.set(labels.clone(), in_flight);
        ready.set(labels, (lag - in_flight).max(0));
    }
    lag_messages.register(
        registry,
        "rocketmq_consumer_lag_messages",
        "Consumer lag messages",
    );
    lag_latency.register(
        registry,
        "rocketmq_consumer_lag_latency",
        "Consumer lag time, in milliseconds",
    );
    inflight.register(
        registry,
        "rocketmq_consumer_inflight_messages",
        "Consumer inflight messages",
    );
    ready.register(
        registry,
        "rocketmq_consumer_ready_messages",
        "Consumer ready messages",
    );
}

/// Popped, unacknowledged messages per (group, topic).
fn popped_unacked(ctx: &BrokerContext) -> HashMap<(String, String), i64> {
    let mut counts = HashMap::new();
    for (key, unacked) in ctx.pop.ledger.lock().unacked_by_checkpoint() {
        *counts
            .entry((key.group.clone(), key.topic.clone()))
            .or_insert(0) += unacked as i64;
    }
    for ((group, topic, _), unacked) in ctx.pop.order.lock().unacked_by_queue() {
        *counts.entry((group.clone(), topic.clone())).or_insert(0) += unacked as i64;
    }
    counts
}

/// The POP engine: open checkpoints (RocketMQ's `rocketmq_pop_checkpoint_buffer_size`
/// counts those it buffers in memory; here every open one is in memory), and how far the
/// reading of the revive queue is behind, in records and in milliseconds since the oldest
/// unread one was stored.
fn pop(ctx: &BrokerContext, registry: &mut Registry) {
    let (open, read_below) = {
        let ledger = ctx.pop.ledger.lock();
        (ledger.open_count(), ledger.read_below())
    };
    single(
        registry,
        "rocketmq_pop_checkpoint_buffer_size",
        "The number of buffered checkpoint",
        open as i64,
    );
    let reader = ctx.store.reader();
    let topic = &ctx.pop.revive_topic;
    let queue = crate::pop::REVIVE_QUEUE;
    let unread_from = read_below.max(reader.min_offset(topic, queue));
    let behind = (reader.max_offset(topic, queue) - unread_from).max(0);
    let behind_ms = if behind > 0 {
        reader
            .message_store_time(topic, queue, unread_from)
            .map_or(0, |stored_at| (now_ms() - stored_at).max(0))
    } else {
        0
    };
    let labels = || vec![("queue_id", queue.to_string())];
    let lag = GaugeSet::new();
    lag.set(labels(), behind);
    lag.register(
        registry,
        "rocketmq_pop_revive_lag",
        "The processing lag of revive topic",
    );
    let latency = GaugeSet::new();
    latency.set(labels(), behind_ms);
    latency.register(
        registry,
        "rocketmq_pop_revive_latency",
        "The processing latency of revive topic",
    );
}

/// The timer (RocketMQ's timer gauges, with timerWheelEnable): messages waiting to enter
/// this member's wheel and how long the oldest of them has waited; on the master that
/// delivers, messages whose time came and that are not delivered yet, and how long since
/// the oldest slot not wholly delivered came due.
fn timer(ctx: &BrokerContext, registry: &mut Registry) {
    use std::sync::atomic::Ordering::Relaxed;
    if !ctx.timer.enabled {
        return;
    }
    let topic = crate::timer::TIMER_TOPIC;
    let queue = crate::timer::MESSAGE_QUEUE;
    let status = &ctx.timer_status;
    let reader = ctx.store.reader();
    let enqueued_below = status
        .enqueued_below
        .load(Relaxed)
        .max(reader.min_offset(topic, queue));
    let enqueue_lag = (reader.max_offset(topic, queue) - enqueued_below).max(0);
    let enqueue_latency = if enqueue_lag > 0 {
        reader
            .message_store_time(topic, queue, enqueued_below)
            .map_or(0, |stored_at| (now_ms() - stored_at).max(0))
    } else {
        0
    };
    single(
        registry,
        "rocketmq_timer_enqueue_lag",
        "Timer enqueue messages lag",
        enqueue_lag,
    );
    single(
        registry,
        "rocketmq_timer_enqueue_latency",
        "Timer enqueue latency",
        enqueue_latency,
    );
    let undelivered_slot = status.undelivered_slot_ms.load(Relaxed);
    if undelivered_slot == i64::MIN {
        return;
    }
    let due = status.due_undelivered.load(Relaxed);
    single(
        registry,
        "rocketmq_timer_dequeue_lag",
        "Timer dequeue messages lag",
        due,
    );
    single(
        registry,
        "rocketmq_timer_dequeue_latency",
        "Timer dequeue latency",
        if due > 0 {
            (now_ms() - undelivered_slot).max(0)
        } else {
            0
        },
    );
}

/// Queue entries a scrape reads at most to count the records of one queue.
const MAX_SCANNED: usize = 100_000;

/// Reads queue `queue` of `topic` from `from` to its end ([`MAX_SCANNED`] entries at
/// most), handing each record that parses, with its queue offset, to `visit`.
fn scan_queue(
    reader: &store::StoreReader,
    topic: &str,
    queue: i32,
    mut from: i64,
    mut visit: impl FnMut(i64, &message::MessageView<'_>),
) {
    let max = reader.max_offset(topic, queue);
    from = from.max(reader.min_offset(topic, queue));
    let mut scanned = 0;
    while from < max && scanned < MAX_SCANNED {
        let read = reader.get_messages(topic, queue, from, 256, None, &store::AcceptAll);
        if read.next_begin_offset <= from {
            break;
        }
        for (record, &offset) in read.messages.iter().zip(&read.queue_offsets) {
            if let Ok(view) = message::MessageView::parse(record) {
                visit(offset, &view);
            }
        }
        scanned += (read.next_begin_offset - from) as usize;
        from = read.next_begin_offset;
    }
}

/// Counts records by the topic they will reach (`REAL_TOPIC`), as a gauge labelled `topic`.
struct ByRealTopic(HashMap<String, i64>);

impl ByRealTopic {
    fn count(&mut self, view: &message::MessageView<'_>) {
        if let Some(topic) = view.property(message::properties::keys::REAL_TOPIC) {
            *self.0.entry(topic.to_owned()).or_insert(0) += 1;
        }
    }

    fn register(self, registry: &mut Registry, name: &str, help: &str) {
        let gauge = GaugeSet::new();
        for (topic, count) in self.0 {
            gauge.set(vec![("topic", topic)], count);
        }
        gauge.register(registry, name, help);
    }
}

/// The timer's waiting messages: by the topic they will reach (RocketMQ's
/// `rocketmq_timing_messages`), from the timer queue's entries whose slot (`TIMER_OUT_MS`)
/// is not delivered yet (a recalled message counts until its time); and by how soon they
/// are due (`rocketmq_timer_message_snapshot`, labelled `timer_bound_s`), as the timer
/// loop last counted its wheel. Counted from the log and the wheel rather than kept as
/// counters, so a new master reports what it holds.
fn timing(ctx: &BrokerContext, registry: &mut Registry) {
    use crate::timer::{MESSAGE_QUEUE, SNAPSHOT_BOUNDS_S, TIMER_TOPIC};
    use std::sync::atomic::Ordering::Relaxed;
    if !ctx.timer.enabled {
        return;
    }
    let status = &ctx.timer_status;
    let snapshot = GaugeSet::new();
    for (bound, count) in SNAPSHOT_BOUNDS_S.iter().zip(&status.snapshot) {
        snapshot.set(
            vec![("timer_bound_s", bound.to_string())],
            count.load(Relaxed),
        );
    }
    snapshot.register(
        registry,
        "rocketmq_timer_message_snapshot",
        "Timer message distribution snapshot, only count timing messages in 24h.",
    );
    let delivered_below = status.delivered_below_ms.load(Relaxed);
    let mut timing = ByRealTopic(HashMap::new());
    let from = status.waiting_from.load(Relaxed);
    scan_queue(
        ctx.store.reader(),
        TIMER_TOPIC,
        MESSAGE_QUEUE,
        from,
        |_, view| {
            let slot = view
                .property(message::properties::keys::TIMER_OUT_MS)
                .and_then(|slot| slot.parse::<i64>().ok());
            if slot.is_some_and(|slot| slot >= delivered_below) {
                timing.count(view);
            }
        },
    );
    timing.register(
        registry,
        "rocketmq_timing_messages",
        "Current message number in timing",
    );
}

/// Open transactions by the topic they will reach (RocketMQ's `rocketmq_half_messages`),
/// on the member that checks them (a standalone broker, a group's master): the half queue
/// read from where open transactions start, each record the transaction table holds open
/// and not replaced by a newer copy (a checked transaction is stored again) counted once,
/// under its `REAL_TOPIC`. Counted from the records rather than kept as counters, so a new
/// master reports what the log holds, with nothing to rebuild or drift.
fn half_messages(ctx: &BrokerContext, registry: &mut Registry) {
    use crate::transaction::{bridge, mastership, TRANS_HALF_TOPIC};
    let Some(term) = mastership(ctx) else {
        return;
    };
    // A copy, so the table is not held while the store is read.
    let Some(table) = ctx.transactions.with_table(term, |table| table.clone()) else {
        return;
    };
    let mut open = ByRealTopic(HashMap::new());
    scan_queue(
        ctx.store.reader(),
        TRANS_HALF_TOPIC,
        0,
        table.low(),
        |offset, view| {
            let origin = bridge::origin_of(view, offset);
            if !table.is_finished(origin) && !table.is_superseded(offset, origin) {
                open.count(view);
            }
        },
    );
    open.register(
        registry,
        "rocketmq_half_messages",
        "Half messages of all topics",
    );
}

fn storage(ctx: &BrokerContext, registry: &mut Registry) {
    let root = &ctx.config.store.store_path_root_dir;
    if let Ok(used) = store::environment::filesystem_used_bytes(root) {
        single(
            registry,
            "rocketmq_storage_size",
            "Broker storage size, in bytes",
            i64::try_from(used).unwrap_or(i64::MAX),
        );
    }
    // Both stores: a broker group member's too, whose runtime info has no such keys.
    let backlog = ctx.store.reader().backlog();
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    single(
        registry,
        "rocketmq_storage_flush_behind_bytes",
        "Broker flush behind bytes",
        as_gauge(backlog.flush_behind_bytes),
    );
    single(
        registry,
        "rocketmq_storage_dispatch_behind_bytes",
        "Broker dispatch behind bytes",
        as_gauge(backlog.dispatch_behind_bytes),
    );
    if let Some(earliest) = ctx.store.reader().earliest_message_time_in_store() {
        single(
            registry,
            "rocketmq_storage_message_reserve_time",
            "Broker message reserve time, in milliseconds",
            (now_ms() - earliest).max(0),
        );
    }
}

/// A group member's raft state: its role (one series per role, 1 for the current one),
/// term, indexes, each follower's distance behind the leader, and whether it stopped.
fn raft_state(status: &GroupStatusBody, registry: &mut Registry) {
    let role = GaugeSet::new();
    for name in ["LEADER", "FOLLOWER", "CANDIDATE"] {
        role.set(
            vec![("role", name.to_owned())],
            i64::from(status.role == name),
        );
    }
    role.register(
        registry,
        "rocketmq_raft_role",
        "This member's raft role: 1 for the current one",
    );
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    single(
        registry,
        "rocketmq_raft_term",
        "Raft term",
        as_gauge(status.term),
    );
    single(
        registry,
        "rocketmq_raft_commit_index",
        "Highest raft index known committed",
        as_gauge(status.commit_index),
    );
    single(
        registry,
        "rocketmq_raft_applied_index",
        "Highest raft index applied (dispatched to consume queues)",
        as_gauge(status.applied_index),
    );
    single(
        registry,
        "rocketmq_raft_last_index",
        "Last raft index in this member's log",
        as_gauge(status.last_index),
    );
    let lag = GaugeSet::new();
    let contact = GaugeSet::new();
    for peer in &status.peers {
        if let Some(matched) = peer.match_index {
            lag.set(
                vec![("peer", peer.node_id.clone())],
                as_gauge(status.last_index.saturating_sub(matched)),
            );
        }
        if let Some(ms) = peer.last_contact_ms_ago {
            contact.set(vec![("peer", peer.node_id.clone())], as_gauge(ms));
        }
    }
    lag.register(
        registry,
        "rocketmq_raft_follower_lag_entries",
        "On the leader: entries each follower is behind",
    );
    contact.register(
        registry,
        "rocketmq_raft_follower_last_contact_ms",
        "On the leader: milliseconds since each follower last answered",
    );
    let stopped = GaugeSet::new();
    stopped.set(
        vec![("reason", status.stopped_reason.clone().unwrap_or_default())],
        i64::from(status.stopped_reason.is_some()),
    );
    stopped.register(
        registry,
        "rocketmq_raft_stopped",
        "1 when a storage error stopped this member following its group (reason in the label)",
    );
}
