//! Requests per second of small request/response exchanges over loopback.
//!
//! ```text
//! cargo run --release -p remoting --example echo_bench -- [--connections 1] [--callers 64]
//!     [--seconds 5] [--runs 5] [--threads 2] [--body-bytes 64] [--binary] [--in-process]
//! ```
//! The server runs in a child process (this binary with `--serve ADDR`), the callers in
//! this one, each with `--threads` tokio workers. Each caller loops `invoke` on one of the
//! `--connections` connections; the request is a typical small header (topic, queue id,
//! group) with a `--body-bytes` body, the response a SUCCESS with two ext fields.
//!
//! Printed per run and as the median: requests/s, and the server's and the callers' CPU
//! time per request. On a shared machine the wall-clock rate depends on what else runs
//! (here: the callers themselves, on the same cores); the server's CPU per request is what
//! the transport costs, and 2 s / that is the rate two dedicated cores would sustain.
//! `--in-process` runs the server in this process instead (CPU then counts both sides).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use remoting::client::{ClientConfig, RemotingClient};
use remoting::command::{RemotingCommand, SerializeType};
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::server::{RemotingServer, ServerConfig};

const BENCH_CODE: i32 = 9_000;

struct Echo;

impl RequestProcessor for Echo {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        Some(
            RemotingCommand::success_to(&request)
                .with_ext_field("queueId", request.ext_field("queueId").unwrap_or("0"))
                .with_ext_field("queueOffset", "12345"),
        )
    }
}

