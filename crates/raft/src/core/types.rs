//! What goes in and out of a [`Node`](super::Node): its role, proposals and where they land,
//! the [`Ready`] handed back after every call, events, status, and the errors. Kept apart
//! from the node so that the API a driver works with reads in one place, without the state
//! machine around it.

use bytes::Bytes;

use crate::config::ConfigError;
use crate::hard_state::HardState;
use crate::membership::{Membership, MembershipError, MembershipLog};
use crate::message::{Message, RejectReason};
use crate::storage::StorageError;
use crate::NodeId;

use super::progress::ReplicaState;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Where a proposed entry lands: its index, term and byte position in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPlace {
    pub index: u64,
    pub term: u64,
    pub pos: u64,
}

impl EntryPlace {
    /// Log position of the first body byte (a RocketMQ message's physical offset).
    pub fn body_pos(&self) -> u64 {
        self.pos + crate::entry::ENTRY_HEADER_LEN as u64
    }
}

/// Writes placement-dependent fields into a body (e.g. a message's physical offset) once
/// the entry's place is known, before its checksum is computed and it is replicated.
pub type PatchFn = Box<dyn FnOnce(EntryPlace, &mut [u8]) + Send>;

/// One entry to append.
pub struct Proposal {
    /// What the body is, chosen by the application; stored in the entry header.
    pub channel: u32,
    pub body: Bytes,
    pub patch: Option<PatchFn>,
}

impl Proposal {
    pub fn new(channel: u32, body: impl Into<Bytes>) -> Proposal {
        Proposal {
            channel,
            body: body.into(),
            patch: None,
        }
    }

    /// A proposal whose body is completed by `patch` once its place is known. The patch sees
    /// the body (same length as `body`) inside the entry frame and may change any byte.
    pub fn with_patch(
        channel: u32,
        body: impl Into<Bytes>,
        patch: impl FnOnce(EntryPlace, &mut [u8]) + Send + 'static,
    ) -> Proposal {
        Proposal {
            channel,
            body: body.into(),
            patch: Some(Box::new(patch)),
        }
    }
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposal")
            .field("channel", &self.channel)
            .field("body_len", &self.body.len())
            .field("patch", &self.patch.is_some())
            .finish()
    }
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership is being transferred")]
    Transferring,
    #[error("too many uncommitted entries ({uncommitted})")]
    Busy { uncommitted: u64 },
    #[error("entry body of {body_bytes} bytes exceeds {max_bytes}")]
    TooLarge { body_bytes: usize, max_bytes: usize },
    /// A membership change waits until the previous one is durably committed and the
    /// leader has durably committed an entry of its own term.
    #[error("the previous membership change (entry {index}) is not durably committed yet")]
    ChangeInProgress { index: u64 },
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The leader cannot remove itself: transfer leadership to another voter first.
    #[error("the leader cannot remove itself; transfer leadership first")]
    RemovingLeader,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a leadership transfer failed or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("not the leader")]
    NotLeader,
    #[error("{0} is not a member of the group")]
    UnknownPeer(NodeId),
    #[error("a transfer is already under way")]
    AlreadyTransferring,
    #[error("target lags by {lag} entries")]
    TooFarBehind { lag: u64 },
    #[error("transfer did not complete in time")]
    Timeout,
    #[error("another node became leader: {leader:?}")]
    Superseded { leader: Option<NodeId> },
}

/// A failure that stops the node.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("node {id} is not in the member list {members:?}")]
    NotMember { id: NodeId, members: Vec<NodeId> },
    #[error("a group has 1 to {max} members, got {got}")]
    GroupSize { max: usize, got: usize },
}

/// Something the application may want to know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Role, term or known leader changed.
    RoleChanged {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    /// The log was restarted at a leader's first entry: every entry before `next_index` is
    /// gone from this node, and the application rebuilds what it derived from them.
    LogRestarted { next_index: u64, next_pos: u64 },
    /// A transfer asked of this node ended.
    TransferFinished {
        target: NodeId,
        result: Result<(), TransferError>,
    },
    /// A follower refused an append; replication to it retries after the append timeout.
    ReplicationRejected { peer: NodeId, reason: RejectReason },
    /// A read found entry `index` damaged; the other members are asked for a copy.
    EntryDamaged { index: u64 },
    /// Entry `index`, read back damaged, was rewritten from `from`'s intact copy.
    EntryRepaired { index: u64, from: NodeId },
}

/// What the driver must do after feeding the node, in this order: persist `hard_state` and
/// `membership` with fsync; then send `messages` and, if `sync_needed`, fsync the log in parallel and report it
/// with [`Node::on_persisted`](super::Node::on_persisted); then read committed entries up to
/// [`Node::apply_limit`](super::Node::apply_limit).
#[derive(Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    /// The membership records changed (an entry set a membership, or a cut log took one
    /// back): persist them, and connect to the members of the one in force.
    pub membership: Option<MembershipLog>,
    pub messages: Vec<Message>,
    pub sync_needed: bool,
    pub events: Vec<Event>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.membership.is_none()
            && self.messages.is_empty()
            && !self.sync_needed
            && self.events.is_empty()
    }
}

/// Replication state of one follower, as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub id: NodeId,
    pub state: ReplicaState,
    pub match_index: u64,
    pub next_index: u64,
    pub inflight_batches: usize,
    /// Time since the follower last answered, in milliseconds of the node's clock.
    pub last_contact_ms_ago: u64,
}

/// Everything observable about a node, for the broker to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub voted_for: Option<NodeId>,
    pub commit_index: u64,
    /// Durable commit index: entries a quorum holds on disk (see [`Node::safe_index`]).
    ///
    /// [`Node::safe_index`]: super::Node::safe_index
    pub safe_index: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub persisted_index: u64,
    /// Per-follower replication state (leader only).
    pub peers: Vec<PeerStatus>,
    pub transferring_to: Option<NodeId>,
    /// The membership in force and the index of the entry that set it (0: as configured).
    pub membership: Membership,
    pub membership_index: u64,
    /// This node is not a member of the group (see [`Node::removed`]).
    ///
    /// [`Node::removed`]: super::Node::removed
    pub removed: bool,
}
