//! `consumerConnection`, `producerConnection`, `consumerStatus`, `updateSubGroup`, `setConsumeMode` and
//! `deleteSubGroup`: who is connected, what consumers report about themselves, and
//! subscription-group configs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use clap::Args;
use client::display::timestamp_ms;
use client::Admin;
use message::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use remoting::body::running::prop;
use remoting::body::{
    ConsumeType, ConsumerRunningInfo, MessageQueue, ProcessQueueInfo, SubscriptionGroupConfig,
};
use remoting::command::version;
use serde_json::json;

use super::offsets::now_ms;
use super::{parse_bool, print_json};

#[derive(Args)]
pub struct ConsumerConnection {
    /// consumer group name
    #[arg(short = 'g', long = "consumerGroup")]
    group: String,
    /// broker address
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
}

async fn connection_of(
    admin: &Admin,
    group: &str,
    broker_addr: Option<&str>,
) -> Result<remoting::body::ConsumerConnection> {
    let connection = match broker_addr {
        Some(addr) => admin.consumer_connection_at(group, addr.trim()).await?,
        None => admin.consumer_connection(group).await?,
    };
    if connection.connection_set.is_empty() {
        bail!("consumer group `{group}` is not online");
    }
    Ok(connection)
}

pub async fn consumer_connection(
    admin: &Admin,
    args: ConsumerConnection,
    json: bool,
) -> Result<()> {
    let group = args.group.trim();
    let connection = connection_of(admin, group, args.broker_addr.as_deref()).await?;
    if json {
        return print_json(&connection);
    }
    println!(
        "{:<36} {:<22} {:<10} {}",
        "#ClientId", "#ClientAddr", "#Language", "#Version"
    );
    for conn in &connection.connection_set {
        println!(
            "{:<36} {:<22} {:<10} {}",
            conn.client_id,
            conn.client_addr,
            conn.language.java_name(),
            version::desc(conn.version)
        );
    }
    println!();
    println!("Below is subscription:");
    println!("{:<20} {}", "#Topic", "#SubExpression");
    for subscription in connection.subscription_table.values() {
        println!("{:<20} {}", subscription.topic, subscription.sub_string);
    }
    println!();
    let name = |n: Option<&'static str>| n.unwrap_or("null");
    println!(
        "ConsumeType: {}",
        name(connection.consume_type.map(|t| t.java_name()))
    );
    println!(
        "MessageModel: {}",
        name(connection.message_model.map(|m| m.java_name()))
    );
    println!(
        "ConsumeFromWhere: {}",
        name(connection.consume_from_where.map(|c| c.java_name()))
    );
    Ok(())
}

#[derive(Args)]
pub struct ProducerConnection {
    /// producer group name
    #[arg(short = 'g', long = "producerGroup")]
    group: String,
    /// topic name
    #[arg(short = 't', long = "topic")]
    topic: String,
}

