//! Publishes to a JetStream stream as `mq bench produce` sends to a RocketMQ topic: one
//! connection, `--concurrency` publishers with one acknowledgement in flight each, bodies of
//! `--size` bytes, for `--duration` seconds. The stream is created fresh (file storage,
//! `--replicas` copies) so every run starts from an empty stream. Prints one JSON line with
//! the same fields as `mq --json bench produce`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, stream};
use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    server: String,
    #[arg(long, default_value = "BENCH")]
    stream: String,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    #[arg(short = 'w', long, default_value_t = 16)]
    concurrency: usize,
    #[arg(short = 's', long, default_value_t = 1024)]
    size: usize,
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.size == 0 {
        bail!("--concurrency and --size must be > 0");
    }
    let client = async_nats::connect(&args.server)
        .await
        .with_context(|| format!("connect to {}", args.server))?;
    let js = jetstream::new(client);
    // A stream left by an earlier run would make this one pay for its size.
    let _ = js.delete_stream(&args.stream).await;
    let config = stream::Config {
        name: args.stream.clone(),
        subjects: vec![format!("{}.>", args.stream.to_lowercase())],
        storage: stream::StorageType::File,
        num_replicas: args.replicas,
        ..Default::default()
    };
    // A cluster just started answers once its JetStream meta group has a leader.
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        match js.create_stream(config.clone()).await {
            Ok(_) => break,
            Err(e) if Instant::now() < ready_by => {
                eprintln!("nats-bench: stream not created yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("create the stream"),
        }
    }

    let subject = format!("{}.load", args.stream.to_lowercase());
    let body = bytes::Bytes::from(vec![b'x'; args.size]);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let latency_us = Arc::new(Mutex::new(empty.clone()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut publishers = Vec::new();
    for _ in 0..args.concurrency {
        let (js, subject, body, mut local) =
            (js.clone(), subject.clone(), body.clone(), empty.clone());
        let (ok, failed, stop, latency_us) = (
            Arc::clone(&ok),
            Arc::clone(&failed),
            Arc::clone(&stop),
            Arc::clone(&latency_us),
        );
        publishers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let sent_at = Instant::now();
                let acked = match js.publish(subject.clone(), body.clone()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if acked {
                    ok.fetch_add(1, Ordering::Relaxed);
                    let micros = sent_at.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                    let _ = local.record(micros);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Ok(mut all) = latency_us.lock() {
                let _ = all.add(&local);
            }
        }));
    }
    for publisher in publishers {
        let _ = publisher.await;
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let ok = ok.load(Ordering::Relaxed);
    let histogram = latency_us.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "kind": "nats-publish",
            "messages": ok,
            "errors": failed.load(Ordering::Relaxed),
            "elapsed_s": seconds,
            "msgs_per_s": ok as f64 / seconds,
            "send_latency_ms": {
                "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "p999": ms(0.999),
                "max": histogram.max() as f64 / 1000.0, "mean": histogram.mean() / 1000.0,
            }
        })
    );
    let _ = js.delete_stream(&args.stream).await;
    Ok(())
}
