//! `mqdashboard [-c dashboard.properties] [-n namesrv] [-p port]`: the web dashboard.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dashboard::config::split_addrs;
use dashboard::DashboardConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "mqdashboard",
    about = "Web dashboard: clusters, broker groups, topics, consumer groups, messages"
)]
struct Args {
    /// Settings in key=value form, under RocketMQ Dashboard's keys (server.port,
    /// rocketmq.config.namesrvAddrs, rocketmq.config.aclEnabled, ...).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name servers, `host:port;host:port` (else rocketmq.config.namesrvAddrs, else
    /// NAMESRV_ADDR).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv: Option<String>,
    /// Port to serve on (else server.port, default 8080).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Address to listen on (else server.address, default every interface).
    #[arg(long)]
    address: Option<String>,
}

fn main() -> anyhow::Result<()> {
    launch::init_logging("info", launch::LogTo::Stdout);
    let args = Args::parse();
    let mut config = DashboardConfig::default();
    if let Ok(addrs) = std::env::var("NAMESRV_ADDR") {
        config.namesrv_addrs = split_addrs(&addrs);
    }
    if let Some(path) = &args.config_file {
        let settings =
            conf::read_file(path).with_context(|| format!("loading {}", path.display()))?;
        let unknown = config
            .apply(&settings)
            .with_context(|| format!("loading {}", path.display()))?;
        for s in unknown {
            warn!(key = %s.key, line = s.line, "unknown dashboard setting ignored");
        }
    }
    if let Some(namesrv) = &args.namesrv {
        config.namesrv_addrs = split_addrs(namesrv);
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(address) = args.address {
        config.address = address;
    }
    config.validate()?;
    let runtime = launch::runtime("dashboard").context("starting the runtime")?;
    runtime.block_on(async {
        let listener = dashboard::bind(&config).await?;
        let local = listener.local_addr().context("the listening address")?;
        info!(addr = %local, namesrv = %config.namesrv(), acl = config.acl_enabled,
            "The dashboard boot success.");
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            launch::shutdown_signal().await;
            info!("shutting down");
            stop.cancel();
        });
        dashboard::serve(listener, config, shutdown).await?;
        Ok(())
    })
}
