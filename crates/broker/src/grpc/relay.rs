//! A broker group's followers answer gRPC too: what only the master may do (sends, pops,
//! acks) is handed to it over the remoting protocol and its answer passed back, so a 5.x
//! client given every member's endpoint keeps working whichever member it reaches and
//! through a failover, without waiting for a route refresh.
//!
//! The other way round, a follower stands in for the 5.x producers whose Telemetry streams
//! it holds, as RocketMQ's proxy does for its clients: it heartbeats their producer groups
//! to the master over the same connection, so the master's transaction checks come to it,
//! and it hands each to a producer of the group on its stream.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use message::properties::keys;
use message::MessageView;
use parking_lot::Mutex;
use remoting::body::heartbeat::{HeartbeatData, ProducerData};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::client::UnregisterClientRequestHeader;
use tokio::sync::OnceCell;
use tracing::debug;

use super::producers::TelemetryProducers;
use crate::context::BrokerContext;

/// How long a looked-up master address is trusted.
const MASTER_CACHE: Duration = Duration::from_secs(1);
/// How long a call waits for the group's next master, when the name servers list none or
/// the master could not be reached (killed), before it is answered SERVICE_NOT_AVAILABLE; a
/// failover takes about a second.
const NEXT_MASTER_WAIT: Duration = Duration::from_secs(3);
/// How often the name servers are asked for the next master meanwhile.
const NEXT_MASTER_POLL: Duration = Duration::from_millis(100);
/// Added to what the request itself may take (a pop's long polling).
const FORWARD_MARGIN: Duration = Duration::from_secs(5);

/// How often a follower heartbeats its 5.x producers' groups to the master (the master
/// forgets a producer channel after two minutes without one).
const PRODUCER_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How long a heartbeat to the master may take.
const HEARTBEAT_TAKES: Duration = Duration::from_secs(3);

/// Which calls that reached no answer from the master go to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Only a call the master never received: running one twice could store it twice.
    NotSentOnly,
    /// Also one the master may have run.
    EvenIfSent,
}

/// What became of a call handed to the master.
enum Forwarded {
    Answered(RemotingCommand),
    /// The master could not be reached: nothing was sent.
    NotSent(RemotingCommand),
    /// Sent, but the connection failed or the time ran out before an answer: the master
    /// may have run it.
    Unanswered(RemotingCommand),
}

pub struct MasterRelay {
    /// How the relayed requests are signed for the master.
    client_config: ClientConfig,
    client: OnceCell<RemotingClient>,
    master: Mutex<Option<(String, Instant)>>,
    producers: Arc<TelemetryProducers>,
}

/// Answers what the master sends over the relay's connection: transaction checks, handed
/// to a 5.x producer of the message's group here.
struct CheckForwarder {
    producers: Arc<TelemetryProducers>,
}

impl RequestProcessor for CheckForwarder {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        if request.code != code::CHECK_TRANSACTION_STATE {
            return Some(RemotingCommand::error_to(
                &request,
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!("request code {} is not answered by a relay", request.code),
            ));
        }
        let group = MessageView::parse(&request.body)
            .ok()
            .and_then(|view| view.property(keys::PGROUP).map(str::to_owned));
        match group {
            Some(group) if self.producers.ask(&group, &request) => {}
            group => debug!(?group, "transaction check from the master not handed on"),
        }
        None
    }
}

impl MasterRelay {
    pub fn new(producers: Arc<TelemetryProducers>, client_config: ClientConfig) -> MasterRelay {
        MasterRelay {
            client_config,
            client: OnceCell::new(),
            master: Mutex::new(None),
            producers,
        }
    }

    async fn client(&self) -> &RemotingClient {
        self.client
            .get_or_init(|| async {
                let forwarder = Arc::new(CheckForwarder {
                    producers: Arc::clone(&self.producers),
                });
                RemotingClient::with_request_handler(self.client_config.clone(), forwarder)
            })
            .await
    }

