//! Single-node produce and consume throughput of 1 KiB messages over loopback.
//!
//! ```text
//! cargo bench -p broker --bench throughput -- [--runs 5] [--seconds 5] [--connections 4]
//!     [--callers 128] [--queues 16] [--body-bytes 1024] [--batch 1] [--broker-threads 2]
//!     [--client-threads 2] [--sync-flush] [--metrics-ab] [--prefault-ahead BYTES]
//! ```
//!
//! A broker runs in this process on its own tokio runtime (`--broker-threads` workers), with
//! a fresh store in a temporary directory; the load runs on a second runtime
//! (`--client-threads` workers) and speaks the wire protocol through `RemotingClient`, as a
//! real client would: JSON headers, one TCP connection per client.
//!
//! Produce: `--callers` tasks spread over `--connections` connections each send
//! SEND_MESSAGE_V2 requests (or SEND_BATCH_MESSAGE with `--batch N` messages) round-robin over
//! `--queues` queues of one topic, each waiting for its answer before sending the next, for
//! `--seconds`. Consume: then one task per queue pulls (32 messages per PULL_MESSAGE, as Java
//! push consumers do) from offset 0 to the end of what was produced, walking every record of
//! every response. Each run uses a new store; the medians over `--runs` are printed last.
//! On this shared machine the broker and the load share the same cores.
//!
//! `--prefault-ahead 0` turns the store's CommitLog prefaulter off (A/B runs).
//!
//! `--metrics-ab`: what the Prometheus metrics cost (`metricsExporterType=PROM`, every
//! message and request recorded): runs alternate without and with them, `--runs` pairs,
//! and the median of the pairs' with/without ratios is printed.

// The same allocator as the mqbroker binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::config::BrokerConfig;
use message::properties;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::response;
use remoting::command::RemotingCommand;
use store::{FlushDiskType, StoreConfig};

