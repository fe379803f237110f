//! Pulling: the PULL_MESSAGE exchange (`Puller`) and the [`PullConsumer`], which reads
//! explicit queues from explicit offsets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use message::sysflag::pull as pull_flag;
use message::validate_group;
use remoting::body::{ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};

use super::Selector;
use crate::broker_api::StoredOffset;
use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{broker_error, ClientInstance, ConsumerEntry};
use crate::message::{decode_messages, ReceivedMessage};

/// Most messages one pull may ask for (Java's broker hands out at most 32 from memory).
pub const MAX_PULL_BATCH: i32 = 1024;
/// Added to the broker's hold time to get the request timeout of a long poll: the broker
/// answers at the end of the hold, and the reply needs time to arrive (Java waits 30 s
/// for a 15 s hold).
pub const LONG_POLL_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// Messages were returned.
    Found,
    /// The queue has nothing at or after the offset.
    NoNewMsg,
    /// Messages exist but none matched the subscription.
    NoMatchedMsg,
    /// The offset is outside the queue; continue at `next_begin_offset`.
    OffsetIllegal,
}

/// The answer to one pull.
#[derive(Debug, Clone)]
pub struct PullResult {
    pub status: PullStatus,
    /// Where the next pull of this queue should start.
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Found messages that match the subscription (the broker filters by tag hash; the
    /// client re-checks the tag itself, as hashes can collide).
    pub messages: Vec<ReceivedMessage>,
}

/// One pull's parameters.
pub(crate) struct PullSpec<'a> {
    pub group: &'a str,
    pub queue: &'a MessageQueue,
    pub filter: &'a Selector,
    pub sub_version: i64,
    pub offset: i64,
    pub max_nums: i32,
    /// The consumer's progress to store on the broker along the way.
    pub commit_offset: Option<i64>,
    /// Let the broker hold the request this long when nothing is there (long polling).
    pub suspend: Option<Duration>,
}

/// Sends pulls to the right member of a broker group, following its suggestions.
pub(crate) struct Puller {
    instance: ClientInstance,
    /// The broker id each queue's last pull response suggested.
    suggested_broker: DashMap<MessageQueue, i64>,
}

impl Puller {
    pub(crate) fn new(instance: ClientInstance) -> Self {
        Puller {
            instance,
            suggested_broker: DashMap::new(),
        }
    }

    pub(crate) fn forget(&self, queue: &MessageQueue) {
        self.suggested_broker.remove(queue);
    }

