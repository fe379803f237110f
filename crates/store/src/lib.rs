//! Durable local files of a broker.
//!
//! - [`segment`]: one fixed-size memory-mapped file and the rules for sharing its bytes.
//! - [`segment_queue`]: a contiguous run of segment files in one directory.
//! - [`entry_index`]: fixed 32-byte slots mapping a raft index to its frame.
//! - [`commit_log`]: the log of raft entry frames over segments: append, read, truncate,
//!   reset, flush, recovery. It is the file-backed raft log.
//! - [`consume_queue`]: one ConsumeQueue per topic-queue (20-byte entries).
//! - [`key_index`]: `topic#key` to CommitLog offsets for QUERY_MESSAGE.
//! - [`checkpoint`]: atomically replaced safe-point files used by recovery.
//! - [`error`]: the store's error type.

pub mod checkpoint;
pub mod commit_log;
pub mod consume_queue;
pub mod entry_index;
pub mod error;
pub mod key_index;
pub mod segment;
pub mod segment_queue;

pub use error::{Result, StoreError};
