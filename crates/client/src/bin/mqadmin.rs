//! `mqadmin`: RocketMQ's admin tool, with its sub-command names, flags and table layouts,
//! for what the admin API covers. `--json` prints the underlying data as JSON instead.

// Table headers are passed as arguments, mirroring RocketMQ's printf calls column by column.
#![allow(clippy::print_literal)]

// One file per family of sub-commands, beside this one in `mqadmin/`.
#[path = "mqadmin/acl.rs"]
mod acl;
#[path = "mqadmin/auth.rs"]
mod auth;
#[path = "mqadmin/brokers.rs"]
mod brokers;
#[path = "mqadmin/consumers.rs"]
mod consumers;
#[path = "mqadmin/messages.rs"]
mod messages;
#[path = "mqadmin/offsets.rs"]
mod offsets;
#[path = "mqadmin/stats.rs"]
mod stats;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use client::admin::{BrokerGroupMember, MemberRole};
use client::display::{front, timestamp_ms, timestamp_s};
use client::{Admin, ClientOptions, ReceivedMessage};
use message::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use remoting::body::{perm, TopicConfig};
use serde_json::json;

#[derive(Parser)]
#[command(name = "mqadmin", about = "RocketMQ admin tool", version)]
struct Cli {
    /// Name server address list, e.g. '192.168.0.1:9876;192.168.0.2:9876'
    #[arg(short = 'n', long = "namesrvAddr", global = true, env = "NAMESRV_ADDR")]
    namesrv_addr: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    credentials: client::CredentialArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Update or create topic
    #[command(name = "updateTopic")]
    UpdateTopic(UpdateTopic),
    /// Delete topic from broker and NameServer.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster: String,
    },
    /// Fetch all topic list from name server
    #[command(name = "topicList")]
    TopicList {
        /// Print the cluster and consumer groups of each topic.
        #[arg(short = 'c', long = "clusterModel")]
        cluster_model: bool,
    },
    /// Examine topic route info
    #[command(name = "topicRoute")]
    TopicRoute {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Examine topic Status info
    #[command(name = "topicStatus")]
    TopicStatus {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// List all of clusters
    #[command(name = "clusterList")]
    ClusterList {
        /// Print more stats
        #[arg(short = 'm', long = "moreStats")]
        more_stats: bool,
        /// Repeat every this many seconds
        #[arg(short = 'i', long = "interval")]
        interval: Option<u64>,
    },
    /// Fetch broker runtime status data
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[arg(short = 'b', long = "brokerAddr")]
        broker_addr: Option<String>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Query consumers's progress, speed
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[arg(short = 'g', long = "groupName")]
        group: Option<String>,
    },
    /// Query Message by Id
    #[command(name = "queryMsgById")]
    QueryMsgById {
        /// Message id(s), comma separated: broker offset ids, or unique ids with -t
        #[arg(short = 'i', long = "msgId")]
        msg_id: String,
        /// Topic, to look up client unique ids
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
        /// Print the body in this charset (only UTF-8 is supported)
        #[arg(short = 'f', long = "bodyFormat")]
        body_format: Option<String>,
    },
    /// Query Message by Key
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'k', long = "msgKey")]
        key: String,
    },
    /// Reset consumer offset by timestamp(without client restart).
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime(offsets::ResetOffsetByTime),
    /// Clone offset from other group.
    #[command(name = "cloneGroupOffset")]
    CloneGroupOffset(offsets::CloneGroupOffset),
    /// get consumer status from client.
    #[command(name = "getConsumerStatus")]
    GetConsumerStatus(offsets::GetConsumerStatus),
    /// Query consumer's internal data structure.
    #[command(name = "consumerStatus")]
    ConsumerStatus(consumers::ConsumerStatus),
    /// Query consumer's socket connection, client version and subscription.
    #[command(name = "consumerConnection")]
    ConsumerConnection(consumers::ConsumerConnection),
    /// Query producer's socket connection and client version.
    #[command(name = "producerConnection")]
    ProducerConnection(consumers::ProducerConnection),
    /// Update or create subscription group.
    #[command(name = "updateSubGroup")]
    UpdateSubGroup(consumers::UpdateSubGroup),
    /// Set consume message mode. pull/pop etc.
    #[command(name = "setConsumeMode")]
    SetConsumeMode(consumers::SetConsumeMode),
    /// Delete subscription group from broker.
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup(consumers::DeleteSubGroup),
    /// Update or create an ACL 1.0 account on brokers
    #[command(name = "updateAclConfig")]
    UpdateAclConfig(acl::UpdateAclConfig),
    /// Delete an ACL 1.0 account from brokers
    #[command(name = "deleteAclConfig", alias = "deleteAccessConfig")]
    DeleteAclConfig(acl::DeleteAclConfig),
    /// Replace the global white remote addresses of brokers' ACL files
    #[command(name = "updateGlobalWhiteAddr")]
    UpdateGlobalWhiteAddr(acl::UpdateGlobalWhiteAddr),
    /// List the versions of brokers' ACL files
    #[command(name = "clusterAclConfigVersion")]
    ClusterAclConfigVersion(acl::Target),
    /// Create an ACL 2.0 user on brokers
    #[command(name = "createUser")]
    CreateUser(auth::CreateUser),
    /// Update an ACL 2.0 user's password, type or status
    #[command(name = "updateUser")]
    UpdateUser(auth::UpdateUser),
    /// Delete an ACL 2.0 user (and its acl)
    #[command(name = "deleteUser")]
    DeleteUser(auth::Username),
    /// Show an ACL 2.0 user
    #[command(name = "getUser")]
    GetUser(auth::Username),
    /// List ACL 2.0 users
    #[command(name = "listUser")]
    ListUser(auth::ListUser),
    /// Create ACL 2.0 policy entries for a subject
    #[command(name = "createAcl")]
    CreateAcl(auth::UpsertAcl),
    /// Update ACL 2.0 policy entries of a subject
    #[command(name = "updateAcl")]
    UpdateAcl(auth::UpsertAcl),
    /// Delete a subject's ACL 2.0 policy entry, or its whole acl
    #[command(name = "deleteAcl")]
    DeleteAcl(auth::DeleteAcl),
    /// Show a subject's ACL 2.0 policies
    #[command(name = "getAcl")]
    GetAcl(auth::GetAcl),
    /// List ACL 2.0 policies
    #[command(name = "listAcl")]
    ListAcl(auth::ListAcl),
    /// Wipe write perm of broker in all name server you defined in the -n param.
    #[command(name = "wipeWritePerm")]
    WipeWritePerm(brokers::WritePerm),
    /// Add write perm of broker in all name server you defined in the -n param.
    #[command(name = "addWritePerm")]
    AddWritePerm(brokers::WritePerm),
    /// Get broker config by cluster or special broker.
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig(brokers::GetBrokerConfig),
    /// Update broker's config.
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig(brokers::UpdateBrokerConfig),
    /// Query Message by offset.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset(messages::QueryMsgByOffset),
    /// Print Message Detail.
    #[command(name = "printMsg")]
    PrintMsg(messages::PrintMsg),
    /// Topic and Consumer tps stats.
    #[command(name = "statsAll")]
    StatsAll(stats::StatsAll),
    /// Fetch broker consume stats data.
    #[command(name = "brokerConsumeStats")]
    BrokerConsumeStats(stats::BrokerConsumeStats),
    /// Show the members of a broker group: role, term, leader, commit and match indexes
    #[command(name = "getBrokerGroup")]
    GetBrokerGroup {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
    },
    /// Transfer a broker group's leadership to a named node
    #[command(name = "transferLeader")]
    TransferLeader {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        /// Node id of the new leader, e.g. n1
        #[arg(short = 'i', long = "nodeId")]
        node_id: String,
    },
    /// Add a member to a broker group while it runs: it joins as a learner, copies the log
    /// and becomes a voter once caught up. Start its broker first, with dLegerPeers listing
    /// the group's members and itself
    #[command(name = "addGroupMember")]
    AddGroupMember {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        /// Node id of the new member, e.g. n3 (its dLegerSelfId)
        #[arg(short = 'i', long = "nodeId")]
        node_id: String,
        /// Its raft address, host:port (its own entry in dLegerPeers)
        #[arg(short = 'a', long = "raftAddr")]
        raft_addr: String,
    },
    /// Remove a member from a broker group while it runs (a leader hands off first); stop
    /// its broker afterwards. Replace a failed member by removing it and adding a new one
    #[command(name = "removeGroupMember")]
    RemoveGroupMember {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        /// Node id of the member to remove, e.g. n1
        #[arg(short = 'i', long = "nodeId")]
        node_id: String,
    },
}

