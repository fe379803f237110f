//! SendMessage: each 5.x message goes through the remoting send path (the same checks,
//! auto-creation, timer and FIFO handling), one store put per message, one result entry
//! per message (the Java client wants one for each).

use std::net::SocketAddr;
use std::sync::Arc;

use grpc::v2::{self, Code, MessageType};
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::header::send::{
    RecallMessageRequestHeader, RecallMessageResponseHeader, SendMessageRequestHeader,
    SendMessageResponseHeader,
};

use super::convert;
use super::relay::MasterRelay;
use super::status;
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::processor::{recall as recall_processor, send};

/// How long a send may take on the master.
const SEND_TAKES: std::time::Duration = std::time::Duration::from_secs(10);
/// Messages one SendMessage may carry.
const MAX_MESSAGES_PER_CALL: usize = 1024;

pub async fn send_message(
    ctx: &Arc<BrokerContext>,
    relay: &MasterRelay,
    producer: SocketAddr,
    request: v2::SendMessageRequest,
) -> v2::SendMessageResponse {
    if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES_PER_CALL {
        return v2::SendMessageResponse {
            status: status::of(
                Code::MessageCorrupted,
                format!("a send carries 1 to {MAX_MESSAGES_PER_CALL} messages"),
            ),
            entries: Vec::new(),
        };
    }
    let topic = topic_of(&request.messages[0]);
    let mut entries = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let entry = if topic_of(message) != topic {
            failed(
                Code::MessageCorrupted,
                "every message of a send must name the same topic",
            )
        } else {
            send_one(ctx, relay, producer, &topic, message).await
        };
        entries.push(entry);
    }
    let mut codes: Vec<i32> = entries
        .iter()
        .filter_map(|e| e.status.as_ref().map(|s| s.code))
        .collect();
    codes.dedup();
    let status = match codes.as_slice() {
        [single] => entries
            .iter()
            .find_map(|e| e.status.clone().filter(|s| s.code == *single)),
        _ => status::of(Code::MultipleResults, "the messages had different outcomes"),
    };
    v2::SendMessageResponse { status, entries }
}

fn topic_of(message: &v2::Message) -> String {
    convert::resource_name(message.topic.as_ref())
}

fn failed(code: Code, message: impl Into<String>) -> v2::SendResultEntry {
    v2::SendResultEntry {
        status: status::of(code, message),
        ..Default::default()
    }
}

async fn send_one(
    ctx: &Arc<BrokerContext>,
    relay: &MasterRelay,
    producer: SocketAddr,
    topic: &str,
    message: &v2::Message,
) -> v2::SendResultEntry {
    if let Err(e) = message::validate_topic(topic) {
        return failed(Code::IllegalTopic, e.to_string());
    }
    if message.body.is_empty() {
        return failed(Code::MessageBodyEmpty, "the message body is empty");
    }
    if message.body.len() > ctx.config.max_message_size as usize {
        return failed(
            Code::MessageBodyTooLarge,
            format!(
                "the message body is {} bytes; at most {} are allowed",
                message.body.len(),
                ctx.config.max_message_size
            ),
        );
    }
    // Producers of a topic form the group RocketMQ's proxy names after it.
    let outgoing = match convert::outgoing(message, topic, now_ms()) {
        Ok(outgoing) => outgoing,
        Err(refusal) => {
            return v2::SendResultEntry {
                status: refusal,
                ..Default::default()
            }
        }
    };
    if outgoing.kind == MessageType::Transaction {
        return failed(
            Code::Unsupported,
            "transactional messages are not served over gRPC by this broker yet; use the remoting protocol",
        );
    }
    let header = SendMessageRequestHeader {
        producer_group: topic.to_owned(),
        topic: topic.to_owned(),
        default_topic: message::topic::AUTO_CREATE_TOPIC_KEY_TOPIC.to_owned(),
        default_topic_queue_nums: 4,
        queue_id: message
            .system_properties
            .as_ref()
            .map_or(-1, |s| s.queue_id),
        sys_flag: outgoing.sys_flag,
        born_timestamp: outgoing.born_timestamp_ms,
        flag: 0,
        properties: Some(outgoing.properties),
        reconsume_times: Some(0),
        unit_mode: None,
        batch: None,
        max_reconsume_times: None,
        broker_name: None,
    };
    let command = RemotingCommand::request(code::SEND_MESSAGE)
        .with_header(&header)
        .with_body(message.body.clone());
    let answer = relay
        .run(ctx, command, SEND_TAKES, |command| async move {
            send::process(ctx, producer, &command).await
        })
        .await;
    if answer.code != response::SUCCESS {
        return v2::SendResultEntry {
            status: status::of_remoting(answer.code, answer.remark.as_deref()),
            ..Default::default()
        };
    }
    let sent: SendMessageResponseHeader = match answer.decode_header() {
        Ok(sent) => sent,
        Err(e) => return failed(Code::InternalServerError, e.to_string()),
    };
    let message_id = message
        .system_properties
        .as_ref()
        .map(|s| s.message_id.clone())
        .unwrap_or_default();
    v2::SendResultEntry {
        status: status::ok(),
        transaction_id: sent.transaction_id.unwrap_or_else(|| message_id.clone()),
        message_id,
        offset: sent.queue_offset,
        recall_handle: sent.recall_handle.unwrap_or_default(),
    }
}

/// RecallMessage: cancels a delay (timer) message still waiting, by the recall handle its
/// send answered with (RECALL_MESSAGE on the master; `recallMessageEnable`).
pub async fn recall(
    ctx: &Arc<BrokerContext>,
    relay: &MasterRelay,
    requester: SocketAddr,
    request: v2::RecallMessageRequest,
) -> v2::RecallMessageResponse {
    let header = RecallMessageRequestHeader {
        producer_group: None,
        topic: convert::resource_name(request.topic.as_ref()),
        recall_handle: request.recall_handle,
    };
    let command = RemotingCommand::request(code::RECALL_MESSAGE).with_header(&header);
    let answer = relay
        .run(ctx, command, SEND_TAKES, |command| async move {
            recall_processor::process(ctx, requester, &command).await
        })
        .await;
    if answer.code != response::SUCCESS {
        return v2::RecallMessageResponse {
            status: status::of_remoting(answer.code, answer.remark.as_deref()),
            message_id: String::new(),
        };
    }
    match answer.decode_header::<RecallMessageResponseHeader>() {
        Ok(recalled) => v2::RecallMessageResponse {
            status: status::ok(),
            message_id: recalled.msg_id,
        },
        Err(e) => v2::RecallMessageResponse {
            status: status::of(Code::InternalServerError, e.to_string()),
            message_id: String::new(),
        },
    }
}
