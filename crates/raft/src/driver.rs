//! The tokio task that runs one [`Node`]: it ticks the clock, feeds peer messages and
//! proposals in, carries out each [`Ready`] (fsync the hard state, send, fsync the log in
//! parallel with sending, report persistence) and delivers committed entries in log order.
//!
//! The broker talks to it through a [`RaftHandle`]:
//! - [`RaftHandle::propose`] / [`RaftHandle::propose_batch`]: entries whose bodies may be
//!   patched with their final place (see [`Proposal::with_patch`]); each returns a future that
//!   resolves with the entry's place once committed. Proposals arriving together are appended
//!   as one batch, in arrival order, so placement order is log order; under a stream of them
//!   the driver yields once before taking them, so more arrive together (see [`burst`]).
//! - [`RaftHandle::state`]: a `watch` of role, term, leader, commit and last index.
//! - [`RaftHandle::status`], [`RaftHandle::transfer_leadership`], [`RaftHandle::shutdown`].
//! - [`RaftHandle::change_membership`] and [`RaftHandle::membership`]: add, promote or remove
//!   a member, and watch the membership in force.
//!
//! Committed entries arrive on the [`ApplyEvent`] channel returned by [`RaftDriver::start`]
//! when [`DriverConfig::apply_from`] is set.
//!
//! Blocking work (fsync) runs inline on the driver task, inside `block_in_place` on a
//! multi-threaded runtime: while it runs, peers' connections keep reading and writing on
//! other tasks, and whatever arrives meanwhile is handled as one batch afterwards (group
//! commit).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::entry::Entry;
use crate::hard_state::{HardStateError, HardStateStore};
use crate::membership::{Membership, MembershipChange, MembershipLog};
use crate::transport::{Transport, TransportConfig};
use crate::{
    BackgroundSync, EntryPlace, Event, LogStorage, Node, NodeId, PeerSpec, Proposal, ProposeError,
    RaftConfig, RaftError, Role, Status, StorageError, TransferError,
};
use burst::Burst;

/// Everything a driver needs to know.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub id: NodeId,
    /// Every member of the group, this node included (see [`crate::parse_peers`]): the
    /// membership until a change is in the log, which then takes precedence.
    pub peers: Vec<PeerSpec>,
    /// Name of the group (DLedger `dLegerGroup`); connections from other groups are refused.
    pub group: String,
    pub raft: RaftConfig,
    pub transport: TransportConfig,
    /// Proposals waiting for the driver; beyond it `propose` fails with `QueueFull`.
    pub proposal_queue_len: usize,
    /// Messages from peers waiting for the driver (back-pressure on their connections).
    pub inbound_queue_len: usize,
    /// A proposal not committed within this time fails with `Timeout` (it may still commit).
    /// DLedger's `maxWaitAckTimeMs`.
    pub propose_timeout_ms: u64,
    /// Deliver committed entries from this index on (the application's next unapplied
    /// entry). `None`: no apply stream.
    pub apply_from: Option<u64>,
    /// Batches of committed entries buffered for the application.
    pub apply_queue_len: usize,
    /// Largest batch of entries in one [`ApplyEvent::Entries`].
    pub apply_batch_entries: usize,
    /// Settings every member must share besides the peer list (the store puts its segment
    /// size here), as `key=value` text: a peer whose differ is refused when it connects.
    pub shared_settings: String,
    /// Told about fsyncs and appends as they happen (metrics); `None`: nobody listens.
    pub observer: Option<Arc<dyn DriverObserver>>,
    /// Least time between the starts of two background fsyncs of the log. Zero: the next
    /// starts as soon as the last returns, for a caller waiting on each fsync (SYNC_FLUSH).
    /// Where nobody waits on the fsync to acknowledge, spacing them lets one fsync cover
    /// more entries: each writes back a page once, not once per entry written to it.
    pub min_sync_interval: Duration,
}