#[derive(Args)]
struct UpdateTopic {
    /// create topic to which broker
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    /// create topic to which cluster
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
    /// topic name
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// set read queue nums
    #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
    read_queue_nums: i32,
    /// set write queue nums
    #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
    write_queue_nums: i32,
    /// set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]
    #[arg(short = 'p', long = "perm", default_value_t = 6)]
    perm: i32,
    /// set topic's order(true|false)
    #[arg(short = 'o', long = "order", default_value = "false")]
    order: String,
    /// is unit topic (true|false)
    #[arg(short = 'u', long = "unit", default_value = "false")]
    unit: String,
    /// has unit sub (true|false)
    #[arg(short = 's', long = "hasUnitSub", default_value = "false")]
    has_unit_sub: String,
    /// attribute(+a=b,+c=d,-e), e.g. +message.type=DELAY
    #[arg(short = 'a', long = "attributes")]
    attributes: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    launch::init_logging("warn", launch::LogTo::Stderr);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mqadmin: cannot start a runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        eprintln!("mqadmin: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let namesrv = cli
        .namesrv_addr
        .clone()
        .context("no name server: pass -n ADDR or set NAMESRV_ADDR")?;
    let admin = Admin::start(cli.credentials.apply(ClientOptions::new(&namesrv))?)?;
    let json = cli.json;
    let result = match cli.command {
        Command::UpdateTopic(args) => update_topic(&admin, args, json).await,
        Command::DeleteTopic { topic, cluster } => {
            admin.delete_topic(&cluster, &topic).await?;
            if json {
                print_json(&json!({"topic": topic, "cluster": cluster, "deleted": true}))
            } else {
                println!("delete topic [{topic}] from cluster [{cluster}] success.");
                println!("delete topic [{topic}] from NameServer success.");
                Ok(())
            }
        }
        Command::TopicList { cluster_model } => topic_list(&admin, cluster_model, json).await,
        Command::TopicRoute { topic } => {
            let route = admin.topic_route(&topic).await?;
            print_json(&route)
        }
        Command::TopicStatus { topic } => topic_status(&admin, &topic, json).await,
        Command::ClusterList {
            more_stats,
            interval,
        } => loop {
            cluster_list(&admin, more_stats, json).await?;
            match interval {
                Some(seconds) if seconds > 0 => {
                    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await
                }
                _ => break Ok(()),
            }
        },
        Command::BrokerStatus {
            broker_addr,
            cluster,
        } => broker_status(&admin, broker_addr, cluster, json).await,
        Command::ConsumerProgress { group } => consumer_progress(&admin, group, json).await,
        Command::QueryMsgById {
            msg_id,
            topic,
            body_format,
        } => {
            query_by_id(
                &admin,
                &msg_id,
                topic.as_deref(),
                body_format.is_some(),
                json,
            )
            .await
        }
        Command::QueryMsgByKey { topic, key } => query_by_key(&admin, &topic, &key, json).await,
        Command::ResetOffsetByTime(args) => offsets::reset_offset_by_time(&admin, args, json).await,
        Command::CloneGroupOffset(args) => offsets::clone_group_offset(&admin, args, json).await,
        Command::GetConsumerStatus(args) => offsets::get_consumer_status(&admin, args, json).await,
        Command::ConsumerStatus(args) => consumers::consumer_status(&admin, args, json).await,
        Command::ConsumerConnection(args) => {
            consumers::consumer_connection(&admin, args, json).await
        }
        Command::ProducerConnection(args) => {
            consumers::producer_connection(&admin, args, json).await
        }
        Command::UpdateSubGroup(args) => consumers::update_sub_group(&admin, args, json).await,
        Command::SetConsumeMode(args) => consumers::set_consume_mode(&admin, args, json).await,
        Command::DeleteSubGroup(args) => consumers::delete_sub_group(&admin, args, json).await,
        Command::UpdateAclConfig(args) => acl::update_acl_config(&admin, args, json).await,
        Command::DeleteAclConfig(args) => acl::delete_acl_config(&admin, args, json).await,
        Command::UpdateGlobalWhiteAddr(args) => {
            acl::update_global_white_addr(&admin, args, json).await
        }
        Command::ClusterAclConfigVersion(args) => {
            acl::cluster_acl_config_version(&admin, args, json).await
        }
        Command::CreateUser(args) => auth::create_user(&admin, args, json).await,
        Command::UpdateUser(args) => auth::update_user(&admin, args, json).await,
        Command::DeleteUser(args) => auth::delete_user(&admin, args, json).await,
        Command::GetUser(args) => auth::get_user(&admin, args, json).await,
        Command::ListUser(args) => auth::list_users(&admin, args, json).await,
        Command::CreateAcl(args) => auth::upsert_acl(&admin, args, false, json).await,
        Command::UpdateAcl(args) => auth::upsert_acl(&admin, args, true, json).await,
        Command::DeleteAcl(args) => auth::delete_acl(&admin, args, json).await,
        Command::GetAcl(args) => auth::get_acl(&admin, args, json).await,
        Command::ListAcl(args) => auth::list_acls(&admin, args, json).await,
        Command::WipeWritePerm(args) => {
            brokers::write_perm(&admin, args, brokers::PermChange::Wipe, json).await
        }
        Command::AddWritePerm(args) => {
            brokers::write_perm(&admin, args, brokers::PermChange::Add, json).await
        }
        Command::GetBrokerConfig(args) => brokers::get_broker_config(&admin, args, json).await,
        Command::UpdateBrokerConfig(args) => {
            brokers::update_broker_config(&admin, args, json).await
        }
        Command::QueryMsgByOffset(args) => messages::query_msg_by_offset(&admin, args, json).await,
        Command::PrintMsg(args) => messages::print_msg(&admin, args, json).await,
        Command::StatsAll(args) => stats::stats_all(&admin, args, json).await,
        Command::BrokerConsumeStats(args) => stats::broker_consume_stats(&admin, args, json).await,
        Command::GetBrokerGroup { broker_name } => broker_group(&admin, &broker_name, json).await,
        Command::TransferLeader {
            broker_name,
            node_id,
        } => {
            admin.transfer_leader(&broker_name, &node_id).await?;
            println!("transfer leadership of [{broker_name}] to [{node_id}] success.");
            Ok(())
        }
        Command::AddGroupMember {
            broker_name,
            node_id,
            raft_addr,
        } => {
            let done = admin
                .add_group_member(&broker_name, &node_id, &raft_addr)
                .await?;
            println!("add member [{node_id}] to [{broker_name}] success: {done}");
            Ok(())
        }
        Command::RemoveGroupMember {
            broker_name,
            node_id,
        } => {
            let done = admin.remove_group_member(&broker_name, &node_id).await?;
            println!("remove member [{node_id}] from [{broker_name}] success: {done}");
            Ok(())
        }
    };
    admin.shutdown();
    result
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn parse_bool(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case("true")
}

fn topic_config_line(config: &TopicConfig) -> String {
    format!(
        "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={}, topicFilterType={}, topicSysFlag={}, order={}, attributes={:?}]",
        config.topic_name,
        config.read_queue_nums,
        config.write_queue_nums,
        perm::to_display(config.perm),
        config.topic_filter_type,
        config.topic_sys_flag,
        config.order,
        config.attributes
    )
}

/// `-a`'s `+a=b,+c=d,-e` as the keys `+a`, `+c`, `-e` the admin API sends on.
fn parse_attribute_alterations(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(removed) = item.strip_prefix('-') {
            out.insert(format!("-{removed}"), String::new());
        } else if let Some((key, value)) = item.strip_prefix('+').and_then(|i| i.split_once('=')) {
            out.insert(format!("+{key}"), value.to_owned());
        } else {
            anyhow::bail!("attributes: `{item}` is neither +key=value nor -key");
        }
    }
    Ok(out)
}

async fn update_topic(admin: &Admin, args: UpdateTopic, json: bool) -> Result<()> {
    let mut config = Admin::topic_config(
        args.topic.trim(),
        args.read_queue_nums,
        args.write_queue_nums,
    );
    config.perm = args.perm;
    config.order = parse_bool(&args.order);
    // TopicSysFlag: bit 0 unit, bit 1 unit-sub.
    config.topic_sys_flag =
        i32::from(parse_bool(&args.unit)) | (i32::from(parse_bool(&args.has_unit_sub)) << 1);
    if let Some(alterations) = &args.attributes {
        config.attributes = parse_attribute_alterations(alterations)?;
    }
    let written = if let Some(addr) = args.broker_addr {
        let addr = addr.trim().to_owned();
        admin.create_topic(&addr, &config).await?;
        if config.order {
            let broker_name = admin.broker_name_of(&addr).await?;
            let conf = format!("{broker_name}:{}", config.write_queue_nums);
            admin.set_order_conf(&config.topic_name, &conf).await?;
            if !json {
                print!(
                    "set broker orderConf. isOrder={}, orderConf=[{conf}]",
                    config.order
                );
            }
        }
        vec![addr]
    } else if let Some(cluster) = args.cluster {
        let cluster = cluster.trim().to_owned();
        let masters = admin.create_topic_in_cluster(&cluster, &config).await?;
        if config.order {
            let info = admin.cluster_info().await?;
            let names = info
                .cluster_addr_table
                .get(&cluster)
                .cloned()
                .unwrap_or_default();
            let conf = names
                .iter()
                .map(|name| format!("{name}:{}", config.write_queue_nums))
                .collect::<Vec<_>>()
                .join(";");
            admin.set_order_conf(&config.topic_name, &conf).await?;
            if !json {
                print!(
                    "set cluster orderConf. isOrder={}, orderConf=[{conf}]",
                    config.order
                );
            }
        }
        masters
    } else {
        bail!("updateTopic needs -b brokerAddr or -c clusterName");
    };
    if json {
        return print_json(&json!({"brokers": written, "topicConfig": config}));
    }
    for addr in &written {
        println!("create topic to {addr} success.");
    }
    println!("{}", topic_config_line(&config));
    Ok(())
}

async fn topic_list(admin: &Admin, cluster_model: bool, json: bool) -> Result<()> {
    let topics = admin.topic_list().await?;
    if !cluster_model {
        if json {
            return print_json(&topics);
        }
        for topic in topics {
            println!("{topic}");
        }
        return Ok(());
    }
    let info = admin.cluster_info().await?;
    let mut rows = Vec::new();
    for topic in &topics {
        if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
        {
            continue;
        }
        let cluster = match admin.topic_route(topic).await {
            Ok(route) => route
                .broker_datas
                .first()
                .and_then(|b| {
                    info.cluster_addr_table
                        .iter()
                        .find(|(_, names)| names.contains(&b.broker_name))
                        .map(|(cluster, _)| cluster.clone())
                })
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let groups = admin.topic_consumer_groups(topic).await.unwrap_or_default();
        if groups.is_empty() {
            rows.push((cluster, topic.clone(), String::new()));
        } else {
            for group in groups {
                rows.push((cluster.clone(), topic.clone(), group));
            }
        }
    }
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(c, t, g)| json!({"cluster": c, "topic": t, "consumerGroup": g}))
            .collect();
        return print_json(&rows);
    }
    println!(
        "{:<20}  {:<48}  {:<48}",
        "#Cluster Name", "#Topic", "#Consumer Group"
    );
    for (cluster, topic, group) in rows {
        println!(
            "{:<20}  {:<48}  {:<48}",
            front(&cluster, 20),
            front(&topic, 48),
            front(&group, 48)
        );
    }
    Ok(())
}

