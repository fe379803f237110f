//! The fault tests' oracle: every send's outcome is recorded ([`SendLog`], filled by
//! [`Load`]), every queue is read back from offset 0 ([`read_all`] through a consumer,
//! [`read_member`] straight from one member), and [`check`] holds the two against each
//! other:
//! - each queue is dense: offsets 0, 1, 2, ... with no gap;
//! - each acknowledged send is at the queue and offset its send result reported, with its
//!   msgId and body, and nowhere else;
//! - nothing else is there but sends whose outcome the producer never learned (a failed
//!   send may have been stored; it appears at most once).
//!
//! Sends are made without client retries (every body is sent once), so "exactly once"
//! is checkable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use client::consumer::PullStatus;
use client::producer::SendStatus;
use client::{Message, MessageQueue, Producer, PullConsumer};
use remoting::client::RemotingClient;
use remoting::code::response;

use crate::requests::{ext_i64, pull, pull_header};

/// One acknowledged send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub queue_id: i32,
    pub queue_offset: i64,
    pub msg_id: String,
    pub body: String,
}

/// What the producers learned.
#[derive(Debug, Default, Clone)]
pub struct SendLog {
    pub acked: Vec<Acked>,
    /// Bodies of sends that failed or timed out: they may or may not be stored.
    pub unknown: BTreeSet<String>,
    /// Why sends failed (the error text, shortened) and how often.
    pub errors: BTreeMap<String, usize>,
}

/// A message read back from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub queue_offset: i64,
    pub msg_id: String,
    pub body: String,
}

/// What a passing check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub acked: usize,
    pub unknown: usize,
    /// Failed sends that were stored after all.
    pub unknown_stored: usize,
    pub read: usize,
}

/// Holds what was read against what was acknowledged; the error lists what is wrong.
pub fn check(log: &SendLog, queues: &BTreeMap<i32, Vec<Read>>) -> Result<Report> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (queue_id, reads) in queues {
        for (expected, read) in (0i64..).zip(reads) {
            if read.queue_offset != expected {
                problems.push(format!(
                    "queue {queue_id}: offset {} where {expected} was due (not dense)",
                    read.queue_offset
                ));
                break;
            }
        }
        for read in reads {
            *seen.entry(read.body.as_str()).or_default() += 1;
        }
    }
    let acked_bodies: BTreeSet<&str> = log.acked.iter().map(|a| a.body.as_str()).collect();
    for acked in &log.acked {
        match read_at(queues, acked.queue_id, acked.queue_offset) {
            Some(read) if read.body == acked.body && read.msg_id == acked.msg_id => {}
            Some(read) => problems.push(format!(
                "acknowledged {} ({}) at queue {} offset {}: found {} ({}) there",
                acked.body,
                acked.msg_id,
                acked.queue_id,
                acked.queue_offset,
                read.body,
                read.msg_id
            )),
            None => problems.push(format!(
                "acknowledged {} at queue {} offset {} is missing",
                acked.body, acked.queue_id, acked.queue_offset
            )),
        }
        if let Some(count) = seen.get(acked.body.as_str()).filter(|c| **c > 1) {
            problems.push(format!(
                "acknowledged {} is stored {count} times",
                acked.body
            ));
        }
    }
    let mut unknown_stored = 0;
    for (body, count) in &seen {
        if acked_bodies.contains(body) {
            continue;
        }
        if !log.unknown.contains(*body) {
            problems.push(format!("{body} was never sent ({count} times stored)"));
        } else if *count > 1 {
            problems.push(format!("failed send {body} stored {count} times"));
        } else {
            unknown_stored += 1;
        }
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(20).collect();
        bail!(
            "{} problems, first {}: {shown:#?}",
            problems.len(),
            shown.len()
        );
    }
    Ok(Report {
        acked: log.acked.len(),
        unknown: log.unknown.len(),
        unknown_stored,
        read: seen.values().sum(),
    })
}

/// What was read at `queue_offset` of queue `queue_id`.
pub fn read_at(
    queues: &BTreeMap<i32, Vec<Read>>,
    queue_id: i32,
    queue_offset: i64,
) -> Option<&Read> {
    let index = usize::try_from(queue_offset).ok()?;
    queues.get(&queue_id)?.get(index)
}

/// Bodies of acknowledged sends that are not where their send result said (a loss the
/// flush mode may allow, such as ASYNC_FLUSH on a whole-group power cut).
pub fn lost(log: &SendLog, queues: &BTreeMap<i32, Vec<Read>>) -> Vec<String> {
    log.acked
        .iter()
        .filter(|acked| {
            !read_at(queues, acked.queue_id, acked.queue_offset)
                .is_some_and(|read| read.body == acked.body && read.msg_id == acked.msg_id)
        })
        .map(|acked| acked.body.clone())
        .collect()
}

/// Most sends one [`Load`] makes (a bound, far above what a test runs).
const MAX_SENDS: usize = 10_000_000;

