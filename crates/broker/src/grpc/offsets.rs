//! A 5.x pull consumer's offset calls: UpdateOffset (a group's committed offset of a queue,
//! changed on the master as UPDATE_CONSUMER_OFFSET changes it, through the relay from a
//! follower), GetOffset (that committed offset, read on the master as RocketMQ's proxy
//! reads it, so a consumer reads back what it just committed through a follower that has
//! not applied it yet; OFFSET_NOT_FOUND when the group has none) and QueryOffset (a
//! queue's first or next offset, or the first stored at or after a time: queues are the
//! same on every member, so it answers where asked).

use grpc::v2::{self, Code, QueryOffsetPolicy};
use remoting::code::request as code;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::offset::{
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use store::Boundary;

use super::convert::resource_name;
use super::relay::MasterRelay;
use super::status;
use crate::context::BrokerContext;
use crate::processor::consumer_manage;

const QUICK: std::time::Duration = std::time::Duration::from_secs(5);

/// The queue's topic and id, or the status refusing a request without them.
fn queue_of(queue: Option<&v2::MessageQueue>) -> Result<(String, i32), Option<v2::Status>> {
    let queue = queue.ok_or_else(|| status::of(Code::BadRequest, "message_queue is required"))?;
    let topic = resource_name(queue.topic.as_ref());
    if topic.is_empty() {
        return Err(status::of(Code::IllegalTopic, "the queue's topic is empty"));
    }
    Ok((topic, queue.id))
}

pub async fn update(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    request: v2::UpdateOffsetRequest,
) -> v2::UpdateOffsetResponse {
    let (topic, queue_id) = match queue_of(request.message_queue.as_ref()) {
        Ok(queue) => queue,
        Err(status) => return v2::UpdateOffsetResponse { status },
    };
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: resource_name(request.group.as_ref()),
        topic,
        queue_id,
        commit_offset: request.offset,
    };
    let command = RemotingCommand::request(code::UPDATE_CONSUMER_OFFSET).with_header(&header);
    // Committing an offset twice leaves it as once: safe to resend through a failover.
    let answer = relay
        .run_idempotent(ctx, command, QUICK, |command| async move {
            consumer_manage::update_offset(ctx, &command).await
        })
        .await;
    v2::UpdateOffsetResponse {
        status: status::of_remoting(answer.code, answer.remark.as_deref()),
    }
}

pub async fn get(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    request: &v2::GetOffsetRequest,
) -> v2::GetOffsetResponse {
    let (topic, queue_id) = match queue_of(request.message_queue.as_ref()) {
        Ok(queue) => queue,
        Err(status) => return v2::GetOffsetResponse { status, offset: 0 },
    };
    let group = resource_name(request.group.as_ref());
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.clone(),
        topic: topic.clone(),
        queue_id,
        set_zero_if_not_found: Some(false),
    };
    let command = RemotingCommand::request(code::QUERY_CONSUMER_OFFSET).with_header(&header);
    let answer = relay
        .run_idempotent(ctx, command, QUICK, |command| async move {
            consumer_manage::query_offset(ctx, &command)
        })
        .await;
    let refused = |status| v2::GetOffsetResponse { status, offset: 0 };
    match answer.code {
        response::SUCCESS => match answer.decode_header::<QueryConsumerOffsetResponseHeader>() {
            Ok(found) => v2::GetOffsetResponse {
                status: status::ok(),
                offset: found.offset,
            },
            Err(e) => refused(status::of(Code::InternalServerError, e.to_string())),
        },
        response::QUERY_NOT_FOUND => refused(status::of(
            Code::OffsetNotFound,
            format!("group {group} has no offset of {topic} queue {queue_id}"),
        )),
        other => refused(status::of_remoting(other, answer.remark.as_deref())),
    }
}

pub fn query(ctx: &BrokerContext, request: &v2::QueryOffsetRequest) -> v2::QueryOffsetResponse {
    let refused = |status| v2::QueryOffsetResponse { status, offset: 0 };
    let (topic, queue_id) = match queue_of(request.message_queue.as_ref()) {
        Ok(queue) => queue,
        Err(status) => return refused(status),
    };
    if ctx.topics.get(&topic).is_none() {
        return refused(status::of(
            Code::TopicNotFound,
            format!("topic {topic} does not exist"),
        ));
    }
    let reader = ctx.store.reader();
    let offset = match QueryOffsetPolicy::try_from(request.query_offset_policy) {
        Ok(QueryOffsetPolicy::Beginning) => reader.min_offset(&topic, queue_id),
        Ok(QueryOffsetPolicy::End) => reader.max_offset(&topic, queue_id),
        Ok(QueryOffsetPolicy::Timestamp) => {
            let Some(at) = request.timestamp.as_ref() else {
                return refused(status::of(
                    Code::BadRequest,
                    "a TIMESTAMP query needs its timestamp",
                ));
            };
            let at_ms = at.seconds * 1000 + i64::from(at.nanos / 1_000_000);
            reader.offset_by_timestamp(&topic, queue_id, at_ms, Boundary::Lower)
        }
        Err(_) => {
            return refused(status::of(
                Code::BadRequest,
                format!(
                    "unknown query_offset_policy {}",
                    request.query_offset_policy
                ),
            ))
        }
    };
    v2::QueryOffsetResponse {
        status: status::ok(),
        offset,
    }
}
