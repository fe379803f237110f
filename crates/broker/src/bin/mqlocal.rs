//! `mqlocal`: a name server and a 3-node broker group (DLedger mode) in one process, data
//! under `./data`; `--standalone` for one standalone broker instead. Ctrl-C stops all.

// The same allocator as mqbroker (see there why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use broker::local::{start_local, LocalOptions, GROUP_NAME, STANDALONE_PORT};
use clap::Parser;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "mqlocal",
    about = "A name server and a 3-node broker group in one process, for trying things out"
)]
struct Args {
    /// Address to bind and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 9876)]
    namesrv_port: u16,
    /// Client port of the first member (the others: +10, +20), or of the standalone
    /// broker (default 10911).
    #[arg(long)]
    broker_port: Option<u16>,
    /// Raft port of the first member (the others: +1, +2).
    #[arg(long, default_value_t = 40911)]
    raft_port: u16,
    /// gRPC port (RocketMQ 5 clients) of the first broker (the others: +1, +2).
    #[arg(long, default_value_t = 8081)]
    grpc_port: u16,
    /// One standalone broker instead of a replicated group.
    #[arg(long)]
    standalone: bool,
    /// Where the brokers keep their data.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    launch::init_logging("warn", launch::LogTo::Stdout);
    let args = Args::parse();
    let defaults = LocalOptions::default();
    let options = LocalOptions {
        host: args.host,
        namesrv_port: args.namesrv_port,
        broker_port: args.broker_port.unwrap_or(if args.standalone {
            STANDALONE_PORT
        } else {
            defaults.broker_port
        }),
        raft_port: args.raft_port,
        grpc_port: args.grpc_port,
        standalone: args.standalone,
        data_dir: args.data_dir,
    };
    let runtime = launch::runtime("mqlocal").context("starting the runtime")?;
    runtime.block_on(async {
        let local = start_local(&options).await.context("starting mqlocal")?;
        let ns = local.namesrv_addr();
        println!();
        println!("  name server  : {ns}");
        if options.standalone {
            for broker in &local.brokers {
                println!("  broker       : {} (standalone)", broker.broker_addr());
            }
        } else {
            println!(
                "  broker group : {GROUP_NAME}, {} members (DLedger mode: the CommitLog is a raft log)",
                local.brokers.len()
            );
            for broker in &local.brokers {
                let config = &broker.context().config;
                println!(
                    "    {}  client {}  raft {}  data {}",
                    config.dledger_self_id,
                    broker.broker_addr(),
                    config
                        .dledger_peers
                        .iter()
                        .find(|p| p.id == config.dledger_self_id)
                        .map_or("?", |p| p.addr.as_str()),
                    config.store.store_path_root_dir.display()
                );
            }
            match local.wait_for_master(Duration::from_secs(15)).await {
                Some(master) => println!(
                    "  master       : {} ({}), elected",
                    master.broker_addr(),
                    master.context().config.dledger_self_id
                ),
                None => println!("  master       : none elected yet (see the log)"),
            }
        }
        println!();
        println!("  Produce and consume (in another terminal):");
        println!("    cargo run --release --bin mq -- produce -n {ns} -t Demo -b hello -c 10");
        println!("    cargo run --release --bin mq -- consume -n {ns} -t Demo --from first -c 10");
        if !options.standalone {
            println!("  Look at the group, move its leadership:");
            println!("    cargo run --release --bin mqadmin -- getBrokerGroup -n {ns} -b {GROUP_NAME}");
            println!("    cargo run --release --bin mqadmin -- transferLeader -n {ns} -b {GROUP_NAME} -i n1");
        }
        println!("  Any RocketMQ client works too: Java producer.setNamesrvAddr(\"{ns}\"),");
        println!("    C++/Python (pip install rocketmq): Producer('PG').set_namesrv_addr('{ns}')");
        println!();
        println!("  Topics are created on first send (autoCreateTopicEnable=true). Ctrl-C stops.");
        println!();
        launch::shutdown_signal().await;
        info!("shutting down");
        local.shutdown().await;
        Ok(())
    })
}
