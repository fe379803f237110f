//! Running many seeds of a deterministic simulation over every core: each seed runs whole
//! on one thread, a panic counts as that seed's failure, and the run stops early once a
//! few seeds failed (enough to act on). Shared by the raft simulation and the store's
//! whole-group simulation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Failures after which the remaining seeds are skipped.
const ENOUGH_FAILURES: usize = 5;

/// One seed's outcome, a panic turned into a failure.
pub fn catching<S>(
    run: impl FnOnce() -> Result<S, String> + std::panic::UnwindSafe,
) -> Result<S, String> {
    match std::panic::catch_unwind(run) {
        Ok(result) => result,
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

/// Runs seeds `first..first + seeds`, adding each passing seed's stats into the totals.
/// Returns the totals and the failing seeds in order.
pub fn run_seeds<S: Default + Send>(
    first: u64,
    seeds: u64,
    run: impl Fn(u64) -> Result<S, String> + Sync,
    add: impl Fn(&mut S, S) + Sync,
) -> (S, Vec<(u64, String)>) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8) as u64;
    let next = AtomicU64::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let totals = Mutex::new(S::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= seeds {
                    break;
                }
                let seed = first + n;
                match run(seed) {
                    Ok(stats) => add(&mut totals.lock().unwrap_or_else(|e| e.into_inner()), stats),
                    Err(e) => {
                        let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                        f.push((seed, e));
                        if f.len() >= ENOUGH_FAILURES {
                            next.store(seeds, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    (totals, failures)
}
