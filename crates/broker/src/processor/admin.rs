//! Administration (mqadmin, dashboards): topics, subscription groups, broker config.
//!
//! UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215), GET_ALL_TOPIC_CONFIG (21),
//! GET_TOPIC_CONFIG (351), GET_TOPIC_NAME_LIST (23), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
//! (200), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), GET_SUBSCRIPTIONGROUP_CONFIG (352),
//! DELETE_SUBSCRIPTIONGROUP (207), GET_BROKER_CONFIG (26), GET_ALL_CONSUMER_OFFSET (43).
//! Topic changes are announced to the name servers right away.

use message::topic::{is_system_topic, system_topic_conflict_remark};
use message::{validate_group, validate_topic};
use remoting::body::{SubscriptionGroupConfig, TopicConfig, TopicList};
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::admin::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader,
    GetSubscriptionGroupConfigRequestHeader, TopicRequestHeader, ViewBrokerStatsDataRequestHeader,
};
use tracing::info;

use super::{decode_header, error, json_success, Refusal};
use crate::context::BrokerContext;
use crate::live_config::UpdateError;
use crate::metadata::{attributes, MetadataOp, OffsetOp, SubscriptionOp, TopicOp};

/// Most queues a topic may have on one broker.
const MAX_QUEUE_NUMS: i32 = 1024;

pub(crate) fn require_master(ctx: &BrokerContext) -> Result<(), Refusal> {
    if ctx.role.is_master() {
        Ok(())
    } else {
        Err(Refusal::new(
            response::SYSTEM_ERROR,
            "the broker is a slave; change metadata on its master",
        ))
    }
}

