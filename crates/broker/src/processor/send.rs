//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).
//!
//! The batch flag in the header decides whether the body is a batch, not the code: the C++
//! client sends batches as SEND_MESSAGE_V2 with `m=true`.
//!
//! Checks, in RocketMQ's order: header; role and broker permission; topic name; topics
//! clients may not send to; topic exists (else auto-created from `defaultTopic`); topic
//! writable; queue id; body size; properties; transactions (`rejectTransactionMessage`).
//! A transactional send is stored as a half message (see [`crate::transaction`]); the
//! answer names the queue it was sent to and the half message's queue offset and offset
//! msgId, which END_TRANSACTION names back. A send to a
//! `%RETRY%` topic past the group's max reconsume times goes to its `%DLQ%` topic. A
//! message with a delay level (`DELAY` > 0; above the last level means the last) is stored
//! in `SCHEDULE_TOPIC_XXXX` to wait (see [`crate::schedule`]); the answer still names the
//! queue it was sent to. Batches cannot be delayed (RocketMQ refuses them too). A timer
//! message (`TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`) is stored in the
//! timer topic to wait (see [`crate::timer`]) and the answer carries its recall handle.
//! With `enableTopicMessageTypeCheck`, a message whose kind differs from its topic's
//! `message.type` is refused.

use std::sync::Arc;

use message::properties::{self, keys, MAX_PROPERTIES_LEN};
use message::topic::{
    self, is_not_allowed_send_topic, not_allowed_send_remark, DLQ_GROUP_TOPIC_PREFIX,
};
use message::validate;
use message::{decode_batch, offset_msg_id, record::MAX_TOPIC_LEN_V1};
use rand::Rng;
use remoting::body::{perm, TopicConfig};
use remoting::code::response;
use remoting::command::{version, RemotingCommand};
use remoting::header::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use std::net::SocketAddr;
use tracing::{info, warn};

use super::Refusal;
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::group::handoff::{self, Forwarded};
use crate::instruments::MessageKind;
use crate::limits;
use crate::metadata::attributes;
use crate::record::{append_record, complete_properties, NewMessage};
use crate::schedule::divert::{self, Diverted};
use crate::schedule::SCHEDULE_TOPIC;
use crate::stats_items;
use crate::store_facade::{PutOutcome, RecordBatch};
use crate::timer::{self, TIMER_TOPIC};
use crate::transaction::{bridge, TRANS_HALF_TOPIC};

pub async fn process(
    ctx: &Arc<BrokerContext>,
    producer: SocketAddr,
    request: &RemotingCommand,
) -> RemotingCommand {
    // Forwarded once already: answer here, whatever this member thinks of the master.
    if handoff::was_forwarded(request) {
        return process_send(ctx, producer, request).await;
    }
    if let Some(new_master) = ctx.handoff.forwarding_to() {
        match ctx.handoff.forward(&new_master, request).await {
            Forwarded::Answered(response) | Forwarded::Unanswered(response) => return response,
            Forwarded::NotSent => {}
        }
    }
    let was_master = ctx.role.is_master();
    let response = process_send(ctx, producer, request).await;
    answer_after_handoff(ctx, request, response, was_master).await
}

async fn process_send(
    ctx: &Arc<BrokerContext>,
    producer: SocketAddr,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = match SendMessageRequestHeader::from_request(request.code, &request.ext_fields) {
        Ok(header) => header,
        Err(e) => return Refusal::from(e).into_response(request),
    };
    let target = match check(ctx, producer, request, &header).await {
        Ok(target) => target,
        Err(refusal) => return refusal.into_response(request),
    };
    let result = if is_batch(request, &header) {
        send_batch(ctx, producer, request, &header, &target).await
    } else {
        send_one(ctx, producer, request, &header, &target).await
    };
    result.unwrap_or_else(|refusal| refusal.into_response(request))
}

/// How long a send a master refused waits for the member to notice its demotion.
const DEMOTION_NOTICE: std::time::Duration = std::time::Duration::from_millis(200);

/// A send reaching a master that is handing leadership off: refused ones wait for the new
/// master and go on to it, as do all sends once the new master is known (until this node
/// stops), so producers whose routes still name this node see no error.
async fn answer_after_handoff(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    response: RemotingCommand,
    was_master: bool,
) -> RemotingCommand {
    if response.code != response::SERVICE_NOT_AVAILABLE || ctx.group.is_none() {
        return response;
    }
    if was_master {
        // Refused by a master: most likely leadership moved under this very send, a moment
        // before this member noticed its demotion and began looking for the new master.
        ctx.handoff.wait_demotion_noticed(DEMOTION_NOTICE).await;
    }
    let Some(new_master) = ctx.handoff.wait_outcome(handoff::HANDOFF_TIMEOUT).await else {
        return response;
    };
    match ctx.handoff.forward(&new_master, request).await {
        Forwarded::Answered(forwarded) | Forwarded::Unanswered(forwarded) => forwarded,
        Forwarded::NotSent => response,
    }
}

