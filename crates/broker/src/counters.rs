//! Message counters and rates for GET_BROKER_RUNTIME_INFO (`putTps`, `getTransferedTps`,
//! `msgPutTotalTodayNow`, ...), sampled once a second.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Samples kept: one a second for a minute, plus one for the window's start.
const SAMPLES_KEPT: usize = 61;
const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    put: u64,
    get: u64,
}

#[derive(Debug, Default)]
struct DayMarks {
    day: i64,
    today_morning: (u64, u64),
    yesterday_morning: (u64, u64),
}

#[derive(Debug, Default)]
pub struct BrokerStats {
    msg_put_total: AtomicU64,
    msg_get_total: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
    days: Mutex<DayMarks>,
}

impl BrokerStats {
    pub fn add_put(&self, messages: u64) {
        self.msg_put_total.fetch_add(messages, Ordering::Relaxed);
    }

    pub fn add_get(&self, messages: u64) {
        self.msg_get_total.fetch_add(messages, Ordering::Relaxed);
    }

    pub fn put_total(&self) -> u64 {
        self.msg_put_total.load(Ordering::Relaxed)
    }

    pub fn get_total(&self) -> u64 {
        self.msg_get_total.load(Ordering::Relaxed)
    }

    /// Records a sample; call about once a second.
    pub fn sample(&self, now: Instant, now_ms: i64) {
        let (put, get) = (self.put_total(), self.get_total());
        let mut samples = self.samples.lock();
        samples.push_back(Sample { at: now, put, get });
        while samples.len() > SAMPLES_KEPT {
            samples.pop_front();
        }
        drop(samples);
        let day = now_ms.div_euclid(MS_PER_DAY);
        let mut days = self.days.lock();
        if days.day != day {
            days.yesterday_morning = if days.day == day - 1 {
                days.today_morning
            } else {
                (put, get)
            };
            days.today_morning = (put, get);
            days.day = day;
        }
    }

    /// Messages per second put and got over the last `window`, up to now: the counters as
    /// they are now against the oldest sample inside the window, so a burst shows at once
    /// rather than after the next sample.
    pub fn tps(&self, window: Duration) -> (f64, f64) {
        self.tps_at(Instant::now(), window)
    }

    fn tps_at(&self, now: Instant, window: Duration) -> (f64, f64) {
        let samples = self.samples.lock();
        let Some(first) = samples
            .iter()
            .find(|s| now.saturating_duration_since(s.at) <= window)
            .or(samples.back())
            .copied()
        else {
            return (0.0, 0.0);
        };
        drop(samples);
        let secs = now.saturating_duration_since(first.at).as_secs_f64();
        // Below a millisecond the rate would be noise.
        if secs < 0.001 {
            return (0.0, 0.0);
        }
        (
            self.put_total().saturating_sub(first.put) as f64 / secs,
            self.get_total().saturating_sub(first.get) as f64 / secs,
        )
    }

    /// (put, get) totals at the start of today and of yesterday (UTC days).
    pub fn day_marks(&self) -> ((u64, u64), (u64, u64)) {
        let days = self.days.lock();
        (days.today_morning, days.yesterday_morning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_samples() {
        let stats = BrokerStats::default();
        let t0 = Instant::now();
        stats.sample(t0, 0);
        stats.add_put(100);
        stats.add_get(50);
        stats.sample(t0 + Duration::from_secs(2), 2000);
        let (put, get) = stats.tps_at(t0 + Duration::from_secs(2), Duration::from_secs(10));
        assert!((put - 50.0).abs() < 1e-9 && (get - 25.0).abs() < 1e-9);
    }

    #[test]
    fn a_burst_shows_before_the_next_sample() {
        let stats = BrokerStats::default();
        let t0 = Instant::now();
        stats.sample(t0, 0);
        stats.add_put(300);
        let (put, _) = stats.tps_at(t0 + Duration::from_millis(500), Duration::from_secs(10));
        assert!((put - 600.0).abs() < 1e-6, "{put}");
    }

    #[test]
    fn day_marks_roll_over() {
        let stats = BrokerStats::default();
        let t0 = Instant::now();
        stats.sample(t0, 10);
        stats.add_put(5);
        stats.sample(t0, MS_PER_DAY + 10);
        assert_eq!(stats.day_marks(), ((5, 0), (0, 0)));
    }
}
