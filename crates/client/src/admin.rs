//! The admin API (what RocketMQ's `DefaultMQAdminExt` offers `mqadmin`): topics, routes,
//! clusters, broker runtime stats, consumer progress, message lookup, and the broker
//! group (Raft) view; in the files beside this one:
//!
//! - `consumers`: offsets reset by time or cloned, what online consumers report
//!   (running info, status), producer connections, subscription groups.
//! - `brokers`: broker config read and changed, cluster members, name servers' write
//!   permission of a broker.
//! - `reading`: pulling messages by queue and offset under the tools' group.
//! - `stats`: broker stats data, a broker's consume stats, per topic traffic.
//! - `acl`: ACL 1.0's accounts and whitelists; `auth`: ACL 2.0's users and policies.
//!
//! ```no_run
//! use client::{Admin, ClientOptions};
//!
//! # async fn run() -> client::Result<()> {
//! let admin = Admin::start(ClientOptions::new("127.0.0.1:9876"))?;
//! admin.create_topic_in_cluster("DefaultCluster", &Admin::topic_config("Orders", 8, 8)).await?;
//! for (queue, offsets) in admin.topic_stats("Orders").await?.offset_table {
//!     println!("{} {} {}", queue.broker_name, queue.queue_id, offsets.max_offset);
//! }
//! let progress = admin.consume_stats("billing", None).await?;
//! println!("lag: {}", progress.total_diff());
//! # Ok(()) }
//! ```

mod acl;
mod auth;
mod brokers;
mod consumers;
mod reading;
mod stats;

use std::collections::{BTreeMap, BTreeSet};

use message::topic::retry_topic;
use message::{decode_offset_msg_id, validate_topic};
use remoting::body::fastjson;
use remoting::body::route::MASTER_ID;
use remoting::body::{
    ClusterInfo, ConsumeStats, ConsumerConnection, GroupList, KvTable, TopicConfig, TopicList,
    TopicRouteData, TopicStatsTable,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::admin::{
    CreateTopicRequestHeader, GetConsumeStatsRequestHeader, TopicRequestHeader,
};
use remoting::header::namesrv::{DeleteTopicFromNamesrvRequestHeader, PutKvConfigRequestHeader};
use remoting::header::query::{QueryMessageRequestHeader, ViewMessageRequestHeader};

use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::{broker_error, ClientInstance};
use crate::message::{decode_messages, ReceivedMessage};

pub use acl::{AclAccount, AclVersion, AclVersions};
pub use brokers::BrokerMembers;
pub use consumers::ConsumerStatusTable;
pub use reading::TOOLS_CONSUMER_GROUP;
pub use stats::{GroupTraffic, StatsSource, TopicTraffic, GROUP_GET_NUMS, TOPIC_PUT_NUMS};

/// The KV namespace name servers keep ordered-topic configs in (`orderTopicConf`).
pub const ORDER_TOPIC_CONFIG_NAMESPACE: &str = "ORDER_TOPIC_CONFIG";
/// Most messages a key query returns (Java's `queryMessage` callers ask for 64).
pub const DEFAULT_QUERY_MAX: i32 = 64;

/// A broker group member's Raft role, as the name server's broker ids imply
/// (id 0 = the leader serving as master).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    Master,
    Slave,
}

/// Raft progress of one member, reported by the broker itself (serialized as the
/// dashboard shows it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftState {
    pub node_id: String,
    /// LEADER, FOLLOWER or CANDIDATE.
    pub role: String,
    pub term: i64,
    pub leader_id: Option<String>,
    pub commit_index: i64,
    /// Entries this member has applied (dispatched to its queues or metadata).
    pub applied_index: i64,
    /// The leader's view of this member's replicated index (the leader's own: its last
    /// index); `None` when no leader answered.
    pub match_index: Option<i64>,
    /// Votes and counts towards commits; `false` for a learner still catching up (as the
    /// leader sees it, or the member itself when no leader answered).
    pub voter: bool,
}

/// What a member answers to DLEDGER_METADATA (the broker's group-status body; fields this
/// client does not use are ignored).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberStatus {
    self_id: String,
    role: String,
    term: u64,
    leader_id: Option<String>,
    #[serde(default)]
    last_index: u64,
    commit_index: u64,
    #[serde(default)]
    applied_index: u64,
    #[serde(default = "voter_by_default")]
    voter: bool,
    #[serde(default)]
    peers: Vec<PeerProgress>,
}

