//! Parked pulls: a pull that finds nothing waits here until a message arrives in its
//! topic-queue or its time runs out (RocketMQ's PullRequestHoldService).
//!
//! A parked pull holds a [`ParkedPull`] registration for its queue. The store's arrival
//! listener calls [`LongPollHub::on_arrival`], which wakes every pull parked on that
//! queue; each re-runs its read (and decides for itself whether what arrived matches its
//! filter). Registration happens *before* the pull's read, so a message dispatched between
//! the read and the wait still wakes it. The number of parked pulls is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

struct Slot {
    notify: Arc<Notify>,
    parked: usize,
}

/// The queue id a wait registers under to be woken by an arrival in any queue of its topic
/// (a pop of every queue).
pub const ANY_QUEUE: i32 = -1;

pub struct LongPollHub {
    /// Topic → queue id → slot; two levels so the arrival path looks up a `&str` without
    /// allocating a key.
    slots: Mutex<HashMap<String, HashMap<i32, Slot>>>,
    parked_total: AtomicUsize,
    max_parked: usize,
}

/// A pull's registration on one queue; dropping it unregisters.
pub struct ParkedPull {
    hub: Arc<LongPollHub>,
    topic: String,
    queue_id: i32,
    notify: Arc<Notify>,
}

impl LongPollHub {
    pub fn new(max_parked: usize) -> Arc<Self> {
        Arc::new(LongPollHub {
            slots: Mutex::new(HashMap::new()),
            parked_total: AtomicUsize::new(0),
            max_parked,
        })
    }

    /// Registers a pull on a queue; `None` when the hub is full.
    pub fn park(self: &Arc<Self>, topic: &str, queue_id: i32) -> Option<ParkedPull> {
        let mut slots = self.slots.lock();
        if self.parked_total.load(Ordering::Relaxed) >= self.max_parked {
            return None;
        }
        let slot = slots
            .entry(topic.to_owned())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| Slot {
                notify: Arc::new(Notify::new()),
                parked: 0,
            });
        slot.parked += 1;
        self.parked_total.fetch_add(1, Ordering::Relaxed);
        // See `on_arrival`: the registration is visible before the caller reads the queue.
        std::sync::atomic::fence(Ordering::SeqCst);
        Some(ParkedPull {
            hub: Arc::clone(self),
            topic: topic.to_owned(),
            queue_id,
            notify: Arc::clone(&slot.notify),
        })
    }

    /// Messages became readable in a queue: wake the pulls parked on it.
    pub fn on_arrival(&self, topic: &str, queue_id: i32) {
        // Pairs with the fence in `park`: either this load sees the pull's registration, or
        // the pull's read sees the message this arrival announces. Without both fences the
        // store of the new entry and this load may pass each other (x86 allows it) while the
        // pull reads the old end of the queue: a lost wake-up, the pull waiting out its hold.
        std::sync::atomic::fence(Ordering::SeqCst);
        // The common case on the produce hot path: nobody waits anywhere.
        if self.parked_total.load(Ordering::Relaxed) == 0 {
            return;
        }
        let slots = self.slots.lock();
        if let Some(queues) = slots.get(topic) {
            for waiting in [queue_id, ANY_QUEUE] {
                if let Some(slot) = queues.get(&waiting) {
                    slot.notify.notify_waiters();
                }
            }
        }
    }

    pub fn parked(&self) -> usize {
        self.parked_total.load(Ordering::Relaxed)
    }
}

impl ParkedPull {
    /// A future that resolves at the next arrival after this call. Create it (and keep
    /// it) before reading the queue, then await it if the read found nothing.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for ParkedPull {
    fn drop(&mut self) {
        let mut slots = self.hub.slots.lock();
        if let Some(queues) = slots.get_mut(&self.topic) {
            if let Some(slot) = queues.get_mut(&self.queue_id) {
                slot.parked = slot.parked.saturating_sub(1);
                if slot.parked == 0 {
                    queues.remove(&self.queue_id);
                }
            }
            if queues.is_empty() {
                slots.remove(&self.topic);
            }
        }
        self.hub.parked_total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Poll};

    fn is_ready<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        matches!(future.poll(&mut cx), Poll::Ready(_))
    }

    #[test]
    fn an_arrival_wakes_pulls_parked_on_that_queue_only() {
        let hub = LongPollHub::new(10);
        let on_q0 = hub.park("T", 0).unwrap();
        let on_q1 = hub.park("T", 1).unwrap();
        let mut wait_q0 = pin!(on_q0.notified());
        let mut wait_q1 = pin!(on_q1.notified());
        assert!(!is_ready(wait_q0.as_mut()));
        assert!(!is_ready(wait_q1.as_mut()));
        hub.on_arrival("T", 0);
        assert!(is_ready(wait_q0.as_mut()));
        assert!(!is_ready(wait_q1.as_mut()));
    }

    #[test]
    fn an_arrival_in_any_queue_wakes_a_wait_on_every_queue_of_its_topic() {
        let hub = LongPollHub::new(10);
        let on_all = hub.park("T", ANY_QUEUE).unwrap();
        let on_other_topic = hub.park("U", ANY_QUEUE).unwrap();
        let mut wait_all = pin!(on_all.notified());
        let mut wait_other = pin!(on_other_topic.notified());
        assert!(!is_ready(wait_all.as_mut()));
        hub.on_arrival("T", 3);
        assert!(is_ready(wait_all.as_mut()));
        assert!(!is_ready(wait_other.as_mut()));
    }

    #[test]
    fn an_arrival_between_registering_and_waiting_is_not_lost() {
        let hub = LongPollHub::new(10);
        let parked = hub.park("T", 0).unwrap();
        // Registered (future created) but not yet polled when the message arrives.
        let wait = parked.notified();
        hub.on_arrival("T", 0);
        assert!(is_ready(pin!(wait)));
    }

    #[test]
    fn parking_is_bounded_and_released_on_drop() {
        let hub = LongPollHub::new(2);
        let first = hub.park("T", 0).unwrap();
        let _second = hub.park("T", 1).unwrap();
        assert!(hub.park("T", 2).is_none());
        drop(first);
        assert_eq!(hub.parked(), 1);
        assert!(hub.park("T", 2).is_some());
        assert_eq!(hub.slots.lock().len(), 1, "empty slots are removed");
        assert_eq!(hub.slots.lock()["T"].len(), 1);
    }
}
