//! Drives the third-party Rust RocketMQ client (`rocketmq-client-rust` 1.0.0, a port of the
//! Java client) unmodified, for this project's compatibility tests. Every outcome is a JSON
//! line on stdout; the client's logs go to stderr (`RUST_LOG`, `warn` by default).
//!
//! - `args`: the command line.
//! - `produce`: `DefaultMQProducer`, single sends and a batch.
//! - `consume`: `DefaultMQPushConsumer` and `DefaultLitePullConsumer` in a consumer group,
//!   by tag expression or SQL92.
//! - `transaction`: `TransactionMQProducer` with a local transaction and check listener.
//! - `request`: request-reply, `DefaultMQProducer::request` and a replier built with
//!   `MessageUtil::create_reply_message`.
//! - `report`: the JSON lines.

mod args;
mod consume;
mod produce;
mod report;
mod request;
mod transaction;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rocketmq_client_rust::{ClientRuntime, ClientRuntimeConfig};
use rocketmq_observability::TelemetryRuntimeGuard;
use rocketmq_runtime::RuntimeOwner;

/// How long the client's runtime may take to stop its tasks at exit.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("rust-client: {e:#}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: args::Command) -> Result<()> {
    // The client spawns its tasks on a runtime the application owns and hands in.
    let owner = RuntimeOwner::new().context("creating the client runtime")?;
    let telemetry = TelemetryRuntimeGuard::noop();
    let client_runtime = ClientRuntime::try_new(
        owner.root_context().component("rust-client"),
        ClientRuntimeConfig::default(),
        telemetry.handle(),
    )
    .context("creating the client")?;
    let outcome = owner.block_on(async {
        let outcome = match &command {
            args::Command::Produce(p) => produce::run(client_runtime.clone(), p).await,
            args::Command::Consume(c) => consume::push(client_runtime.clone(), c).await,
            args::Command::Pull(c) => consume::pull(client_runtime.clone(), c).await,
            args::Command::Transaction(t) => transaction::run(client_runtime.clone(), t).await,
            args::Command::Request(r) => request::request(client_runtime.clone(), r).await,
            args::Command::Reply(c) => request::reply(client_runtime.clone(), c).await,
        };
        let report = client_runtime.shutdown().await;
        if !report.is_healthy() {
            tracing::warn!(report = %report.to_json(), "client shutdown was not clean");
        }
        outcome
    });
    if let Err(e) = owner.shutdown_runtime_blocking_with_timeout(RUNTIME_SHUTDOWN_TIMEOUT) {
        tracing::warn!(error = %e, "runtime shutdown");
    }
    outcome
}
