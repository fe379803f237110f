//! The push consumer: a member of a consumer group that gets its share of the subscribed
//! queues, prefetches them with long polling and hands messages to a listener.
//!
//! Per consumer there are a few long-lived tasks (rebalance, offset persistence, lock
//! renewal for ordered consumption) and per assigned queue a pull task (plus, for ordered
//! consumption, a consume task). Every buffer is bounded: a queue stops being pulled
//! while its prefetch buffer holds `pull_threshold_for_queue` messages or
//! `pull_threshold_bytes_for_queue` bytes, and at most `consume_concurrency` listener
//! calls run at once.
//!
//! ```no_run
//! use client::{ClientOptions, PushConsumer, PushConsumerOptions};
//! use client::consumer::{ConsumeResult, ConsumeFromWhere};
//!
//! # async fn run() -> client::Result<()> {
//! let mut options = PushConsumerOptions::new("billing").subscribe("Orders", "created || paid");
//! options.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
//! let consumer = PushConsumer::start(
//!     ClientOptions::new("127.0.0.1:9876"),
//!     options,
//!     |messages: Vec<client::ReceivedMessage>| async move {
//!         for message in &messages {
//!             println!("{}: {}", message.msg_id(), message.body_text());
//!         }
//!         ConsumeResult::Success
//!     },
//! )
//! .await?;
//! // ... later
//! consumer.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use message::topic::{is_retry_topic, retry_topic};
use message::{keys, validate_group, validate_topic, TagFilter};
use parking_lot::Mutex;
use remoting::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue, SubscriptionData,
};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::allocate::AllocateStrategy;
use super::offset_store::{Backend, OffsetStore};
use super::process_queue::ProcessQueue;
use super::pull::{master_addr, PullSpec, PullStatus, Puller};
use crate::broker_api::StoredOffset;
use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{ClientInstance, ConsumerEntry};
use crate::message::ReceivedMessage;
use crate::producer::now_ms;

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

/// The listener's verdict on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed; the offset may move past these messages.
    Success,
    /// Not consumed; deliver again later (see [`ConsumeMode`] for how).
    Retry,
}

/// What consumes messages. Any `Fn(Vec<ReceivedMessage>) -> impl Future<Output =
/// ConsumeResult>` closure is one. A panic counts as [`ConsumeResult::Retry`].
pub trait MessageListener: Send + Sync + 'static {
    fn consume(&self, messages: Vec<ReceivedMessage>) -> BoxFuture<'static, ConsumeResult>;
}

impl<F, Fut> MessageListener for F
where
    F: Fn(Vec<ReceivedMessage>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ConsumeResult> + Send + 'static,
{
    fn consume(&self, messages: Vec<ReceivedMessage>) -> BoxFuture<'static, ConsumeResult> {
        Box::pin(self(messages))
    }
}

/// Push consumer settings; the defaults are Java's `DefaultMQPushConsumer`'s.
#[derive(Debug, Clone)]
pub struct PushConsumerOptions {
    pub group: String,
    /// `(topic, expression)`: `*` or tags joined by `||`.
    pub subscriptions: Vec<(String, String)>,
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

    fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(ClientError::InvalidArgument(what));
        validate_group(&self.group)
            .map_err(|err| ClientError::InvalidArgument(format!("consumer group: {err}")))?;
        if self.subscriptions.is_empty() {
            return invalid("a push consumer needs at least one subscription".into());
        }
        if self.consume_concurrency == 0 || self.consume_batch_max == 0 {
            return invalid("consume_concurrency and consume_batch_max must be > 0".into());
        }
        if !(1..=super::pull::MAX_PULL_BATCH).contains(&self.pull_batch_size) {
            return invalid(format!(
                "pull_batch_size must be in 1..={}",
                super::pull::MAX_PULL_BATCH
            ));
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

struct Subscription {
    topic: String,
    filter: TagFilter,
    data: SubscriptionData,
}

/// A consumer-group member. Dropping it stops its tasks without committing; call
/// [`shutdown`](Self::shutdown) to commit offsets and leave the group cleanly.
pub struct PushConsumer {
    inner: Arc<Inner>,
}

struct Inner {
    instance: ClientInstance,
    owns_instance: bool,
    options: PushConsumerOptions,
    listener: Arc<dyn MessageListener>,
    subscriptions: Vec<Subscription>,
    puller: Puller,
    offsets: OffsetStore,
    queues: Mutex<BTreeMap<MessageQueue, Arc<ProcessQueue>>>,
    rebalance_now: Arc<Notify>,
    rebalancing: tokio::sync::Mutex<()>,
    consume_slots: Arc<Semaphore>,
    max_reconsume_times: i32,
    stop: CancellationToken,
    closed: AtomicBool,
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        self.inner.stop.cancel();
        if self.inner.owns_instance {
            self.inner.instance.shutdown();
        }
    }
}

impl PushConsumer {
    /// Joins the group with its own client instance and starts consuming.
    pub async fn start<L: MessageListener>(
        client: ClientOptions,
        options: PushConsumerOptions,
        listener: L,
    ) -> Result<Self> {
        let instance = ClientInstance::new(client)?;
        Self::build(instance, options, Arc::new(listener), true).await
    }

    /// Joins the group on a shared client instance (one member per group per instance).
    pub async fn with_instance<L: MessageListener>(
        instance: ClientInstance,
        options: PushConsumerOptions,
        listener: L,
    ) -> Result<Self> {
        Self::build(instance, options, Arc::new(listener), false).await
    }

    async fn build(
        instance: ClientInstance,
        options: PushConsumerOptions,
        listener: Arc<dyn MessageListener>,
        owns_instance: bool,
    ) -> Result<Self> {
        options.validate()?;
        let sub_version = now_ms();
        let mut subscriptions = Vec::new();
        for (topic, expression) in &options.subscriptions {
            validate_topic(topic)
                .map_err(|err| ClientError::InvalidArgument(format!("topic `{topic}`: {err}")))?;
            subscriptions.push(subscription(topic, expression, sub_version)?);
        }
        if options.message_model == MessageModel::Clustering {
            subscriptions.push(subscription(
                &retry_topic(&options.group),
                "*",
                sub_version,
            )?);
        }
        let max_reconsume_times =
            options
                .max_reconsume_times
                .unwrap_or(match options.consume_mode {
                    ConsumeMode::Concurrently => 16,
                    ConsumeMode::Orderly => i32::MAX,
                });
        let backend = match options.message_model {
            MessageModel::Clustering => Backend::Broker {
                instance: instance.clone(),
            },
            MessageModel::Broadcasting => Backend::Local {
                file: options.local_offset_file.clone(),
            },
        };
        let rebalance_now = Arc::new(Notify::new());
        instance.register_consumer(ConsumerEntry {
            data: ConsumerData {
                group_name: options.group.clone(),
                consume_type: ConsumeType::ConsumePassively,
                message_model: options.message_model,
                consume_from_where: options.consume_from_where,
                subscription_data_set: subscriptions.iter().map(|s| s.data.clone()).collect(),
                unit_mode: false,
            },
            rebalance: Arc::clone(&rebalance_now),
        })?;
        let stop = instance.stopped().child_token();
        let inner = Arc::new(Inner {
            puller: Puller::new(instance.clone()),
            offsets: OffsetStore::new(&options.group, backend),
            consume_slots: Arc::new(Semaphore::new(options.consume_concurrency)),
            instance,
            owns_instance,
            listener,
            subscriptions,
            queues: Mutex::new(BTreeMap::new()),
            rebalance_now,
            rebalancing: tokio::sync::Mutex::new(()),
            max_reconsume_times,
            stop,
            closed: AtomicBool::new(false),
            options,
        });
        // Brokers must know this member before anyone asks them for the group's members.
        for sub in &inner.subscriptions {
            if let Err(error) = inner.instance.refresh_route(&sub.topic).await {
                debug!(topic = %sub.topic, %error, "no route yet");
            }
        }
        inner.instance.send_heartbeat_now().await;
        tokio::spawn(rebalance_loop(Arc::clone(&inner)));
        tokio::spawn(persist_loop(Arc::clone(&inner)));
        if inner.is_ordered_clustering() {
            tokio::spawn(lock_loop(Arc::clone(&inner)));
        }
        info!(group = %inner.options.group, client_id = %inner.instance.client_id(), "push consumer started");
        Ok(PushConsumer { inner })
    }