async fn topic_status(admin: &Admin, topic: &str, json: bool) -> Result<()> {
    let stats = admin.topic_stats(topic).await?;
    if json {
        let rows: Vec<_> = stats
            .offset_table
            .iter()
            .map(|(q, o)| {
                json!({"brokerName": q.broker_name, "queueId": q.queue_id, "minOffset": o.min_offset,
                    "maxOffset": o.max_offset, "lastUpdateTimestamp": o.last_update_timestamp})
            })
            .collect();
        return print_json(&rows);
    }
    println!(
        "{:<32}  {:<4}  {:<20}  {:<20}    {}",
        "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated"
    );
    for (queue, offsets) in &stats.offset_table {
        let updated = if offsets.last_update_timestamp > 0 {
            timestamp_ms(offsets.last_update_timestamp)
        } else {
            String::new()
        };
        println!(
            "{:<32}  {:<4}  {:<20}  {:<20}    {}",
            front(&queue.broker_name, 32),
            queue.queue_id,
            offsets.min_offset,
            offsets.max_offset,
            updated
        );
    }
    Ok(())
}

fn first_number(value: Option<&String>) -> f64 {
    value
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn number(value: Option<&String>) -> i64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

async fn cluster_list(admin: &Admin, more_stats: bool, json: bool) -> Result<()> {
    let info = admin.cluster_info().await?;
    let mut rows = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(broker) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &broker.broker_addrs {
                let stats = admin.broker_runtime_info(addr).await.unwrap_or_default();
                rows.push((cluster.clone(), name.clone(), *id, addr.clone(), stats));
            }
        }
    }
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(c, n, id, addr, stats)| {
                json!({"cluster": c, "brokerName": n, "brokerId": id, "addr": addr, "runtime": stats})
            })
            .collect();
        return print_json(&rows);
    }
    if more_stats {
        println!(
            "{:<16}  {:<32} {:>14} {:>14} {:>14} {:>14}",
            "#Cluster Name",
            "#Broker Name",
            "#InTotalYest",
            "#OutTotalYest",
            "#InTotalToday",
            "#OutTotalToday"
        );
        for (cluster, name, _, _, stats) in &rows {
            let get = |key: &str| number(stats.get(key));
            println!(
                "{:<16}  {:<32} {:>14} {:>14} {:>14} {:>14}",
                cluster,
                name,
                get("msgPutTotalTodayMorning") - get("msgPutTotalYesterdayMorning"),
                get("msgGetTotalTodayMorning") - get("msgGetTotalYesterdayMorning"),
                get("msgPutTotalTodayNow") - get("msgPutTotalTodayMorning"),
                get("msgGetTotalTodayNow") - get("msgGetTotalTodayMorning"),
            );
        }
        return Ok(());
    }
    println!(
        "{:<16}  {:<22}  {:<4}  {:<22} {:<16} {:>19} {:>19} {:>10} {:>5} {:>6}",
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTPS(LOAD)",
        "#OutTPS(LOAD)",
        "#PCWait(ms)",
        "#Hour",
        "#SPACE"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for (cluster, name, id, addr, stats) in &rows {
        let text = |key: &str| stats.get(key).cloned().unwrap_or_default();
        let hour = stats
            .get("earliestMessageTimeStamp")
            .and_then(|t| t.parse::<i64>().ok())
            // 0 means the broker holds no message yet (Java would print hours since 1970).
            .filter(|t| *t > 0)
            .map_or(0.0, |t| (now - t) as f64 / 1000.0 / 3600.0);
        let space: f64 = stats
            .get("commitLogDiskRatio")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        println!(
            "{:<16}  {:<22}  {:<4}  {:<22} {:<16} {:>19} {:>19} {:>10} {:>5} {:>6}",
            cluster,
            name,
            id,
            addr,
            text("brokerVersionDesc"),
            format!(
                "{:9.2}({},{}ms)",
                first_number(stats.get("putTps")),
                text("sendThreadPoolQueueSize"),
                text("sendThreadPoolQueueHeadWaitTimeMills")
            ),
            format!(
                "{:9.2}({},{}ms)",
                first_number(stats.get("getTransferedTps")),
                text("pullThreadPoolQueueSize"),
                text("pullThreadPoolQueueHeadWaitTimeMills")
            ),
            text("pageCacheLockTimeMills"),
            format!("{hour:2.2}"),
            format!("{space:.4}"),
        );
    }
    Ok(())
}

