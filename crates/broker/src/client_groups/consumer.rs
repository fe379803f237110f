//! Consumer groups as heartbeats describe them.
//!
//! Each group has channels (one per client connection) and the subscriptions its clients
//! reported. Consumers rebalance queues among the client ids this broker reports
//! (GET_CONSUMER_LIST_BY_GROUP), so when membership or subscriptions change the broker
//! tells every member at once (NOTIFY_CONSUMER_IDS_CHANGED) instead of letting them find
//! out at their next 20-second rebalance.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use remoting::body::{
    ConsumeFromWhere, ConsumeType, ConsumerConnection, MessageModel, SubscriptionData,
};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::connection::ConnectionHandle;
use remoting::header::client::NotifyConsumerIdsChangedRequestHeader;
use tracing::{debug, info};

use super::ClientChannel;

/// How long a notification may wait for room in a client's write queue.
const NOTIFY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ConsumerGroupInfo {
    pub group: String,
    /// By connection id.
    pub channels: HashMap<u64, ClientChannel>,
    /// By topic.
    pub subscriptions: HashMap<String, SubscriptionData>,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    /// When the broker last asked the members for their subscriptions between heartbeats.
    pub subscriptions_asked_at: Option<Instant>,
}

/// One consumer's heartbeat for one group.
#[derive(Debug, Clone)]
pub struct ConsumerRegistration {
    pub group: String,
    pub channel: ClientChannel,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    pub subscriptions: Vec<SubscriptionData>,
}

/// Members of a group to notify after a change.
#[derive(Debug)]
pub struct GroupChange {
    pub group: String,
    pub members: Vec<ConnectionHandle>,
}

pub struct ConsumerManager {
    groups: RwLock<HashMap<String, ConsumerGroupInfo>>,
    max_groups: usize,
    max_channels_per_group: usize,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("too many consumer groups (limit {0})")]
    TooManyGroups(usize),
    #[error("too many clients in consumer group {group} (limit {limit})")]
    TooManyChannels { group: String, limit: usize },
}

impl ConsumerManager {
    pub fn new(max_groups: usize, max_channels_per_group: usize) -> Self {
        ConsumerManager {
            groups: RwLock::new(HashMap::new()),
            max_groups,
            max_channels_per_group,
        }
    }

    /// Records a heartbeat. When the group's members or subscriptions changed, returns the
    /// members to notify.
    pub fn register(
        &self,
        registration: ConsumerRegistration,
    ) -> Result<Option<GroupChange>, RegisterError> {
        let mut groups = self.groups.write();
        if !groups.contains_key(&registration.group) && groups.len() >= self.max_groups {
            return Err(RegisterError::TooManyGroups(self.max_groups));
        }
        let info = groups
            .entry(registration.group.clone())
            .or_insert_with(|| ConsumerGroupInfo {
                group: registration.group.clone(),
                channels: HashMap::new(),
                subscriptions: HashMap::new(),
                consume_type: registration.consume_type,
                message_model: registration.message_model,
                consume_from_where: registration.consume_from_where,
                subscriptions_asked_at: None,
            });
        info.consume_type = registration.consume_type;
        info.message_model = registration.message_model;
        info.consume_from_where = registration.consume_from_where;

        let conn_id = registration.channel.conn.id();
        let members_changed = match info.channels.get_mut(&conn_id) {
            Some(existing) => {
                existing.last_heartbeat = registration.channel.last_heartbeat;
                if existing.client_id != registration.channel.client_id {
                    existing.client_id = registration.channel.client_id.clone();
                    true
                } else {
                    false
                }
            }
            None => {
                if info.channels.len() >= self.max_channels_per_group {
                    let refused = RegisterError::TooManyChannels {
                        group: registration.group.clone(),
                        limit: self.max_channels_per_group,
                    };
                    if info.channels.is_empty() {
                        groups.remove(&registration.group);
                    }
                    return Err(refused);
                }
                info!(group = %registration.group, client = %registration.channel.client_id,
                    addr = %registration.channel.conn.remote_addr(), "new consumer connected");
                info.channels.insert(conn_id, registration.channel);
                true
            }
        };
        let subscriptions_changed = update_subscriptions(info, registration.subscriptions);
        if !(members_changed || subscriptions_changed) {
            return Ok(None);
        }
        Ok(Some(GroupChange {
            group: registration.group,
            members: info.channels.values().map(|c| c.conn.clone()).collect(),
        }))
    }

