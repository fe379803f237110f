//! What every command of this project does around its work, written once: logging set up
//! from `RUST_LOG` (or a default level), a multi-threaded tokio runtime, and, for servers,
//! waiting for the signal to stop.
//!
//! Servers log to stdout at `info`; the tools (`mqadmin`, `mq`) keep stdout for their
//! output and log to stderr at `warn`.

use std::io;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    Stdout,
    Stderr,
}

/// Installs the global log subscriber: `RUST_LOG` when set, `default_level` otherwise.
pub fn init_logging(default_level: &str, to: LogTo) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match to {
        LogTo::Stdout => builder.init(),
        LogTo::Stderr => builder.with_writer(io::stderr).init(),
    }
}

/// A multi-threaded runtime with every driver enabled, its threads named `thread_name`.
pub fn runtime(thread_name: &str) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
}

/// Resolves on SIGTERM (what supervisors and `kill` send) or ctrl-c; on ctrl-c alone where
/// SIGTERM cannot be watched.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
