//! Which queues this member consumes: a rebalance asks a broker for the group's members,
//! shares the subscribed queues among them, starts the queues newly assigned (from the
//! committed offset, or where `consume_from_where` says) and releases the ones taken away
//! so that their next owner starts right after the last committed message.

use std::collections::BTreeSet;
use std::sync::Arc;

use message::topic::is_retry_topic;
use remoting::body::{ConsumeFromWhere, MessageQueue};
use tracing::{debug, info, warn};

use super::consume::consume_in_order_loop;
use super::options::ConsumeMode;
use super::pull_loop::pull_loop;
use super::Inner;
use crate::broker_api::StoredOffset;
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::pull::master_addr;
use crate::error::Result;
use crate::producer::now_ms;

impl Inner {
    async fn rebalance(self: &Arc<Self>) {
        let _one_at_a_time = self.rebalancing.lock().await;
        if self.stop.is_cancelled() {
            return;
        }
        for sub in &self.subscriptions {
            let route = match self.instance.refresh_route(&sub.topic).await {
                Ok(route) => route,
                Err(error) => {
                    // The retry topic appears only once a broker has created it.
                    debug!(topic = %sub.topic, %error, "cannot rebalance topic without a route");
                    continue;
                }
            };
            let all = &route.subscribe_queues;
            let mine = if self.is_clustering() {
                let mut members = None;
                let mut brokers: Vec<String> = route
                    .data
                    .broker_datas
                    .iter()
                    .filter_map(|b| b.master_addr().map(str::to_owned))
                    .collect();
                brokers.sort();
                for addr in &brokers {
                    match self.instance.consumer_ids(addr, &self.options.group).await {
                        Ok(ids) if !ids.is_empty() => {
                            members = Some(ids);
                            break;
                        }
                        Ok(_) => {}
                        Err(error) => debug!(%addr, %error, "consumer list unavailable"),
                    }
                }
                let Some(members) = members else {
                    debug!(topic = %sub.topic, "no broker listed the group's members");
                    continue;
                };
                self.options
                    .allocate
                    .allocate(self.instance.client_id(), all, &members)
            } else {
                all.clone()
            };
            self.apply_assignment(&sub.topic, mine).await;
        }
    }

    async fn apply_assignment(self: &Arc<Self>, topic: &str, mine: Vec<MessageQueue>) {
        let wanted: BTreeSet<MessageQueue> = mine.into_iter().collect();
        let current: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .queues
            .lock()
            .iter()
            .filter(|(q, _)| q.topic == topic)
            .map(|(q, pq)| (q.clone(), Arc::clone(pq)))
            .collect();
        for (queue, pq) in &current {
            if !wanted.contains(queue) {
                self.queues.lock().remove(queue);
                self.release_queue(pq).await;
                info!(?queue, "queue released by rebalance");
            }
        }
        for queue in wanted {
            if self.queues.lock().contains_key(&queue) || self.stop.is_cancelled() {
                continue;
            }
            let pq = Arc::new(ProcessQueue::new(queue.clone(), &self.stop));
            if self.is_ordered_clustering() && !self.lock_one(&pq).await {
                debug!(
                    ?queue,
                    "queue is locked by another member; retrying at the next rebalance"
                );
                continue;
            }
            let offset = match self.start_offset(&queue).await {
                Ok(offset) => offset,
                Err(error) => {
                    warn!(?queue, %error, "cannot find where to start; retrying at the next rebalance");
                    continue;
                }
            };
            self.offsets.update(&queue, offset, false);
            self.queues.lock().insert(queue.clone(), Arc::clone(&pq));
            info!(?queue, offset, "queue assigned");
            tokio::spawn(pull_loop(Arc::clone(self), Arc::clone(&pq), offset));
            if self.options.consume_mode == ConsumeMode::Orderly {
                tokio::spawn(consume_in_order_loop(Arc::clone(self), pq));
            }
        }
    }

    /// Stops a queue taken away by a rebalance: commit its offset, free its lock.
    async fn release_queue(self: &Arc<Self>, pq: &Arc<ProcessQueue>) {
        pq.drop_queue();
        if !self.is_ordered_clustering() {
            self.commit_released(pq).await;
            return;
        }
        // Ordered: let a batch in progress finish and commit before the offset is stored
        // and the lock freed, so the next owner starts right after it. A slow batch is
        // waited for at most one lock interval; the broker's lock expires on its own.
        let inner = Arc::clone(self);
        let pq = Arc::clone(pq);
        tokio::spawn(async move {
            let wait = inner.options.lock_interval;
            let _batch_done = tokio::time::timeout(wait, pq.consume_lock.lock()).await;
            inner.commit_released(&pq).await;
            inner.unlock(std::slice::from_ref(&pq.queue)).await;
        });
    }

    async fn commit_released(&self, pq: &ProcessQueue) {
        if let Err(error) = self.offsets.persist(&pq.queue).await {
            debug!(queue = ?pq.queue, %error, "committing a released queue's offset failed");
        }
        // Forget it only if no rebalance has handed the queue back meanwhile.
        if !self.queues.lock().contains_key(&pq.queue) {
            self.offsets.forget(&pq.queue);
            self.puller.forget(&pq.queue);
        }
    }

    /// Where consumption of a newly assigned queue starts: the committed offset, else
    /// what `consume_from_where` says.
    async fn start_offset(&self, queue: &MessageQueue) -> Result<i64> {
        if let StoredOffset::Found(offset) = self.offsets.fetch(queue).await? {
            if offset >= 0 {
                return Ok(offset);
            }
        }
        let addr = master_addr(&self.instance, queue).await?;
        let retry = is_retry_topic(&queue.topic);
        match self.options.consume_from_where {
            ConsumeFromWhere::ConsumeFromFirstOffset => {
                self.instance.min_offset(&addr, queue).await
            }
            ConsumeFromWhere::ConsumeFromTimestamp if !retry => {
                let timestamp = self
                    .options
                    .consume_timestamp_ms
                    .unwrap_or_else(|| now_ms() - 30 * 60 * 1000);
                self.instance.search_offset(&addr, queue, timestamp).await
            }
            // A retry topic only holds messages that failed for this group: take them all.
            _ if retry => Ok(0),
            _ => self.instance.max_offset(&addr, queue).await,
        }
    }
}

pub(super) async fn rebalance_loop(inner: Arc<Inner>) {
    loop {
        inner.rebalance().await;
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(inner.options.rebalance_interval) => {}
            _ = inner.rebalance_now.notified() => {}
        }
    }
}
