//! GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29),
//! GET_EARLIEST_MSG_STORETIME (32). An unknown queue has offsets 0, as in RocketMQ.

use remoting::command::RemotingCommand;
use remoting::header::offset::{
    BoundaryType, GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    SearchOffsetRequestHeader,
};
use store::Boundary;

use super::decode_header;
use crate::context::BrokerContext;

fn offset_response(request: &RemotingCommand, offset: i64) -> RemotingCommand {
    RemotingCommand::success_to(request).with_header(&OffsetResponseHeader { offset })
}

pub fn max_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match decode_header::<GetMaxOffsetRequestHeader>(request) {
        Ok(h) => offset_response(request, ctx.store.reader().max_offset(&h.topic, h.queue_id)),
        Err(refusal) => refusal.into_response(request),
    }
}

pub fn min_offset(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match decode_header::<GetMinOffsetRequestHeader>(request) {
        Ok(h) => offset_response(request, ctx.store.reader().min_offset(&h.topic, h.queue_id)),
        Err(refusal) => refusal.into_response(request),
    }
}

pub fn search_by_timestamp(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match decode_header::<SearchOffsetRequestHeader>(request) {
        Ok(h) => {
            let boundary = match h.boundary_type {
                BoundaryType::Lower => Boundary::Lower,
                BoundaryType::Upper => Boundary::Upper,
            };
            let offset =
                ctx.store
                    .reader()
                    .offset_by_timestamp(&h.topic, h.queue_id, h.timestamp, boundary);
            offset_response(request, offset)
        }
        Err(refusal) => refusal.into_response(request),
    }
}

pub fn earliest_store_time(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetEarliestMsgStoretimeRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    // As RocketMQ: -1 for a queue without messages (empty, unknown or all expired).
    let timestamp = ctx
        .store
        .reader()
        .earliest_message_time(&header.topic, header.queue_id)
        .unwrap_or(-1);
    RemotingCommand::success_to(request)
        .with_header(&GetEarliestMsgStoretimeResponseHeader { timestamp })
}
