//! What recording the Prometheus metrics costs per send, in nanoseconds, without the noise
//! of a whole broker: the calls the send path makes with `metricsExporterType=PROM` (the
//! message kind read from the properties, the put counted under its topic, the request's
//! clock read twice and its latency recorded), timed on 1 and on 2 threads at once (the broker's two workers
//! contending for the same series).
//!
//! ```text
//! cargo bench -p broker --bench metrics_cost -- [--sends 2000000] [--topics 16] [--runs 5]
//! ```
//!
//! Compare the figure with the CPU per message of `--bench throughput` (about 22 us here):
//! the recording's share of it is what metrics can cost at most on the produce path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::instruments::{BrokerMetrics, MessageKind};
use broker::metadata::attributes;
use message::properties;
use remoting::code::{request, response};

struct Options {
    sends: u64,
    topics: usize,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options {
        sends: 2_000_000,
        topics: 16,
        runs: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--sends", Some(v)) => options.sends = v.max(1),
            ("--topics", Some(v)) => options.topics = (v as usize).max(1),
            ("--runs", Some(v)) => options.runs = (v as usize).max(1),
            // `cargo bench` passes `--bench`; anything else unknown is ignored the same way.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

/// Records `sends` sends spread over `topics`, as the send path does; the time it took.
fn record_sends(metrics: &BrokerMetrics, topics: &[String], props: &str, sends: u64) -> Duration {
    let started = Instant::now();
    for i in 0..sends {
        // The request's clock is read when it arrives and when it is answered.
        let arrived = Instant::now();
        let topic = &topics[i as usize % topics.len()];
        let kind = MessageKind::from_type_name(attributes::message_type_of(props));
        metrics.messages_put(topic, kind, 1, 1_024);
        metrics.rpc.record(
            "remoting",
            request::SEND_MESSAGE_V2,
            Some(response::SUCCESS),
            false,
            arrived.elapsed(),
        );
    }
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let options = options();
    let topics: Vec<String> = (0..options.topics)
        .map(|i| format!("BenchTopic{i}"))
        .collect();
    // What the bench producer and RocketMQ's Java producer put in every message.
    let props = properties::encode([
        ("TAGS", "TagA"),
        ("KEYS", "bench-key"),
        ("UNIQ_KEY", "7F0000010A2B18B4AAC2672D1E4F0000"),
        ("WAIT", "true"),
    ]);
    let metrics = Arc::new(BrokerMetrics::new(true));
    // The series exist before timing, as they do after a broker's first seconds.
    record_sends(&metrics, &topics, &props, options.topics as u64);

    let mut one_thread = Vec::new();
    let mut two_threads = Vec::new();
    for _ in 0..options.runs {
        let took = record_sends(&metrics, &topics, &props, options.sends);
        one_thread.push(took.as_nanos() as f64 / options.sends as f64);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (metrics, topics, props) =
                    (Arc::clone(&metrics), topics.clone(), props.clone());
                let sends = options.sends;
                std::thread::spawn(move || record_sends(&metrics, &topics, &props, sends))
            })
            .collect();
        let slowest = workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .max()
            .unwrap_or_default();
        // Two threads did 2 x sends in `slowest`: the cost of one send as the broker's
        // two workers see it, contention included.
        two_threads.push(slowest.as_nanos() as f64 / options.sends as f64);
    }
    println!(
        "metrics recorded per send ({} topics, median of {} runs): {:.0} ns on one thread, \
         {:.0} ns per thread with two threads recording at once",
        options.topics,
        options.runs,
        median(one_thread),
        median(two_threads)
    );
}
