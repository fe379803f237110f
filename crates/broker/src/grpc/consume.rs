//! ReceiveMessage, AckMessage, ChangeInvisibleDuration and ForwardMessageToDeadLetterQueue:
//! 5.x consumers over the POP engine (see [`crate::pop`]). A receive is a pop of every
//! queue of the topic (and the group's pop retry topic) on this broker; the receipt handle
//! a client gets is the pop's receipt followed by the message's CommitLog offset, as
//! RocketMQ's proxy makes it.
//!
//! A lite consumer's receive pops the lite topics it subscribed (POP_LITE_MESSAGE,
//! orderly per lite topic); its handles name the lite topic too, so that an ack or a change
//! finds the message's queue whether or not the client names it.
//!
//! A FIFO group (`consumeMessageOrderly`) receives by orderly pops, as RocketMQ's proxy
//! asks them: a queue's next messages only once its last ones are acknowledged or timed
//! out. Its delivery attempts come from the pop's order counts, and a message delivered
//! `max_attempts` times already goes to the dead-letter queue instead of to the client.

use std::sync::Arc;

use grpc::v2::{self, receive_message_response::Content, Code};
use message::MessageIter;
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::header::client::ConsumerSendMsgBackRequestHeader;
use remoting::header::pop::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
    PopLiteMessageRequestHeader, PopMessageRequestHeader, PopMessageResponseHeader,
};
use remoting::pop_receipt::{OrderCountInfo, PopAnswer, PopReceipt, RetryFlag};

use super::clients::{ConsumerPolicy, MAX_LONG_POLLING_MS, RECEIVE_BATCH};
use super::convert::{self, duration_ms, resource_name};
use super::relay::MasterRelay;
use super::status;
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::processor::{lite, pop, pop_ack, send_back};

/// The invisible time of a push consumer's receive (it asks for none and renews).
const DEFAULT_INVISIBLE_MS: i64 = 60_000;
/// How long an ack, a change or a dead-lettering may take on the master.
const QUICK: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest invisible time a receive or a change may ask for (RocketMQ's proxy's bound).
const MAX_INVISIBLE_MS: i64 = 12 * 3600 * 1000;

fn done(status: Option<v2::Status>) -> Vec<v2::ReceiveMessageResponse> {
    vec![
        v2::ReceiveMessageResponse {
            content: Some(Content::Status(status.unwrap_or_default())),
        },
        v2::ReceiveMessageResponse {
            content: Some(Content::DeliveryTimestamp(convert::timestamp(now_ms()))),
        },
    ]
}

/// The least a receive that names no long-polling time is held (RocketMQ's proxy's
/// `grpcClientConsumerMinLongPollingTimeoutMillis`).
const MIN_LONG_POLLING_MS: i64 = 5_000;

/// How long a receive may hold: what it asked for, else, as RocketMQ's proxy decides, the
/// time left before the call's deadline less half the client's request timeout; within
/// 5 to 20 s, and never past the deadline. `None`: the deadline leaves less than the least
/// poll.
pub fn poll_time_ms(
    asked_ms: Option<i64>,
    remaining_ms: Option<i64>,
    request_timeout_ms: i64,
) -> Option<i64> {
    let wanted = asked_ms.unwrap_or_else(|| {
        remaining_ms.map_or(MAX_LONG_POLLING_MS, |left| left - request_timeout_ms / 2)
    });
    let poll = wanted.clamp(MIN_LONG_POLLING_MS, MAX_LONG_POLLING_MS);
    match remaining_ms {
        Some(left) if poll > left && left < MIN_LONG_POLLING_MS => None,
        Some(left) if poll > left => Some(left),
        _ => Some(poll),
    }
}

