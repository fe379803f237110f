//! The brokers' locks on queues for ordered consumption: a queue is consumed in order only
//! while this member holds its lock, so no other member consumes it meanwhile. Locks are
//! taken when a queue is assigned, renewed every `lock_interval` and released when a queue
//! is given up; a lock not renewed expires on the broker on its own.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use remoting::body::MessageQueue;
use tracing::debug;

use super::Inner;
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::pull::master_addr;

impl Inner {
    pub(super) async fn lock_one(&self, pq: &ProcessQueue) -> bool {
        let Ok(addr) = master_addr(&self.instance, &pq.queue).await else {
            return false;
        };
        let queues = BTreeSet::from([pq.queue.clone()]);
        match self
            .instance
            .lock_queues(&addr, &self.options.group, queues)
            .await
        {
            Ok(locked) => {
                let held = locked.contains(&pq.queue);
                pq.set_locked(held);
                held
            }
            Err(error) => {
                debug!(queue = ?pq.queue, %error, "lock request failed");
                false
            }
        }
    }

    async fn lock_all(&self) {
        let queues: Vec<Arc<ProcessQueue>> = self.queues.lock().values().cloned().collect();
        let mut by_broker: HashMap<String, Vec<Arc<ProcessQueue>>> = HashMap::new();
        for pq in queues {
            by_broker
                .entry(pq.queue.broker_name.clone())
                .or_default()
                .push(pq);
        }
        for (broker_name, pqs) in by_broker {
            let Some(addr) = self.instance.master_addr(&broker_name) else {
                continue;
            };
            let set: BTreeSet<MessageQueue> = pqs.iter().map(|pq| pq.queue.clone()).collect();
            match self
                .instance
                .lock_queues(&addr, &self.options.group, set)
                .await
            {
                Ok(locked) => {
                    for pq in &pqs {
                        pq.set_locked(locked.contains(&pq.queue));
                    }
                }
                Err(error) => debug!(%addr, %error, "lock renewal failed"),
            }
        }
    }

    pub(super) async fn unlock(&self, queues: &[MessageQueue]) {
        let mut by_broker: HashMap<&str, BTreeSet<MessageQueue>> = HashMap::new();
        for queue in queues {
            by_broker
                .entry(&queue.broker_name)
                .or_default()
                .insert(queue.clone());
        }
        for (broker_name, set) in by_broker {
            let Some(addr) = self.instance.master_addr(broker_name) else {
                continue;
            };
            if let Err(error) = self
                .instance
                .unlock_queues(&addr, &self.options.group, set)
                .await
            {
                debug!(%addr, %error, "unlock failed; the broker's lock expires on its own");
            }
        }
    }
}

pub(super) async fn lock_loop(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(inner.options.lock_interval) => {}
        }
        inner.lock_all().await;
    }
}
