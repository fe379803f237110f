//! `queryMsgByOffset` and `printMsg`: reading a topic's messages by queue and offset.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::Args;
use client::consumer::PullStatus;
use client::display::parse_timestamp;
use client::{Admin, MessageQueue, ReceivedMessage};
use serde_json::json;

use super::offsets::now_ms;
use super::{message_json, parse_bool, print_json, print_message};

/// Only UTF-8 bodies can be shown; RocketMQ's tools take any Java charset name.
fn check_charset(name: Option<&str>) -> Result<()> {
    match name.map(str::trim) {
        None => Ok(()),
        Some(name) if name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("UTF8") => {
            Ok(())
        }
        Some(name) => bail!("charset `{name}` is not supported; bodies print as UTF-8"),
    }
}

#[derive(Args)]
pub struct QueryMsgByOffset {
    /// topic name
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Broker Name
    #[arg(short = 'b', long = "brokerName")]
    broker_name: String,
    /// Queue Id
    #[arg(short = 'i', long = "queueId")]
    queue_id: i32,
    /// Queue Offset
    #[arg(short = 'o', long = "offset")]
    offset: i64,
    /// print message body by the specified format (UTF-8)
    #[arg(short = 'f', long = "bodyFormat")]
    body_format: Option<String>,
}

pub async fn query_msg_by_offset(admin: &Admin, args: QueryMsgByOffset, json: bool) -> Result<()> {
    check_charset(args.body_format.as_deref())?;
    let queue = MessageQueue::new(args.topic.trim(), args.broker_name.trim(), args.queue_id);
    let message = admin
        .message_at(&queue, args.offset)
        .await?
        .with_context(|| {
            format!(
                "no message at offset {} of {} queue {} on {}",
                args.offset, queue.topic, queue.queue_id, queue.broker_name
            )
        })?;
    if json {
        return print_json(&message_json(&message));
    }
    print_message(&message, args.body_format.is_some());
    Ok(())
}

#[derive(Args)]
pub struct PrintMsg {
    /// topic name
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// CharsetName (UTF-8)
    #[arg(short = 'c', long = "charsetName")]
    charset: Option<String>,
    /// Subscribe Expression(eg: TagA || TagB)
    #[arg(short = 's', long = "subExpression", default_value = "*")]
    sub_expression: String,
    /// Begin timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS] (UTC)
    #[arg(short = 'b', long = "beginTimestamp")]
    begin: Option<String>,
    /// End timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS] (UTC)
    #[arg(short = 'e', long = "endTimestamp")]
    end: Option<String>,
    /// print body (true|false)
    #[arg(short = 'd', long = "printBody", default_value = "true")]
    print_body: String,
}

fn status_name(status: PullStatus) -> &'static str {
    match status {
        PullStatus::Found => "FOUND",
        PullStatus::NoNewMsg => "NO_NEW_MSG",
        PullStatus::NoMatchedMsg => "NO_MATCHED_MSG",
        PullStatus::OffsetIllegal => "OFFSET_ILLEGAL",
    }
}

fn queue_text(queue: &MessageQueue) -> String {
    format!(
        "MessageQueue [topic={}, brokerName={}, queueId={}]",
        queue.topic, queue.broker_name, queue.queue_id
    )
}

/// A message as Java's `MessageExt.toString` shows it (its stored size and body CRC,
/// which this client does not keep, left out).
fn message_ext_text(m: &ReceivedMessage) -> String {
    let properties: BTreeMap<_, _> = m.properties.iter().collect();
    let properties: Vec<String> = properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let body: Vec<String> = m.body.iter().map(|b| (*b as i8).to_string()).collect();
    format!(
        "MessageExt [brokerName={}, queueId={}, queueOffset={}, sysFlag={}, bornTimestamp={}, bornHost=/{}, storeTimestamp={}, storeHost=/{}, msgId={}, commitLogOffset={}, reconsumeTimes={}, preparedTransactionOffset=0, toString()=Message{{topic='{}', flag={}, properties={{{}}}, body=[{}], transactionId='null'}}]",
        m.queue.broker_name,
        m.queue.queue_id,
        m.queue_offset,
        m.sys_flag,
        m.born_timestamp_ms,
        m.born_host,
        m.store_timestamp_ms,
        m.store_host,
        m.offset_msg_id,
        m.commit_log_offset,
        m.reconsume_times,
        m.topic,
        m.flag,
        properties.join(", "),
        body.join(", ")
    )
}