/// The whole answer of one receive, in the order RocketMQ's proxy writes it: the status,
/// the messages, the delivery time. `remaining_ms`: what the call's deadline leaves;
/// `request_timeout_ms`: the client's request timeout from its settings; `lite_client`:
/// the lite consumer whose lite topics the receive pops.
pub async fn receive(
    ctx: &Arc<BrokerContext>,
    relay: &MasterRelay,
    request: v2::ReceiveMessageRequest,
    remaining_ms: Option<i64>,
    request_timeout_ms: i64,
    lite_client: Option<String>,
) -> Vec<v2::ReceiveMessageResponse> {
    let group = resource_name(request.group.as_ref());
    let topic = resource_name(
        request
            .message_queue
            .as_ref()
            .and_then(|q| q.topic.as_ref()),
    );
    let invisible_ms = request
        .invisible_duration
        .as_ref()
        .map(duration_ms)
        .filter(|ms| *ms > 0)
        .unwrap_or(DEFAULT_INVISIBLE_MS);
    if invisible_ms > MAX_INVISIBLE_MS {
        return done(status::of(
            Code::IllegalInvisibleTime,
            format!("the invisible time is at most {MAX_INVISIBLE_MS} ms"),
        ));
    }
    let asked = request.long_polling_timeout.as_ref().map(duration_ms);
    let Some(poll_ms) = poll_time_ms(asked, remaining_ms, request_timeout_ms) else {
        return done(status::of(
            Code::IllegalPollingTime,
            "the call's deadline leaves too little time to poll",
        ));
    };
    let (exp_type, exp) = convert::filter_of(request.filter_expression.as_ref());
    let policy = ConsumerPolicy::of(ctx, &group);
    let orderly = policy.fifo || lite_client.is_some();
    let max_msg_nums = request.batch_size.clamp(1, RECEIVE_BATCH);
    let command = match lite_client {
        Some(client_id) => RemotingCommand::request(code::POP_LITE_MESSAGE).with_header(
            &PopLiteMessageRequestHeader {
                client_id,
                consumer_group: group.clone(),
                topic: topic.clone(),
                max_msg_num: max_msg_nums,
                invisible_time: invisible_ms,
                poll_time: poll_ms,
                born_time: now_ms(),
                attempt_id: request.attempt_id.clone(),
            },
        ),
        None => RemotingCommand::request(code::POP_MESSAGE).with_header(&PopMessageRequestHeader {
            consumer_group: group.clone(),
            topic: topic.clone(),
            queue_id: -1,
            max_msg_nums,
            invisible_time: invisible_ms,
            poll_time: poll_ms,
            born_time: now_ms(),
            init_mode: 1,
            exp_type: Some(exp_type.to_owned()),
            exp: Some(exp),
            order: Some(policy.fifo),
            attempt_id: request.attempt_id.clone(),
            broker_name: None,
        }),
    };
    let takes = std::time::Duration::from_millis(poll_ms as u64);
    let answer = relay
        .run(ctx, command, takes, |command| async move {
            if command.code == code::POP_LITE_MESSAGE {
                lite::pop(ctx, &command, std::future::pending()).await
            } else {
                pop::process(ctx, &command, std::future::pending()).await
            }
        })
        .await;
    match answer.code {
        response::SUCCESS => {}
        response::POLLING_TIMEOUT => {
            return done(status::of(Code::MessageNotFound, "no new message"));
        }
        response::POLLING_FULL => return done(status::of(Code::TooManyRequests, "polling full")),
        other => return done(status::of_remoting(other, answer.remark.as_deref())),
    }
    let popped: PopMessageResponseHeader = match answer.decode_header() {
        Ok(popped) => popped,
        Err(e) => return done(status::of(Code::InternalServerError, e.to_string())),
    };
    let receipts = PopAnswer::new(
        popped.start_offset_info.as_deref().unwrap_or(""),
        popped.pop_time,
        popped.invisible_time,
        popped.revive_qid,
        &ctx.config.broker_name,
    );
    let order_counts = OrderCountInfo::from_text(popped.order_count_info.as_deref().unwrap_or(""));
    let mut responses = vec![v2::ReceiveMessageResponse {
        content: Some(Content::Status(status::ok().unwrap_or_default())),
    }];
    let mut exhausted = Vec::new();
    // The records come as the store's own buffers (one chunk each, or a plain body).
    let records = std::iter::once(&answer.body).chain(answer.body_chunks.iter());
    for view in records.flat_map(|chunk| MessageIter::new(chunk)) {
        let Ok(view) = view else {
            break;
        };
        let receipt = receipts.receipt(view.topic(), view.queue_id(), view.queue_offset());
        let handle = Handle {
            extra_info: receipt.encode(),
            receipt,
            commit_log_offset: view.physical_offset(),
            lite_topic: message::topic::lmq_parts(view.topic()).map(|(_, lite)| lite.to_owned()),
        };
        let mut message = convert::incoming(&view, &topic, Some(handle.encode()));
        if orderly {
            let earlier = order_counts.count(view.topic(), view.queue_id(), view.queue_offset());
            let earlier = i32::try_from(earlier).unwrap_or(i32::MAX);
            if earlier >= policy.max_attempts {
                exhausted.push((
                    handle,
                    message
                        .system_properties
                        .as_ref()
                        .map(|s| s.message_id.clone())
                        .unwrap_or_default(),
                ));
                continue;
            }
            if let Some(system) = message.system_properties.as_mut() {
                system.delivery_attempt = Some(earlier.saturating_add(1));
            }
        }
        responses.push(v2::ReceiveMessageResponse {
            content: Some(Content::Message(message)),
        });
    }
    for (handle, message_id) in exhausted {
        let status = dead_letter(ctx, relay, &group, &topic, handle, message_id).await;
        if status.as_ref().is_some_and(|s| s.code != Code::Ok as i32) {
            tracing::warn!(%group, %topic, ?status,
                "a FIFO message past its max attempts was not moved to the dead-letter queue");
        }
    }
    responses.push(v2::ReceiveMessageResponse {
        content: Some(Content::DeliveryTimestamp(convert::timestamp(now_ms()))),
    });
    responses
}

