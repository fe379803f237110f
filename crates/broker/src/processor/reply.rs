//! SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): request-reply's answer.
//!
//! A requester sends an ordinary message carrying `CORRELATION_ID`, `REPLY_TO_CLIENT` (its
//! client id) and `TTL`; the broker adds `CLUSTER`. The replier answers to
//! `{cluster}_REPLY_TOPIC` with these codes, and the broker pushes the reply at once, as
//! PUSH_REPLY_MESSAGE_TO_CLIENT (326), over the connection of the client named by
//! `REPLY_TO_CLIENT` (a producer or consumer that heartbeats here). With
//! `storeReplyMessageEnable` (the default) the reply is also stored like a sent message.
//!
//! As in RocketMQ's `ReplyMessageProcessor`: the send checks come first; the push is tried
//! before the store; the answer's code is the push's (SUCCESS, or SYSTEM_ERROR saying why
//! the requester was not reached) and its msgId/queueOffset the store's ("0"/0 when not
//! stored). A requester that is gone only costs the replier that SYSTEM_ERROR.

use std::sync::Arc;
use std::time::Duration;

use message::properties::{keys, MessageProperties};
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::connection::ConnectionHandle;
use remoting::header::reply::ReplyMessageRequestHeader;
use remoting::header::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use tracing::{debug, warn};

use super::send::{self, Target};
use super::Refusal;
use crate::clock::now_ms;
use crate::context::BrokerContext;

/// How long the requester may take to take the reply. The replier's own send times out
/// after 3 s by default, so waiting longer would only answer nobody.
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn process(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionHandle,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = match SendMessageRequestHeader::from_request(request.code, &request.ext_fields) {
        Ok(header) => header,
        Err(e) => return Refusal::from(e).into_response(request),
    };
    let target = match send::check(ctx, conn.remote_addr(), request, &header).await {
        Ok(target) => target,
        Err(refusal) => return refusal.into_response(request),
    };
    let pushed = push(ctx, conn, request, &header, &target).await;
    let stored = if ctx.config.store_reply_message_enable {
        match send::send_one(ctx, conn.remote_addr(), request, &header, &target).await {
            Ok(stored) if stored.code == response::SUCCESS => Some(stored),
            Ok(stored) => {
                warn!(topic = %target.topic, code = stored.code, remark = ?stored.remark,
                    "reply message not stored");
                None
            }
            Err(refusal) => {
                warn!(topic = %target.topic, code = refusal.code, remark = %refusal.remark,
                    "reply message not stored");
                None
            }
        }
    } else {
        None
    };
    let answer = stored.unwrap_or_else(|| not_stored(ctx, request, &target));
    match pushed {
        Ok(()) => answer,
        Err(undelivered) => {
            let mut answer = answer;
            answer.code = response::SYSTEM_ERROR;
            answer.remark = Some(undelivered.to_string());
            answer
        }
    }
}

/// RocketMQ's answer for a reply pushed but not stored: msgId "0" and offset 0 (clients
/// fail to decode an answer without them).
fn not_stored(ctx: &BrokerContext, request: &RemotingCommand, target: &Target) -> RemotingCommand {
    RemotingCommand::success_to(request).with_header(&SendMessageResponseHeader {
        msg_id: "0".to_owned(),
        queue_id: target.queue_id,
        queue_offset: 0,
        transaction_id: None,
        batch_uniq_id: None,
        recall_handle: None,
        msg_region: Some(ctx.config.region_id.clone()),
        trace_on: Some(ctx.config.trace_on),
    })
}

/// Why a reply did not reach its requester; the texts are RocketMQ's remarks.
#[derive(Debug, thiserror::Error)]
enum ReplyUndelivered {
    #[error("reply message properties[{}] is null", keys::REPLY_TO_CLIENT)]
    NoRequester,
    #[error("push reply message fail, channel of <{0}> not found.")]
    NotConnected(String),
    #[error("reply message properties cannot take PUSH_REPLY_TIME: {0}")]
    Properties(String),
    #[error("push reply message to {0} fail.")]
    Refused(String),
}

/// Hands the reply to its requester.
async fn push(
    ctx: &BrokerContext,
    conn: &ConnectionHandle,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    target: &Target,
) -> Result<(), ReplyUndelivered> {
    let client_properties = header.properties.as_deref().unwrap_or("");
    let mut properties = MessageProperties::parse(client_properties);
    let Some(requester) = properties.get(keys::REPLY_TO_CLIENT).map(str::to_owned) else {
        return Err(ReplyUndelivered::NoRequester);
    };
    let channel = ctx
        .producers
        .find_channel(&requester)
        .or_else(|| ctx.consumers.find_channel(&requester));
    let Some(channel) = channel else {
        debug!(%requester, "reply for a requester not connected here");
        return Err(ReplyUndelivered::NotConnected(requester));
    };
    let push_time = now_ms().to_string();
    properties
        .put(keys::PUSH_REPLY_TIME, &push_time)
        .map_err(|e| ReplyUndelivered::Properties(e.to_string()))?;
    let pushed = RemotingCommand::request(code::PUSH_REPLY_MESSAGE_TO_CLIENT)
        .with_header(&ReplyMessageRequestHeader {
            producer_group: header.producer_group.clone(),
            topic: target.topic.clone(),
            default_topic: header.default_topic.clone(),
            default_topic_queue_nums: header.default_topic_queue_nums,
            queue_id: target.queue_id,
            sys_flag: header.sys_flag,
            born_timestamp: header.born_timestamp,
            flag: header.flag,
            properties: Some(properties.encode()),
            reconsume_times: header.reconsume_times,
            unit_mode: header.unit_mode.unwrap_or(false),
            born_host: conn.remote_addr().to_string(),
            store_host: ctx.store_host.to_string(),
            store_timestamp: now_ms(),
        })
        .with_body(request.body.clone());
    match channel.conn.invoke(pushed, PUSH_TIMEOUT).await {
        Ok(answer) if answer.code == response::SUCCESS => Ok(()),
        Ok(answer) => {
            warn!(%requester, code = answer.code, remark = ?answer.remark,
                "the requester refused a reply");
            Err(ReplyUndelivered::Refused(requester))
        }
        Err(error) => {
            warn!(%requester, %error, "a reply could not be pushed");
            Err(ReplyUndelivered::Refused(requester))
        }
    }
}
