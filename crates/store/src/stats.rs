//! Counters for GET_BROKER_RUNTIME_INFO and operators.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct StoreStats {
    pub put_message_times_total: AtomicU64,
    pub put_message_size_total: AtomicU64,
    pub put_message_failed_times: AtomicU64,
    pub get_message_times_total_found: AtomicU64,
    pub get_message_times_total_miss: AtomicU64,
    pub get_message_transferred_msg_count: AtomicU64,
    pub flush_timeouts: AtomicU64,
    pub segments_deleted: AtomicU64,
}

impl StoreStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
