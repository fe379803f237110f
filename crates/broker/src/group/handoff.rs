//! Graceful hand-off: a master that is asked to stop (SIGTERM) first moves leadership to
//! the most up-to-date follower that answered recently, so clients see one short election
//! gap instead of the minute RocketMQ's DLedger mode takes to notice a stopped master
//! (apache/rocketmq#3858). Sends that reach it meanwhile wait for the new master and are
//! forwarded to it ([`HandoffGate`]); it keeps forwarding for `masterShutdownForwardMs`
//! (longer than clients' route poll) while producers' routes catch up, then stops.
//!
//! A master that loses leadership while it keeps running does the same (see
//! [`super::demotion`]). A forwarded send carries [`FORWARDED_BY`] and is never forwarded
//! again, so two members that each think the other is master cannot pass a send back and
//! forth.

use std::cmp::Reverse;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raft::{NodeId, Role, TransferError};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::response;
use remoting::command::RemotingCommand;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::GroupMember;

/// Request field marking a send one member forwarded to another.
pub const FORWARDED_BY: &str = "forwardedByBroker";

/// How long a stopping master tries to hand off before it stops anyway.
pub const HANDOFF_TIMEOUT: Duration = Duration::from_secs(3);
/// A follower silent for longer is not chosen.
const RECENT_CONTACT_MS: u64 = 1000;

/// If this node leads, transfers leadership (bounded by `timeout`) to the follower with
/// the highest match index among those heard from recently, trying the next on failure.
/// Returns the new leader, or `None` when this node did not lead or no transfer succeeded.
pub async fn hand_off(member: &GroupMember, timeout: Duration) -> Option<NodeId> {
    if member.store.status().role != Role::Leader {
        return None;
    }
    let deadline = Instant::now() + timeout;
    let raft = member.store.raft();
    let status = match tokio::time::timeout(timeout, raft.status()).await {
        Ok(Ok(status)) => status,
        _ => return None,
    };
    let mut candidates: Vec<_> = status
        .peers
        .iter()
        .filter(|p| {
            p.id != member.self_id
                && status.membership.is_voter(p.id)
                && p.last_contact_ms_ago <= RECENT_CONTACT_MS
        })
        .collect();
    candidates.sort_by_key(|p| Reverse(p.match_index));
    for peer in candidates {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match tokio::time::timeout(remaining, raft.transfer_leadership(peer.id)).await {
            Ok(Ok(())) => {
                info!(to = %peer.id, "leadership handed off");
                return Some(peer.id);
            }
            Ok(Err(TransferError::Superseded { leader })) => {
                info!(?leader, "another node took over during the hand-off");
                return leader;
            }
            Ok(Err(TransferError::NotLeader)) => return None,
            Ok(Err(e)) => warn!(to = %peer.id, error = %e, "leadership transfer failed"),
            Err(_) => break,
        }
    }
    warn!("no follower took over in time; stopping as leader");
    None
}

const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a stopping master is in its hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffPhase {
    Idle,
    /// Leadership is moving: sends refused meanwhile wait for the outcome.
    HandingOff,
    /// The name servers list the new master at this client address: sends that still
    /// arrive here are forwarded to it.
    Forwarding(String),
}

/// The hand-off state sends consult (apache/rocketmq#3858: active hand-off with request
/// forwarding, so producers see no errors when a master is stopped on purpose).
pub struct HandoffGate {
    phase: watch::Sender<HandoffPhase>,
    client: RemotingClient,
    /// The broker is stopping: its own hand-off owns the phase from then on.
    stopping: AtomicBool,
    /// When this member last stopped being master while running.
    demoted_at: parking_lot::Mutex<Option<Instant>>,
}

impl HandoffGate {
    /// `client_config`: how forwarded sends are signed for the new master.
    pub fn new(client_config: ClientConfig) -> Self {
        HandoffGate {
            phase: watch::Sender::new(HandoffPhase::Idle),
            client: RemotingClient::new(client_config),
            stopping: AtomicBool::new(false),
            demoted_at: parking_lot::Mutex::new(None),
        }
    }