/// Numbers each [`Load`] of a test process so bodies stay unique across loads.
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// Concurrent producers sending unique bodies to one topic until stopped, each send once.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    log: Arc<Mutex<SendLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `producer` should be made with `retry_times = 0` so each body is sent once.
    pub fn start(producer: &Producer, topic: &str, senders: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(SendLog::default()));
        let total = Arc::new(AtomicUsize::new(0));
        let load = LOADS.fetch_add(1, Ordering::Relaxed);
        let tasks = (0..senders)
            .map(|sender| {
                let producer = producer.clone();
                let topic = topic.to_owned();
                let (stop, acked, failed, log, total) = (
                    Arc::clone(&stop),
                    Arc::clone(&acked),
                    Arc::clone(&failed),
                    Arc::clone(&log),
                    Arc::clone(&total),
                );
                tokio::spawn(async move {
                    for seq in 0.. {
                        if stop.load(Ordering::Acquire)
                            || total.fetch_add(1, Ordering::AcqRel) >= MAX_SENDS
                        {
                            return;
                        }
                        let body = format!("{topic}-l{load}-s{sender}-{seq}");
                        let sent = producer.send(Message::new(&topic, body.clone())).await;
                        match sent {
                            Ok(result) if result.status == SendStatus::SendOk => {
                                log.lock().unwrap().acked.push(Acked {
                                    queue_id: result.queue.queue_id,
                                    queue_offset: result.queue_offset,
                                    msg_id: result.msg_id,
                                    body,
                                });
                                acked.fetch_add(1, Ordering::AcqRel);
                            }
                            other => {
                                let reason = match other {
                                    Ok(result) => format!("{:?}", result.status),
                                    Err(e) => e.to_string().chars().take(100).collect(),
                                };
                                {
                                    let mut log = log.lock().unwrap();
                                    log.unknown.insert(body);
                                    *log.errors.entry(reason).or_default() += 1;
                                }
                                failed.fetch_add(1, Ordering::AcqRel);
                                // No hot loop while the group has no master.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acked,
            failed,
            log,
            tasks,
        }
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Acquire)
    }

    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Acquire)
    }

    /// Waits (bounded) until `count` sends in all were acknowledged.
    pub async fn wait_acked(&self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.acked() < count {
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "only {} sends acknowledged ({} failed) after {timeout:?}; wanted {count}",
                    self.acked(),
                    self.failed()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops the senders (each finishes its send in flight) and returns what they learned.
    pub async fn stop(self) -> SendLog {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            let _ = task.await;
        }
        let log = self.log.lock().unwrap();
        log.clone()
    }
}

/// Most pulls one queue read makes (a bound).
const MAX_PULLS_PER_QUEUE: usize = 100_000;

/// Every queue of `topic` read from offset 0 to its end through `consumer` (which pulls
/// from the master when there is one), by queue id (a topic on one broker).
pub async fn read_all(consumer: &PullConsumer, topic: &str) -> Result<BTreeMap<i32, Vec<Read>>> {
    let mut out = BTreeMap::new();
    for queue in consumer.queues(topic).await? {
        out.insert(queue.queue_id, read_queue(consumer, &queue).await?);
    }
    Ok(out)
}

/// One queue read from offset 0 to its end through `consumer`.
pub async fn read_queue(consumer: &PullConsumer, queue: &MessageQueue) -> Result<Vec<Read>> {
    let mut reads = Vec::new();
    let mut offset = 0;
    let mut failures = 0;
    for _ in 0..MAX_PULLS_PER_QUEUE {
        let result = match consumer.pull(queue, "*", offset, 32).await {
            Ok(result) => result,
            Err(e) if failures < 20 => {
                failures += 1;
                tracing::debug!(error = %e, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e).context("pulling for the check"),
        };
        match result.status {
            PullStatus::Found => {
                for message in &result.messages {
                    reads.push(Read {
                        queue_offset: message.queue_offset,
                        msg_id: message.msg_id().to_owned(),
                        body: message.body_text().into_owned(),
                    });
                }
                offset = result.next_begin_offset;
            }
            PullStatus::NoMatchedMsg => offset = result.next_begin_offset,
            PullStatus::NoNewMsg => break,
            PullStatus::OffsetIllegal => {
                bail!("queue {}: offset {offset} illegal", queue.queue_id)
            }
        }
    }
    Ok(reads)
}

/// Queue `queue_id` of `topic` read from offset 0 straight from the member at `addr`
/// (leader or follower), as far as that member has it.
pub async fn read_member(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queue_id: i32,
) -> Result<Vec<Read>> {
    let mut reads = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_PULLS_PER_QUEUE {
        let response = client
            .invoke(
                addr,
                pull(&pull_header("checker", topic, queue_id, offset)),
                Duration::from_secs(5),
            )
            .await?;
        match response.code {
            response::SUCCESS => {
                for view in message::decode_all(&response.body)? {
                    reads.push(Read {
                        queue_offset: view.queue_offset(),
                        msg_id: view.uniq_key().unwrap_or_default().to_owned(),
                        body: String::from_utf8_lossy(view.body()).into_owned(),
                    });
                }
                offset = ext_i64(&response, "nextBeginOffset")?;
            }
            response::PULL_NOT_FOUND => break,
            code => bail!("{addr} answered a pull with {code}: {:?}", response.remark),
        }
    }
    Ok(reads)
}