    /// Removes a client from a group (UNREGISTER_CLIENT). Returns the remaining members to
    /// notify, if the client was a member.
    pub fn unregister(&self, group: &str, conn: &ConnectionHandle) -> Option<GroupChange> {
        let mut groups = self.groups.write();
        let info = groups.get_mut(group)?;
        info.channels.remove(&conn.id())?;
        info!(%group, addr = %conn.remote_addr(), "consumer unregistered");
        let change = GroupChange {
            group: group.to_owned(),
            members: info.channels.values().map(|c| c.conn.clone()).collect(),
        };
        if info.channels.is_empty() {
            groups.remove(group);
        }
        Some(change)
    }

    /// Drops every channel of a closed connection; returns the groups that changed.
    pub fn connection_closed(&self, conn_id: u64) -> Vec<GroupChange> {
        self.remove_channels(|channel| channel.conn.id() == conn_id)
    }

    /// Drops channels whose last heartbeat is older than `timeout` and returns them (to be
    /// closed) with the groups that changed.
    pub fn expire(
        &self,
        now: Instant,
        timeout: Duration,
    ) -> (Vec<ClientChannel>, Vec<GroupChange>) {
        let mut expired = Vec::new();
        let changes = self.remove_channels(|channel| {
            let stale = now.saturating_duration_since(channel.last_heartbeat) > timeout;
            if stale {
                expired.push(channel.clone());
            }
            stale
        });
        (expired, changes)
    }

    fn remove_channels(&self, mut gone: impl FnMut(&ClientChannel) -> bool) -> Vec<GroupChange> {
        let mut groups = self.groups.write();
        let mut changes = Vec::new();
        groups.retain(|group, info| {
            let before = info.channels.len();
            info.channels.retain(|_, channel| !gone(channel));
            if info.channels.len() != before {
                info!(%group, removed = before - info.channels.len(), "consumer channels removed");
                changes.push(GroupChange {
                    group: group.clone(),
                    members: info.channels.values().map(|c| c.conn.clone()).collect(),
                });
            }
            !info.channels.is_empty()
        });
        changes
    }

    /// Client ids of the group's members, sorted (every broker must answer identically
    /// for rebalancing to agree).
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        let groups = self.groups.read();
        let Some(info) = groups.get(group) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = info
            .channels
            .values()
            .map(|c| c.client_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The subscription the group's heartbeats reported for `topic`.
    /// Whether the broker may ask `group`'s members for their subscriptions now (at most
    /// once per `interval`); when it may, the time is recorded.
    pub fn claim_subscription_check(&self, group: &str, interval: Duration) -> bool {
        let mut groups = self.groups.write();
        let Some(info) = groups.get_mut(group) else {
            return false;
        };
        let now = Instant::now();
        if info
            .subscriptions_asked_at
            .is_some_and(|at| now.duration_since(at) < interval)
        {
            return false;
        }
        info.subscriptions_asked_at = Some(now);
        true
    }

    /// Subscriptions a member reported between heartbeats (in its running info): each
    /// replaces the registered one of its topic when newer, as a heartbeat's would. Topics
    /// it does not name are left alone (its next heartbeat settles those).
    pub fn adopt_reported_subscriptions(
        &self,
        group: &str,
        conn_id: u64,
        reported: Vec<SubscriptionData>,
    ) {
        let mut groups = self.groups.write();
        if let Some(info) = groups
            .get_mut(group)
            .filter(|info| info.channels.contains_key(&conn_id))
        {
            adopt_newer(info, reported);
        }
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        self.groups
            .read()
            .get(group)
            .and_then(|info| info.subscriptions.get(topic).cloned())
    }

    pub fn group_exists(&self, group: &str) -> bool {
        self.groups.read().contains_key(group)
    }

    pub fn group_info(&self, group: &str) -> Option<ConsumerGroupInfo> {
        self.groups.read().get(group).cloned()
    }

    /// Online groups that subscribe to `topic`.
    pub fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .groups
            .read()
            .values()
            .filter(|info| info.subscriptions.contains_key(topic))
            .map(|info| info.group.clone())
            .collect();
        groups.sort();
        groups
    }