async fn broker_status(
    admin: &Admin,
    broker_addr: Option<String>,
    cluster: Option<String>,
    json: bool,
) -> Result<()> {
    let (addrs, print_broker) = match (broker_addr, cluster) {
        (Some(addr), _) => (vec![addr.trim().to_owned()], false),
        (None, Some(cluster)) => (admin.cluster_addrs(cluster.trim(), false).await?, true),
        (None, None) => bail!("brokerStatus needs -b brokerAddr or -c clusterName"),
    };
    let mut all = BTreeMap::new();
    for addr in addrs {
        let stats = admin.broker_runtime_info(&addr).await?;
        if !json {
            for (key, value) in &stats {
                if print_broker {
                    println!("{addr:<24} {key:<32}: {value}");
                } else {
                    println!("{key:<32}: {value}");
                }
            }
        }
        all.insert(addr, stats);
    }
    if json {
        print_json(&all)?;
    }
    Ok(())
}

async fn consumer_progress(admin: &Admin, group: Option<String>, json: bool) -> Result<()> {
    if let Some(group) = group {
        let group = group.trim();
        let stats = admin.consume_stats(group, None).await?;
        let mut diff_total = 0i64;
        if json {
            let rows: Vec<_> = stats
                .offset_table
                .iter()
                .map(|(q, o)| {
                    json!({"topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
                        "brokerOffset": o.broker_offset, "consumerOffset": o.consumer_offset,
                        "diff": o.broker_offset - o.consumer_offset, "lastTimestamp": o.last_timestamp})
                })
                .collect();
            return print_json(
                &json!({"queues": rows, "consumeTps": stats.consume_tps, "diffTotal": stats.total_diff()}),
            );
        }
        println!(
            "{:<32}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}  {}",
            "#Topic",
            "#Broker Name",
            "#QID",
            "#Broker Offset",
            "#Consumer Offset",
            "#Client IP",
            "#Diff",
            "#LastTime"
        );
        for (queue, offsets) in &stats.offset_table {
            let diff = offsets.broker_offset - offsets.consumer_offset;
            diff_total += diff;
            println!(
                "{:<32}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}  {}",
                front(&queue.topic, 32),
                front(&queue.broker_name, 32),
                queue.queue_id,
                offsets.broker_offset,
                offsets.consumer_offset,
                "NA",
                diff,
                timestamp_s(offsets.last_timestamp)
            );
        }
        println!();
        println!("Consume TPS: {:?}", stats.consume_tps);
        println!("Diff Total: {diff_total}");
        return Ok(());
    }
    let mut rows = Vec::new();
    for topic in admin.topic_list().await? {
        let Some(group) = topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) else {
            continue;
        };
        let stats = admin.consume_stats(group, None).await.ok();
        let connection = admin.consumer_connection(group).await.ok();
        let count = connection.as_ref().map_or(0, |c| c.connection_set.len());
        let version = connection
            .as_ref()
            .and_then(|c| c.connection_set.iter().map(|conn| conn.version).min());
        let consume_type = connection.as_ref().and_then(|c| c.consume_type);
        let model = connection.as_ref().and_then(|c| c.message_model);
        rows.push(json!({
            "group": group,
            "count": count,
            "version": if count > 0 { version.map_or(String::new(), |v| v.to_string()) } else { "OFFLINE".to_owned() },
            "type": match (count, consume_type) {
                (0, _) => "",
                (_, Some(remoting::body::ConsumeType::ConsumeActively)) => "PULL",
                _ => "PUSH",
            },
            "model": if count > 0 { model.map_or("", |m| m.java_name()) } else { "" },
            "tps": stats.as_ref().map_or(0, |s| s.consume_tps as i64),
            "diffTotal": stats.as_ref().map_or(0, |s| s.total_diff()),
        }));
    }
    if json {
        return print_json(&rows);
    }
    println!(
        "{:<32}  {:<6}  {:<24} {:<5}  {:<14}  {:<7}  {}",
        "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total"
    );
    for row in rows {
        let text = |key: &str| row[key].as_str().unwrap_or("").to_owned();
        let int = |key: &str| row[key].as_i64().unwrap_or(0);
        println!(
            "{:<32}  {:<6}  {:<24} {:<5}  {:<14}  {:<7}  {}",
            front(&text("group"), 32),
            int("count"),
            text("version"),
            text("type"),
            text("model"),
            int("tps"),
            int("diffTotal")
        );
    }
    Ok(())
}

