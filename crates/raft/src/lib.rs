//! Consensus for a broker group, in the style of DLedger but hardened: pre-vote,
//! check-quorum, fsynced term and vote, the Raft commit rule with a no-op on election,
//! checksummed entries, pipelined batched replication and automatic re-sync of followers.
//!
//! - [`entry`]: a log entry and its on-disk/on-wire framing (index, term, byte position,
//!   checksums). The CommitLog of a broker is a sequence of these frames, so the same bytes
//!   sit at the same offsets on every replica.
//! - [`core`]: the pure state machine ([`Node`]): roles, elections, replication, commit,
//!   leadership transfer; driven by `tick`/`step`/`propose`, answering with a [`Ready`].
//! - [`storage`]: the log-storage trait the core needs ([`LogStorage`]) and an in-memory log
//!   with the same semantics ([`MemLog`]), which also models what a power cut loses.
//! - [`hard_state`]: term, vote and the membership records, and where they are fsynced.
//! - [`membership`]: voters, learners and their addresses; changes one member at a time.
//! - [`message`]: the messages between nodes; [`codec`]: their compact binary encoding.
//! - [`config`]: timings and limits, with defaults for a one-second failover.
//! - [`peers`]: node ids and the DLedger peer-list syntax (`n0-host:port;n1-...`).
//! - [`driver`]: the tokio task running a node ([`RaftDriver`], [`RaftHandle`]): ticks,
//!   persistence, proposals with commit futures, the apply stream, state observation.
//! - [`transport`]: TCP connections to peers, with bounded queues and reconnect backoff.

pub mod codec;
pub mod config;
pub mod core;
pub mod driver;
pub mod entry;
pub mod hard_state;
pub mod membership;
pub mod message;
pub mod peers;
pub mod storage;
pub mod transport;

pub use crate::config::RaftConfig;
pub use crate::core::{
    EntryPlace, Event, Node, PeerStatus, Proposal, ProposeError, RaftError, Ready, ReplicaState,
    Role, Status, TransferError,
};
pub use crate::driver::{
    ApplyEvent, DriverConfig, DriverError, DriverObserver, ProposalError, ProposalFuture,
    RaftDriver, RaftHandle, RaftState,
};
pub use crate::hard_state::{FileHardStateStore, HardState, HardStateStore, MemHardStateStore};
pub use crate::membership::{
    Member, Membership, MembershipChange, MembershipError, MembershipLog, MembershipRecord,
};
pub use crate::message::Message;
pub use crate::peers::{parse_group, parse_peers, NodeId, PeerSpec};
pub use crate::storage::{BackgroundSync, LogStorage, MemLog, StorageError};
