//! Committed entries per second and commit latency of a three-node group over loopback TCP.
//!
//! ```sh
//! cargo bench -p raft --bench throughput                 # 1 and 64 proposers, 1 KiB
//! cargo bench -p raft --bench throughput -- --proposers 64 --seconds 5 --runs 5 --sync-flush
//! ```
//!
//! Each proposer submits one entry and waits for its commit before the next. The log is the
//! in-memory log (the file-backed CommitLog is benchmarked with the store), so the figures
//! measure consensus, framing, checksums, TCP and the runtime; with `--sync-flush` the fsync
//! is the in-memory log's no-op, i.e. only the extra persistence round in the protocol.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use raft::{
    DriverConfig, MemHardStateStore, MemLog, NodeId, PeerSpec, Proposal, RaftDriver, RaftHandle,
    Role,
};
use tokio::net::TcpListener;

struct Args {
    proposers: Vec<usize>,
    seconds: u64,
    runs: usize,
    entry_bytes: usize,
    sync_flush: bool,
    worker_threads: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        proposers: vec![1, 64],
        seconds: 5,
        runs: 3,
        entry_bytes: 1024,
        sync_flush: false,
        worker_threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--proposers" => {
                args.proposers = value().map(|v| vec![v as usize]).unwrap_or(args.proposers)
            }
            "--seconds" => args.seconds = value().unwrap_or(args.seconds),
            "--runs" => args.runs = value().map(|v| v as usize).unwrap_or(args.runs),
            "--entry-bytes" => {
                args.entry_bytes = value().map(|v| v as usize).unwrap_or(args.entry_bytes)
            }
            "--threads" => {
                args.worker_threads = value().map(|v| v as usize).unwrap_or(args.worker_threads)
            }
            "--sync-flush" => args.sync_flush = true,
            // `cargo bench` passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    args
}

/// CPU time this process used so far (user + system), from /proc; `None` elsewhere.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // The kernel reports clock ticks of 1/100 s on Linux.
    Some((utime + stime) / 100.0)
}

struct RunResult {
    /// CPU microseconds the whole group (3 nodes + proposers) spent per committed entry.
    cpu_us_per_entry: Option<f64>,
    entries_per_sec: f64,
    histogram: Histogram<u64>,
    failures: u64,
}

async fn start_group(sync_flush: bool) -> Vec<RaftHandle> {
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for i in 0..3u32 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push(PeerSpec {
            id: NodeId(i),
            name: format!("n{i}"),
            addr: listener.local_addr().expect("addr").to_string(),
        });
        listeners.push(listener);
    }
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut config = DriverConfig::new(NodeId(i as u32), peers.clone(), "bench");
        config.raft.sync_flush = sync_flush;
        config.raft.preferred_leaders = vec![NodeId(0)];
        // Retention keeps memory bounded over long runs.
        let log = MemLog::new().with_retention(20_000);
        let driver =
            RaftDriver::start(config, log, MemHardStateStore::default(), listener).expect("start");
        handles.push(driver.handle);
    }
    handles
}

/// Waits for n0, the preferred leader, to lead (leadership moves there if another node
/// wins the first election), so that the measured period has one stable leader.
async fn wait_for_leader(handles: &[RaftHandle]) -> RaftHandle {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = *handles[0].state().borrow();
        let followers = handles[1..]
            .iter()
            .all(|h| h.state().borrow().leader == Some(NodeId(0)));
        if s.role == Role::Leader && s.commit_index > 0 && followers {
            return handles[0].clone();
        }
        assert!(Instant::now() < deadline, "no leader within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_once(proposers: usize, args: &Args) -> RunResult {
    let handles = start_group(args.sync_flush).await;
    let leader = wait_for_leader(&handles).await;
    let body = Bytes::from(vec![0x5Au8; args.entry_bytes]);
    let warmup = Duration::from_millis(500);
    let measure = Duration::from_secs(args.seconds);
    let start = Instant::now();
    let cpu_at_start = {
        let handle = tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            process_cpu_secs()
        });
        handle
    };
    let tasks: Vec<_> = (0..proposers)
        .map(|_| {
            let leader = leader.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut histogram =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
                let mut committed = 0u64;
                let mut failures = 0u64;
                loop {
                    let now = Instant::now();
                    if now >= start + warmup + measure {
                        break;
                    }
                    let future = match leader.propose(Proposal::new(1, body.clone())) {
                        Ok(f) => f,
                        Err(_) => {
                            failures += 1;
                            tokio::task::yield_now().await;
                            continue;
                        }
                    };
                    let result = future.await;
                    if now >= start + warmup {
                        if result.is_ok() {
                            committed += 1;
                            let _ = histogram.record(now.elapsed().as_micros() as u64);
                        } else {
                            failures += 1;
                        }
                    }
                }
                (committed, failures, histogram)
            })
        })
        .collect();
    let cpu_start = cpu_at_start.await.ok().flatten();
    let mut total = 0u64;
    let mut failures = 0u64;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    for t in tasks {
        let (committed, failed, h) = t.await.expect("proposer");
        total += committed;
        failures += failed;
        histogram.add(h).expect("merge");
    }
    let cpu_end = process_cpu_secs();
    for h in &handles {
        h.shutdown();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu_us_per_entry = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) if total > 0 => Some((b - a) * 1e6 / total as f64),
        _ => None,
    };
    RunResult {
        cpu_us_per_entry,
        entries_per_sec: total as f64 / measure.as_secs_f64(),
        histogram,
        failures,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "3 nodes over 127.0.0.1, {} B entries, sync_flush={}, {} worker threads, {} s x {} runs",
        args.entry_bytes, args.sync_flush, args.worker_threads, args.seconds, args.runs
    );
    for &proposers in &args.proposers {
        let mut rates = Vec::new();
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut p999 = Vec::new();
        let mut cpu = Vec::new();
        for run in 0..args.runs {
            let result = runtime.block_on(run_once(proposers, &args));
            let h = &result.histogram;
            println!(
                "  proposers={proposers:>3} run {run}: {:>9.0} entries/s  p50 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  failed {}  cpu {:.1} us/entry",
                result.entries_per_sec,
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                result.failures,
                result.cpu_us_per_entry.unwrap_or(f64::NAN)
            );
            cpu.push(result.cpu_us_per_entry.unwrap_or(f64::NAN));
            rates.push(result.entries_per_sec);
            p50.push(h.value_at_quantile(0.50) as f64);
            p99.push(h.value_at_quantile(0.99) as f64);
            p999.push(h.value_at_quantile(0.999) as f64);
        }
        println!(
            "proposers={proposers:>3} median: {:>9.0} entries/s ({:.1} MiB/s)  p50 {:.0} us  p99 {:.0} us  p99.9 {:.0} us  cpu {:.1} us/entry",
            median(rates.clone()),
            median(rates) * args.entry_bytes as f64 / (1 << 20) as f64,
            median(p50),
            median(p99),
            median(p999),
            median(cpu)
        );
    }
}