    /// This member just stopped being master.
    pub fn note_demotion(&self) {
        *self.demoted_at.lock() = Some(Instant::now());
    }

    /// When this member last stopped being master, if it did within `within`.
    pub fn demoted_within(&self, within: Duration) -> Option<Instant> {
        self.demoted_at.lock().filter(|at| at.elapsed() < within)
    }

    /// The broker is stopping and hands off: from now on only the stop path moves the phase.
    pub fn begin(&self) {
        self.stopping.store(true, Ordering::Release);
        self.phase.send_replace(HandoffPhase::HandingOff);
    }

    /// A demotion's phase change, unless the broker is stopping (then the stop path's
    /// hand-off owns the phase).
    pub fn set_after_demotion(&self, phase: HandoffPhase) -> bool {
        if self.stopping.load(Ordering::Acquire) {
            return false;
        }
        self.phase.send_replace(phase);
        true
    }

    pub fn forward_to(&self, new_master: String) {
        self.phase
            .send_replace(HandoffPhase::Forwarding(new_master));
    }

    pub fn end(&self) {
        self.phase.send_replace(HandoffPhase::Idle);
        self.client.shutdown();
    }

    /// The new master to forward sends to, if this node is forwarding.
    pub fn forwarding_to(&self) -> Option<String> {
        match &*self.phase.borrow() {
            HandoffPhase::Forwarding(addr) => Some(addr.clone()),
            _ => None,
        }
    }

    /// Returns once a hand-off or a demotion is under way, or after `max`.
    pub async fn wait_demotion_noticed(&self, max: Duration) {
        let mut rx = self.phase.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|phase| *phase != HandoffPhase::Idle)).await;
    }

    /// Returns at once unless a hand-off is moving leadership; then once it is over (or
    /// `max` passed), with the new master if one is known.
    pub async fn wait_outcome(&self, max: Duration) -> Option<String> {
        let mut rx = self.phase.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|phase| *phase != HandoffPhase::HandingOff))
            .await;
        self.forwarding_to()
    }

    /// Sends `request` on to `new_master`. A send that may have reached it is never tried
    /// again, here or there: the new master may have stored it, and a second try would
    /// store it twice.
    pub async fn forward(&self, new_master: &str, request: &RemotingCommand) -> Forwarded {
        let mut forwarded = request.clone();
        forwarded.opaque = remoting::command::next_opaque();
        forwarded
            .ext_fields
            .insert_static(FORWARDED_BY, "true".to_string());
        match self
            .client
            .invoke(new_master, forwarded, FORWARD_TIMEOUT)
            .await
        {
            Ok(mut response) => {
                response.opaque = request.opaque;
                Forwarded::Answered(response)
            }
            Err(e) if e.may_have_arrived() => {
                warn!(to = new_master, error = %e,
                    "a send forwarded to the new master went unanswered; it may be stored");
                Forwarded::Unanswered(RemotingCommand::error_to(
                    request,
                    response::SYSTEM_ERROR,
                    format!(
                        "forwarded to the new master {new_master}, which did not answer ({e}): \
                         the message may have been stored"
                    ),
                ))
            }
            Err(e) => {
                warn!(to = new_master, error = %e, "forwarding a send to the new master failed");
                Forwarded::NotSent
            }
        }
    }
}

/// What became of a send forwarded to the new master.
pub enum Forwarded {
    /// The new master's answer, for the producer.
    Answered(RemotingCommand),
    /// The new master could not be reached: the send is not stored there.
    NotSent,
    /// It may have reached the new master, whose answer did not come back: the answer for
    /// the producer, an outcome it has to treat as unknown.
    Unanswered(RemotingCommand),
}

/// Whether another member already forwarded this request here.
pub fn was_forwarded(request: &RemotingCommand) -> bool {
    request.ext_field(FORWARDED_BY).is_some()
}
