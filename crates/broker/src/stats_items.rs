//! Per-topic and per-group traffic, as RocketMQ's `BrokerStatsManager` keeps it and
//! VIEW_BROKER_STATS_DATA (315) reports it (`mqadmin statsAll` reads it): for each stats
//! name (`TOPIC_PUT_NUMS`, `TOPIC_PUT_SIZE`, `GROUP_GET_NUMS` keyed `topic@group`, ...) and
//! key, the sum, rate and average per call over the last minute, hour and day.
//!
//! Each item counts a total and the number of calls; snapshots of both are taken every
//! 10 s for the minute, every minute for the hour and every hour for the day, so the
//! windows are answered from two snapshots, without a per-message cost beyond two atomic
//! adds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use metrics::per_thread::{StrPair, StringPair};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::clock::now_ms;

pub const TOPIC_PUT_NUMS: &str = "TOPIC_PUT_NUMS";
pub const TOPIC_PUT_SIZE: &str = "TOPIC_PUT_SIZE";
pub const GROUP_GET_NUMS: &str = "GROUP_GET_NUMS";
pub const GROUP_GET_SIZE: &str = "GROUP_GET_SIZE";
pub const BROKER_PUT_NUMS: &str = "BROKER_PUT_NUMS";
pub const BROKER_GET_NUMS: &str = "BROKER_GET_NUMS";

/// The key of a group's items on a topic (`GROUP_GET_NUMS`, `GROUP_GET_SIZE`), as
/// RocketMQ builds it.
pub fn group_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

/// Most items kept; past it new keys are not counted (a client inventing topic names must
/// not grow the broker's memory).
const MAX_ITEMS: usize = 100_000;

/// How many snapshots each window keeps, and how many 10-second ticks apart they are.
const MINUTE: (usize, u64) = (7, 1);
const HOUR: (usize, u64) = (61, 6);
const DAY: (usize, u64) = (25, 360);

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at_ms: i64,
    sum: u64,
    times: u64,
}

#[derive(Debug, Default)]
struct Item {
    /// When the item was first counted: its windows start from zero there, so a first
    /// burst counts.
    created_at_ms: i64,
    sum: AtomicU64,
    times: AtomicU64,
    minute: Mutex<VecDeque<Snapshot>>,
    hour: Mutex<VecDeque<Snapshot>>,
    day: Mutex<VecDeque<Snapshot>>,
}

impl Item {
    fn count(&self, value: u64) {
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.times.fetch_add(1, Ordering::Relaxed);
    }
}

/// One window's figures, as RocketMQ's `BrokerStatsItem` (JSON `{sum, tps, avgpt}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowStats {
    pub sum: u64,
    pub tps: f64,
    pub avgpt: f64,
}

/// VIEW_BROKER_STATS_DATA's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatsData {
    pub stats_minute: WindowStats,
    pub stats_hour: WindowStats,
    pub stats_day: WindowStats,
}

#[derive(Default)]
pub struct StatsItems {
    /// Keyed (stats name, key); hashbrown's, so a call finds its item without copying names.
    items: RwLock<hashbrown::HashMap<StringPair, Arc<Item>>>,
    ticks: AtomicU64,
}

impl StatsItems {
    /// Adds `value` (messages or bytes) for one call under `name` / `key`.
    pub fn add(&self, name: &'static str, key: &str, value: u64) {
        let wanted = StrPair(name, key);
        // Counted under the read lock: no reference count to move per call on the send and
        // pull paths; only a key met for the first time takes the write lock.
        if let Some(item) = self.items.read().get(&wanted) {
            item.count(value);
            return;
        }
        let mut items = self.items.write();
        if items.len() >= MAX_ITEMS && !items.contains_key(&wanted) {
            return;
        }
        items
            .entry(wanted.to_owned_pair())
            .or_insert_with(|| {
                Arc::new(Item {
                    created_at_ms: now_ms(),
                    ..Item::default()
                })
            })
            .count(value);
    }