    /// The id the group knows this member by.
    pub fn client_id(&self) -> &str {
        self.inner.instance.client_id()
    }

    pub fn instance(&self) -> &ClientInstance {
        &self.inner.instance
    }

    /// The queues this member consumes right now.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.queues.lock().keys().cloned().collect()
    }

    /// Asks for a rebalance now rather than at the next interval.
    pub fn rebalance_now(&self) {
        self.inner.rebalance_now.notify_one();
    }

    /// Leaves the group cleanly: stops pulling, waits (up to `shutdown_timeout`) for
    /// listener calls in progress, commits offsets, releases ordered-consumption locks
    /// and unregisters from the brokers so the group rebalances at once.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        inner.stop.cancel();
        let _rebalance = inner.rebalancing.lock().await;
        let deadline = tokio::time::Instant::now() + inner.options.shutdown_timeout;
        let all_slots = u32::try_from(inner.options.consume_concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout_at(deadline, inner.consume_slots.acquire_many(all_slots))
            .await
            .is_err()
        {
            warn!("listener calls still running at shutdown; their offsets are not committed");
        }
        let queues: Vec<Arc<ProcessQueue>> = inner.queues.lock().values().cloned().collect();
        for pq in &queues {
            // Wait for an ordered batch in progress so its commit is persisted below.
            let _ = tokio::time::timeout_at(deadline, pq.consume_lock.lock()).await;
        }
        let assigned: Vec<MessageQueue> = queues.iter().map(|pq| pq.queue.clone()).collect();
        inner.offsets.persist_all(&assigned).await;
        if inner.is_ordered_clustering() {
            inner.unlock(&assigned).await;
        }
        for pq in &queues {
            pq.drop_queue();
        }
        inner.queues.lock().clear();
        inner.instance.unregister_consumer(&inner.options.group);
        let timeout = inner.instance.options().request_timeout;
        let calls = inner
            .instance
            .all_broker_addrs(false)
            .into_iter()
            .map(|addr| {
                let group = inner.options.group.clone();
                async move {
                    if let Err(error) = inner
                        .instance
                        .unregister_client(&addr, None, Some(&group), timeout)
                        .await
                    {
                        debug!(%addr, %error, "unregistering the consumer failed");
                    }
                }
            });
        futures::future::join_all(calls).await;
        if inner.owns_instance {
            inner.instance.shutdown();
        }
        info!(group = %inner.options.group, "push consumer stopped");
    }
}

fn subscription(topic: &str, expression: &str, sub_version: i64) -> Result<Subscription> {
    let filter = TagFilter::parse(expression)
        .map_err(|err| ClientError::InvalidArgument(format!("subscription of `{topic}`: {err}")))?;
    let data = SubscriptionData::tag(topic, expression, sub_version)
        .map_err(|err| ClientError::InvalidArgument(format!("subscription of `{topic}`: {err}")))?;
    Ok(Subscription {
        topic: topic.to_owned(),
        filter,
        data,
    })
}

impl Inner {
    fn is_clustering(&self) -> bool {
        self.options.message_model == MessageModel::Clustering
    }

    fn is_ordered_clustering(&self) -> bool {
        self.options.consume_mode == ConsumeMode::Orderly && self.is_clustering()
    }

