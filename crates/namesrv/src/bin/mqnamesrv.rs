//! `mqnamesrv [-c namesrv.conf]`: RocketMQ's name server command.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use namesrv::config::NamesrvConfig;
use namesrv::kvconfig::KvConfig;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "mqnamesrv",
    about = "Name server: broker registry and topic routes"
)]
struct Args {
    /// Config file in RocketMQ's key=value form (listenPort, ...).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
}

fn main() -> anyhow::Result<()> {
    launch::init_logging("info", launch::LogTo::Stdout);
    let args = Args::parse();
    let config = match &args.config_file {
        Some(path) => {
            let (config, unknown) =
                NamesrvConfig::load(path).with_context(|| format!("loading {}", path.display()))?;
            for s in unknown {
                warn!(key = %s.key, line = s.line, "unknown name server setting ignored");
            }
            config
        }
        None => NamesrvConfig::default(),
    };
    // A KV config that cannot be read stops start-up, as in RocketMQ, before the port opens.
    let kv = KvConfig::load(&config.kv_config_path).context("loading the KV config")?;
    info!(path = %kv.path().display(), entries = kv.len(), "KV config loaded");
    let runtime = launch::runtime("namesrv").context("starting the runtime")?;
    runtime.block_on(async {
        let ns = namesrv::server::start_with_kv(config, kv, &args.host)
            .await
            .context("binding the name server port")?;
        info!(addr = %ns.local_addr(), "The Name Server boot success.");
        launch::shutdown_signal().await;
        info!("shutting down");
        ns.shutdown().await;
        Ok(())
    })
}
