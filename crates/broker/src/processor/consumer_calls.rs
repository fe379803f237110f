//! Requests an operator sends to a broker that reach the group's online consumers, as
//! RocketMQ's broker relays them (`Broker2Client`): GET_CONSUMER_RUNNING_INFO (307) and
//! CONSUME_MESSAGE_DIRECTLY (309) forwarded to one client and answered with its reply;
//! INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223), which asks each client for its offsets
//! (GET_CONSUMER_STATUS_FROM_CLIENT, 221); INVOKE_BROKER_TO_RESET_OFFSET (222), which moves
//! a group's offsets to a point in time and tells online consumers
//! (RESET_CONSUMER_CLIENT_OFFSET, 220); and CLONE_GROUP_OFFSET (314).
//!
//! The pull path asks the same question as GET_CONSUMER_RUNNING_INFO on its own account
//! when a pull's subscription is newer than the registered one ([`check_subscriptions`]).
//!
//! Resetting offsets commits them here, as RocketMQ 5 does on the broker side, so a group
//! that is offline starts at the new offsets too; online consumers are told as well, or
//! their next commit would undo the reset.

use std::collections::BTreeMap;
use std::time::Duration;

use message::decode_offset_msg_id;
use remoting::body::{ConsumerRunningInfo, GetConsumerStatusBody, MessageQueue, ResetOffsetBody};
use remoting::code::{request as code, response};
use remoting::command::{LanguageCode, RemotingCommand};
use remoting::connection::CallError;
use remoting::header::admin::CloneGroupOffsetRequestHeader;
use remoting::header::client::{
    ConsumeMessageDirectlyRequestHeader, GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader, ResetOffsetRequestHeader,
};
use store::Boundary;
use tracing::{debug, info};

use super::{decode_header, error, Refusal};
use crate::client_groups::ClientChannel;
use crate::context::BrokerContext;
use crate::metadata::{MetadataOp, OffsetOp};

/// RocketMQ waits this long for a client's answer to a forwarded request.
const CALL_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// And this long for each client's offsets.
const CONSUMER_STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reset notice may wait for room in a client's write queue.
const NOTICE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a group's members get to report their subscriptions to the pull path.
const SUBSCRIPTION_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// The least time between two such checks of one group.
const SUBSCRIPTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Asks the group's online members for their subscriptions (their running info, as an
/// operator's getConsumerRunningInfo does) and takes those newer than the registered ones:
/// what their next heartbeat would bring. A pull whose subscription version is newer than
/// the registered one can then be served rather than refused until that heartbeat, up to
/// 30 s later (the Java 5.x client loses the heartbeat of a rebalance to its own scheduled
/// one, apache/rocketmq#3434). At most once a second per group; returns whether it asked.
pub async fn check_subscriptions(ctx: &BrokerContext, group: &str) -> bool {
    if !ctx
        .consumers
        .claim_subscription_check(group, SUBSCRIPTION_CHECK_INTERVAL)
    {
        return false;
    }
    let mut asks = tokio::task::JoinSet::new();
    for channel in online_channels(ctx, group) {
        let ask = RemotingCommand::request(code::GET_CONSUMER_RUNNING_INFO).with_header(
            &GetConsumerRunningInfoRequestHeader {
                consumer_group: group.to_owned(),
                client_id: channel.client_id.clone(),
                jstack_enable: false,
            },
        );
        asks.spawn(async move {
            let reply = channel.conn.invoke(ask, SUBSCRIPTION_CHECK_TIMEOUT).await;
            (channel, reply)
        });
    }
    while let Some(joined) = asks.join_next().await {
        let Ok((channel, reply)) = joined else {
            continue;
        };
        let reported = match reply {
            Ok(reply) if reply.code == response::SUCCESS => {
                ConsumerRunningInfo::decode(&reply.body).map_err(|e| e.to_string())
            }
            Ok(reply) => Err(format!("answered code {}", reply.code)),
            Err(e) => Err(e.to_string()),
        };
        match reported {
            Ok(info) => ctx.consumers.adopt_reported_subscriptions(
                group,
                channel.conn.id(),
                info.subscription_set,
            ),
            Err(e) => debug!(client = %channel.client_id, %group, error = %e,
                "consumer did not report its subscriptions"),
        }
    }
    true
}

/// GET_CONSUMER_RUNNING_INFO (307): the client's own report, relayed.
pub async fn consumer_running_info(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: GetConsumerRunningInfoRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    call_consumer(
        ctx,
        request,
        request.clone(),
        &header.consumer_group,
        &header.client_id,
    )
    .await
}

