//! What a push consumer is asked to do: its group and subscriptions, how it consumes, and
//! the limits and timers of its tasks. Checked once at start so that the tasks can rely on
//! every value (no zero interval, no empty subscription list).

use std::path::PathBuf;
use std::time::Duration;

use message::validate_group;
use remoting::body::{ConsumeFromWhere, MessageModel};

use crate::consumer::allocate::AllocateStrategy;
use crate::consumer::pull::MAX_PULL_BATCH;
use crate::error::{ClientError, Result};

/// How messages of one queue are handed to the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumeMode {
    /// Many messages at once, in any order; a failed message is sent back to the broker
    /// and redelivered later (after a delay) through the group's retry topic.
    #[default]
    Concurrently,
    /// One batch at a time per queue, in queue order, holding the broker's lock on the
    /// queue so no other member consumes it meanwhile. A failed batch is retried locally
    /// after `suspend_on_failure`.
    Orderly,
}

/// Push consumer settings; the defaults are Java's `DefaultMQPushConsumer`'s.
#[derive(Debug, Clone)]
pub struct PushConsumerOptions {
    pub group: String,
    /// `(topic, expression)`: `*` or tags joined by `||`.
    pub subscriptions: Vec<(String, String)>,
    /// `(topic, SQL92 expression)`, selected by the broker.
    pub sql92_subscriptions: Vec<(String, String)>,
    pub message_model: MessageModel,
    pub consume_mode: ConsumeMode,
    /// Where a group without a committed offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For `ConsumeFromTimestamp` (default: 30 minutes before start).
    pub consume_timestamp_ms: Option<i64>,
    pub allocate: AllocateStrategy,
    /// Listener calls running at once (Java `consumeThreadMax`: 20... here tasks).
    pub consume_concurrency: usize,
    /// Most messages per listener call.
    pub consume_batch_max: usize,
    /// Most messages per pull.
    pub pull_batch_size: i32,
    /// Flow control: stop pulling a queue holding this many unconsumed messages.
    pub pull_threshold_for_queue: usize,
    /// Flow control: ... or this many unconsumed body bytes.
    pub pull_threshold_bytes_for_queue: usize,
    /// Flow control for concurrent consumption: stop pulling when the buffered offsets of
    /// a queue span more than this (a stuck message holds the commit point back).
    pub max_span: i64,
    /// How long the broker may hold a pull when nothing is new.
    pub long_poll: Duration,
    /// Pause after a failed pull.
    pub pull_error_delay: Duration,
    /// Pause while a queue is flow-controlled.
    pub flow_control_delay: Duration,
    /// Rebalance at least this often (also when a broker reports a group change).
    pub rebalance_interval: Duration,
    /// Commit offsets this often.
    pub persist_offset_interval: Duration,
    /// Renew ordered-consumption queue locks this often.
    pub lock_interval: Duration,
    /// Deliveries before a message goes to the dead-letter queue. `None`: 16 for
    /// concurrent consumption, unlimited for ordered.
    pub max_reconsume_times: Option<i32>,
    /// Delay level of a failed message's redelivery; 0 lets the broker choose
    /// (3 + times already retried: 10 s, 30 s, 1 min, ...).
    pub retry_delay_level: i32,
    /// Ordered consumption: pause before retrying a failed batch.
    pub suspend_on_failure: Duration,
    /// How long `shutdown` waits for listener calls in progress.
    pub shutdown_timeout: Duration,
    /// Broadcasting: where this member keeps its offsets (in memory only when `None`).
    pub local_offset_file: Option<PathBuf>,
}

impl Default for PushConsumerOptions {
    fn default() -> Self {
        PushConsumerOptions {
            group: String::new(),
            subscriptions: Vec::new(),
            sql92_subscriptions: Vec::new(),
            message_model: MessageModel::Clustering,
            consume_mode: ConsumeMode::Concurrently,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp_ms: None,
            allocate: AllocateStrategy::Averagely,
            consume_concurrency: 20,
            consume_batch_max: 1,
            pull_batch_size: 32,
            pull_threshold_for_queue: 1000,
            pull_threshold_bytes_for_queue: 100 * 1024 * 1024,
            max_span: 2000,
            long_poll: Duration::from_secs(15),
            pull_error_delay: Duration::from_secs(3),
            flow_control_delay: Duration::from_millis(50),
            rebalance_interval: Duration::from_secs(20),
            persist_offset_interval: Duration::from_secs(5),
            lock_interval: Duration::from_secs(20),
            max_reconsume_times: None,
            retry_delay_level: 0,
            suspend_on_failure: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            local_offset_file: None,
        }
    }
}

impl PushConsumerOptions {
    pub fn new(group: impl Into<String>) -> Self {
        PushConsumerOptions {
            group: group.into(),
            ..PushConsumerOptions::default()
        }
    }

    /// Adds a subscription: `expression` is `*` or tags joined by `||`.
    pub fn subscribe(mut self, topic: impl Into<String>, expression: impl Into<String>) -> Self {
        self.subscriptions.push((topic.into(), expression.into()));
        self
    }

    /// Adds a subscription selecting by a SQL92 expression over message properties (Java's
    /// `MessageSelector.bySql`); the broker needs `enablePropertyFilter=true`.
    pub fn subscribe_sql92(
        mut self,
        topic: impl Into<String>,
        expression: impl Into<String>,
    ) -> Self {
        self.sql92_subscriptions
            .push((topic.into(), expression.into()));
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(ClientError::InvalidArgument(what));
        validate_group(&self.group)
            .map_err(|err| ClientError::InvalidArgument(format!("consumer group: {err}")))?;
        if self.subscriptions.is_empty() && self.sql92_subscriptions.is_empty() {
            return invalid("a push consumer needs at least one subscription".into());
        }
        if self.consume_concurrency == 0 || self.consume_batch_max == 0 {
            return invalid("consume_concurrency and consume_batch_max must be > 0".into());
        }
        if !(1..=MAX_PULL_BATCH).contains(&self.pull_batch_size) {
            return invalid(format!("pull_batch_size must be in 1..={}", MAX_PULL_BATCH));
        }
        if self.pull_threshold_for_queue == 0 || self.pull_threshold_bytes_for_queue == 0 {
            return invalid("pull thresholds must be > 0".into());
        }
        for interval in [
            self.rebalance_interval,
            self.persist_offset_interval,
            self.lock_interval,
            self.flow_control_delay,
        ] {
            if interval.is_zero() {
                return invalid("intervals must be > 0".into());
            }
        }
        Ok(())
    }
}
