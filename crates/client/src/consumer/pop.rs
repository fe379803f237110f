//! [`PopConsumer`]: RocketMQ 5's POP consumption over remoting. A pop takes up to 32
//! messages from any queues of a topic on one broker; each stays invisible to the group's
//! other poppers for the invisible time asked for, and comes back (from the group's pop
//! retry topic, its delivery count raised) unless acknowledged in time. No queue is owned,
//! no offset is kept by the client.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use message::validate_group;
use remoting::body::{ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::pop::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
    PopMessageRequestHeader, PopMessageResponseHeader,
};
use remoting::pop_receipt::{OrderCountInfo, PopAnswer, PopReceipt};

use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{broker_error, ClientInstance, ConsumerEntry};
use crate::message::{decode_messages, ReceivedMessage};

/// Most messages one pop may take (the broker's limit).
pub const MAX_POP_BATCH: i32 = 32;
/// Added to a long-polling pop's wait for the request's own timeout.
const POLL_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);

/// A popped message and what acknowledging it takes.
#[derive(Debug, Clone)]
pub struct PoppedMessage {
    /// The message; `topic` is the topic popped, `queue` where it is stored (a pop retry
    /// topic's queue 0 for a redelivered one).
    pub message: ReceivedMessage,
    /// The receipt handle (RocketMQ's `extraInfo` / `POP_CK`).
    pub receipt: String,
}

/// What one pop came to.
#[derive(Debug, Default)]
pub struct PopResult {
    pub messages: Vec<PoppedMessage>,
    /// Messages left behind on that broker (its answer's `restNum`).
    pub rest: i64,
}

/// How a pop's wait is spent and what it asks for.
#[derive(Debug, Clone)]
pub struct PopRequest<'a> {
    pub topic: &'a str,
    /// A TAG expression (`*`, `a || b`).
    pub expression: &'a str,
    pub max_messages: i32,
    pub invisible_time: Duration,
    /// How long the broker may hold the request when nothing is there.
    pub wait: Duration,
    /// An orderly pop (a FIFO group, Java's `MessageListenerOrderly` in pop mode): a
    /// queue's next messages only once its last ones are acknowledged or timed out; each
    /// message's `reconsume_times` counts its earlier deliveries.
    pub orderly: bool,
}

/// A POP consumer of one group.
///
/// ```no_run
/// use client::{ClientOptions, consumer::{PopConsumer, PopRequest}};
/// use std::time::Duration;
///
/// # async fn run() -> client::Result<()> {
/// let consumer = PopConsumer::start(ClientOptions::new("127.0.0.1:9876"), "billing")?;
/// let popped = consumer
///     .pop(&PopRequest {
///         topic: "Orders",
///         expression: "*",
///         max_messages: 16,
///         invisible_time: Duration::from_secs(30),
///         wait: Duration::from_secs(5),
///         orderly: false,
///     })
///     .await?;
/// for message in &popped.messages {
///     println!("{}", message.message.body_text());
///     consumer.ack(message).await?;
/// }
/// # Ok(()) }
/// ```
pub struct PopConsumer {
    instance: ClientInstance,
    owns_instance: bool,
    group: String,
    /// Which broker of a topic the next pop goes to.
    next_broker: AtomicUsize,
    closed: AtomicBool,
}