/// CONSUME_MESSAGE_DIRECTLY (309): the message (by offset msgId) is handed to one client
/// to consume now; its result is relayed.
pub async fn consume_message_directly(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: ConsumeMessageDirectlyRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let Some(client_id) = header.client_id.as_deref() else {
        return error(request, response::SYSTEM_ERROR, "clientId is missing");
    };
    let mut forwarded = request
        .clone()
        .with_ext_field("brokerName", ctx.config.broker_name.clone());
    if let Some(msg_id) = header.msg_id.as_deref() {
        let record = decode_offset_msg_id(msg_id)
            .ok()
            .and_then(|id| ctx.store.reader().message_at(id.commit_log_offset));
        match record {
            Some(record) => forwarded = forwarded.with_body(record),
            None => {
                return error(
                    request,
                    response::SYSTEM_ERROR,
                    format!("no message with id {msg_id} on this broker"),
                )
            }
        }
    }
    call_consumer(ctx, request, forwarded, &header.consumer_group, client_id).await
}

/// Sends `forwarded` to the group's client `client_id` and answers `request` with the
/// client's reply (RocketMQ's `callConsumer`).
async fn call_consumer(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    forwarded: RemotingCommand,
    group: &str,
    client_id: &str,
) -> RemotingCommand {
    let Some(channel) = find_channel(ctx, group, client_id) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("The Consumer <{group}> <{client_id}> not online"),
        );
    };
    match channel.conn.invoke(forwarded, CALL_CLIENT_TIMEOUT).await {
        Ok(reply) => relay(request, reply),
        Err(CallError::Timeout { .. }) => error(
            request,
            response::CONSUME_MSG_TIMEOUT,
            format!("consumer <{group}> <{client_id}> Timeout"),
        ),
        Err(e) => error(
            request,
            response::SYSTEM_ERROR,
            format!("invoke consumer <{group}> <{client_id}> Exception: {e}"),
        ),
    }
}

/// `reply` from a client as the answer to `request`.
fn relay(request: &RemotingCommand, reply: RemotingCommand) -> RemotingCommand {
    let mut answer = RemotingCommand::response_to(request, reply.code);
    answer.remark = reply.remark;
    answer.ext_fields = reply.ext_fields;
    answer.body = reply.body;
    answer
}

fn find_channel(ctx: &BrokerContext, group: &str, client_id: &str) -> Option<ClientChannel> {
    ctx.consumers
        .group_info(group)?
        .channels
        .into_values()
        .find(|channel| channel.client_id == client_id)
}

/// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223): each online client's offsets of `topic`
/// (or only `clientAddr`'s when given), by client id.
pub async fn consumer_status(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerStatusRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let channels = online_channels(ctx, &header.group);
    if channels.is_empty() {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!(
                "No Any Consumer online in the consumer group: [{}]",
                header.group
            ),
        );
    }
    let only = header.client_addr.as_deref().filter(|id| !id.is_empty());
    let mut status = GetConsumerStatusBody::default();
    // Bounded by the group's channel limit, each call by its timeout.
    for channel in channels
        .into_iter()
        .filter(|c| only.is_none_or(|id| id == c.client_id))
    {
        let ask = RemotingCommand::request(code::GET_CONSUMER_STATUS_FROM_CLIENT).with_header(
            &GetConsumerStatusRequestHeader {
                topic: header.topic.clone(),
                group: header.group.clone(),
                client_addr: header.client_addr.clone(),
            },
        );
        match channel.conn.invoke(ask, CONSUMER_STATUS_TIMEOUT).await {
            Ok(reply) if reply.is_success() && !reply.body.is_empty() => {
                match GetConsumerStatusBody::decode(&reply.body) {
                    Ok(body) => {
                        status
                            .consumer_table
                            .insert(channel.client_id.clone(), body.message_queue_table);
                    }
                    Err(e) => debug!(client = %channel.client_id, error = %e,
                        "unreadable consumer status"),
                }
            }
            Ok(reply) => debug!(client = %channel.client_id, code = reply.code,
                "consumer did not report its status"),
            Err(e) => debug!(client = %channel.client_id, error = %e,
                "consumer status request failed"),
        }
    }
    RemotingCommand::success_to(request).with_body(status.encode())
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222): the group's offsets of `topic` move to the first
/// message stored at or after `timestamp` (-1: the end of each queue); without `isForce`
/// an offset only moves back. Committed here and pushed to online consumers; the answer
/// is the new offsets.
pub async fn reset_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match reset_offset_inner(ctx, request).await {
        Ok(answer) => answer,
        Err(refusal) => refusal.into_response(request),
    }
}