pub async fn producer_connection(
    admin: &Admin,
    args: ProducerConnection,
    json: bool,
) -> Result<()> {
    let connection = admin
        .producer_connection(args.group.trim(), args.topic.trim())
        .await?;
    if json {
        return print_json(&connection);
    }
    for (index, conn) in connection.connection_set.iter().enumerate() {
        println!(
            "{:04}  {:<32} {:<22} {:<8} {}",
            index + 1,
            conn.client_id,
            conn.client_addr,
            conn.language.java_name(),
            version::desc(conn.version)
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ConsumerStatus {
    /// consumer group name
    #[arg(short = 'g', long = "consumerGroup")]
    group: String,
    /// The consumer's client id
    #[arg(short = 'i', long = "clientId")]
    client_id: Option<String>,
    /// broker address
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// Run jstack command in the consumer progress (Java consumers only)
    #[arg(short = 's', long = "jstack")]
    jstack: bool,
}

pub async fn consumer_status(admin: &Admin, args: ConsumerStatus, json: bool) -> Result<()> {
    let group = args.group.trim();
    if let Some(client_id) = args.client_id.as_deref().map(str::trim) {
        let info = admin
            .consumer_running_info(group, client_id, args.jstack)
            .await?;
        if json {
            return print_json(&running_info_json(&info));
        }
        print!("{}", format_running_info(&info));
        return Ok(());
    }
    let connection = connection_of(admin, group, args.broker_addr.as_deref()).await?;
    let now = now_ms();
    let mut infos = BTreeMap::new();
    let mut rows = Vec::new();
    if !json {
        println!(
            "{:<10} {:<40} {:<20} {}",
            "#Index", "#ClientId", "#Version", "#ConsumerRunningInfoFile"
        );
    }
    for conn in &connection.connection_set {
        let info = match admin
            .consumer_running_info(group, &conn.client_id, args.jstack)
            .await
        {
            Ok(info) => info,
            Err(error) => {
                eprintln!("{}: {error}", conn.client_id);
                continue;
            }
        };
        let file = write_running_info(now, &conn.client_id, &format_running_info(&info));
        if !json {
            println!(
                "{:<10} {:<40} {:<20} {}",
                rows.len() + 1,
                conn.client_id,
                version::desc(conn.version),
                file
            );
        }
        rows.push(json!({"index": rows.len() + 1, "clientId": conn.client_id,
            "version": version::desc(conn.version), "file": file,
            "runningInfo": running_info_json(&info)}));
        infos.insert(conn.client_id.clone(), info);
    }
    let same = !infos.is_empty() && same_subscriptions(&infos, now);
    let warnings: Vec<String> = if same {
        infos
            .iter()
            .flat_map(|(client, info)| process_queue_warnings(client, info, now))
            .collect()
    } else {
        Vec::new()
    };
    if json {
        return print_json(&json!({"consumers": rows, "sameSubscription": same,
            "rebalanceOK": same, "warnings": warnings}));
    }
    if infos.is_empty() {
        return Ok(());
    }
    if same {
        print!("\n\nSame subscription in the same group of consumer");
        println!("\n\nRebalance {}", if same { "OK" } else { "Failed" });
        for warning in &warnings {
            println!("{warning}");
        }
    } else {
        println!("\n\nWARN: Different subscription in the same group of consumer!!!");
    }
    Ok(())
}

/// Where RocketMQ's tool keeps each member's report (it writes `<now>/<clientId>` under
/// the working directory; here under `/tmp/rocketmq/consumerStatus`, beside the message
/// bodies `queryMsgById` writes).
fn write_running_info(now: i64, client_id: &str, text: &str) -> String {
    let dir = std::path::Path::new("/tmp/rocketmq/consumerStatus").join(now.to_string());
    let name: String = client_id
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    let path = dir.join(name);
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => path.display().to_string(),
        Err(error) => format!("(not written: {error})"),
    }
}

fn is_push(info: &ConsumerRunningInfo) -> bool {
    info.properties.get(prop::CONSUME_TYPE).map(String::as_str)
        == Some(ConsumeType::ConsumePassively.java_name())
}

/// RocketMQ's `analyzeSubscription`: push consumers running for over two minutes must
/// subscribe alike (the subscription version, which differs per member, aside).
fn same_subscriptions(infos: &BTreeMap<String, ConsumerRunningInfo>, now: i64) -> bool {
    let Some(first) = infos.values().next() else {
        return true;
    };
    let started = first
        .properties
        .get(prop::CONSUMER_START_TIMESTAMP)
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(now);
    if !is_push(first) || now - started <= 2 * 60 * 1000 {
        return true;
    }
    let key = |info: &ConsumerRunningInfo| -> BTreeSet<(String, String, String, bool)> {
        info.subscription_set
            .iter()
            .map(|s| {
                (
                    s.topic.clone(),
                    s.sub_string.clone(),
                    s.expression_type.clone(),
                    s.class_filter_mode,
                )
            })
            .collect()
    };
    let expected = key(first);
    infos.values().all(|info| key(info) == expected)
}

fn queue_text(queue: &MessageQueue) -> String {
    format!(
        "MessageQueue [topic={}, brokerName={}, queueId={}]",
        queue.topic, queue.broker_name, queue.queue_id
    )
}

/// RocketMQ's `analyzeProcessQueue`: ordered queues not locked, and queues holding
/// messages with no consumption for a minute. A queue whose last consumption time the
/// consumer does not report (0) is not judged.
fn process_queue_warnings(client: &str, info: &ConsumerRunningInfo, now: i64) -> Vec<String> {
    if !is_push(info) {
        return Vec::new();
    }
    let ordered = info
        .properties
        .get(prop::CONSUME_ORDERLY)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut warnings = Vec::new();
    for (queue, pq) in &info.mq_table {
        if ordered {
            if !pq.locked {
                warnings.push(format!(
                    "{client} {} can't lock for a while, {}ms",
                    queue_text(queue),
                    now - pq.last_lock_timestamp
                ));
            } else if pq.droped && pq.try_unlock_times > 0 {
                warnings.push(format!(
                    "{client} {} unlock {} times, still failed",
                    queue_text(queue),
                    pq.try_unlock_times
                ));
            }
        } else if pq.last_consume_timestamp > 0 {
            let idle = now - pq.last_consume_timestamp;
            if idle > 60_000 && pq.cached_msg_count > 0 {
                warnings.push(format!(
                    "{client} {} can't consume for a while, maybe blocked, {idle}ms",
                    queue_text(queue)
                ));
            }
        }
    }
    warnings
}

/// `yyyyMMddHHmmssSSS` (RocketMQ's `timeMillisToHumanString`), in UTC.
fn compact_time(ms: i64) -> String {
    timestamp_ms(ms)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

fn process_queue_text(pq: &ProcessQueueInfo) -> String {
    format!(
        "ProcessQueueInfo [commitOffset={}, cachedMsgMinOffset={}, cachedMsgMaxOffset={}, cachedMsgCount={}, cachedMsgSizeInMiB={}, transactionMsgMinOffset={}, transactionMsgMaxOffset={}, transactionMsgCount={}, locked={}, tryUnlockTimes={}, lastLockTimestamp={}, droped={}, lastPullTimestamp={}, lastConsumeTimestamp={}]",
        pq.commit_offset,
        pq.cached_msg_min_offset,
        pq.cached_msg_max_offset,
        pq.cached_msg_count,
        pq.cached_msg_size_in_mib,
        pq.transaction_msg_min_offset,
        pq.transaction_msg_max_offset,
        pq.transaction_msg_count,
        pq.locked,
        pq.try_unlock_times,
        compact_time(pq.last_lock_timestamp),
        pq.droped,
        compact_time(pq.last_pull_timestamp),
        compact_time(pq.last_consume_timestamp),
    )
}

/// A member's report laid out as RocketMQ's `ConsumerRunningInfo.formatString`.
pub fn format_running_info(info: &ConsumerRunningInfo) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("#Consumer Properties#\n");
    for (key, value) in &info.properties {
        let _ = writeln!(out, "{key:<40}: {value}");
    }
    out.push_str("\n\n#Consumer Subscription#\n");
    for (index, s) in info.subscription_set.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:03} Topic: {:<40} ClassFilter: {:<8} SubExpression: {}",
            index + 1,
            s.topic,
            s.class_filter_mode,
            s.sub_string
        );
    }
    out.push_str("\n\n#Consumer Offset#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:<32}  {:<4}  {:<20}",
        "#Topic", "#Broker Name", "#QID", "#Consumer Offset"
    );
    for (queue, pq) in &info.mq_table {
        let _ = writeln!(
            out,
            "{:<32}  {:<32}  {:<4}  {:<20}",
            queue.topic, queue.broker_name, queue.queue_id, pq.commit_offset
        );
    }
    out.push_str("\n\n#Consumer MQ Detail#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:<32}  {:<4}  {:<20}",
        "#Topic", "#Broker Name", "#QID", "#ProcessQueueInfo"
    );
    for (queue, pq) in &info.mq_table {
        let _ = writeln!(
            out,
            "{:<64}  {:<32}  {:<4}  {}",
            queue.topic,
            queue.broker_name,
            queue.queue_id,
            process_queue_text(pq)
        );
    }
    out.push_str("\n\n#Consumer Pop Detail#\n");
    let _ = writeln!(
        out,
        "{:<32}  {:<32}  {:<4}  {:<20}",
        "#Topic", "#Broker Name", "#QID", "#ProcessQueueInfo"
    );
    out.push_str("\n\n#Consumer RT&TPS#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>25}",
        "#Topic",
        "#Pull RT",
        "#Pull TPS",
        "#Consume RT",
        "#ConsumeOK TPS",
        "#ConsumeFailed TPS",
        "#ConsumeFailedMsgsInHour"
    );
    for (topic, status) in &info.status_table {
        let _ = writeln!(
            out,
            "{:<32}  {:>14.2} {:>14.2} {:>14.2} {:>14.2} {:>18.2} {:>25}",
            topic,
            status.pull_rt,
            status.pull_tps,
            status.consume_rt,
            status.consume_ok_tps,
            status.consume_failed_tps,
            status.consume_failed_msgs
        );
    }
    out.push_str("\n\n#User Consume Info#\n");
    for (key, value) in &info.user_consumer_info {
        let _ = writeln!(out, "{key:<40}: {value}");
    }
    if let Some(jstack) = &info.jstack {
        out.push_str("\n\n#Consumer jstack#\n");
        out.push_str(jstack);
    }
    out
}