    pub(crate) async fn pull(&self, spec: PullSpec<'_>) -> Result<PullResult> {
        let queue = spec.queue;
        let suggested = self.suggested_broker.get(queue).map_or(0, |id| *id);
        let addr = match self.instance.pull_addr(&queue.broker_name, suggested) {
            Some(addr) => addr,
            None => {
                self.instance.refresh_route_soon(&queue.topic).await;
                self.instance
                    .pull_addr(&queue.broker_name, suggested)
                    .ok_or_else(|| ClientError::BrokerNotFound {
                        broker_name: queue.broker_name.clone(),
                    })?
            }
        };
        let sys_flag = pull_flag::build(
            spec.commit_offset.is_some(),
            spec.suspend.is_some(),
            true,
            false,
        );
        let header = PullMessageRequestHeader {
            consumer_group: spec.group.to_owned(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            queue_offset: spec.offset,
            max_msg_nums: spec.max_nums.clamp(1, MAX_PULL_BATCH),
            sys_flag,
            commit_offset: spec.commit_offset.unwrap_or(0),
            suspend_timeout_millis: spec
                .suspend
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            subscription: Some(spec.filter.expression().to_owned()),
            sub_version: spec.sub_version,
            expression_type: Some(spec.filter.expression_type().to_owned()),
            max_msg_bytes: None,
            request_source: None,
            proxy_forward_client_id: None,
            broker_name: Some(queue.broker_name.clone()),
        };
        let timeout = match spec.suspend {
            Some(hold) => hold + LONG_POLL_TIMEOUT_MARGIN,
            None => self.instance.options().request_timeout,
        };
        let command = RemotingCommand::request(request::PULL_MESSAGE).with_header(&header);
        let response = match self.instance.invoke(&addr, command, timeout).await {
            Ok(response) => response,
            Err(error) => {
                // The member may be gone (failover): ask the master next time, and learn
                // who the master is now.
                self.suggested_broker.remove(queue);
                self.instance.refresh_route_soon(&queue.topic).await;
                return Err(error);
            }
        };
        let status = match response.code {
            response::SUCCESS => PullStatus::Found,
            response::PULL_NOT_FOUND => PullStatus::NoNewMsg,
            response::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
            response::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
            _ => {
                self.suggested_broker.remove(queue);
                self.instance.refresh_route_soon(&queue.topic).await;
                return Err(broker_error(&addr, &response));
            }
        };
        let header = response
            .decode_header::<PullMessageResponseHeader>()
            .map_err(|err| ClientError::malformed(&addr, err))?;
        if header.suggest_which_broker_id >= 0 {
            self.suggested_broker
                .insert(queue.clone(), header.suggest_which_broker_id);
        }
        let messages = if status == PullStatus::Found {
            decode_messages(&response.body, &queue.broker_name)
                .map_err(|err| ClientError::malformed(&addr, err))?
                .into_iter()
                .filter(|m| spec.filter.keeps(m.tag()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(PullResult {
            status,
            next_begin_offset: header.next_begin_offset,
            min_offset: header.min_offset,
            max_offset: header.max_offset,
            messages,
        })
    }
}

/// A consumer that pulls the queues and offsets it is told to (Java's pull consumer). Its
/// group is announced to brokers in heartbeats, so a client instance holds at most one
/// consumer per group.
///
/// ```no_run
/// use client::{ClientOptions, PullConsumer, consumer::PullStatus};
/// use std::time::Duration;
///
/// # async fn run() -> client::Result<()> {
/// let consumer = PullConsumer::start(ClientOptions::new("127.0.0.1:9876"), "audit")?;
/// for queue in consumer.queues("Orders").await? {
///     let mut offset = consumer.min_offset(&queue).await?;
///     loop {
///         let result = consumer
///             .pull_blocking(&queue, "*", offset, 32, Duration::from_secs(5))
///             .await?;
///         for message in &result.messages {
///             println!("{} {}", message.queue_offset, message.body_text());
///         }
///         offset = result.next_begin_offset;
///         if result.status != PullStatus::Found {
///             break;
///         }
///     }
/// }
/// consumer.shutdown();
/// # Ok(()) }
/// ```
pub struct PullConsumer {
    instance: ClientInstance,
    owns_instance: bool,
    group: String,
    puller: Puller,
    closed: AtomicBool,
}

impl PullConsumer {
    /// A pull consumer of `group` with its own client instance.
    pub fn start(client: ClientOptions, group: &str) -> Result<Self> {
        let instance = ClientInstance::new(client)?;
        Self::build(instance, group, true)
    }

    /// A pull consumer on a shared client instance; fails if the instance already has a
    /// consumer of `group`.
    pub fn with_instance(instance: ClientInstance, group: &str) -> Result<Self> {
        Self::build(instance, group, false)
    }

    fn build(instance: ClientInstance, group: &str, owns_instance: bool) -> Result<Self> {
        validate_group(group)
            .map_err(|err| ClientError::InvalidArgument(format!("consumer group: {err}")))?;
        // Like Java's pull consumer, the group is announced in heartbeats: brokers then
        // list it (consumerConnection), make its subscription group and its retry topic,
        // which is how consumer-progress tools find the brokers holding its offsets.
        instance.register_consumer(ConsumerEntry {
            data: ConsumerData {
                group_name: group.to_owned(),
                consume_type: ConsumeType::ConsumeActively,
                message_model: MessageModel::Clustering,
                consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
                subscription_data_set: Vec::new(),
                unit_mode: false,
            },
            // Nothing to rebalance: the caller picks its queues.
            rebalance: Arc::default(),
            // Java's pull consumer reports no queues either: the caller holds them.
            report: None,
        })?;
        Ok(PullConsumer {
            puller: Puller::new(instance.clone()),
            instance,
            owns_instance,
            group: group.to_owned(),
            closed: AtomicBool::new(false),
        })
    }

    pub fn instance(&self) -> &ClientInstance {
        &self.instance
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The readable queues of `topic` (fresh from the name servers).
    pub async fn queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        self.check_open()?;
        Ok(self
            .instance
            .refresh_route(topic)
            .await?
            .subscribe_queues
            .clone())
    }

    /// Pulls up to `max_nums` messages from `offset`; answers at once when there are none.
    pub async fn pull(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult> {
        self.pull_selected(queue, &Selector::tag(expression)?, offset, max_nums, None)
            .await
    }

    /// Like [`pull`](Self::pull), but when nothing is there the broker holds the request
    /// up to `wait` and answers as soon as a message arrives (long polling).
    pub async fn pull_blocking(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
        wait: Duration,
    ) -> Result<PullResult> {
        let selector = Selector::tag(expression)?;
        self.pull_selected(queue, &selector, offset, max_nums, Some(wait))
            .await
    }

    /// Pulls what `selector` selects (tags or a SQL92 expression) from `offset`; with
    /// `wait`, the broker holds the request until a message arrives or `wait` passes.
    pub async fn pull_selected(
        &self,
        queue: &MessageQueue,
        selector: &Selector,
        offset: i64,
        max_nums: i32,
        wait: Option<Duration>,
    ) -> Result<PullResult> {
        self.check_open()?;
        self.ensure_route(queue).await;
        self.puller
            .pull(PullSpec {
                group: &self.group,
                queue,
                filter: selector,
                sub_version: crate::producer::now_ms(),
                offset,
                max_nums,
                commit_offset: None,
                suspend: wait,
            })
            .await
    }

    /// The smallest offset still stored in `queue`.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = self.master(queue).await?;
        self.instance.min_offset(&addr, queue).await
    }

    /// The offset the next message written to `queue` will get.
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = self.master(queue).await?;
        self.instance.max_offset(&addr, queue).await
    }

    /// The first offset of `queue` stored at or after `timestamp_ms`.
    pub async fn search_offset(&self, queue: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        let addr = self.master(queue).await?;
        self.instance
            .search_offset(&addr, queue, timestamp_ms)
            .await
    }

    /// The group's committed offset on `queue`, if any.
    pub async fn committed_offset(&self, queue: &MessageQueue) -> Result<Option<i64>> {
        let addr = self.master(queue).await?;
        Ok(
            match self
                .instance
                .query_consumer_offset(&addr, &self.group, queue)
                .await?
            {
                StoredOffset::Found(offset) => Some(offset),
                StoredOffset::NotFound => None,
            },
        )
    }

    /// Stores the group's progress on `queue`.
    pub async fn commit_offset(&self, queue: &MessageQueue, offset: i64) -> Result<()> {
        let addr = self.master(queue).await?;
        self.instance
            .update_consumer_offset(&addr, &self.group, queue, offset)
            .await
    }

    /// Stops the consumer (and its client instance, if it made its own).
    pub fn shutdown(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Brokers forget the member when its heartbeats stop or its connections close.
        self.instance.unregister_consumer(&self.group);
        if self.owns_instance {
            self.instance.shutdown();
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            Err(ClientError::Shutdown)
        } else {
            Ok(())
        }
    }

    async fn ensure_route(&self, queue: &MessageQueue) {
        if self.instance.cached_route(&queue.topic).is_none() {
            if let Err(error) = self.instance.refresh_route(&queue.topic).await {
                tracing::debug!(topic = %queue.topic, %error, "route lookup failed");
            }
        }
    }

    async fn master(&self, queue: &MessageQueue) -> Result<String> {
        self.check_open()?;
        master_addr(&self.instance, queue).await
    }
}

impl Drop for PullConsumer {
    fn drop(&mut self) {
        // After a shutdown the group may belong to a newer consumer on a shared instance.
        if !self.closed.load(Ordering::SeqCst) {
            self.instance.unregister_consumer(&self.group);
        }
    }
}

/// The master of `queue`'s broker group, refreshing the route once if it is unknown.
pub(crate) async fn master_addr(instance: &ClientInstance, queue: &MessageQueue) -> Result<String> {
    if let Some(addr) = instance.master_addr(&queue.broker_name) {
        return Ok(addr);
    }
    instance.refresh_route_soon(&queue.topic).await;
    instance
        .master_addr(&queue.broker_name)
        .ok_or_else(|| ClientError::BrokerNotFound {
            broker_name: queue.broker_name.clone(),
        })
}