impl PopConsumer {
    /// A pop consumer of `group` with its own client instance.
    pub fn start(client: ClientOptions, group: &str) -> Result<Self> {
        let instance = ClientInstance::new(client)?;
        validate_group(group)
            .map_err(|err| ClientError::InvalidArgument(format!("consumer group: {err}")))?;
        instance.register_consumer(ConsumerEntry {
            data: ConsumerData {
                group_name: group.to_owned(),
                consume_type: ConsumeType::ConsumePassively,
                message_model: MessageModel::Clustering,
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                subscription_data_set: Vec::new(),
                unit_mode: false,
            },
            rebalance: Arc::default(),
            report: None,
        })?;
        Ok(PopConsumer {
            instance,
            owns_instance: true,
            group: group.to_owned(),
            next_broker: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Pops from the master of one broker of the topic (the brokers taken in turn).
    pub async fn pop(&self, request: &PopRequest<'_>) -> Result<PopResult> {
        self.check_open()?;
        let mut route = self.instance.route(request.topic).await?;
        let mut brokers: Vec<String> = route
            .subscribe_queues
            .iter()
            .map(|q| q.broker_name.clone())
            .collect();
        brokers.dedup();
        if brokers.is_empty() {
            route = self.instance.refresh_route(request.topic).await?;
            brokers = route
                .subscribe_queues
                .iter()
                .map(|q| q.broker_name.clone())
                .collect();
            brokers.dedup();
        }
        let Some(broker) = brokers
            .get(self.next_broker.fetch_add(1, Ordering::Relaxed) % brokers.len().max(1))
            .cloned()
        else {
            return Err(ClientError::NotFound(format!(
                "no broker serves `{}`",
                request.topic
            )));
        };
        let addr = self.master(request.topic, &broker).await?;
        let header = PopMessageRequestHeader {
            consumer_group: self.group.clone(),
            topic: request.topic.to_owned(),
            queue_id: -1,
            max_msg_nums: request.max_messages.clamp(1, MAX_POP_BATCH),
            invisible_time: millis(request.invisible_time),
            poll_time: millis(request.wait),
            born_time: crate::producer::now_ms(),
            init_mode: 0,
            exp_type: Some("TAG".to_owned()),
            exp: Some(request.expression.to_owned()),
            order: Some(request.orderly),
            attempt_id: None,
            broker_name: Some(broker.clone()),
        };
        let command = RemotingCommand::request(request::POP_MESSAGE).with_header(&header);
        let timeout = request.wait + POLL_TIMEOUT_MARGIN;
        let answer = match self.instance.invoke(&addr, command, timeout).await {
            Ok(answer) => answer,
            Err(error) => {
                self.instance.refresh_route_soon(request.topic).await;
                return Err(error);
            }
        };
        match answer.code {
            response::SUCCESS => {}
            response::POLLING_TIMEOUT | response::PULL_NOT_FOUND | response::POLLING_FULL => {
                return Ok(PopResult::default())
            }
            _ => {
                self.instance.refresh_route_soon(request.topic).await;
                return Err(broker_error(&addr, &answer));
            }
        }
        let header = answer
            .decode_header::<PopMessageResponseHeader>()
            .map_err(|err| ClientError::malformed(&addr, err))?;
        let messages = decode_messages(&answer.body, &broker)
            .map_err(|err| ClientError::malformed(&addr, err))?;
        let answer = PopAnswer::new(
            header.start_offset_info.as_deref().unwrap_or(""),
            header.pop_time,
            header.invisible_time,
            header.revive_qid,
            &broker,
        );
        let order_counts =
            OrderCountInfo::from_text(header.order_count_info.as_deref().unwrap_or(""));
        let mut popped = Vec::with_capacity(messages.len());
        for mut message in messages {
            if request.orderly {
                let earlier = order_counts.count(
                    &message.queue.topic,
                    message.queue.queue_id,
                    message.queue_offset,
                );
                message.reconsume_times = i32::try_from(earlier).unwrap_or(i32::MAX);
            }
            let receipt = answer
                .receipt(
                    &message.queue.topic,
                    message.queue.queue_id,
                    message.queue_offset,
                )
                .encode();
            // What was sent to: a redelivered message keeps its original topic.
            message.topic = request.topic.to_owned();
            popped.push(PoppedMessage { message, receipt });
        }
        Ok(PopResult {
            messages: popped,
            rest: header.rest_num,
        })
    }

    /// Acknowledges a popped message: it will not come back.
    pub async fn ack(&self, popped: &PoppedMessage) -> Result<()> {
        self.check_open()?;
        let queue = &popped.message.queue;
        let addr = self
            .master(&popped.message.topic, &queue.broker_name)
            .await?;
        let header = AckMessageRequestHeader {
            consumer_group: self.group.clone(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            extra_info: popped.receipt.clone(),
            offset: popped.message.queue_offset,
            broker_name: Some(queue.broker_name.clone()),
        };
        let command = RemotingCommand::request(request::ACK_MESSAGE).with_header(&header);
        let timeout = self.instance.options().request_timeout;
        self.instance
            .invoke_ok(&addr, command, timeout)
            .await
            .map(|_| ())
    }

    /// Makes a popped message visible again `invisible_time` from now; returns its new
    /// receipt handle.
    pub async fn change_invisible_time(
        &self,
        popped: &PoppedMessage,
        invisible_time: Duration,
    ) -> Result<String> {
        self.check_open()?;
        let queue = &popped.message.queue;
        let addr = self
            .master(&popped.message.topic, &queue.broker_name)
            .await?;
        let header = ChangeInvisibleTimeRequestHeader {
            consumer_group: self.group.clone(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            extra_info: popped.receipt.clone(),
            offset: popped.message.queue_offset,
            invisible_time: millis(invisible_time),
            broker_name: Some(queue.broker_name.clone()),
        };
        let command =
            RemotingCommand::request(request::CHANGE_MESSAGE_INVISIBLETIME).with_header(&header);
        let timeout = self.instance.options().request_timeout;
        let answer = self.instance.invoke_ok(&addr, command, timeout).await?;
        let renewed = answer
            .decode_header::<ChangeInvisibleTimeResponseHeader>()
            .map_err(|err| ClientError::malformed(&addr, err))?;
        let old = PopReceipt::parse(&popped.receipt, popped.message.queue_offset)
            .map_err(|err| ClientError::InvalidArgument(err.to_owned()))?;
        Ok(PopReceipt {
            checkpoint_offset: popped.message.queue_offset,
            pop_time: renewed.pop_time,
            invisible_time: renewed.invisible_time,
            revive_qid: renewed.revive_qid,
            ..old
        }
        .encode())
    }

    pub fn shutdown(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
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

    async fn master(&self, topic: &str, broker: &str) -> Result<String> {
        if let Some(addr) = self.instance.master_addr(broker) {
            return Ok(addr);
        }
        self.instance.refresh_route_soon(topic).await;
        self.instance
            .master_addr(broker)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: broker.to_owned(),
            })
    }
}

impl Drop for PopConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
