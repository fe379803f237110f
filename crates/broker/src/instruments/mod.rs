//! The broker's Prometheus metrics, under RocketMQ 5's names and labels
//! (`metricsExporterType=PROM`, scraped on `metricsPromExporterPort`):
//! - [`BrokerMetrics`]: counters and histograms recorded where messages move (messages and
//!   bytes in and out, message sizes, dead letters, transaction ends) and every remoting
//!   request's latency;
//! - [`gauges`]: what a scrape reads from the broker's tables at that moment (topics,
//!   groups, connections, consumer lag, storage, and a broker group's raft state);
//! - [`raft`]: elections and leadership changes a broker group member sees;
//! - [`scrape`]: the endpoint that serves them all.
//!
//! With the exporter off nothing is recorded: each recording call returns at its first line.

pub mod gauges;
pub mod raft;
pub mod scrape;

use metrics::per_thread::{Buckets, PerThread, StrPair, StringPair};
use metrics::rpc::RpcLatency;
use metrics::scraped::Scraped;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// RocketMQ's buckets for message sizes: 1 KiB, 4 KiB, 512 KiB, 1, 2 and 4 MiB.
const MESSAGE_SIZE: Buckets<6> = Buckets {
    upper_bounds: [
        1024.0,
        4096.0,
        524_288.0,
        1_048_576.0,
        2_097_152.0,
        4_194_304.0,
    ],
    sum_scale: 1.0,
};
/// A topic's puts of one message kind: messages, bytes, then the size histogram's slots.
const PUT_SLOTS_PER_KIND: usize = 2 + Buckets::<6>::SLOTS;
const PUT_SLOTS: usize = PUT_SLOTS_PER_KIND * MessageKind::ALL.len();
/// A topic's messages got by a group (keyed topic, group): messages, bytes.
const GET_SLOTS: usize = 2;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PutLabels {
    topic: String,
    message_type: &'static str,
    is_system: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GetLabels {
    topic: String,
    consumer_group: String,
    is_system: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevivePutLabels {
    consumer_group: String,
    topic: String,
    revive_message_type: &'static str,
    put_status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviveGetLabels {
    consumer_group: String,
    topic: String,
    queue_id: i32,
    revive_message_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviveRetryLabels {
    consumer_group: String,
    topic: String,
    put_status: &'static str,
}

/// RocketMQ's `put_status` of a put: stored, or not (RocketMQ names the failure; here it is
/// in the log).
fn put_status(stored: bool) -> &'static str {
    if stored {
        "PUT_OK"
    } else {
        "UNKNOWN_ERROR"
    }
}

/// RocketMQ's `message_type` label values (its `TopicMessageType`, lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Normal,
    Fifo,
    Delay,
    Transaction,
}

impl MessageKind {
    const ALL: [MessageKind; 4] = [
        MessageKind::Normal,
        MessageKind::Fifo,
        MessageKind::Delay,
        MessageKind::Transaction,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// From the kind [`crate::metadata::attributes::message_type_of`] reads in properties.
    pub fn from_type_name(name: &str) -> MessageKind {
        match name {
            "FIFO" => MessageKind::Fifo,
            "DELAY" => MessageKind::Delay,
            "TRANSACTION" => MessageKind::Transaction,
            _ => MessageKind::Normal,
        }
    }

    fn label(self) -> &'static str {
        match self {
            MessageKind::Normal => "normal",
            MessageKind::Fifo => "fifo",
            MessageKind::Delay => "delay",
            MessageKind::Transaction => "transaction",
        }
    }
}

fn flag(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

/// RocketMQ leaves retry and dead-letter topics out of the in/out counters.
fn is_retry_or_dlq(topic: &str) -> bool {
    message::topic::is_retry_topic(topic) || message::topic::is_dlq_topic(topic)
}

/// The instruments recorded as messages move. What every send and pull records (puts, gets,
/// request latency) is kept per thread and summed when scraped; rarer events go straight to
/// families, whose clones share their values with a scrape's registry.
pub struct BrokerMetrics {
    enabled: bool,
    pub rpc: RpcLatency,
    pub raft: raft::RaftCounters,
    puts: PerThread<String, PUT_SLOTS>,
    gets: PerThread<StringPair, GET_SLOTS>,
    send_to_dlq: Family<GetLabels, Counter>,
    commit_messages: Family<TopicLabels, Counter>,
    rollback_messages: Family<TopicLabels, Counter>,
    timer_enqueued: Family<TopicLabels, Counter>,
    timer_dequeued: Family<TopicLabels, Counter>,
    pop_revive_in: Family<RevivePutLabels, Counter>,
    pop_revive_out: Family<ReviveGetLabels, Counter>,
    pop_revive_retry: Family<ReviveRetryLabels, Counter>,
}

impl BrokerMetrics {
    pub fn new(enabled: bool) -> BrokerMetrics {
        BrokerMetrics {
            enabled,
            rpc: RpcLatency::default(),
            raft: raft::RaftCounters::default(),
            puts: PerThread::default(),
            gets: PerThread::default(),
            send_to_dlq: Family::default(),
            commit_messages: Family::default(),
            rollback_messages: Family::default(),
            timer_enqueued: Family::default(),
            timer_dequeued: Family::default(),
            pop_revive_in: Family::default(),
            pop_revive_out: Family::default(),
            pop_revive_retry: Family::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `messages` stored in `topic` (`bytes` as written), from a producer or delivered by
    /// the broker itself (delay levels, timers, transaction commits).
    pub fn messages_put(&self, topic: &str, kind: MessageKind, messages: u64, bytes: u64) {
        if !self.enabled || messages == 0 || is_retry_or_dlq(topic) {
            return;
        }
        let at = kind.index() * PUT_SLOTS_PER_KIND;
        self.puts.update(topic, str::to_owned, |slots| {
            slots[at] += messages;
            slots[at + 1] += bytes;
            MESSAGE_SIZE.observe(slots, at + 2, bytes as f64 / messages as f64);
        });
    }

    /// `messages` of `topic` handed to consumer `group` (`bytes` as read).
    pub fn messages_got(&self, topic: &str, group: &str, messages: u64, bytes: u64) {
        if !self.enabled || messages == 0 || is_retry_or_dlq(topic) {
            return;
        }
        let key = StrPair(topic, group);
        self.gets.update(&key, StrPair::to_owned_pair, |slots| {
            slots[0] += messages;
            slots[1] += bytes;
        });
    }

    /// A message of `topic` that `group` failed too often, moved to its dead-letter queue.
    pub fn sent_to_dlq(&self, topic: &str, group: &str) {
        if !self.enabled {
            return;
        }
        let labels = GetLabels {
            topic: topic.to_owned(),
            consumer_group: group.to_owned(),
            is_system: flag(is_system(topic, group)),
        };
        self.send_to_dlq.get_or_create(&labels).inc();
    }

    /// A transaction of `topic` ended: committed or rolled back.
    pub fn transaction_ended(&self, topic: &str, committed: bool) {
        if !self.enabled {
            return;
        }
        let family = if committed {
            &self.commit_messages
        } else {
            &self.rollback_messages
        };
        family
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }

    /// A timer message for `topic` stored to wait (RocketMQ counts its timer's enqueues).
    pub fn timer_enqueued(&self, topic: &str) {
        self.count_timer(&self.timer_enqueued, topic);
    }

    /// A timer message delivered to `topic`.
    pub fn timer_dequeued(&self, topic: &str) {
        self.count_timer(&self.timer_dequeued, topic);
    }

    fn count_timer(&self, family: &Family<TopicLabels, Counter>, topic: &str) {
        if self.enabled {
            family
                .get_or_create(&TopicLabels {
                    topic: topic.to_owned(),
                })
                .inc();
        }
    }

    /// A POP record (`kind`: CK, a checkpoint; ACK, an ack) of `group` on `topic` put in
    /// the revive topic, stored or not.
    pub fn pop_revive_put(&self, group: &str, topic: &str, kind: &'static str, stored: bool) {
        if self.enabled {
            self.pop_revive_in
                .get_or_create(&RevivePutLabels {
                    consumer_group: group.to_owned(),
                    topic: topic.to_owned(),
                    revive_message_type: kind,
                    put_status: put_status(stored),
                })
                .inc();
        }
    }

    /// A POP record read back from revive queue `queue_id` into the table of checkpoints.
    pub fn pop_revive_read(&self, group: &str, topic: &str, queue_id: i32, kind: &'static str) {
        if self.enabled {
            self.pop_revive_out
                .get_or_create(&ReviveGetLabels {
                    consumer_group: group.to_owned(),
                    topic: topic.to_owned(),
                    queue_id,
                    revive_message_type: kind,
                })
                .inc();
        }
    }

    /// `messages` popped by `group` from `topic` and not acknowledged in time, put in the
    /// group's pop retry topic for redelivery, stored or not.
    pub fn pop_revive_retried(&self, group: &str, topic: &str, messages: u64, stored: bool) {
        if self.enabled && messages > 0 {
            self.pop_revive_retry
                .get_or_create(&ReviveRetryLabels {
                    consumer_group: group.to_owned(),
                    topic: topic.to_owned(),
                    put_status: put_status(stored),
                })
                .inc_by(messages);
        }
    }

    /// Adds the instruments to a scrape's registry: the per-thread series as summed now,
    /// the families shared, not copied.
    pub fn register(&self, registry: &mut Registry) {
        self.register_puts(registry);
        self.register_gets(registry);
        registry.register(
            "rocketmq_send_to_dlq_messages",
            "Consumer send to DLQ messages",
            self.send_to_dlq.clone(),
        );
        registry.register(
            "rocketmq_commit_messages",
            "Total number of commit messages",
            self.commit_messages.clone(),
        );
        registry.register(
            "rocketmq_rollback_messages",
            "Total number of rollback messages",
            self.rollback_messages.clone(),
        );
        registry.register(
            "rocketmq_timer_enqueue",
            "Total number of timer enqueue",
            self.timer_enqueued.clone(),
        );
        registry.register(
            "rocketmq_timer_dequeue",
            "Total number of timer dequeue",
            self.timer_dequeued.clone(),
        );
        registry.register(
            "rocketmq_pop_revive_in_message",
            "Total number of put message to revive topic",
            self.pop_revive_in.clone(),
        );
        registry.register(
            "rocketmq_pop_revive_out_message",
            "Total number of get message from revive topic",
            self.pop_revive_out.clone(),
        );
        registry.register(
            "rocketmq_pop_revive_retry_messages",
            "Total number of put message to pop retry topic",
            self.pop_revive_retry.clone(),
        );
        self.rpc.register(registry);
    }

    fn register_puts(&self, registry: &mut Registry) {
        let (mut messages, mut bytes, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for (topic, slots) in self.puts.sum() {
            let is_system = flag(message::topic::is_system_topic(&topic));
            for kind in MessageKind::ALL {
                let at = kind.index() * PUT_SLOTS_PER_KIND;
                if slots[at] == 0 {
                    continue;
                }
                let labels = PutLabels {
                    topic: topic.clone(),
                    message_type: kind.label(),
                    is_system,
                };
                messages.push((labels.clone(), slots[at]));
                bytes.push((labels.clone(), slots[at + 1]));
                sizes.push((labels, MESSAGE_SIZE.read(&slots, at + 2)));
            }
        }
        Scraped::register(
            registry,
            "rocketmq_messages_in",
            "Total number of incoming messages",
            messages,
        );
        Scraped::register(
            registry,
            "rocketmq_throughput_in",
            "Total traffic of incoming messages",
            bytes,
        );
        Scraped::register(
            registry,
            "rocketmq_message_size",
            "Incoming messages size",
            sizes,
        );
    }

    fn register_gets(&self, registry: &mut Registry) {
        let (mut messages, mut bytes) = (Vec::new(), Vec::new());
        for (StringPair(topic, group), slots) in self.gets.sum() {
            let labels = GetLabels {
                is_system: flag(is_system(&topic, &group)),
                topic,
                consumer_group: group,
            };
            messages.push((labels.clone(), slots[0]));
            bytes.push((labels, slots[1]));
        }
        Scraped::register(
            registry,
            "rocketmq_messages_out",
            "Total number of outgoing messages",
            messages,
        );
        Scraped::register(
            registry,
            "rocketmq_throughput_out",
            "Total traffic of outgoing messages",
            bytes,
        );
    }
}

/// RocketMQ's `is_system`: a system topic or a system consumer group.
fn is_system(topic: &str, group: &str) -> bool {
    message::topic::is_system_topic(topic) || message::topic::is_system_group(group)
}