fn running_info_json(info: &ConsumerRunningInfo) -> serde_json::Value {
    let queues: Vec<_> = info
        .mq_table
        .iter()
        .map(|(q, pq)| {
            json!({"topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
            "processQueueInfo": pq})
        })
        .collect();
    json!({
        "properties": info.properties,
        "subscriptionSet": info.subscription_set,
        "mqTable": queues,
        "statusTable": info.status_table,
        "userConsumerInfo": info.user_consumer_info,
        "jstack": info.jstack,
    })
}

// ---- subscription groups ------------------------------------------------------------

#[derive(Args)]
pub struct UpdateSubGroup {
    /// create subscription group to which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// create subscription group to which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
    /// consumer group name
    #[arg(short = 'g', long = "groupName")]
    group: String,
    /// consume enable
    #[arg(short = 's', long = "consumeEnable")]
    consume_enable: Option<String>,
    /// from min offset
    #[arg(short = 'm', long = "consumeFromMinEnable")]
    consume_from_min_enable: Option<String>,
    /// broadcast
    #[arg(short = 'd', long = "consumeBroadcastEnable")]
    consume_broadcast_enable: Option<String>,
    /// consume message orderly
    #[arg(short = 'o', long = "consumeMessageOrderly")]
    consume_message_orderly: Option<String>,
    /// retry queue nums
    #[arg(short = 'q', long = "retryQueueNums")]
    retry_queue_nums: Option<i32>,
    /// retry max times
    #[arg(short = 'r', long = "retryMaxTimes")]
    retry_max_times: Option<i32>,
    /// consumer from which broker id
    #[arg(short = 'i', long = "brokerId")]
    broker_id: Option<i64>,
    /// which broker id when consume slowly
    #[arg(short = 'w', long = "whichBrokerWhenConsumeSlowly")]
    which_broker_when_consume_slowly: Option<i64>,
    /// notify consumerId changed
    #[arg(short = 'a', long = "notifyConsumerIdsChanged")]
    notify_consumer_ids_changed: Option<String>,
    /// attribute(+a=b,+c=d,-e)
    #[arg(long = "attributes", allow_hyphen_values = true)]
    attributes: Option<String>,
}

