//! QUERY_MESSAGE (12) by key or UNIQ_KEY, and VIEW_MESSAGE_BY_ID (33) by CommitLog offset.
//! Bodies are stored records back to back, as pulls return them.

use bytes::BytesMut;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::query::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};

use super::{decode_header, error};
use crate::context::BrokerContext;

/// A query answer stays well inside the 16 MiB frame limit whatever the messages weigh.
const MAX_QUERY_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Java's `defaultQueryMaxNum` for UNIQ_KEY queries.
const UNIQ_KEY_QUERY_MAX: usize = 32;

pub fn query_message(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: QueryMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let max_count = if header.unique_key_query == Some(true) {
        UNIQ_KEY_QUERY_MAX
    } else {
        usize::try_from(header.max_num).unwrap_or(1).max(1)
    };
    let result = ctx.store.reader().query_by_key(
        &header.topic,
        &header.key,
        max_count,
        header.begin_timestamp,
        header.end_timestamp,
    );
    let response_header = QueryMessageResponseHeader {
        index_last_update_timestamp: result.index_last_update_timestamp,
        index_last_update_phyoffset: result.index_last_update_phyoffset,
    };
    let mut body = BytesMut::new();
    for record in &result.messages {
        if !body.is_empty() && body.len() + record.len() > MAX_QUERY_BODY_BYTES {
            break;
        }
        body.extend_from_slice(record);
    }
    if body.is_empty() {
        return error(
            request,
            response::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        )
        .with_header(&response_header);
    }
    RemotingCommand::success_to(request)
        .with_header(&response_header)
        .with_body(body.freeze())
}

pub fn view_message(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: ViewMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.store.reader().message_at(header.offset) {
        Some(record) => RemotingCommand::success_to(request).with_body(record),
        None => error(
            request,
            response::SYSTEM_ERROR,
            format!("can not find message by the offset, {}", header.offset),
        ),
    }
}
