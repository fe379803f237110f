//! `wipeWritePerm`, `addWritePerm`, `getBrokerConfig` and `updateBrokerConfig`: a broker's
//! write permission on the name servers and its running config.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Args;
use client::Admin;
use serde_json::json;

use super::print_json;

#[derive(Args)]
pub struct WritePerm {
    /// broker name
    #[arg(short = 'b', long = "brokerName")]
    broker_name: String,
}

/// Which of the two name-server calls `wipeWritePerm` / `addWritePerm` make.
#[derive(Clone, Copy)]
pub enum PermChange {
    Wipe,
    Add,
}

pub async fn write_perm(
    admin: &Admin,
    args: WritePerm,
    change: PermChange,
    json: bool,
) -> Result<()> {
    let broker = args.broker_name.trim();
    let (verb, count_key) = match change {
        PermChange::Wipe => ("wipe", "wipeTopicCount"),
        PermChange::Add => ("add", "addTopicCount"),
    };
    let mut rows = Vec::new();
    let mut failed = 0;
    for namesrv in admin.namesrv_addrs() {
        let result = match change {
            PermChange::Wipe => admin.wipe_write_perm(namesrv, broker).await,
            PermChange::Add => admin.add_write_perm(namesrv, broker).await,
        };
        match result {
            Ok(count) => {
                if !json {
                    println!(
                        "{verb} write perm of broker[{broker}] in name server[{namesrv}] OK, {count}"
                    );
                }
                rows.push(json!({"namesrvAddr": namesrv, "brokerName": broker, count_key: count}));
            }
            // As RocketMQ's tool: report it and go on with the next name server.
            Err(error) => {
                failed += 1;
                if !json {
                    println!(
                        "{verb} write perm of broker[{broker}] in name server[{namesrv}] Failed"
                    );
                }
                eprintln!("{namesrv}: {error}");
                rows.push(json!({"namesrvAddr": namesrv, "brokerName": broker,
                    "error": error.to_string()}));
            }
        }
    }
    if json {
        print_json(&rows)?;
    }
    if failed > 0 {
        bail!("{failed} of {} name servers failed", rows.len());
    }
    Ok(())
}

#[derive(Args)]
pub struct GetBrokerConfig {
    /// get which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// get which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
}

/// RocketMQ's stand-in for a broker group without a master.
const NO_MASTER: &str = "NO_MASTER";

pub async fn get_broker_config(admin: &Admin, args: GetBrokerConfig, json: bool) -> Result<()> {
    // (heading, address) in RocketMQ's order: each master, then its slaves.
    let mut targets = Vec::new();
    if let Some(addr) = &args.broker_addr {
        let addr = addr.trim().to_owned();
        targets.push((format!("============{addr}============"), Some(addr)));
    } else if let Some(cluster) = &args.cluster {
        for group in admin.cluster_members(cluster.trim()).await? {
            let master = group.master.clone();
            let shown = master.as_deref().unwrap_or(NO_MASTER).to_owned();
            targets.push((format!("============Master: {shown}============"), master));
            for slave in group.slaves {
                targets.push((
                    format!("============My Master: {shown}=====Slave: {slave}============"),
                    Some(slave),
                ));
            }
        }
    } else {
        bail!("getBrokerConfig needs -b brokerAddr or -c clusterName");
    }
    let mut all = BTreeMap::new();
    for (heading, addr) in targets {
        if !json {
            println!("{heading}");
        }
        let Some(addr) = addr else { continue };
        let config = admin.broker_config(&addr).await?;
        if json {
            let map: serde_json::Map<_, _> = config
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::from(v)))
                .collect();
            all.insert(addr, map);
            continue;
        }
        for (key, value) in &config {
            println!("{key:<50}=  {value}");
        }
        println!();
    }
    if json {
        print_json(&all)?;
    }
    Ok(())
}

#[derive(Args)]
pub struct UpdateBrokerConfig {
    /// update which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// update which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
    /// update all brokers include slave
    #[arg(short = 'a', long = "updateAllBroker", num_args = 0..=1, default_missing_value = "true")]
    update_all: Option<String>,
    /// config key
    #[arg(short = 'k', long = "key")]
    key: String,
    /// config value
    #[arg(short = 'v', long = "value")]
    value: String,
}

pub async fn update_broker_config(
    admin: &Admin,
    args: UpdateBrokerConfig,
    json: bool,
) -> Result<()> {
    let key = args.key.trim();
    let value = args.value.trim();
    let (addrs, single) = match (&args.broker_addr, &args.cluster) {
        (Some(addr), _) => (vec![addr.trim().to_owned()], true),
        (None, Some(cluster)) => {
            // RocketMQ's tool takes any -a as "also the slaves".
            let all = args.update_all.is_some();
            (admin.cluster_addrs(cluster.trim(), !all).await?, false)
        }
        (None, None) => bail!("updateBrokerConfig needs -b brokerAddr or -c clusterName"),
    };
    let mut updated = Vec::new();
    let mut failed = 0;
    for addr in &addrs {
        match admin.update_broker_config(addr, &[(key, value)]).await {
            Ok(()) => {
                if !json {
                    println!("update broker config success, {addr}");
                }
                updated.push(addr.clone());
            }
            Err(error) if single => return Err(error.into()),
            Err(error) => {
                failed += 1;
                eprintln!("update broker config of {addr} failed: {error}");
            }
        }
    }
    if json {
        print_json(&json!({"key": key, "value": value, "brokers": updated}))?;
    }
    if failed > 0 {
        bail!("{failed} of {} brokers refused the change", addrs.len());
    }
    Ok(())
}