/// A receipt handle this broker gave out: the pop receipt and the CommitLog offset, and
/// the lite topic of a lite message.
struct Handle {
    receipt: PopReceipt,
    extra_info: String,
    commit_log_offset: i64,
    lite_topic: Option<String>,
}

/// Marks a handle's lite topic (no lite topic name has a `=`).
const LITE_MARK: &str = "lite=";

impl Handle {
    fn encode(&self) -> String {
        match &self.lite_topic {
            Some(lite) => format!(
                "{} {} {LITE_MARK}{lite}",
                self.extra_info, self.commit_log_offset
            ),
            None => format!("{} {}", self.extra_info, self.commit_log_offset),
        }
    }
}

fn handle_of(text: &str) -> Result<Handle, Option<v2::Status>> {
    let invalid = || {
        status::of(
            Code::InvalidReceiptHandle,
            "the receipt handle is not valid",
        )
    };
    let (text, lite_topic) = match text.rsplit_once(' ') {
        Some((rest, last)) if last.starts_with(LITE_MARK) => {
            let lite = &last[LITE_MARK.len()..];
            message::topic::validate_lite_topic(lite).map_err(|_| invalid())?;
            (rest, Some(lite.to_owned()))
        }
        _ => (text, None),
    };
    let (extra_info, commit_log_offset) = text.rsplit_once(' ').ok_or_else(invalid)?;
    let commit_log_offset = commit_log_offset.parse().map_err(|_| invalid())?;
    let receipt = PopReceipt::parse(extra_info, -1).map_err(|_| invalid())?;
    if receipt.offset < 0 {
        return Err(invalid());
    }
    Ok(Handle {
        receipt,
        extra_info: extra_info.to_owned(),
        commit_log_offset,
        lite_topic,
    })
}