struct Options {
    connections: usize,
    callers: usize,
    seconds: u64,
    runs: usize,
    threads: usize,
    body_bytes: usize,
    binary: bool,
    in_process: bool,
    serve: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        connections: 1,
        callers: 64,
        seconds: 5,
        runs: 5,
        threads: 2,
        body_bytes: 64,
        binary: false,
        in_process: false,
        serve: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| text.parse::<usize>().map_err(|e| format!("{text}: {e}"));
        match flag.as_str() {
            "--connections" => options.connections = number(value()?)?.max(1),
            "--callers" => options.callers = number(value()?)?.max(1),
            "--seconds" => options.seconds = number(value()?)?.max(1) as u64,
            "--runs" => options.runs = number(value()?)?.max(1),
            "--threads" => options.threads = number(value()?)?.max(1),
            "--body-bytes" => options.body_bytes = number(value()?)?,
            "--binary" => options.binary = true,
            "--in-process" => options.in_process = true,
            "--serve" => options.serve = Some(value()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(options));
}

/// Where the server runs and how to read its CPU time.
enum ServerSide {
    Child(Child),
    InProcess(RemotingServer),
}

impl ServerSide {
    fn cpu_seconds(&self) -> f64 {
        match self {
            ServerSide::Child(child) => cpu_seconds(&format!("/proc/{}/stat", child.id())),
            ServerSide::InProcess(_) => 0.0,
        }
    }
}

async fn run(options: Options) {
    if let Some(addr) = &options.serve {
        let server = RemotingServer::bind(addr.as_str(), ServerConfig::default(), Arc::new(Echo))
            .await
            .expect("bind");
        println!("serving on {}", server.local_addr());
        // Serve until the parent closes our stdin (or kills us).
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
        server.shutdown(Duration::from_secs(1)).await;
        return;
    }
    let (server, addr) = if options.in_process {
        let server = RemotingServer::bind("127.0.0.1:0", ServerConfig::default(), Arc::new(Echo))
            .await
            .expect("bind");
        let addr = server.local_addr().to_string();
        (ServerSide::InProcess(server), addr)
    } else {
        let (child, addr) = spawn_server(options.threads);
        (ServerSide::Child(child), addr)
    };
    println!(
        "connections={} callers={} body={}B header={} threads={} seconds/run={} server={}",
        options.connections,
        options.callers,
        options.body_bytes,
        if options.binary { "binary" } else { "json" },
        options.threads,
        options.seconds,
        if options.in_process {
            "in-process"
        } else {
            "child process"
        },
    );
    // One client per connection: a client keeps one connection per address.
    let clients: Vec<RemotingClient> = (0..options.connections)
        .map(|_| RemotingClient::new(ClientConfig::default()))
        .collect();
    let body = bytes::Bytes::from(vec![b'm'; options.body_bytes]);
    let mut rates = Vec::new();
    let mut server_costs = Vec::new();
    let mut caller_costs = Vec::new();
    // A short warm-up run, not counted.
    measure(&clients, &addr, &options, &body, Duration::from_secs(1)).await;
    for run in 0..options.runs {
        let (server_before, callers_before) =
            (server.cpu_seconds(), cpu_seconds("/proc/self/stat"));
        let (rate, requests) = measure(
            &clients,
            &addr,
            &options,
            &body,
            Duration::from_secs(options.seconds),
        )
        .await;
        let per_request_us = |seconds: f64| seconds * 1e6 / requests.max(1) as f64;
        let server_us = per_request_us(server.cpu_seconds() - server_before);
        let callers_us = per_request_us(cpu_seconds("/proc/self/stat") - callers_before);
        println!(
            "run {}: {:.0} requests/s; CPU per request: server {:.2} us, callers {:.2} us",
            run + 1,
            rate,
            server_us,
            callers_us
        );
        rates.push(rate);
        server_costs.push(server_us);
        caller_costs.push(callers_us);
    }
    let (rate, server_us, callers_us) = (median(rates), median(server_costs), median(caller_costs));
    print!("median: {rate:.0} requests/s; CPU per request: server {server_us:.2} us, callers {callers_us:.2} us");
    if server_us > 0.0 {
        println!(
            " => the server alone sustains ~{:.0} requests/s on 2 dedicated cores",
            2e6 / server_us
        );
    } else {
        println!(
            " => both sides together sustain ~{:.0} requests/s on 2 dedicated cores",
            2e6 / callers_us
        );
    }
    match server {
        ServerSide::InProcess(server) => server.shutdown(Duration::from_secs(1)).await,
        ServerSide::Child(mut child) => {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

fn spawn_server(threads: usize) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--serve", "127.0.0.1:0", "--threads", &threads.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let stdout = child.stdout.take().expect("server stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("server address");
    let addr = line
        .trim()
        .strip_prefix("serving on ")
        .expect("`serving on ADDR`")
        .to_owned();
    (child, addr)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn measure(
    clients: &[RemotingClient],
    addr: &str,
    options: &Options,
    body: &bytes::Bytes,
    duration: Duration,
) -> (f64, u64) {
    let completed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let callers: Vec<_> = (0..options.callers)
        .map(|caller| {
            let client = clients[caller % clients.len()].clone();
            let addr = addr.to_owned();
            let (completed, failed, stop) = (completed.clone(), failed.clone(), stop.clone());
            let body = body.clone();
            let serialize_type = if options.binary {
                SerializeType::RocketMq
            } else {
                SerializeType::Json
            };
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = RemotingCommand::request(BENCH_CODE)
                        .with_ext_field("topic", "BenchmarkTopic")
                        .with_ext_field("queueId", (caller % 8).to_string())
                        .with_ext_field("producerGroup", "bench_group")
                        .with_body(body.clone())
                        .with_serialize_type(serialize_type);
                    match client.invoke(&addr, request, Duration::from_secs(5)).await {
                        Ok(_) => completed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    let done = completed.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        let _ = caller.await;
    }
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        println!("  ({failures} failed requests)");
    }
    (
        done as f64 / elapsed.as_secs_f64(),
        completed.load(Ordering::Relaxed),
    )
}

/// User + system CPU seconds of a process, from its `/proc/<pid>/stat` (Linux; 0 elsewhere).
fn cpu_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    (ticks(11) + ticks(12)) / 100.0
}
