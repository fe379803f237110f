//! Put and get throughput of 1 KiB messages through `StandaloneStore`.
//!
//! `cargo bench -p store --bench throughput -- [--messages N] [--runs R] [--only NAME]
//! [--prefault-ahead BYTES]` (0 turns the CommitLog prefaulter off, for A/B runs)
//!
//! Each scenario runs R times on a fresh store in a temporary directory and prints the
//! median (and min/max) in messages per second.

use std::sync::Arc;
use std::time::Instant;

use message::{encode, properties, MessageDraft};
use store::{AcceptAll, FlushDiskType, StandaloneStore, StoreConfig};

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

fn config(dir: &std::path::Path, flush: FlushDiskType, args: &Args) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    if let Some(ahead) = args.prefault_ahead {
        c.prefault_ahead_bytes = ahead;
    }
    c.mapped_file_size_commit_log = 256 << 20;
    c.max_hash_slot_num = 1 << 20;
    c.max_index_num = 4 << 20;
    c.flush_disk_type = flush;
    c
}

struct Args {
    messages: usize,
    runs: usize,
    /// Run only scenarios whose name contains this.
    only: Option<String>,
    prefault_ahead: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 200_000,
        runs: 5,
        only: None,
        prefault_ahead: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), next) {
            ("--messages", Some(n)) => {
                a.messages = n;
                i += 1;
            }
            ("--runs", Some(n)) => {
                a.runs = n;
                i += 1;
            }
            ("--prefault-ahead", _) => {
                a.prefault_ahead = argv.get(i + 1).and_then(|v| v.parse().ok());
                i += 1;
            }
            ("--only", _) => {
                a.only = argv.get(i + 1).cloned();
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    a
}

/// User + system CPU time of the whole process so far, in microseconds (so a loaded
/// machine, where wall-clock rates mostly measure other processes, still gives a cost).
fn process_cpu_us() -> f64 {
    // SAFETY: getrusage writes only into the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

fn report_cpu(mut per_msg_us: Vec<f64>) {
    per_msg_us.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "{:<44} median {:>6.2} us CPU/msg  (min {:.2}, max {:.2})",
        "",
        per_msg_us[per_msg_us.len() / 2],
        per_msg_us[0],
        per_msg_us[per_msg_us.len() - 1]
    );
}

fn report(name: &str, mut rates: Vec<f64>) {
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let median = rates[rates.len() / 2];
    println!(
        "{name:<44} median {:>10.0} msg/s  ({:.0} MiB/s)  min {:>10.0}  max {:>10.0}",
        median,
        median * BODY_LEN as f64 / (1 << 20) as f64,
        rates[0],
        rates[rates.len() - 1]
    );
}

/// Puts `n` messages from `threads` threads in batches of `batch`; returns msg/s.
fn put_run(
    store: &Arc<StandaloneStore>,
    records: &Arc<Vec<Vec<u8>>>,
    threads: usize,
    batch: usize,
) -> f64 {
    let n = records.len();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(store);
            let records = Arc::clone(records);
            std::thread::spawn(move || {
                let mine: Vec<&[u8]> = records
                    .iter()
                    .skip(t)
                    .step_by(threads)
                    .map(|r| r.as_slice())
                    .collect();
                for chunk in mine.chunks(batch) {
                    store.put_messages_nowait(chunk).expect("put");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("put thread");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn get_run(store: &Arc<StandaloneStore>, threads: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                let mut total = 0usize;
                let mut bytes = 0usize;
                for q in (0..QUEUES).skip(t).step_by(threads) {
                    let mut offset = 0;
                    loop {
                        let r = store.reader().get_messages(
                            "BenchTopic",
                            q,
                            offset,
                            32,
                            None,
                            &AcceptAll,
                        );
                        if r.messages.is_empty() {
                            break;
                        }
                        total += r.messages.len();
                        bytes += r.buffer_total_size;
                        offset = r.next_begin_offset;
                    }
                }
                std::hint::black_box(bytes);
                total
            })
        })
        .collect();
    let total: usize = handles
        .into_iter()
        .map(|h| h.join().expect("get thread"))
        .sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args = args();
    let records: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.messages)
            .map(|i| record(i as i32 % QUEUES, i))
            .collect(),
    );
    println!(
        "{} messages of {} bytes ({} byte records), {} runs each",
        args.messages,
        BODY_LEN,
        records[0].len(),
        args.runs
    );
    let scenarios: [(&str, usize, usize); 4] = [
        ("put ASYNC_FLUSH, 1 thread, batch 1", 1, 1),
        ("put ASYNC_FLUSH, 4 threads, batch 1", 4, 1),
        ("put ASYNC_FLUSH, 1 thread, batch 32", 1, 32),
        ("put ASYNC_FLUSH, 4 threads, batch 32", 4, 32),
    ];
    let mut get1 = Vec::new();
    let mut get2 = Vec::new();
    let mut get_cpu = Vec::new();
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| name.contains(o));
    for (name, threads, batch) in scenarios {
        let feeds_get = threads == 1 && batch == 1 && wanted("get");
        if !wanted(name) && !feeds_get {
            continue;
        }
        let mut rates = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..args.runs {
            let dir = tempfile::tempdir().expect("tempdir");
            let (store, _) =
                StandaloneStore::open(config(dir.path(), FlushDiskType::AsyncFlush, &args))
                    .expect("open");
            let store = Arc::new(store);
            let cpu_before = process_cpu_us();
            rates.push(put_run(&store, &records, threads, batch));
            cpu.push((process_cpu_us() - cpu_before) / records.len() as f64);
            if threads == 1 && batch == 1 {
                let cpu_before = process_cpu_us();
                get1.push(get_run(&store, 1));
                get_cpu.push((process_cpu_us() - cpu_before) / records.len() as f64);
                get2.push(get_run(&store, 2));
            }
        }
        if wanted(name) {
            report(name, rates);
            report_cpu(cpu);
        }
    }
    if !get1.is_empty() && wanted("get") {
        report("get 32/pull, 1 thread", get1);
        report_cpu(get_cpu);
        report("get 32/pull, 2 threads", get2);
    }
    if !wanted("SYNC") {
        return;
    }

    // SYNC_FLUSH: many concurrent producers share fsyncs.
    let mut rates = Vec::new();
    let mut fsyncs = Vec::new();
    for _ in 0..args.runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = StandaloneStore::open(config(dir.path(), FlushDiskType::SyncFlush, &args))
            .expect("open");
        let store = Arc::new(store);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let n = (args.messages / 4).max(256);
        let tasks = 256;
        let start = Instant::now();
        let before = store.fsync_count();
        runtime.block_on(async {
            let mut handles = Vec::new();
            for t in 0..tasks {
                let store = Arc::clone(&store);
                let records = Arc::clone(&records);
                handles.push(tokio::spawn(async move {
                    let mut i = t;
                    while i < n {
                        let r = &records[i % records.len()];
                        store.put_messages(&[r]).await.expect("put");
                        i += tasks;
                    }
                }));
            }
            for h in handles {
                h.await.expect("task");
            }
        });
        rates.push(n as f64 / start.elapsed().as_secs_f64());
        fsyncs.push((n as u64, store.fsync_count() - before));
    }
    report("put SYNC_FLUSH, 256 concurrent producers", rates);
    for (n, f) in fsyncs {
        println!(
            "    {n} sync puts, {f} fsyncs ({:.1} puts per fsync)",
            n as f64 / f.max(1) as f64
        );
    }
}