/// The topic the handle's message is stored in.
fn stored_topic(group: &str, topic: &str, handle: &Handle) -> String {
    if let Some(lite) = &handle.lite_topic {
        return message::topic::lmq_name(topic, lite);
    }
    match handle.receipt.retry {
        RetryFlag::Normal => topic.to_owned(),
        RetryFlag::RetryV1 => message::topic::pop_retry_topic(group, topic),
        RetryFlag::RetryV2 => message::topic::pop_retry_topic_v2(group, topic),
    }
}

fn expired(receipt: &PopReceipt) -> bool {
    receipt.pop_time.saturating_add(receipt.invisible_time) <= now_ms()
}

pub async fn ack(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    request: v2::AckMessageRequest,
) -> v2::AckMessageResponse {
    let group = resource_name(request.group.as_ref());
    let topic = resource_name(request.topic.as_ref());
    let mut entries = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let status = match handle_of(&entry.receipt_handle) {
            Err(refusal) => refusal,
            Ok(handle) if expired(&handle.receipt) => {
                status::of(Code::InvalidReceiptHandle, "receipt handle is expired")
            }
            Ok(handle) => {
                let answer = ack_handle(ctx, relay, &group, &topic, handle).await;
                status::of_remoting(answer.code, answer.remark.as_deref())
            }
        };
        entries.push(v2::AckMessageResultEntry {
            message_id: entry.message_id.clone(),
            receipt_handle: entry.receipt_handle.clone(),
            status,
        });
    }
    let mut codes: Vec<i32> = entries
        .iter()
        .filter_map(|e| e.status.as_ref().map(|s| s.code))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let status = match codes.as_slice() {
        [] => status::of(Code::BadRequest, "no entries to acknowledge"),
        [_] => entries.first().and_then(|e| e.status.clone()),
        _ => status::of(Code::MultipleResults, "the entries had different outcomes"),
    };
    v2::AckMessageResponse { status, entries }
}

pub async fn change_invisible_duration(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    request: v2::ChangeInvisibleDurationRequest,
) -> v2::ChangeInvisibleDurationResponse {
    let refused = |status| v2::ChangeInvisibleDurationResponse {
        status,
        receipt_handle: String::new(),
    };
    let group = resource_name(request.group.as_ref());
    let topic = resource_name(request.topic.as_ref());
    let invisible_ms = request.invisible_duration.as_ref().map_or(0, duration_ms);
    if !(0..=MAX_INVISIBLE_MS).contains(&invisible_ms) {
        return refused(status::of(
            Code::IllegalInvisibleTime,
            format!("the invisible time must be 0 to {MAX_INVISIBLE_MS} ms"),
        ));
    }
    let handle = match handle_of(&request.receipt_handle) {
        Ok(handle) if expired(&handle.receipt) => {
            return refused(status::of(
                Code::InvalidReceiptHandle,
                "receipt handle is expired",
            ))
        }
        Ok(handle) => handle,
        Err(refusal) => return refused(refusal),
    };
    let header = ChangeInvisibleTimeRequestHeader {
        consumer_group: group.clone(),
        topic: stored_topic(&group, &topic, &handle),
        queue_id: handle.receipt.queue_id,
        extra_info: handle.extra_info.clone(),
        offset: handle.receipt.offset,
        invisible_time: invisible_ms,
        broker_name: None,
    };
    let command = RemotingCommand::request(code::CHANGE_MESSAGE_INVISIBLETIME).with_header(&header);
    let answer = relay
        .run(ctx, command, QUICK, |command| async move {
            pop_ack::change_invisible_time(ctx, &command).await
        })
        .await;
    if answer.code != response::SUCCESS {
        return refused(status::of_remoting(answer.code, answer.remark.as_deref()));
    }
    let renewed: ChangeInvisibleTimeResponseHeader = match answer.decode_header() {
        Ok(renewed) => renewed,
        Err(e) => return refused(status::of(Code::InternalServerError, e.to_string())),
    };
    let receipt = PopReceipt {
        checkpoint_offset: handle.receipt.offset,
        pop_time: renewed.pop_time,
        invisible_time: renewed.invisible_time,
        revive_qid: renewed.revive_qid,
        ..handle.receipt
    };
    let renewed = Handle {
        extra_info: receipt.encode(),
        receipt,
        ..handle
    };
    v2::ChangeInvisibleDurationResponse {
        status: status::ok(),
        receipt_handle: renewed.encode(),
    }
}