const TOPIC: &str = "BenchTopic";
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Options {
    runs: usize,
    seconds: u64,
    connections: usize,
    callers: usize,
    queues: i32,
    body_bytes: usize,
    batch: usize,
    broker_threads: usize,
    client_threads: usize,
    sync_flush: bool,
    /// Measure only the store facade's put path, without the network.
    store_only: bool,
    metrics_ab: bool,
    prefault_ahead: Option<u64>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        runs: 5,
        seconds: 5,
        connections: 4,
        callers: 128,
        queues: 16,
        body_bytes: 1024,
        batch: 1,
        broker_threads: 2,
        client_threads: 2,
        sync_flush: false,
        store_only: false,
        metrics_ab: false,
        prefault_ahead: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse()
                .map_err(|_| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--runs" => options.runs = value("--runs")?.max(1) as usize,
            "--seconds" => options.seconds = value("--seconds")?.max(1),
            "--connections" => options.connections = value("--connections")?.max(1) as usize,
            "--callers" => options.callers = value("--callers")?.max(1) as usize,
            "--queues" => options.queues = value("--queues")?.clamp(1, 1024) as i32,
            "--body-bytes" => options.body_bytes = value("--body-bytes")? as usize,
            "--batch" => options.batch = value("--batch")?.clamp(1, 1024) as usize,
            "--broker-threads" => {
                options.broker_threads = value("--broker-threads")?.max(1) as usize
            }
            "--client-threads" => {
                options.client_threads = value("--client-threads")?.max(1) as usize
            }
            "--sync-flush" => options.sync_flush = true,
            "--store-only" => options.store_only = true,
            "--metrics-ab" => options.metrics_ab = true,
            "--prefault-ahead" => options.prefault_ahead = Some(value("--prefault-ahead")?),
            // cargo bench passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    Ok(options)
}

struct RunResult {
    produced: u64,
    produce_rate: f64,
    consume_rate: f64,
    /// CPU time of the whole process (broker and load) per message.
    produce_cpu_us: f64,
    consume_cpu_us: f64,
}

/// User + system CPU time this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Messages per second two dedicated cores would sustain at this CPU cost per message.
fn two_core_rate(cpu_us_per_message: f64) -> f64 {
    if cpu_us_per_message > 0.0 {
        2_000_000.0 / cpu_us_per_message
    } else {
        0.0
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    println!("{options:?}");
    if options.store_only {
        store_only(&options);
        return;
    }
    if options.metrics_ab {
        metrics_ab(&options);
        return;
    }
    let mut results = Vec::new();
    for run in 1..=options.runs {
        let result = one_run(&options, false);
        println!(
            "run {run}: produced {} messages: {:.0} msg/s produce ({:.2} us CPU/msg), \
             {:.0} msg/s consume ({:.2} us CPU/msg)",
            result.produced,
            result.produce_rate,
            result.produce_cpu_us,
            result.consume_rate,
            result.consume_cpu_us
        );
        results.push(result);
    }
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(|a, b| a.total_cmp(b));
        rates[rates.len() / 2]
    };
    let produce_cpu = median(results.iter().map(|r| r.produce_cpu_us).collect());
    let consume_cpu = median(results.iter().map(|r| r.consume_cpu_us).collect());
    println!(
        "median over {} runs ({} B bodies, batch {}): produce {:.0} msg/s, {:.2} us CPU/msg \
         (=> ~{:.0} msg/s on 2 dedicated cores); consume {:.0} msg/s, {:.2} us CPU/msg \
         (=> ~{:.0} msg/s on 2 dedicated cores)",
        results.len(),
        options.body_bytes,
        options.batch,
        median(results.iter().map(|r| r.produce_rate).collect()),
        produce_cpu,
        two_core_rate(produce_cpu),
        median(results.iter().map(|r| r.consume_rate).collect()),
        consume_cpu,
        two_core_rate(consume_cpu),
    );
}

/// Pairs of runs, without and with metrics recorded (which goes first alternates), and
/// the median of the pairs' ratios.
fn metrics_ab(options: &Options) {
    let mut produce_ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut consume_ratios = Vec::new();
    for pair in 0..options.runs {
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut without = None;
        let mut with = None;
        for metrics in order {
            let result = one_run(options, metrics);
            println!(
                "pair {pair}, metrics {}: {:.0} msg/s produce ({:.2} us CPU/msg), {:.0} msg/s consume",
                if metrics { "on " } else { "off" },
                result.produce_rate,
                result.produce_cpu_us,
                result.consume_rate
            );
            if metrics {
                with = Some(result);
            } else {
                without = Some(result);
            }
        }
        let (Some(without), Some(with)) = (without, with) else {
            continue;
        };
        produce_ratios.push(with.produce_rate / without.produce_rate);
        cpu_ratios.push(with.produce_cpu_us / without.produce_cpu_us);
        consume_ratios.push(with.consume_rate / without.consume_rate);
    }
    let median = |mut ratios: Vec<f64>| {
        ratios.sort_by(|a, b| a.total_cmp(b));
        ratios[ratios.len() / 2]
    };
    println!(
        "metrics on / off, median of {} pairs: produce {:.3}x msg/s, {:.3}x CPU per message; \
         consume {:.3}x msg/s",
        produce_ratios.len(),
        median(produce_ratios),
        median(cpu_ratios),
        median(consume_ratios)
    );
}

fn one_run(options: &Options, metrics: bool) -> RunResult {
    let dir = tempfile::tempdir().expect("temporary store directory");
    let broker_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.broker_threads)
        .thread_name("bench-broker")
        .enable_all()
        .build()
        .expect("broker runtime");
    let config = BrokerConfig {
        listen_port: 0,
        grpc_server_port: 0,
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        broker_name: "bench".into(),
        store: StoreConfig {
            flush_disk_type: if options.sync_flush {
                FlushDiskType::SyncFlush
            } else {
                FlushDiskType::AsyncFlush
            },
            // Throughput, not disk policy: a shared disk past 85-90% would otherwise clean
            // segments early or refuse writes mid-run.
            disk_space_clean_forcibly_ratio: 1.0,
            disk_space_warning_level_ratio: 1.0,
            prefault_ahead_bytes: options
                .prefault_ahead
                .unwrap_or(StoreConfig::default().prefault_ahead_bytes),
            ..StoreConfig::new(dir.path())
        },
        metrics_exporter: if metrics {
            conf::MetricsExporter {
                exporter_type: conf::ExporterType::Prom,
                prom_host: "127.0.0.1".into(),
                prom_port: 0,
                labels: Vec::new(),
            }
        } else {
            conf::MetricsExporter::default()
        },
        ..BrokerConfig::default()
    };
    let running = broker_runtime
        .block_on(broker::start(config))
        .expect("broker starts");
    let addr = running.local_addr().to_string();
    running
        .context()
        .apply_metadata(broker::metadata::MetadataOp::Topic(
            broker::metadata::TopicOp::Upsert(remoting::body::TopicConfig::new(
                TOPIC,
                options.queues,
                options.queues,
                6,
            )),
        ))
        .expect("bench topic");

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let cpu_before = cpu_time();
    let (produced, produce_rate) = client_runtime.block_on(produce(options, &addr));
    let cpu_produced = cpu_time();
    let consume_rate = client_runtime.block_on(consume(options, &addr, produced));
    let cpu_consumed = cpu_time();
    drop(client_runtime);
    broker_runtime.block_on(running.shutdown());
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / produced.max(1) as f64;
    RunResult {
        produced,
        produce_rate,
        consume_rate,
        produce_cpu_us: per_message(cpu_produced.saturating_sub(cpu_before)),
        consume_cpu_us: per_message(cpu_consumed.saturating_sub(cpu_produced)),
    }
}