/// What a driver tells about its work as it happens, for metrics. Called on the driver's
/// own task and its fsync thread: keep each call to a few atomic operations.
pub trait DriverObserver: std::fmt::Debug + Send + Sync + 'static {
    /// An fsync of the log finished after `elapsed`.
    fn log_synced(&self, elapsed: Duration);
    /// The leader appended `entries` proposals to its log in one append.
    fn proposals_appended(&self, entries: usize);
    /// A read found an entry of the log damaged; a peer's copy is being asked for.
    fn entry_damaged(&self) {}
    /// A damaged entry was repaired from a peer's copy.
    fn entry_repaired(&self) {}
}

impl DriverConfig {
    /// A configuration with default timings and limits.
    pub fn new(id: NodeId, peers: Vec<PeerSpec>, group: impl Into<String>) -> DriverConfig {
        let raft = RaftConfig::default();
        let transport = TransportConfig {
            max_frame_bytes: raft.max_batch_bytes + raft.max_entry_body_bytes + (64 << 10),
            ..TransportConfig::default()
        };
        DriverConfig {
            id,
            peers,
            group: group.into(),
            raft,
            transport,
            proposal_queue_len: 16_384,
            inbound_queue_len: 4096,
            propose_timeout_ms: 2500,
            apply_from: None,
            apply_queue_len: 64,
            apply_batch_entries: 1024,
            shared_settings: String::new(),
            observer: None,
            min_sync_interval: Duration::ZERO,
        }
    }
}

/// Role, term, leader and progress of a node, published on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftState {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub last_index: u64,
    /// Not a member of the group (see [`Node::removed`]).
    pub removed: bool,
}

impl RaftState {
    /// What `node` shows now.
    pub fn of<S: LogStorage>(node: &Node<S>) -> RaftState {
        RaftState {
            id: node.id(),
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            commit_index: node.commit_index(),
            last_index: node.last_index(),
            removed: node.removed(),
        }
    }

    /// Whether `other` differs from this in who leads, in which term, or in membership:
    /// what watchers wait for. Commit and last index move with every batch; a wake-up of
    /// every watcher per batch would cost each member several task switches per append.
    pub fn same_standing(&self, other: &RaftState) -> bool {
        self.id == other.id
            && self.role == other.role
            && self.term == other.term
            && self.leader == other.leader
            && self.removed == other.removed
    }
}

/// What the application receives, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyEvent {
    /// Committed entries, consecutive. Entries with `kind == EntryKind::Internal` are raft's
    /// own (the leader's no-op): skip them but keep their positions in mind.
    Entries(Vec<Entry>),
    /// The log now starts at `next_index` (byte position `next_pos`): the entries before it
    /// are gone from this node, because it was restarted at a leader's first retained entry
    /// or because the application asked for entries retention already deleted. Rebuild what
    /// was derived from the log; entries continue from `next_index`.
    LogRestarted { next_index: u64, next_pos: u64 },
}

/// Why a proposal did not (or is not known to have) committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership is being transferred")]
    Transferring,
    #[error("too many uncommitted entries")]
    Busy,
    #[error("proposal queue full")]
    QueueFull,
    #[error("entry too large: {0}")]
    TooLarge(String),
    /// The leader lost leadership before the entry committed. The entry may still be
    /// committed by the next leader (it may already be on a majority): the outcome is
    /// unknown, exactly as after a timeout; a retry can duplicate it.
    #[error("leadership lost before commit; the entry may still commit")]
    LeadershipLost,
    /// Not committed in time; it may still commit.
    #[error("not committed in time; the entry may still commit")]
    Timeout,
    /// The node was stopped (or had stopped) before taking the proposal: nothing appended.
    #[error("raft node stopped")]
    Stopped,
    /// The node stopped after appending the entry, before it committed: the entry may be
    /// on other members, or durable here, and still commit under the next leader. As
    /// unknown as a timeout; a retry can duplicate it.
    #[error("raft node stopped before the entry committed; it may still commit")]
    StoppedBeforeCommit,
    /// A membership change the group's rules refuse (nothing was appended).
    #[error("membership change refused: {0}")]
    MembershipRefused(String),
    /// The previous membership change is not durably committed yet: ask again shortly.
    #[error("the previous membership change is not durably committed yet")]
    ChangeInProgress,
}

/// A failure that stopped the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Raft(#[from] RaftError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    HardState(#[from] HardStateError),
    #[error("this node {0} is not in the peer list")]
    NotMember(NodeId),
}

