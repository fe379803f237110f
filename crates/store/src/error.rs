//! The one error type of the store.

use std::io;
use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The store's filesystem is fuller than the configured limit; writes resume once space
    /// is freed (by retention or by an operator).
    #[error("disk nearly full: {:.1}% of the store's filesystem is used (writes refused above {:.1}%)", used_ratio * 100.0, limit_ratio * 100.0)]
    DiskFull { used_ratio: f64, limit_ratio: f64 },
    #[error("corrupt store file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Entry `index` of the CommitLog in `path` was read back damaged (bit rot): a group
    /// member repairs it from another member's copy.
    #[error("damaged entry {index} in {path}: {reason}")]
    DamagedEntry {
        path: PathBuf,
        index: u64,
        reason: String,
    },
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("entry of {size} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge { size: usize, max: usize },
    #[error("batch of {count} messages and {bytes} bytes exceeds the limit of {max_count} messages or {max_bytes} bytes")]
    BatchTooLarge {
        count: usize,
        bytes: usize,
        max_count: usize,
        max_bytes: usize,
    },
    #[error("message record rejected: {0}")]
    BadRecord(String),
    /// An append or truncation that does not fit the log as it is (wrong index or
    /// position, truncating committed entries, ...).
    #[error("log mismatch: {0}")]
    LogMismatch(String),
    /// A write or flush failed earlier; the data on disk can no longer be trusted to match
    /// what was acknowledged, so the store refuses further writes until restarted.
    #[error("store is read-only after an earlier failure: {0}")]
    ReadOnly(String),
    #[error("store is shut down")]
    Shutdown,
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: io::Error) -> StoreError {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            // The filesystem is truly full: report it the same way as the early refusal.
            return StoreError::DiskFull {
                used_ratio: 1.0,
                limit_ratio: 1.0,
            };
        }
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
