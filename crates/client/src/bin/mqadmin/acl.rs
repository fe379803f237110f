//! `updateAclConfig`, `deleteAclConfig`, `updateGlobalWhiteAddr` and
//! `clusterAclConfigVersion`: ACL 1.0 accounts and whitelists on a broker (`-b`) or on every
//! broker of a cluster (`-c`; masters and slaves for changes, masters for versions), with
//! RocketMQ's flags and output.

use anyhow::{bail, Result};
use clap::Args;
use client::admin::AclAccount;
use client::display::timestamp_ms;
use client::Admin;
use serde_json::json;

use super::print_json;

#[derive(Args)]
pub struct Target {
    /// update/delete on this broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// update/delete on every broker of this cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
}

#[derive(Args)]
pub struct UpdateAclConfig {
    #[command(flatten)]
    target: Target,
    /// set accessKey in acl config file
    #[arg(short = 'a', long = "accessKey")]
    access_key: String,
    /// set secretKey in acl config file
    #[arg(short = 's', long = "secretKey")]
    secret_key: String,
    /// set white ip Address for account in acl config file
    #[arg(short = 'w', long = "whiteRemoteAddress")]
    white_remote_address: Option<String>,
    /// set default topicPerm in acl config file
    #[arg(short = 'i', long = "defaultTopicPerm")]
    default_topic_perm: Option<String>,
    /// set default GroupPerm in acl config file
    #[arg(short = 'u', long = "defaultGroupPerm")]
    default_group_perm: Option<String>,
    /// set topicPerms list, eg: topicA=DENY,topicD=SUB
    #[arg(short = 't', long = "topicPerms")]
    topic_perms: Option<String>,
    /// set groupPerms list, eg: groupD=DENY,groupD=SUB
    #[arg(short = 'g', long = "groupPerms")]
    group_perms: Option<String>,
    /// set admin flag in acl config file
    #[arg(short = 'm', long = "admin")]
    admin: Option<bool>,
}

#[derive(Args)]
pub struct DeleteAclConfig {
    #[command(flatten)]
    target: Target,
    /// set accessKey in acl config file for deleting which account
    #[arg(short = 'a', long = "accessKey")]
    access_key: String,
}

#[derive(Args)]
pub struct UpdateGlobalWhiteAddr {
    #[command(flatten)]
    target: Target,
    /// set globalWhiteRemoteAddress list, eg: 10.10.103.*,192.168.0.*
    #[arg(short = 'g', long = "globalWhiteRemoteAddresses")]
    addresses: String,
    /// set acl config file path (the broker's plain_acl.yml when absent)
    #[arg(short = 'p', long = "aclFileFullPath")]
    file: Option<String>,
}

pub(super) fn list(text: Option<&str>) -> Option<Vec<String>> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// The brokers a change goes to: `-b`, or every member of the `-c` cluster (`masters_only`
/// for reads).
pub(super) async fn brokers(
    admin: &Admin,
    target: &Target,
    masters_only: bool,
) -> Result<Vec<String>> {
    match (&target.broker_addr, &target.cluster) {
        (Some(addr), _) => Ok(vec![addr.trim().to_owned()]),
        (None, Some(cluster)) => {
            let mut addrs = Vec::new();
            for group in admin.cluster_members(cluster.trim()).await? {
                addrs.extend(group.master);
                if !masters_only {
                    addrs.extend(group.slaves);
                }
            }
            Ok(addrs)
        }
        (None, None) => bail!("give -b brokerAddr or -c clusterName"),
    }
}

pub async fn update_acl_config(admin: &Admin, args: UpdateAclConfig, json: bool) -> Result<()> {
    let account = AclAccount {
        access_key: args.access_key,
        secret_key: args.secret_key,
        white_remote_address: args.white_remote_address,
        admin: args.admin,
        default_topic_perm: args.default_topic_perm,
        default_group_perm: args.default_group_perm,
        topic_perms: list(args.topic_perms.as_deref()),
        group_perms: list(args.group_perms.as_deref()),
    };
    let mut done = Vec::new();
    for addr in brokers(admin, &args.target, false).await? {
        admin.update_acl_account(&addr, &account).await?;
        if !json {
            println!("create or update plain access config to {addr} success.");
        }
        done.push(addr);
    }
    if json {
        print_json(&json!({ "accessKey": account.access_key, "brokers": done }))?;
    }
    Ok(())
}

pub async fn delete_acl_config(admin: &Admin, args: DeleteAclConfig, json: bool) -> Result<()> {
    let mut done = Vec::new();
    for addr in brokers(admin, &args.target, false).await? {
        admin.delete_acl_account(&addr, &args.access_key).await?;
        if !json {
            println!("delete plain access config account from {addr} success.");
            println!("account's accessKey is:{}", args.access_key);
        }
        done.push(addr);
    }
    if json {
        print_json(&json!({ "accessKey": args.access_key, "brokers": done }))?;
    }
    Ok(())
}

pub async fn update_global_white_addr(
    admin: &Admin,
    args: UpdateGlobalWhiteAddr,
    json: bool,
) -> Result<()> {
    let addresses = list(Some(&args.addresses)).unwrap_or_default();
    let mut done = Vec::new();
    for addr in brokers(admin, &args.target, false).await? {
        admin
            .update_global_white_addrs(&addr, &addresses, args.file.as_deref())
            .await?;
        if !json {
            println!("update global white remote addresses to {addr} success.");
        }
        done.push(addr);
    }
    if json {
        print_json(&json!({ "globalWhiteRemoteAddresses": addresses, "brokers": done }))?;
    }
    Ok(())
}

pub async fn cluster_acl_config_version(admin: &Admin, target: Target, json: bool) -> Result<()> {
    let whole_cluster = target.broker_addr.is_none();
    if whole_cluster && !json {
        println!(
            "{:<16}  {:<22}  {:<22}  {:<20}  {:<22}  {:<22}",
            "#Cluster Name",
            "#Broker Name",
            "#Broker Addr",
            "#AclFilePath",
            "#AclConfigVersionNum",
            "#AclLastUpdateTime"
        );
    }
    let mut all = Vec::new();
    for addr in brokers(admin, &target, true).await? {
        let versions = admin.acl_versions(&addr).await?;
        for (file, version) in &versions.files {
            if json {
                all.push(json!({
                    "clusterName": versions.cluster_name,
                    "brokerName": versions.broker_name,
                    "brokerAddr": versions.broker_addr,
                    "aclFilePath": file,
                    "counter": version.counter,
                    "timestamp": version.timestamp,
                }));
                continue;
            }
            println!(
                "{:<16}  {:<22}  {:<22}  {:<20}  {:<22}  {:<22}",
                versions.cluster_name,
                versions.broker_name,
                versions.broker_addr,
                file,
                version.counter,
                timestamp_ms(version.timestamp)
            );
        }
        if !whole_cluster && !json {
            println!("get broker's plain access config version success. Address:{addr}");
        }
    }
    if json {
        print_json(&all)?;
    } else if whole_cluster {
        println!("get cluster's plain access config version success.");
    }
    Ok(())
}
