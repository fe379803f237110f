//! A 3-node broker group (DLedger mode) of real `mqbroker` processes on this machine:
//! acknowledged produce throughput and latency for 1 KiB messages at 1, 16 and 64
//! concurrent producers, latency at half the peak rate, the same with batches of
//! `--batch` messages per request, how long after its acknowledgement a lone send becomes
//! visible to consumers (the master's max offset covers it), consume throughput, the peak with
//! `flushDiskType=SYNC_FLUSH`, and the time from killing the leader (kill -9) to the first
//! acknowledged send on the new master.
//!
//! ```text
//! cargo bench -p broker --bench group -- [--runs 3] [--seconds 5] [--failovers 10]
//!     [--queues 16] [--body-bytes 1024] [--producers 1,16,64] [--batch 16]
//!     [--paced-producers 16] [--skip-sync] [--skip-failover] [--prefault-ahead BYTES]
//!     [--set KEY=VALUE]...
//! ```
//!
//! `--prefault-ahead` sets the members' `commitLogPrefaultAheadBytes` (0: off), and `--set`
//! any broker.conf key of theirs (`--set dLegerFlushIntervalMs=0`), for A/B runs.
//!
//! The brokers are release builds of `mqbroker` started with configs in a temporary
//! directory (free 127.0.0.1 ports, 64 MiB segments). The load runs in this process on a
//! 2-worker runtime and speaks the wire protocol through `RemotingClient` (SEND_MESSAGE_V2
//! straight to the master, one request in flight per producer, each waiting for its answer),
//! so the figures are the group's, without a client library's routing. A name server runs
//! in this process so that the failover figures can also say when the name server lists
//! the new master. The brokers, the load and the name server share the machine's cores.
//! Each measurement is repeated `--runs` times; medians are printed last.

// The same allocator as the mqbroker binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use message::properties;
use remoting::body::ClusterInfo;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;

const GROUP: &str = "BenchGroup";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Options {
    runs: usize,
    seconds: u64,
    failovers: usize,
    queues: i32,
    body_bytes: usize,
    skip_sync: bool,
    skip_failover: bool,
    /// Concurrent producers of the throughput series.
    producers: Vec<usize>,
    /// Messages per request (SEND_BATCH_MESSAGE when above 1) in an extra series.
    batch: usize,
    /// Producers sharing the half-peak offered load.
    paced_producers: usize,
    /// broker.conf lines added to every member's config.
    settings: Vec<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        runs: 3,
        seconds: 5,
        failovers: 10,
        queues: 16,
        body_bytes: 1024,
        skip_sync: false,
        skip_failover: false,
        producers: vec![1, 16, 64],
        batch: 16,
        paced_producers: 16,
        settings: Vec::new(),
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
            "--runs" => options.runs = value("--runs")?.clamp(1, 100) as usize,
            "--seconds" => options.seconds = value("--seconds")?.clamp(1, 600),
            "--failovers" => options.failovers = value("--failovers")?.clamp(1, 100) as usize,
            "--queues" => options.queues = value("--queues")?.clamp(1, 1024) as i32,
            "--body-bytes" => options.body_bytes = value("--body-bytes")?.min(1 << 20) as usize,
            "--skip-sync" => options.skip_sync = true,
            "--batch" => options.batch = value("--batch")?.clamp(1, 1024) as usize,
            "--paced-producers" => {
                options.paced_producers = value("--paced-producers")?.clamp(1, 4096) as usize
            }
            "--skip-failover" => options.skip_failover = true,
            "--prefault-ahead" => {
                let bytes = value("--prefault-ahead")?;
                options
                    .settings
                    .push(format!("commitLogPrefaultAheadBytes={bytes}"));
            }
            "--set" => {
                let setting = args.next().ok_or("--set needs KEY=VALUE")?;
                if !setting.contains('=') {
                    return Err("--set needs KEY=VALUE".to_owned());
                }
                options.settings.push(setting);
            }
            "--producers" => {
                let list = args.next().ok_or("--producers needs a list like 1,16,64")?;
                options.producers = list
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().map(|n| n.clamp(1, 4096)))
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--producers needs a list like 1,16,64".to_owned())?;
            }
            // cargo bench passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    Ok(options)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// CPU time (user + system) a process has used, from /proc.
fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may contain spaces) start after ") ".
    let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / hz)
}

