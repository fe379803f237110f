//! Failed sign-ins, counted per client address: past [`MAX_FAILURES`] within
//! [`WINDOW`], that address may not try again until the window ends, so keys cannot be
//! guessed at the brokers' speed through the dashboard. A success clears the address's
//! count. At most [`MAX_TRACKED`] addresses are remembered (the oldest window goes first).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED: usize = 4096;

struct Failures {
    count: u32,
    since: Instant,
}

#[derive(Default)]
pub struct SignInLimiter {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
}

impl SignInLimiter {
    /// `Err(wait)` while `ip` has used up its failures.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        self.admit_at(ip, Instant::now())
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let by_address = self.by_address.lock();
        match by_address.get(&ip) {
            Some(f) if f.count >= MAX_FAILURES && now.duration_since(f.since) < WINDOW => {
                Err(WINDOW - now.duration_since(f.since))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        self.failed_at(ip, Instant::now())
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) {
        let mut by_address = self.by_address.lock();
        if !by_address.contains_key(&ip) && by_address.len() >= MAX_TRACKED {
            by_address.retain(|_, f| now.duration_since(f.since) < WINDOW);
            if by_address.len() >= MAX_TRACKED {
                if let Some(oldest) = by_address
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(a, _)| *a)
                {
                    by_address.remove(&oldest);
                }
            }
        }
        let failures = by_address.entry(ip).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.duration_since(failures.since) >= WINDOW {
            *failures = Failures {
                count: 0,
                since: now,
            };
        }
        failures.count += 1;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.by_address.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_out_its_window_after_too_many_failures() {
        let limiter = SignInLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.admit_at(a, start).is_ok());
            limiter.failed_at(a, start);
        }
        assert!(limiter.admit_at(a, start + Duration::from_secs(1)).is_err());
        assert!(limiter.admit_at(b, start).is_ok());
        assert!(limiter.admit_at(a, start + WINDOW).is_ok());
        limiter.failed_at(a, start + WINDOW);
        assert!(limiter.admit_at(a, start + WINDOW).is_ok(), "a new window");
        limiter.succeeded(a);
        assert!(limiter.by_address.lock().is_empty());
    }
}
