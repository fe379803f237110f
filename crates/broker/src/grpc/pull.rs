//! PullMessage: a 5.x pull consumer reads one queue from an offset it keeps itself, as
//! RocketMQ's proxy serves it: a remoting pull (long polling, the request's filter, no
//! offset committed: the consumer commits with UpdateOffset, see [`super::offsets`]),
//! answered as a stream of the status, the messages, then the next offset to pull from.
//!
//! Pulls read what this member holds (every member holds only committed entries), so a
//! follower answers them itself, as it answers remoting pulls.

use grpc::v2::{self, pull_message_response::Content, Code};
use message::sysflag::pull as pull_flag;
use message::MessageIter;
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};

use super::consume::poll_time_ms;
use super::convert::{self, resource_name};
use super::status;
use crate::context::BrokerContext;
use crate::processor::pull;

/// The most messages one pull answers, whatever batch the client asks for.
const PULL_BATCH: i32 = 32;

fn answer(content: Content) -> v2::PullMessageResponse {
    v2::PullMessageResponse {
        content: Some(content),
    }
}

fn refused(status: Option<v2::Status>) -> Vec<v2::PullMessageResponse> {
    vec![answer(Content::Status(status.unwrap_or_default()))]
}

/// The whole answer of one pull. `remaining_ms`: what the call's deadline leaves;
/// `request_timeout_ms`: the client's request timeout from its settings.
pub async fn pull(
    ctx: &BrokerContext,
    request: v2::PullMessageRequest,
    remaining_ms: Option<i64>,
    request_timeout_ms: i64,
) -> Vec<v2::PullMessageResponse> {
    let Some(queue) = request.message_queue.as_ref() else {
        return refused(status::of(Code::BadRequest, "message_queue is required"));
    };
    let topic = resource_name(queue.topic.as_ref());
    if topic.is_empty() {
        return refused(status::of(Code::IllegalTopic, "the queue's topic is empty"));
    }
    let group = resource_name(request.group.as_ref());
    if group.is_empty() {
        return refused(status::of(Code::IllegalConsumerGroup, "the group is empty"));
    }
    if request.offset < 0 {
        return refused(status::of(
            Code::IllegalOffset,
            format!("offset {} is negative", request.offset),
        ));
    }
    let asked = request
        .long_polling_timeout
        .as_ref()
        .map(convert::duration_ms);
    let Some(poll_ms) = poll_time_ms(asked, remaining_ms, request_timeout_ms) else {
        return refused(status::of(
            Code::IllegalPollingTime,
            "the call's deadline leaves too little time to poll",
        ));
    };
    let (expression_type, expression) = convert::filter_of(request.filter_expression.as_ref());
    let header = PullMessageRequestHeader {
        consumer_group: group,
        topic: topic.clone(),
        queue_id: queue.id,
        queue_offset: request.offset,
        max_msg_nums: request.batch_size.clamp(1, PULL_BATCH),
        sys_flag: pull_flag::SUSPEND | pull_flag::SUBSCRIPTION,
        commit_offset: 0,
        suspend_timeout_millis: poll_ms,
        subscription: Some(expression),
        sub_version: 0,
        expression_type: Some(expression_type.to_owned()),
        max_msg_bytes: None,
        request_source: None,
        proxy_forward_client_id: None,
        broker_name: None,
    };
    let command = RemotingCommand::request(code::PULL_MESSAGE).with_header(&header);
    let pulled = pull::process(ctx, &command).await;
    if !matches!(
        pulled.code,
        response::SUCCESS
            | response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED
    ) {
        return refused(status::of_remoting(pulled.code, pulled.remark.as_deref()));
    }
    let offsets: PullMessageResponseHeader = match pulled.decode_header() {
        Ok(offsets) => offsets,
        Err(e) => return refused(status::of(Code::InternalServerError, e.to_string())),
    };
    let mut messages = Vec::new();
    // The records come as the store's own buffers (one chunk each, or a plain body).
    let records = std::iter::once(&pulled.body).chain(pulled.body_chunks.iter());
    for view in records.flat_map(|chunk| MessageIter::new(chunk)) {
        let Ok(view) = view else {
            break;
        };
        // A pulled message is no POP: it has no receipt handle to settle.
        let message = convert::incoming(&view, &topic, None);
        messages.push(answer(Content::Message(message)));
    }
    let status = match pulled.code {
        response::SUCCESS if !messages.is_empty() => status::ok(),
        response::SUCCESS => status::of(Code::MessageNotFound, "no matched message"),
        response::PULL_OFFSET_MOVED => status::of(
            Code::IllegalOffset,
            format!("offset {} is outside the queue", request.offset),
        ),
        _ => status::of(Code::MessageNotFound, "no new message"),
    };
    let mut responses = vec![answer(Content::Status(status.unwrap_or_default()))];
    responses.append(&mut messages);
    responses.push(answer(Content::NextOffset(offsets.next_begin_offset)));
    responses
}
