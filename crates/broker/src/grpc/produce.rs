//! SendMessage: each 5.x message goes through the remoting send path (the same checks,
//! auto-creation, timer, FIFO and half-message handling), one store put per message, one
//! result entry per message (the Java client wants one for each). EndTransaction and
//! RecallMessage go through END_TRANSACTION and RECALL_MESSAGE.

use std::net::SocketAddr;
use std::sync::Arc;

use grpc::v2::{self, Code, MessageType};
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::header::send::{
    RecallMessageRequestHeader, RecallMessageResponseHeader, SendMessageRequestHeader,
    SendMessageResponseHeader,
};
use remoting::header::transaction::EndTransactionRequestHeader;

use super::convert;
use super::relay::MasterRelay;
use super::status;
use super::transaction_id::TransactionPlace;
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::processor::{end_transaction as end_processor, recall as recall_processor, send};

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
    let transaction_id = if outgoing.kind == MessageType::Transaction {
        match message::decode_offset_msg_id(&sent.msg_id) {
            Ok(stored) => TransactionPlace {
                uniq_key: message_id.clone(),
                commit_log_offset: stored.commit_log_offset,
                queue_offset: sent.queue_offset,
            }
            .encode(),
            Err(e) => return failed(Code::InternalServerError, e.to_string()),
        }
    } else {
        sent.transaction_id.unwrap_or_else(|| message_id.clone())
    };
    v2::SendResultEntry {
        status: status::ok(),
        transaction_id,
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

/// EndTransaction: END_TRANSACTION on the master for the half message the transaction id
/// names (see [`TransactionPlace`]), in the producer group of the topic. Unlike RocketMQ's
/// proxy, which answers OK before the broker has looked, the answer is the broker's: a
/// producer learns that its commit was refused.
pub async fn end_transaction(
    ctx: &Arc<BrokerContext>,
    relay: &MasterRelay,
    request: v2::EndTransactionRequest,
) -> v2::EndTransactionResponse {
    let answer = |status| v2::EndTransactionResponse { status };
    let topic = convert::resource_name(request.topic.as_ref());
    if let Err(e) = message::validate_topic(&topic) {
        return answer(status::of(Code::IllegalTopic, e.to_string()));
    }
    let Some(place) = TransactionPlace::decode(&request.transaction_id) else {
        return answer(status::of(
            Code::InvalidTransactionId,
            format!(
                "`{}` is not a transaction id this broker handed out",
                request.transaction_id
            ),
        ));
    };
    let commit_or_rollback = match v2::TransactionResolution::try_from(request.resolution) {
        Ok(v2::TransactionResolution::Commit) => message::sysflag::message::TRANSACTION_COMMIT_TYPE,
        Ok(v2::TransactionResolution::Rollback) => {
            message::sysflag::message::TRANSACTION_ROLLBACK_TYPE
        }
        _ => message::sysflag::message::TRANSACTION_NOT_TYPE,
    };
    let header = EndTransactionRequestHeader {
        topic: Some(topic.clone()),
        producer_group: topic,
        tran_state_table_offset: place.queue_offset,
        commit_log_offset: place.commit_log_offset,
        commit_or_rollback,
        from_transaction_check: request.source == v2::TransactionSource::SourceServerCheck as i32,
        msg_id: request.message_id,
        transaction_id: Some(place.uniq_key),
    };
    let command = RemotingCommand::request(code::END_TRANSACTION).with_header(&header);
    let ended = relay
        .run(ctx, command, SEND_TAKES, |command| async move {
            end_processor::process(ctx, &command).await
        })
        .await;
    if ended.code == response::SUCCESS {
        answer(status::ok())
    } else {
        answer(status::of_remoting(ended.code, ended.remark.as_deref()))
    }
}
