//! `produce`: a `DefaultMQProducer` sending numbered messages, one at a time or as one batch.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rocketmq_client_rust::{
    AclClientRPCHook, ClientRuntime, DefaultMQProducer, SendResult, SessionCredentials,
};
use rocketmq_model::common::message::message_single::Message;
use serde_json::{json, Value};

use crate::args::Produce;
use crate::report;

/// Per-send timeout; generous because CI machines are slow and a 3-node group may still be
/// settling its leader.
const SEND_TIMEOUT_MS: u64 = 10_000;
/// The client's largest allowed compression threshold: above every body this driver makes,
/// so nothing is compressed.
const COMPRESS_NEVER_BYTES: u32 = 64 * 1024 * 1024;

/// The body of message `seq`: `TOPIC:SEQ:` padded with a, b, c, ... z, a, ... to
/// `body_bytes` (never shorter than the prefix), so a reader can rebuild it exactly.
pub fn body(topic: &str, seq: usize, body_bytes: Option<usize>) -> Vec<u8> {
    let mut body = format!("{topic}:{seq}:").into_bytes();
    let target = body_bytes.unwrap_or(0);
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let mut index = 0;
    while body.len() < target {
        body.push(letters[index % letters.len()]);
        index += 1;
    }
    body
}

fn message(args: &Produce, seq: usize, body: Vec<u8>) -> Result<Message> {
    let mut builder = Message::builder().topic(args.topic.as_str()).body(body);
    if !args.tags.is_empty() {
        builder = builder.tags(args.tags[seq % args.tags.len()].as_str());
    }
    if let Some(key) = &args.key {
        builder = builder.key(format!("{key}-{seq}"));
    }
    if let Some(level) = args.delay_level {
        builder = builder.delay_level(level);
    }
    builder = builder
        .raw_property("seq", seq.to_string())
        .context("property seq")?;
    for (key, value) in &args.properties {
        builder = builder
            .raw_property(key.as_str(), value.as_str())
            .with_context(|| format!("property {key}"))?;
    }
    builder.build().context("building the message")
}

fn result_fields(result: &SendResult) -> Value {
    json!({
        "status": format!("{:?}", result.send_status),
        "queue_id": result.message_queue.as_ref().map(|q| q.queue_id()),
        "broker_name": result.message_queue.as_ref().map(|q| q.broker_name().to_string()),
        "queue_offset": result.queue_offset,
        "offset_msg_id": result.offset_msg_id,
    })
}

pub async fn run(runtime: Arc<ClientRuntime>, args: &Produce) -> Result<()> {
    let mut builder = DefaultMQProducer::builder(runtime);
    if !args.compress {
        builder = builder.compress_msg_body_over_howmuch(COMPRESS_NEVER_BYTES);
    }
    // ACL 1.0: with credentials in the environment every request is signed by the
    // client's own hook.
    if let (Ok(access_key), Ok(secret_key)) = (
        std::env::var("ROCKETMQ_ACCESS_KEY"),
        std::env::var("ROCKETMQ_SECRET_KEY"),
    ) {
        let credentials = SessionCredentials::with_keys(access_key, secret_key);
        builder = builder.rpc_hook(Arc::new(AclClientRPCHook::new(credentials)));
    }
    let mut producer = builder
        .producer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        // By default each message is sent once, so the tests can tell a duplicate from a
        // retry.
        .retry_times_when_send_failed(args.retries)
        .build();
    producer.start().await.context("starting the producer")?;
    let sent = send_all(&producer, args).await;
    if let (true, Ok(ids)) = (args.lookup, &sent) {
        look_up(&mut producer, args, ids).await;
    }
    producer.shutdown().await;
    sent.map(|_| ())
}

/// The longest a query by key looks back, from now.
const QUERY_WINDOW_MS: u64 = 3_600_000;
/// Most messages one query by key returns.
const QUERY_MAX_MESSAGES: i32 = 32;