fn message_json(message: &ReceivedMessage) -> serde_json::Value {
    json!({
        "msgId": message.msg_id(),
        "offsetMsgId": message.offset_msg_id,
        "topic": message.topic,
        "brokerName": message.queue.broker_name,
        "queueId": message.queue.queue_id,
        "queueOffset": message.queue_offset,
        "commitLogOffset": message.commit_log_offset,
        "reconsumeTimes": message.reconsume_times,
        "bornTimestamp": message.born_timestamp_ms,
        "storeTimestamp": message.store_timestamp_ms,
        "bornHost": message.born_host.to_string(),
        "storeHost": message.store_host.to_string(),
        "sysFlag": message.sys_flag,
        "properties": message.properties,
        "body": message.body_text(),
    })
}

async fn query_by_id(
    admin: &Admin,
    ids: &str,
    topic: Option<&str>,
    print_body: bool,
    json: bool,
) -> Result<()> {
    let mut found = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        found.push(admin.find_message(topic, id).await?);
    }
    if json {
        return print_json(&found.iter().map(message_json).collect::<Vec<_>>());
    }
    for message in &found {
        print_message(message, print_body);
    }
    Ok(())
}

/// A message as `queryMsgById` prints it (RocketMQ's `printMsg` of the tools), its body
/// written to a file first.
fn print_message(message: &ReceivedMessage, print_body: bool) {
    let body_path = write_body_file(message);
    println!("{:<20} {}", "OffsetID:", message.offset_msg_id);
    println!("{:<20} {}", "Topic:", message.topic);
    println!("{:<20} [{}]", "Tags:", message.tag().unwrap_or("null"));
    println!("{:<20} [{}]", "Keys:", message.keys().unwrap_or("null"));
    println!("{:<20} {}", "Queue ID:", message.queue.queue_id);
    println!("{:<20} {}", "Queue Offset:", message.queue_offset);
    println!("{:<20} {}", "CommitLog Offset:", message.commit_log_offset);
    println!("{:<20} {}", "Reconsume Times:", message.reconsume_times);
    println!(
        "{:<20} {}",
        "Born Timestamp:",
        timestamp_ms(message.born_timestamp_ms)
    );
    println!(
        "{:<20} {}",
        "Store Timestamp:",
        timestamp_ms(message.store_timestamp_ms)
    );
    println!("{:<20} {}", "Born Host:", message.born_host);
    println!("{:<20} {}", "Store Host:", message.store_host);
    println!("{:<20} {}", "System Flag:", message.sys_flag);
    let properties: BTreeMap<_, _> = message.properties.iter().collect();
    println!("{:<20} {:?}", "Properties:", properties);
    println!("{:<20} {}", "Message Body Path:", body_path);
    if print_body {
        println!("{:<20} {}", "Message Body:", message.body_text());
    }
}

