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
//! - `options`: [`PushConsumerOptions`] and [`ConsumeMode`], checked once at start.
//! - `rebalance`: which queues this member consumes, and starting or releasing them.
//! - `locks`: the brokers' queue locks that ordered consumption holds.
//! - `pull_loop`: one assigned queue's long-polling pull task, with flow control.
//! - `consume`: [`MessageListener`] and [`ConsumeResult`], and the two consume modes.
//!
//! This file holds the consumer itself: starting (joining the group), its state shared by
//! every task, offset persistence and the clean shutdown.
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

mod consume;
mod locks;
mod options;
mod pull_loop;
mod rebalance;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use message::topic::retry_topic;
use message::validate_topic;
use parking_lot::Mutex;
use remoting::body::running::prop;
use remoting::body::{
    CheckClientRequestBody, ConsumeType, ConsumerData, ConsumerRunningInfo, MessageModel,
    MessageQueue, SubscriptionData,
};
use remoting::code::request;
use remoting::command::RemotingCommand;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use consume::{ConsumeResult, MessageListener};
pub use options::{ConsumeMode, PushConsumerOptions};

use super::offset_store::{Backend, OffsetStore};
use super::process_queue::ProcessQueue;
use super::pull::Puller;
use super::Selector;
use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{ClientInstance, ConsumerEntry, ConsumerReport};
use crate::producer::now_ms;
use locks::lock_loop;
use rebalance::rebalance_loop;

