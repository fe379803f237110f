//! The one door between request processors and message storage.
//!
//! Processors encode stored-message records and hand them to a [`MessageStore`]; they read
//! queues, offsets and messages back through it, and never learn which store is behind it.
//!
//! - [`standalone`]: [`StandaloneFacade`], `store::StandaloneStore`.
//! - [`replicated`]: [`ReplicatedFacade`], `store::ReplicatedStore` (DLedger mode: the
//!   CommitLog is the raft log and only quorum-committed entries are dispatched).

pub mod replicated;
pub mod standalone;

pub use replicated::ReplicatedFacade;
pub use standalone::StandaloneFacade;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use futures::future::BoxFuture;
use remoting::code::response;
use store::{PutMessageResult, PutMessagesResult, PutStatus, StoreError, StoreReader};

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
    /// Proposed but not known to be stored (a raft proposal that timed out or lost its
    /// leader): it may still be stored, so a retry may store it twice.
    #[error("put message outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl PutError {
    pub fn response_code(&self) -> i32 {
        match self {
            PutError::ServiceNotAvailable(_) => response::SERVICE_NOT_AVAILABLE,
            PutError::SystemBusy(_) => response::SYSTEM_BUSY,
            PutError::MessageIllegal(_) => response::MESSAGE_ILLEGAL,
            PutError::SystemError(_) | PutError::OutcomeUnknown(_) => response::SYSTEM_ERROR,
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
            | StoreError::DamagedEntry { .. }
            | StoreError::Config(_)
            | StoreError::LogMismatch(_) => PutError::SystemError(text),
        }
    }
}

/// A failed non-put operation (deleting a topic's queues, flushing).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreOpError(pub String);

/// What processors need from message storage. Object-safe: the broker holds an
/// `Arc<dyn MessageStore>` and never learns which store is behind it. Reads are the
/// store's own [`StoreReader`], the same for both; only writing and running differ.
pub trait MessageStore: Send + Sync + 'static {
    /// Pulls, offsets, time and key lookups, and the arrival hook.
    fn reader(&self) -> &StoreReader;

    /// The record at `phys_offset`, waiting up to `max_wait` for one whose put was just
    /// acknowledged but may not be readable yet (a broker group acknowledges before the
    /// record is durable on a quorum and applied). A standalone store reads it at once.
    fn message_after_put(
        &self,
        phys_offset: i64,
        _max_wait: Duration,
    ) -> BoxFuture<'_, Option<Bytes>> {
        let record = self.reader().message_at(phys_offset);
        Box::pin(std::future::ready(record))
    }

    /// Stores the records as one unit with dense queue offsets; resolves once they are
    /// durable as the flush / replication policy demands.
    fn put(&self, batch: RecordBatch) -> BoxFuture<'_, Result<PutOutcome, PutError>>;

    /// Drops a topic's queues.
    fn delete_topic(&self, topic: &str) -> Result<(), StoreOpError>;

    /// Facts for GET_BROKER_RUNTIME_INFO.
    fn runtime_info(&self) -> BTreeMap<String, String>;

    /// Flushes everything to disk.
    fn flush(&self) -> Result<(), StoreOpError>;

    /// Final flush; stops background work.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// The outcome both stores report, in the facade's terms.
fn put_outcome(result: PutMessagesResult) -> PutOutcome {
    let status = match result.status {
        PutStatus::PutOk => PutOutcomeStatus::Ok,
        PutStatus::FlushDiskTimeout => PutOutcomeStatus::FlushDiskTimeout,
    };
    PutOutcome {
        status,
        messages: result.messages,
    }
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