/// Whether the body is a batch. The flag decides, not the code; besides Java's `true`,
/// the C++ client 1.x sends `batch=1` with SEND_MESSAGE, which Java's `parseBoolean`
/// would read as false and store the batch as one message.
fn is_batch(request: &RemotingCommand, header: &SendMessageRequestHeader) -> bool {
    header.is_batch()
        || ["batch", "m"]
            .iter()
            .any(|key| request.ext_field(key).is_some_and(|v| v.trim() == "1"))
}

/// Where a validated send goes.
pub(crate) struct Target {
    pub(crate) topic: String,
    pub(crate) queue_id: i32,
    /// A lite message's own queue (queue 0 of this LMQ), where it is stored instead.
    pub(crate) lmq: Option<String>,
}

/// A send's checks, in RocketMQ's order (replies go through them too).
pub(crate) async fn check(
    ctx: &BrokerContext,
    producer: SocketAddr,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
) -> Result<Target, Refusal> {
    if !ctx.role.is_master() {
        return Err(Refusal::new(
            response::SERVICE_NOT_AVAILABLE,
            "the broker is a slave; send to its master",
        ));
    }
    if !ctx.is_writeable() {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] sending message is forbidden",
                ctx.config.broker_ip1
            ),
        ));
    }
    let topic = header.topic.as_str();
    if let Err(e) = validate::validate_topic(topic) {
        return Err(Refusal::new(response::INVALID_PARAMETER, e.to_string()));
    }
    if is_not_allowed_send_topic(topic) {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            not_allowed_send_remark(topic),
        ));
    }
    let topic_config = topic_for_send(ctx, producer, header).await?;
    if !perm::is_writeable(topic_config.perm) {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!("the topic[{topic}] sending message is forbidden"),
        ));
    }
    if ctx.config.enable_topic_message_type_check
        && !topic::is_retry_topic(topic)
        && !topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
    {
        let properties = header.properties.as_deref().unwrap_or("");
        if properties::find(properties, keys::TRANSFER_FLAG).is_none() {
            attributes::check_message_type(
                attributes::message_type_of_topic(&topic_config.attributes),
                attributes::message_type_of(properties),
            )
            .map_err(|mismatch| Refusal::new(response::MESSAGE_ILLEGAL, mismatch.to_string()))?;
        }
    }
    let lmq = lite_queue(
        ctx,
        topic,
        &topic_config,
        header.properties.as_deref().unwrap_or(""),
    )?;
    let queue_limit = topic_config
        .write_queue_nums
        .max(topic_config.read_queue_nums);
    if header.queue_id >= queue_limit {
        return Err(Refusal::new(response::INVALID_PARAMETER,
            format!(
                "request queueId[{}] is illegal, topic {topic} has {queue_limit} queues, producer: {}",
                header.queue_id,
                producer
            ),
        ));
    }
    let max_body = ctx.live.max_message_size() as usize;
    if request.body.len() > max_body {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            format!(
                "the message body size {} is over the max value {max_body}",
                request.body.len()
            ),
        ));
    }
    let client_properties = header.properties.as_deref().unwrap_or("");
    if client_properties.len() > MAX_PROPERTIES_LEN {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            format!(
                "the message properties size {} is over the max value {MAX_PROPERTIES_LEN}",
                client_properties.len()
            ),
        ));
    }
    if ctx.config.reject_transaction_message
        && bridge::is_transactional(
            client_properties,
            header.sys_flag,
            header.reconsume_times.unwrap_or(0),
        )
    {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] sending transaction message is forbidden",
                ctx.config.broker_ip1
            ),
        ));
    }
    let queue_id = if header.queue_id < 0 {
        rand::thread_rng().gen_range(0..topic_config.write_queue_nums.max(1))
    } else {
        header.queue_id
    };
    let target = Target {
        topic: topic.to_owned(),
        queue_id,
        lmq,
    };
    retry_or_dead_letter(ctx, request, header, target).await
}