    fn subscription_of(&self, topic: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.topic == topic)
    }

    // ---- rebalance ----------------------------------------------------------------

    async fn rebalance(self: &Arc<Self>) {
        let _one_at_a_time = self.rebalancing.lock().await;
        if self.stop.is_cancelled() {
            return;
        }
        for sub in &self.subscriptions {
            let route = match self.instance.refresh_route(&sub.topic).await {
                Ok(route) => route,
                Err(error) => {
                    // The retry topic appears only once a broker has created it.
                    debug!(topic = %sub.topic, %error, "cannot rebalance topic without a route");
                    continue;
                }
            };
            let all = &route.subscribe_queues;
            let mine = if self.is_clustering() {
                let mut members = None;
                let mut brokers: Vec<String> = route
                    .data
                    .broker_datas
                    .iter()
                    .filter_map(|b| b.master_addr().map(str::to_owned))
                    .collect();
                brokers.sort();
                for addr in &brokers {
                    match self.instance.consumer_ids(addr, &self.options.group).await {
                        Ok(ids) if !ids.is_empty() => {
                            members = Some(ids);
                            break;
                        }
                        Ok(_) => {}
                        Err(error) => debug!(%addr, %error, "consumer list unavailable"),
                    }
                }
                let Some(members) = members else {
                    debug!(topic = %sub.topic, "no broker listed the group's members");
                    continue;
                };
                self.options
                    .allocate
                    .allocate(self.instance.client_id(), all, &members)
            } else {
                all.clone()
            };
            self.apply_assignment(&sub.topic, mine).await;
        }
    }

    async fn apply_assignment(self: &Arc<Self>, topic: &str, mine: Vec<MessageQueue>) {
        let wanted: BTreeSet<MessageQueue> = mine.into_iter().collect();
        let current: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .queues
            .lock()
            .iter()
            .filter(|(q, _)| q.topic == topic)
            .map(|(q, pq)| (q.clone(), Arc::clone(pq)))
            .collect();
        for (queue, pq) in &current {
            if !wanted.contains(queue) {
                self.queues.lock().remove(queue);
                self.release_queue(pq).await;
                info!(?queue, "queue released by rebalance");
            }
        }
        for queue in wanted {
            if self.queues.lock().contains_key(&queue) || self.stop.is_cancelled() {
                continue;
            }
            let pq = Arc::new(ProcessQueue::new(queue.clone(), &self.stop));
            if self.is_ordered_clustering() && !self.lock_one(&pq).await {
                debug!(
                    ?queue,
                    "queue is locked by another member; retrying at the next rebalance"
                );
                continue;
            }
            let offset = match self.start_offset(&queue).await {
                Ok(offset) => offset,
                Err(error) => {
                    warn!(?queue, %error, "cannot find where to start; retrying at the next rebalance");
                    continue;
                }
            };
            self.offsets.update(&queue, offset, false);
            self.queues.lock().insert(queue.clone(), Arc::clone(&pq));
            info!(?queue, offset, "queue assigned");
            tokio::spawn(pull_loop(Arc::clone(self), Arc::clone(&pq), offset));
            if self.options.consume_mode == ConsumeMode::Orderly {
                tokio::spawn(consume_in_order_loop(Arc::clone(self), pq));
            }
        }
    }

    /// Stops a queue taken away by a rebalance: commit its offset, free its lock.
    async fn release_queue(self: &Arc<Self>, pq: &Arc<ProcessQueue>) {
        pq.drop_queue();
        if !self.is_ordered_clustering() {
            self.commit_released(pq).await;
            return;
        }
        // Ordered: let a batch in progress finish and commit before the offset is stored
        // and the lock freed, so the next owner starts right after it. A slow batch is
        // waited for at most one lock interval; the broker's lock expires on its own.
        let inner = Arc::clone(self);
        let pq = Arc::clone(pq);
        tokio::spawn(async move {
            let wait = inner.options.lock_interval;
            let _batch_done = tokio::time::timeout(wait, pq.consume_lock.lock()).await;
            inner.commit_released(&pq).await;
            inner.unlock(std::slice::from_ref(&pq.queue)).await;
        });
    }

    async fn commit_released(&self, pq: &ProcessQueue) {
        if let Err(error) = self.offsets.persist(&pq.queue).await {
            debug!(queue = ?pq.queue, %error, "committing a released queue's offset failed");
        }
        // Forget it only if no rebalance has handed the queue back meanwhile.
        if !self.queues.lock().contains_key(&pq.queue) {
            self.offsets.forget(&pq.queue);
            self.puller.forget(&pq.queue);
        }
    }

    /// Where consumption of a newly assigned queue starts: the committed offset, else
    /// what `consume_from_where` says.
    async fn start_offset(&self, queue: &MessageQueue) -> Result<i64> {
        if let StoredOffset::Found(offset) = self.offsets.fetch(queue).await? {
            if offset >= 0 {
                return Ok(offset);
            }
        }
        let addr = master_addr(&self.instance, queue).await?;
        let retry = is_retry_topic(&queue.topic);
        match self.options.consume_from_where {
            ConsumeFromWhere::ConsumeFromFirstOffset => {
                self.instance.min_offset(&addr, queue).await
            }
            ConsumeFromWhere::ConsumeFromTimestamp if !retry => {
                let timestamp = self
                    .options
                    .consume_timestamp_ms
                    .unwrap_or_else(|| now_ms() - 30 * 60 * 1000);
                self.instance.search_offset(&addr, queue, timestamp).await
            }
            // A retry topic only holds messages that failed for this group: take them all.
            _ if retry => Ok(0),
            _ => self.instance.max_offset(&addr, queue).await,
        }
    }

    // ---- locks for ordered consumption ----------------------------------------------

    async fn lock_one(&self, pq: &ProcessQueue) -> bool {
        let Ok(addr) = master_addr(&self.instance, &pq.queue).await else {
            return false;
        };
        let queues = BTreeSet::from([pq.queue.clone()]);
        match self
            .instance
            .lock_queues(&addr, &self.options.group, queues)
            .await
        {
            Ok(locked) => {
                let held = locked.contains(&pq.queue);
                pq.set_locked(held);
                held
            }
            Err(error) => {
                debug!(queue = ?pq.queue, %error, "lock request failed");
                false
            }
        }
    }

    async fn lock_all(&self) {
        let queues: Vec<Arc<ProcessQueue>> = self.queues.lock().values().cloned().collect();
        let mut by_broker: HashMap<String, Vec<Arc<ProcessQueue>>> = HashMap::new();
        for pq in queues {
            by_broker
                .entry(pq.queue.broker_name.clone())
                .or_default()
                .push(pq);
        }
        for (broker_name, pqs) in by_broker {
            let Some(addr) = self.instance.master_addr(&broker_name) else {
                continue;
            };
            let set: BTreeSet<MessageQueue> = pqs.iter().map(|pq| pq.queue.clone()).collect();
            match self
                .instance
                .lock_queues(&addr, &self.options.group, set)
                .await
            {
                Ok(locked) => {
                    for pq in &pqs {
                        pq.set_locked(locked.contains(&pq.queue));
                    }
                }
                Err(error) => debug!(%addr, %error, "lock renewal failed"),
            }
        }
    }

    async fn unlock(&self, queues: &[MessageQueue]) {
        let mut by_broker: HashMap<&str, BTreeSet<MessageQueue>> = HashMap::new();
        for queue in queues {
            by_broker
                .entry(&queue.broker_name)
                .or_default()
                .insert(queue.clone());
        }
        for (broker_name, set) in by_broker {
            let Some(addr) = self.instance.master_addr(broker_name) else {
                continue;
            };
            if let Err(error) = self
                .instance
                .unlock_queues(&addr, &self.options.group, set)
                .await
            {
                debug!(%addr, %error, "unlock failed; the broker's lock expires on its own");
            }
        }
    }

    // ---- consumption --------------------------------------------------------------

    async fn call_listener(&self, batch: Vec<ReceivedMessage>) -> ConsumeResult {
        match AssertUnwindSafe(self.listener.consume(batch))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => {
                warn!("message listener panicked; the batch will be retried");
                ConsumeResult::Retry
            }
        }
    }

    /// Hands a failed message back to the broker for a later retry (or the DLQ).
    async fn send_back(&self, message: &ReceivedMessage, delay_level: i32) -> Result<()> {
        let addr = master_addr(&self.instance, &message.queue).await?;
        self.instance
            .send_back(
                &addr,
                &self.options.group,
                message.commit_log_offset,
                delay_level,
                message.msg_id(),
                &message.topic,
                self.max_reconsume_times,
            )
            .await
    }
}

