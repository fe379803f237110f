//! Durable local files of a broker.
//!
//! Storage layers, bottom up:
//! - [`segment`]: one fixed-size memory-mapped file and the rules for sharing its bytes.
//! - [`segment_queue`]: a contiguous run of segment files in one directory.
//! - [`entry_index`]: fixed 32-byte slots mapping a raft index to its frame.
//! - [`commit_log`]: the log of raft entry frames over segments: append, read, truncate,
//!   reset, flush, recovery. It is the file-backed raft log.
//! - [`checkpoint`]: atomically replaced safe-point files used by recovery.
//! - [`dir_lock`]: one owner per store directory.
//! - [`raft_log`]: the CommitLog as raft's log storage (`raft::LogStorage`), with retention
//!   carried out on the raft driver's thread.
//!
//! Derived files and the standalone facade:
//! - [`consume_queue`]: one ConsumeQueue per topic-queue (20-byte entries).
//! - [`key_index`]: `topic#key` to CommitLog offsets for QUERY_MESSAGE.
//! - [`dispatch`]: records to ConsumeQueue and key-index entries; rebuilding them after a
//!   crash.
//! - [`message_store`]: what the standalone broker codes against: put, get, query, stats.
//! - `reads` (internal): pulls, offsets and lookups shared by both stores.
//! - `flush` (internal): the CommitLog flusher thread (async flush, SYNC_FLUSH group
//!   commit) and the flush-everything-then-checkpoint step.
//! - [`replicated`]: the store of a broker in a raft group (DLedger mode): puts through the
//!   raft leader with queue offsets assigned at placement, an apply loop dispatching only
//!   committed entries, leader readiness, retention on every node.
//! - [`retention`]: the maintenance thread (periodic checkpoints, retention) and removing
//!   old segments by age and disk pressure.
//!
//! Support:
//! - [`config`]: settings with RocketMQ names and defaults.
//! - [`environment`]: injectable clock and filesystem-usage probe.
//! - [`stats`]: counters for runtime info.
//! - [`error`]: the store's error type.

pub mod checkpoint;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod dir_lock;
pub mod dispatch;
pub mod entry_index;
pub mod environment;
pub mod error;
mod flush;
pub mod key_index;
pub mod message_store;
pub mod raft_log;
mod reads;
pub mod replicated;
pub mod retention;
pub mod segment;
pub mod segment_queue;
pub mod stats;

pub use config::{FlushDiskType, StoreConfig};
pub use consume_queue::Boundary;
pub use environment::{Clock, DiskUsage, Environment, ManualClock, ManualDiskUsage};
pub use error::{Result, StoreError};
pub use message_store::{
    AcceptAll, ArrivalListener, GetMessageResult, GetMessageStatus, MessageStore, PendingPut,
    PutMessageResult, PutMessagesResult, PutStatus, QueryMessageResult, StoreRecovery,
    TagsCodeFilter,
};
pub use replicated::{MetadataApplier, ReplicaStatus, ReplicatedError, ReplicatedStore};