struct Member {
    port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("broker log");
        let child = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
            .args(["-c", self.conf.to_str().expect("utf-8 path")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn mqbroker");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn cpu(&self) -> Duration {
        self.child
            .as_ref()
            .map_or(Duration::ZERO, |c| process_cpu(c.id()))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Group {
    members: Vec<Member>,
    client: RemotingClient,
    namesrv: String,
    _dir: tempfile::TempDir,
}

impl Group {
    async fn start(namesrv: &str, sync_flush: bool, settings: &[String]) -> Group {
        let dir = tempfile::tempdir().expect("temporary directory");
        let peers: Vec<String> = (0..3)
            .map(|i| format!("n{i}-127.0.0.1:{}", free_port()))
            .collect();
        let mut members = Vec::new();
        for i in 0..3 {
            let id = format!("n{i}");
            let port = free_port();
            let conf = dir.path().join(format!("{id}.conf"));
            let entries = [
                ("brokerClusterName", "BenchCluster".to_owned()),
                ("brokerName", GROUP.to_owned()),
                ("listenPort", port.to_string()),
                ("grpcServerPort", free_port().to_string()),
                ("namesrvAddr", namesrv.to_owned()),
                ("brokerIP1", "127.0.0.1".to_owned()),
                ("bindAddress", "127.0.0.1".to_owned()),
                (
                    "storePathRootDir",
                    dir.path().join(&id).display().to_string(),
                ),
                ("enableDLegerCommitLog", "true".to_owned()),
                ("dLegerGroup", GROUP.to_owned()),
                ("dLegerPeers", peers.join(";")),
                ("dLegerSelfId", id.clone()),
                ("mapedFileSizeCommitLog", (64 << 20).to_string()),
                // A bench writes gigabytes on a shared disk: forced cleaning above 85% would
                // remove segments the consume phase then reads, and writes would be refused
                // above 90%. The figures are about throughput, not disk policy.
                ("diskSpaceCleanForciblyRatio", "100".to_owned()),
                ("diskSpaceWarningLevelRatio", "100".to_owned()),
                (
                    "flushDiskType",
                    if sync_flush {
                        "SYNC_FLUSH"
                    } else {
                        "ASYNC_FLUSH"
                    }
                    .to_owned(),
                ),
            ];
            let mut text: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            for setting in settings {
                text.push_str(setting);
                text.push('\n');
            }
            std::fs::write(&conf, text).expect("write config");
            let mut member = Member {
                log: dir.path().join(format!("{id}.log")),
                port,
                conf,
                child: None,
            };
            member.spawn();
            members.push(member);
        }
        let group = Group {
            members,
            client: RemotingClient::new(ClientConfig::default()),
            namesrv: namesrv.to_owned(),
            _dir: dir,
        };
        group.leader(WAIT).await.expect("a leader is elected");
        group
    }

    async fn status(&self, addr: &str) -> Option<serde_json::Value> {
        let response = self
            .client
            .invoke(
                addr,
                RemotingCommand::request(request::DLEDGER_METADATA),
                Duration::from_secs(2),
            )
            .await
            .ok()?;
        if !response.is_success() {
            return None;
        }
        serde_json::from_slice(&response.body).ok()
    }

    /// The writable leader's index and status, waiting up to `timeout` for one.
    async fn leader(&self, timeout: Duration) -> Option<(usize, serde_json::Value)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for (i, member) in self.members.iter().enumerate() {
                if member.child.is_none() {
                    continue;
                }
                if let Some(status) = self.status(&member.addr()).await {
                    if status["writable"] == true {
                        return Some((i, status));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    async fn create_topic(&self, topic: &str, queues: i32) {
        let (leader, _) = self.leader(WAIT).await.expect("leader");
        let request = tests::requests::create_topic(topic, queues);
        let answer = self
            .client
            .invoke(&self.members[leader].addr(), request, CALL_TIMEOUT)
            .await
            .expect("create topic");
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
    }

    fn cpu(&self) -> Duration {
        self.members.iter().map(Member::cpu).sum()
    }

    /// The master the name server lists, if any.
    async fn registered_master(&self) -> Option<String> {
        let response = self
            .client
            .invoke(
                &self.namesrv,
                RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
                Duration::from_secs(2),
            )
            .await
            .ok()?;
        let info = ClusterInfo::decode(&response.body).ok()?;
        info.broker_addr_table
            .get(GROUP)?
            .master_addr()
            .map(str::to_owned)
    }
}

fn send_request(topic: &str, queue_id: i32, body: &[u8]) -> RemotingCommand {
    batch_request(topic, queue_id, body, 1)
}

/// One message, or a SEND_BATCH_MESSAGE of `batch` copies.
fn batch_request(topic: &str, queue_id: i32, body: &[u8], batch: usize) -> RemotingCommand {
    let tags = properties::encode([("TAGS", "TagA")]);
    support::send_request(topic, queue_id, body, &tags, batch)
}

#[derive(Debug, Clone, Copy, Default)]
struct ProduceResult {
    rate: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    /// CPU of the three brokers per acknowledged message.
    broker_cpu_us: f64,
    sent: u64,
}

/// `producers` tasks send for `seconds`, each one request at a time; with `rate` the
/// producers together aim at that many sends per second (each paced by its own timer).
async fn produce(
    group: &Group,
    options: &Options,
    topic: &str,
    producers: usize,
    rate: Option<f64>,
    batch: usize,
) -> ProduceResult {
    let (leader, _) = group.leader(WAIT).await.expect("leader");
    let addr = group.members[leader].addr();
    // A connection per 8 producers, as a few client instances would have.
    let clients: Vec<RemotingClient> = (0..producers.div_ceil(8))
        .map(|_| RemotingClient::new(ClientConfig::default()))
        .collect();
    let body = vec![b'x'; options.body_bytes];
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    ));
    let cpu_before = group.cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..producers {
        let client = clients[producer % clients.len()].clone();
        let (addr, stop, sent, histogram) = (
            addr.clone(),
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&histogram),
        );
        let templates: Vec<RemotingCommand> = (0..options.queues)
            .map(|q| batch_request(topic, q, &body, batch))
            .collect();
        let queues = options.queues;
        let interval = rate.map(|r| Duration::from_secs_f64(producers as f64 / r.max(1.0)));
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("h");
            // Paced producers start spread over one interval, so the offered load is even
            // rather than 64 sends at the same instant.
            let mut ticker = interval.map(|i| {
                let offset = i.mul_f64(producer as f64 / producers as f64);
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut queue_id = producer as i32 % queues;
            while !stop.load(Ordering::Relaxed) {
                if let Some(ticker) = ticker.as_mut() {
                    ticker.tick().await;
                }
                let mut request = templates[queue_id as usize].clone();
                request.opaque = remoting::command::next_opaque();
                let at = Instant::now();
                match client.invoke(&addr, request, CALL_TIMEOUT).await {
                    Ok(answer) if answer.code == response::SUCCESS => {
                        let _ = local.record(at.elapsed().as_micros() as u64);
                        sent.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    Ok(answer) => panic!("send failed: {} {:?}", answer.code, answer.remark),
                    Err(e) => panic!("send failed: {e}"),
                }
                queue_id = (queue_id + 1) % queues;
            }
            let _ = histogram.lock().expect("histogram").add(&local);
        }));
    }
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("producer");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = group.cpu().saturating_sub(cpu_before);
    let total = sent.load(Ordering::Relaxed);
    let h = histogram.lock().expect("histogram");
    ProduceResult {
        rate: total as f64 / elapsed,
        p50_us: h.value_at_quantile(0.50),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        broker_cpu_us: cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
        sent: total,
    }
}

/// Sends `rounds` lone messages to a 1-queue `topic` on the master, 20 ms apart; for each,
/// the time from its acknowledgement until the master's max offset (what consumers can
/// pull) covers it, found by asking back to back. Microseconds: (p50, p99, max).
async fn visibility(
    group: &Group,
    options: &Options,
    topic: &str,
    rounds: usize,
) -> (u64, u64, u64) {
    use remoting::header::offset::{GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader};
    let (leader, _) = group.leader(WAIT).await.expect("leader");
    let addr = group.members[leader].addr();
    let client = RemotingClient::new(ClientConfig::default());
    let body = vec![b'x'; options.body_bytes];
    let max_offset = || {
        let mut ask = RemotingCommand::request(request::GET_MAX_OFFSET).with_header(
            &GetMaxOffsetRequestHeader {
                topic: topic.to_owned(),
                queue_id: 0,
                committed: true,
            },
        );
        ask.opaque = remoting::command::next_opaque();
        let (client, addr) = (client.clone(), addr.clone());
        async move {
            let answer = client
                .invoke(&addr, ask, CALL_TIMEOUT)
                .await
                .expect("max offset");
            answer
                .decode_header::<GetMaxOffsetResponseHeader>()
                .expect("max offset header")
                .offset
        }
    };
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for _ in 0..rounds {
        let mut send = send_request(topic, 0, &body);
        send.opaque = remoting::command::next_opaque();
        let answer = client
            .invoke(&addr, send, CALL_TIMEOUT)
            .await
            .expect("send");
        assert_eq!(answer.code, response::SUCCESS, "send: {:?}", answer.remark);
        let acked = Instant::now();
        let header: remoting::header::send::SendMessageResponseHeader =
            answer.decode_header().expect("send answer");
        // Bounded by the call timeout of each ask and the wait below.
        while max_offset().await <= header.queue_offset {
            assert!(acked.elapsed() < WAIT, "a message never became visible");
        }
        let _ = h.record(acked.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

/// Pulls every queue of `topic` from offset 0 to its end from the master; messages/s.
async fn consume(group: &Group, options: &Options, topic: &str) -> (u64, f64) {
    let (leader, _) = group.leader(WAIT).await.expect("leader");
    let addr = group.members[leader].addr();
    let client = RemotingClient::new(ClientConfig::default());
    let consumed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut pullers = Vec::new();
    for queue_id in 0..options.queues {
        pullers.push(tokio::spawn(support::drain_queue(
            client.clone(),
            addr.clone(),
            topic.to_owned(),
            queue_id,
            Arc::clone(&consumed),
            CALL_TIMEOUT,
        )));
    }
    for puller in pullers {
        puller.await.expect("puller");
    }
    let total = consumed.load(Ordering::Relaxed);
    (total, total as f64 / started.elapsed().as_secs_f64())
}

#[derive(Debug, Clone, Copy)]
struct Failover {
    /// kill -9 of the leader → first acknowledged send on the new master.
    first_send: Duration,
    /// kill -9 of the leader → the name server lists the new master.
    registered: Duration,
}

/// Kills the leader while a prober sends to every live member in turn; measures until one
/// acknowledges, and until the name server lists it. Restarts the killed member and waits
/// until it caught up, so every round starts with three healthy members.
async fn failover_once(group: &mut Group, topic: &str, body: &[u8]) -> Failover {
    let (leader, _) = group.leader(WAIT).await.expect("leader");
    let old = group.members[leader].addr();
    // Warm connections to the others so the probe measures the group, not TCP set-up.
    for member in &group.members {
        let _ = group.client.connection(&member.addr()).await;
    }
    let killed_at = Instant::now();
    group.members[leader].kill();
    let others: Vec<String> = group
        .members
        .iter()
        .filter(|m| m.child.is_some())
        .map(Member::addr)
        .collect();
    let mut first_send = None;
    let mut registered = None;
    let deadline = killed_at + WAIT;
    while (first_send.is_none() || registered.is_none()) && Instant::now() < deadline {
        if first_send.is_none() {
            for addr in &others {
                let mut request = send_request(topic, 0, body);
                request.opaque = remoting::command::next_opaque();
                let answer = group
                    .client
                    .invoke(addr, request, Duration::from_secs(2))
                    .await;
                if answer.is_ok_and(|a| a.code == response::SUCCESS) {
                    first_send = Some(killed_at.elapsed());
                    break;
                }
            }
        }
        if registered.is_none() {
            if let Some(master) = group.registered_master().await {
                if master != old {
                    registered = Some(killed_at.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let result = Failover {
        first_send: first_send.expect("a new master took a send"),
        registered: registered.expect("the name server listed the new master"),
    };
    group.members[leader].spawn();
    let (_, status) = group.leader(WAIT).await.expect("leader");
    let commit = status["commitIndex"].as_u64().unwrap_or(0);
    let restarted = group.members[leader].addr();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let applied = group
            .status(&restarted)
            .await
            .and_then(|s| s["appliedIndex"].as_u64());
        if applied.is_some_and(|a| a >= commit) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    result
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn median_result(results: &[ProduceResult]) -> ProduceResult {
    ProduceResult {
        rate: median(results.iter().map(|r| r.rate).collect()),
        p50_us: median(results.iter().map(|r| r.p50_us).collect()),
        p99_us: median(results.iter().map(|r| r.p99_us).collect()),
        p999_us: median(results.iter().map(|r| r.p999_us).collect()),
        broker_cpu_us: median(results.iter().map(|r| r.broker_cpu_us).collect()),
        sent: median(results.iter().map(|r| r.sent).collect()),
    }
}

fn line(label: &str, r: &ProduceResult) -> String {
    format!(
        "{label:<34} {:>9.0} msg/s  p50 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  {:>5.1} us broker CPU/msg",
        r.rate, r.p50_us, r.p99_us, r.p999_us, r.broker_cpu_us
    )
}

async fn produce_series(
    group: &Group,
    options: &Options,
    label: &str,
    topic: &str,
    producers: usize,
    rate: Option<f64>,
    batch: usize,
) -> ProduceResult {
    let mut results = Vec::new();
    for run in 1..=options.runs {
        let result = produce(group, options, topic, producers, rate, batch).await;
        println!("  run {run}: {}", line(label, &result));
        results.push(result);
    }
    median_result(&results)
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let namesrv = namesrv::server::start(
        namesrv::config::NamesrvConfig {
            listen_port: 0,
            kv_config_path: std::env::temp_dir()
                .join(format!("rmq-bench-kvConfig-{}.json", std::process::id())),
            ..Default::default()
        },
        "127.0.0.1",
    )
    .await
    .expect("name server");
    let ns = namesrv.local_addr().to_string();
    let mut summary = Vec::new();

    let mut group = Group::start(&ns, false, &options.settings).await;
    let topic = "BenchTopic";
    group.create_topic(topic, options.queues).await;
    // Warm-up: connections, page cache, allocator.
    let _ = produce(
        &group,
        &Options {
            seconds: 1,
            ..options.clone()
        },
        topic,
        16,
        None,
        1,
    )
    .await;
    // `--set flushDiskType=...` overrides the first group's ASYNC_FLUSH; say which ran.
    let flush = options
        .settings
        .iter()
        .rev()
        .find_map(|setting| setting.strip_prefix("flushDiskType="))
        .unwrap_or("ASYNC_FLUSH");
    let mut peak: f64 = 0.0;
    for &producers in &options.producers {
        let label = format!("{flush}, {producers} producers");
        let result = produce_series(&group, &options, &label, topic, producers, None, 1).await;
        peak = peak.max(result.rate);
        summary.push(line(&label, &result));
    }
    let half = peak / 2.0;
    let label = format!("{flush}, {half:.0} msg/s offered");
    let result = produce_series(
        &group,
        &options,
        &label,
        topic,
        options.paced_producers,
        Some(half),
        1,
    )
    .await;
    summary.push(line(&label, &result));
    if options.batch > 1 {
        let producers = 16;
        let label = format!("{flush}, {producers} x batches of {}", options.batch);
        let result = produce_series(
            &group,
            &options,
            &label,
            topic,
            producers,
            None,
            options.batch,
        )
        .await;
        summary.push(line(&label, &result));
    }
    let visible_topic = "VisibilityTopic";
    group.create_topic(visible_topic, 1).await;
    let (p50, p99, max) = visibility(&group, &options, visible_topic, 200).await;
    summary.push(format!(
        "visible after acknowledgement (200 lone sends): p50 {p50} us  p99 {p99} us  max {max} us"
    ));
    let mut consumed = Vec::new();
    for _ in 0..options.runs {
        consumed.push(consume(&group, &options, topic).await);
    }
    let (count, rate) = (
        consumed[0].0,
        median(consumed.iter().map(|c| c.1).collect()),
    );
    summary.push(format!(
        "consume (pull 32, 16 queues from 0)   {rate:>9.0} msg/s  ({count} messages)"
    ));

    if !options.skip_failover {
        let failover_topic = "FailoverTopic";
        group.create_topic(failover_topic, 1).await;
        let body = vec![b'x'; options.body_bytes];
        let mut rounds = Vec::new();
        for round in 1..=options.failovers {
            let f = failover_once(&mut group, failover_topic, &body).await;
            println!(
                "  failover {round}: first acknowledged send after {:?}, name server lists the new master after {:?}",
                f.first_send, f.registered
            );
            rounds.push(f);
        }
        summary.push(format!(
            "failover (kill -9 leader), median of {}: first acknowledged send on the new master {:?}, \
             name server lists it {:?}",
            rounds.len(),
            median(rounds.iter().map(|f| f.first_send).collect()),
            median(rounds.iter().map(|f| f.registered).collect()),
        ));
    }
    drop(group);

    if !options.skip_sync {
        let group = Group::start(&ns, true, &options.settings).await;
        group.create_topic(topic, options.queues).await;
        for producers in [16usize, 64] {
            let label = format!("SYNC_FLUSH, {producers} producers");
            let result = produce_series(&group, &options, &label, topic, producers, None, 1).await;
            summary.push(line(&label, &result));
        }
        if options.batch > 1 {
            let label = format!("SYNC_FLUSH, 16 x batches of {}", options.batch);
            let result =
                produce_series(&group, &options, &label, topic, 16, None, options.batch).await;
            summary.push(line(&label, &result));
        }
    }

    println!();
    println!(
        "medians of {} runs of {} s, {} B bodies, {} queues, 3 mqbroker processes + load on this machine:",
        options.runs, options.seconds, options.body_bytes, options.queues
    );
    for line in summary {
        println!("  {line}");
    }
    namesrv.shutdown().await;
}
