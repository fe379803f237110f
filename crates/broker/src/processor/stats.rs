//! Read-only views for operators: GET_BROKER_RUNTIME_INFO (28), GET_TOPIC_STATS_INFO (202),
//! GET_CONSUME_STATS (208), GET_CONSUMER_CONNECTION_LIST (203),
//! GET_PRODUCER_CONNECTION_LIST (204), QUERY_TOPIC_CONSUME_BY_WHO (300).

use std::collections::BTreeSet;
use std::time::Duration;

use remoting::body::{
    ConsumeStats, GroupList, KvTable, MessageQueue, OffsetWrapper, TopicOffset, TopicStatsTable,
};
use remoting::code::response;
use remoting::command::{version, RemotingCommand};
use remoting::header::admin::{GetConsumeStatsRequestHeader, TopicRequestHeader};
use remoting::header::client::{
    GetConsumerConnectionListRequestHeader, GetProducerConnectionListRequestHeader,
};

use super::{decode_header, error, json_success};
use crate::context::BrokerContext;
use crate::schedule;
use crate::stats_items;

/// Name of [`version::CURRENT`] as RocketMQ prints it.
const VERSION_DESC: &str = "V5_3_3";

pub fn runtime_info(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let mut table = ctx.store.runtime_info();
    let mut put = |key: &str, value: String| {
        table.insert(key.to_owned(), value);
    };
    put("brokerVersionDesc", VERSION_DESC.to_owned());
    put("brokerVersion", version::CURRENT.to_string());
    put("brokerActive", "true".to_owned());
    put("bootTimestamp", ctx.boot_timestamp_ms.to_string());
    let ((put_morning, get_morning), (put_yesterday, get_yesterday)) = ctx.stats.day_marks();
    put("msgPutTotalTodayNow", ctx.stats.put_total().to_string());
    put("msgGetTotalTodayNow", ctx.stats.get_total().to_string());
    put("msgPutTotalTodayMorning", put_morning.to_string());
    put("msgGetTotalTodayMorning", get_morning.to_string());
    put("msgPutTotalYesterdayMorning", put_yesterday.to_string());
    put("msgGetTotalYesterdayMorning", get_yesterday.to_string());
    let windows = [10, 60, 600].map(|secs| ctx.stats.tps(Duration::from_secs(secs)));
    let rates = |pick: fn(&(f64, f64)) -> f64| {
        windows
            .iter()
            .map(|w| format!("{:.2}", pick(w)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    put("putTps", rates(|w| w.0));
    put("getTransferedTps", rates(|w| w.1));
    put("getTransferredTps", rates(|w| w.1));
    for queue in ["send", "pull", "query", "transaction", "lite"] {
        put(&format!("{queue}ThreadPoolQueueSize"), "0".to_owned());
        put(
            &format!("{queue}ThreadPoolQueueHeadWaitTimeMills"),
            "0".to_owned(),
        );
    }
    for (key, value) in schedule::progress::runtime_info(ctx) {
        put(&key, value);
    }
    put("pageCacheLockTimeMills", "0".to_owned());
    put(
        "startAcceptSendRequestTimeStamp",
        ctx.boot_timestamp_ms.to_string(),
    );
    put("parkedPulls", ctx.long_poll.parked().to_string());
    put(
        "consumerGroupsOnline",
        ctx.consumers.group_count().to_string(),
    );
    put(
        "producerGroupsOnline",
        ctx.producers.group_count().to_string(),
    );
    RemotingCommand::success_to(request).with_body(KvTable { table }.encode())
}

pub fn topic_stats(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: TopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let Some(topic) = ctx.topics.get(&header.topic) else {
        return error(
            request,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist", header.topic),
        );
    };
    let mut stats = TopicStatsTable::default();
    for queue_id in 0..topic.write_queue_nums.max(0) {
        let min_offset = ctx.store.reader().min_offset(&header.topic, queue_id);
        let max_offset = ctx.store.reader().max_offset(&header.topic, queue_id);
        let last_update_timestamp = if max_offset > 0 {
            ctx.store
                .reader()
                .message_store_time(&header.topic, queue_id, max_offset - 1)
                .unwrap_or(0)
        } else {
            0
        };
        stats.offset_table.insert(
            MessageQueue::new(&header.topic, &ctx.config.broker_name, queue_id),
            TopicOffset {
                last_update_timestamp,
                max_offset,
                min_offset,
            },
        );
    }
    stats.topic_put_tps = ctx
        .stats_items
        .minute_tps(stats_items::TOPIC_PUT_NUMS, &header.topic);
    RemotingCommand::success_to(request).with_body(stats.encode())
}

pub fn consume_stats(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumeStatsRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let group = header.consumer_group.as_str();
    let topics: BTreeSet<String> = match (header.topic.as_deref(), header.topic_list.as_deref()) {
        (Some(topic), _) if !topic.is_empty() => BTreeSet::from([topic.to_owned()]),
        (_, Some(list)) if !list.is_empty() => list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => ctx.offsets.topics_of_group(group),
    };
    let online = ctx.consumers.group_info(group);
    let mut stats = ConsumeStats::default();
    for topic in &topics {
        let Some(config) = ctx.topics.get(topic) else {
            continue;
        };
        // An online group that no longer subscribes to a topic is not consuming it.
        if let Some(info) = &online {
            if !info.subscriptions.is_empty() && !info.subscriptions.contains_key(topic) {
                continue;
            }
        }
        let committed = ctx.offsets.queue_offsets(group, topic);
        for queue_id in 0..config.read_queue_nums.max(0) {
            let broker_offset = ctx.store.reader().max_offset(topic, queue_id);
            let consumer_offset = committed.get(&queue_id).copied().unwrap_or(0).max(0);
            let last_timestamp = if consumer_offset > 0 {
                ctx.store
                    .reader()
                    .message_store_time(topic, queue_id, consumer_offset - 1)
                    .unwrap_or(0)
            } else {
                0
            };
            stats.offset_table.insert(
                MessageQueue::new(topic, &ctx.config.broker_name, queue_id),
                OffsetWrapper {
                    broker_offset,
                    consumer_offset,
                    last_timestamp,
                    pull_offset: consumer_offset,
                },
            );
        }
        stats.consume_tps += ctx.stats_items.minute_tps(
            stats_items::GROUP_GET_NUMS,
            &stats_items::group_key(topic, group),
        );
    }
    RemotingCommand::success_to(request).with_body(stats.encode())
}

pub fn consumer_connections(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetConsumerConnectionListRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.consumers.connection_view(&header.consumer_group) {
        Some(view) => json_success(request, &view),
        None => error(
            request,
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", header.consumer_group),
        ),
    }
}

pub fn producer_connections(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetProducerConnectionListRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.producers.connection_view(&header.producer_group) {
        Some(view) => json_success(request, &view),
        None => error(
            request,
            response::SYSTEM_ERROR,
            format!("the producer group[{}] not exist", header.producer_group),
        ),
    }
}

pub fn consumed_by_whom(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: TopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let mut groups = ctx.offsets.groups_of_topic(&header.topic);
    groups.extend(ctx.consumers.groups_of_topic(&header.topic));
    RemotingCommand::success_to(request).with_body(GroupList { group_list: groups }.encode())
}
