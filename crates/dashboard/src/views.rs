//! What the pages show, gathered from the name servers and brokers with the project's
//! admin client and shaped as the JSON the browser reads.

use std::collections::{BTreeMap, BTreeSet};

use client::{Admin, ClientError, ReceivedMessage};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::error::ApiError;

/// Topics (and consumer groups) a list page covers at most: each is a request per master.
pub const MAX_LISTED: usize = 500;
/// Requests a list page has in flight at once.
const CONCURRENCY: usize = 8;
/// Message bodies are shown up to this many bytes.
const MAX_BODY_SHOWN: usize = 4096;
/// Messages a key lookup returns at most.
const MAX_BY_KEY: i32 = 32;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub namesrv: Vec<String>,
    pub clusters: Vec<ClusterEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEntry {
    pub name: String,
    pub groups: Vec<BrokerGroupEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerGroupEntry {
    pub broker_name: String,
    pub members: Vec<MemberEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry {
    pub broker_id: i64,
    pub addr: String,
    pub role: &'static str,
    pub raft: Option<client::admin::RaftState>,
    /// Entries the member has yet to apply of what its leader committed.
    pub lag: Option<i64>,
}

pub async fn cluster(admin: &Admin) -> Result<ClusterView, ApiError> {
    let info = admin.cluster_info().await?;
    let mut clusters = Vec::new();
    for (name, broker_names) in &info.cluster_addr_table {
        let mut groups = Vec::new();
        for broker_name in broker_names {
            let members = admin.broker_group(broker_name).await?;
            let leader_commit = members
                .iter()
                .filter_map(|m| m.raft.as_ref())
                .find(|r| Some(&r.node_id) == r.leader_id.as_ref())
                .map(|r| r.commit_index);
            groups.push(BrokerGroupEntry {
                broker_name: broker_name.clone(),
                members: members
                    .into_iter()
                    .map(|m| MemberEntry {
                        broker_id: m.broker_id,
                        addr: m.addr,
                        role: match m.role {
                            client::admin::MemberRole::Master => "MASTER",
                            client::admin::MemberRole::Slave => "SLAVE",
                        },
                        lag: m
                            .raft
                            .as_ref()
                            .zip(leader_commit)
                            .map(|(r, commit)| (commit - r.applied_index).max(0)),
                        raft: m.raft,
                    })
                    .collect(),
            });
        }
        clusters.push(ClusterEntry {
            name: name.clone(),
            groups,
        });
    }
    Ok(ClusterView {
        namesrv: admin.namesrv_addrs().to_vec(),
        clusters,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub at_ms: i64,
    pub brokers: Vec<BrokerThroughput>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerThroughput {
    pub broker_name: String,
    pub addr: String,
    pub in_tps: f64,
    pub out_tps: f64,
}

/// Each broker's put and get rates over its last 10 s (`putTps`, `getTransferedTps`).
pub async fn throughput(admin: &Admin) -> Result<Throughput, ApiError> {
    let info = admin.cluster_info().await?;
    let members: Vec<(String, String)> = info
        .broker_addr_table
        .values()
        .flat_map(|b| {
            b.broker_addrs
                .values()
                .map(|addr| (b.broker_name.clone(), addr.clone()))
        })
        .collect();
    let brokers = stream::iter(members)
        .map(|(broker_name, addr)| async move {
            // A member that does not answer (killed, restarting) shows nothing, not an error
            // for the page.
            let runtime = admin.broker_runtime_info(&addr).await.ok()?;
            let rate = |key: &str| {
                runtime
                    .get(key)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            Some(BrokerThroughput {
                in_tps: rate("putTps"),
                out_tps: rate("getTransferedTps"),
                broker_name,
                addr,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|b| async move { b })
        .collect::<Vec<_>>()
        .await;
    Ok(Throughput {
        at_ms: now_ms(),
        brokers,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    pub topics: Vec<TopicSummary>,
    /// More topics exist than [`MAX_LISTED`].
    pub truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicSummary {
    pub topic: String,
    pub queues: usize,
    /// Messages retained: the sum over queues of max - min offset.
    pub messages: i64,
    pub in_tps: f64,
}

/// The names brokers register as topics of their own: each cluster's and broker group's
/// name (and the cluster's reply topic).
async fn own_topic_names(admin: &Admin) -> Result<BTreeSet<String>, ClientError> {
    let info = admin.cluster_info().await?;
    Ok(info
        .cluster_addr_table
        .keys()
        .flat_map(|cluster| [cluster.clone(), message::topic::reply_topic(cluster)])
        .chain(info.broker_addr_table.keys().cloned())
        .collect())
}

/// Whether a topic is the brokers' own rather than an application's.
fn is_internal_topic(topic: &str, own: &BTreeSet<String>) -> bool {
    message::topic::is_system_topic(topic)
        || message::topic::is_retry_topic(topic)
        || message::topic::is_dlq_topic(topic)
        || own.contains(topic)
}

/// The applications' topics (all with `with_system`).
async fn listed_topics(admin: &Admin, with_system: bool) -> Result<Vec<String>, ClientError> {
    let all = admin.topic_list().await?;
    if with_system {
        return Ok(all.into_iter().collect());
    }
    let own = own_topic_names(admin).await?;
    Ok(all
        .into_iter()
        .filter(|t| !is_internal_topic(t, &own))
        .collect())
}

pub async fn topics(admin: &Admin, with_system: bool) -> Result<TopicList, ApiError> {
    let names = listed_topics(admin, with_system).await?;
    let truncated = names.len() > MAX_LISTED;
    let mut topics = stream::iter(names.into_iter().take(MAX_LISTED))
        .map(|topic| async move {
            // A topic whose stats fail (no route yet, being deleted) is listed empty.
            let stats = admin.topic_stats(&topic).await.unwrap_or_default();
            TopicSummary {
                queues: stats.offset_table.len(),
                messages: stats
                    .offset_table
                    .values()
                    .map(|o| (o.max_offset - o.min_offset).max(0))
                    .sum(),
                in_tps: stats.topic_put_tps,
                topic,
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(TopicList { topics, truncated })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicDetail {
    pub topic: String,
    pub in_tps: f64,
    pub queues: Vec<QueueEntry>,
    pub groups: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    pub broker_name: String,
    pub queue_id: i32,
    pub min_offset: i64,
    pub max_offset: i64,
    pub last_update: i64,
}

pub async fn topic(admin: &Admin, topic: &str) -> Result<TopicDetail, ApiError> {
    let stats = admin.topic_stats(topic).await?;
    // No consumer yet is an answer, not a failure of the page.
    let groups = admin.topic_consumer_groups(topic).await.unwrap_or_default();
    Ok(TopicDetail {
        topic: topic.to_owned(),
        in_tps: stats.topic_put_tps,
        queues: stats
            .offset_table
            .iter()
            .map(|(queue, offsets)| QueueEntry {
                broker_name: queue.broker_name.clone(),
                queue_id: queue.queue_id,
                min_offset: offsets.min_offset,
                max_offset: offsets.max_offset,
                last_update: offsets.last_update_timestamp,
            })
            .collect(),
        groups: groups
            .into_iter()
            .filter(|g| !message::topic::is_system_group(g))
            .collect(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupList {
    pub groups: Vec<GroupSummary>,
    pub truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub group: String,
    pub topics: Vec<String>,
    pub lag: i64,
    pub consume_tps: f64,
    pub clients: usize,
}

/// The consumer groups of the applications' topics, as the brokers know who consumes each.
pub async fn groups(admin: &Admin) -> Result<GroupList, ApiError> {
    let mut topics = listed_topics(admin, false).await?;
    topics.truncate(MAX_LISTED);
    let consumed_by = stream::iter(topics)
        .map(|topic| async move {
            let groups = admin
                .topic_consumer_groups(&topic)
                .await
                .unwrap_or_default();
            (topic, groups)
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (topic, groups) in consumed_by {
        for group in groups {
            if !message::topic::is_system_group(&group) {
                by_group.entry(group).or_default().insert(topic.clone());
            }
        }
    }
    let truncated = by_group.len() > MAX_LISTED;
    let mut groups = stream::iter(by_group.into_iter().take(MAX_LISTED))
        .map(|(group, topics)| async move {
            let (lag, consume_tps) = match consume_stats(admin, &group, &topics).await {
                Ok(progress) => (progress.lag(), progress.consume_tps),
                Err(_) => (0, 0.0),
            };
            let clients = admin
                .consumer_connection(&group)
                .await
                .map_or(0, |c| c.connection_set.len());
            GroupSummary {
                group,
                topics: topics.into_iter().collect(),
                lag,
                consume_tps,
                clients,
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(GroupList { groups, truncated })
}

/// A group's progress on its topics: each queue's, and its consume rate over them all.
struct Progress {
    queues: Vec<GroupQueueEntry>,
    consume_tps: f64,
}

impl Progress {
    fn lag(&self) -> i64 {
        self.queues.iter().map(|q| q.lag).sum()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupQueueEntry {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub lag: i64,
    pub last_timestamp: i64,
}

/// The group's progress on each of `topics` (asked per topic: a group that pops or
/// consumes over gRPC may have no retry topic to route a topic-less request by).
async fn consume_stats(
    admin: &Admin,
    group: &str,
    topics: &BTreeSet<String>,
) -> Result<Progress, ClientError> {
    let mut progress = Progress {
        queues: Vec::new(),
        consume_tps: 0.0,
    };
    for topic in topics {
        let stats = admin.consume_stats(group, Some(topic)).await?;
        progress.consume_tps += stats.consume_tps;
        for (queue, offsets) in &stats.offset_table {
            progress.queues.push(GroupQueueEntry {
                topic: queue.topic.clone(),
                broker_name: queue.broker_name.clone(),
                queue_id: queue.queue_id,
                broker_offset: offsets.broker_offset,
                consumer_offset: offsets.consumer_offset,
                lag: (offsets.broker_offset - offsets.consumer_offset.max(0)).max(0),
                last_timestamp: offsets.last_timestamp,
            });
        }
    }
    Ok(progress)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDetail {
    pub group: String,
    pub lag: i64,
    pub consume_tps: f64,
    pub queues: Vec<GroupQueueEntry>,
    pub clients: Vec<ClientEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientEntry {
    pub client_id: String,
    pub addr: String,
    pub language: String,
    pub version: i32,
}

pub async fn group(admin: &Admin, group: &str) -> Result<GroupDetail, ApiError> {
    let connection = admin.consumer_connection(group).await.ok();
    // The topics it consumes: its online members' subscriptions, else every topic whose
    // brokers name it as a consumer.
    let mut topics: BTreeSet<String> = connection
        .as_ref()
        .map(|c| {
            c.subscription_table
                .keys()
                .filter(|t| !message::topic::is_retry_topic(t))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if topics.is_empty() {
        for topic in listed_topics(admin, false).await? {
            if admin
                .topic_consumer_groups(&topic)
                .await
                .is_ok_and(|groups| groups.contains(group))
            {
                topics.insert(topic);
            }
            if topics.len() >= MAX_LISTED {
                break;
            }
        }
    }
    if topics.is_empty() && connection.is_none() {
        return Err(ApiError::NotFound(format!(
            "consumer group {group}: no online member and no topic it consumes"
        )));
    }
    let progress = consume_stats(admin, group, &topics).await?;
    Ok(GroupDetail {
        group: group.to_owned(),
        lag: progress.lag(),
        consume_tps: progress.consume_tps,
        queues: progress.queues,
        clients: connection
            .map(|c| {
                c.connection_set
                    .into_iter()
                    .map(|c| ClientEntry {
                        client_id: c.client_id,
                        addr: c.client_addr,
                        language: format!("{:?}", c.language),
                        version: c.version,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Messages {
    pub messages: Vec<MessageEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEntry {
    pub msg_id: String,
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub born_host: String,
    /// The body as text (lossy), cut at [`MAX_BODY_SHOWN`] bytes.
    pub body: String,
    pub properties: BTreeMap<String, String>,
}

impl From<ReceivedMessage> for MessageEntry {
    fn from(m: ReceivedMessage) -> Self {
        let property = |key: &str| m.properties.get(key).cloned();
        let shown = &m.body[..m.body.len().min(MAX_BODY_SHOWN)];
        MessageEntry {
            msg_id: property("UNIQ_KEY").unwrap_or_else(|| m.offset_msg_id.clone()),
            tags: property("TAGS"),
            keys: property("KEYS"),
            topic: m.topic.clone(),
            broker_name: m.queue.broker_name.clone(),
            queue_id: m.queue.queue_id,
            queue_offset: m.queue_offset,
            born_timestamp: m.born_timestamp_ms,
            store_timestamp: m.store_timestamp_ms,
            born_host: m.born_host.to_string(),
            body: String::from_utf8_lossy(shown).into_owned(),
            properties: m.properties.into_iter().collect(),
        }
    }
}

pub async fn message_by_id(
    admin: &Admin,
    topic: Option<&str>,
    msg_id: &str,
) -> Result<Messages, ApiError> {
    let message = admin.find_message(topic, msg_id).await?;
    Ok(Messages {
        messages: vec![message.into()],
    })
}

pub async fn messages_by_key(admin: &Admin, topic: &str, key: &str) -> Result<Messages, ApiError> {
    let found = admin
        .query_by_key(topic, key, MAX_BY_KEY, 0, i64::MAX)
        .await?;
    if found.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no message of {topic} with key {key}"
        )));
    }
    Ok(Messages {
        messages: found.into_iter().map(Into::into).collect(),
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