/// Looks every sent message up by message id, offset message id and key; prints what each
/// way found (`viewed`, `viewed_by_offset_id`, `queried`) or why it failed (`lookup_failed`).
async fn look_up(producer: &mut DefaultMQProducer, args: &Produce, sent: &[SentIds]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for ids in sent {
        for (op, id) in [
            ("viewed", &ids.msg_id),
            ("viewed_by_offset_id", &ids.offset_msg_id),
        ] {
            match producer.view_message(&args.topic, id).await {
                Ok(message) => report::print(&report::message_line(op, &message)),
                Err(e) => report_lookup_failure(op, ids.seq, &e),
            }
        }
        if let Some(key) = &args.key {
            let key = format!("{key}-{}", ids.seq);
            let begin_ms = now_ms.saturating_sub(QUERY_WINDOW_MS);
            let end_ms = now_ms + QUERY_WINDOW_MS;
            match producer
                .query_message(&args.topic, &key, QUERY_MAX_MESSAGES, begin_ms, end_ms)
                .await
            {
                Ok(found) => {
                    for message in found.message_list() {
                        report::print(&report::message_line("queried", message));
                    }
                }
                Err(e) => report_lookup_failure("queried", ids.seq, &e),
            }
        }
    }
}

fn report_lookup_failure(op: &str, seq: usize, error: &dyn std::fmt::Display) {
    report::print(
        &json!({"op": "lookup_failed", "lookup": op, "seq": seq, "error": error.to_string()}),
    );
}

/// The ids a single send was acknowledged with.
struct SentIds {
    seq: usize,
    msg_id: String,
    offset_msg_id: String,
}

/// Sends every message; returns the ids of the single sends (none for a batch).
async fn send_all(producer: &DefaultMQProducer, args: &Produce) -> Result<Vec<SentIds>> {
    if args.batch {
        let messages = (0..args.count)
            .map(|seq| message(args, seq, body(&args.topic, seq, args.body_bytes)))
            .collect::<Result<Vec<_>>>()?;
        let result = producer
            .send_batch_with_timeout(messages, SEND_TIMEOUT_MS)
            .await
            .context("sending the batch")?;
        let ids: Vec<String> = result
            .msg_id
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(String::from)
            .collect();
        let mut line = result_fields(&result);
        line["op"] = json!("sent_batch");
        line["count"] = json!(args.count);
        line["msg_ids"] = json!(ids);
        report::print(&line);
        return Ok(Vec::new());
    }
    let mut sent = Vec::with_capacity(args.count);
    for seq in 0..args.count {
        let body = body(&args.topic, seq, args.body_bytes);
        let (body_len, body_crc32) = (body.len(), crc32fast::hash(&body));
        let message = message(args, seq, body)?;
        let result = producer
            .send_with_timeout(message, SEND_TIMEOUT_MS)
            .await
            .with_context(|| format!("sending message {seq}"));
        let result = match (result, args.interval_ms) {
            (Ok(Some(result)), _) => result,
            (Ok(None), None) => bail!("message {seq}: the client returned no send result"),
            (Err(e), None) => return Err(e),
            (outcome, Some(interval_ms)) => {
                let error = match outcome {
                    Err(e) => format!("{e:#}"),
                    _ => "no send result".to_string(),
                };
                report::print(&json!({"op": "send_failed", "seq": seq, "error": error}));
                tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
                continue;
            }
        };
        let mut line = result_fields(&result);
        line["op"] = json!("sent");
        line["seq"] = json!(seq);
        line["msg_id"] = json!(result.msg_id.as_deref());
        line["body_len"] = json!(body_len);
        line["body_crc32"] = json!(body_crc32);
        report::print(&line);
        sent.push(SentIds {
            seq,
            msg_id: result.msg_id.as_deref().unwrap_or_default().to_owned(),
            offset_msg_id: result.offset_msg_id.clone().unwrap_or_default(),
        });
        if let Some(interval_ms) = args.interval_ms {
            tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn bodies_are_padded_to_size_and_never_cut() {
        assert_eq!(body("T", 7, None), b"T:7:");
        assert_eq!(body("T", 7, Some(7)), b"T:7:abc");
        assert_eq!(body("T", 7, Some(2)), b"T:7:");
        assert_eq!(body("T", 0, Some(1024 * 1024)).len(), 1024 * 1024);
    }
}
