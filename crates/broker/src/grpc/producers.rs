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

    /// Resolves when a client registered groups, or one that had left, since the last call.
    pub async fn changed(&self) {
        self.registered.notified().await;
    }

    /// The groups some connected producer publishes.
    pub fn groups(&self) -> Vec<String> {
        self.streams.lock().by_group.keys().cloned().collect()
    }

    /// The client's stream `sender` writes to ended. A client that opened a new stream
    /// before the old one ended keeps what the new one registered.
    pub fn forget(&self, client_id: &str, sender: &TelemetrySender) {
        let mut streams = self.streams.lock();
        let registered_by_this_stream = streams
            .groups_of
            .get(client_id)
            .and_then(|groups| groups.first())
            .and_then(|group| streams.by_group.get(group)?.get(client_id))
            .is_none_or(|registered| registered.same_receiver(sender));
        if registered_by_this_stream {
            streams.remove(client_id);
            drop(streams);
            self.registered.notify_one();
        }
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
    let message = convert::incoming(&view, view.topic(), Some(String::new()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{append_record, NewMessage};
    use crate::store_facade::RecordBatch;
    use futures::StreamExt;
    use remoting::code::request::CHECK_TRANSACTION_STATE;

    /// A check of the half message at CommitLog offset 4096, half-queue offset 7, as the
    /// master sends it: the message in its real topic, of producer group `Orders`.
    fn check() -> RemotingCommand {
        let properties = message::properties::encode([
            ("UNIQ_KEY", "7F0000010000"),
            ("PGROUP", "Orders"),
            ("TRAN_MSG", "true"),
        ]);
        let mut batch = RecordBatch::default();
        let message = NewMessage {
            topic: "Orders",
            queue_id: 1,
            body: b"paid",
            flag: 0,
            properties: &properties,
            sys_flag: 0,
            born_timestamp_ms: 1_000,
            born_host: "10.0.0.9:4000".parse().unwrap(),
            reconsume_times: 0,
        };
        append_record(&mut batch, &message, "127.0.0.1:10911".parse().unwrap()).unwrap();
        let header = CheckTransactionStateRequestHeader {
            topic: Some("RMQ_SYS_TRANS_HALF_TOPIC".into()),
            tran_state_table_offset: 7,
            commit_log_offset: 4096,
            msg_id: Some("7F0000010000".into()),
            transaction_id: Some("7F0000010000".into()),
            offset_msg_id: None,
            broker_name: None,
        };
        RemotingCommand::request(CHECK_TRANSACTION_STATE)
            .with_header(&header)
            .with_body(batch.records()[0].to_vec())
    }

    fn stream() -> (
        TelemetrySender,
        futures::channel::mpsc::Receiver<Result<v2::TelemetryCommand, tonic::Status>>,
    ) {
        futures::channel::mpsc::channel(4)
    }

    #[test]
    fn a_check_reaches_the_groups_producer_with_an_id_naming_the_half_message() {
        let producers = TelemetryProducers::default();
        let (sender, mut commands) = stream();
        assert!(!producers.ask("Orders", &check()), "no producer yet");
        producers.register("c1", vec!["Orders".into()], &sender);
        assert!(producers.ask("Orders", &check()));
        let sent = futures::executor::block_on(commands.next())
            .unwrap()
            .unwrap();
        let Some(Command::RecoverOrphanedTransactionCommand(recover)) = sent.command else {
            panic!("{sent:?}");
        };
        let place = TransactionPlace::decode(&recover.transaction_id).unwrap();
        assert_eq!(
            (
                place.uniq_key.as_str(),
                place.commit_log_offset,
                place.queue_offset
            ),
            ("7F0000010000", 4096, 7)
        );
        let message = recover.message.unwrap();
        assert_eq!(message.topic.unwrap().name, "Orders");
        assert_eq!(message.body, b"paid");
    }

    #[test]
    fn an_old_stream_ending_leaves_the_new_one_registered() {
        let producers = TelemetryProducers::default();
        let (old, _old_commands) = stream();
        let (new, _new_commands) = stream();
        producers.register("c1", vec!["Orders".into()], &old);
        producers.register("c1", vec!["Orders".into()], &new);
        producers.forget("c1", &old);
        assert_eq!(producers.groups(), vec!["Orders".to_owned()]);
        producers.forget("c1", &new);
        assert!(producers.groups().is_empty());
        assert!(!producers.ask("Orders", &check()));
    }
}