struct Subscription {
    topic: String,
    filter: Selector,
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
    /// When it started, for its running-info report.
    started_ms: i64,
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
        let tags = options
            .subscriptions
            .iter()
            .map(|(topic, expression)| (topic, Selector::tag(expression)));
        let sql92 = options
            .sql92_subscriptions
            .iter()
            .map(|(topic, expression)| (topic, Selector::sql92(expression)));
        for (topic, selector) in tags.chain(sql92) {
            validate_topic(topic)
                .map_err(|err| ClientError::InvalidArgument(format!("topic `{topic}`: {err}")))?;
            let selector = selector.map_err(|err| match err {
                ClientError::InvalidArgument(why) => {
                    ClientError::InvalidArgument(format!("subscription of `{topic}`: {why}"))
                }
                other => other,
            })?;
            subscriptions.push(subscription(topic, selector, sub_version));
        }
        if options.message_model == MessageModel::Clustering {
            // Java subscribes to the retry topic with tags `*`, whatever the topic's selector.
            subscriptions.push(subscription(
                &retry_topic(&options.group),
                Selector::tag("*")?,
                sub_version,
            ));
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
        let data = ConsumerData {
            group_name: options.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: options.message_model,
            consume_from_where: options.consume_from_where,
            subscription_data_set: subscriptions.iter().map(|s| s.data.clone()).collect(),
            unit_mode: false,
        };
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
            started_ms: now_ms(),
            options,
        });
        inner.instance.register_consumer(ConsumerEntry {
            data,
            rebalance: Arc::clone(&inner.rebalance_now),
            report: Some(Arc::new(Report(Arc::downgrade(&inner)))),
        })?;
        // Brokers must know this member before anyone asks them for the group's members.
        for sub in &inner.subscriptions {
            if let Err(error) = inner.instance.refresh_route(&sub.topic).await {
                debug!(topic = %sub.topic, %error, "no route yet");
            }
        }
        if let Err(refused) = inner.check_selectors_in_brokers().await {
            inner.instance.unregister_consumer(&inner.options.group);
            if inner.owns_instance {
                inner.instance.shutdown();
            }
            return Err(refused);
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

fn subscription(topic: &str, filter: Selector, sub_version: i64) -> Subscription {
    Subscription {
        topic: topic.to_owned(),
        data: filter.subscription_data(topic, sub_version),
        filter,
    }
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

    /// Asks a broker of each SQL92-selected topic whether it takes the expression
    /// (CHECK_CLIENT_CONFIG), as Java does before it starts: a broker without
    /// `enablePropertyFilter`, or an expression it cannot parse, fails start-up with the
    /// broker's reason rather than every later pull, quietly.
    async fn check_selectors_in_brokers(&self) -> Result<()> {
        let timeout = self.instance.options().request_timeout;
        for sub in &self.subscriptions {
            if !matches!(sub.filter, Selector::Sql92(_)) {
                continue;
            }
            let Some(addr) = self
                .instance
                .cached_route(&sub.topic)
                .and_then(|route| route.subscribe_queues.first().cloned())
                .and_then(|queue| self.instance.master_addr(&queue.broker_name))
            else {
                // No route yet: the pulls will carry the expression when there is one.
                continue;
            };
            let body = CheckClientRequestBody {
                client_id: self.instance.client_id().to_owned(),
                group: self.options.group.clone(),
                subscription_data: Some(sub.data.clone()),
                namespace: None,
            };
            let body = serde_json::to_vec(&body).map_err(|err| {
                ClientError::InvalidArgument(format!("subscription of `{}`: {err}", sub.topic))
            })?;
            let request = RemotingCommand::request(request::CHECK_CLIENT_CONFIG).with_body(body);
            self.instance.invoke_ok(&addr, request, timeout).await?;
        }
        Ok(())
    }
}

/// What the consumer tells operators (`mqadmin consumerStatus` / `getConsumerStatus`).
struct Report(Weak<Inner>);

impl ConsumerReport for Report {
    fn running_info(&self) -> ConsumerRunningInfo {
        let Some(inner) = self.0.upgrade() else {
            return ConsumerRunningInfo::default();
        };
        let options = &inner.options;
        let mut properties = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            properties.insert(key.to_owned(), value);
        };
        put(
            prop::CONSUME_ORDERLY,
            (options.consume_mode == ConsumeMode::Orderly).to_string(),
        );
        put(
            prop::THREADPOOL_CORE_SIZE,
            options.consume_concurrency.to_string(),
        );
        put(prop::CONSUMER_START_TIMESTAMP, inner.started_ms.to_string());
        // Some of the consumer's settings, under the names Java's properties give them.
        put("consumerGroup", options.group.clone());
        put("messageModel", options.message_model.java_name().to_owned());
        put(
            "consumeFromWhere",
            options.consume_from_where.java_name().to_owned(),
        );
        put(
            "consumeMessageBatchMaxSize",
            options.consume_batch_max.to_string(),
        );
        put("pullBatchSize", options.pull_batch_size.to_string());
        put(
            "pullThresholdForQueue",
            options.pull_threshold_for_queue.to_string(),
        );
        let mq_table = inner
            .queues
            .lock()
            .iter()
            .map(|(queue, pq)| {
                let commit = inner.offsets.in_memory(queue).unwrap_or(-1);
                (queue.clone(), pq.info(commit))
            })
            .collect();
        ConsumerRunningInfo {
            properties,
            subscription_set: inner.subscriptions.iter().map(|s| s.data.clone()).collect(),
            mq_table,
            // Pull and consume rates are not measured by this client.
            status_table: BTreeMap::new(),
            user_consumer_info: BTreeMap::new(),
            jstack: None,
        }
    }

    /// As Java's client does: the topic's queues are dropped (buffered messages are
    /// forgotten, listener calls in flight commit nothing), the new offsets stored, and a
    /// rebalance takes the queues up again from there.
    fn reset_offsets(&self, topic: &str, offsets: BTreeMap<MessageQueue, i64>) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let topic = topic.to_owned();
        tokio::spawn(async move {
            {
                let _no_rebalance_meanwhile = inner.rebalancing.lock().await;
                let taken: Vec<Arc<ProcessQueue>> = {
                    let mut queues = inner.queues.lock();
                    let keys: Vec<MessageQueue> = queues
                        .keys()
                        .filter(|q| q.topic == topic)
                        .cloned()
                        .collect();
                    keys.iter().filter_map(|q| queues.remove(q)).collect()
                };
                for pq in &taken {
                    pq.drop_queue();
                }
                for (queue, offset) in offsets.iter().filter(|(q, _)| q.topic == topic) {
                    inner.offsets.update(queue, *offset, false);
                    if let Err(error) = inner.offsets.persist(queue).await {
                        debug!(?queue, %error, "storing a reset offset failed");
                    }
                }
                info!(%topic, queues = taken.len(), "offsets reset by the broker");
            }
            inner.rebalance_now.notify_one();
        });
    }

    fn offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64> {
        let Some(inner) = self.0.upgrade() else {
            return BTreeMap::new();
        };
        let queues: Vec<MessageQueue> = inner
            .queues
            .lock()
            .keys()
            .filter(|q| q.topic == topic)
            .cloned()
            .collect();
        queues
            .into_iter()
            .filter_map(|q| inner.offsets.in_memory(&q).map(|offset| (q, offset)))
            .collect()
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

/// Sleeps unless `cancel` fires first; returns whether it was cancelled.
async fn pause(cancel: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}
