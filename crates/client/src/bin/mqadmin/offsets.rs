//! `resetOffsetByTime`, `cloneGroupOffset` and `getConsumerStatus`: a group's offsets moved
//! to a point in time, copied from another group, and as its online members hold them.

use anyhow::{Context, Result};
use clap::Args;
use client::display::{front, parse_timestamp};
use client::Admin;
use serde_json::json;

use super::{parse_bool, print_json};

#[derive(Args)]
pub struct ResetOffsetByTime {
    /// set the consumer group
    #[arg(short = 'g', long = "group")]
    group: String,
    /// set the topic
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS] (UTC)
    #[arg(short = 's', long = "timestamp")]
    timestamp: String,
    /// set the force rollback by timestamp switch[true|false]
    #[arg(short = 'f', long = "force", default_value = "true")]
    force: String,
}

pub async fn reset_offset_by_time(
    admin: &Admin,
    args: ResetOffsetByTime,
    json: bool,
) -> Result<()> {
    let group = args.group.trim();
    let topic = args.topic.trim();
    let text = args.timestamp.trim();
    let timestamp = parse_timestamp(text, now_ms()).with_context(|| {
        format!("timestamp `{text}` is not now, milliseconds or yyyy-MM-dd#HH:mm:ss:SSS")
    })?;
    let force = parse_bool(&args.force);
    let offsets = admin
        .reset_offset_by_time(group, topic, timestamp, force)
        .await?;
    if json {
        let rows: Vec<_> = offsets
            .iter()
            .map(|(q, offset)| {
                json!({"brokerName": q.broker_name, "queueId": q.queue_id, "offset": offset})
            })
            .collect();
        return print_json(&json!({"group": group, "topic": topic, "force": force,
            "timestamp": timestamp, "offsets": rows}));
    }
    println!(
        "start reset consumer offset by specified, group[{group}], topic[{topic}], force[{force}], timestamp(string)[{text}], timestamp(long)[{timestamp}]"
    );
    println!(
        "{:<40}  {:<40}  {:<40}",
        "#brokerName", "#queueId", "#offset"
    );
    for (queue, offset) in &offsets {
        println!(
            "{:<40}  {:<40}  {:<40}",
            front(&queue.broker_name, 32),
            queue.queue_id,
            offset
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct CloneGroupOffset {
    /// set source consumer group
    #[arg(short = 's', long = "srcGroup")]
    src_group: String,
    /// set destination consumer group
    #[arg(short = 'd', long = "destGroup")]
    dest_group: String,
    /// set the topic
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// the group or the topic is offline (true|false)
    #[arg(short = 'o', long = "offline", default_value = "false")]
    offline: String,
}

pub async fn clone_group_offset(admin: &Admin, args: CloneGroupOffset, json: bool) -> Result<()> {
    let (src, dest, topic) = (
        args.src_group.trim(),
        args.dest_group.trim(),
        args.topic.trim(),
    );
    let brokers = admin
        .clone_group_offset(src, dest, topic, parse_bool(&args.offline))
        .await?;
    if json {
        return print_json(
            &json!({"srcGroup": src, "destGroup": dest, "topic": topic, "brokers": brokers}),
        );
    }
    println!("clone group offset success. srcGroup[{src}], destGroup=[{dest}], topic[{topic}]");
    Ok(())
}

#[derive(Args)]
pub struct GetConsumerStatus {
    /// set the consumer group
    #[arg(short = 'g', long = "group")]
    group: String,
    /// set the topic
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// set the consumer clientId
    #[arg(short = 'i', long = "originClientId")]
    client_id: Option<String>,
}

pub async fn get_consumer_status(admin: &Admin, args: GetConsumerStatus, json: bool) -> Result<()> {
    let group = args.group.trim();
    let topic = args.topic.trim();
    let client_id = args.client_id.as_deref().map(str::trim).unwrap_or("");
    let table = admin
        .consumer_status(topic, group, Some(client_id).filter(|c| !c.is_empty()))
        .await?;
    if json {
        let clients: serde_json::Map<_, _> = table
            .iter()
            .map(|(client, queues)| {
                let rows: Vec<_> = queues
                    .iter()
                    .map(|(q, o)| json!({"brokerName": q.broker_name, "queueId": q.queue_id, "offset": o}))
                    .collect();
                (client.clone(), serde_json::Value::from(rows))
            })
            .collect();
        return print_json(&clients);
    }
    println!(
        "get consumer status from client. group={group}, topic={topic}, originClientId={client_id}"
    );
    println!(
        "{:<50}  {:<15}  {:<15}  {:<20}",
        "#clientId", "#brokerName", "#queueId", "#offset"
    );
    for (client, queues) in &table {
        for (queue, offset) in queues {
            println!(
                "{:<50}  {:<15}  {:<15}  {:<20}",
                front(client, 50),
                queue.broker_name,
                queue.queue_id,
                offset
            );
        }
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
