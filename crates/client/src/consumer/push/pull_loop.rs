//! One assigned queue's pull task: long-polls the broker from the next offset and fills the
//! queue's prefetch buffer, pausing while the buffer is over its flow-control limits, so a
//! slow listener slows the pulls instead of growing memory.

use std::sync::Arc;

use message::keys;
use message::topic::retry_topic;
use tracing::{debug, warn};

use super::consume::consume_concurrently;
use super::options::ConsumeMode;
use super::{pause, Inner};
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::pull::{PullSpec, PullStatus};

pub(super) async fn pull_loop(inner: Arc<Inner>, pq: Arc<ProcessQueue>, mut offset: i64) {
    let Some(sub) = inner.subscription_of(&pq.queue.topic) else {
        return;
    };
    let own_retry_topic = retry_topic(&inner.options.group);
    let options = &inner.options;
    loop {
        if pq.is_dropped() || pq.cancel.is_cancelled() {
            return;
        }
        let over_count = pq.count() >= options.pull_threshold_for_queue;
        let over_bytes = pq.bytes() >= options.pull_threshold_bytes_for_queue;
        let over_span =
            options.consume_mode == ConsumeMode::Concurrently && pq.span() > options.max_span;
        if over_count || over_bytes || over_span {
            if pause(&pq.cancel, options.flow_control_delay).await {
                return;
            }
            continue;
        }
        if inner.is_ordered_clustering() && !pq.holds_lock() {
            if !inner.lock_one(&pq).await && pause(&pq.cancel, options.pull_error_delay).await {
                return;
            }
            continue;
        }
        let commit_offset = if inner.is_clustering() {
            inner.offsets.in_memory(&pq.queue).filter(|o| *o > 0)
        } else {
            None
        };
        let pull = inner.puller.pull(PullSpec {
            group: &options.group,
            queue: &pq.queue,
            filter: &sub.filter,
            sub_version: sub.data.sub_version,
            offset,
            max_nums: options.pull_batch_size,
            commit_offset,
            suspend: Some(options.long_poll),
        });
        let result = tokio::select! {
            _ = pq.cancel.cancelled() => return,
            result = pull => result,
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                debug!(queue = ?pq.queue, %error, "pull failed");
                if pause(&pq.cancel, options.pull_error_delay).await {
                    return;
                }
                continue;
            }
        };
        if pq.is_dropped() {
            return;
        }
        match result.status {
            PullStatus::Found => {
                let mut messages = result.messages;
                if pq.queue.topic == own_retry_topic {
                    for message in &mut messages {
                        if let Some(original) = message.properties.get(keys::RETRY_TOPIC) {
                            message.topic = original.clone();
                        }
                    }
                }
                offset = result.next_begin_offset;
                if messages.is_empty() {
                    // Everything was filtered out client-side: the offset may move on.
                    if pq.count() == 0 {
                        inner.offsets.update(&pq.queue, offset, true);
                    }
                    continue;
                }
                pq.put(&messages);
                match options.consume_mode {
                    ConsumeMode::Concurrently => {
                        for batch in messages.chunks(options.consume_batch_max) {
                            tokio::spawn(consume_concurrently(
                                Arc::clone(&inner),
                                Arc::clone(&pq),
                                batch.to_vec(),
                            ));
                        }
                    }
                    ConsumeMode::Orderly => pq.arrived.notify_one(),
                }
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                offset = result.next_begin_offset;
                if pq.count() == 0 {
                    inner.offsets.update(&pq.queue, offset, true);
                }
            }
            PullStatus::OffsetIllegal => {
                warn!(queue = ?pq.queue, offset, next = result.next_begin_offset, "offset outside the queue; moving");
                offset = result.next_begin_offset;
                if pq.count() == 0 {
                    inner.offsets.update(&pq.queue, offset, false);
                    if let Err(error) = inner.offsets.persist(&pq.queue).await {
                        debug!(%error, "persisting a corrected offset failed");
                    }
                }
            }
        }
    }
}