/// The message goes to the group's dead-letter topic and its receipt is acknowledged.
pub async fn forward_to_dead_letter_queue(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    request: v2::ForwardMessageToDeadLetterQueueRequest,
) -> v2::ForwardMessageToDeadLetterQueueResponse {
    let group = resource_name(request.group.as_ref());
    let topic = resource_name(request.topic.as_ref());
    let handle = match handle_of(&request.receipt_handle) {
        Ok(handle) => handle,
        Err(status) => return v2::ForwardMessageToDeadLetterQueueResponse { status },
    };
    let status = dead_letter(ctx, relay, &group, &topic, handle, request.message_id).await;
    v2::ForwardMessageToDeadLetterQueueResponse { status }
}

/// Stores the message a handle names in the group's dead-letter topic, then acknowledges
/// it.
async fn dead_letter(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    group: &str,
    topic: &str,
    handle: Handle,
    message_id: String,
) -> Option<v2::Status> {
    let header = ConsumerSendMsgBackRequestHeader {
        offset: handle.commit_log_offset,
        group: group.to_owned(),
        delay_level: -1,
        origin_msg_id: Some(message_id),
        origin_topic: Some(topic.to_owned()),
        unit_mode: false,
        max_reconsume_times: Some(0),
    };
    let command = RemotingCommand::request(code::CONSUMER_SEND_MSG_BACK).with_header(&header);
    let answer = relay
        .run(ctx, command, QUICK, |command| async move {
            send_back::process(ctx, &command).await
        })
        .await;
    if answer.code != response::SUCCESS {
        return status::of_remoting(answer.code, answer.remark.as_deref());
    }
    let answer = ack_handle(ctx, relay, group, topic, handle).await;
    status::of_remoting(answer.code, answer.remark.as_deref())
}

/// Acknowledges the message a handle names (ACK_MESSAGE, on the master).
async fn ack_handle(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    group: &str,
    topic: &str,
    handle: Handle,
) -> RemotingCommand {
    let header = AckMessageRequestHeader {
        consumer_group: group.to_owned(),
        topic: stored_topic(group, topic, &handle),
        queue_id: handle.receipt.queue_id,
        extra_info: handle.extra_info,
        offset: handle.receipt.offset,
        broker_name: None,
    };
    let command = RemotingCommand::request(code::ACK_MESSAGE).with_header(&header);
    relay
        .run_idempotent(ctx, command, QUICK, |command| async move {
            pop_ack::ack(ctx, &command).await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_without_a_poll_time_polls_what_its_deadline_leaves() {
        // Asked: kept within 5 to 20 s.
        assert_eq!(poll_time_ms(Some(1_000), None, 3_000), Some(5_000));
        assert_eq!(poll_time_ms(Some(60_000), None, 3_000), Some(20_000));
        // Not asked: the deadline less half the request timeout (the Go client's 5 s await
        // plus its 3 s margin, with a 3 s request timeout: 6.5 s).
        assert_eq!(poll_time_ms(None, Some(8_000), 3_000), Some(6_500));
        assert_eq!(poll_time_ms(None, None, 3_000), Some(20_000));
        // Never past the deadline; a deadline shorter than the least poll is refused.
        assert_eq!(poll_time_ms(Some(20_000), Some(7_000), 3_000), Some(7_000));
        assert_eq!(poll_time_ms(None, Some(3_000), 3_000), None);
    }
}
