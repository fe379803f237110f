//! Deterministic simulation of raft groups under faults.
//!
//! `RAFT_SIM_SEEDS=<n>` sets how many seeds run (default 20,000, spread over all cores);
//! `RAFT_SIM_FIRST_SEED=<n>` starts the range elsewhere (to explore new seeds);
//! `RAFT_SIM_SEED=<n>` replays one seed with a trace of every fault and role change
//! (add `RAFT_SIM_MESSAGES=1` to also trace every message, and `-- --nocapture`).
//! A failing seed is printed in the assertion message and reproduces exactly.

mod sim;

const DEFAULT_SEEDS: u64 = 20_000;

fn run_seed(seed: u64, verbose: bool) -> Result<sim::SeedStats, String> {
    sim::seeds::catching(|| sim::Sim::new(seed, verbose).run())
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
    let (totals, failures) = sim::seeds::run_seeds(
        first,
        seeds,
        |seed| run_seed(seed, false),
        |t: &mut sim::SeedStats, stats| {
            t.committed += stats.committed;
            t.acked += stats.acked;
            t.leaders += stats.leaders;
            t.rotted += stats.rotted;
            t.repaired += stats.repaired;
        },
    );
    eprintln!(
        "{seeds} seeds: {} entries committed, {} proposals acknowledged, {} leaders elected, \
         {} entries rotted, {} repaired from a peer",
        totals.committed, totals.acked, totals.leaders, totals.rotted, totals.repaired
    );
    if let Some((seed, e)) = failures.first() {
        let others: Vec<u64> = failures.iter().skip(1).map(|(s, _)| *s).collect();
        panic!(
            "seed {seed} failed: {e}\nreplay: RAFT_SIM_SEED={seed} cargo test -p raft --test simulation\nother failing seeds: {others:?}"
        );
    }
}
