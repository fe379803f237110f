//! The 5.x producers connected over Telemetry, by producer group: RocketMQ's proxy names a
//! 5.x producer's group after each topic it publishes (the `PGROUP` of its transactional
//! messages). The master's transaction checks reach them here, as a
//! RecoverOrphanedTransactionCommand on their stream, when no remoting producer of the
//! group is connected.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::channel::mpsc::Sender;
use grpc::v2::{self, telemetry_command::Command};
use message::MessageView;
use parking_lot::Mutex;
use remoting::command::RemotingCommand;
use remoting::header::transaction::CheckTransactionStateRequestHeader;
use tokio::sync::Notify;
use tracing::debug;

use super::convert;
use super::status;
use super::transaction_id::TransactionPlace;

/// Where a Telemetry stream's commands to its client go.
pub type TelemetrySender = Sender<Result<v2::TelemetryCommand, tonic::Status>>;

/// Most producers (client and group pairs) kept; a stream beyond is served but not asked.
const MAX_PRODUCERS: usize = 100_000;

#[derive(Default)]
pub struct TelemetryProducers {
    streams: Mutex<Streams>,
    next_pick: AtomicUsize,
    /// Told when a client registers groups (a relay heartbeats them to the master).
    registered: Notify,
}

#[derive(Default)]
struct Streams {
    by_group: HashMap<String, BTreeMap<String, TelemetrySender>>,
    groups_of: HashMap<String, Vec<String>>,
    count: usize,
}

impl Streams {
    fn remove(&mut self, client_id: &str) {
        for group in self.groups_of.remove(client_id).unwrap_or_default() {
            if let Some(clients) = self.by_group.get_mut(&group) {
                if clients.remove(client_id).is_some() {
                    self.count -= 1;
                }
                if clients.is_empty() {
                    self.by_group.remove(&group);
                }
            }
        }
    }
}

impl TelemetryProducers {
    /// `client_id` publishes `groups` (its topics) and is reached through `sender`; replaces
    /// what the client registered before (a re-opened stream, new settings).
    pub fn register(&self, client_id: &str, groups: Vec<String>, sender: &TelemetrySender) {
        let mut streams = self.streams.lock();
        streams.remove(client_id);
        let mut kept = Vec::with_capacity(groups.len());
        for group in groups {
            if streams.count >= MAX_PRODUCERS {
                break;
            }
            streams
                .by_group
                .entry(group.clone())
                .or_default()
                .insert(client_id.to_owned(), sender.clone());
            streams.count += 1;
            kept.push(group);
        }
        streams.groups_of.insert(client_id.to_owned(), kept);
        drop(streams);
        self.registered.notify_one();
    }

    /// Resolves when a client registered groups since the last call.
    pub async fn changed(&self) {
        self.registered.notified().await;
    }

    /// The groups some connected producer publishes.
    pub fn groups(&self) -> Vec<String> {
        self.streams.lock().by_group.keys().cloned().collect()
    }

    /// The client's stream ended.
    pub fn forget(&self, client_id: &str) {
        self.streams.lock().remove(client_id);
    }

    /// Hands a CHECK_TRANSACTION_STATE (its header naming the half message, its body the
    /// message in its real topic) to one producer of `group`, taking turns; false when no
    /// producer of the group took it (none connected, or their streams are full: the check
    /// service asks again next round).
    pub fn ask(&self, group: &str, check: &RemotingCommand) -> bool {
        let Some(command) = recover_command(check) else {
            return false;
        };
        let mut streams = self.streams.lock();
        let Some(clients) = streams.by_group.get(group) else {
            return false;
        };
        let senders: Vec<(String, TelemetrySender)> = clients
            .iter()
            .map(|(id, sender)| (id.clone(), sender.clone()))
            .collect();
        let start = self.next_pick.fetch_add(1, Ordering::Relaxed);
        let mut closed = Vec::new();
        let mut taken = false;
        for turn in 0..senders.len() {
            let (client_id, mut sender) = senders[(start + turn) % senders.len()].clone();
            match sender.try_send(Ok(command.clone())) {
                Ok(()) => {
                    debug!(group, client = %client_id, "transaction check sent over telemetry");
                    taken = true;
                    break;
                }
                Err(e) if e.is_disconnected() => closed.push(client_id),
                Err(_) => {}
            }
        }
        for client_id in closed {
            streams.remove(&client_id);
        }
        taken
    }
}

/// The RecoverOrphanedTransactionCommand a 5.x producer gets for a check: the message as
/// it will be delivered, and a transaction id naming the half message's place.
fn recover_command(check: &RemotingCommand) -> Option<v2::TelemetryCommand> {
    let header: CheckTransactionStateRequestHeader = check.decode_header().ok()?;
    let view = MessageView::parse(&check.body).ok()?;
    let uniq_key = header.transaction_id.or(header.msg_id)?;
    let transaction_id = TransactionPlace {
        uniq_key,
        commit_log_offset: header.commit_log_offset,
        queue_offset: header.tran_state_table_offset,
    }
    .encode();
    let message = convert::incoming(&view, view.topic(), String::new());
    Some(v2::TelemetryCommand {
        status: status::ok(),
        command: Some(Command::RecoverOrphanedTransactionCommand(
            v2::RecoverOrphanedTransactionCommand {
                message: Some(message),
                transaction_id,
            },
        )),
    })
}
