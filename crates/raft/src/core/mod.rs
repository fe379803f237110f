//! The consensus state machine: no sockets, no disk of its own, no clock, no threads.
//!
//! A [`Node`] is driven from outside, raft-rs style:
//! - [`Node::tick`] advances its logical clock by one `tick_ms`;
//! - [`Node::step`] feeds it a message from a peer;
//! - [`Node::propose`] appends entries on the leader;
//! - [`Node::on_persisted`] reports that the log was fsynced up to an index.
//!
//! After any of these, [`Node::take_ready`] hands back a [`Ready`]: the hard state to fsync
//! (before anything else), the messages to send, whether the log needs an fsync, and events.
//! Committed entries are read from the log up to [`Node::apply_limit`].
//!
//! The node owns the log storage: appends go to it at once (for a file log, into the page
//! cache), so an entry's index and byte position are known when it is proposed. fsync is the
//! driver's job; with `sync_flush` the node counts its own entries towards the quorum only
//! once they are reported persisted, which lets the driver send and fsync in parallel.
//!
//! This file holds the node and the state it keeps per role, its constructor, its observers
//! and the calls that drive it (`tick`, `step`, `on_persisted`, `take_ready`). The rest is
//! split by concern:
//! - `types`: what goes in and out of a node ([`Role`], [`Proposal`], [`Ready`], [`Event`],
//!   [`Status`], the errors), apart from the node so a reader of the API finds it in one place;
//! - `election`: vote rounds as the node runs them (candidacy, answering votes, becoming
//!   leader), applying the rules of `vote`;
//! - `vote`: the pure rules of a vote: how a voter answers and what a candidate makes of the
//!   answers;
//! - `progress`: per-follower replication state and quorum arithmetic;
//! - `replication`: leader pushes, follower appends, the commit rule, proposals;
//! - `transfer`: leadership transfer and preferred leaders;
//! - `repair`: a damaged entry rewritten from a peer's intact copy;
//! - `membership`: membership changes (proposals, learner promotion, memberships taken from
//!   appended entries and given back by a cut log).

mod election;
mod membership;
mod progress;
mod repair;
mod replication;
mod transfer;
mod types;
mod vote;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::config::RaftConfig;
use crate::hard_state::HardState;
use crate::membership::{Membership, MembershipLog};
use crate::message::{Message, Payload};
use crate::storage::{LogStorage, StorageError};
use crate::NodeId;

use progress::Progress;
pub use progress::ReplicaState;
pub use types::{
    EntryPlace, Event, PatchFn, PeerStatus, Proposal, ProposeError, RaftError, Ready, Role, Status,
    TransferError,
};
use vote::Tally;
pub use vote::{Outcome, RevoteDelay};

#[derive(Debug)]
struct Round {
    pre_vote: bool,
    term: u64,
    deadline: u64,
    answered: Vec<NodeId>,
    tally: Tally,
}

#[derive(Debug)]
struct Candidacy {
    last_outcome: Outcome,
    last_round_pre_vote: bool,
    need_increase_term: bool,
    /// The pre-vote for the next term passed: the next round is the real vote.
    pre_vote_passed: bool,
    next_round_at: u64,
    round: Option<Round>,
}

#[derive(Debug)]
struct LeaderTransfer {
    target: NodeId,
    deadline: u64,
    sent: bool,
}

#[derive(Debug)]
struct LeaderState {
    progress: Vec<Progress>,
    next_heartbeat_at: u64,
    next_preferred_check_at: u64,
    transfer: Option<LeaderTransfer>,
}

#[derive(Debug)]
enum RoleState {
    Follower,
    Candidate(Candidacy),
    Leader(LeaderState),
}

/// A transfer this node started, followed until a new leader shows up or it times out.
#[derive(Debug, Clone, Copy)]
struct TransferWatch {
    target: NodeId,
    deadline: u64,
}

/// Timings converted to ticks.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    heartbeat: u64,
    leader_timeout: u64,
    vote_round: u64,
    append_timeout: u64,
    transfer: u64,
    preferred_check: u64,
}