async fn reset_offset_inner(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> Result<RemotingCommand, Refusal> {
    let header: ResetOffsetRequestHeader = decode_header(request)?;
    if !ctx.can_write_metadata() {
        return Err(Refusal::new(
            response::SYSTEM_ERROR,
            "the broker is a slave; reset offsets on its master",
        ));
    }
    let Some(topic) = ctx.topics.get(&header.topic) else {
        return Err(Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("Topic {} does not exist", header.topic),
        ));
    };
    if ctx.groups.get(&header.group).is_none() && !ctx.consumers.group_exists(&header.group) {
        return Err(Refusal::new(
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("Group {} does not exist", header.group),
        ));
    }
    let reader = ctx.store.reader();
    let queues: Vec<i32> = if header.queue_id >= 0 {
        vec![header.queue_id]
    } else {
        (0..topic.write_queue_nums).collect()
    };
    let mut offsets = BTreeMap::new();
    let mut commits = Vec::with_capacity(queues.len());
    for queue_id in queues {
        let target = match header.offset.filter(|o| *o >= 0 && header.queue_id >= 0) {
            Some(offset) => offset.clamp(
                reader.min_offset(&header.topic, queue_id),
                reader.max_offset(&header.topic, queue_id),
            ),
            None if header.timestamp == -1 => reader.max_offset(&header.topic, queue_id),
            None => reader
                .offset_by_timestamp(&header.topic, queue_id, header.timestamp, Boundary::Lower)
                .max(0),
        };
        let committed = ctx.offsets.query(&header.group, &header.topic, queue_id);
        let offset = match committed {
            Some(committed) if !header.is_force && committed < target => committed,
            _ => target,
        };
        offsets.insert(
            MessageQueue::new(&header.topic, &ctx.config.broker_name, queue_id),
            offset,
        );
        commits.push(MetadataOp::Offset(OffsetOp::Commit {
            group: header.group.clone(),
            topic: header.topic.clone(),
            queue_id,
            offset,
        }));
    }
    // Marked before the commit is written, so no consumer commit slips in between.
    for (queue, offset) in &offsets {
        ctx.offset_resets
            .mark(&header.group, &header.topic, queue.queue_id, *offset);
    }
    ctx.write_metadata(MetadataOp::Batch(commits))
        .await
        .map_err(|e| Refusal::new(response::SYSTEM_ERROR, e.to_string()))?;
    let body = ResetOffsetBody {
        offset_table: offsets,
    };
    let notified = tell_consumers_to_reset(ctx, &header, &body).await;
    info!(group = %header.group, topic = %header.topic, timestamp = header.timestamp,
        force = header.is_force, notified, "consumer offsets reset");
    Ok(RemotingCommand::success_to(request).with_body(body.encode()))
}

/// RESET_CONSUMER_CLIENT_OFFSET (220) to every online member of the group, one-way;
/// returns how many were told.
async fn tell_consumers_to_reset(
    ctx: &BrokerContext,
    header: &ResetOffsetRequestHeader,
    body: &ResetOffsetBody,
) -> usize {
    let notice = RemotingCommand::request(code::RESET_CONSUMER_CLIENT_OFFSET).with_header(
        &ResetOffsetRequestHeader {
            topic: header.topic.clone(),
            group: header.group.clone(),
            timestamp: header.timestamp,
            is_force: header.is_force,
            queue_id: -1,
            offset: None,
        },
    );
    let java_body = body.encode();
    let mut told = 0;
    for channel in online_channels(ctx, &header.group) {
        // The C++ client reads the offsets as a list rather than Java's map.
        let encoded = if channel.language == LanguageCode::Cpp {
            match serde_json::to_vec(&body.to_cpp_form()) {
                Ok(encoded) => encoded,
                Err(e) => {
                    debug!(client = %channel.client_id, error = %e, "reset notice not encoded");
                    continue;
                }
            }
        } else {
            java_body.clone()
        };
        let notice = notice.clone().with_body(encoded);
        match channel.conn.invoke_oneway(notice, NOTICE_TIMEOUT).await {
            Ok(()) => told += 1,
            Err(e) => debug!(client = %channel.client_id, error = %e,
                "could not tell a consumer to reset its offsets"),
        }
    }
    told
}

fn online_channels(ctx: &BrokerContext, group: &str) -> Vec<ClientChannel> {
    ctx.consumers
        .group_info(group)
        .map(|info| info.channels.into_values().collect())
        .unwrap_or_default()
}

/// CLONE_GROUP_OFFSET (314): `destGroup` gets `srcGroup`'s offsets of `topic`, or of every
/// topic `srcGroup` has offsets of; topics that no longer exist are passed over.
pub async fn clone_group_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: CloneGroupOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let topics = match header.topic.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(topic) => vec![topic.to_owned()],
        None => ctx
            .offsets
            .topics_of_group(&header.src_group)
            .into_iter()
            .collect(),
    };
    let mut commits = Vec::new();
    for topic in topics.iter().filter(|t| ctx.topics.get(t).is_some()) {
        for (queue_id, offset) in ctx.offsets.queue_offsets(&header.src_group, topic) {
            commits.push(MetadataOp::Offset(OffsetOp::Commit {
                group: header.dest_group.clone(),
                topic: topic.clone(),
                queue_id,
                offset,
            }));
        }
    }
    if let Err(e) = ctx.write_metadata(MetadataOp::Batch(commits)).await {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    info!(src = %header.src_group, dest = %header.dest_group, "consumer offsets cloned");
    RemotingCommand::success_to(request)
}