/// The topic's config, auto-creating it from `defaultTopic` (or as a retry topic) when
/// absent and allowed.
async fn topic_for_send(
    ctx: &BrokerContext,
    producer: SocketAddr,
    header: &SendMessageRequestHeader,
) -> Result<Arc<TopicConfig>, Refusal> {
    let topic = header.topic.as_str();
    if let Some(config) = ctx.topics.get(topic) {
        return Ok(config);
    }
    let not_exist = |reason: &str| {
        Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please! ({reason})"),
        )
    };
    let created = if topic::is_retry_topic(topic) {
        ctx.topic_or_create(topic, 1, perm::READ_WRITE)
            .await
            .map_err(|e| not_exist(&e.to_string()))?
    } else {
        let config = ctx
            .topics
            .config_for_auto_create(
                topic,
                &header.default_topic,
                header.default_topic_queue_nums,
                0,
            )
            .map_err(|reason| not_exist(&reason.to_string()))?;
        ctx.create_topic(config)
            .await
            .map_err(|e| not_exist(&e.to_string()))?
    };
    info!(%topic, producer = %producer, queues = created.write_queue_nums,
        "auto-created topic on send");
    Ok(created)
}

/// RocketMQ `handleRetryAndDLQ`: a retried message past the group's limit goes to the
/// group's dead-letter topic.
async fn retry_or_dead_letter(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    target: Target,
) -> Result<Target, Refusal> {
    let Some(group) = target.topic.strip_prefix(topic::RETRY_GROUP_TOPIC_PREFIX) else {
        return Ok(target);
    };
    let group_config = match ctx.group_or_create(group).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            return Err(Refusal::new(
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group not exist, {group}"),
            ))
        }
        Err(e) => return Err(Refusal::new(response::SYSTEM_ERROR, e.to_string())),
    };
    let mut max_reconsume_times = group_config.retry_max_times;
    if request.version >= version::V3_4_9 {
        if let Some(max) = header.max_reconsume_times {
            max_reconsume_times = max;
        }
    }
    let reconsume_times = header.reconsume_times.unwrap_or(0);
    if reconsume_times < max_reconsume_times {
        return Ok(target);
    }
    let dlq = format!("{DLQ_GROUP_TOPIC_PREFIX}{group}");
    if let Err(e) = ctx.topic_or_create(&dlq, 1, perm::READ_WRITE).await {
        return Err(Refusal::new(
            response::SYSTEM_ERROR,
            format!("topic[{dlq}] not exist: {e}"),
        ));
    }
    warn!(%group, reconsume_times, max_reconsume_times, "retried message goes to the dead-letter queue");
    Ok(Target {
        topic: dlq,
        queue_id: 0,
        lmq: None,
    })
}

/// A lite message (RocketMQ 5.5) goes to its lite topic's own queue. That takes a `LITE`
/// parent whatever `enableTopicMessageTypeCheck` says (nothing else consumes lite topics), a
/// name RocketMQ's proxy would take, no other kind (delay, FIFO, transaction) besides, and,
/// for a new lite topic, room under `maxLmqConsumeQueueNum`.
fn lite_queue(
    ctx: &BrokerContext,
    topic: &str,
    topic_config: &TopicConfig,
    properties: &str,
) -> Result<Option<String>, Refusal> {
    let Some(lite_topic) = properties::find(properties, keys::LITE_TOPIC) else {
        return Ok(None);
    };
    let illegal = |remark: String| Refusal::new(response::MESSAGE_ILLEGAL, remark);
    attributes::check_message_type(
        attributes::message_type_of_topic(&topic_config.attributes),
        "LITE",
    )
    .map_err(|mismatch| illegal(mismatch.to_string()))?;
    let kind = attributes::message_type_of(properties);
    if kind != "LITE" {
        return Err(illegal(format!("a lite message cannot also be {kind}")));
    }
    topic::validate_lite_topic(lite_topic)
        .map_err(|e| Refusal::new(response::INVALID_PARAMETER, e.to_string()))?;
    let lmq = topic::lmq_name(topic, lite_topic);
    let reader = ctx.store.reader();
    let quota = ctx.config.max_lmq_consume_queue_num;
    if !reader.has_queue(&lmq, 0) && reader.count_topics_with_prefix(topic::LMQ_PREFIX) >= quota {
        return Err(Refusal::new(
            response::LMQ_QUOTA_EXCEEDED,
            format!("this broker holds {quota} lite topics already (maxLmqConsumeQueueNum)"),
        ));
    }
    Ok(Some(lmq))
}