fn timestamp_arg(text: Option<&str>) -> Result<Option<i64>> {
    text.map(|t| {
        parse_timestamp(t, now_ms()).with_context(|| {
            format!("timestamp `{t}` is not milliseconds or yyyy-MM-dd#HH:mm:ss:SSS")
        })
    })
    .transpose()
}

/// Most messages one pull of `printMsg` asks for (RocketMQ's tool asks for 32).
const BATCH: i32 = 32;

pub async fn print_msg(admin: &Admin, args: PrintMsg, json: bool) -> Result<()> {
    check_charset(args.charset.as_deref())?;
    let topic = args.topic.trim();
    let expression = args.sub_expression.trim();
    let print_body = parse_bool(&args.print_body);
    let begin = timestamp_arg(args.begin.as_deref())?;
    let end = timestamp_arg(args.end.as_deref())?;
    let mut queues = admin.topic_queues(topic).await?;
    queues.sort();
    let mut report = Vec::new();
    for queue in &queues {
        let min_offset = match begin {
            Some(ms) => admin.queue_search_offset(queue, ms).await?,
            None => admin.queue_min_offset(queue).await?,
        };
        let max_offset = match end {
            Some(ms) => admin.queue_search_offset(queue, ms).await?,
            None => admin.queue_max_offset(queue).await?,
        };
        if !json {
            println!(
                "minOffset={min_offset}, maxOffset={max_offset}, {}",
                queue_text(queue)
            );
        }
        let mut messages = Vec::new();
        let mut offset = min_offset;
        while offset < max_offset {
            let result = match admin.pull(queue, expression, offset, BATCH).await {
                Ok(result) => result,
                Err(error) => {
                    eprintln!("{}: {error}", queue_text(queue));
                    break;
                }
            };
            let next = result.next_begin_offset;
            match result.status {
                PullStatus::Found => {
                    // Only what lies before the end of the range (RocketMQ's tool prints
                    // the whole last batch).
                    for message in result
                        .messages
                        .into_iter()
                        .filter(|m| m.queue_offset < max_offset)
                    {
                        if !json {
                            println!(
                                "MSGID: {} {} BODY: {}",
                                message.msg_id(),
                                message_ext_text(&message),
                                if print_body {
                                    message.body_text().into_owned()
                                } else {
                                    "NOT PRINT BODY".to_owned()
                                }
                            );
                        }
                        messages.push(message);
                    }
                }
                PullStatus::NoMatchedMsg => {
                    if !json {
                        println!(
                            "{} no matched msg. status={}, offset={next}",
                            queue_text(queue),
                            status_name(result.status)
                        );
                    }
                }
                PullStatus::NoNewMsg | PullStatus::OffsetIllegal => {
                    if !json {
                        println!(
                            "{} print msg finished. status={}, offset={next}",
                            queue_text(queue),
                            status_name(result.status)
                        );
                    }
                    break;
                }
            }
            if next <= offset {
                break; // no progress: stop rather than ask again forever
            }
            offset = next;
        }
        if !json {
            println!("--------------------------------------------------------");
        }
        report.push(json!({
            "brokerName": queue.broker_name, "queueId": queue.queue_id,
            "minOffset": min_offset, "maxOffset": max_offset,
            "messages": messages.iter().map(|m| {
                let mut value = message_json(m);
                if !print_body {
                    value["body"] = serde_json::Value::Null;
                }
                value
            }).collect::<Vec<_>>(),
        }));
    }
    if json {
        print_json(&json!({"topic": topic, "queues": report}))?;
    }
    Ok(())
}
