//! RECALL_MESSAGE (370), as RocketMQ 5.3's broker answers it: the recall handle a timer
//! message's send returned names its topic, broker, slot and id; a marker stored in the
//! timer topic's recall queue (replicated like any record) makes the timer service pass
//! the message over when its slot comes. Refusals and their remarks are RocketMQ's.

use std::net::SocketAddr;
use std::sync::Arc;

use remoting::body::perm;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::send::{RecallMessageRequestHeader, RecallMessageResponseHeader};
use remoting::header::CommandHeader;
use tracing::info;

use super::Refusal;
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::metadata::attributes;
use crate::record::{append_record, NewMessage};
use crate::store_facade::RecordBatch;
use crate::timer::{self, request};

pub async fn process(
    ctx: &Arc<BrokerContext>,
    requester: SocketAddr,
    request: &RemotingCommand,
) -> RemotingCommand {
    match recall(ctx, requester, request).await {
        Ok(msg_id) => RemotingCommand::success_to(request)
            .with_header(&RecallMessageResponseHeader { msg_id }),
        Err(refusal) => refusal.into_response(request),
    }
}

async fn recall(
    ctx: &BrokerContext,
    requester: SocketAddr,
    request: &RemotingCommand,
) -> Result<String, Refusal> {
    let header = RecallMessageRequestHeader::from_ext_fields(&request.ext_fields)?;
    let unavailable = |code| {
        Refusal::new(
            code,
            "recall failed, broker service not available".to_owned(),
        )
    };
    if !ctx.config.recall_message_enable {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            "recall failed, operation is forbidden",
        ));
    }
    if !ctx.role.is_master() {
        return Err(unavailable(response::SLAVE_NOT_AVAILABLE));
    }
    if !ctx.is_writeable() || !perm::is_writeable(ctx.live.broker_permission() as i32) {
        return Err(unavailable(response::SERVICE_NOT_AVAILABLE));
    }
    let Some(topic_config) = ctx.topics.get(&header.topic) else {
        return Err(Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("recall failed, the topic[{}] not exist", header.topic),
        ));
    };
    if ctx.config.enable_topic_message_type_check {
        attributes::check_message_type(
            attributes::message_type_of_topic(&topic_config.attributes),
            "DELAY",
        )
        .map_err(|mismatch| Refusal::new(response::MESSAGE_ILLEGAL, mismatch.to_string()))?;
    }
    let handle = remoting::recall_handle::decode(&header.recall_handle)
        .map_err(|remark| Refusal::new(response::ILLEGAL_OPERATION, remark))?;
    if handle.topic != header.topic {
        return Err(Refusal::new(
            response::ILLEGAL_OPERATION,
            "recall failed, topic not match",
        ));
    }
    if handle.broker_name != ctx.config.broker_name {
        return Err(unavailable(response::ILLEGAL_OPERATION));
    }
    let time_left = handle.timestamp_ms - now_ms();
    if time_left <= 0 || time_left >= ctx.timer.max_delay_ms {
        return Err(Refusal::new(
            response::ILLEGAL_OPERATION,
            "recall failed, timestamp invalid",
        ));
    }
    if ctx.timer_recalls.lock().is_full() {
        return Err(Refusal::new(
            response::SYSTEM_BUSY,
            format!(
                "recall failed, {} recalls are pending",
                timer::recalls::MAX_RECALLS
            ),
        ));
    }
    let properties =
        request::recall_marker_properties(&handle, &ctx.timer, header.producer_group.as_deref())
            .map_err(|e| Refusal::new(response::MESSAGE_ILLEGAL, e.to_string()))?;
    let marker = NewMessage {
        topic: timer::TIMER_TOPIC,
        queue_id: timer::RECALL_QUEUE,
        body: b"0",
        flag: 0,
        properties: &properties,
        sys_flag: 0,
        born_timestamp_ms: now_ms(),
        born_host: requester,
        reconsume_times: 0,
    };
    let mut batch = RecordBatch::with_capacity(properties.len() + 256, 1);
    append_record(&mut batch, &marker, ctx.store_host)
        .map_err(|e| Refusal::new(response::MESSAGE_ILLEGAL, e.to_string()))?;
    ctx.store.put(batch).await.map_err(|e| {
        Refusal::new(
            response::SYSTEM_ERROR,
            format!("recall failed, execute error: {e}"),
        )
    })?;
    ctx.stats.add_put(1);
    info!(topic = %handle.topic, uniq_key = %handle.uniq_key, slot_ms = handle.timestamp_ms - 1,
        "timer message recall stored");
    Ok(handle.uniq_key)
}