/// Stores one message; the answer carries where it went.
pub(crate) async fn send_one(
    ctx: &BrokerContext,
    producer: SocketAddr,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    target: &Target,
) -> Result<RemotingCommand, Refusal> {
    let stored_properties = complete_properties(
        header.properties.as_deref().unwrap_or(""),
        &ctx.config.broker_cluster_name,
        || ctx.uniq_ids.next_id(),
    )
    .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))?;
    let reconsume_times = header.reconsume_times.unwrap_or(0);
    let mut timer_slot_ms = None;
    let (topic, queue_id, stored_properties, sys_flag) =
        if bridge::is_transactional(&stored_properties, header.sys_flag, reconsume_times) {
            // A delay level waits until the commit: the committed message is diverted then.
            let half = bridge::into_half(
                &stored_properties,
                header.sys_flag,
                &target.topic,
                target.queue_id,
            )
            .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))?;
            (TRANS_HALF_TOPIC, 0, half.properties, half.sys_flag)
        } else {
            match delay(ctx, &stored_properties, target)? {
                Some(diverted) => (
                    SCHEDULE_TOPIC,
                    diverted.queue_id,
                    diverted.properties,
                    header.sys_flag,
                ),
                None => match put_aside(ctx, &stored_properties, target)? {
                    Some(aside) => {
                        timer_slot_ms = Some(aside.slot_ms);
                        (
                            TIMER_TOPIC,
                            timer::MESSAGE_QUEUE,
                            aside.properties,
                            header.sys_flag,
                        )
                    }
                    None => (
                        target.lmq.as_deref().unwrap_or(&target.topic),
                        if target.lmq.is_some() {
                            0
                        } else {
                            target.queue_id
                        },
                        stored_properties,
                        header.sys_flag,
                    ),
                },
            }
        };
    let message = NewMessage {
        topic,
        queue_id,
        body: &request.body,
        flag: header.flag,
        properties: &stored_properties,
        sys_flag,
        born_timestamp_ms: header.born_timestamp,
        born_host: producer,
        reconsume_times,
    };
    let mut batch =
        RecordBatch::with_capacity(request.body.len() + stored_properties.len() + 160, 1);
    append_record(&mut batch, &message, ctx.store_host)
        .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))?;
    let uniq_key = properties::find(&stored_properties, keys::UNIQ_KEY).map(str::to_owned);
    // RocketMQ hands out a recall handle for a timer message, unless it is a retry.
    let recall_handle = timer_slot_ms
        .zip(uniq_key.as_deref())
        .filter(|_| !topic::is_retry_topic(&target.topic))
        .map(|(slot_ms, uniq)| {
            remoting::recall_handle::encode(&target.topic, &ctx.config.broker_name, slot_ms, uniq)
        });
    let bytes = batch.byte_len() as u64;
    let outcome = put(ctx, batch).await?;
    count_put(
        ctx,
        header,
        &target.topic,
        outcome.messages.len() as u64,
        bytes,
    );
    if timer_slot_ms.is_some() {
        ctx.metrics.timer_enqueued(&target.topic);
    }
    Ok(respond(
        ctx,
        request,
        target,
        &outcome,
        uniq_key,
        recall_handle,
    ))
}

async fn send_batch(
    ctx: &BrokerContext,
    producer: SocketAddr,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    target: &Target,
) -> Result<RemotingCommand, Refusal> {
    if target.topic.len() > MAX_TOPIC_LEN_V1 {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "message topic length too long for a batch",
        ));
    }
    if topic::is_retry_topic(&target.topic) {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "batch request does not support retry group",
        ));
    }
    if target.lmq.is_some() {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "batch messages cannot be lite messages",
        ));
    }
    let batch_properties = header.properties.as_deref().unwrap_or("");
    if bridge::is_transactional(batch_properties, header.sys_flag, 0) {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "batch messages cannot be transactional",
        ));
    }
    if ctx
        .delay_levels
        .clamp(message::delay::requested_level(batch_properties))
        .is_some()
    {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "batch messages cannot be delayed (DELAY)",
        ));
    }
    let items = decode_batch(&request.body, limits::MAX_BATCH_MESSAGES)
        .map_err(|e| Refusal::new(response::MESSAGE_ILLEGAL, format!("bad batch body: {e}")))?;
    // A timer property would be ignored in a batch: refused rather than delivered at once.
    if std::iter::once(batch_properties)
        .chain(items.iter().map(|item| item.properties))
        .any(timer::request::is_timer_message)
    {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            "batch messages cannot be timer messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS)",
        ));
    }
    let mut batch = RecordBatch::with_capacity(request.body.len() + items.len() * 200, items.len());
    for item in &items {
        let stored_properties =
            complete_properties(item.properties, &ctx.config.broker_cluster_name, || {
                ctx.uniq_ids.next_id()
            })
            .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))?;
        let message = NewMessage {
            topic: &target.topic,
            queue_id: target.queue_id,
            body: item.body,
            flag: item.flag,
            properties: &stored_properties,
            sys_flag: header.sys_flag,
            born_timestamp_ms: header.born_timestamp,
            born_host: producer,
            reconsume_times: header.reconsume_times.unwrap_or(0),
        };
        append_record(&mut batch, &message, ctx.store_host)
            .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))?;
    }
    let uniq_key = header
        .properties
        .as_deref()
        .and_then(|p| properties::find(p, keys::UNIQ_KEY))
        .map(str::to_owned);
    let bytes = batch.byte_len() as u64;
    let outcome = put(ctx, batch).await?;
    count_put(
        ctx,
        header,
        &target.topic,
        outcome.messages.len() as u64,
        bytes,
    );
    Ok(respond(ctx, request, target, &outcome, uniq_key, None))
}

