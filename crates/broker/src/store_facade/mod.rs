//! The one door between request processors and message storage.
//!
//! Processors encode stored-message records and hand them to a [`MessageStore`]; they read
//! queues, offsets and messages back through it, and never learn which store is behind it.
//!
//! - [`local`]: [`LocalStore`], the standalone `store::MessageStore`.
//! - [`replicated`]: [`ReplicatedFacade`], `store::ReplicatedStore` (DLedger mode: the
//!   CommitLog is the raft log and only quorum-committed entries are dispatched).

pub mod local;
pub mod replicated;

pub use local::LocalStore;
pub use replicated::ReplicatedFacade;

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use message::record::field;
use remoting::code::response;
use store::{
    AcceptAll, ArrivalListener, Boundary, GetMessageResult, PutMessageResult, QueryMessageResult,
    StoreError, TagsCodeFilter,
};

/// Encoded message records, back to back in one buffer, to be stored together (one send
/// or one batch). Queue offset, physical offset and store timestamp are placeholders the
/// store patches.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl RecordBatch {
    pub fn with_capacity(bytes: usize, records: usize) -> Self {
        RecordBatch {
            buf: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
        }
    }

    /// The buffer to append the next record to; call [`RecordBatch::finish_record`] after.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Marks the bytes appended since the previous record as one record.
    pub fn finish_record(&mut self) {
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total bytes of all records.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The records in order.
    pub fn records(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .filter_map(|&end| {
                let record = self.buf.get(start..end);
                start = end;
                record
            })
            .collect()
    }
}

/// How a stored put ended. Everything but `Ok` is still "stored" for clients (RocketMQ's
/// FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE send codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcomeStatus {
    Ok,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

impl PutOutcomeStatus {
    /// The send response code.
    pub fn response_code(self) -> i32 {
        match self {
            PutOutcomeStatus::Ok => response::SUCCESS,
            PutOutcomeStatus::FlushDiskTimeout => response::FLUSH_DISK_TIMEOUT,
            PutOutcomeStatus::FlushSlaveTimeout => response::FLUSH_SLAVE_TIMEOUT,
            PutOutcomeStatus::SlaveNotAvailable => response::SLAVE_NOT_AVAILABLE,
        }
    }
}

/// Where a put's records went, one entry per record in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub status: PutOutcomeStatus,
    pub messages: Vec<PutMessageResult>,
}

/// Why a put stored nothing, grouped by the response code a client acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// The store cannot take writes now (disk full, read-only after a failure, shutting
    /// down, not the leader); producers retry elsewhere.
    #[error("service not available now: {0}")]
    ServiceNotAvailable(String),
    /// Overloaded; producers retry.
    #[error("[REJECTREQUEST]system busy: {0}")]
    SystemBusy(String),
    /// The message itself is unacceptable; retrying it cannot help.
    #[error("message illegal: {0}")]
    MessageIllegal(String),
    #[error("put message failed: {0}")]
    SystemError(String),
}

impl PutError {
    pub fn response_code(&self) -> i32 {
        match self {
            PutError::ServiceNotAvailable(_) => response::SERVICE_NOT_AVAILABLE,
            PutError::SystemBusy(_) => response::SYSTEM_BUSY,
            PutError::MessageIllegal(_) => response::MESSAGE_ILLEGAL,
            PutError::SystemError(_) => response::SYSTEM_ERROR,
        }
    }
}

impl From<StoreError> for PutError {
    fn from(error: StoreError) -> Self {
        let text = error.to_string();
        match error {
            StoreError::DiskFull { .. } | StoreError::ReadOnly(_) | StoreError::Shutdown => {
                PutError::ServiceNotAvailable(text)
            }
            StoreError::EntryTooLarge { .. }
            | StoreError::BatchTooLarge { .. }
            | StoreError::BadRecord(_) => PutError::MessageIllegal(text),
            StoreError::Io { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Config(_)
            | StoreError::LogMismatch(_) => PutError::SystemError(text),
        }
    }
}

/// A failed non-put operation (deleting a topic's queues, flushing).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreOpError(pub String);

/// A read of one topic-queue (PULL_MESSAGE).
#[derive(Debug, Clone, Copy)]
pub struct GetRequest<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub offset: i64,
    pub max_count: usize,
    pub max_bytes: Option<usize>,
}

