//! The producer: sync, async and one-way sends, batches, ordered sends through a queue
//! selector, and retries on another queue or broker.
//!
//! - [`selector`]: round-robin queue choice with broker backoff, and the key hash.
//!
//! ```no_run
//! use client::{ClientOptions, Message, Producer, ProducerOptions};
//!
//! # async fn run() -> client::Result<()> {
//! let producer = Producer::start(
//!     ClientOptions::new("127.0.0.1:9876"),
//!     ProducerOptions::new("orders-producer"),
//! )?;
//! let result = producer.send(Message::new("Orders", "created").with_keys(["o-1"])).await?;
//! println!("stored as {} at {:?} offset {}", result.msg_id, result.queue, result.queue_offset);
//!
//! // Messages with the same key go to the same queue, in order.
//! producer.send_ordered(Message::new("Orders", "paid"), "o-1").await?;
//!
//! // Many sends in flight at once:
//! let pending = producer.send_async(Message::new("Orders", "shipped")).await?;
//! pending.await?;
//! producer.shutdown().await;
//! # Ok(()) }
//! ```

mod request;
pub mod selector;
pub mod transaction;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use message::sysflag::CompressionType;
use message::topic::{is_retry_topic, AUTO_CREATE_TOPIC_KEY_TOPIC};
use message::{keys, validate_group, BatchItem};
use remoting::body::MessageQueue;
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::header::send::{
    RecallMessageRequestHeader, RecallMessageResponseHeader, SendMessageRequestHeader,
    SendMessageResponseHeader,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{broker_error, ClientInstance};
use crate::message::{deflate, Message, DEFAULT_MAX_MESSAGE_BYTES};
use crate::route::TopicRoute;
use selector::{hash_queue_index, QueueChooser};

/// Most route refreshes one send waits through while its topic has no master.
const MAX_ROUTE_WAITS: u32 = 100;

/// Most messages in one batch send (a bound on request size and broker work).
pub const MAX_BATCH_MESSAGES: usize = 1024;

/// Producer settings; the defaults are Java's `DefaultMQProducer`'s.
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// The producer group brokers see in heartbeats.
    pub group: String,
    /// Budget of one send, retries included (Java `sendMsgTimeout`: 3 s).
    pub send_timeout: Duration,
    /// Extra attempts after a retryable failure (Java: 2).
    pub retry_times: u32,
    /// Bodies larger than this are zlib-compressed (Java: 4096 bytes).
    pub compress_over_bytes: usize,
    /// Bodies (and batches) larger than this are refused (Java: 4 MiB).
    pub max_message_bytes: usize,
    /// Queues a topic the broker auto-creates gets (Java `defaultTopicQueueNums`: 4).
    pub default_topic_queue_nums: i32,
    /// Async sends in flight at once; `send_async` waits for room.
    pub max_in_flight_async: usize,
    /// After a broker fails a send, other brokers are preferred for this long.
    pub broker_fault_backoff: Duration,
    /// Pause between attempts after a transport failure when every queue is on the
    /// failing broker (a leader failover takes a moment to show in routes).
    pub retry_pause: Duration,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            group: "DEFAULT_PRODUCER".to_owned(),
            send_timeout: Duration::from_secs(3),
            retry_times: 2,
            compress_over_bytes: 4096,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            default_topic_queue_nums: 4,
            max_in_flight_async: 10_000,
            broker_fault_backoff: Duration::from_secs(1),
            retry_pause: Duration::from_millis(200),
        }
    }
}

impl ProducerOptions {
    pub fn new(group: impl Into<String>) -> Self {
        ProducerOptions {
            group: group.into(),
            ..ProducerOptions::default()
        }
    }
}

/// How a broker stored a sent message. All four mean the message was stored; the last
/// three mean it was not yet flushed or replicated as the broker was configured to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

