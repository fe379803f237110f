//! Deterministic simulation of raft groups under faults.
//!
//! `RAFT_SIM_SEEDS=<n>` sets how many seeds run (default 20,000, spread over all cores);
//! `RAFT_SIM_FIRST_SEED=<n>` starts the range elsewhere (to explore new seeds);
//! `RAFT_SIM_SEED=<n>` replays one seed with a trace of every fault and role change
//! (add `RAFT_SIM_MESSAGES=1` to also trace every message, and `-- --nocapture`).
//! A failing seed is printed in the assertion message and reproduces exactly.

mod sim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const DEFAULT_SEEDS: u64 = 20_000;

fn run_seed(seed: u64, verbose: bool) -> Result<sim::SeedStats, String> {
    match std::panic::catch_unwind(|| sim::Sim::new(seed, verbose).run()) {
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

#[test]
fn simulated_groups_stay_safe_and_make_progress() {
    if let Ok(seed) = std::env::var("RAFT_SIM_SEED") {
        let seed: u64 = seed.parse().expect("RAFT_SIM_SEED is a number");
        match run_seed(seed, true) {
            Ok(stats) => eprintln!("seed {seed} passed: {stats:?}"),
            Err(e) => panic!("seed {seed} failed: {e}\nreplay: RAFT_SIM_SEED={seed} cargo test -p raft --test simulation"),
        }
        return;
    }
    let seeds: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    let first: u64 = std::env::var("RAFT_SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8) as u64;
    let next = AtomicU64::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let totals = Mutex::new(sim::SeedStats::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= seeds {
                    break;
                }
                let seed = first + n;
                match run_seed(seed, false) {
                    Ok(stats) => {
                        let mut t = totals.lock().unwrap();
                        t.committed += stats.committed;
                        t.acked += stats.acked;
                        t.leaders += stats.leaders;
                    }
                    Err(e) => {
                        let mut f = failures.lock().unwrap();
                        f.push((seed, e));
                        if f.len() >= 5 {
                            // Enough to act on; stop the rest early.
                            next.store(seeds, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap();
    eprintln!(
        "{seeds} seeds: {} entries committed, {} proposals acknowledged, {} leaders elected",
        totals.committed, totals.acked, totals.leaders
    );
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    if let Some((seed, e)) = failures.first() {
        let others: Vec<u64> = failures.iter().skip(1).map(|(s, _)| *s).collect();
        panic!(
            "seed {seed} failed: {e}\nreplay: RAFT_SIM_SEED={seed} cargo test -p raft --test simulation\nother failing seeds: {others:?}"
        );
    }
}
