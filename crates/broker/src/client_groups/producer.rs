//! Producer groups and their channels, kept for admin views and for calling producers back
//! (a transaction's check goes to one live channel of its producer group).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use remoting::body::ProducerConnection;

use super::ClientChannel;

pub struct ProducerManager {
    /// Group → connection id → channel.
    groups: RwLock<HashMap<String, HashMap<u64, ClientChannel>>>,
    max_groups: usize,
    max_channels_per_group: usize,
    /// Rotates the channel [`ProducerManager::available_channel`] picks first.
    next_pick: AtomicUsize,
}

impl ProducerManager {
    pub fn new(max_groups: usize, max_channels_per_group: usize) -> Self {
        ProducerManager {
            groups: RwLock::new(HashMap::new()),
            max_groups,
            max_channels_per_group,
            next_pick: AtomicUsize::new(0),
        }
    }

    /// Records a heartbeat; returns false when a limit refused it.
    pub fn register(&self, group: &str, channel: ClientChannel) -> bool {
        let mut groups = self.groups.write();
        if !groups.contains_key(group) && groups.len() >= self.max_groups {
            return false;
        }
        let channels = groups.entry(group.to_owned()).or_default();
        let conn_id = channel.conn.id();
        let room = channels.len() < self.max_channels_per_group;
        match channels.get_mut(&conn_id) {
            Some(existing) => {
                existing.last_heartbeat = channel.last_heartbeat;
                existing.client_id = channel.client_id;
                true
            }
            None if room => {
                channels.insert(conn_id, channel);
                true
            }
            None => false,
        }
    }

    pub fn unregister(&self, group: &str, conn_id: u64) {
        let mut groups = self.groups.write();
        if let Some(channels) = groups.get_mut(group) {
            channels.remove(&conn_id);
            if channels.is_empty() {
                groups.remove(group);
            }
        }
    }

    pub fn connection_closed(&self, conn_id: u64) {
        self.remove_channels(|channel| channel.conn.id() == conn_id);
    }

    /// Drops channels silent for longer than `timeout`; returns them (to be closed).
    pub fn expire(&self, now: Instant, timeout: Duration) -> Vec<ClientChannel> {
        let mut expired = Vec::new();
        self.remove_channels(|channel| {
            let stale = now.saturating_duration_since(channel.last_heartbeat) > timeout;
            if stale {
                expired.push(channel.clone());
            }
            stale
        });
        expired
    }

    fn remove_channels(&self, mut gone: impl FnMut(&ClientChannel) -> bool) {
        let mut groups = self.groups.write();
        groups.retain(|_, channels| {
            channels.retain(|_, channel| !gone(channel));
            !channels.is_empty()
        });
    }

    /// A connection of `group` that is still open, taking turns among them (RocketMQ's
    /// `getAvailableChannel`); `None` when no producer of the group is connected.
    pub fn available_channel(&self, group: &str) -> Option<ClientChannel> {
        let groups = self.groups.read();
        let mut open: Vec<&ClientChannel> = groups
            .get(group)?
            .values()
            .filter(|channel| !channel.conn.is_closed())
            .collect();
        if open.is_empty() {
            return None;
        }
        // Connection ids give a stable order, so turns go round all of them.
        open.sort_by_key(|channel| channel.conn.id());
        let turn = self.next_pick.fetch_add(1, Ordering::Relaxed) % open.len();
        open.get(turn).map(|channel| (*channel).clone())
    }

    /// GET_PRODUCER_CONNECTION_LIST's body.
    pub fn connection_view(&self, group: &str) -> Option<ProducerConnection> {
        let groups = self.groups.read();
        let channels = groups.get(group)?;
        Some(ProducerConnection {
            connection_set: channels
                .values()
                .map(ClientChannel::connection_view)
                .collect(),
        })
    }

    /// A live channel of the client `client_id` (request-reply pushes replies to it). A scan:
    /// replies are rare next to sends, and the table is bounded.
    pub fn find_channel(&self, client_id: &str) -> Option<ClientChannel> {
        self.groups
            .read()
            .values()
            .flat_map(|channels| channels.values())
            .find(|channel| channel.client_id == client_id)
            .cloned()
    }

    pub fn group_count(&self) -> usize {
        self.groups.read().len()
    }

    /// Each connected producer client once, however many producer groups it sends for.
    pub fn distinct_channels(&self) -> Vec<ClientChannel> {
        let groups = self.groups.read();
        let mut by_connection: HashMap<u64, &ClientChannel> = HashMap::new();
        for channel in groups.values().flat_map(|channels| channels.values()) {
            by_connection.entry(channel.conn.id()).or_insert(channel);
        }
        by_connection.into_values().cloned().collect()
    }
}