    /// Takes the snapshots due; call every 10 seconds.
    pub fn sample(&self, now_ms: i64) {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let items: Vec<Arc<Item>> = self.items.read().values().cloned().collect();
        for item in items {
            let snapshot = Snapshot {
                at_ms: now_ms,
                sum: item.sum.load(Ordering::Relaxed),
                times: item.times.load(Ordering::Relaxed),
            };
            for (window, (kept, every)) in
                [(&item.minute, MINUTE), (&item.hour, HOUR), (&item.day, DAY)]
            {
                if tick.is_multiple_of(every) {
                    let mut window = window.lock();
                    if window.is_empty() {
                        window.push_back(Snapshot {
                            at_ms: item.created_at_ms.min(now_ms),
                            sum: 0,
                            times: 0,
                        });
                    }
                    window.push_back(snapshot);
                    while window.len() > kept {
                        window.pop_front();
                    }
                }
            }
        }
    }

    /// The figures of `name` / `key`, or `None` when nothing was ever counted there. Each
    /// window runs from its oldest snapshot (or the item's creation) to now, so traffic
    /// shows before the next snapshot.
    pub fn view(&self, name: &str, key: &str) -> Option<BrokerStatsData> {
        let item = self.items.read().get(&StrPair(name, key)).cloned()?;
        let now = Snapshot {
            at_ms: now_ms(),
            sum: item.sum.load(Ordering::Relaxed),
            times: item.times.load(Ordering::Relaxed),
        };
        let created = Snapshot {
            at_ms: item.created_at_ms,
            sum: 0,
            times: 0,
        };
        let since = |window: &Mutex<VecDeque<Snapshot>>| {
            window_stats(window.lock().front().copied().unwrap_or(created), now)
        };
        Some(BrokerStatsData {
            stats_minute: since(&item.minute),
            stats_hour: since(&item.hour),
            stats_day: since(&item.day),
        })
    }

    /// Calls a second over the last minute, as RocketMQ's `tpsTopicPutNums` and
    /// `tpsGroupGetNums` read it for topic and consume stats; 0 when never counted.
    pub fn minute_tps(&self, name: &str, key: &str) -> f64 {
        self.view(name, key)
            .map_or(0.0, |stats| stats.stats_minute.tps)
    }
}

fn window_stats(first: Snapshot, last: Snapshot) -> WindowStats {
    let sum = last.sum.saturating_sub(first.sum);
    let times = last.times.saturating_sub(first.times);
    let elapsed_ms = last.at_ms.saturating_sub(first.at_ms);
    WindowStats {
        sum,
        tps: if elapsed_ms > 0 {
            sum as f64 * 1000.0 / elapsed_ms as f64
        } else {
            0.0
        },
        avgpt: if times > 0 {
            sum as f64 / times as f64
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_come_from_snapshots_and_unknown_keys_have_none() {
        let stats = StatsItems::default();
        // A new key's first burst counts from zero, before any snapshot too.
        stats.add(TOPIC_PUT_NUMS, "T", 30);
        stats.add(TOPIC_PUT_NUMS, "T", 10);
        let view = stats.view(TOPIC_PUT_NUMS, "T").unwrap();
        assert_eq!((view.stats_minute.sum, view.stats_day.sum), (40, 40));
        assert!((view.stats_minute.avgpt - 20.0).abs() < 1e-9);
        stats.sample(now_ms());
        stats.add(TOPIC_PUT_NUMS, "T", 20);
        let view = stats.view(TOPIC_PUT_NUMS, "T").unwrap();
        assert_eq!((view.stats_minute.sum, view.stats_hour.sum), (60, 60));
        assert!(stats.view(TOPIC_PUT_NUMS, "Other").is_none());
        assert!(stats.view(GROUP_GET_NUMS, "T").is_none());
        let json = serde_json::to_string(&view).unwrap();
        assert!(json.starts_with(r#"{"statsMinute":{"sum":60,"#), "{json}");
    }

    #[test]
    fn the_minute_rate_is_the_minute_windows_and_zero_when_never_counted() {
        let stats = StatsItems::default();
        let key = group_key("T", "g");
        stats.add(GROUP_GET_NUMS, &key, 100);
        // The rate is over the time since the item began: let some pass.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tps = stats.minute_tps(GROUP_GET_NUMS, &key);
        assert!(tps > 0.0 && tps <= 100.0 * 1000.0 / 20.0, "{tps}");
        assert_eq!(stats.minute_tps(GROUP_GET_NUMS, "T@other"), 0.0);
        assert_eq!(stats.minute_tps(TOPIC_PUT_NUMS, &key), 0.0);
    }
}