impl SendStatus {
    fn from_code(code: i32) -> Option<Self> {
        match code {
            response::SUCCESS => Some(SendStatus::SendOk),
            response::FLUSH_DISK_TIMEOUT => Some(SendStatus::FlushDiskTimeout),
            response::FLUSH_SLAVE_TIMEOUT => Some(SendStatus::FlushSlaveTimeout),
            response::SLAVE_NOT_AVAILABLE => Some(SendStatus::SlaveNotAvailable),
            _ => None,
        }
    }

    /// Java's name (`SEND_OK`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::SendOk => "SEND_OK",
            SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
            SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
            SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
        }
    }
}

/// The outcome of a stored send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client-made unique id (`UNIQ_KEY`); comma-joined for a batch.
    pub msg_id: String,
    /// The broker's offset id(s) of the stored record(s).
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    /// Queue offset of the (first) stored message.
    pub queue_offset: i64,
    pub transaction_id: Option<String>,
    pub region_id: Option<String>,
    /// For a timer message: what [`Producer::recall`] takes to cancel it while it waits.
    pub recall_handle: Option<String>,
}

/// A producer. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

struct ProducerInner {
    instance: ClientInstance,
    owns_instance: bool,
    options: ProducerOptions,
    chooser: QueueChooser,
    async_slots: Arc<Semaphore>,
    closed: AtomicBool,
}

/// A message ready for the wire.
pub(crate) struct Outgoing {
    topic: String,
    body: Bytes,
    flag: i32,
    properties: String,
    pub(crate) sys_flag: i32,
    msg_id: String,
    batch: bool,
    /// A reply of request-reply (`MSG_TYPE=reply`): sent with SEND_REPLY_MESSAGE_V2.
    reply: bool,
}

impl Producer {
    /// Starts a producer with its own client instance.
    pub fn start(client: ClientOptions, options: ProducerOptions) -> Result<Self> {
        let instance = ClientInstance::new(client)?;
        Self::build(instance, options, true)
    }

    /// Starts a producer on a shared client instance.
    pub fn with_instance(instance: ClientInstance, options: ProducerOptions) -> Result<Self> {
        Self::build(instance, options, false)
    }

    pub(crate) fn build(
        instance: ClientInstance,
        options: ProducerOptions,
        owns_instance: bool,
    ) -> Result<Self> {
        validate_group(&options.group)
            .map_err(|err| ClientError::InvalidArgument(format!("producer group: {err}")))?;
        if options.max_in_flight_async == 0 || options.send_timeout.is_zero() {
            return Err(ClientError::InvalidArgument(
                "max_in_flight_async and send_timeout must be > 0".into(),
            ));
        }
        instance.register_producer(&options.group);
        Ok(Producer {
            inner: Arc::new(ProducerInner {
                chooser: QueueChooser::new(options.broker_fault_backoff),
                async_slots: Arc::new(Semaphore::new(options.max_in_flight_async)),
                instance,
                owns_instance,
                options,
                closed: AtomicBool::new(false),
            }),
        })
    }

    pub fn instance(&self) -> &ClientInstance {
        &self.inner.instance
    }

    pub fn options(&self) -> &ProducerOptions {
        &self.inner.options
    }

    /// Sends and waits for the broker's answer, retrying retryable failures on another
    /// queue (another broker when there is one) within `send_timeout`.
    pub async fn send(&self, message: Message) -> Result<SendResult> {
        let outgoing = self.prepare(message)?;
        self.send_with_retries(&outgoing).await
    }

    /// Starts a send that runs on its own and returns a future of its result. Waits (at
    /// most `send_timeout`) while `max_in_flight_async` sends are already in flight.
    pub async fn send_async(&self, message: Message) -> Result<SendHandle> {
        let outgoing = self.prepare(message)?;
        let permit = self.async_permit().await?;
        let producer = self.clone();
        let task = tokio::spawn(async move {
            let _permit: OwnedSemaphorePermit = permit;
            producer.send_with_retries(&outgoing).await
        });
        Ok(SendHandle { task })
    }