fn request_for(options: &Options, queue_id: i32, body: &[u8]) -> RemotingCommand {
    let properties = properties::encode([("TAGS", "TagA"), ("KEYS", "bench-key")]);
    support::send_request(TOPIC, queue_id, body, &properties, options.batch)
}

/// Sends for `--seconds`; returns messages stored and the rate.
async fn produce(options: &Options, addr: &str) -> (u64, f64) {
    let clients: Vec<RemotingClient> = (0..options.connections)
        .map(|_| RemotingClient::new(ClientConfig::default()))
        .collect();
    let body = vec![b'x'; options.body_bytes];
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut callers = Vec::new();
    for caller in 0..options.callers {
        let client = clients[caller % clients.len()].clone();
        let addr = addr.to_owned();
        let stop = Arc::clone(&stop);
        let stored = Arc::clone(&stored);
        let options = options.clone();
        let body = body.clone();
        callers.push(tokio::spawn(async move {
            // One request per queue, built once: what is measured is the broker, and the
            // load generator shares its cores.
            let templates: Vec<RemotingCommand> = (0..options.queues)
                .map(|queue_id| request_for(&options, queue_id, &body))
                .collect();
            let mut queue_id = (caller as i32) % options.queues;
            while !stop.load(Ordering::Relaxed) {
                let mut request = templates[queue_id as usize].clone();
                request.opaque = remoting::command::next_opaque();
                let answer = client.invoke(&addr, request, CALL_TIMEOUT).await;
                match answer {
                    Ok(answer) if answer.code == response::SUCCESS => {
                        stored.fetch_add(options.batch as u64, Ordering::Relaxed);
                    }
                    Ok(answer) => panic!("send failed: {} {:?}", answer.code, answer.remark),
                    Err(e) => panic!("send failed: {e}"),
                }
                queue_id = (queue_id + 1) % options.queues;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("caller");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = stored.load(Ordering::Relaxed);
    (total, total as f64 / elapsed)
}

/// Pulls every queue from 0 to its end; returns the rate.
async fn consume(options: &Options, addr: &str, expected: u64) -> f64 {
    let clients: Vec<RemotingClient> = (0..options.connections)
        .map(|_| RemotingClient::new(ClientConfig::default()))
        .collect();
    let consumed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut pullers = Vec::new();
    for queue_id in 0..options.queues {
        let client = clients[queue_id as usize % clients.len()].clone();
        let addr = addr.to_owned();
        let consumed = Arc::clone(&consumed);
        pullers.push(tokio::spawn(support::drain_queue(
            client,
            addr,
            TOPIC.to_owned(),
            queue_id,
            consumed,
            CALL_TIMEOUT,
        )));
    }
    for puller in pullers {
        puller.await.expect("puller");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = consumed.load(Ordering::Relaxed);
    assert_eq!(total, expected, "every produced message is consumed");
    total as f64 / elapsed
}

/// Puts single 1 KiB records through the store facade for `--seconds`, on one thread.
fn store_only(options: &Options) {
    use broker::store_facade::{MessageStore, RecordBatch};
    let dir = tempfile::tempdir().expect("temporary store directory");
    let config = BrokerConfig {
        store: StoreConfig::new(dir.path()),
        ..BrokerConfig::default()
    };
    let (store, _) =
        store::StandaloneStore::open(broker::runtime::store_config(&config)).expect("store opens");
    let store = broker::StandaloneFacade::new(Arc::new(store));
    let body = vec![b'x'; options.body_bytes];
    let properties = properties::encode([
        ("TAGS", "TagA"),
        ("KEYS", "bench-key"),
        ("UNIQ_KEY", "0123456789ABCDEF0123456789ABCDEF"),
        ("CLUSTER", "DefaultCluster"),
    ]);
    let host: std::net::SocketAddr = "127.0.0.1:10911".parse().expect("address");
    let draft = message::MessageDraft {
        topic: TOPIC,
        body: &body,
        flag: 0,
        properties: &properties,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp_ms: 0,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut count = 0u64;
    runtime.block_on(async {
        while started.elapsed() < Duration::from_secs(options.seconds) {
            for _ in 0..1000 {
                let mut batch = RecordBatch::with_capacity(body.len() + 256, 1);
                message::encode_into(&draft, batch.buffer()).expect("encodes");
                batch.finish_record();
                store.put(batch).await.expect("put");
                count += 1;
            }
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_us = cpu_time().saturating_sub(cpu_before).as_secs_f64() * 1e6 / count as f64;
    println!(
        "store only: {count} puts, {:.0} puts/s, {cpu_us:.2} us CPU/put",
        count as f64 / elapsed
    );
}
