//! A 5.x pull consumer's offset calls: UpdateOffset (a group's committed offset of a queue,
//! changed on the master as UPDATE_CONSUMER_OFFSET changes it, through the relay from a
//! follower), GetOffset (that committed offset; OFFSET_NOT_FOUND when the group has none)
//! and QueryOffset (a queue's first or next offset, or the first stored at or after a
//! time). Offsets and queues are the same on every member, so reads answer where asked.

use grpc::v2::{self, Code, QueryOffsetPolicy};
use remoting::code::request as code;
use remoting::command::RemotingCommand;
use remoting::header::offset::UpdateConsumerOffsetRequestHeader;
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

pub fn get(ctx: &BrokerContext, request: &v2::GetOffsetRequest) -> v2::GetOffsetResponse {
    let (topic, queue_id) = match queue_of(request.message_queue.as_ref()) {
        Ok(queue) => queue,
        Err(status) => return v2::GetOffsetResponse { status, offset: 0 },
    };
    let group = resource_name(request.group.as_ref());
    match ctx.offsets.query(&group, &topic, queue_id) {
        Some(offset) => v2::GetOffsetResponse {
            status: status::ok(),
            offset,
        },
        None => v2::GetOffsetResponse {
            status: status::of(
                Code::OffsetNotFound,
                format!("group {group} has no offset of {topic} queue {queue_id}"),
            ),
            offset: 0,
        },
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