async fn rebalance_loop(inner: Arc<Inner>) {
    loop {
        inner.rebalance().await;
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(inner.options.rebalance_interval) => {}
            _ = inner.rebalance_now.notified() => {}
        }
    }
}

async fn persist_loop(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(inner.options.persist_offset_interval) => {}
        }
        let queues: Vec<MessageQueue> = inner.queues.lock().keys().cloned().collect();
        inner.offsets.persist_all(&queues).await;
    }
}

async fn lock_loop(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(inner.options.lock_interval) => {}
        }
        inner.lock_all().await;
    }
}

/// Sleeps unless `cancel` fires first; returns whether it was cancelled.
async fn pause(cancel: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

async fn pull_loop(inner: Arc<Inner>, pq: Arc<ProcessQueue>, mut offset: i64) {
    let Some(sub) = inner.subscription_of(&pq.queue.topic) else {
        return;
    };
    let own_retry_topic = retry_topic(&inner.options.group);
    let options = &inner.options;
    loop {
        if pq.is_dropped() || pq.cancel.is_cancelled() {
            return;
        }
        let over_count = pq.count() >= options.pull_threshold_for_queue;
        let over_bytes = pq.bytes() >= options.pull_threshold_bytes_for_queue;
        let over_span =
            options.consume_mode == ConsumeMode::Concurrently && pq.span() > options.max_span;
        if over_count || over_bytes || over_span {
            if pause(&pq.cancel, options.flow_control_delay).await {
                return;
            }
            continue;
        }
        if inner.is_ordered_clustering() && !pq.holds_lock() {
            if !inner.lock_one(&pq).await && pause(&pq.cancel, options.pull_error_delay).await {
                return;
            }
            continue;
        }
        let commit_offset = if inner.is_clustering() {
            inner.offsets.in_memory(&pq.queue).filter(|o| *o > 0)
        } else {
            None
        };
        let pull = inner.puller.pull(PullSpec {
            group: &options.group,
            queue: &pq.queue,
            filter: &sub.filter,
            sub_version: sub.data.sub_version,
            offset,
            max_nums: options.pull_batch_size,
            commit_offset,
            suspend: Some(options.long_poll),
        });
        let result = tokio::select! {
            _ = pq.cancel.cancelled() => return,
            result = pull => result,
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                debug!(queue = ?pq.queue, %error, "pull failed");
                if pause(&pq.cancel, options.pull_error_delay).await {
                    return;
                }
                continue;
            }
        };
        if pq.is_dropped() {
            return;
        }
        match result.status {
            PullStatus::Found => {
                let mut messages = result.messages;
                if pq.queue.topic == own_retry_topic {
                    for message in &mut messages {
                        if let Some(original) = message.properties.get(keys::RETRY_TOPIC) {
                            message.topic = original.clone();
                        }
                    }
                }
                offset = result.next_begin_offset;
                if messages.is_empty() {
                    // Everything was filtered out client-side: the offset may move on.
                    if pq.count() == 0 {
                        inner.offsets.update(&pq.queue, offset, true);
                    }
                    continue;
                }
                pq.put(&messages);
                match options.consume_mode {
                    ConsumeMode::Concurrently => {
                        for batch in messages.chunks(options.consume_batch_max) {
                            tokio::spawn(consume_concurrently(
                                Arc::clone(&inner),
                                Arc::clone(&pq),
                                batch.to_vec(),
                            ));
                        }
                    }
                    ConsumeMode::Orderly => pq.arrived.notify_one(),
                }
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                offset = result.next_begin_offset;
                if pq.count() == 0 {
                    inner.offsets.update(&pq.queue, offset, true);
                }
            }
            PullStatus::OffsetIllegal => {
                warn!(queue = ?pq.queue, offset, next = result.next_begin_offset, "offset outside the queue; moving");
                offset = result.next_begin_offset;
                if pq.count() == 0 {
                    inner.offsets.update(&pq.queue, offset, false);
                    if let Err(error) = inner.offsets.persist(&pq.queue).await {
                        debug!(%error, "persisting a corrected offset failed");
                    }
                }
            }
        }
    }
}