type OneReply = oneshot::Sender<Result<EntryPlace, ProposalError>>;
type ManyReply = oneshot::Sender<Result<Vec<EntryPlace>, ProposalError>>;

enum Command {
    ProposeOne(Proposal, OneReply),
    ProposeMany(Vec<Proposal>, ManyReply),
    Status(oneshot::Sender<Status>),
    Transfer(NodeId, oneshot::Sender<Result<(), TransferError>>),
    ChangeMembership(MembershipChange, OneReply),
}

/// Resolves with the entry's place once committed.
pub struct ProposalFuture<T> {
    rx: oneshot::Receiver<Result<T, ProposalError>>,
}

impl<T> Future for ProposalFuture<T> {
    type Output = Result<T, ProposalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            // The driver dropped the reply without answering: it stopped, possibly with
            // the entry appended (a storage error right after the append).
            .map(|r| r.unwrap_or(Err(ProposalError::StoppedBeforeCommit)))
    }
}

/// How the application talks to a running node. Cheap to clone.
#[derive(Clone)]
pub struct RaftHandle {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<RaftState>,
    membership: watch::Receiver<Membership>,
    shutdown: CancellationToken,
}

impl RaftHandle {
    /// Submits one entry. Fails at once with `QueueFull` when the driver is saturated;
    /// otherwise the future resolves when the entry commits or fails.
    pub fn propose(&self, proposal: Proposal) -> Result<ProposalFuture<EntryPlace>, ProposalError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Command::ProposeOne(proposal, tx))?;
        Ok(ProposalFuture { rx })
    }

    /// Submits entries that are appended together, in order; resolves when the last
    /// commits, with every entry's place.
    pub fn propose_batch(
        &self,
        proposals: Vec<Proposal>,
    ) -> Result<ProposalFuture<Vec<EntryPlace>>, ProposalError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Command::ProposeMany(proposals, tx))?;
        Ok(ProposalFuture { rx })
    }

    fn submit(&self, command: Command) -> Result<(), ProposalError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ProposalError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => ProposalError::Stopped,
        })
    }

    /// Role, term, leader, commit and last index. `changed()` wakes when role, term, leader or
    /// membership change; commit and last index are kept current for `borrow()` without a
    /// wake-up (see [`RaftState::same_standing`]).
    pub fn state(&self) -> watch::Receiver<RaftState> {
        self.state.clone()
    }

    /// The membership in force on this node; `changed()` wakes when an entry changes it.
    pub fn membership(&self) -> watch::Receiver<Membership> {
        self.membership.clone()
    }

    /// Asks the leader for a membership change; resolves once the change commits. An added
    /// member joins as a learner and becomes a voter when it has caught up (watch
    /// [`RaftHandle::membership`]). One change at a time: the next is refused until the last
    /// is durably committed.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<EntryPlace, ProposalError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::ChangeMembership(change, tx))
            .await
            .map_err(|_| ProposalError::Stopped)?;
        ProposalFuture { rx }.await
    }

    /// A full status snapshot, with per-peer replication progress on the leader.
    pub async fn status(&self) -> Result<Status, ProposalError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| ProposalError::Stopped)?;
        rx.await.map_err(|_| ProposalError::Stopped)
    }

    /// Hands leadership to `target` (graceful hand-off, e.g. on SIGTERM). Resolves when
    /// `target` leads, or with the reason it did not.
    pub async fn transfer_leadership(&self, target: NodeId) -> Result<(), TransferError> {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Transfer(target, tx))
            .await
            .is_err()
        {
            return Err(TransferError::NotLeader);
        }
        rx.await.unwrap_or(Err(TransferError::NotLeader))
    }

    /// Asks the driver and its connections to stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// A running node.
pub struct RaftDriver {
    pub handle: RaftHandle,
    /// Committed entries, when `apply_from` was set.
    pub apply: Option<mpsc::Receiver<ApplyEvent>>,
    /// Ends when the node stops; an error says why it stopped on its own.
    pub task: JoinHandle<Result<(), DriverError>>,
}