/// Where a message with a delay level waits instead of its target; `None` when it asks for
/// none or goes to a dead-letter queue (dead letters are never delayed).
fn delay(
    ctx: &BrokerContext,
    stored_properties: &str,
    target: &Target,
) -> Result<Option<Diverted>, Refusal> {
    if target.topic.starts_with(DLQ_GROUP_TOPIC_PREFIX) {
        return Ok(None);
    }
    divert::by_delay_property(
        &ctx.delay_levels,
        stored_properties,
        &target.topic,
        target.queue_id,
    )
    .map_err(|reason| Refusal::new(response::MESSAGE_ILLEGAL, reason.to_string()))
}

/// Where a timer message waits instead of its target; `None` when it asks for no timer,
/// its time has come, or it goes to a dead-letter queue.
fn put_aside(
    ctx: &BrokerContext,
    stored_properties: &str,
    target: &Target,
) -> Result<Option<timer::request::PutAside>, Refusal> {
    if target.topic.starts_with(DLQ_GROUP_TOPIC_PREFIX) {
        return Ok(None);
    }
    timer::request::put_aside(
        stored_properties,
        &ctx.timer,
        now_ms(),
        &target.topic,
        target.queue_id,
    )
    .map_err(timer_refusal)
}

/// RocketMQ's answers to a timer message it cannot take.
pub(crate) fn timer_refusal(refusal: timer::request::TimerRefusal) -> Refusal {
    let code = match refusal {
        timer::request::TimerRefusal::NotEnabled => response::SYSTEM_ERROR,
        _ => response::MESSAGE_ILLEGAL,
    };
    Refusal::new(code, refusal.to_string())
}

/// Per-topic and broker-wide traffic (VIEW_BROKER_STATS_DATA, and the Prometheus counters
/// under the topic the producer named, whatever system topic a delay or a transaction
/// parks the message in first).
fn count_put(
    ctx: &BrokerContext,
    header: &SendMessageRequestHeader,
    topic: &str,
    messages: u64,
    bytes: u64,
) {
    if ctx.metrics.enabled() {
        let properties = header.properties.as_deref().unwrap_or("");
        let kind = MessageKind::from_type_name(attributes::message_type_of(properties));
        ctx.metrics.messages_put(topic, kind, messages, bytes);
    }
    let items = &ctx.stats_items;
    items.add(stats_items::TOPIC_PUT_NUMS, topic, messages);
    items.add(stats_items::TOPIC_PUT_SIZE, topic, bytes);
    items.add(
        stats_items::BROKER_PUT_NUMS,
        &ctx.config.broker_cluster_name,
        messages,
    );
}

async fn put(ctx: &BrokerContext, batch: RecordBatch) -> Result<PutOutcome, Refusal> {
    let count = batch.len() as u64;
    match ctx.store.put(batch).await {
        Ok(outcome) => {
            ctx.stats.add_put(count);
            Ok(outcome)
        }
        Err(e) => {
            warn!(error = %e, "put failed");
            Err(Refusal::new(e.response_code(), e.to_string()))
        }
    }
}

fn respond(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    target: &Target,
    outcome: &PutOutcome,
    uniq_key: Option<String>,
    recall_handle: Option<String>,
) -> RemotingCommand {
    let msg_id = outcome
        .messages
        .iter()
        .map(|m| offset_msg_id(ctx.store_host, m.phys_offset))
        .collect::<Vec<_>>()
        .join(",");
    let queue_offset = outcome.messages.first().map_or(0, |m| m.queue_offset);
    RemotingCommand::response_to(request, outcome.status.response_code()).with_header(
        &SendMessageResponseHeader {
            msg_id,
            queue_id: target.queue_id,
            queue_offset,
            transaction_id: uniq_key,
            batch_uniq_id: None,
            recall_handle,
            msg_region: Some(ctx.config.region_id.clone()),
            trace_on: Some(ctx.config.trace_on),
        },
    )
}
