//! What the store answers: where a put went, what a read found, what a key query found,
//! what opening recovered; and the two hooks a caller hands in (the arrival listener and
//! the tags-code filter of a pull).

use std::sync::Arc;

use bytes::Bytes;

use crate::commit_log::LogRecovery;
use crate::dispatch::DispatchRecovery;

/// Where one stored message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutMessageResult {
    /// CommitLog offset of the record (PHYSICALOFFSET; the offset in an offset msgId).
    pub phys_offset: i64,
    /// Queue offset (0 for half / rolled-back transaction messages, which get none).
    pub queue_offset: i64,
    pub store_timestamp_ms: i64,
    /// Record size in bytes.
    pub size: i32,
}

/// How a put ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    PutOk,
    /// Stored, but the fsync did not finish within `syncFlushTimeout` (RocketMQ
    /// FLUSH_DISK_TIMEOUT); the message may still be lost by a crash.
    FlushDiskTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutMessagesResult {
    pub status: PutStatus,
    pub messages: Vec<PutMessageResult>,
}

/// A put that is written and readable, maybe not yet durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPut {
    pub messages: Vec<PutMessageResult>,
    /// CommitLog position the put must be flushed to.
    pub end_pos: u64,
}

/// RocketMQ's `GetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    /// Entries were scanned but none passed the filter.
    NoMatchedMessage,
    /// Entries point at messages retention is removing.
    MessageWasRemoving,
    OffsetFoundNull,
    /// offset > max offset.
    OffsetOverflowBadly,
    /// offset == max offset (caught up).
    OffsetOverflowOne,
    /// offset < min offset.
    OffsetTooSmall,
    /// The topic-queue does not exist.
    NoMatchedLogicQueue,
    /// The queue exists but holds nothing.
    NoMessageInQueue,
}

#[derive(Debug, Clone)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Stored message records, shared with the mapped CommitLog (no copies).
    pub messages: Vec<Bytes>,
    /// Queue offset of each message in `messages`.
    pub queue_offsets: Vec<i64>,
    pub buffer_total_size: usize,
}

/// QUERY_MESSAGE's answer.
#[derive(Debug, Clone, Default)]
pub struct QueryMessageResult {
    pub messages: Vec<Bytes>,
    pub index_last_update_timestamp: i64,
    pub index_last_update_phyoffset: i64,
}

/// What opening the store recovered.
#[derive(Debug, Clone)]
pub struct StoreRecovery {
    pub commit_log: LogRecovery,
    pub dispatch: DispatchRecovery,
}

/// Called with (topic, queue id, new max offset) after messages are dispatched, outside
/// the put lock. Keep it quick (wake a waiter); it runs on the putting thread.
pub type ArrivalListener = Arc<dyn Fn(&str, i32, i64) + Send + Sync>;

/// Which messages a pull wants (RocketMQ's `MessageFilter`): first by the tags code of
/// the ConsumeQueue entry, without touching the CommitLog; then, for filters that need the
/// message itself (SQL92 over properties), by the stored record.
pub trait MessageFilter {
    fn matches(&self, tags_code: i64) -> bool;

    /// Asked only for entries [`MessageFilter::matches`] accepted, with the stored record.
    fn matches_record(&self, _record: &[u8]) -> bool {
        true
    }
}

impl<F: Fn(i64) -> bool> MessageFilter for F {
    fn matches(&self, tags_code: i64) -> bool {
        self(tags_code)
    }
}

impl MessageFilter for message::TagFilter {
    fn matches(&self, tags_code: i64) -> bool {
        self.matches_code(tags_code)
    }
}

/// Accepts every entry (subscription `*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl MessageFilter for AcceptAll {
    fn matches(&self, _: i64) -> bool {
        true
    }
}
