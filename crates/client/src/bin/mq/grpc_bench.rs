//! `mq bench produce|consume --grpc HOST:PORT`: the same load over RocketMQ 5's gRPC
//! protocol (a broker's gRPC port), so one tool compares the broker's two fronts. Sends are
//! SendMessage calls of one message, `--concurrency` in flight over one HTTP/2 connection
//! (a 5.x client multiplexes its calls the same way); consumption is `--concurrency`
//! receivers, each a ReceiveMessage of up to 32 (a POP) then one AckMessage for the batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use grpc::v2::messaging_service_client::MessagingServiceClient;
use grpc::v2::{self, receive_message_response::Content};
use tonic::transport::Channel;
use tonic::Request;

use crate::{spawn_progress, summary, Stats};

/// Messages one receive asks for (the broker hands out at most this many).
const RECEIVE_BATCH: i32 = 32;
/// How long a receive waits for messages before it answers with none.
const LONG_POLL: Duration = Duration::from_secs(1);
/// How long a received message stays invisible to other receivers before its ack.
const INVISIBLE: Duration = Duration::from_secs(30);

pub struct Load {
    pub endpoint: String,
    pub topic: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub count: Option<u64>,
    pub json: bool,
}

struct Caller {
    client: MessagingServiceClient<Channel>,
    client_id: String,
}

impl Caller {
    async fn connect(endpoint: &str, max_message_bytes: usize) -> Result<Caller> {
        let channel = Channel::from_shared(format!("http://{endpoint}"))
            .context("the gRPC endpoint is not HOST:PORT")?
            .connect()
            .await
            .with_context(|| format!("connecting to the gRPC port {endpoint}"))?;
        Ok(Caller {
            client: MessagingServiceClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            client_id: format!("mq-bench-{}", std::process::id()),
        })
    }

    /// `message` as this client sends it (with its client id, which the broker requires).
    fn request<T>(&self, message: T) -> Result<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("x-mq-client-id", self.client_id.parse()?);
        Ok(request)
    }
}

fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

fn timestamp(at: std::time::SystemTime) -> prost_types::Timestamp {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

fn status_ok(status: Option<&v2::Status>) -> bool {
    status.is_some_and(|s| s.code == v2::Code::Ok as i32)
}

/// Takes one message from the budget shared by the workers; false once it is spent.
fn take_one(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

pub async fn produce(load: Load, size: usize) -> Result<()> {
    let caller = Arc::new(Caller::connect(&load.endpoint, size + 64 * 1024).await?);
    let stats = Stats::new()?;
    let started = Instant::now();
    let deadline = started + load.duration;
    let budget = Arc::new(AtomicU64::new(load.count.unwrap_or(u64::MAX)));
    let next_id = Arc::new(AtomicU64::new(0));
    let progress = spawn_progress(Arc::clone(&stats), "sent", started);
    let body = vec![b'x'; size];
    let mut workers = Vec::new();
    for _ in 0..load.concurrency {
        let (caller, stats, budget, next_id) = (
            Arc::clone(&caller),
            Arc::clone(&stats),
            Arc::clone(&budget),
            Arc::clone(&next_id),
        );
        let (topic, body) = (load.topic.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut client = caller.client.clone();
            while Instant::now() < deadline && take_one(&budget) {
                let message = v2::Message {
                    topic: resource(&topic),
                    user_properties: Default::default(),
                    system_properties: Some(v2::SystemProperties {
                        message_id: format!(
                            "{:08X}{:024X}",
                            std::process::id(),
                            next_id.fetch_add(1, Ordering::Relaxed)
                        ),
                        message_type: v2::MessageType::Normal as i32,
                        body_encoding: v2::Encoding::Identity as i32,
                        born_timestamp: Some(timestamp(std::time::SystemTime::now())),
                        ..Default::default()
                    }),
                    body: body.clone(),
                };
                let Ok(request) = caller.request(v2::SendMessageRequest {
                    messages: vec![message],
                }) else {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let sent_at = Instant::now();
                match client.send_message(request).await {
                    Ok(answer) if status_ok(answer.get_ref().status.as_ref()) => {
                        stats.record(sent_at.elapsed(), 1, body.len() as u64)
                    }
                    _ => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    progress.abort();
    summary("produce", &stats, elapsed, load.json, "send_latency_ms");
    Ok(())
}

pub async fn consume(load: Load, group: String) -> Result<()> {
    let caller = Arc::new(Caller::connect(&load.endpoint, 64 * 1024 * 1024).await?);
    let stats = Stats::new()?;
    let started = Instant::now();
    let deadline = started + load.duration;
    let limit = load.count.unwrap_or(u64::MAX);
    let progress = spawn_progress(Arc::clone(&stats), "consumed", started);
    let mut workers = Vec::new();
    for _ in 0..load.concurrency {
        let (caller, stats) = (Arc::clone(&caller), Arc::clone(&stats));
        let (topic, group) = (load.topic.clone(), group.clone());
        workers.push(tokio::spawn(async move {
            let mut client = caller.client.clone();
            while Instant::now() < deadline && stats.ok.load(Ordering::Relaxed) < limit {
                if receive_and_ack(&caller, &mut client, &topic, &group, &stats)
                    .await
                    .is_err()
                {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    progress.abort();
    summary(
        "consume",
        &stats,
        elapsed,
        load.json,
        "end_to_end_latency_ms",
    );
    Ok(())
}

/// One receive, then one ack of what it brought.
async fn receive_and_ack(
    caller: &Caller,
    client: &mut MessagingServiceClient<Channel>,
    topic: &str,
    group: &str,
    stats: &Stats,
) -> Result<()> {
    let request = caller.request(v2::ReceiveMessageRequest {
        group: resource(group),
        message_queue: Some(v2::MessageQueue {
            topic: resource(topic),
            id: -1,
            ..Default::default()
        }),
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: "*".to_owned(),
        }),
        batch_size: RECEIVE_BATCH,
        invisible_duration: Some(prost_types::Duration {
            seconds: INVISIBLE.as_secs() as i64,
            nanos: 0,
        }),
        auto_renew: false,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: LONG_POLL.as_secs() as i64,
            nanos: 0,
        }),
        ..Default::default()
    })?;
    let mut stream = client.receive_message(request).await?.into_inner();
    let mut entries = Vec::new();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    while let Some(response) = stream.message().await? {
        let Some(Content::Message(message)) = response.content else {
            continue;
        };
        let Some(system) = message.system_properties else {
            continue;
        };
        let born_ms = system.born_timestamp.map_or(now_ms, |t| {
            t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
        });
        stats.record(
            Duration::from_millis((now_ms - born_ms).max(0) as u64),
            1,
            message.body.len() as u64,
        );
        entries.push(v2::AckMessageEntry {
            message_id: system.message_id,
            receipt_handle: system.receipt_handle.unwrap_or_default(),
            lite_topic: None,
        });
    }
    if entries.is_empty() {
        return Ok(());
    }
    let acked = client
        .ack_message(caller.request(v2::AckMessageRequest {
            group: resource(group),
            topic: resource(topic),
            entries,
        })?)
        .await?;
    anyhow::ensure!(
        status_ok(acked.get_ref().status.as_ref()),
        "ack refused: {:?}",
        acked.get_ref().status
    );
    Ok(())
}