/// One raft node. See the module documentation for how to drive it.
pub struct Node<S: LogStorage> {
    id: NodeId,
    /// The memberships the log set; the last is in force (see [`crate::membership`]).
    membership: MembershipLog,
    /// The membership records changed and must be persisted before anything else goes out.
    membership_dirty: bool,
    config: RaftConfig,
    ticks: Ticks,
    storage: S,
    term: u64,
    voted_for: Option<NodeId>,
    leader: Option<NodeId>,
    role: RoleState,
    commit_index: u64,
    /// Durable commit index: the highest entry a quorum holds on disk (leader: counted from
    /// the followers' fsync reports, current-term entries only, as the commit rule does;
    /// follower: learnt from the leader). Only entries up to here are applied, so nothing
    /// applied can be taken back by any combination of crashes and power cuts. With
    /// `sync_flush` every commit is durable and this equals `commit_index`. Without it an
    /// entry above it may still vanish when a quorum loses power, and a follower may then
    /// have to drop entries it counted as committed.
    safe_index: u64,
    /// Highest index known durable on this node.
    persisted_index: u64,
    /// Follower: this log equals the current leader's up to here.
    leader_match: u64,
    /// Follower with `sync_flush`: an append answer owed once the log is persisted.
    pending_ack: Option<u64>,
    /// Follower: sequence number of the current leader's last append, echoed when an fsync
    /// completes later (without `sync_flush`) to report the durable position.
    last_append_seq: Option<u64>,
    /// Truncations and resets of the log so far: an fsync that ran across one cannot vouch
    /// for the entries that replaced what it covered.
    log_cuts: u64,
    now: u64,
    last_leader_contact: u64,
    taking_leadership_term: Option<u64>,
    transfer_watch: Option<TransferWatch>,
    /// A member answered this node's vote request with its committed membership, set by
    /// the entry at this index, which does not list this node (see [`Node::removed`]).
    removed_as_of: Option<u64>,
    /// A damaged entry being asked for (see `repair`).
    repair: Option<repair::PendingRepair>,
    rng: SmallRng,
    hard_state_dirty: bool,
    /// A node that lost its log may have acknowledged entries a commit counted on: it
    /// neither votes nor campaigns until its log reaches this index again (see
    /// [`Node::withhold_votes_below`]).
    vote_floor: u64,
    out: Ready,
    reported: (Role, u64, Option<NodeId>),
    scratch: Vec<u64>,
}

impl<S: LogStorage> Node<S> {
    /// Starts a node from its persisted state: the log as recovered and the hard state as
    /// last saved. Everything in `storage` counts as durable, so it is synced first: after
    /// a kill -9 the recovered tail may sit only in the page cache, and counting it towards
    /// a quorum unsynced would let a later power cut take back what a quorum "held".
    pub fn new(
        id: NodeId,
        members: &[NodeId],
        config: RaftConfig,
        storage: S,
        hard_state: HardState,
    ) -> Result<Node<S>, RaftError> {
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        if members.is_empty() || members.len() > crate::peers::MAX_GROUP_SIZE {
            return Err(RaftError::GroupSize {
                max: crate::peers::MAX_GROUP_SIZE,
                got: members.len(),
            });
        }
        if !members.contains(&id) {
            return Err(RaftError::NotMember { id, members });
        }
        let membership = MembershipLog::bootstrap(Membership::of_voters(&members));
        Node::restore(id, membership, config, storage, hard_state)
    }

