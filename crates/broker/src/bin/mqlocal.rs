//! `mqlocal`: a name server and a broker in one process, data under `./data`; ctrl-c stops
//! both cleanly.

use std::path::PathBuf;

use anyhow::Context;
use broker::local::{start_local, LocalOptions};
use clap::Parser;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "mqlocal",
    about = "Name server and broker in one process, for trying things out"
)]
struct Args {
    /// Address to bind and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 9876)]
    namesrv_port: u16,
    #[arg(long, default_value_t = 10911)]
    broker_port: u16,
    /// Where the brokers keep their data.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let options = LocalOptions {
        host: args.host,
        namesrv_port: args.namesrv_port,
        broker_port: args.broker_port,
        data_dir: args.data_dir,
        ..LocalOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let local = start_local(&options).await.context("starting mqlocal")?;
        let namesrv = local.namesrv_addr();
        let brokers: Vec<&str> = local.brokers.iter().map(|b| b.broker_addr()).collect();
        println!();
        println!("  name server : {namesrv}");
        println!("  broker(s)   : {}", brokers.join(", "));
        println!("  data        : {}", options.data_dir.display());
        println!();
        println!("  Point any RocketMQ client at the name server, e.g.:");
        println!("    Java : producer.setNamesrvAddr(\"{namesrv}\")");
        println!("    C++/Python (pip install rocketmq): Producer('PG').set_namesrv_addr('{namesrv}')");
        println!("    Java tools: NAMESRV_ADDR={namesrv} sh bin/tools.sh org.apache.rocketmq.example.quickstart.Producer");
        println!();
        println!("  Topics are created on first send (autoCreateTopicEnable=true). Ctrl-C stops.");
        println!();
        tokio::signal::ctrl_c().await.context("waiting for ctrl-c")?;
        info!("ctrl-c: shutting down");
        local.shutdown().await;
        Ok(())
    })
}