    /// GET_CONSUMER_CONNECTION_LIST's body.
    pub fn connection_view(&self, group: &str) -> Option<ConsumerConnection> {
        let groups = self.groups.read();
        let info = groups.get(group)?;
        Some(ConsumerConnection {
            connection_set: info
                .channels
                .values()
                .map(ClientChannel::connection_view)
                .collect(),
            subscription_table: info
                .subscriptions
                .iter()
                .map(|(topic, sub)| (topic.clone(), sub.clone()))
                .collect::<BTreeMap<_, _>>(),
            consume_type: Some(info.consume_type),
            message_model: Some(info.message_model),
            consume_from_where: Some(info.consume_from_where),
        })
    }

    /// A live channel of the client `client_id` (a requester may be known here only as a
    /// consumer). A scan, like [`super::ProducerManager::find_channel`].
    pub fn find_channel(&self, client_id: &str) -> Option<ClientChannel> {
        self.groups
            .read()
            .values()
            .flat_map(|info| info.channels.values())
            .find(|channel| channel.client_id == client_id)
            .cloned()
    }

    pub fn group_count(&self) -> usize {
        self.groups.read().len()
    }

    /// One `(group, consume type, channel)` per connected consumer client.
    pub fn channels(&self) -> Vec<(String, ConsumeType, ClientChannel)> {
        self.groups
            .read()
            .values()
            .flat_map(|info| {
                info.channels
                    .values()
                    .map(|channel| (info.group.clone(), info.consume_type, channel.clone()))
            })
            .collect()
    }
}

/// RocketMQ's `updateSubscription`: add new topics, take newer versions, drop topics no
/// longer reported. Returns whether anything changed.
fn update_subscriptions(info: &mut ConsumerGroupInfo, reported: Vec<SubscriptionData>) -> bool {
    let reported_topics: Vec<String> = reported.iter().map(|sub| sub.topic.clone()).collect();
    let changed = adopt_newer(info, reported);
    let before = info.subscriptions.len();
    info.subscriptions
        .retain(|topic, _| reported_topics.iter().any(|t| t == topic));
    changed || info.subscriptions.len() != before
}

/// Takes each reported subscription that is new or newer than the registered one of its
/// topic; returns whether a topic or an expression changed.
fn adopt_newer(info: &mut ConsumerGroupInfo, reported: Vec<SubscriptionData>) -> bool {
    let mut changed = false;
    for sub in reported {
        match info.subscriptions.get(&sub.topic) {
            None => {
                info.subscriptions.insert(sub.topic.clone(), sub);
                changed = true;
            }
            Some(old) if sub.sub_version > old.sub_version => {
                if old.sub_string != sub.sub_string {
                    changed = true;
                }
                info.subscriptions.insert(sub.topic.clone(), sub);
            }
            Some(_) => {}
        }
    }
    changed
}

/// Tells every member of a group to rebalance now (one-way; failures only logged).
pub fn notify_ids_changed(change: GroupChange) {
    if change.members.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for conn in change.members {
            let request = RemotingCommand::request(request::NOTIFY_CONSUMER_IDS_CHANGED)
                .with_header(&NotifyConsumerIdsChangedRequestHeader {
                    consumer_group: change.group.clone(),
                });
            if let Err(error) = conn.invoke_oneway(request, NOTIFY_TIMEOUT).await {
                debug!(group = %change.group, addr = %conn.remote_addr(), %error,
                    "could not notify a consumer of a group change");
            }
        }
    });
}