fn voter_by_default() -> bool {
    true
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeerProgress {
    node_id: String,
    #[serde(default = "voter_by_default")]
    voter: bool,
    match_index: Option<u64>,
}

/// One member of a broker group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerGroupMember {
    pub broker_id: i64,
    pub addr: String,
    pub role: MemberRole,
    /// `None` when the member did not answer the group-status request.
    pub raft: Option<RaftState>,
}

/// Administration of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    instance: ClientInstance,
}

impl Admin {
    /// An admin client with its own client instance.
    pub fn start(client: ClientOptions) -> Result<Self> {
        Ok(Admin {
            instance: ClientInstance::new(client)?,
        })
    }

    pub fn with_instance(instance: ClientInstance) -> Self {
        Admin { instance }
    }

    pub fn instance(&self) -> &ClientInstance {
        &self.instance
    }

    pub fn shutdown(&self) {
        self.instance.shutdown();
    }

    /// A topic config with Java's defaults (read-write, single tag, not ordered).
    pub fn topic_config(topic: &str, read_queue_nums: i32, write_queue_nums: i32) -> TopicConfig {
        TopicConfig::new(
            topic,
            read_queue_nums,
            write_queue_nums,
            remoting::body::perm::READ_WRITE,
        )
    }

    fn timeout(&self) -> std::time::Duration {
        self.instance.options().request_timeout
    }

    // ---- name server ----------------------------------------------------------------

