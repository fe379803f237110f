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
//! Derived files:
//! - [`consume_queue`]: one ConsumeQueue per topic-queue (20-byte entries).
//! - [`key_index`]: `topic#key` to CommitLog offsets for QUERY_MESSAGE.
//! - [`dispatch`]: records to ConsumeQueue and key-index entries; rebuilding them after a
//!   crash.
//!
//! The two stores over one engine:
//! - `engine` (internal): what both stores share: CommitLog, dispatcher, counters, the
//!   arrival listener, record validation.
//! - [`reader`]: [`StoreReader`], the one read API of both stores: pulls, offsets, time and
//!   key lookups.
//! - [`results`]: what puts, reads and queries answer; the filter and listener hooks.
//! - `queue_offsets` (internal): the writer's next queue offsets and record stamping, used
//!   by both put paths.
//! - [`standalone`]: [`StandaloneStore`], the standalone broker's store: puts under one
//!   lock, group commit with SYNC_FLUSH.
//! - [`replica`]: [`replica::ReplicaCore`], one group member's store without threads or
//!   timers: recovery, queue offsets assigned at placement, applying only committed
//!   entries, leader readiness. Driven by [`ReplicatedStore`] and by the group simulation.
//! - [`replicated`]: [`ReplicatedStore`], the store of a broker in a raft group (DLedger
//!   mode): a [`replica::ReplicaCore`] on a raft driver and an apply task, retention on
//!   every node.
//!
//! Background services (each depends on the engine only):
//! - `background` (internal): starts and stops the three service threads.
//! - `flush` (internal): the CommitLog flusher thread (async flush, SYNC_FLUSH group
//!   commit) and the flush-everything-then-checkpoint step.
//! - [`retention`]: the maintenance thread (periodic checkpoints, retention) and removing
//!   old segments by age and disk pressure.
//! - `prefault` (internal): the thread keeping the CommitLog's next pages mapped ahead of
//!   the writer.
//!
//! Support:
//! - [`config`]: settings with RocketMQ names and defaults.
//! - [`environment`]: injectable clock and filesystem-usage probe.
//! - [`stats`]: counters for runtime info.
//! - [`error`]: the store's error type.

mod background;
pub mod checkpoint;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod dir_lock;
pub mod dispatch;
mod engine;
pub mod entry_index;
pub mod environment;
pub mod error;
mod flush;
pub mod key_index;
mod prefault;
mod queue_offsets;
pub mod raft_log;
pub mod reader;
pub mod replica;
pub mod replicated;
pub mod results;
pub mod retention;
mod retention_holds;
pub mod segment;
pub mod segment_queue;
pub mod standalone;
pub mod stats;

pub use config::{FlushDiskType, StoreConfig};
pub use consume_queue::Boundary;
pub use environment::{Clock, DiskUsage, Environment, ManualClock, ManualDiskUsage};
pub use error::{Result, StoreError};
pub use reader::{Backlog, StoreReader};
pub use replicated::{MetadataApplier, ReplicaStatus, ReplicatedError, ReplicatedStore};
pub use results::{
    AcceptAll, ArrivalListener, GetMessageResult, GetMessageStatus, MessageFilter, PendingPut,
    PutMessageResult, PutMessagesResult, PutStatus, QueryMessageResult, StoreRecovery,
};
pub use standalone::StandaloneStore;