impl RaftDriver {
    /// Starts a node serving peers on `listener` (bind it to this node's peer address, or to
    /// port 0 in tests). Must be called inside a tokio runtime.
    pub fn start<S: LogStorage, H: HardStateStore>(
        config: DriverConfig,
        storage: S,
        mut hard_state: H,
        listener: TcpListener,
    ) -> Result<RaftDriver, DriverError> {
        let mut raft = config.raft.clone();
        if raft.random_seed == 0 {
            raft.random_seed = rand::random();
        }
        let persisted = hard_state.load()?;
        let membership = match hard_state.load_membership()? {
            Some(recorded) => recorded,
            None => {
                if !config.peers.iter().any(|p| p.id == config.id) {
                    return Err(DriverError::NotMember(config.id));
                }
                MembershipLog::bootstrap(Membership::bootstrap(&config.peers))
            }
        };
        let node_syncer = storage.background_sync();
        let vote_floor = hard_state.load_vote_floor()?;
        let mut node = Node::restore(config.id, membership, raft, storage, persisted)?;
        node.withhold_votes_below(vote_floor);
        let peers = node.membership().peer_specs();
        let membership_index = node.membership_log().current_index();
        let shutdown = CancellationToken::new();
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_len.max(1));
        // A frame must hold the largest append the leader may send.
        let mut transport_config = config.transport.clone();
        transport_config.max_frame_bytes = transport_config
            .max_frame_bytes
            .max(config.raft.max_batch_bytes + config.raft.max_entry_body_bytes + (64 << 10));
        let mut transport = Transport::start(
            config.id,
            &config.group,
            &peers,
            &config.shared_settings,
            listener,
            inbound_tx,
            &transport_config,
            shutdown.clone(),
        );
        if membership_index != 0 {
            transport.set_peers(&peers, membership_index);
        }
        let (membership_tx, membership_rx) = watch::channel(node.membership().clone());
        let (command_tx, command_rx) = mpsc::channel(config.proposal_queue_len.max(1));
        let initial = RaftState::of(&node);
        let (state_tx, state_rx) = watch::channel(initial);
        let (apply, apply_rx) = match config.apply_from {
            Some(from) => {
                let (tx, rx) = mpsc::channel(config.apply_queue_len.max(1));
                let mut apply = Apply {
                    tx,
                    next: from.max(1),
                    announce: None,
                };
                let first = node.storage().first_index();
                if apply.next < first {
                    // The application wants entries retention already deleted.
                    let next_pos = match node.storage().read(first, 1, 1)?.first() {
                        Some(frame) => {
                            crate::entry::EntryHeader::decode(frame)
                                .map_err(StorageError::from)?
                                .pos
                        }
                        None => node.storage().end_pos(),
                    };
                    apply.next = first;
                    apply.announce = Some((first, next_pos));
                }
                (Some(apply), Some(rx))
            }
            None => (None, None),
        };
        let driver = Driver {
            tick: Duration::from_millis(config.raft.tick_ms.max(1)),
            propose_timeout: Duration::from_millis(config.propose_timeout_ms),
            apply_batch_entries: config.apply_batch_entries.max(1),
            node,
            hard_state,
            transport,
            inbound: inbound_rx,
            commands: command_rx,
            commands_open: true,
            state: state_tx,
            membership: membership_tx,
            pending: VecDeque::new(),
            transfers: Vec::new(),
            syncer: node_syncer,
            sync_in_flight: None,
            min_sync_interval: config.min_sync_interval,
            last_sync_started: None,
            sync_held_until: None,
            observer: config.observer.clone(),
            stable_reported: 0,
            proposals: Burst::default(),
            apply,
            shutdown: shutdown.clone(),
        };
        let task = tokio::spawn(driver.run());
        Ok(RaftDriver {
            handle: RaftHandle {
                commands: command_tx,
                state: state_rx,
                membership: membership_rx,
                shutdown,
            },
            apply: apply_rx,
            task,
        })
    }
}