    /// Sends without waiting for the broker (one attempt; no result, no retry).
    pub async fn send_oneway(&self, message: Message) -> Result<()> {
        let outgoing = self.prepare(message)?;
        let route = self.publish_route(&outgoing.topic).await?;
        let queue = self
            .inner
            .chooser
            .choose(&route.publish_queues, None)
            .ok_or_else(|| no_queue(&outgoing.topic))?;
        let addr = self.broker_addr(&queue).await?;
        let command = self.send_command(&outgoing, &queue);
        self.inner
            .instance
            .invoke_oneway(&addr, command, self.inner.options.send_timeout)
            .await
    }

    /// Sends several messages of one topic as one request; they are stored in one queue
    /// with consecutive offsets. Delay levels and retry topics are not allowed in batches.
    pub async fn send_batch(&self, messages: Vec<Message>) -> Result<SendResult> {
        let outgoing = self.prepare_batch(messages)?;
        self.send_with_retries(&outgoing).await
    }

    /// Sends to one given queue (no retry elsewhere).
    pub async fn send_to_queue(
        &self,
        message: Message,
        queue: &MessageQueue,
    ) -> Result<SendResult> {
        let outgoing = self.prepare(message)?;
        if queue.topic != outgoing.topic {
            return Err(ClientError::InvalidArgument(format!(
                "queue belongs to topic `{}`, message to `{}`",
                queue.topic, outgoing.topic
            )));
        }
        self.send_fixed_queue(&outgoing, queue.clone()).await
    }