/// How long CREATE_TOPIC waits for the name servers to hear of the topic.
const TOPIC_REGISTRATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn create_topic(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: CreateTopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Err(refusal) = require_master(ctx) {
        return refusal.into_response(request);
    }
    let topic = header.topic.as_str();
    if let Err(e) = validate_topic(topic) {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    if is_system_topic(topic) {
        return error(
            request,
            response::SYSTEM_ERROR,
            system_topic_conflict_remark(topic),
        );
    }
    for (name, value) in [
        ("readQueueNums", header.read_queue_nums),
        ("writeQueueNums", header.write_queue_nums),
    ] {
        if !(1..=MAX_QUEUE_NUMS).contains(&value) {
            return error(
                request,
                response::INVALID_PARAMETER,
                format!("{name} {value} must be between 1 and {MAX_QUEUE_NUMS}"),
            );
        }
    }
    if !(0..=15).contains(&header.perm) {
        return error(
            request,
            response::INVALID_PARAMETER,
            format!("perm {} is not a permission", header.perm),
        );
    }
    let existing = ctx.topics.get(topic);
    let attributes = match attributes::alter(
        existing.as_ref().map(|config| &config.attributes),
        header.attributes.as_deref(),
    ) {
        Ok(attributes) => attributes,
        Err(e) => return error(request, response::SYSTEM_ERROR, e.to_string()),
    };
    let config = TopicConfig {
        topic_name: header.topic.clone(),
        read_queue_nums: header.read_queue_nums,
        write_queue_nums: header.write_queue_nums,
        perm: header.perm,
        topic_filter_type: header.topic_filter_type,
        topic_sys_flag: header.topic_sys_flag.unwrap_or(0),
        order: header.order,
        attributes,
    };
    match ctx
        .write_metadata(MetadataOp::Topic(TopicOp::Upsert(config)))
        .await
    {
        Ok(_) => {
            info!(%topic, read = header.read_queue_nums, write = header.write_queue_nums,
                perm = header.perm, "topic created or updated");
            // As RocketMQ's broker does: the name servers route the topic before the
            // answer, so a client reading the route right after finds it. The ticket is
            // taken only now that the topic is in the table: a round that began earlier
            // (another topic's, or the periodic one) may have read the table without it.
            let registered = ctx.registration_rounds.ticket();
            ctx.registration_needed.notify_one();
            registered.wait(TOPIC_REGISTRATION_WAIT).await;
            RemotingCommand::success_to(request)
        }
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

pub async fn delete_topic(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: TopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Err(refusal) = require_master(ctx) {
        return refusal.into_response(request);
    }
    let topic = header.topic;
    if let Err(e) = validate_topic(&topic) {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    if is_system_topic(&topic) {
        return error(
            request,
            response::SYSTEM_ERROR,
            system_topic_conflict_remark(&topic),
        );
    }
    let op = MetadataOp::Batch(vec![
        MetadataOp::Topic(TopicOp::Delete {
            topic: topic.clone(),
        }),
        MetadataOp::Offset(OffsetOp::RemoveTopic {
            topic: topic.clone(),
        }),
        MetadataOp::RequestMode(crate::metadata::RequestModeOp::RemoveTopic {
            topic: topic.clone(),
        }),
    ]);
    if let Err(e) = ctx.write_metadata(op).await {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    if let Err(e) = ctx.store.delete_topic(&topic) {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    info!(%topic, "topic deleted");
    RemotingCommand::success_to(request)
}

/// VIEW_BROKER_STATS_DATA (315): one stats item's minute, hour and day figures.
pub fn broker_stats_data(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: ViewBrokerStatsDataRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.stats_items.view(&header.stats_name, &header.stats_key) {
        Some(data) => json_success(request, &data),
        None => error(
            request,
            response::SYSTEM_ERROR,
            format!(
                "The stats <{}> <{}> not exist",
                header.stats_name, header.stats_key
            ),
        ),
    }
}

/// GET_SYSTEM_TOPIC_LIST_FROM_BROKER (305): the topics RocketMQ reserves.
pub fn system_topics(request: &RemotingCommand) -> RemotingCommand {
    let list = TopicList {
        topic_list: message::topic::SYSTEM_TOPICS
            .iter()
            .map(|topic| (*topic).to_owned())
            .collect(),
        broker_addr: None,
    };
    json_success(request, &list)
}

pub fn all_topic_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::success_to(request).with_body(ctx.topics.wrapper().encode())
}

pub fn topic_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: TopicRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.topics.get(&header.topic) {
        Some(config) => json_success(request, config.as_ref()),
        None => error(
            request,
            response::TOPIC_NOT_EXIST,
            format!("No topic in this broker. topic: {}", header.topic),
        ),
    }
}

pub fn topic_names(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let list = TopicList {
        topic_list: ctx.topics.topic_names().into_iter().collect(),
        broker_addr: Some(ctx.broker_addr.clone()),
    };
    json_success(request, &list)
}

pub async fn create_group(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    if let Err(refusal) = require_master(ctx) {
        return refusal.into_response(request);
    }
    let mut config: SubscriptionGroupConfig = match remoting::body::fastjson::decode(&request.body)
    {
        Ok(config) => config,
        Err(e) => {
            return error(
                request,
                response::SYSTEM_ERROR,
                format!("bad subscription group body: {e}"),
            )
        }
    };
    if let Err(e) = validate_group(&config.group_name) {
        return error(request, response::INVALID_PARAMETER, e.to_string());
    }
    if !(0..=MAX_QUEUE_NUMS).contains(&config.retry_queue_nums) {
        return error(
            request,
            response::INVALID_PARAMETER,
            format!("retryQueueNums {} is out of range", config.retry_queue_nums),
        );
    }
    let current = ctx.groups.get(&config.group_name);
    match attributes::alter_group(current.as_ref().map(|c| &c.attributes), &config.attributes) {
        Ok(altered) => config.attributes = altered,
        Err(e) => return error(request, response::INVALID_PARAMETER, e.to_string()),
    }
    let group = config.group_name.clone();
    match ctx
        .write_metadata(MetadataOp::Subscription(SubscriptionOp::Upsert(config)))
        .await
    {
        Ok(_) => {
            info!(%group, "subscription group created or updated");
            RemotingCommand::success_to(request)
        }
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

pub fn all_group_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    json_success(request, &ctx.groups.wrapper())
}

pub fn group_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: GetSubscriptionGroupConfigRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    match ctx.groups.get(&header.group) {
        Some(config) => json_success(request, config.as_ref()),
        None => error(
            request,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("No group in this broker. group: {}", header.group),
        ),
    }
}

pub async fn delete_group(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: DeleteSubscriptionGroupRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Err(refusal) = require_master(ctx) {
        return refusal.into_response(request);
    }
    let mut ops = vec![MetadataOp::Subscription(SubscriptionOp::Delete {
        group: header.group_name.clone(),
    })];
    if header.clean_offset {
        ops.push(MetadataOp::Offset(OffsetOp::RemoveGroup {
            group: header.group_name.clone(),
        }));
    }
    if let Err(e) = ctx.write_metadata(MetadataOp::Batch(ops)).await {
        return error(request, response::SYSTEM_ERROR, e.to_string());
    }
    info!(group = %header.group_name, "subscription group deleted");
    RemotingCommand::success_to(request)
}

/// A ratio as the percentage broker.conf gives it.
fn percent(ratio: f64) -> String {
    format!("{}", (ratio * 100.0).round() as i64)
}

/// UPDATE_BROKER_CONFIG (25): `key=value` lines in the body, applied all or nothing to the
/// settings that change while the broker runs ([`crate::live_config`]); a permission change
/// reaches the name servers at once.
pub fn update_broker_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let settings = conf::parse(&String::from_utf8_lossy(&request.body));
    match ctx.live.update(&ctx.config, &settings) {
        Ok(applied) => {
            info!(?applied, "broker config updated");
            if applied.iter().any(|key| key == "brokerPermission") {
                ctx.registration_needed.notify_one();
            }
            RemotingCommand::success_to(request)
        }
        Err(e @ UpdateError::BlackListed) => error(request, response::NO_PERMISSION, e.to_string()),
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

/// The running configuration as `key=value` lines (what mqadmin getBrokerConfig prints).
pub fn broker_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let c = &ctx.config;
    let store = &c.store;
    let delete_when = store
        .delete_when
        .iter()
        .map(|h| format!("{h:02}"))
        .collect::<Vec<_>>()
        .join(";");
    let lines = [
        ("brokerClusterName", c.broker_cluster_name.clone()),
        ("brokerName", c.broker_name.clone()),
        ("brokerId", ctx.role.broker_id().to_string()),
        ("brokerIP1", c.broker_ip1.clone()),
        ("listenPort", ctx.store_host.port().to_string()),
        ("namesrvAddr", c.namesrv_addrs.join(";")),
        (
            "storePathRootDir",
            store.store_path_root_dir.display().to_string(),
        ),
        (
            "mapedFileSizeCommitLog",
            store.mapped_file_size_commit_log.to_string(),
        ),
        ("flushDiskType", store.flush_disk_type.as_str().to_owned()),
        (
            "autoCreateTopicEnable",
            c.auto_create_topic_enable.to_string(),
        ),
        (
            "autoCreateSubscriptionGroup",
            ctx.live.auto_create_subscription_group().to_string(),
        ),
        (
            "defaultTopicQueueNums",
            c.default_topic_queue_nums.to_string(),
        ),
        ("maxMessageSize", ctx.live.max_message_size().to_string()),
        ("aclEnable", c.acl_enable.to_string()),
        (
            "authenticationEnabled",
            c.auth.authentication_enabled.to_string(),
        ),
        (
            "authorizationEnabled",
            c.auth.authorization_enabled.to_string(),
        ),
        (
            "fileReservedTime",
            store.file_reserved_time_hours.to_string(),
        ),
        ("deleteWhen", delete_when),
        ("brokerPermission", ctx.live.broker_permission().to_string()),
        (
            "longPollingEnable",
            ctx.live.long_polling_enable().to_string(),
        ),
        (
            "registerNameServerPeriod",
            c.register_name_server_period.as_millis().to_string(),
        ),
        ("regionId", c.region_id.clone()),
        ("traceOn", c.trace_on.to_string()),
        ("messageDelayLevel", store.message_delay_level.to_string()),
        ("bindAddress", c.bind_address.clone()),
        (
            "channelExpiredTimeout",
            c.channel_expired_timeout.as_millis().to_string(),
        ),
        (
            "shortPollingTimeMills",
            c.short_polling_time.as_millis().to_string(),
        ),
        ("slaveReadEnable", c.slave_read_enable.to_string()),
        ("enablePropertyFilter", c.enable_property_filter.to_string()),
        (
            "storeReplyMessageEnable",
            c.store_reply_message_enable.to_string(),
        ),
        (
            "rejectTransactionMessage",
            c.reject_transaction_message.to_string(),
        ),
        (
            "transactionTimeOut",
            c.transaction_timeout.as_millis().to_string(),
        ),
        (
            "transactionCheckInterval",
            c.transaction_check_interval.as_millis().to_string(),
        ),
        ("transactionCheckMax", c.transaction_check_max.to_string()),
        (
            "enableDLegerCommitLog",
            c.enable_dledger_commit_log.to_string(),
        ),
        ("dLegerGroup", c.dledger_group.clone()),
        (
            "masterShutdownForwardMs",
            c.master_shutdown_forward.as_millis().to_string(),
        ),
        (
            "dLegerPeers",
            c.dledger_peers
                .iter()
                .map(|p| format!("{}-{}", p.id, p.addr))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        ("dLegerSelfId", c.dledger_self_id.clone()),
        (
            "mapedFileSizeConsumeQueue",
            (store.consume_queue_entries_per_file * 20).to_string(),
        ),
        (
            "flushIntervalCommitLog",
            store.flush_interval_commit_log_ms.to_string(),
        ),
        (
            "flushIntervalConsumeQueue",
            store.flush_interval_consume_queue_ms.to_string(),
        ),
        ("syncFlushTimeout", store.sync_flush_timeout_ms.to_string()),
        (
            "commitLogPrefaultAheadBytes",
            store.prefault_ahead_bytes.to_string(),
        ),
        ("warmMapedFileEnable", store.warm_mapped_file.to_string()),
        (
            "commitLogVerifyReadsBehindBytes",
            store.verify_reads_behind_bytes.to_string(),
        ),
        (
            "cleanResourceInterval",
            store.clean_resource_interval_ms.to_string(),
        ),
        (
            "diskMaxUsedSpaceRatio",
            percent(store.disk_max_used_space_ratio),
        ),
        (
            "diskSpaceCleanForciblyRatio",
            percent(store.disk_space_clean_forcibly_ratio),
        ),
        (
            "diskSpaceWarningLevelRatio",
            percent(store.disk_space_warning_level_ratio),
        ),
        ("messageIndexEnable", store.message_index_enable.to_string()),
        ("maxHashSlotNum", store.max_hash_slot_num.to_string()),
        ("maxIndexNum", store.max_index_num.to_string()),
        ("maxMsgsNumBatch", store.max_query_results.to_string()),
        (
            "maxTransferCountOnMessageInMemory",
            store.max_transfer_count_on_message_in_memory.to_string(),
        ),
        (
            "maxTransferBytesOnMessageInMemory",
            store.max_transfer_bytes_on_message_in_memory.to_string(),
        ),
    ];
    let mut body = String::new();
    for (key, value) in lines {
        body.push_str(key);
        body.push('=');
        body.push_str(&value);
        body.push('\n');
    }
    match serde_json::to_string(&ctx.topics.data_version()) {
        Ok(version) => RemotingCommand::success_to(request)
            .with_ext_field("version", version)
            .with_body(body.into_bytes()),
        Err(e) => error(
            request,
            response::SYSTEM_ERROR,
            format!("the data version cannot be encoded: {e}"),
        ),
    }
}

pub fn all_consumer_offsets(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match ctx.offsets.encode() {
        Ok(body) => RemotingCommand::success_to(request).with_body(body),
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}
