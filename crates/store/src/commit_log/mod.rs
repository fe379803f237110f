//! The CommitLog: a log of raft entry frames ([`raft::entry`]) over fixed-size segment
//! files, with an entry-index file for O(1) lookup by index.
//!
//! Placement is deterministic, so replicas with the same segment size put the same entry at
//! the same position: an entry goes at the write position if it fits in the rest of the
//! segment; otherwise the rest is blank padding and the entry starts the next segment.
//!
//! Positions below the *stable position* are never rewritten, so they are handed out as
//! zero-copy views of the mapping. Above it (entries raft may still truncate) reads copy,
//! under a lock that truncation takes exclusively. A standalone store marks everything it
//! writes stable at once; a raft replica marks entries stable as they commit.
//!
//! Recovery starts at the checkpoint's safe point, verifies every frame after it (header and
//! body checksums, position, index continuity, and the body through the caller's
//! validator), stops at the first frame that fails, and erases everything from there on.
//!
//! - this file: the layout, the published positions, opening.
//! - [`append`]: append batches and marking positions stable.
//! - `read`: entries, frames and bodies read back.
//! - `recover`: verifying the tail at open.
//! - `truncate`: removing a suffix, a prefix segment, or everything.
//! - `flush`: fsync, checkpoints, the durable position.

pub mod append;
mod flush;
mod read;
mod recover;
#[cfg(test)]
mod tests;
mod truncate;

pub use append::AppendBatch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard, RwLock};
use raft::entry::{
    encode_blank, Entry, EntryHeader, EntryKind, FrameError, BLANK_MIN_LEN, ENTRY_HEADER_LEN,
};
use tokio::sync::watch;

use crate::checkpoint::{self, LogCheckpoint};
use crate::dir_lock::DirLock;
use crate::entry_index::{EntryIndex, EntryLocation};
use crate::error::{Result, StoreError};
use crate::segment::Segment;
use crate::segment_queue::SegmentQueue;

const HEADER_LEN: u64 = ENTRY_HEADER_LEN as u64;
/// Largest index or byte position accepted from a file or a peer (far beyond any real log,
/// far below where arithmetic could overflow).
pub const MAX_POSITION: u64 = 1 << 60;
const CHECKPOINT_FILE: &str = "checkpoint";

/// How a CommitLog is laid out on disk.
#[derive(Debug, Clone)]
pub struct CommitLogConfig {
    /// Directory holding `data/`, `index/` and `checkpoint`.
    pub dir: PathBuf,
    /// Bytes per data segment (RocketMQ `mappedFileSizeCommitLog`, 1 GiB by default).
    pub segment_len: u64,
    /// Slots per entry-index file (32 bytes each).
    pub index_slots_per_file: u64,
    /// Largest entry body accepted.
    pub max_body_len: usize,
    /// Largest number of bytes one append batch may stage.
    pub max_batch_bytes: usize,
    /// Append with write(2) rather than through the mapping (see
    /// [`Segment::write_through_file`]): for a log appended in batches and fsynced while it
    /// grows (a raft log). One write(2) per small append costs more than the page faults it
    /// saves (a single broker appends each message alone and fsyncs every 500 ms).
    pub write_through_file: bool,
    /// The prefault thread writes zeros over the blocks ahead of the writer and syncs them
    /// (see [`Segment::warm`]): for a log that fsyncs as it grows (`write_through_file`).
    pub warm_ahead: bool,
}

impl CommitLogConfig {
    fn validate(&self) -> Result<()> {
        let frame_max = self.max_body_len as u64 + HEADER_LEN;
        if self.segment_len < frame_max {
            return Err(StoreError::Config(format!(
                "CommitLog segment of {} bytes cannot hold an entry of {} bytes",
                self.segment_len, frame_max
            )));
        }
        if self.index_slots_per_file == 0 {
            return Err(StoreError::Config(
                "index_slots_per_file must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// What a read by physical offset found (see [`CommitLog::body_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyAt {
    Found(EntryHeader, Bytes),
    Missing,
    Damaged { index: u64 },
}

/// Where an entry goes (or went).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub index: u64,
    /// Position of the frame header.
    pub pos: u64,
}

impl Placement {
    /// Position of the body: the RocketMQ physical offset of a message record.
    pub fn body_pos(&self) -> u64 {
        self.pos + HEADER_LEN
    }
}

/// The range one committed append batch added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_index: u64,
    pub last_index: u64,
    /// The write position after the batch.
    pub end_pos: u64,
}

/// Up to where the log is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durable {
    /// Every byte below this position has been fsynced.
    pub pos: u64,
    /// Every entry up to this index has been fsynced (0: none).
    pub index: u64,
}

/// What recovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecovery {
    /// Where verification started.
    pub scanned_from: u64,
    /// Frames verified.
    pub frames_verified: u64,
    /// The write position after recovery.
    pub end_pos: u64,
    pub last_index: u64,
    /// Why the scan stopped before the last written byte, if it cut anything.
    pub cut: Option<String>,
}

