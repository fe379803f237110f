//! `mqbroker -c broker.conf [-n namesrv]`: RocketMQ's broker command.

// Per message the broker makes many small, short-lived allocations across threads (frames,
// headers, properties); mimalloc serves them with about a fifth less CPU per message than
// glibc's malloc (`cargo bench -p broker --bench throughput`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use broker::config::BrokerConfig;
use clap::Parser;
use conf::Setting;
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(name = "mqbroker", about = "RocketMQ-compatible broker")]
struct Args {
    /// Config file in RocketMQ's key=value form (broker.conf).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server address(es), `host:port[;host:port...]`; overrides namesrvAddr.
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
}

fn main() -> anyhow::Result<()> {
    launch::init_logging("info", launch::LogTo::Stdout);
    let args = Args::parse();
    let mut config = match &args.config_file {
        Some(path) => {
            let (config, unknown) =
                BrokerConfig::load(path).with_context(|| format!("loading {}", path.display()))?;
            for setting in unknown {
                warn!(key = %setting.key, line = setting.line, "unknown broker setting ignored");
            }
            config
        }
        None => BrokerConfig::default(),
    };
    if let Some(addrs) = args.namesrv_addr {
        let setting = Setting {
            key: "namesrvAddr".into(),
            value: addrs,
            line: 0,
        };
        config.apply(&setting).context("-n")?;
    }
    if config.namesrv_addrs.is_empty() {
        warn!("no name server configured (namesrvAddr or -n): clients will not find this broker");
    }
    let runtime = launch::runtime("broker").context("starting the runtime")?;
    runtime.block_on(async {
        let running = broker::start(config).await.context("starting the broker")?;
        let failure = tokio::select! {
            _ = launch::shutdown_signal() => None,
            reason = running.failed() => Some(reason),
        };
        match failure {
            None => {
                info!("signal received; shutting down");
                // A group master hands leadership to a follower before it stops.
                running.shutdown().await;
                Ok(())
            }
            Some(reason) => {
                error!(%reason, "this member can no longer follow its group: leaving the \
                    routes and exiting (non-zero) for its supervisor to restart it");
                running.stop(false).await;
                Err(anyhow::anyhow!(
                    "stopped following the broker group: {reason}"
                ))
            }
        }
    })
}