    /// Starts a node from its persisted state including the memberships it recorded (see
    /// [`crate::HardStateStore::load_membership`]); those whose entries the log lost are
    /// dropped. A node that is not a member of the membership in force stays a follower that
    /// never campaigns (it was removed, or its removal may yet be taken back).
    pub fn restore(
        id: NodeId,
        membership: MembershipLog,
        config: RaftConfig,
        mut storage: S,
        hard_state: HardState,
    ) -> Result<Node<S>, RaftError> {
        config.validate()?;
        storage.sync()?;
        let recovered = membership.clone().recover(&storage)?;
        let membership_dirty = recovered != membership;
        if !recovered.current().is_voter(id) {
            tracing::warn!(node = %id, membership = ?recovered.current(),
                "this node is not a voter of the group's membership: it will not campaign");
        }
        let ticks = Ticks {
            heartbeat: config.ticks(config.heartbeat_interval_ms),
            leader_timeout: config.leader_timeout_ticks(),
            vote_round: config.ticks(config.vote_round_timeout_ms),
            append_timeout: config.ticks(config.append_timeout_ms),
            transfer: config.ticks(config.transfer_timeout_ms),
            preferred_check: config.ticks(config.preferred_leader_check_interval_ms),
        };
        let seed = config.random_seed ^ (u64::from(id.0) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let first = storage.first_index();
        let last = storage.last_index();
        let mut node = Node {
            id,
            config,
            ticks,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader: None,
            role: RoleState::Follower,
            // Entries before the first held one were committed (retention and restarts only
            // drop committed entries).
            commit_index: first.saturating_sub(1),
            safe_index: first.saturating_sub(1),
            persisted_index: last,
            leader_match: 0,
            pending_ack: None,
            last_append_seq: None,
            log_cuts: 0,
            now: 0,
            last_leader_contact: 0,
            taking_leadership_term: None,
            transfer_watch: None,
            removed_as_of: None,
            repair: None,
            rng: SmallRng::seed_from_u64(seed),
            hard_state_dirty: false,
            vote_floor: 0,
            out: Ready::default(),
            reported: (Role::Follower, hard_state.term, None),
            scratch: Vec::with_capacity(crate::peers::MAX_GROUP_SIZE),
            membership: recovered,
            membership_dirty,
            storage,
        };
        if node.alone() {
            // Alone: nobody to wait for.
            node.become_candidate(0);
        }
        Ok(node)
    }

    /// Withholds this node's vote, and its candidacy, until its log reaches `index`. For a
    /// member that lost its disk: entries it acknowledged before may have completed a
    /// quorum, and its vote for a candidate missing them could elect a leader that drops
    /// committed entries. `index` is the highest commit index the other members report;
    /// once its log holds that much (from a leader), its vote is as safe as any.
    pub fn withhold_votes_below(&mut self, index: u64) {
        self.vote_floor = index;
    }

    /// Whether this node's log is long enough for it to vote (see `withhold_votes_below`).
    fn may_vote(&self) -> bool {
        self.storage.last_index() >= self.vote_floor
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The membership in force.
    pub fn membership(&self) -> &Membership {
        self.membership.current()
    }

    /// Every membership the log set, with the entries that set them.
    pub fn membership_log(&self) -> &MembershipLog {
        &self.membership
    }

    /// This node is not a member of the group: the membership in force does not list it,
    /// or a member answered its vote request with a committed membership, newer than this
    /// log's, that does not. Such a node never campaigns; it becomes a member again only
    /// through a newer membership in its log (added back: a leader replicates to it).
    pub fn removed(&self) -> bool {
        !self.membership.current().contains(self.id)
            || self
                .removed_as_of
                .is_some_and(|index| index > self.membership.current_index())
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    pub fn last_index(&self) -> u64 {
        self.storage.last_index()
    }

    /// Term of the last entry (of the base when the log is empty; 0 if unknown).
    pub fn last_term(&self) -> Result<u64, StorageError> {
        Ok(self.storage.term(self.storage.last_index())?.unwrap_or(0))
    }

    /// Durable commit index (see the field): what no crash or power cut can take back.
    pub fn safe_index(&self) -> u64 {
        self.safe_index
    }

    /// Committed entries up to here may be handed to the application: durable on a quorum
    /// (so no later election can replace them) and on this node (so that what was applied
    /// survives a crash of this node).
    pub fn apply_limit(&self) -> u64 {
        self.commit_index
            .min(self.safe_index)
            .min(self.persisted_index)
            .min(self.storage.last_index())
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// For fsync and reads only; changing the log behind the node's back breaks it.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Gives the storage back (the simulation uses it to crash and restart a node).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Ticks elapsed since start.
    pub fn now_ticks(&self) -> u64 {
        self.now
    }

    pub fn status(&self) -> Status {
        let tick_ms = self.config.tick_ms;
        let (peers, transferring_to) = match &self.role {
            RoleState::Leader(ls) => (
                ls.progress
                    .iter()
                    .map(|p| PeerStatus {
                        id: p.id,
                        state: p.state,
                        match_index: p.match_index,
                        next_index: p.next_index,
                        inflight_batches: p.inflight.len(),
                        last_contact_ms_ago: self.now.saturating_sub(p.last_contact) * tick_ms,
                    })
                    .collect(),
                ls.transfer.as_ref().map(|t| t.target),
            ),
            _ => (Vec::new(), None),
        };
        Status {
            id: self.id,
            role: self.role(),
            term: self.term,
            leader: self.leader,
            voted_for: self.voted_for,
            commit_index: self.commit_index,
            safe_index: self.safe_index,
            first_index: self.storage.first_index(),
            last_index: self.storage.last_index(),
            persisted_index: self.persisted_index,
            peers,
            transferring_to,
            membership: self.membership.current().clone(),
            membership_index: self.membership.current_index(),
            removed: self.removed(),
        }
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) -> Result<(), RaftError> {
        self.now += 1;
        let voter = self.is_voter() && !self.removed() && self.may_vote();
        match &mut self.role {
            RoleState::Follower => {
                if self.now.saturating_sub(self.last_leader_contact) >= self.ticks.leader_timeout
                    && voter
                {
                    let wait = self.vote_interval();
                    self.become_candidate(wait);
                }
            }
            RoleState::Candidate(_) if !voter => {
                // The membership changed under the candidacy: a learner or a removed node
                // does not campaign (nor one whose log is below its vote floor).
                let term = self.term;
                self.become_follower(term, None);
            }
            RoleState::Candidate(c) => {
                let round_over = c.round.as_ref().map(|r| self.now >= r.deadline);
                match round_over {
                    Some(true) => self.conclude_round()?,
                    Some(false) => {}
                    None => {
                        if self.now >= c.next_round_at {
                            self.start_round()?;
                        }
                    }
                }
            }
            RoleState::Leader(_) => self.leader_tick()?,
        }
        self.repair_tick();
        self.check_transfer_watch();
        Ok(())
    }

    /// Feeds a message from a peer. Messages not addressed to this node are dropped. A
    /// sender outside this node's membership is still heard as a leader (this node may not
    /// have appended the entry that added it yet, as in Raft), but never counted as a voter.
    pub fn step(&mut self, msg: Message) -> Result<(), RaftError> {
        if msg.to != self.id || msg.from == self.id {
            return Ok(());
        }
        match msg.payload {
            Payload::VoteRequest(req) => self.on_vote_request(msg.from, msg.term, req)?,
            Payload::VoteResponse(resp) => self.on_vote_response(msg.from, msg.term, resp)?,
            Payload::Heartbeat(hb) => self.on_heartbeat(msg.from, msg.term, hb),
            Payload::HeartbeatResponse(resp) => {
                self.on_heartbeat_response(msg.from, msg.term, resp)
            }
            Payload::Append(append) => self.on_append(msg.from, msg.term, append)?,
            Payload::AppendResponse(resp) => self.on_append_response(msg.from, msg.term, resp)?,
            Payload::TakeLeadership => self.on_take_leadership(msg.from, msg.term)?,
            Payload::NotMember { membership_index } => {
                self.on_not_member(msg.from, membership_index)
            }
            Payload::EntryRequest { index } => self.on_entry_request(msg.from, index),
            Payload::EntryCopy { index, frame } => self.on_entry_copy(msg.from, index, frame)?,
        }
        Ok(())
    }

    /// Truncations and resets so far; a driver syncing in the background compares it before
    /// and after an fsync (see [`Node::on_persisted`]).
    pub fn log_cuts(&self) -> u64 {
        self.log_cuts
    }

    /// Reports that the log is durable up to `index`, whose term was `term` when the fsync
    /// started. A report about entries that were truncated meanwhile is ignored.
    pub fn on_persisted(&mut self, index: u64, term: u64) -> Result<(), RaftError> {
        let index = index.min(self.storage.last_index());
        if index <= self.persisted_index || self.storage.term(index)? != Some(term) {
            return Ok(());
        }
        self.persisted_index = index;
        match self.role {
            RoleState::Leader(_) => self.maybe_commit()?,
            _ if self.config.sync_flush => self.flush_pending_ack(),
            _ => self.report_persisted(),
        }
        Ok(())
    }

    /// Collects what the driver must do now.
    pub fn take_ready(&mut self) -> Result<Ready, RaftError> {
        self.flush_replication()?;
        self.check_transfer_watch();
        let mut ready = std::mem::take(&mut self.out);
        if self.membership_dirty {
            self.membership_dirty = false;
            ready.membership = Some(self.membership.clone());
        }
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            ready.hard_state = Some(self.hard_state());
        }
        // Without sync_flush nothing waits on the fsync to acknowledge, but the durable
        // commit index (and so what is applied) does.
        ready.sync_needed = self.persisted_index < self.storage.last_index();
        let now = (self.role(), self.term, self.leader);
        if now != self.reported {
            self.reported = now;
            ready.events.push(Event::RoleChanged {
                role: now.0,
                term: now.1,
                leader: now.2,
            });
        }
        Ok(ready)
    }

    // ---- shared helpers ----

    fn send(&mut self, to: NodeId, payload: Payload) {
        self.out.messages.push(Message {
            from: self.id,
            to,
            term: self.term,
            payload,
        });
    }

    /// Every other member, voter or learner: whom a leader replicates to.
    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.membership
            .current()
            .members()
            .iter()
            .map(|m| m.id)
            .filter(move |&m| m != me)
    }

    /// Every other voter: whom a candidate asks.
    fn voting_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.membership.current().voters().filter(move |&m| m != me)
    }

    fn is_voter(&self) -> bool {
        self.membership.current().is_voter(self.id)
    }

    fn voter_count(&self) -> usize {
        self.membership.current().voter_count()
    }

    /// The only voter: nobody to wait for.
    fn alone(&self) -> bool {
        self.is_voter() && self.voter_count() == 1
    }

    fn durable_index(&self) -> u64 {
        if self.config.sync_flush {
            self.persisted_index.min(self.storage.last_index())
        } else {
            self.storage.last_index()
        }
    }

    fn set_term(&mut self, term: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.hard_state_dirty = true;
            self.leader_match = 0;
            self.pending_ack = None;
            self.last_append_seq = None;
            if self.taking_leadership_term.is_some_and(|t| t < term) {
                self.taking_leadership_term = None;
            }
        }
    }