/// What a refused proposal tells its proposer.
fn proposal_error(e: ProposeError) -> ProposalError {
    match e {
        ProposeError::NotLeader { leader } => ProposalError::NotLeader { leader },
        ProposeError::Transferring => ProposalError::Transferring,
        ProposeError::Busy { .. } => ProposalError::Busy,
        ProposeError::TooLarge { .. } => ProposalError::TooLarge(e.to_string()),
        ProposeError::ChangeInProgress { .. } => ProposalError::ChangeInProgress,
        ProposeError::Membership(_) | ProposeError::RemovingLeader => {
            ProposalError::MembershipRefused(e.to_string())
        }
        // A storage error can strike after the append (committing reads the log): the
        // entry may be durable here.
        ProposeError::Storage(_) => ProposalError::StoppedBeforeCommit,
    }
}

enum Waiter {
    One(EntryPlace, OneReply),
    Many(Vec<EntryPlace>, ManyReply),
}

impl Waiter {
    fn fail(self, error: ProposalError) {
        match self {
            Waiter::One(_, tx) => {
                let _ = tx.send(Err(error));
            }
            Waiter::Many(_, tx) => {
                let _ = tx.send(Err(error));
            }
        }
    }

    fn succeed(self) {
        match self {
            Waiter::One(place, tx) => {
                let _ = tx.send(Ok(place));
            }
            Waiter::Many(places, tx) => {
                let _ = tx.send(Ok(places));
            }
        }
    }
}

struct Pending {
    term: u64,
    last_index: u64,
    deadline: Instant,
    waiter: Waiter,
}

struct Apply {
    tx: mpsc::Sender<ApplyEvent>,
    next: u64,
    /// A restart notice to deliver before any further entry.
    announce: Option<(u64, u64)>,
}

struct Driver<S: LogStorage, H: HardStateStore> {
    tick: Duration,
    propose_timeout: Duration,
    apply_batch_entries: usize,
    node: Node<S>,
    hard_state: H,
    transport: Transport,
    inbound: mpsc::Receiver<crate::Message>,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    state: watch::Sender<RaftState>,
    membership: watch::Sender<Membership>,
    /// Proposals of the current leadership, in log order.
    pending: VecDeque<Pending>,
    transfers: Vec<(NodeId, oneshot::Sender<Result<(), TransferError>>)>,
    apply: Option<Apply>,
    /// Background fsync, when the storage offers it, and the one running.
    syncer: Option<BackgroundSync>,
    sync_in_flight: Option<InflightSync>,
    min_sync_interval: Duration,
    last_sync_started: Option<tokio::time::Instant>,
    /// A background fsync is due but held back by `min_sync_interval` until then.
    sync_held_until: Option<tokio::time::Instant>,
    observer: Option<Arc<dyn DriverObserver>>,
    /// Durable commit index last reported to the storage as stable.
    stable_reported: u64,
    shutdown: CancellationToken,
    /// Proposals arriving in a stream wait one yield, to be appended (and sent) together.
    proposals: Burst,
}

/// A background fsync and what it will vouch for once done.
struct InflightSync {
    index: u64,
    term: u64,
    log_cuts: u64,
    task: JoinHandle<Result<(), StorageError>>,
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sync_finished(
    slot: &mut Option<InflightSync>,
) -> Result<Result<(), StorageError>, tokio::task::JoinError> {
    match slot {
        Some(sync) => (&mut sync.task).await,
        None => std::future::pending().await,
    }
}

/// Steps taken per wake-up before the Ready is handled, so a flood of messages cannot delay
/// persistence and replies indefinitely.
const MAX_BATCH: usize = 1024;

/// Runs blocking work (fsync) without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl<S: LogStorage, H: HardStateStore> Driver<S, H> {
    async fn run(mut self) -> Result<(), DriverError> {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = self.serve(&mut ticker).await;
        if let Err(e) = &result {
            tracing::error!(node = %self.node.id(), error = %e, "raft node stopped");
        }
        self.shutdown.cancel();
        for p in self.pending.drain(..) {
            p.waiter.fail(ProposalError::StoppedBeforeCommit);
        }
        result
    }