/// What processors need from message storage. Object-safe: the broker holds an
/// `Arc<dyn MessageStore>` so a replicated implementation can replace [`LocalStore`].
pub trait MessageStore: Send + Sync + 'static {
    /// Stores the records as one unit with dense queue offsets; resolves once they are
    /// durable as the flush / replication policy demands.
    fn put(&self, batch: RecordBatch) -> BoxFuture<'_, Result<PutOutcome, PutError>>;

    /// Reads from a topic-queue, skipping entries `filter` rejects (RocketMQ `getMessage`).
    fn get(&self, request: &GetRequest<'_>, filter: &dyn TagsCodeFilter) -> GetMessageResult;

    /// Next queue offset to be written (0 for an unknown queue).
    fn max_offset(&self, topic: &str, queue_id: i32) -> i64;

    /// Smallest retained queue offset.
    fn min_offset(&self, topic: &str, queue_id: i32) -> i64;

    fn offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64;

    /// Store time of the oldest retained message of a queue.
    fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64>;

    /// Store time of the message at a queue offset.
    fn message_store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64>;

    /// Store time of the oldest message in the store.
    fn earliest_message_time_in_store(&self) -> Option<i64>;

    /// The record at a CommitLog offset (VIEW_MESSAGE_BY_ID, CONSUMER_SEND_MSG_BACK).
    fn message_at(&self, phys_offset: i64) -> Option<Bytes>;

    /// QUERY_MESSAGE by key or UNIQ_KEY.
    fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> QueryMessageResult;

    /// Whether the message at a queue offset is still likely in the page cache (RocketMQ
    /// decides with it where a brand-new consumer group starts).
    fn is_in_memory(&self, topic: &str, queue_id: i32, offset: i64) -> bool;

    /// Drops a topic's queues.
    fn delete_topic(&self, topic: &str) -> Result<(), StoreOpError>;

    /// Queue id → (min, max) offsets of every queue the store has for `topic`.
    fn queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)>;

    /// Facts for GET_BROKER_RUNTIME_INFO.
    fn runtime_info(&self) -> BTreeMap<String, String>;

    /// Called with (topic, queue id, new max offset) whenever messages become readable.
    fn set_arrival_listener(&self, listener: ArrivalListener);

    /// Flushes everything to disk.
    fn flush(&self) -> Result<(), StoreOpError>;

    /// Final flush; stops background work.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Store time of the message at a queue offset, read from the record itself.
pub(crate) fn store_time_at(read: GetMessageResult) -> Option<i64> {
    let record = read.messages.first()?;
    let view = message::MessageView::parse(record).ok()?;
    Some(view.store_timestamp_ms())
}

/// PHYSICALOFFSET of the first record a read returned.
pub(crate) fn first_phys_offset(read: &GetMessageResult) -> Option<i64> {
    let record = read.messages.first()?;
    let bytes = record.get(field::PHYSICAL_OFFSET..field::PHYSICAL_OFFSET + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(i64::from_be_bytes(word))
}

/// Physical memory share beyond which RocketMQ assumes a message has left the page cache
/// (`accessMessageInMemoryMaxRatio`, 40).
const IN_MEMORY_RATIO: f64 = 0.40;

/// Whether a message `behind_bytes` before the end of the CommitLog is likely cached.
pub(crate) fn likely_in_memory(behind_bytes: u64) -> bool {
    static MEMORY_BYTES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let memory = *MEMORY_BYTES.get_or_init(physical_memory_bytes);
    (behind_bytes as f64) <= memory as f64 * IN_MEMORY_RATIO
}

/// Physical memory of the machine, or a conservative 1 GiB when unknown.
fn physical_memory_bytes() -> u64 {
    // SAFETY: sysconf only reads system constants.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page_size > 0 {
        (pages as u64).saturating_mul(page_size as u64)
    } else {
        1 << 30
    }
}

/// The first-record read both stores use for per-offset lookups.
pub(crate) fn one_record(
    store: &dyn MessageStore,
    topic: &str,
    queue_id: i32,
    offset: i64,
) -> GetMessageResult {
    store.get(
        &GetRequest {
            topic,
            queue_id,
            offset,
            max_count: 1,
            max_bytes: None,
        },
        &AcceptAll,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_batches_keep_record_boundaries() {
        let mut batch = RecordBatch::with_capacity(16, 2);
        batch.buffer().extend_from_slice(b"abc");
        batch.finish_record();
        batch.buffer().extend_from_slice(b"de");
        batch.finish_record();
        assert_eq!(batch.records(), vec![&b"abc"[..], &b"de"[..]]);
        assert_eq!((batch.len(), batch.byte_len()), (2, 5));
    }

    #[test]
    fn store_errors_map_to_the_codes_producers_act_on() {
        let full = PutError::from(StoreError::DiskFull {
            used_ratio: 0.95,
            limit_ratio: 0.9,
        });
        assert_eq!(full.response_code(), response::SERVICE_NOT_AVAILABLE);
        let big = PutError::from(StoreError::EntryTooLarge { size: 9, max: 1 });
        assert_eq!(big.response_code(), response::MESSAGE_ILLEGAL);
        let io = PutError::from(StoreError::Config("x".into()));
        assert_eq!(io.response_code(), response::SYSTEM_ERROR);
    }
}