    /// On a follower, until the broker shuts down: heartbeats the producer groups of the
    /// 5.x producers connected here to the master, at once when a group appears and then
    /// every [`PRODUCER_HEARTBEAT_INTERVAL`], and unregisters a group once its last producer
    /// left. Left registered, a group no one heartbeats would expire on the master after
    /// `channelExpiredTimeout`, and the master would close this connection, failing the
    /// relayed calls under way on it.
    pub async fn keep_producers_registered(&self, ctx: &BrokerContext) {
        let client_id = format!("grpc-relay@{}", ctx.broker_addr);
        // The groups the master has from this relay's heartbeats.
        let mut registered: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                _ = self.producers.changed() => {}
                _ = tokio::time::sleep(PRODUCER_HEARTBEAT_INTERVAL) => {}
                _ = ctx.shutdown.cancelled() => return,
            }
            if ctx.group.is_none() || ctx.role.is_master() {
                registered.clear();
                continue;
            }
            let groups: BTreeSet<String> = self.producers.groups().into_iter().collect();
            let gone: Vec<String> = registered.difference(&groups).cloned().collect();
            if groups.is_empty() && gone.is_empty() {
                continue;
            }
            let Some(master) = self.master(ctx).await else {
                continue;
            };
            for group in gone {
                let header = UnregisterClientRequestHeader {
                    client_id: client_id.clone(),
                    producer_group: Some(group.clone()),
                    consumer_group: None,
                };
                let command =
                    RemotingCommand::request(code::UNREGISTER_CLIENT).with_header(&header);
                if self.tell_master(&master, command).await {
                    registered.remove(&group);
                }
            }
            if groups.is_empty() {
                continue;
            }
            let heartbeat = HeartbeatData {
                client_id: client_id.clone(),
                producer_data_set: groups
                    .iter()
                    .map(|group_name| ProducerData {
                        group_name: group_name.clone(),
                    })
                    .collect(),
                consumer_data_set: Vec::new(),
                heartbeat_fingerprint: 0,
                without_sub: false,
            };
            let command = RemotingCommand::request(code::HEART_BEAT).with_body(heartbeat.encode());
            if self.tell_master(&master, command).await {
                registered.extend(groups);
            }
        }
    }

    /// Sends a heartbeat or an unregistration to the master; whether it was answered (if
    /// not, the master is looked up again next time).
    async fn tell_master(&self, master: &str, command: RemotingCommand) -> bool {
        match self
            .client()
            .await
            .invoke(master, command, HEARTBEAT_TAKES)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                debug!(%master, error = %e, "producer registration at the master failed");
                *self.master.lock() = None;
                false
            }
        }
    }

    /// Runs `command` here on a master or a standalone broker (`local`), else on the
    /// group's master. `takes` is how long the command may take there.
    pub async fn run<F, Fut>(
        &self,
        ctx: &BrokerContext,
        command: RemotingCommand,
        takes: Duration,
        local: F,
    ) -> RemotingCommand
    where
        F: FnOnce(RemotingCommand) -> Fut,
        Fut: Future<Output = RemotingCommand>,
    {
        self.run_with(ctx, command, takes, Resend::NotSentOnly, local)
            .await
    }

    /// [`MasterRelay::run`] for a command that does the same whether it runs once or twice
    /// (an ack): one the master may have run without answering (killed after storing an
    /// ack, before its answer left) goes to the next master too, so the client hears
    /// success instead of a failure for an ack that in fact held.
    pub async fn run_idempotent<F, Fut>(
        &self,
        ctx: &BrokerContext,
        command: RemotingCommand,
        takes: Duration,
        local: F,
    ) -> RemotingCommand
    where
        F: FnOnce(RemotingCommand) -> Fut,
        Fut: Future<Output = RemotingCommand>,
    {
        self.run_with(ctx, command, takes, Resend::EvenIfSent, local)
            .await
    }

    async fn run_with<F, Fut>(
        &self,
        ctx: &BrokerContext,
        command: RemotingCommand,
        takes: Duration,
        resend: Resend,
        local: F,
    ) -> RemotingCommand
    where
        F: FnOnce(RemotingCommand) -> Fut,
        Fut: Future<Output = RemotingCommand>,
    {
        if ctx.group.is_none() || ctx.role.is_master() {
            return local(command).await;
        }
        // With no master now (the name servers dropped the old one and the next has not
        // registered yet), or one that could not be reached (so the call was not sent, or
        // it may run again), the call waits for the group's next master (this member, or
        // another one) and goes there instead of failing the client through the failover.
        let mut refused = RemotingCommand::error_to(
            &command,
            response::SERVICE_NOT_AVAILABLE,
            "the broker group has no master now; try again",
        );
        let mut tried: Option<String> = None;
        let mut deadline = Instant::now() + NEXT_MASTER_WAIT;
        loop {
            if ctx.role.is_master() {
                return local(command).await;
            }
            match self.master(ctx).await {
                Some(master) if tried.as_ref() != Some(&master) => {
                    refused = match self.forward(&master, &command, takes).await {
                        Forwarded::Answered(answer) => return answer,
                        Forwarded::NotSent(refused) => refused,
                        Forwarded::Unanswered(failed) if resend == Resend::EvenIfSent => failed,
                        Forwarded::Unanswered(failed) => return failed,
                    };
                    tried = Some(master);
                    deadline = Instant::now() + NEXT_MASTER_WAIT;
                }
                _ => *self.master.lock() = None,
            }
            if Instant::now() >= deadline || ctx.shutdown.is_cancelled() {
                return refused;
            }
            tokio::time::sleep(NEXT_MASTER_POLL).await;
        }
    }

    /// Sends `command` to `master`; without an answer from it, the error for the client.
    async fn forward(&self, master: &str, command: &RemotingCommand, takes: Duration) -> Forwarded {
        let mut forwarded = command.clone();
        forwarded.opaque = remoting::command::next_opaque();
        let result = self
            .client()
            .await
            .invoke(master, forwarded, takes + FORWARD_MARGIN)
            .await;
        let error = match result {
            Ok(answer) => return Forwarded::Answered(answer),
            Err(e) => e,
        };
        debug!(%master, error = %error, "forwarding to the master failed");
        *self.master.lock() = None;
        let answer = RemotingCommand::error_to(
            command,
            response::SERVICE_NOT_AVAILABLE,
            format!("the master {master} did not answer: {error}"),
        );
        if error.may_have_arrived() {
            Forwarded::Unanswered(answer)
        } else {
            Forwarded::NotSent(answer)
        }
    }

    /// The group's master as the name servers list it (this broker registers under its
    /// own name as a topic, so that topic's route names it).
    async fn master(&self, ctx: &BrokerContext) -> Option<String> {
        if let Some((addr, at)) = self.master.lock().clone() {
            if at.elapsed() < MASTER_CACHE {
                return Some(addr);
            }
        }
        let route = ctx.routes.route(&ctx.config.broker_name).await?;
        let master = route
            .broker_datas
            .iter()
            .find(|b| b.broker_name == ctx.config.broker_name)?
            .master_addr()?
            .to_owned();
        if master == ctx.broker_addr {
            return None;
        }
        *self.master.lock() = Some((master.clone(), Instant::now()));
        Some(master)
    }
}
