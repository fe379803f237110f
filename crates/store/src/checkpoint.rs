//! Small state files written atomically (temporary file, fsync, rename, fsync directory):
//! the CommitLog's own checkpoint and the store's dispatch checkpoint.
//!
//! A checkpoint names a *safe point*: everything below it was flushed before the file was
//! written, so recovery only has to verify what comes after it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// Where the CommitLog starts and up to where it is known durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCheckpoint {
    /// Index of the first entry the log holds (or would hold, when empty).
    pub first_index: u64,
    /// Byte position of that first entry.
    pub first_pos: u64,
    /// Term of the entry just before `first_index` (0 at the very start), which raft needs
    /// to match logs after older entries were removed.
    pub prev_term: u64,
    /// A frame boundary: data and entry-index slots below it are durable.
    pub safe_pos: u64,
    /// Index of the entry that starts at (or after, across blank padding) `safe_pos`.
    pub safe_next_index: u64,
}

impl LogCheckpoint {
    pub fn empty_at(first_index: u64, first_pos: u64, prev_term: u64) -> LogCheckpoint {
        LogCheckpoint {
            first_index,
            first_pos,
            prev_term,
            safe_pos: first_pos,
            safe_next_index: first_index,
        }
    }
}

/// Up to where the derived files (ConsumeQueues, key index) are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoreCheckpoint {
    /// A frame boundary in the CommitLog: ConsumeQueue and key-index entries of every record
    /// below it are durable.
    pub dispatched_safe_pos: u64,
    /// Store timestamp of the last record below `dispatched_safe_pos` (as RocketMQ's
    /// `logicsMsgTimestamp`), for operators.
    pub dispatched_timestamp_ms: i64,
    /// Wall-clock time the checkpoint was written.
    pub written_at_ms: i64,
}

/// Reads a checkpoint; a missing or unreadable file is `None` (recovery then scans from
/// the beginning, which is slower but never wrong).
pub fn read<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable checkpoint");
            None
        }
    }
}

/// Replaces the checkpoint at `path` so that a crash leaves either the old or the new one.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec(value)
        .map_err(|e| StoreError::corrupt(path, format!("cannot encode checkpoint: {e}")))?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        file.write_all(&json).map_err(|e| StoreError::io(&tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a rename or file creation in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| StoreError::io(dir, e))?;
    handle.sync_all().map_err(|e| StoreError::io(dir, e))
}

/// The last store checkpoint written, and how far the key index's last flush reached.
#[derive(Debug, Default)]
pub(crate) struct CheckpointState {
    pub(crate) written: StoreCheckpoint,
    /// Dispatched position (and its timestamp) read before the key index's last flush: the
    /// checkpoint never claims more, as the index is flushed less often than the rest.
    pub(crate) key_index_covers: Option<(u64, i64)>,
    pub(crate) key_index_flushed_at: Option<std::time::Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(read::<LogCheckpoint>(&path), None);
        let cp = LogCheckpoint {
            first_index: 5,
            first_pos: 4096,
            prev_term: 2,
            safe_pos: 9000,
            safe_next_index: 17,
        };
        write(&path, &cp).unwrap();
        assert_eq!(read::<LogCheckpoint>(&path), Some(cp));
        std::fs::write(&path, b"{\"first_index\": 5, \"firs").unwrap();
        assert_eq!(read::<LogCheckpoint>(&path), None);
    }
}