/// How long a failed concurrent message waits before it is consumed again locally when
/// it could not even be sent back to the broker.
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);

fn consume_concurrently(
    inner: Arc<Inner>,
    pq: Arc<ProcessQueue>,
    batch: Vec<ReceivedMessage>,
) -> BoxFuture<'static, ()> {
    async move {
        let slots = Arc::clone(&inner.consume_slots);
        let permit = tokio::select! {
            _ = pq.cancel.cancelled() => return,
            permit = slots.acquire_owned() => permit,
        };
        let Ok(_permit) = permit else { return };
        if pq.is_dropped() {
            return;
        }
        let result = inner.call_listener(batch.clone()).await;
        if pq.is_dropped() {
            // Another member owns the queue now; it will deliver these again.
            return;
        }
        let mut done: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
        if result == ConsumeResult::Retry {
            if inner.is_clustering() {
                let mut failed = Vec::new();
                for message in &batch {
                    if let Err(error) = inner.send_back(message, inner.options.retry_delay_level).await {
                        warn!(msg_id = %message.msg_id(), %error, "send-back failed; retrying locally");
                        failed.push(message.clone());
                    }
                }
                done.retain(|offset| !failed.iter().any(|m| m.queue_offset == *offset));
                if !failed.is_empty() {
                    let (inner, pq) = (Arc::clone(&inner), Arc::clone(&pq));
                    tokio::spawn(async move {
                        if !pause(&pq.cancel, LOCAL_RETRY_DELAY).await {
                            consume_concurrently(inner, pq, failed).await;
                        }
                    });
                }
            } else {
                warn!(count = batch.len(), "broadcast consumption failed; messages are dropped");
            }
        }
        if let Some(offset) = pq.remove(&done) {
            inner.offsets.update(&pq.queue, offset, true);
        }
    }
    .boxed()
}

