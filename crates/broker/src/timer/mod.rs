//! RocketMQ 5 timer messages: delivered at a time the producer names (`TIMER_DELIVER_MS`)
//! or after a delay (`TIMER_DELAY_SEC`, `TIMER_DELAY_MS`), up to `timerMaxDelaySec`, in
//! slots of `timerPrecisionMs`; RECALL_MESSAGE cancels one still waiting.
//!
//! At send time a timer message is stored in [`TIMER_TOPIC`] queue 0 with its real topic
//! and queue in `REAL_TOPIC` / `REAL_QID` and its slot time in `TIMER_OUT_MS`; the store
//! stamps that slot time into the message's ConsumeQueue entry. A recall is a marker in
//! queue 1 naming the message (`TIMER_DEL_UNIQKEY`) and its slot. Both are ordinary
//! records of the CommitLog, so in a broker group they are replicated like any message.
//!
//! - [`request`]: what a message asks for (its slot, or a refusal) and the property
//!   rewrites into the timer topic; recall handles.
//! - [`wheel`]: the time wheel each member builds from queue 0 — slots in memory, the
//!   chains through them in files — so millions of waiting messages cost bounded memory.
//! - [`progress`]: how far delivery went: a record stored in the same put as the
//!   deliveries it covers (queue 2), so it is replicated with them.
//! - [`recalls`]: the recall markers loaded, which delivery passes over.
//! - [`service`]: the loop that builds the wheel (every member) and delivers due slots
//!   (the master only).

pub mod progress;
pub mod recalls;
pub mod request;
pub mod service;
pub mod wheel;

pub use message::topic::TIMER_TOPIC;

/// Queue of [`TIMER_TOPIC`] holding the waiting messages.
pub const MESSAGE_QUEUE: i32 = 0;
/// Queue of [`TIMER_TOPIC`] holding recall markers.
pub const RECALL_QUEUE: i32 = 1;

/// The timer's settings (RocketMQ's keys; see [`crate::config::BrokerConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerSettings {
    pub enabled: bool,
    pub max_delay_ms: i64,
    pub precision_ms: i64,
}

impl TimerSettings {
    pub fn of(config: &crate::config::BrokerConfig) -> TimerSettings {
        TimerSettings {
            enabled: config.timer_wheel_enable,
            max_delay_ms: i64::try_from(config.timer_max_delay.as_millis()).unwrap_or(i64::MAX),
            precision_ms: config.timer_precision_ms.max(1),
        }
    }

    /// The slot a deliver time falls in, as RocketMQ rounds it: the slot's time is below
    /// the deliver time and at most one precision before it. A recall handle names the
    /// slot time + 1, which falls in the same slot.
    pub fn slot_of(&self, deliver_ms: i64) -> i64 {
        (deliver_ms - 1).div_euclid(self.precision_ms) * self.precision_ms
    }

    /// When a slot is due: its end, so no message is delivered before its deliver time and
    /// none later than one precision after it.
    pub fn due_ms(&self, slot_ms: i64) -> i64 {
        slot_ms.saturating_add(self.precision_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deliver_time_is_due_at_its_slot_end_never_before_it_and_within_the_precision() {
        let s = TimerSettings {
            enabled: true,
            max_delay_ms: 10_000,
            precision_ms: 1000,
        };
        for deliver in [5_000, 5_001, 5_999, 6_000] {
            let slot = s.slot_of(deliver);
            let due = s.due_ms(slot);
            assert!(
                due >= deliver && due - deliver < 1000,
                "{deliver}: {slot} {due}"
            );
        }
        assert_eq!(s.slot_of(5_000), 4_000);
        assert_eq!(s.slot_of(5_001), 5_000);
        // A recall handle's time (slot + 1) names the same slot.
        assert_eq!(s.slot_of(s.slot_of(5_001) + 1), 5_000);
    }
}

/// What the timer loop last saw, for a scrape's timer gauges (RocketMQ's
/// `rocketmq_timer_enqueue_lag`, `..._dequeue_lag`, ...).
#[derive(Debug)]
pub struct TimerStatus {
    /// Message-queue entries below this are in this member's wheel.
    pub enqueued_below: std::sync::atomic::AtomicI64,
    /// The oldest slot the master has not wholly delivered; `i64::MIN` on a member that
    /// does not deliver.
    pub undelivered_slot_ms: std::sync::atomic::AtomicI64,
    /// Messages in slots whose time came that the master has not delivered.
    pub due_undelivered: std::sync::atomic::AtomicI64,
    /// Message-queue entries below this are delivered (or were never to wait).
    pub waiting_from: std::sync::atomic::AtomicI64,
    /// Slots before this are wholly delivered.
    pub delivered_below_ms: std::sync::atomic::AtomicI64,
    /// Messages waiting in the wheel whose time comes within each of
    /// [`SNAPSHOT_BOUNDS_S`] seconds from now (and after the bound before it).
    pub snapshot: [std::sync::atomic::AtomicI64; SNAPSHOT_BOUNDS_S.len()],
}

/// RocketMQ's timer distribution bounds (`timer_bound_s`): 5 s, 1 min, 5 min, 15 min, 1 h,
/// 4 h, 8 h, 24 h.
pub const SNAPSHOT_BOUNDS_S: [i64; 8] = [5, 60, 300, 900, 3600, 14_400, 28_800, 86_400];

impl Default for TimerStatus {
    fn default() -> Self {
        TimerStatus {
            enqueued_below: Default::default(),
            undelivered_slot_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            due_undelivered: Default::default(),
            waiting_from: Default::default(),
            delivered_below_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            snapshot: Default::default(),
        }
    }
}