/// What a frame read at a position is.
#[derive(Debug, Clone)]
pub enum FrameAt {
    /// A verified frame header and its body.
    Entry { header: EntryHeader, body: Bytes },
    /// Blank padding or the unusable tail of a segment: continue at this position.
    Skip { next_pos: u64 },
    /// Nothing (valid) here: the end of the readable log.
    End,
}

/// Checks a frame's body during recovery (e.g. that a message record decodes and its
/// PHYSICALOFFSET matches the frame).
pub type BodyValidator<'a> =
    &'a dyn Fn(&EntryHeader, &[u8]) -> std::result::Result<(), InvalidBody>;

/// Why the log's owner rejects a frame body (recovery cuts the log before it). The log only
/// reports it; what is wrong is the owner's to say.
pub type InvalidBody = Box<dyn std::error::Error + Send + Sync>;

struct Published {
    first_index: AtomicU64,
    first_pos: AtomicU64,
    prev_term: AtomicU64,
    last_index: AtomicU64,
    last_term: AtomicU64,
    write_pos: AtomicU64,
    stable_pos: AtomicU64,
}

struct Writer {
    /// Bytes staged by the open batch, written in `chunks`.
    buf: Vec<u8>,
    chunks: Vec<(u64, usize, usize)>,
    locations: Vec<EntryLocation>,
}

pub struct CommitLog {
    _lock: DirLock,
    config: CommitLogConfig,
    data: SegmentQueue,
    index: EntryIndex,
    published: Published,
    writer: Mutex<Writer>,
    /// Readers of unstable bytes share it; truncation and reset take it alone.
    truncation: RwLock<()>,
    /// Serialises checkpoint file writes.
    checkpoint_lock: Mutex<LogCheckpoint>,
    durable: watch::Sender<Durable>,
    /// One flush at a time: a second flusher must not see a segment as clean while the
    /// first is still inside its fsync, or it would claim durability too early.
    flush_lock: Mutex<()>,
    failed: Mutex<Option<String>>,
    has_failed: AtomicBool,
    fsyncs: AtomicU64,
    /// Entries readers found damaged, for the raft node to repair (see
    /// [`CommitLog::take_damage_report`]); bounded by `MAX_DAMAGE_REPORTS`.
    damage_reports: Mutex<std::collections::BTreeSet<u64>>,
}

/// Damaged entries remembered at once: one is repaired at a time, and the readers that need
/// the others find them again.
const MAX_DAMAGE_REPORTS: usize = 64;

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitLog")
            .field("dir", &self.config.dir)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .field("write_pos", &self.write_pos())
            .finish()
    }
}