/// `+a=b,+c=d,-e` as the map RocketMQ's tools send in a group config: `+key` to its value,
/// `-key` to nothing (the broker checks the keys and values).
fn alterations_of(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let mut alterations = std::collections::BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((key, value)) if key.starts_with('+') && key.len() > 1 => {
                alterations.insert(key.to_owned(), value.to_owned());
            }
            None if item.starts_with('-') && item.len() > 1 => {
                alterations.insert(item.to_owned(), String::new());
            }
            _ => bail!("kv string format wrong: `{item}` (attribute(+a=b,+c=d,-e))"),
        }
    }
    Ok(alterations)
}

/// Guava's `toStringHelper` layout, as RocketMQ prints a SubscriptionGroupConfig.
fn group_config_text(c: &SubscriptionGroupConfig) -> String {
    let policy = c
        .group_retry_policy
        .as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string);
    let subscriptions = c
        .subscription_data_set
        .as_ref()
        .map_or_else(|| "null".to_owned(), |s| format!("{s:?}"));
    let attributes: Vec<String> = c
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "SubscriptionGroupConfig{{groupName={}, consumeEnable={}, consumeFromMinEnable={}, consumeBroadcastEnable={}, consumeMessageOrderly={}, retryQueueNums={}, retryMaxTimes={}, groupRetryPolicy={}, brokerId={}, whichBrokerWhenConsumeSlowly={}, notifyConsumerIdsChangedEnable={}, groupSysFlag={}, consumeTimeoutMinute={}, subscriptionDataSet={}, attributes={{{}}}}}",
        c.group_name,
        c.consume_enable,
        c.consume_from_min_enable,
        c.consume_broadcast_enable,
        c.consume_message_orderly,
        c.retry_queue_nums,
        c.retry_max_times,
        policy,
        c.broker_id,
        c.which_broker_when_consume_slowly,
        c.notify_consumer_ids_changed_enable,
        c.group_sys_flag,
        c.consume_timeout_minute,
        subscriptions,
        attributes.join(", ")
    )
}

