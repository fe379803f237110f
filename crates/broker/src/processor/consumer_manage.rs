//! QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), GET_CONSUMER_LIST_BY_GROUP (38).

use remoting::body::ConsumerListBody;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::client::GetConsumerListByGroupRequestHeader;
use remoting::header::offset::{
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};

use super::{decode_header, error};
use crate::context::BrokerContext;
use crate::metadata::{MetadataOp, OffsetOp};

/// A group's committed offset. A group with none gets 0 while the queue still starts at
/// offset 0 and that message is in memory, as RocketMQ answers, so a brand-new group on
/// a young topic reads it from the start; otherwise QUERY_NOT_FOUND, and the client falls
/// back to its `consumeFromWhere`.
pub fn query_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: QueryConsumerOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let offset = ctx
        .offsets
        .query(&header.consumer_group, &header.topic, header.queue_id);
    let offset = match offset {
        Some(offset) => offset,
        None if header.set_zero_if_not_found == Some(false) => {
            return error(
                request,
                response::QUERY_NOT_FOUND,
                "Not found, do not set to zero, maybe this group boot first",
            )
        }
        None => {
            let min = ctx
                .store
                .reader()
                .min_offset(&header.topic, header.queue_id);
            let max = ctx
                .store
                .reader()
                .max_offset(&header.topic, header.queue_id);
            let starts_in_memory = max == 0
                || ctx
                    .store
                    .reader()
                    .is_in_memory(&header.topic, header.queue_id, 0);
            if min <= 0 && starts_in_memory {
                0
            } else {
                return error(
                    request,
                    response::QUERY_NOT_FOUND,
                    "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
                );
            }
        }
    };
    RemotingCommand::success_to(request).with_header(&QueryConsumerOffsetResponseHeader { offset })
}

pub async fn update_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: UpdateConsumerOffsetRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if !ctx.role.is_master() {
        return error(
            request,
            response::SYSTEM_ERROR,
            "the broker is a slave; commit offsets to its master",
        );
    }
    let Some(topic) = ctx.topics.get(&header.topic) else {
        return error(
            request,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist", header.topic),
        );
    };
    if let Err(e) = message::validate_group(&header.consumer_group) {
        return error(request, response::INVALID_PARAMETER, e.to_string());
    }
    match ctx.group_or_create(&header.consumer_group).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(
                request,
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!(
                    "subscription group [{}] does not exist",
                    header.consumer_group
                ),
            )
        }
        Err(e) => return error(request, response::SYSTEM_ERROR, e.to_string()),
    }
    let queue_limit = topic.read_queue_nums.max(topic.write_queue_nums);
    if header.queue_id < 0 || header.queue_id >= queue_limit {
        return error(
            request,
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal for topic {}",
                header.queue_id, header.topic
            ),
        );
    }
    if header.commit_offset < 0 {
        return error(
            request,
            response::INVALID_PARAMETER,
            format!("commitOffset {} is negative", header.commit_offset),
        );
    }
    if ctx
        .offset_resets
        .is_pending(&header.consumer_group, &header.topic, header.queue_id)
    {
        // An offset from before a reset the consumer has not pulled since: RocketMQ 5
        // answers success and keeps the reset.
        return RemotingCommand::success_to(request);
    }
    let op = OffsetOp::Commit {
        group: header.consumer_group,
        topic: header.topic,
        queue_id: header.queue_id,
        offset: header.commit_offset,
    };
    match ctx.write_metadata(MetadataOp::Offset(op)).await {
        Ok(()) => RemotingCommand::success_to(request),
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

/// Client ids of a group's members, sorted; SYSTEM_ERROR for an unknown or empty group.
pub fn consumer_list(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerListByGroupRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let ids = ctx.consumers.consumer_ids(&header.consumer_group);
    if ids.is_empty() {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("no consumer for this group, {}", header.consumer_group),
        );
    }
    RemotingCommand::success_to(request).with_body(
        ConsumerListBody {
            consumer_id_list: ids,
        }
        .encode(),
    )
}
