//! `statsAll` and `brokerConsumeStats`: traffic per topic and consumer group, and every
//! group's lag on one broker.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use client::admin::StatsSource;
use client::display::{front, timestamp_s};
use client::Admin;
use message::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use serde_json::json;

use super::{parse_bool, print_json};

#[derive(Args)]
pub struct StatsAll {
    /// print active topic only
    #[arg(short = 'a', long = "activeTopic")]
    active_topic: bool,
    /// print select topic only
    #[arg(short = 't', long = "topic")]
    topic: Option<String>,
}

/// Tells, on stderr, that a broker's counters were not available.
fn note_derived(what: &str) {
    eprintln!(
        "note: a broker did not answer {what}; figures derived from queue offsets \
         (24-hour counts are messages still stored; a group's count is its progress)"
    );
}

pub async fn stats_all(admin: &Admin, args: StatsAll, json: bool) -> Result<()> {
    let selected = args
        .topic
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let mut rows = Vec::new();
    let mut derived = false;
    if !json {
        println!(
            "{:<64}  {:<64} {:>12} {:>11} {:>11} {:>14} {:>14}",
            "#Topic",
            "#Consumer Group",
            "#Accumulation",
            "#InTPS",
            "#OutTPS",
            "#InMsg24Hour",
            "#OutMsg24Hour"
        );
    }
    for topic in admin.topic_list().await? {
        if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
        {
            continue;
        }
        if selected.is_some_and(|s| s != topic) {
            continue;
        }
        // As RocketMQ's tool: a topic whose figures cannot be had is left out.
        let traffic = match admin.topic_traffic(&topic).await {
            Ok(traffic) => traffic,
            Err(error) => {
                tracing::debug!(%topic, %error, "no traffic figures");
                continue;
            }
        };
        derived |= traffic.source == StatsSource::Offsets;
        if traffic.groups.is_empty() {
            if !args.active_topic || traffic.in_msg_24_hour > 0 {
                if !json {
                    println!(
                        "{:<64}  {:<64} {:>12} {:>11.2} {:>11} {:>14} {:>14}",
                        front(&topic, 64),
                        "",
                        0,
                        traffic.in_tps,
                        "",
                        traffic.in_msg_24_hour,
                        "NO_CONSUMER"
                    );
                }
                rows.push(
                    json!({"topic": topic, "consumerGroup": null, "accumulation": 0,
                    "inTps": traffic.in_tps, "outTps": null,
                    "inMsg24Hour": traffic.in_msg_24_hour, "outMsg24Hour": null}),
                );
            }
            continue;
        }
        for group in &traffic.groups {
            if args.active_topic && traffic.in_msg_24_hour == 0 && group.out_msg_24_hour == 0 {
                continue;
            }
            if !json {
                println!(
                    "{:<64}  {:<64} {:>12} {:>11.2} {:>11.2} {:>14} {:>14}",
                    front(&topic, 64),
                    front(&group.group, 64),
                    group.accumulation,
                    traffic.in_tps,
                    group.out_tps,
                    traffic.in_msg_24_hour,
                    group.out_msg_24_hour
                );
            }
            rows.push(json!({"topic": topic, "consumerGroup": group.group,
                "accumulation": group.accumulation, "inTps": traffic.in_tps,
                "outTps": group.out_tps, "inMsg24Hour": traffic.in_msg_24_hour,
                "outMsg24Hour": group.out_msg_24_hour}));
        }
    }
    if json {
        let source = if derived { "offsets" } else { "brokerStats" };
        return print_json(&json!({"rows": rows, "source": source}));
    }
    if derived {
        note_derived("VIEW_BROKER_STATS_DATA");
    }
    Ok(())
}

#[derive(Args)]
pub struct BrokerConsumeStats {
    /// Broker address
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: String,
    /// request timeout Millis
    #[arg(short = 't', long = "timeoutMillis", default_value_t = 50_000)]
    timeout_ms: u64,
    /// threshold of print diff
    #[arg(short = 'l', long = "level", default_value_t = 0)]
    level: i64,
    /// order topic (true|false)
    #[arg(short = 'o', long = "order", default_value = "false")]
    order: String,
}

pub async fn broker_consume_stats(
    admin: &Admin,
    args: BrokerConsumeStats,
    json: bool,
) -> Result<()> {
    let addr = args.broker_addr.trim();
    let (list, source) = admin
        .broker_consume_stats(
            addr,
            parse_bool(&args.order),
            Duration::from_millis(args.timeout_ms),
        )
        .await?;
    let mut rows = Vec::new();
    for groups in &list.consume_stats_list {
        for (group, per_topic) in groups {
            for stats in per_topic {
                for (queue, offsets) in &stats.offset_table {
                    let diff = offsets.broker_offset - offsets.consumer_offset;
                    // RocketMQ's tool shows queues at or above the level that have been
                    // consumed at least once.
                    if diff < args.level || offsets.last_timestamp <= 0 {
                        continue;
                    }
                    rows.push((group.clone(), queue.clone(), *offsets, diff));
                }
            }
        }
    }
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(group, q, o, diff)| {
                json!({"topic": q.topic, "group": group, "brokerName": q.broker_name,
                    "queueId": q.queue_id, "brokerOffset": o.broker_offset,
                    "consumerOffset": o.consumer_offset, "diff": diff,
                    "lastTimestamp": o.last_timestamp})
            })
            .collect();
        let source = match source {
            StatsSource::BrokerStats => "GET_BROKER_CONSUME_STATS",
            StatsSource::Offsets => "GET_CONSUME_STATS",
        };
        return print_json(&json!({"brokerAddr": addr, "rows": rows,
            "diffTotal": list.total_diff, "source": source}));
    }
    println!(
        "{:<64}  {:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  {}",
        "#Topic",
        "#Group",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#LastTime"
    );
    for (group, queue, offsets, diff) in &rows {
        println!(
            "{:<64}  {:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  {}",
            front(&queue.topic, 64),
            group,
            front(&queue.broker_name, 32),
            queue.queue_id,
            offsets.broker_offset,
            offsets.consumer_offset,
            diff,
            timestamp_s(offsets.last_timestamp)
        );
    }
    println!();
    println!("Diff Total: {}", list.total_diff);
    if source == StatsSource::Offsets {
        eprintln!(
            "note: {addr} does not answer GET_BROKER_CONSUME_STATS; asked GET_CONSUME_STATS for each group it hosts"
        );
    }
    Ok(())
}