    /// Sends to the queue `select` picks among the topic's writable queues. Retries go to
    /// the same queue (after refreshing the route) so per-queue order holds.
    pub async fn send_with_selector<F>(&self, message: Message, select: F) -> Result<SendResult>
    where
        F: Fn(&[MessageQueue], &Message) -> usize,
    {
        let index_message = message.clone();
        let outgoing = self.prepare(message)?;
        let route = self.publish_route(&outgoing.topic).await?;
        let queues = &route.publish_queues;
        let index = select(queues, &index_message);
        let queue = queues.get(index).cloned().ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "selector chose queue {index} of {}",
                queues.len()
            ))
        })?;
        self.send_fixed_queue(&outgoing, queue).await
    }

    /// Ordered send: messages with the same `sharding_key` go to the same queue (Java's
    /// hash selector), so consumers see them in send order.
    pub async fn send_ordered(&self, message: Message, sharding_key: &str) -> Result<SendResult> {
        let key = sharding_key.to_owned();
        self.send_with_selector(message, move |queues, _| {
            hash_queue_index(&key, queues.len())
        })
        .await
    }

    /// Cancels a timer message still waiting (RECALL_MESSAGE, RocketMQ 5.3): `handle` is its
    /// send result's `recall_handle`. Returns the recalled message's id. The broker must
    /// have `recallMessageEnable=true`; a message whose time has come cannot be recalled.
    pub async fn recall(&self, topic: &str, handle: &str) -> Result<String> {
        let decoded = remoting::recall_handle::decode(handle)
            .map_err(|reason| ClientError::InvalidArgument(reason.to_owned()))?;
        let queue = MessageQueue::new(topic, &decoded.broker_name, 0);
        let addr = self.broker_addr(&queue).await?;
        let header = RecallMessageRequestHeader {
            producer_group: Some(self.inner.options.group.clone()),
            topic: topic.to_owned(),
            recall_handle: handle.to_owned(),
        };
        let command = RemotingCommand::request(code::RECALL_MESSAGE).with_header(&header);
        let response = self
            .inner
            .instance
            .invoke_ok(&addr, command, self.inner.options.send_timeout)
            .await?;
        let answer = response
            .decode_header::<RecallMessageResponseHeader>()
            .map_err(|err| ClientError::malformed(&addr, err))?;
        Ok(answer.msg_id)
    }

    /// Unregisters the producer group from the brokers and, if this producer made its own
    /// client instance, shuts it down.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let instance = &self.inner.instance;
        instance.unregister_producer(&self.inner.options.group);
        let timeout = instance.options().request_timeout;
        let calls = instance.all_broker_addrs(true).into_iter().map(|addr| {
            let group = self.inner.options.group.clone();
            async move {
                if let Err(error) = instance
                    .unregister_client(&addr, Some(&group), None, timeout)
                    .await
                {
                    debug!(%addr, %error, "unregistering the producer failed");
                }
            }
        });
        futures::future::join_all(calls).await;
        if self.inner.owns_instance {
            instance.shutdown();
        }
    }

    // ---- internals ----------------------------------------------------------------

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Relaxed) || self.inner.instance.is_shut_down() {
            Err(ClientError::Shutdown)
        } else {
            Ok(())
        }
    }

    async fn async_permit(&self) -> Result<OwnedSemaphorePermit> {
        let slots = Arc::clone(&self.inner.async_slots);
        match tokio::time::timeout(self.inner.options.send_timeout, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ClientError::Shutdown),
            Err(_) => Err(ClientError::TooManyRequests {
                limit: self.inner.options.max_in_flight_async,
            }),
        }
    }

    pub(crate) fn prepare(&self, mut message: Message) -> Result<Outgoing> {
        self.check_open()?;
        message.validate(self.inner.options.max_message_bytes)?;
        let msg_id = match message.uniq_key() {
            Some(id) => id.to_owned(),
            None => {
                let id = self.inner.instance.inner.uniq_ids.next_id();
                message
                    .properties
                    .insert(keys::UNIQ_KEY.to_owned(), id.clone());
                id
            }
        };
        let mut sys_flag = 0;
        let mut body = message.body.clone();
        if body.len() > self.inner.options.compress_over_bytes {
            match deflate(&body) {
                Ok(compressed) => {
                    body = Bytes::from(compressed);
                    sys_flag |= CompressionType::Zlib.sys_flag_bits();
                }
                Err(error) => debug!(%error, "compression failed; sending uncompressed"),
            }
        }
        let reply = message.property(keys::MSG_TYPE) == Some(request::REPLY_MESSAGE_FLAG);
        let properties = message.encode_properties();
        if properties.len() > message::properties::MAX_PROPERTIES_LEN {
            return Err(ClientError::InvalidMessage(format!(
                "properties are {} bytes encoded; at most 32767 fit",
                properties.len()
            )));
        }
        Ok(Outgoing {
            topic: message.topic,
            body,
            flag: message.flag,
            properties,
            sys_flag,
            msg_id,
            batch: false,
            reply,
        })
    }

    fn prepare_batch(&self, messages: Vec<Message>) -> Result<Outgoing> {
        self.check_open()?;
        let first = messages
            .first()
            .ok_or_else(|| ClientError::InvalidMessage("batch is empty".into()))?;
        if messages.len() > MAX_BATCH_MESSAGES {
            return Err(ClientError::InvalidMessage(format!(
                "batch holds {} messages; at most {MAX_BATCH_MESSAGES}",
                messages.len()
            )));
        }
        let topic = first.topic.clone();
        if is_retry_topic(&topic) {
            return Err(ClientError::InvalidMessage(
                "batches cannot go to retry topics".into(),
            ));
        }
        let mut encoded = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        for mut message in messages {
            if message.topic != topic {
                return Err(ClientError::InvalidMessage(
                    "all messages of a batch must have the same topic".into(),
                ));
            }
            if message.delay_level() > 0 {
                return Err(ClientError::InvalidMessage(
                    "batched messages cannot have a delay level".into(),
                ));
            }
            message.validate(self.inner.options.max_message_bytes)?;
            let id = match message.uniq_key() {
                Some(id) => id.to_owned(),
                None => {
                    let id = self.inner.instance.inner.uniq_ids.next_id();
                    message
                        .properties
                        .insert(keys::UNIQ_KEY.to_owned(), id.clone());
                    id
                }
            };
            ids.push(id);
            encoded.push((
                message.flag,
                message.body.clone(),
                message.encode_properties(),
            ));
        }
        let body =
            message::encode_batch(encoded.iter().map(|(flag, body, properties)| BatchItem {
                flag: *flag,
                body,
                properties,
            }))
            .map_err(|err| ClientError::InvalidMessage(err.to_string()))?;
        if body.len() > self.inner.options.max_message_bytes {
            return Err(ClientError::InvalidMessage(format!(
                "batch is {} bytes; the limit is {}",
                body.len(),
                self.inner.options.max_message_bytes
            )));
        }
        Ok(Outgoing {
            topic,
            body: Bytes::from(body),
            flag: 0,
            properties: String::new(),
            sys_flag: 0,
            msg_id: ids.join(","),
            batch: true,
            reply: false,
        })
    }

    /// The topic's route for publishing. A topic the name servers do not know yet is
    /// sent through the auto-create template (`TBW102`), as Java's producer does.
    async fn publish_route(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        let instance = &self.inner.instance;
        let route = match instance.route(topic).await {
            Ok(route) => route,
            Err(ClientError::NoRoute { .. }) => {
                let template = instance.fetch_route(AUTO_CREATE_TOPIC_KEY_TOPIC).await?.ok_or_else(|| {
                    ClientError::NoRoute {
                        topic: topic.to_owned(),
                        reason: "unknown to the name servers, and no auto-create template (TBW102) exists".into(),
                    }
                })?;
                instance.install_route(
                    topic,
                    TopicRoute::from_template(
                        topic,
                        template,
                        self.inner.options.default_topic_queue_nums,
                    ),
                )
            }
            Err(error) => return Err(error),
        };
        if route.publish_queues.is_empty() {
            return Err(no_queue(topic));
        }
        Ok(route)
    }

    pub(crate) async fn broker_addr(&self, queue: &MessageQueue) -> Result<String> {
        if let Some(addr) = self.inner.instance.master_addr(&queue.broker_name) {
            return Ok(addr);
        }
        self.inner.instance.refresh_route_soon(&queue.topic).await;
        self.inner
            .instance
            .master_addr(&queue.broker_name)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: queue.broker_name.clone(),
            })
    }

    pub(crate) async fn send_with_retries(&self, outgoing: &Outgoing) -> Result<SendResult> {
        let deadline = Instant::now() + self.inner.options.send_timeout;
        let attempts = self.inner.options.retry_times.saturating_add(1);
        let mut last_failed_broker: Option<String> = None;
        let mut last_error = None;
        let mut attempt = 0;
        let mut route_waits = 0;
        while attempt < attempts {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            // During a failover the route may name no master for a moment. Waiting for one
            // costs time (bounded by the deadline) but no attempt. A topic that never had
            // a route is not worth waiting for.
            let route = match self.publish_route(&outgoing.topic).await {
                Ok(route) => route,
                Err(error)
                    if error.is_retryable()
                        && route_waits < MAX_ROUTE_WAITS
                        && self.inner.instance.cached_route(&outgoing.topic).is_some() =>
                {
                    debug!(attempt, %error, "no usable route; refreshing");
                    last_error = Some(error);
                    route_waits += 1;
                    self.pause_before_retry(deadline, 1).await;
                    self.inner
                        .instance
                        .refresh_route_soon(&outgoing.topic)
                        .await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            attempt += 1;
            let Some(queue) = self
                .inner
                .chooser
                .choose(&route.publish_queues, last_failed_broker.as_deref())
            else {
                last_error = Some(no_queue(&outgoing.topic));
                continue;
            };
            match self.send_once(outgoing, &queue, remaining).await {
                Ok(result) => {
                    self.inner.chooser.mark_healthy(&queue.broker_name);
                    return Ok(result);
                }
                Err(error) => {
                    debug!(attempt, broker = %queue.broker_name, %error, "send attempt failed");
                    if !error.is_retryable() {
                        return Err(error);
                    }
                    if error.marks_broker_faulty() {
                        self.inner.chooser.mark_faulty(&queue.broker_name);
                    }
                    let alternatives = route
                        .publish_queues
                        .iter()
                        .any(|q| q.broker_name != queue.broker_name);
                    last_failed_broker = Some(queue.broker_name.clone());
                    last_error = Some(error);
                    self.inner
                        .instance
                        .refresh_route_soon(&outgoing.topic)
                        .await;
                    if !alternatives && attempt < attempts {
                        self.pause_before_retry(deadline, attempt).await;
                    }
                }
            }
        }
        Err(exhausted(attempts, last_error, &outgoing.topic))
    }

    /// Sends to one queue, retrying it (not another) after route refreshes.
    async fn send_fixed_queue(
        &self,
        outgoing: &Outgoing,
        queue: MessageQueue,
    ) -> Result<SendResult> {
        let deadline = Instant::now() + self.inner.options.send_timeout;
        let attempts = self.inner.options.retry_times.saturating_add(1);
        let mut last_error = None;
        for attempt in 1..=attempts {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match self.send_once(outgoing, &queue, remaining).await {
                Ok(result) => return Ok(result),
                Err(error) if error.is_retryable() => {
                    debug!(attempt, %error, "send to a fixed queue failed");
                    last_error = Some(error);
                    self.inner
                        .instance
                        .refresh_route_soon(&outgoing.topic)
                        .await;
                    if attempt < attempts {
                        self.pause_before_retry(deadline, attempt).await;
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(exhausted(attempts, last_error, &outgoing.topic))
    }

    async fn pause_before_retry(&self, deadline: Instant, attempt: u32) {
        let pause = self.inner.options.retry_pause.saturating_mul(attempt);
        let until = (Instant::now() + pause).min(deadline);
        tokio::time::sleep_until(until).await;
    }

    async fn send_once(
        &self,
        outgoing: &Outgoing,
        queue: &MessageQueue,
        timeout: Duration,
    ) -> Result<SendResult> {
        let addr = self.broker_addr(queue).await?;
        let command = self.send_command(outgoing, queue);
        let response = self.inner.instance.invoke(&addr, command, timeout).await?;
        let status =
            SendStatus::from_code(response.code).ok_or_else(|| broker_error(&addr, &response))?;
        let header = response
            .decode_header::<SendMessageResponseHeader>()
            .map_err(|err| ClientError::malformed(&addr, err))?;
        Ok(SendResult {
            status,
            msg_id: outgoing.msg_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue::new(&queue.topic, &queue.broker_name, header.queue_id),
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
            region_id: header.msg_region,
            recall_handle: header.recall_handle,
        })
    }

    fn send_command(&self, outgoing: &Outgoing, queue: &MessageQueue) -> RemotingCommand {
        let header = SendMessageRequestHeader {
            producer_group: self.inner.options.group.clone(),
            topic: outgoing.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC_KEY_TOPIC.to_owned(),
            default_topic_queue_nums: self.inner.options.default_topic_queue_nums,
            queue_id: queue.queue_id,
            sys_flag: outgoing.sys_flag,
            born_timestamp: now_ms(),
            flag: outgoing.flag,
            properties: (!outgoing.properties.is_empty()).then(|| outgoing.properties.clone()),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            batch: Some(outgoing.batch),
            max_reconsume_times: None,
            broker_name: Some(queue.broker_name.clone()),
        };
        let code = if outgoing.batch {
            code::SEND_BATCH_MESSAGE
        } else if outgoing.reply {
            code::SEND_REPLY_MESSAGE_V2
        } else {
            code::SEND_MESSAGE_V2
        };
        let mut command = RemotingCommand::request(code).with_body(outgoing.body.clone());
        header.to_v2(&mut command.ext_fields);
        command
    }
}

fn no_queue(topic: &str) -> ClientError {
    ClientError::NoRoute {
        topic: topic.to_owned(),
        reason: "the route has no writable queue on a broker with a master".into(),
    }
}

fn exhausted(attempts: u32, last: Option<ClientError>, topic: &str) -> ClientError {
    let last = last.unwrap_or_else(|| ClientError::Timeout {
        addr: format!("(sending to {topic})"),
        timeout_ms: 0,
    });
    ClientError::RetriesExhausted {
        attempts,
        last: Box::new(last),
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The result of an async send; await it for the [`SendResult`].
pub struct SendHandle {
    task: JoinHandle<Result<SendResult>>,
}

impl Future for SendHandle {
    type Output = Result<SendResult>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| joined.unwrap_or(Err(ClientError::Shutdown)))
    }
}
