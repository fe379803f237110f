//! Committed puts through a three-node raft group of `ReplicatedStore`s over loopback TCP:
//! 1 KiB messages, N concurrent putters, messages per second and put latency percentiles.
//!
//! `cargo bench -p store --bench raft_group -- [--putters N] [--seconds S] [--batch B] [--sync]`
//!
//! Every putter sends one put of B messages at a time and waits for its commit (and dispatch
//! on the leader) before the next; the run stops after S seconds (bounded). Records are
//! encoded before the clock starts, so the CPU time per message printed (the whole process:
//! three nodes and the putters) is the store's and raft's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use message::{encode, properties, MessageDraft};
use raft::{parse_peers, DriverConfig, NodeId};
use store::{FlushDiskType, ReplicatedStore, StoreConfig};
use tokio::net::TcpListener;

const BODY_LEN: usize = 1024;
const QUEUES: i32 = 8;

fn record(queue_id: i32, i: usize) -> Vec<u8> {
    let body = vec![b'a' + (i % 26) as u8; BODY_LEN];
    let uniq = format!("7F000001{:024X}", i);
    let props = properties::encode([("TAGS", "TagA"), ("UNIQ_KEY", uniq.as_str())]);
    let draft = MessageDraft {
        topic: "BenchTopic",
        body: &body,
        flag: 0,
        properties: &props,
        queue_id,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: "127.0.0.1:50000".parse().expect("addr"),
        store_host: "127.0.0.1:10911".parse().expect("addr"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp_ms: 0,
    };
    encode(&draft).expect("encodable")
}

/// CPU time (user + system) this process has used so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let putters: usize = arg(&args, "--putters").map_or(64, |v| v.parse().expect("--putters N"));
    let seconds: u64 = arg(&args, "--seconds").map_or(5, |v| v.parse().expect("--seconds S"));
    let batch: usize = arg(&args, "--batch").map_or(1, |v| v.parse().expect("--batch B"));
    let sync = args.iter().any(|a| a == "--sync");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(putters, seconds, batch.max(1), sync));
}

async fn run(putters: usize, seconds: u64, batch: usize, sync: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let list: Vec<String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| format!("n{i}-{}", l.local_addr().expect("addr")))
        .collect();
    let peers = parse_peers(&list.join(";")).expect("peers");
    let mut stores = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut config = StoreConfig::new(tmp.path().join(format!("node{i}")));
        config.mapped_file_size_commit_log = 256 << 20;
        config.flush_disk_type = if sync {
            FlushDiskType::SyncFlush
        } else {
            FlushDiskType::AsyncFlush
        };
        let driver = DriverConfig::new(NodeId(i as u32), peers.clone(), "bench");
        let (store, _) = ReplicatedStore::open(config, driver, listener, None).expect("open");
        stores.push(Arc::new(store));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        if let Some(s) = stores.iter().find(|s| s.status().writable) {
            break Arc::clone(s);
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_at_start = process_cpu();
    let mut tasks = Vec::new();
    for p in 0..putters {
        let leader = Arc::clone(&leader);
        let stop = Arc::clone(&stop);
        let failed = Arc::clone(&failed);
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
            let mut sent = 0u64;
            let records: Vec<Vec<u8>> = (0..batch)
                .map(|k| record(((p + k) as i32) % QUEUES, p * 1_000_000 + k))
                .collect();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match leader.put_messages(&refs).await {
                    Ok(_) => {
                        let _ = histogram.record(t.elapsed().as_micros().max(1) as u64);
                        sent += batch as u64;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (sent, histogram)
        }));
    }
    // What a power loss of the whole group could take in ASYNC mode: entries committed
    // (acknowledged) but not yet fsynced on a quorum, sampled on the leader.
    let mut exposure =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("hist");
    let sampling_until = Instant::now() + Duration::from_secs(seconds);
    // Bounded by the run's length.
    while Instant::now() < sampling_until {
        if let Ok(status) = leader.raft().status().await {
            let unsynced = status.commit_index.saturating_sub(status.safe_index);
            let _ = exposure.record(unsynced);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    for task in tasks {
        if let Ok(Ok((sent, h))) = tokio::time::timeout(Duration::from_secs(30), task).await {
            total += sent;
            let _ = histogram.add(h);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu_at_start);
    println!(
        "raft group of 3, {} flush, {putters} putters, batch {batch}, {BODY_LEN} B bodies: {:.0} msgs/s committed ({total} in {elapsed:.1} s, {} failed puts), {:.1} us CPU per message",
        if sync { "SYNC" } else { "ASYNC" },
        total as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
    );
    println!(
        "put latency: p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us",
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.90),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    );
    let rate = total as f64 / elapsed;
    let as_ms = |entries: u64| entries as f64 * batch as f64 / rate.max(1.0) * 1e3;
    println!(
        "acknowledged, not yet fsynced on a quorum (lost if the whole group loses power, ASYNC): \
         p50 {} p99 {} max {} entries (~{:.2} / {:.2} / {:.2} ms of traffic)",
        exposure.value_at_quantile(0.50),
        exposure.value_at_quantile(0.99),
        exposure.max(),
        as_ms(exposure.value_at_quantile(0.50)),
        as_ms(exposure.value_at_quantile(0.99)),
        as_ms(exposure.max()),
    );
    for store in &stores {
        store.close().await;
    }
}