impl CommitLog {
    /// Opens (or creates) the log and recovers it, verifying every frame after the
    /// checkpoint. `validate` is asked about each frame's body.
    pub fn open(
        config: CommitLogConfig,
        validate: BodyValidator<'_>,
    ) -> Result<(CommitLog, LogRecovery)> {
        config.validate()?;
        std::fs::create_dir_all(&config.dir).map_err(|e| StoreError::io(&config.dir, e))?;
        let lock = DirLock::acquire(&config.dir)?;
        let data = SegmentQueue::open(&config.dir.join("data"), config.segment_len)?;
        let index = EntryIndex::open(&config.dir.join("index"), config.index_slots_per_file)?;
        let cp_path = config.dir.join(CHECKPOINT_FILE);
        let mut cp = checkpoint::read::<LogCheckpoint>(&cp_path)
            .filter(|cp| {
                let sane = [cp.first_index, cp.first_pos, cp.safe_pos, cp.safe_next_index]
                    .iter()
                    .all(|&v| v <= MAX_POSITION);
                if !sane {
                    tracing::warn!(path = %cp_path.display(), ?cp, "ignoring an implausible checkpoint");
                }
                sane
            })
            .unwrap_or_else(|| LogCheckpoint::empty_at(1, 0, 0));
        if cp.first_index == 0 {
            cp.first_index = 1;
        }
        // Segments wholly before the log start are leftovers of an interrupted retention.
        while data.len() > 1 {
            if data.remove_first_if(|s| s.end() <= cp.first_pos)?.is_none() {
                break;
            }
        }
        let log = CommitLog {
            _lock: lock,
            data,
            index,
            published: Published {
                first_index: AtomicU64::new(cp.first_index),
                first_pos: AtomicU64::new(cp.first_pos),
                prev_term: AtomicU64::new(cp.prev_term),
                last_index: AtomicU64::new(cp.first_index - 1),
                last_term: AtomicU64::new(cp.prev_term),
                write_pos: AtomicU64::new(cp.first_pos),
                stable_pos: AtomicU64::new(cp.first_pos),
            },
            writer: Mutex::new(Writer {
                buf: Vec::new(),
                chunks: Vec::new(),
                locations: Vec::new(),
            }),
            truncation: RwLock::new(()),
            checkpoint_lock: Mutex::new(cp),
            durable: watch::Sender::new(Durable::default()),
            flush_lock: Mutex::new(()),
            damage_reports: Mutex::new(Default::default()),
            failed: Mutex::new(None),
            has_failed: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            config,
        };
        let checkpointed_durable = cp.safe_pos;
        let recovery = log.recover(cp, validate)?;
        // Bytes past the checkpoint were written by an earlier process and perhaps never
        // fsynced (kill -9 leaves them in the page cache, where recovery read them): make them
        // durable before anything counts them as such (raft counts its log towards quorums).
        for segment in log.data.snapshot() {
            if segment.end() > checkpointed_durable && segment.start() < log.write_pos() {
                segment.sync_unconditionally()?;
                log.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        let durable = Durable {
            pos: log.write_pos(),
            index: log.last_index(),
        };
        log.durable.send_replace(durable);
        log.write_checkpoint_at(durable.pos, durable.index + 1)?;
        Ok((log, recovery))
    }

    pub fn config(&self) -> &CommitLogConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Index of the first entry held (when empty: the index the next entry will get).
    pub fn first_index(&self) -> u64 {
        self.published.first_index.load(Ordering::Acquire)
    }

    /// Position of the first entry held.
    pub fn first_pos(&self) -> u64 {
        self.published.first_pos.load(Ordering::Acquire)
    }

    /// Term of the entry before [`CommitLog::first_index`].
    pub fn prev_term(&self) -> u64 {
        self.published.prev_term.load(Ordering::Acquire)
    }

    /// Index of the last entry (`first_index - 1` when empty).
    pub fn last_index(&self) -> u64 {
        self.published.last_index.load(Ordering::Acquire)
    }

    pub fn last_term(&self) -> u64 {
        self.published.last_term.load(Ordering::Acquire)
    }

    /// Maps the data pages in `[from, to)` that already have a segment (see
    /// [`crate::prefault`]). Returns where it stopped: `to`, or the end of the last segment.
    pub fn prefault(&self, from: u64, to: u64) -> std::io::Result<u64> {
        let mut pos = from;
        // Bounded: each round moves to the next segment or stops.
        while pos < to {
            let Some(segment) = self.data.find(pos) else {
                break;
            };
            let end = to.min(segment.end());
            // Only beyond the log's end: a segment reopened after a restart holds entries
            // this process never wrote, which nothing claimed from the warmer.
            let warm_from = pos.max(self.write_pos());
            if self.config.warm_ahead && warm_from < end {
                segment
                    .warm(warm_from - segment.start(), end - warm_from)
                    .map_err(std::io::Error::other)?;
            }
            segment.prefault(
                pos - segment.start(),
                end - pos,
                !self.config.write_through_file,
            )?;
            pos = end;
        }
        Ok(pos)
    }

    /// End of the last entry: the next entry goes here (or at the next segment).
    pub fn write_pos(&self) -> u64 {
        self.published.write_pos.load(Ordering::Acquire)
    }

    pub fn stable_pos(&self) -> u64 {
        self.published.stable_pos.load(Ordering::Acquire)
    }

    /// Where the last checkpoint says everything before is durable and verified: recovery
    /// scans from here. Damage below it is found only by reads (and repaired from a peer);
    /// above it, recovery takes a bad frame for the torn end of the log.
    pub fn checkpointed_pos(&self) -> u64 {
        self.checkpoint_lock.lock().safe_pos
    }

    pub fn segment_len(&self) -> u64 {
        self.config.segment_len
    }

    /// Number of fsyncs of data files so far (group commit makes this grow slower than
    /// the number of appends).
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Bytes of disk the data segments take.
    pub fn disk_bytes(&self) -> u64 {
        self.data.len() as u64 * self.config.segment_len
    }

    fn check_writable(&self) -> Result<()> {
        if self.has_failed.load(Ordering::Acquire) {
            let reason = self.failed.lock().clone().unwrap_or_default();
            return Err(StoreError::ReadOnly(reason));
        }
        Ok(())
    }

    /// Why the log turned read-only, if it did.
    pub fn failure(&self) -> Option<String> {
        if self.has_failed.load(Ordering::Acquire) {
            return self.failed.lock().clone();
        }
        None
    }

    /// Turns the log read-only (an unrecoverable inconsistency above it).
    pub(crate) fn fail(&self, reason: String) {
        tracing::error!(dir = %self.config.dir.display(), %reason, "CommitLog is read-only from now on");
        *self.failed.lock() = Some(reason);
        self.has_failed.store(true, Ordering::Release);
    }

    /// Data segments, oldest first (retention looks at their age).
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.data.snapshot()
    }
}