    /// Follows `leader` (or nobody yet) at `term`, adopting the term if it is newer.
    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        self.set_term(term);
        if leader != self.leader {
            self.leader_match = 0;
            self.pending_ack = None;
            self.last_append_seq = None;
        }
        self.leader = leader;
        self.role = RoleState::Follower;
        self.taking_leadership_term = None;
        // Also when no leader is known yet: give the candidate that moved us to this term a
        // full timeout to win before competing with it.
        self.last_leader_contact = self.now;
    }

    fn quorum_contact_age(&self, ls: &LeaderState) -> u64 {
        let membership = self.membership.current();
        let mut contacts: Vec<u64> = ls
            .progress
            .iter()
            .filter(|p| membership.is_voter(p.id))
            .map(|p| p.last_contact)
            .collect();
        if membership.is_voter(self.id) {
            contacts.push(self.now);
        }
        contacts.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = vote::quorum(membership.voter_count());
        let contact = contacts.get(quorum - 1).copied().unwrap_or(0);
        self.now.saturating_sub(contact)
    }

    fn leader_tick(&mut self) -> Result<(), RaftError> {
        let RoleState::Leader(ls) = &self.role else {
            return Ok(());
        };
        if self.config.check_quorum
            && !self.alone()
            && self.quorum_contact_age(ls) >= self.ticks.leader_timeout
        {
            tracing::warn!(node = %self.id, term = self.term,
                "no quorum heard within the leader timeout: stepping down");
            let term = self.term;
            self.become_follower(term, None);
            return Ok(());
        }
        if self.now >= ls.next_heartbeat_at {
            self.broadcast_heartbeats();
        }
        self.check_append_timeouts()?;
        self.transfer_tick()?;
        self.promote_caught_up_learners()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