pub async fn update_sub_group(admin: &Admin, args: UpdateSubGroup, json: bool) -> Result<()> {
    // RocketMQ's tool starts from the defaults with broadcast and from-min turned off.
    let mut config = SubscriptionGroupConfig::new(args.group.trim());
    config.consume_broadcast_enable = false;
    config.consume_from_min_enable = false;
    if let Some(v) = &args.consume_enable {
        config.consume_enable = parse_bool(v);
    }
    if let Some(v) = &args.consume_from_min_enable {
        config.consume_from_min_enable = parse_bool(v);
    }
    if let Some(v) = &args.consume_broadcast_enable {
        config.consume_broadcast_enable = parse_bool(v);
    }
    if let Some(v) = &args.consume_message_orderly {
        config.consume_message_orderly = parse_bool(v);
    }
    if let Some(v) = args.retry_queue_nums {
        config.retry_queue_nums = v;
    }
    if let Some(v) = args.retry_max_times {
        config.retry_max_times = v;
    }
    if let Some(v) = args.broker_id {
        config.broker_id = v;
    }
    if let Some(v) = args.which_broker_when_consume_slowly {
        config.which_broker_when_consume_slowly = v;
    }
    if let Some(v) = &args.notify_consumer_ids_changed {
        config.notify_consumer_ids_changed_enable = parse_bool(v);
    }
    if let Some(text) = &args.attributes {
        config.attributes = alterations_of(text)?;
    }
    let addrs = match (&args.broker_addr, &args.cluster) {
        (Some(addr), _) => vec![addr.trim().to_owned()],
        (None, Some(cluster)) => admin.cluster_master_addrs(cluster.trim()).await?,
        (None, None) => bail!("updateSubGroup needs -b brokerAddr or -c clusterName"),
    };
    let mut written = Vec::new();
    let mut failed = 0;
    for addr in &addrs {
        match admin.create_subscription_group(addr, &config).await {
            Ok(()) => {
                if !json {
                    println!("create subscription group to {addr} success.");
                }
                written.push(addr.clone());
            }
            // Like RocketMQ's tool, one broker's refusal does not stop the others.
            Err(error) if args.broker_addr.is_none() => {
                eprintln!("create subscription group to {addr} failed: {error}");
                failed += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
    if json {
        print_json(&json!({"brokers": written, "subscriptionGroupConfig": config}))?;
    } else {
        println!("{}", group_config_text(&config));
    }
    if failed > 0 {
        bail!("{failed} of {} brokers refused the group", addrs.len());
    }
    Ok(())
}

#[derive(Args)]
pub struct SetConsumeMode {
    /// create subscription group to which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// create subscription group to which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
    /// topic name
    #[arg(short = 't', long = "topicName")]
    topic: String,
    /// consumer group name
    #[arg(short = 'g', long = "groupName")]
    group: String,
    /// consume mode. PULL/POP
    #[arg(short = 'm', long = "mode")]
    mode: String,
    /// num of queue which share in pop mode
    #[arg(short = 'q', long = "popShareQueueNum", default_value_t = 0)]
    pop_share_queue_num: i32,
}

pub async fn set_consume_mode(admin: &Admin, args: SetConsumeMode, json: bool) -> Result<()> {
    use remoting::body::pop::{MessageRequestMode, SetMessageRequestModeRequestBody};
    let Some(mode) = MessageRequestMode::from_java_name(args.mode.trim()) else {
        bail!("mode `{}` is not PULL or POP", args.mode.trim());
    };
    let body = SetMessageRequestModeRequestBody {
        consumer_group: args.group.trim().to_owned(),
        mode,
        pop_share_queue_num: args.pop_share_queue_num,
        topic: args.topic.trim().to_owned(),
    };
    let addrs = match (&args.broker_addr, &args.cluster) {
        (Some(addr), _) => vec![addr.trim().to_owned()],
        (None, Some(cluster)) => admin.cluster_master_addrs(cluster.trim()).await?,
        (None, None) => bail!("setConsumeMode needs -b brokerAddr or -c clusterName"),
    };
    let mut set = Vec::new();
    let mut failed = 0;
    for addr in &addrs {
        match admin.set_message_request_mode(addr, &body).await {
            Ok(()) => {
                if !json {
                    println!("set consume mode to {addr} success.");
                }
                set.push(addr.clone());
            }
            // As RocketMQ's tool: with -c, one broker's refusal does not stop the others.
            Err(error) if args.broker_addr.is_none() => {
                eprintln!("set consume mode to {addr} failed: {error}");
                failed += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
    if json {
        print_json(
            &json!({"brokers": set, "topic": body.topic, "group": body.consumer_group,
            "mode": mode.java_name(), "popShareQueueNum": body.pop_share_queue_num}),
        )?;
    } else {
        println!(
            "topic[{}] group[{}] consume mode[{}] popShareQueueNum[{}]",
            body.topic,
            body.consumer_group,
            mode.java_name(),
            body.pop_share_queue_num
        );
    }
    if failed > 0 {
        bail!("{failed} of {} brokers refused the mode", addrs.len());
    }
    Ok(())
}

#[derive(Args)]
pub struct DeleteSubGroup {
    /// delete subscription group from which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// delete subscription group from which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
    /// subscription group name
    #[arg(short = 'g', long = "groupName")]
    group: String,
    /// remove offset (true|false)
    #[arg(short = 'r', long = "removeOffset", default_value = "false")]
    remove_offset: String,
}

pub async fn delete_sub_group(admin: &Admin, args: DeleteSubGroup, json: bool) -> Result<()> {
    let group = args.group.trim();
    let remove_offset = parse_bool(&args.remove_offset);
    if let Some(addr) = &args.broker_addr {
        let addr = addr.trim();
        admin
            .delete_subscription_group(addr, group, remove_offset)
            .await?;
        if json {
            return print_json(
                &json!({"group": group, "brokers": [addr], "removeOffset": remove_offset}),
            );
        }
        println!("delete subscription group [{group}] from broker [{addr}] success.");
        return Ok(());
    }
    let Some(cluster) = args.cluster.as_deref().map(str::trim) else {
        bail!("deleteSubGroup needs -b brokerAddr or -c clusterName");
    };
    let masters = admin.cluster_master_addrs(cluster).await?;
    for master in &masters {
        admin
            .delete_subscription_group(master, group, remove_offset)
            .await?;
        if !json {
            println!(
                "delete subscription group [{group}] from broker [{master}] in cluster [{cluster}] success."
            );
        }
    }
    // RocketMQ's tool also removes the group's retry and dead-letter topics; either may
    // not exist.
    for topic in [
        format!("{RETRY_GROUP_TOPIC_PREFIX}{group}"),
        format!("{DLQ_GROUP_TOPIC_PREFIX}{group}"),
    ] {
        if let Err(error) = admin.delete_topic(cluster, &topic).await {
            eprintln!("deleting {topic}: {error}");
        }
    }
    if json {
        return print_json(
            &json!({"group": group, "cluster": cluster, "brokers": masters,
            "removeOffset": remove_offset}),
        );
    }
    Ok(())
}