    async fn serve(&mut self, ticker: &mut tokio::time::Interval) -> Result<(), DriverError> {
        loop {
            // Applying waits while the next entry to apply is damaged and being repaired.
            let repairing = self.node.awaiting_repair();
            let apply_ready = self.apply.as_ref().is_some_and(|a| {
                a.announce.is_some()
                    || (a.next <= self.node.apply_limit() && repairing != Some(a.next))
            });
            let apply_tx = self.apply.as_ref().map(|a| a.tx.clone());
            tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    self.node.tick()?;
                    self.expire_proposals();
                }
                msg = self.inbound.recv() => {
                    let Some(mut held) = msg else { return Ok(()) };
                    for _ in 0..MAX_BATCH {
                        let Ok(next) = self.inbound.try_recv() else { break };
                        // Appends that continue one another are stepped as one: one write
                        // to the log and one answer for the lot.
                        if let Some(next) = held.absorb(next) {
                            self.node.step(std::mem::replace(&mut held, next))?;
                        }
                    }
                    self.node.step(held)?;
                }
                command = self.commands.recv(), if self.commands_open => {
                    match command {
                        Some(command) => {
                            self.proposals.yield_within_stream().await;
                            self.handle_commands(command)?;
                        }
                        None => self.commands_open = false,
                    }
                }
                done = sync_finished(&mut self.sync_in_flight), if self.sync_in_flight.is_some() => {
                    self.on_sync_finished(done)?;
                }
                _ = sleep_until_some(self.sync_held_until), if self.sync_held_until.is_some() => {
                    // The held-back fsync starts in process_ready below.
                    self.sync_held_until = None;
                }
                permit = reserve(apply_tx), if apply_ready => {
                    match permit {
                        Some(permit) => self.deliver(permit)?,
                        None => self.apply = None,
                    }
                }
            }
            self.process_ready()?;
        }
    }

    /// Handles `first` and whatever else is queued, appending all proposals as one batch.
    fn handle_commands(&mut self, first: Command) -> Result<(), DriverError> {
        let mut proposals: Vec<Proposal> = Vec::new();
        let mut waiters: Vec<(usize, Result<OneReply, ManyReply>)> = Vec::new();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(command) = next.take() {
            handled += 1;
            match command {
                Command::ProposeOne(p, tx) => {
                    proposals.push(p);
                    waiters.push((1, Ok(tx)));
                }
                Command::ProposeMany(ps, tx) => {
                    let n = ps.len();
                    if n == 0 {
                        let _ = tx.send(Ok(Vec::new()));
                    } else {
                        proposals.extend(ps);
                        waiters.push((n, Err(tx)));
                    }
                }
                Command::Status(tx) => {
                    let _ = tx.send(self.node.status());
                }
                Command::Transfer(target, tx) => match self.node.transfer_leadership(target) {
                    Ok(()) if target == self.node.id() => {
                        let _ = tx.send(Ok(()));
                    }
                    Ok(()) => self.transfers.push((target, tx)),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
                Command::ChangeMembership(change, tx) => {
                    // Entries proposed before it in this batch go first: log order is
                    // arrival order.
                    self.propose_and_wait(std::mem::take(&mut proposals), &mut waiters)?;
                    self.change_membership(change, tx)?;
                }
            }
            if handled < MAX_BATCH {
                next = self.commands.try_recv().ok();
            }
        }
        self.propose_and_wait(proposals, &mut waiters)
    }

    fn change_membership(
        &mut self,
        change: MembershipChange,
        tx: OneReply,
    ) -> Result<(), DriverError> {
        match self.node.propose_membership(change) {
            Ok(place) => self.pending.push_back(Pending {
                term: place.term,
                last_index: place.index,
                deadline: Instant::now() + self.propose_timeout,
                waiter: Waiter::One(place, tx),
            }),
            Err(ProposeError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                let _ = tx.send(Err(proposal_error(e)));
            }
        }
        Ok(())
    }

    /// Appends `proposals` as one batch and queues their waiters.
    fn propose_and_wait(
        &mut self,
        proposals: Vec<Proposal>,
        waiters: &mut Vec<(usize, Result<OneReply, ManyReply>)>,
    ) -> Result<(), DriverError> {
        let waiters = std::mem::take(waiters);
        if proposals.is_empty() {
            return Ok(());
        }
        match self.node.propose(proposals) {
            Ok(places) => {
                if let Some(observer) = &self.observer {
                    observer.proposals_appended(places.len());
                }
                let deadline = Instant::now() + self.propose_timeout;
                let term = self.node.term();
                let mut places = places.into_iter();
                for (n, reply) in waiters {
                    let waiter = match reply {
                        Ok(tx) => match places.next() {
                            Some(place) => Waiter::One(place, tx),
                            None => break,
                        },
                        Err(tx) => Waiter::Many(places.by_ref().take(n).collect(), tx),
                    };
                    let last_index = match &waiter {
                        Waiter::One(place, _) => place.index,
                        Waiter::Many(ps, _) => ps.last().map_or(0, |p| p.index),
                    };
                    self.pending.push_back(Pending {
                        term,
                        last_index,
                        deadline,
                        waiter,
                    });
                }
            }
            Err(ProposeError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                let error = proposal_error(e);
                for (_, reply) in waiters {
                    match reply {
                        Ok(tx) => {
                            let _ = tx.send(Err(error.clone()));
                        }
                        Err(tx) => {
                            let _ = tx.send(Err(error.clone()));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn process_ready(&mut self) -> Result<(), DriverError> {
        // Bounded: each round either syncs (after which nothing new needs syncing) or ends.
        for _ in 0..4 {
            let ready = self.node.take_ready()?;
            if let Some(hs) = ready.hard_state {
                // Term and vote are on disk before any message of this Ready leaves.
                let store = &mut self.hard_state;
                blocking(|| store.save(&hs))?;
            }
            if let Some(membership) = ready.membership {
                // As are the memberships: an append is not acknowledged before the
                // membership it set would survive a crash.
                let store = &mut self.hard_state;
                blocking(|| store.save_membership(&membership))?;
                let current = membership.current();
                tracing::info!(node = %self.node.id(), index = membership.current_index(),
                    membership = ?current, "membership in force");
                self.transport
                    .set_peers(&current.peer_specs(), membership.current_index());
                self.membership.send_if_modified(|shown| {
                    let changed = shown != current;
                    if changed {
                        *shown = current.clone();
                    }
                    changed
                });
            }
            for msg in ready.messages {
                self.transport.send(msg);
            }
            for event in ready.events {
                self.on_event(event);
            }
            if !ready.sync_needed {
                break;
            }
            // The appends just handed to the transport travel while we fsync.
            let index = self.node.last_index();
            let term = self.node.last_term()?;
            if let Some(syncer) = &self.syncer {
                // One fsync at a time covers everything appended before it started: the
                // group commit. The next starts when it returns, if anything is left, and
                // no sooner than `min_sync_interval` after this one started.
                let now = tokio::time::Instant::now();
                let not_before = self
                    .last_sync_started
                    .map(|started| started + self.min_sync_interval);
                if self.sync_in_flight.is_none() {
                    self.sync_held_until = not_before.filter(|at| now < *at);
                }
                if self.sync_in_flight.is_none() && self.sync_held_until.is_none() {
                    self.last_sync_started = Some(now);
                    let syncer = syncer.clone();
                    let observer = self.observer.clone();
                    self.sync_in_flight = Some(InflightSync {
                        index,
                        term,
                        log_cuts: self.node.log_cuts(),
                        task: tokio::task::spawn_blocking(move || {
                            let started = Instant::now();
                            let synced = syncer();
                            if let Some(observer) = observer {
                                observer.log_synced(started.elapsed());
                            }
                            synced
                        }),
                    });
                }
                break;
            }
            let started = Instant::now();
            let storage = self.node.storage_mut();
            if storage.sync_may_block() {
                blocking(|| storage.sync())?;
            } else {
                storage.sync()?;
            }
            if let Some(observer) = &self.observer {
                observer.log_synced(started.elapsed());
            }
            self.node.on_persisted(index, term)?;
        }
        self.resolve_committed();
        let state = RaftState::of(&self.node);
        let stable = self.node.apply_limit();
        if stable > self.stable_reported {
            self.stable_reported = stable;
            self.node.storage_mut().committed(stable);
        }
        self.state.send_if_modified(|current| {
            let news = !current.same_standing(&state);
            *current = state;
            news
        });
        Ok(())
    }

    fn on_sync_finished(
        &mut self,
        done: Result<Result<(), StorageError>, tokio::task::JoinError>,
    ) -> Result<(), DriverError> {
        let Some(sync) = self.sync_in_flight.take() else {
            return Ok(());
        };
        match done {
            Ok(Ok(())) => {
                // A truncation meanwhile may have replaced what the fsync covered with
                // entries it did not; the next fsync will vouch for those.
                if self.node.log_cuts() == sync.log_cuts {
                    self.node.on_persisted(sync.index, sync.term)?;
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(StorageError::Io(std::io::Error::other(format!(
                "background fsync did not finish: {e}"
            )))
            .into()),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::RoleChanged { role, term, leader } => {
                tracing::info!(node = %self.node.id(), ?role, term, ?leader, "role changed");
                if role != Role::Leader || self.pending.front().is_some_and(|p| p.term != term) {
                    for p in self.pending.drain(..) {
                        p.waiter.fail(ProposalError::LeadershipLost);
                    }
                }
            }
            Event::LogRestarted {
                next_index,
                next_pos,
            } => {
                if let Some(apply) = self.apply.as_mut() {
                    if apply.next < next_index {
                        apply.next = next_index;
                        apply.announce = Some((next_index, next_pos));
                    }
                }
            }
            Event::TransferFinished { target, result } => {
                let (done, waiting): (Vec<_>, Vec<_>) =
                    self.transfers.drain(..).partition(|(t, _)| *t == target);
                self.transfers = waiting;
                for (_, tx) in done {
                    let _ = tx.send(result.clone());
                }
            }
            Event::ReplicationRejected { peer, reason } => {
                tracing::error!(node = %self.node.id(), %peer, ?reason, "append rejected");
            }
            Event::EntryDamaged { .. } => {
                if let Some(observer) = &self.observer {
                    observer.entry_damaged();
                }
            }
            Event::EntryRepaired { index, from } => {
                // Counted before it is told, so whoever reads the line finds it counted.
                if let Some(observer) = &self.observer {
                    observer.entry_repaired();
                }
                tracing::warn!(node = %self.node.id(), index, peer = %from,
                    "damaged entry repaired from a peer's copy");
            }
        }
    }

    fn resolve_committed(&mut self) {
        let commit = self.node.commit_index();
        while self.pending.front().is_some_and(|p| p.last_index <= commit) {
            if let Some(p) = self.pending.pop_front() {
                p.waiter.succeed();
            }
        }
    }

    fn expire_proposals(&mut self) {
        let now = Instant::now();
        while self.pending.front().is_some_and(|p| p.deadline <= now) {
            if let Some(p) = self.pending.pop_front() {
                p.waiter.fail(ProposalError::Timeout);
            }
        }
    }

    /// Sends the next batch of committed entries (or the restart notice) to the application.
    fn deliver(&mut self, permit: mpsc::OwnedPermit<ApplyEvent>) -> Result<(), DriverError> {
        let limit = self.node.apply_limit();
        let Some(apply) = self.apply.as_mut() else {
            return Ok(());
        };
        if let Some((next_index, next_pos)) = apply.announce.take() {
            permit.send(ApplyEvent::LogRestarted {
                next_index,
                next_pos,
            });
            return Ok(());
        }
        if apply.next > limit {
            return Ok(());
        }
        let want = ((limit - apply.next + 1) as usize).min(self.apply_batch_entries);
        // The storage verified each body checksum when the entry entered the log (or when it
        // read it back from a file); only headers are checked again here.
        let frames = match self.node.storage().read(apply.next, want, 4 << 20) {
            Ok(frames) => frames,
            Err(StorageError::DamagedEntry { index, .. }) => {
                self.node.on_damaged_entry(index);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::with_capacity(frames.len());
        for frame in &frames {
            let entry = Entry::decode_stored(frame).map_err(StorageError::from)?;
            if entry.index > limit {
                break;
            }
            entries.push(entry);
        }
        if let Some(last) = entries.last() {
            apply.next = last.index + 1;
            permit.send(ApplyEvent::Entries(entries));
        }
        Ok(())
    }
}

async fn reserve(tx: Option<mpsc::Sender<ApplyEvent>>) -> Option<mpsc::OwnedPermit<ApplyEvent>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}
