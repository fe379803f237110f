//! Handing buffered messages to the listener and settling its verdict, in the two consume
//! modes: concurrently (any order; a failed message goes back to the broker for a delayed
//! retry) and in order (one batch at a time per queue under the queue's lock; a failed batch
//! is retried locally). Either way the offset moves only past messages that are settled.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::warn;

use super::{pause, Inner};
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::pull::master_addr;
use crate::error::Result;
use crate::message::ReceivedMessage;

/// The listener's verdict on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed; the offset may move past these messages.
    Success,
    /// Not consumed; deliver again later (see [`ConsumeMode`](super::ConsumeMode) for how).
    Retry,
}

/// What consumes messages. Any `Fn(Vec<ReceivedMessage>) -> impl Future<Output =
/// ConsumeResult>` closure is one. A panic counts as [`ConsumeResult::Retry`].
pub trait MessageListener: Send + Sync + 'static {
    fn consume(&self, messages: Vec<ReceivedMessage>) -> BoxFuture<'static, ConsumeResult>;
}

impl<F, Fut> MessageListener for F
where
    F: Fn(Vec<ReceivedMessage>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ConsumeResult> + Send + 'static,
{
    fn consume(&self, messages: Vec<ReceivedMessage>) -> BoxFuture<'static, ConsumeResult> {
        Box::pin(self(messages))
    }
}

impl Inner {
    async fn call_listener(&self, batch: Vec<ReceivedMessage>) -> ConsumeResult {
        match AssertUnwindSafe(self.listener.consume(batch))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => {
                warn!("message listener panicked; the batch will be retried");
                ConsumeResult::Retry
            }
        }
    }

    /// Hands a failed message back to the broker for a later retry (or the DLQ).
    async fn send_back(&self, message: &ReceivedMessage, delay_level: i32) -> Result<()> {
        let addr = master_addr(&self.instance, &message.queue).await?;
        self.instance
            .send_back(
                &addr,
                &self.options.group,
                message.commit_log_offset,
                delay_level,
                message.msg_id(),
                &message.topic,
                self.max_reconsume_times,
            )
            .await
    }
}

/// How long a failed concurrent message waits before it is consumed again locally when
/// it could not even be sent back to the broker.
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);

pub(super) fn consume_concurrently(
    inner: Arc<Inner>,
    pq: Arc<ProcessQueue>,
    batch: Vec<ReceivedMessage>,
) -> BoxFuture<'static, ()> {
    async move {
        let slots = Arc::clone(&inner.consume_slots);
        let permit = tokio::select! {
            _ = pq.cancel.cancelled() => return,
            permit = slots.acquire_owned() => permit,
        };
        let Ok(_permit) = permit else { return };
        if pq.is_dropped() {
            return;
        }
        let result = inner.call_listener(batch.clone()).await;
        if pq.is_dropped() {
            // Another member owns the queue now; it will deliver these again.
            return;
        }
        let mut done: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
        if result == ConsumeResult::Retry {
            if inner.is_clustering() {
                let mut failed = Vec::new();
                for message in &batch {
                    if let Err(error) = inner.send_back(message, inner.options.retry_delay_level).await {
                        warn!(msg_id = %message.msg_id(), %error, "send-back failed; retrying locally");
                        failed.push(message.clone());
                    }
                }
                done.retain(|offset| !failed.iter().any(|m| m.queue_offset == *offset));
                if !failed.is_empty() {
                    let (inner, pq) = (Arc::clone(&inner), Arc::clone(&pq));
                    tokio::spawn(async move {
                        if !pause(&pq.cancel, LOCAL_RETRY_DELAY).await {
                            consume_concurrently(inner, pq, failed).await;
                        }
                    });
                }
            } else {
                warn!(count = batch.len(), "broadcast consumption failed; messages are dropped");
            }
        }
        if let Some(offset) = pq.remove(&done) {
            inner.offsets.update(&pq.queue, offset, true);
        }
    }
    .boxed()
}

pub(super) async fn consume_in_order_loop(inner: Arc<Inner>, pq: Arc<ProcessQueue>) {
    let options = &inner.options;
    loop {
        if pq.is_dropped() || pq.cancel.is_cancelled() {
            return;
        }
        if !pq.has_waiting() {
            tokio::select! {
                _ = pq.cancel.cancelled() => return,
                _ = pq.arrived.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        if inner.is_clustering() && !pq.holds_lock() {
            if !inner.lock_one(&pq).await && pause(&pq.cancel, options.suspend_on_failure).await {
                return;
            }
            continue;
        }
        let guard = pq.consume_lock.lock().await;
        if pq.is_dropped() {
            return;
        }
        let batch = pq.take_in_order(options.consume_batch_max);
        if batch.is_empty() {
            continue;
        }
        let result = inner.call_listener(batch.clone()).await;
        let committed = match result {
            ConsumeResult::Success => true,
            ConsumeResult::Retry => {
                let exhausted = batch
                    .iter()
                    .all(|m| m.reconsume_times >= inner.max_reconsume_times);
                if exhausted && inner.is_clustering() {
                    let mut all_sent = true;
                    for message in &batch {
                        // A negative level sends the message straight to the dead-letter queue.
                        if let Err(error) = inner.send_back(message, -1).await {
                            warn!(msg_id = %message.msg_id(), %error, "dead-lettering failed");
                            all_sent = false;
                        }
                    }
                    all_sent
                } else {
                    false
                }
            }
        };
        if committed {
            if let Some(offset) = pq.commit_in_order() {
                inner.offsets.update(&pq.queue, offset, false);
            }
            drop(guard);
        } else {
            pq.roll_back_in_order();
            drop(guard);
            if pause(&pq.cancel, options.suspend_on_failure).await {
                return;
            }
        }
    }
}