    /// Brokers and clusters as the name servers know them.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let (addr, response) = self
            .instance
            .invoke_namesrv(RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO))
            .await?;
        ClusterInfo::decode(&response.body).map_err(|err| ClientError::malformed(&addr, err))
    }

    /// Every topic the name servers know.
    pub async fn topic_list(&self) -> Result<BTreeSet<String>> {
        let (addr, response) = self
            .instance
            .invoke_namesrv(RemotingCommand::request(
                request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ))
            .await?;
        fastjson::decode::<TopicList>(&response.body)
            .map(|list| list.topic_list)
            .map_err(|err| ClientError::malformed(&addr, err))
    }

    /// A topic's route.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        Ok(self.instance.refresh_route(topic).await?.data.clone())
    }

    /// Master addresses of every broker group in `cluster`.
    pub async fn cluster_master_addrs(&self, cluster: &str) -> Result<Vec<String>> {
        self.cluster_addrs(cluster, true).await
    }

    /// Every member address of every broker group in `cluster`.
    pub async fn cluster_addrs(&self, cluster: &str, masters_only: bool) -> Result<Vec<String>> {
        let info = self.cluster_info().await?;
        let names = info.cluster_addr_table.get(cluster).ok_or_else(|| {
            ClientError::NotFound(format!(
                "cluster `{cluster}` is unknown to the name servers"
            ))
        })?;
        let mut addrs = Vec::new();
        for name in names {
            if let Some(broker) = info.broker_addr_table.get(name) {
                for (id, addr) in &broker.broker_addrs {
                    if !masters_only || *id == MASTER_ID {
                        addrs.push(addr.clone());
                    }
                }
            }
        }
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }

    /// The broker (group) name serving at `addr`.
    pub async fn broker_name_of(&self, addr: &str) -> Result<String> {
        let info = self.cluster_info().await?;
        info.broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| a == addr))
            .map(|b| b.broker_name.clone())
            .ok_or_else(|| ClientError::NotFound(format!("no broker at {addr}")))
    }

    /// Stores a topic's `orderTopicConf` (`broker-a:4;broker-b:4`) on every name server.
    pub async fn set_order_conf(&self, topic: &str, conf: &str) -> Result<()> {
        let header = PutKvConfigRequestHeader {
            namespace: ORDER_TOPIC_CONFIG_NAMESPACE.to_owned(),
            key: topic.to_owned(),
            value: conf.to_owned(),
        };
        for addr in &self.instance.options().namesrv_addrs {
            let request = RemotingCommand::request(request::PUT_KV_CONFIG).with_header(&header);
            self.instance
                .invoke_ok(addr, request, self.timeout())
                .await?;
        }
        Ok(())
    }

    // ---- topics ---------------------------------------------------------------------

    /// Creates or updates a topic on one broker (UPDATE_AND_CREATE_TOPIC). The config's
    /// attributes are sent as RocketMQ's alterations: a key `message.type` or
    /// `+message.type` adds or changes it, `-message.type` removes it.
    pub async fn create_topic(&self, broker_addr: &str, config: &TopicConfig) -> Result<()> {
        validate_topic(&config.topic_name)
            .map_err(|err| ClientError::InvalidArgument(format!("topic: {err}")))?;
        let header = CreateTopicRequestHeader {
            topic: config.topic_name.clone(),
            default_topic: message::topic::AUTO_CREATE_TOPIC_KEY_TOPIC.to_owned(),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_filter_type: config.topic_filter_type.clone(),
            topic_sys_flag: Some(config.topic_sys_flag),
            order: config.order,
            attributes: attribute_alterations(&config.attributes),
            force: false,
        };
        let request =
            RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC).with_header(&header);
        self.instance
            .invoke_ok(broker_addr, request, self.timeout())
            .await
            .map(drop)
    }

    /// Creates or updates a topic on every master of `cluster`; returns their addresses.
    pub async fn create_topic_in_cluster(
        &self,
        cluster: &str,
        config: &TopicConfig,
    ) -> Result<Vec<String>> {
        let masters = self.cluster_master_addrs(cluster).await?;
        if masters.is_empty() {
            return Err(ClientError::NotFound(format!(
                "cluster `{cluster}` has no master"
            )));
        }
        for addr in &masters {
            self.create_topic(addr, config).await?;
        }
        Ok(masters)
    }

    /// Deletes a topic from every broker of `cluster` and from every name server.
    pub async fn delete_topic(&self, cluster: &str, topic: &str) -> Result<()> {
        for addr in self.cluster_addrs(cluster, false).await? {
            let header = TopicRequestHeader {
                topic: topic.to_owned(),
            };
            let request =
                RemotingCommand::request(request::DELETE_TOPIC_IN_BROKER).with_header(&header);
            self.instance
                .invoke_ok(&addr, request, self.timeout())
                .await?;
        }
        let header = DeleteTopicFromNamesrvRequestHeader {
            topic: topic.to_owned(),
            cluster_name: None,
        };
        for addr in &self.instance.options().namesrv_addrs {
            let request =
                RemotingCommand::request(request::DELETE_TOPIC_IN_NAMESRV).with_header(&header);
            self.instance
                .invoke_ok(addr, request, self.timeout())
                .await?;
        }
        Ok(())
    }

    /// Min/max offsets of every queue of `topic`, from each broker group's master.
    pub async fn topic_stats(&self, topic: &str) -> Result<TopicStatsTable> {
        let header = TopicRequestHeader {
            topic: topic.to_owned(),
        };
        let request = RemotingCommand::request(request::GET_TOPIC_STATS_INFO).with_header(&header);
        let mut merged = TopicStatsTable::default();
        for table in self
            .ask_masters(topic, &request, TopicStatsTable::decode)
            .await?
        {
            merged.offset_table.extend(table.offset_table);
            merged.topic_put_tps += table.topic_put_tps;
        }
        Ok(merged)
    }

    /// Sends `request` to the master of every broker group serving `route_topic` and
    /// decodes each answer; a group without a master is skipped, a refusal is an error.
    async fn ask_masters<T, E: std::fmt::Display>(
        &self,
        route_topic: &str,
        request: &RemotingCommand,
        decode: impl Fn(&[u8]) -> std::result::Result<T, E>,
    ) -> Result<Vec<T>> {
        let route = self.instance.refresh_route(route_topic).await?;
        let mut answers = Vec::with_capacity(route.data.broker_datas.len());
        for addr in route
            .data
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr())
        {
            let response = self
                .instance
                .invoke_ok(addr, request.clone(), self.timeout())
                .await?;
            answers.push(decode(&response.body).map_err(|err| ClientError::malformed(addr, err))?);
        }
        Ok(answers)
    }

    // ---- brokers --------------------------------------------------------------------

    /// A broker's runtime statistics (GET_BROKER_RUNTIME_INFO), sorted by key.
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request = RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        KvTable::decode(&response.body)
            .map(|kv| kv.table)
            .map_err(|err| ClientError::malformed(addr, err))
    }

    /// The members of broker group `broker_name`: the roles the name servers show, and
    /// each reachable member's own Raft status (DLEDGER_METADATA, 50000), with the match
    /// index the leader reports for it. Members that do not answer have `raft: None`.
    pub async fn broker_group(&self, broker_name: &str) -> Result<Vec<BrokerGroupMember>> {
        let info = self.cluster_info().await?;
        let broker = info.broker_addr_table.get(broker_name).ok_or_else(|| {
            ClientError::NotFound(format!("broker group `{broker_name}` is unknown"))
        })?;
        let mut reports = Vec::new();
        for addr in broker.broker_addrs.values() {
            reports.push(self.member_status(addr).await.ok());
        }
        // The leader knows how far each follower's log matches its own, and who votes.
        let leader_view: BTreeMap<String, (Option<u64>, bool)> = reports
            .iter()
            .flatten()
            .filter(|r| r.role == "LEADER")
            .flat_map(|r| {
                r.peers
                    .iter()
                    .map(|p| (p.node_id.clone(), (p.match_index, p.voter)))
                    .chain(std::iter::once((
                        r.self_id.clone(),
                        (Some(r.last_index), r.voter),
                    )))
            })
            .collect();
        Ok(broker
            .broker_addrs
            .iter()
            .zip(reports)
            .map(|((id, addr), report)| BrokerGroupMember {
                broker_id: *id,
                addr: addr.clone(),
                role: if *id == MASTER_ID {
                    MemberRole::Master
                } else {
                    MemberRole::Slave
                },
                raft: report.map(|r| RaftState {
                    match_index: leader_view
                        .get(&r.self_id)
                        .and_then(|(m, _)| *m)
                        .map(|m| m as i64),
                    voter: leader_view.get(&r.self_id).map_or(r.voter, |(_, v)| *v),
                    node_id: r.self_id,
                    role: r.role,
                    term: r.term as i64,
                    leader_id: r.leader_id,
                    commit_index: r.commit_index as i64,
                    applied_index: r.applied_index as i64,
                }),
            })
            .collect())
    }

    async fn member_status(&self, addr: &str) -> Result<MemberStatus> {
        let request = RemotingCommand::request(request::DLEDGER_METADATA);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        serde_json::from_slice(&response.body).map_err(|err| ClientError::malformed(addr, err))
    }

    /// Asks broker group `broker_name` to hand leadership to node `node_id` (e.g. `n1`);
    /// resolves once `node_id` leads (DLEDGER_LEADERSHIP_TRANSFER, 51005, sent to the
    /// member that leads now).
    pub async fn transfer_leader(&self, broker_name: &str, node_id: &str) -> Result<()> {
        let addr = self.group_leader(broker_name).await?.0;
        let mut request = RemotingCommand::request(request::DLEDGER_LEADERSHIP_TRANSFER);
        request
            .ext_fields
            .insert("transfereeId".to_owned(), node_id.to_owned());
        // A transfer waits for the target to win an election: allow for more than one try.
        let timeout = self.timeout().max(std::time::Duration::from_secs(10));
        self.instance.invoke_ok(&addr, request, timeout).await?;
        Ok(())
    }

    /// Adds node `node_id` (raft address `raft_addr`, `host:port`) to broker group
    /// `broker_name` (DLEDGER_ADD_MEMBER, 51100, sent to the leader). It joins as a learner
    /// and becomes a voter once caught up; returns the leader's account of the change.
    pub async fn add_group_member(
        &self,
        broker_name: &str,
        node_id: &str,
        raft_addr: &str,
    ) -> Result<String> {
        let addr = self.group_leader(broker_name).await?.0;
        let mut request = RemotingCommand::request(request::DLEDGER_ADD_MEMBER);
        request
            .ext_fields
            .insert("nodeId".to_owned(), node_id.to_owned());
        request
            .ext_fields
            .insert("raftAddr".to_owned(), raft_addr.to_owned());
        self.membership_change(&addr, request).await
    }

    /// Removes node `node_id` from broker group `broker_name` (DLEDGER_REMOVE_MEMBER,
    /// 51101). When `node_id` leads, leadership moves first to the voter furthest along.
    pub async fn remove_group_member(&self, broker_name: &str, node_id: &str) -> Result<String> {
        let (mut addr, leader) = self.group_leader(broker_name).await?;
        if leader.self_id == node_id {
            let successor = leader
                .peers
                .iter()
                .filter(|p| p.voter)
                .max_by_key(|p| p.match_index)
                .ok_or_else(|| {
                    ClientError::NotFound(format!(
                        "{node_id} is the only voter of `{broker_name}`: it cannot leave"
                    ))
                })?
                .node_id
                .clone();
            self.transfer_leader(broker_name, &successor).await?;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match self.group_leader(broker_name).await {
                    Ok((next, status)) if status.self_id != node_id => {
                        addr = next;
                        break;
                    }
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Err(ClientError::NotFound(format!(
                            "leadership of `{broker_name}` did not move off {node_id}"
                        )))
                    }
                    _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        }
        let mut request = RemotingCommand::request(request::DLEDGER_REMOVE_MEMBER);
        request
            .ext_fields
            .insert("nodeId".to_owned(), node_id.to_owned());
        self.membership_change(&addr, request).await
    }

    async fn membership_change(&self, addr: &str, request: RemotingCommand) -> Result<String> {
        // The leader answers once the change commits.
        let timeout = self.timeout().max(std::time::Duration::from_secs(15));
        let response = self.instance.invoke_ok(addr, request, timeout).await?;
        Ok(response.remark.unwrap_or_default())
    }

    /// The client address and status of the member leading `broker_name`.
    async fn group_leader(&self, broker_name: &str) -> Result<(String, MemberStatus)> {
        let info = self.cluster_info().await?;
        let broker = info.broker_addr_table.get(broker_name).ok_or_else(|| {
            ClientError::NotFound(format!("broker group `{broker_name}` is unknown"))
        })?;
        // The registered master first; the name servers may lag an election or a transfer
        // (or no master registered while the leader catches up): then ask every member.
        let master = broker.master_addr().map(str::to_owned);
        let others = broker
            .broker_addrs
            .values()
            .filter(|addr| Some(addr.as_str()) != master.as_deref())
            .cloned();
        let mut master_refusal = None;
        for addr in master.clone().into_iter().chain(others) {
            match self.member_status(&addr).await {
                Ok(status) if status.role == "LEADER" => return Ok((addr, status)),
                Ok(_) => {}
                // The master's own refusal says most (e.g. it is in no broker group).
                Err(e) if Some(&addr) == master.as_ref() => master_refusal = Some(e),
                Err(_) => {}
            }
        }
        Err(master_refusal.unwrap_or_else(|| {
            ClientError::NotFound(format!("broker group `{broker_name}` has no leader now"))
        }))
    }

    // ---- consumers ------------------------------------------------------------------

    /// Progress of `group` per queue (broker offset, consumer offset, lag), from every
    /// master hosting the group's retry topic, or `topic`'s brokers when given.
    pub async fn consume_stats(&self, group: &str, topic: Option<&str>) -> Result<ConsumeStats> {
        let route_topic = topic.map_or_else(|| retry_topic(group), str::to_owned);
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_owned(),
            topic: topic.map(str::to_owned),
            topic_list: None,
        };
        let request = RemotingCommand::request(request::GET_CONSUME_STATS).with_header(&header);
        let mut merged = ConsumeStats::default();
        for stats in self
            .ask_masters(&route_topic, &request, ConsumeStats::decode)
            .await?
        {
            merged.offset_table.extend(stats.offset_table);
            merged.consume_tps += stats.consume_tps;
        }
        Ok(merged)
    }

    /// Consumer groups that consume `topic` (QUERY_TOPIC_CONSUME_BY_WHO on its masters).
    pub async fn topic_consumer_groups(&self, topic: &str) -> Result<BTreeSet<String>> {
        let header = TopicRequestHeader {
            topic: topic.to_owned(),
        };
        let request =
            RemotingCommand::request(request::QUERY_TOPIC_CONSUME_BY_WHO).with_header(&header);
        let lists = self.ask_masters(topic, &request, GroupList::decode).await?;
        Ok(lists.into_iter().flat_map(|list| list.group_list).collect())
    }

    /// The group's connected members and subscriptions (GET_CONSUMER_CONNECTION_LIST).
    pub async fn consumer_connection(&self, group: &str) -> Result<ConsumerConnection> {
        let addr = self.group_master(group).await?;
        self.consumer_connection_at(group, &addr).await
    }

    // ---- messages -------------------------------------------------------------------

    /// The message with broker offset id `msg_id` (VIEW_MESSAGE_BY_ID on the broker the id
    /// names).
    pub async fn view_message(&self, msg_id: &str) -> Result<ReceivedMessage> {
        let decoded = decode_offset_msg_id(msg_id.trim())
            .map_err(|err| ClientError::InvalidArgument(format!("message id: {err}")))?;
        let addr = decoded.store_host.to_string();
        let header = ViewMessageRequestHeader {
            offset: decoded.commit_log_offset,
            topic: None,
        };
        let request = RemotingCommand::request(request::VIEW_MESSAGE_BY_ID).with_header(&header);
        let response = self.instance.invoke(&addr, request, self.timeout()).await?;
        if !response.is_success() {
            return Err(broker_error(&addr, &response));
        }
        let broker_name = self
            .broker_name_of(&addr)
            .await
            .unwrap_or_else(|_| addr.clone());
        decode_messages(&response.body, &broker_name)
            .map_err(|err| ClientError::malformed(&addr, err))?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::NotFound(format!("message {msg_id}")))
    }

    /// A message by id: a broker offset id is looked up directly; otherwise the id is
    /// taken as a client unique id (`UNIQ_KEY`) and searched in `topic`.
    pub async fn find_message(&self, topic: Option<&str>, msg_id: &str) -> Result<ReceivedMessage> {
        if decode_offset_msg_id(msg_id.trim()).is_ok() {
            match self.view_message(msg_id).await {
                Ok(message) => return Ok(message),
                Err(error) if topic.is_none() => return Err(error),
                Err(_) => {}
            }
        }
        let topic = topic.ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "`{msg_id}` is not a broker offset id; give its topic"
            ))
        })?;
        self.query_messages(topic, msg_id, DEFAULT_QUERY_MAX, 0, i64::MAX, true)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::NotFound(format!("message {msg_id} in {topic}")))
    }

    /// Messages of `topic` whose keys include `key`, stored between the timestamps.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ReceivedMessage>> {
        self.query_messages(topic, key, max_num, begin_ms, end_ms, false)
            .await
    }

    async fn query_messages(
        &self,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
        unique: bool,
    ) -> Result<Vec<ReceivedMessage>> {
        let route = self.instance.refresh_route(topic).await?;
        let mut found = Vec::new();
        for broker in &route.data.broker_datas {
            let Some(addr) = broker.master_addr() else {
                continue;
            };
            let header = QueryMessageRequestHeader {
                topic: topic.to_owned(),
                key: key.to_owned(),
                max_num,
                begin_timestamp: begin_ms,
                end_timestamp: end_ms,
                unique_key_query: unique.then_some(true),
            };
            let request = RemotingCommand::request(request::QUERY_MESSAGE).with_header(&header);
            let response = self.instance.invoke(addr, request, self.timeout()).await?;
            match response.code {
                response::SUCCESS => {
                    let messages = decode_messages(&response.body, &broker.broker_name)
                        .map_err(|err| ClientError::malformed(addr, err))?;
                    found.extend(messages);
                }
                response::QUERY_NOT_FOUND => {}
                _ => return Err(broker_error(addr, &response)),
            }
        }
        // The broker's index is a hash: keep only exact matches, as Java's client does.
        found.retain(|m| {
            if unique {
                m.uniq_key() == Some(key)
            } else {
                m.keys()
                    .is_some_and(|keys| keys.split(' ').any(|k| k == key))
            }
        });
        found.sort_by_key(|m| (m.store_timestamp_ms, m.queue.queue_id, m.queue_offset));
        found.dedup_by(|a, b| a.offset_msg_id == b.offset_msg_id);
        if max_num > 0 {
            found.truncate(usize::try_from(max_num).unwrap_or(usize::MAX));
        }
        Ok(found)
    }
}

/// RocketMQ's alteration string (`+a=b,-c`) for a topic config's attributes; `None` when
/// there are none.
fn attribute_alterations(
    attributes: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    let items: Vec<String> = attributes
        .iter()
        .map(|(key, value)| match key.strip_prefix('-') {
            Some(removed) => format!("-{removed}"),
            None => format!("+{}={value}", key.trim_start_matches('+')),
        })
        .collect();
    (!items.is_empty()).then(|| items.join(","))
}