/// Writes the body where RocketMQ's tool does (`/tmp/rocketmq/msgbodys/<msgId>`).
fn write_body_file(message: &ReceivedMessage) -> String {
    let dir = std::path::Path::new("/tmp/rocketmq/msgbodys");
    let path = dir.join(message.msg_id());
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &message.body));
    match written {
        Ok(()) => path.display().to_string(),
        Err(error) => format!("(not written: {error})"),
    }
}

async fn query_by_key(admin: &Admin, topic: &str, key: &str, json: bool) -> Result<()> {
    let messages = admin
        .query_by_key(
            topic.trim(),
            key.trim(),
            client::admin::DEFAULT_QUERY_MAX,
            0,
            i64::MAX,
        )
        .await?;
    if json {
        return print_json(&messages.iter().map(message_json).collect::<Vec<_>>());
    }
    println!("{:<50} {:>4} {:>40}", "#Message ID", "#QID", "#Offset");
    for message in &messages {
        println!(
            "{:<50} {:>4} {:>40}",
            message.msg_id(),
            message.queue.queue_id,
            message.queue_offset
        );
    }
    Ok(())
}

async fn broker_group(admin: &Admin, broker_name: &str, json: bool) -> Result<()> {
    let members: Vec<BrokerGroupMember> = admin.broker_group(broker_name).await?;
    if json {
        let rows: Vec<_> = members
            .iter()
            .map(|m| {
                json!({
                    "brokerId": m.broker_id, "addr": m.addr,
                    "role": match m.role { MemberRole::Master => "MASTER", MemberRole::Slave => "SLAVE" },
                    "nodeId": m.raft.as_ref().map(|r| r.node_id.clone()),
                    "raftRole": m.raft.as_ref().map(|r| r.role.clone()),
                    "voter": m.raft.as_ref().map(|r| r.voter),
                    "term": m.raft.as_ref().map(|r| r.term),
                    "leaderId": m.raft.as_ref().and_then(|r| r.leader_id.clone()),
                    "commitIndex": m.raft.as_ref().map(|r| r.commit_index),
                    "appliedIndex": m.raft.as_ref().map(|r| r.applied_index),
                    "matchIndex": m.raft.as_ref().and_then(|r| r.match_index),
                })
            })
            .collect();
        return print_json(&rows);
    }
    println!(
        "{:<22}  {:<4}  {:<22}  {:<8}  {:<6}  {:<10}  {:<8}  {:<8}  {:<14}  {:<14}  {}",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Role",
        "#Node",
        "#RaftRole",
        "#Term",
        "#Leader",
        "#Commit Index",
        "#Applied Index",
        "#Match Index"
    );
    for member in &members {
        let raft = member.raft.as_ref();
        let dash = || "-".to_owned();
        println!(
            "{:<22}  {:<4}  {:<22}  {:<8}  {:<6}  {:<10}  {:<8}  {:<8}  {:<14}  {:<14}  {}",
            front(broker_name, 22),
            member.broker_id,
            member.addr,
            match member.role {
                MemberRole::Master => "MASTER",
                MemberRole::Slave => "SLAVE",
            },
            raft.map_or_else(dash, |r| r.node_id.clone()),
            // A follower that does not vote yet is a learner catching up.
            raft.map_or_else(dash, |r| if r.voter {
                r.role.clone()
            } else {
                "LEARNER".to_owned()
            }),
            raft.map_or_else(dash, |r| r.term.to_string()),
            raft.and_then(|r| r.leader_id.clone()).unwrap_or_else(dash),
            raft.map_or_else(dash, |r| r.commit_index.to_string()),
            raft.map_or_else(dash, |r| r.applied_index.to_string()),
            raft.and_then(|r| r.match_index)
                .map_or_else(dash, |i| i.to_string()),
        );
    }
    if members.iter().all(|m| m.raft.is_none()) {
        eprintln!("note: no member answered the group-status request (not a DLedger-mode group?)");
    }
    Ok(())
}