async fn consume_in_order_loop(inner: Arc<Inner>, pq: Arc<ProcessQueue>) {
    let options = &inner.options;
    loop {
        if pq.is_dropped() || pq.cancel.is_cancelled() {
            return;
        }
        if !pq.has_waiting() {
            tokio::select! {
                _ = pq.cancel.cancelled() => return,
                _ = pq.arrived.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        if inner.is_clustering() && !pq.holds_lock() {
            if !inner.lock_one(&pq).await && pause(&pq.cancel, options.suspend_on_failure).await {
                return;
            }
            continue;
        }
        let guard = pq.consume_lock.lock().await;
        if pq.is_dropped() {
            return;
        }
        let batch = pq.take_in_order(options.consume_batch_max);
        if batch.is_empty() {
            continue;
        }
        let result = inner.call_listener(batch.clone()).await;
        let committed = match result {
            ConsumeResult::Success => true,
            ConsumeResult::Retry => {
                let exhausted = batch
                    .iter()
                    .all(|m| m.reconsume_times >= inner.max_reconsume_times);
                if exhausted && inner.is_clustering() {
                    let mut all_sent = true;
                    for message in &batch {
                        // A negative level sends the message straight to the dead-letter queue.
                        if let Err(error) = inner.send_back(message, -1).await {
                            warn!(msg_id = %message.msg_id(), %error, "dead-lettering failed");
                            all_sent = false;
                        }
                    }
                    all_sent
                } else {
                    false
                }
            }
        };
        if committed {
            if let Some(offset) = pq.commit_in_order() {
                inner.offsets.update(&pq.queue, offset, false);
            }
            drop(guard);
        } else {
            pq.roll_back_in_order();
            drop(guard);
            if pause(&pq.cancel, options.suspend_on_failure).await {
                return;
            }
        }
    }
}
