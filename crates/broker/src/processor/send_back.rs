//! CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume.
//!
//! The message (found by its CommitLog offset) is copied into the group's `%RETRY%<group>`
//! topic with its reconsume count raised, or into `%DLQ%<group>` once it has been retried
//! `maxReconsumeTimes` times (or the consumer asks for the DLQ with a negative delay
//! level). As RocketMQ does, a retry waits in the schedule topic (see [`crate::schedule`])
//! at the level the consumer asked for, or else `3 + reconsumeTimes` (with the default
//! levels 10 s, 30 s, 1 min, 2 min, ...); the last level is the longest wait. Dead letters
//! are stored at once.

use message::properties::keys;
use message::topic::{dlq_topic, retry_topic};
use message::{MessageProperties, MessageView};
use rand::Rng;
use remoting::body::perm;
use remoting::code::response;
use remoting::command::{version, RemotingCommand};
use remoting::header::client::ConsumerSendMsgBackRequestHeader;

use super::{decode_header, error};
use crate::context::BrokerContext;
use crate::record::{append_record, complete_properties, NewMessage};
use crate::schedule::{divert, SCHEDULE_TOPIC};
use crate::store_facade::RecordBatch;

pub async fn process(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: ConsumerSendMsgBackRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if !ctx.role.is_master() {
        return error(
            request,
            response::SERVICE_NOT_AVAILABLE,
            "the broker is a slave; send back to its master",
        );
    }
    let group = header.group.as_str();
    if let Err(e) = message::validate_group(group) {
        return error(request, response::INVALID_PARAMETER, e.to_string());
    }
    let group_config = match ctx.group_or_create(group).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            return error(
                request,
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group not exist, {group}"),
            )
        }
        Err(e) => return error(request, response::SYSTEM_ERROR, e.to_string()),
    };
    if !ctx.is_writeable() {
        return error(
            request,
            response::NO_PERMISSION,
            format!(
                "the broker[{}] sending message is forbidden",
                ctx.config.broker_ip1
            ),
        );
    }
    if group_config.retry_queue_nums <= 0 {
        // The group wants no retries: the message is dropped, as RocketMQ does.
        return RemotingCommand::success_to(request);
    }
    let Some(record) = ctx.store.reader().message_at(header.offset) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("look message by offset failed, {}", header.offset),
        );
    };
    let view = match MessageView::parse(&record) {
        Ok(view) => view,
        Err(e) => {
            return error(
                request,
                response::SYSTEM_ERROR,
                format!("message at offset {} is unreadable: {e}", header.offset),
            )
        }
    };
    let mut max_reconsume_times = group_config.retry_max_times;
    if request.version >= version::V3_4_9 {
        if let Some(max) = header.max_reconsume_times {
            max_reconsume_times = max;
        }
    }
    let reconsume_times = view.reconsume_times();
    let dead = reconsume_times >= max_reconsume_times || header.delay_level < 0;
    let (topic, queue_nums) = if dead {
        (dlq_topic(group), 1)
    } else {
        (retry_topic(group), group_config.retry_queue_nums)
    };
    let topic_config = match ctx
        .topic_or_create(&topic, queue_nums, perm::READ_WRITE)
        .await
    {
        Ok(config) => config,
        Err(e) => {
            return error(
                request,
                response::SYSTEM_ERROR,
                format!("topic[{topic}] not exist: {e}"),
            )
        }
    };
    if !perm::is_writeable(topic_config.perm) {
        return error(
            request,
            response::NO_PERMISSION,
            format!("the topic[{topic}] sending message is forbidden"),
        );
    }
    let queue_id = rand::thread_rng().gen_range(0..topic_config.write_queue_nums.max(1));

    let mut properties = MessageProperties::parse(view.properties());
    let origin_topic = properties
        .get(keys::RETRY_TOPIC)
        .map(str::to_owned)
        .unwrap_or_else(|| view.topic().to_owned());
    let origin_msg_id = properties
        .get(keys::ORIGIN_MESSAGE_ID)
        .map(str::to_owned)
        .or_else(|| header.origin_msg_id.clone().filter(|id| !id.is_empty()))
        .or_else(|| view.uniq_key().map(str::to_owned))
        .unwrap_or_else(|| view.offset_msg_id());
    let mut put_property = |key: &str, value: &str| {
        // Values come from stored properties, which cannot hold separators.
        let _ = properties.put(key, value);
    };
    put_property(keys::RETRY_TOPIC, &origin_topic);
    put_property(keys::ORIGIN_MESSAGE_ID, &origin_msg_id);
    if dead {
        put_property(keys::DLQ_ORIGIN_TOPIC, &origin_topic);
        put_property(keys::DLQ_ORIGIN_MESSAGE_ID, &origin_msg_id);
    }
    // The level the original was sent with has been served; a retry gets its own below.
    properties.remove(keys::DELAY);
    let stored_properties = match complete_properties(
        &properties.encode(),
        &ctx.config.broker_cluster_name,
        || ctx.uniq_ids.next_id(),
    ) {
        Ok(p) => p,
        Err(reason) => return error(request, response::MESSAGE_ILLEGAL, reason.to_string()),
    };
    let (store_topic, store_queue_id, stored_properties) = if dead {
        (topic.as_str(), queue_id, stored_properties)
    } else {
        let requested = if header.delay_level > 0 {
            header.delay_level
        } else {
            reconsume_times.saturating_add(3)
        };
        let level = ctx.delay_levels.clamp(requested).unwrap_or(1);
        match divert::at_level(&stored_properties, level, &topic, queue_id) {
            Ok(diverted) => (SCHEDULE_TOPIC, diverted.queue_id, diverted.properties),
            Err(reason) => return error(request, response::MESSAGE_ILLEGAL, reason.to_string()),
        }
    };
    let message = NewMessage {
        topic: store_topic,
        queue_id: store_queue_id,
        body: view.body(),
        flag: view.flag(),
        properties: &stored_properties,
        sys_flag: view.sys_flag(),
        born_timestamp_ms: view.born_timestamp_ms(),
        born_host: view.born_host(),
        reconsume_times: reconsume_times.saturating_add(1),
    };
    let mut batch = RecordBatch::with_capacity(record.len() + 256, 1);
    if let Err(reason) = append_record(&mut batch, &message, ctx.store_host) {
        return error(request, response::MESSAGE_ILLEGAL, reason.to_string());
    }
    match ctx.store.put(batch).await {
        Ok(_) => {
            ctx.stats.add_put(1);
            if dead {
                ctx.metrics.sent_to_dlq(&origin_topic, &header.group);
            }
            RemotingCommand::success_to(request)
        }
        Err(e) => error(request, e.response_code(), e.to_string()),
    }
}
