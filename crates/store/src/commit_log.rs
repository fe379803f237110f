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
}

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
            failed: Mutex::new(None),
            has_failed: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            config,
        };
        let recovery = log.recover(cp, validate)?;
        let durable = Durable {
            pos: log.write_pos(),
            index: log.last_index(),
        };
        log.durable.send_replace(durable);
        log.write_checkpoint_at(durable.pos, durable.index + 1)?;
        Ok((log, recovery))
    }

    fn recover(&self, cp: LogCheckpoint, validate: BodyValidator<'_>) -> Result<LogRecovery> {
        let first_seg_start = self.data.first().map(|s| s.start());
        let (mut pos, mut next_index) = if cp.safe_pos >= cp.first_pos
            && cp.safe_next_index >= cp.first_index
            && self.data.find(cp.safe_pos).is_some()
        {
            (cp.safe_pos, cp.safe_next_index)
        } else {
            (cp.first_pos, cp.first_index)
        };
        if let Some(start) = first_seg_start {
            if pos < start {
                // The checkpoint points into files that are gone: the earliest file we have
                // is where the log starts now.
                tracing::warn!(dir = %self.config.dir.display(), pos, start, "log start moved to the first segment file");
                pos = start;
                next_index = 0;
            }
        }
        let scanned_from = pos;
        let mut frames = 0u64;
        let mut last_term = cp.prev_term;
        let mut locations = Vec::new();
        let mut body = Vec::new();
        let mut first = next_index == 0;
        // The write position is the end of the last valid frame, never past trailing
        // padding: a new leader may place a small entry in that padding's room.
        let mut end_pos = pos;
        let cut: Option<String>;
        // Bounded: every round advances `pos` by a frame or to the next segment, and the
        // data files are finite.
        loop {
            let Some(segment) = self.data.find(pos) else {
                cut = None;
                break;
            };
            let rel = pos - segment.start();
            let room = segment.len() - rel;
            if room < HEADER_LEN {
                pos = segment.end();
                continue;
            }
            let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
            // SAFETY: recovery owns the log exclusively; nothing else reads or writes.
            unsafe { segment.copy_unstable(rel, &mut header_bytes)? };
            let header = match EntryHeader::decode(&header_bytes) {
                Ok(h) => h,
                Err(FrameError::Blank { len }) if u64::from(len) == room => {
                    pos = segment.end();
                    continue;
                }
                Err(_) if header_bytes.iter().all(|&b| b == 0) => {
                    // Never written: the clean end of the log.
                    cut = None;
                    break;
                }
                Err(e) => {
                    cut = Some(format!("frame at {pos}: {e}"));
                    break;
                }
            };
            if header.pos != pos {
                cut = Some(format!("frame at {pos} claims position {}", header.pos));
                break;
            }
            if header.index == 0 || header.index > MAX_POSITION {
                cut = Some(format!(
                    "frame at {pos} has an implausible index {}",
                    header.index
                ));
                break;
            }
            if !first && header.index != next_index {
                cut = Some(format!(
                    "frame at {pos} has index {} but {next_index} was expected",
                    header.index
                ));
                break;
            }
            if header.size() as u64 > room {
                cut = Some(format!(
                    "frame at {pos} of {} bytes overruns its segment",
                    header.size()
                ));
                break;
            }
            body.resize(header.body_len as usize, 0);
            // SAFETY: as above.
            unsafe { segment.copy_unstable(rel + HEADER_LEN, &mut body)? };
            if crc32c::crc32c(&body) != header.body_crc {
                cut = Some(format!("frame at {pos}: body checksum mismatch"));
                break;
            }
            if header.kind == EntryKind::Normal {
                if let Err(reason) = validate(&header, &body) {
                    cut = Some(format!("frame at {pos}: {reason}"));
                    break;
                }
            }
            if first {
                // The log start was re-derived from the files: adopt this frame's index.
                self.published
                    .first_index
                    .store(header.index, Ordering::Release);
                self.published.first_pos.store(pos, Ordering::Release);
                first = false;
            }
            locations.push(EntryLocation {
                index: header.index,
                term: header.term,
                pos,
                size: header.size() as u32,
            });
            if locations.len() >= 4096 {
                self.index.write(&locations)?;
                locations.clear();
            }
            frames += 1;
            last_term = header.term;
            next_index = header.index + 1;
            pos += header.size() as u64;
            end_pos = pos;
        }
        let pos = end_pos;
        self.index.write(&locations)?;
        if first {
            // Nothing valid at all after a moved start: the log is empty there.
            self.published.first_pos.store(pos, Ordering::Release);
            if next_index == 0 {
                next_index = cp.first_index.max(1);
            }
            self.published
                .first_index
                .store(next_index, Ordering::Release);
        }
        if frames == 0 {
            // Keep the term of the entry before the scan start (from its index slot).
            if next_index > self.first_index() {
                // SAFETY: exclusive access during recovery.
                if let Some(prev) = unsafe { self.index.read(next_index - 1) } {
                    last_term = prev.term;
                }
            }
        }
        let last_index = next_index - 1;
        if let Some(reason) = &cut {
            tracing::warn!(dir = %self.config.dir.display(), pos, %reason, "cutting the CommitLog tail");
        }
        // Erase everything after the end so no stale frame can ever chain onto a later one.
        if let Some(segment) = self.data.find(pos) {
            segment.zero(pos - segment.start(), segment.len())?;
            segment.flush()?;
        }
        self.data
            .remove_from(self.data.segment_start(pos) + self.config.segment_len)?;
        // The slots of entries past the end are stale too; the scan cannot know how many
        // there were, so clear up to the end of that index file.
        let slots_per_file = self.config.index_slots_per_file;
        self.index.clear_after(
            last_index,
            (last_index / slots_per_file + 1) * slots_per_file,
        )?;
        self.index.flush()?;
        self.published
            .last_index
            .store(last_index, Ordering::Release);
        self.published.last_term.store(last_term, Ordering::Release);
        self.published.write_pos.store(pos, Ordering::Release);
        self.published
            .stable_pos
            .store(self.first_pos(), Ordering::Release);
        Ok(LogRecovery {
            scanned_from,
            frames_verified: frames,
            end_pos: pos,
            last_index,
            cut,
        })
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

    /// End of the last entry: the next entry goes here (or at the next segment).
    pub fn write_pos(&self) -> u64 {
        self.published.write_pos.load(Ordering::Acquire)
    }

    pub fn stable_pos(&self) -> u64 {
        self.published.stable_pos.load(Ordering::Acquire)
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

    /// Starts an append batch; holds the writer lock until committed or dropped.
    pub fn begin_append(&self) -> Result<AppendBatch<'_>> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        writer.buf.clear();
        writer.chunks.clear();
        writer.locations.clear();
        let next_index = self.last_index() + 1;
        let write_pos = self.write_pos();
        let last_term = self.last_term();
        Ok(AppendBatch {
            log: self,
            writer,
            next_index,
            write_pos,
            last_term,
            first_index: next_index,
        })
    }

    /// Declares every byte below `pos` immutable: it can be shared without copying and is
    /// never truncated. Never moves backwards; clamped to the write position.
    pub fn mark_stable(&self, pos: u64) {
        let pos = pos.min(self.write_pos());
        let old = self.published.stable_pos.fetch_max(pos, Ordering::AcqRel);
        if pos <= old {
            return;
        }
        let mut at = self.data.segment_start(old);
        // Bounded by the number of segments between the old and new stable position.
        while at < pos {
            if let Some(segment) = self.data.find(at) {
                segment.mark_stable(pos - segment.start());
            }
            at += self.config.segment_len;
        }
    }

    /// Where entry `index` is, if the log holds it.
    pub fn location(&self, index: u64) -> Option<EntryLocation> {
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        let _guard = self.truncation.read();
        if index > self.last_index() {
            return None;
        }
        // SAFETY: the truncation lock keeps truncation away, and published slots are not
        // rewritten otherwise.
        unsafe { self.index.read(index) }
    }

    /// Term of entry `index`; the term before the first entry for `first_index - 1`.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index.checked_add(1) == Some(self.first_index()) {
            return Some(self.prev_term());
        }
        self.location(index).map(|loc| loc.term)
    }

    /// Reads entry `index`, verifying both checksums. Bodies of stable entries share the
    /// mapping; others are copied.
    pub fn read_entry(&self, index: u64) -> Result<Option<Entry>> {
        let Some(loc) = self.location(index) else {
            return Ok(None);
        };
        let Some(frame) = self.read_bytes(loc.pos, loc.size as usize)? else {
            return Ok(None);
        };
        let entry = Entry::decode(&frame).map_err(|e| {
            StoreError::corrupt(
                &self.config.dir,
                format!("entry {index} at {}: {e}", loc.pos),
            )
        })?;
        if entry.index != index || entry.pos != loc.pos {
            return Err(StoreError::corrupt(
                &self.config.dir,
                format!(
                    "entry-index slot {index} points at a frame of index {} at {}",
                    entry.index, entry.pos
                ),
            ));
        }
        Ok(Some(entry))
    }

    /// Entries from `from_index` on, at most `max_count` of them and, after the first, at
    /// most `max_bytes` of frames (raft: what a leader sends a follower in one append).
    pub fn read_entries(
        &self,
        from_index: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut index = from_index.max(self.first_index());
        // Bounded by `max_count`.
        while out.len() < max_count && index <= self.last_index() {
            let Some(entry) = self.read_entry(index)? else {
                break;
            };
            if !out.is_empty() && bytes + entry.size() > max_bytes {
                break;
            }
            bytes += entry.size();
            out.push(entry);
            index += 1;
        }
        Ok(out)
    }

    /// Framed entries exactly as stored (header and body, both checksums verified), from
    /// `from_index` on: at most `max_count` and, after the first, at most `max_bytes`.
    /// Stable frames share the mapping; others are copied. Stops early at a truncation.
    pub fn read_frames(
        &self,
        from_index: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut index = from_index.max(self.first_index());
        // Bounded by `max_count`.
        while out.len() < max_count && index <= self.last_index() {
            let Some(loc) = self.location(index) else {
                break;
            };
            let size = loc.size as usize;
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            let Some(frame) = self.read_bytes(loc.pos, size)? else {
                break;
            };
            let entry = Entry::decode(&frame).map_err(|e| {
                StoreError::corrupt(
                    &self.config.dir,
                    format!("entry {index} at {}: {e}", loc.pos),
                )
            })?;
            if entry.index != index || entry.pos != loc.pos || entry.size() != size {
                return Err(StoreError::corrupt(
                    &self.config.dir,
                    format!(
                        "entry-index slot {index} points at a frame of index {} at {}",
                        entry.index, entry.pos
                    ),
                ));
            }
            bytes += size;
            out.push(frame);
            index += 1;
        }
        Ok(out)
    }

    /// Bytes `[pos, pos + len)` of one segment, below the write position.
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Option<Bytes>> {
        let Some(segment) = self.data.find(pos) else {
            return Ok(None);
        };
        let rel = pos - segment.start();
        if let Some(bytes) = segment.read_stable(rel, len) {
            return Ok(Some(bytes));
        }
        let _guard = self.truncation.read();
        if pos + len as u64 > self.write_pos() {
            return Ok(None);
        }
        let mut copy = vec![0u8; len];
        // SAFETY: below the write position and under the truncation lock, so no writer
        // touches these bytes.
        unsafe { segment.copy_unstable(rel, &mut copy)? };
        Ok(Some(Bytes::from(copy)))
    }

    /// The body of the entry whose body starts at `body_pos` (a message's physical
    /// offset), if a valid frame header sits right before it and the whole entry is stable.
    /// The body checksum is not verified here (recovery did); the header's is.
    pub fn read_body_at(&self, body_pos: u64) -> Option<(EntryHeader, Bytes)> {
        let pos = body_pos.checked_sub(HEADER_LEN)?;
        if pos < self.first_pos() {
            return None;
        }
        let segment = self.data.find(pos)?;
        let rel = pos - segment.start();
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        if !segment.copy_stable(rel, &mut header_bytes) {
            return None;
        }
        let header = EntryHeader::decode(&header_bytes).ok()?;
        if header.pos != pos {
            return None;
        }
        let body = segment.read_stable(rel + HEADER_LEN, header.body_len as usize)?;
        debug_assert_eq!(body.len(), header.body_len as usize);
        Some((header, body))
    }

    /// Reads whatever is at `pos` among stable bytes (for dispatching committed entries in
    /// order). Checks the header and the body checksum.
    pub fn frame_at(&self, pos: u64) -> FrameAt {
        let Some(segment) = self.data.find(pos) else {
            return FrameAt::End;
        };
        let rel = pos - segment.start();
        let room = segment.len() - rel;
        if pos >= self.stable_pos() {
            return FrameAt::End;
        }
        if room < HEADER_LEN {
            return FrameAt::Skip {
                next_pos: segment.end(),
            };
        }
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        if !segment.copy_stable(rel, &mut header_bytes) {
            return FrameAt::End;
        }
        match EntryHeader::decode(&header_bytes) {
            Ok(header) if header.pos == pos => {
                match segment.read_stable(rel + HEADER_LEN, header.body_len as usize) {
                    Some(body) if crc32c::crc32c(&body) == header.body_crc => {
                        FrameAt::Entry { header, body }
                    }
                    _ => FrameAt::End,
                }
            }
            Err(FrameError::Blank { .. }) => FrameAt::Skip {
                next_pos: segment.end(),
            },
            _ => FrameAt::End,
        }
    }

    /// Removes every entry after `index` (raft: a follower dropping a conflicting suffix).
    /// Refuses to remove stable (committed) bytes. The cut is durable when this returns.
    pub fn truncate_after(&self, index: u64) -> Result<()> {
        self.check_writable()?;
        let _writer = self.writer.lock();
        let _guard = self.truncation.write();
        let old_last = self.last_index();
        if index >= old_last {
            return Ok(());
        }
        let first_index = self.first_index();
        if index + 1 < first_index {
            return Err(StoreError::LogMismatch(format!(
                "cannot truncate after {index}: the log starts at {first_index}"
            )));
        }
        let (new_end, new_term) = if index + 1 == first_index {
            (self.first_pos(), self.prev_term())
        } else {
            // SAFETY: the truncation lock is held exclusively.
            let loc = unsafe { self.index.read(index) }.ok_or_else(|| {
                StoreError::corrupt(&self.config.dir, format!("no entry-index slot for {index}"))
            })?;
            (loc.end(), loc.term)
        };
        if new_end < self.stable_pos() {
            return Err(StoreError::LogMismatch(format!(
                "cannot truncate after {index}: position {new_end} is below the stable position {}",
                self.stable_pos()
            )));
        }
        let old_end = self.write_pos();
        // Only an uncommitted suffix goes: checked above, asserted as the invariant it is.
        debug_assert!(new_end >= self.stable_pos() && new_end <= old_end);
        // Lower the durable mark first, so a crash in between cannot resurrect the suffix.
        {
            let mut cp = self.checkpoint_lock.lock();
            if cp.safe_pos > new_end {
                cp.safe_pos = new_end;
                cp.safe_next_index = index + 1;
                checkpoint::write(&self.config.dir.join(CHECKPOINT_FILE), &*cp)?;
            }
        }
        self.published.write_pos.store(new_end, Ordering::Release);
        self.published.last_index.store(index, Ordering::Release);
        self.published.last_term.store(new_term, Ordering::Release);
        self.durable.send_modify(|d| {
            if d.pos > new_end {
                *d = Durable {
                    pos: new_end,
                    index,
                };
            }
        });
        let result = self.erase(new_end, old_end).and_then(|()| {
            self.index.clear_after(index, old_last)?;
            self.index.flush()?;
            Ok(())
        });
        if let Err(e) = &result {
            self.fail(format!("truncation failed: {e}"));
        }
        result
    }

    /// Zeroes `[from, to)` of the data and drops segments after `from`'s, durably.
    fn erase(&self, from: u64, to: u64) -> Result<()> {
        // The zeroing must really be on disk before returning; see `flush_lock`.
        let _flushing = self.flush_lock.lock();
        if let Some(segment) = self.data.find(from) {
            let seg_to = if to >= segment.end() {
                segment.len()
            } else {
                to - segment.start()
            };
            segment.zero(from - segment.start(), seg_to)?;
            segment.flush()?;
        }
        self.data
            .remove_from(self.data.segment_start(from) + self.config.segment_len)
    }

    /// Empties the log so that the next entry is `next_index` at `pos` (raft: a replica
    /// rebuilt from a leader whose log no longer holds what this one has). `prev_term` is
    /// the term of entry `next_index - 1`.
    pub fn reset(&self, next_index: u64, pos: u64, prev_term: u64) -> Result<()> {
        self.check_writable()?;
        if next_index == 0 || next_index > MAX_POSITION || pos > MAX_POSITION {
            return Err(StoreError::LogMismatch(format!(
                "cannot reset the log to index {next_index} at position {pos}"
            )));
        }
        let _writer = self.writer.lock();
        let _guard = self.truncation.write();
        if self.stable_pos() > self.first_pos() && next_index <= self.last_index() {
            tracing::warn!(dir = %self.config.dir.display(), next_index, pos, "resetting a log that holds stable entries");
        }
        let cp = LogCheckpoint::empty_at(next_index, pos, prev_term);
        {
            let mut current = self.checkpoint_lock.lock();
            checkpoint::write(&self.config.dir.join(CHECKPOINT_FILE), &cp)?;
            *current = cp;
        }
        self.data.clear()?;
        self.index.clear()?;
        self.published
            .first_index
            .store(next_index, Ordering::Release);
        self.published.first_pos.store(pos, Ordering::Release);
        self.published.prev_term.store(prev_term, Ordering::Release);
        self.published
            .last_index
            .store(next_index - 1, Ordering::Release);
        self.published.last_term.store(prev_term, Ordering::Release);
        self.published.write_pos.store(pos, Ordering::Release);
        self.published.stable_pos.store(pos, Ordering::Release);
        self.durable.send_replace(Durable {
            pos,
            index: next_index - 1,
        });
        Ok(())
    }

    /// Fsyncs data written so far and publishes the new durable position. Returns it.
    pub fn flush(&self) -> Result<Durable> {
        let _flushing = self.flush_lock.lock();
        let target = Durable {
            pos: self.write_pos(),
            index: self.last_index(),
        };
        if self.durable.borrow().pos >= target.pos && self.durable.borrow().index == target.index {
            return Ok(target);
        }
        for segment in self.data.snapshot() {
            if segment.is_dirty() {
                if let Err(e) = segment.flush() {
                    self.fail(format!("fsync failed: {e}"));
                    return Err(e);
                }
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.durable.send_modify(|d| {
            // A truncation may have run meanwhile; never claim more than the log holds.
            let pos = target.pos.min(self.write_pos());
            if pos > d.pos || (pos == d.pos && target.index != d.index) {
                *d = Durable {
                    pos,
                    index: target.index.min(self.last_index()),
                };
            }
        });
        Ok(*self.durable.borrow())
    }

    /// Flushes data and entry index and records the result as the recovery safe point.
    pub fn flush_and_checkpoint(&self) -> Result<Durable> {
        let durable = self.flush()?;
        self.index.flush()?;
        self.write_checkpoint_at(durable.pos, durable.index + 1)?;
        Ok(durable)
    }

    fn write_checkpoint_at(&self, safe_pos: u64, safe_next_index: u64) -> Result<()> {
        let mut cp = self.checkpoint_lock.lock();
        let next = LogCheckpoint {
            first_index: self.first_index(),
            first_pos: self.first_pos(),
            prev_term: self.prev_term(),
            safe_pos: safe_pos.min(self.write_pos()),
            safe_next_index: safe_next_index.min(self.last_index() + 1),
        };
        if next != *cp {
            checkpoint::write(&self.config.dir.join(CHECKPOINT_FILE), &next)?;
            *cp = next;
        }
        Ok(())
    }

    /// What is known durable.
    pub fn durable(&self) -> Durable {
        *self.durable.borrow()
    }

    /// A watch of the durable position (raft: "persisted up to index N").
    pub fn subscribe_durable(&self) -> watch::Receiver<Durable> {
        self.durable.subscribe()
    }

    /// Data segments, oldest first (retention looks at their age).
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.data.snapshot()
    }

    /// Removes the oldest segment if it lies wholly below `limit_pos` and is not the one
    /// being written. Returns the new first position if a segment was removed.
    pub fn remove_first_segment_below(&self, limit_pos: u64) -> Result<Option<u64>> {
        let Some(first) = self.data.first() else {
            return Ok(None);
        };
        let write_pos = self.write_pos();
        if first.end() > limit_pos || first.end() > write_pos || self.data.len() < 2 {
            return Ok(None);
        }
        let new_first_pos = first.end();
        // The new first entry starts at the next segment's start (entries never straddle),
        // unless it is padding-only, which cannot happen for a non-last segment.
        let (new_first_index, prev_term) = match self.frame_at(new_first_pos) {
            FrameAt::Entry { header, .. } => {
                let prev = self.term_at(header.index.saturating_sub(1)).unwrap_or(0);
                (header.index, prev)
            }
            _ => return Ok(None),
        };
        {
            let mut cp = self.checkpoint_lock.lock();
            let mut next = *cp;
            next.first_index = new_first_index;
            next.first_pos = new_first_pos;
            next.prev_term = prev_term;
            if next.safe_pos < new_first_pos {
                next.safe_pos = new_first_pos;
                next.safe_next_index = new_first_index;
            }
            checkpoint::write(&self.config.dir.join(CHECKPOINT_FILE), &next)?;
            *cp = next;
        }
        self.published.prev_term.store(prev_term, Ordering::Release);
        self.published
            .first_index
            .store(new_first_index, Ordering::Release);
        self.published
            .first_pos
            .store(new_first_pos, Ordering::Release);
        self.data.remove_first_if(|s| s.start() == first.start())?;
        self.index.remove_before(new_first_index)?;
        Ok(Some(new_first_pos))
    }
}

/// An open append batch. Entries are staged in memory and written, indexed and published
/// together by [`AppendBatch::commit`]; dropping the batch discards them.
pub struct AppendBatch<'a> {
    log: &'a CommitLog,
    writer: MutexGuard<'a, Writer>,
    next_index: u64,
    write_pos: u64,
    last_term: u64,
    first_index: u64,
}

impl AppendBatch<'_> {
    /// Index the next entry will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Term of the last entry staged or held.
    pub fn last_term(&self) -> u64 {
        self.last_term
    }

    /// Bytes staged so far.
    pub fn staged_len(&self) -> usize {
        self.writer.buf.len()
    }

    /// Where a frame with a body of `body_len` bytes would go next.
    pub fn placement(&self, body_len: usize) -> Placement {
        let frame_len = HEADER_LEN + body_len as u64;
        let seg_len = self.log.config.segment_len;
        let seg_end = self.write_pos - self.write_pos % seg_len + seg_len;
        let pos = if self.write_pos + frame_len <= seg_end {
            self.write_pos
        } else {
            seg_end
        };
        Placement {
            index: self.next_index,
            pos,
        }
    }

    /// Stages an entry whose body `fill` writes into the provided buffer, knowing where the
    /// entry will be (so it can patch positions into the body).
    pub fn append_with(
        &mut self,
        kind: EntryKind,
        term: u64,
        channel: u32,
        body_len: usize,
        fill: impl FnOnce(Placement, &mut [u8]) -> Result<()>,
    ) -> Result<Placement> {
        if body_len > self.log.config.max_body_len {
            return Err(StoreError::EntryTooLarge {
                size: body_len,
                max: self.log.config.max_body_len,
            });
        }
        let frame_len = ENTRY_HEADER_LEN + body_len;
        if self.writer.buf.len() + frame_len + BLANK_MIN_LEN > self.log.config.max_batch_bytes {
            return Err(StoreError::BatchTooLarge {
                count: self.writer.locations.len() + 1,
                bytes: self.writer.buf.len() + frame_len,
                max_count: usize::MAX,
                max_bytes: self.log.config.max_batch_bytes,
            });
        }
        if term < self.last_term {
            return Err(StoreError::LogMismatch(format!(
                "term {term} is older than the last term {}",
                self.last_term
            )));
        }
        let placement = self.placement(body_len);
        // Entries go one after another: the next index, never before the write position,
        // and within one segment.
        debug_assert_eq!(placement.index, self.next_index);
        debug_assert!(placement.pos >= self.write_pos);
        debug_assert!(
            placement.pos % self.log.config.segment_len + frame_len as u64
                <= self.log.config.segment_len
        );
        let seg_len = self.log.config.segment_len;
        let writer = &mut *self.writer;
        if placement.pos != self.write_pos {
            // Pad the rest of the segment; the bytes after the marker are already zero.
            let room = (placement.pos - self.write_pos) as usize;
            if room >= BLANK_MIN_LEN {
                let at = writer.buf.len();
                writer.buf.resize(at + BLANK_MIN_LEN, 0);
                let mut marker = [0u8; BLANK_MIN_LEN];
                encode_blank(&mut marker);
                // The marker's length field must say how far the padding reaches.
                marker[4..8].copy_from_slice(&(room as u32).to_be_bytes());
                writer.buf[at..].copy_from_slice(&marker);
                push_chunk(
                    &mut writer.chunks,
                    seg_len,
                    self.write_pos,
                    at,
                    BLANK_MIN_LEN,
                );
            }
        }
        let at = writer.buf.len();
        writer.buf.resize(at + frame_len, 0);
        let body_start = at + ENTRY_HEADER_LEN;
        let filled = fill(
            placement,
            &mut writer.buf[body_start..body_start + body_len],
        );
        if let Err(e) = filled {
            writer.buf.truncate(at);
            if placement.pos != self.write_pos {
                // Undo the padding staged for this entry.
                if let Some((pos, _, len)) = writer.chunks.last().copied() {
                    if pos == self.write_pos && len == BLANK_MIN_LEN {
                        writer.chunks.pop();
                        writer.buf.truncate(writer.buf.len() - BLANK_MIN_LEN);
                    }
                }
            }
            return Err(e);
        }
        let body = &writer.buf[body_start..body_start + body_len];
        let header = EntryHeader {
            kind,
            index: placement.index,
            term,
            pos: placement.pos,
            channel,
            body_crc: crc32c::crc32c(body),
            body_len: body_len as u32,
        };
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        header.encode_into(&mut header_bytes);
        writer.buf[at..body_start].copy_from_slice(&header_bytes);
        push_chunk(&mut writer.chunks, seg_len, placement.pos, at, frame_len);
        writer.locations.push(EntryLocation {
            index: placement.index,
            term,
            pos: placement.pos,
            size: frame_len as u32,
        });
        self.next_index += 1;
        self.write_pos = placement.pos + frame_len as u64;
        self.last_term = term;
        Ok(placement)
    }

    /// Stages an entry made elsewhere (raft: a follower appending what the leader sent).
    /// Its index and position must be exactly where this log would put it.
    pub fn append_entry(&mut self, entry: &Entry) -> Result<()> {
        let expected = self.placement(entry.body.len());
        if entry.index != expected.index || entry.pos != expected.pos {
            return Err(StoreError::LogMismatch(format!(
                "entry {} at {} does not follow this log (expected {} at {})",
                entry.index, entry.pos, expected.index, expected.pos
            )));
        }
        self.append_with(
            entry.kind,
            entry.term,
            entry.channel,
            entry.body.len(),
            |_, out| {
                out.copy_from_slice(&entry.body);
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Stages a frame exactly as given, without decoding or re-checksumming its body (raft:
    /// an entry the leader just framed, or one a follower received and verified). `header`
    /// is the frame's decoded header; it must put the entry exactly where this log places
    /// the next one.
    pub fn append_frame(&mut self, header: &EntryHeader, frame: &[u8]) -> Result<Placement> {
        let body_len = header.body_len as usize;
        if frame.len() != header.size() {
            return Err(StoreError::LogMismatch(format!(
                "frame of {} bytes holds an entry of {}",
                frame.len(),
                header.size()
            )));
        }
        if body_len > self.log.config.max_body_len {
            return Err(StoreError::EntryTooLarge {
                size: body_len,
                max: self.log.config.max_body_len,
            });
        }
        if self.writer.buf.len() + frame.len() + BLANK_MIN_LEN > self.log.config.max_batch_bytes {
            return Err(StoreError::BatchTooLarge {
                count: self.writer.locations.len() + 1,
                bytes: self.writer.buf.len() + frame.len(),
                max_count: usize::MAX,
                max_bytes: self.log.config.max_batch_bytes,
            });
        }
        let placement = self.placement(body_len);
        if header.index != placement.index || header.pos != placement.pos {
            return Err(StoreError::LogMismatch(format!(
                "entry {} at {} does not follow this log (expected {} at {})",
                header.index, header.pos, placement.index, placement.pos
            )));
        }
        if header.term < self.last_term {
            return Err(StoreError::LogMismatch(format!(
                "term {} is older than the last term {}",
                header.term, self.last_term
            )));
        }
        let seg_len = self.log.config.segment_len;
        let writer = &mut *self.writer;
        if placement.pos != self.write_pos {
            stage_padding(writer, seg_len, self.write_pos, placement.pos);
        }
        let at = writer.buf.len();
        writer.buf.extend_from_slice(frame);
        push_chunk(&mut writer.chunks, seg_len, placement.pos, at, frame.len());
        writer.locations.push(EntryLocation {
            index: placement.index,
            term: header.term,
            pos: placement.pos,
            size: frame.len() as u32,
        });
        self.next_index += 1;
        self.write_pos = placement.pos + frame.len() as u64;
        self.last_term = header.term;
        Ok(placement)
    }

    /// Writes, indexes and publishes the staged entries.
    pub fn commit(mut self) -> Result<Appended> {
        let log = self.log;
        let writer = &mut *self.writer;
        let appended = Appended {
            first_index: self.first_index,
            last_index: self.next_index - 1,
            end_pos: self.write_pos,
        };
        if writer.chunks.is_empty() {
            return Ok(appended);
        }
        // The batch continues the published log exactly.
        debug_assert_eq!(appended.first_index, log.last_index() + 1);
        debug_assert!(appended.end_pos >= log.write_pos());
        debug_assert_eq!(
            writer.locations.len() as u64,
            appended.last_index + 1 - appended.first_index
        );
        // Create every file first: running out of space there leaves nothing half written,
        // so the log stays writable once space is freed.
        let mut targets = Vec::with_capacity(writer.chunks.len());
        for &(pos, _, _) in &writer.chunks {
            targets.push(log.data.find_or_create(pos)?);
        }
        let result = (|| -> Result<()> {
            for (segment, &(pos, at, len)) in targets.iter().zip(&writer.chunks) {
                segment.write(pos - segment.start(), &writer.buf[at..at + len])?;
            }
            log.index.write(&writer.locations)
        })();
        if let Err(e) = result {
            // Part of the batch may be on disk beyond the published end; refuse further
            // writes rather than risk those bytes chaining onto later entries.
            log.fail(format!("append failed: {e}"));
            return Err(e);
        }
        log.published
            .last_term
            .store(self.last_term, Ordering::Release);
        log.published
            .last_index
            .store(appended.last_index, Ordering::Release);
        log.published
            .write_pos
            .store(appended.end_pos, Ordering::Release);
        writer.buf.clear();
        if writer.buf.capacity() > 4 << 20 {
            writer.buf.shrink_to(1 << 20);
        }
        writer.chunks.clear();
        writer.locations.clear();
        Ok(appended)
    }
}

/// Stages the blank marker that pads a segment from `write_pos` to `next_pos` (the start of
/// the next segment); a room shorter than a marker stays zero.
fn stage_padding(writer: &mut Writer, seg_len: u64, write_pos: u64, next_pos: u64) {
    let room = (next_pos - write_pos) as usize;
    if room >= BLANK_MIN_LEN {
        let mut marker = [0u8; BLANK_MIN_LEN];
        encode_blank(&mut marker);
        // The marker's length field must say how far the padding reaches.
        marker[4..8].copy_from_slice(&(room as u32).to_be_bytes());
        let at = writer.buf.len();
        writer.buf.extend_from_slice(&marker);
        push_chunk(&mut writer.chunks, seg_len, write_pos, at, BLANK_MIN_LEN);
    }
}

/// Adds staged bytes to the write list, merging with the previous run unless that would
/// cross into another segment (a write never straddles segment files).
fn push_chunk(
    chunks: &mut Vec<(u64, usize, usize)>,
    seg_len: u64,
    pos: u64,
    at: usize,
    len: usize,
) {
    if let Some(last) = chunks.last_mut() {
        if pos % seg_len != 0 && last.0 + last.2 as u64 == pos && last.1 + last.2 == at {
            last.2 += len;
            return;
        }
    }
    chunks.push((pos, at, len));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, segment_len: u64) -> CommitLogConfig {
        CommitLogConfig {
            dir: dir.to_path_buf(),
            segment_len,
            index_slots_per_file: 8,
            max_body_len: 200,
            max_batch_bytes: 1 << 20,
        }
    }

    fn accept_all(_: &EntryHeader, _: &[u8]) -> std::result::Result<(), InvalidBody> {
        Ok(())
    }

    fn open(dir: &Path, segment_len: u64) -> (CommitLog, LogRecovery) {
        CommitLog::open(config(dir, segment_len), &accept_all).unwrap()
    }

    fn body(i: u64, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
    }

    fn append(log: &CommitLog, term: u64, bodies: &[Vec<u8>]) -> Appended {
        let mut batch = log.begin_append().unwrap();
        for b in bodies {
            batch
                .append_with(EntryKind::Normal, term, 0, b.len(), |_, out| {
                    out.copy_from_slice(b);
                    Ok(())
                })
                .unwrap();
        }
        batch.commit().unwrap()
    }

    #[test]
    fn appends_roll_with_padding_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (log, rec) = open(dir.path(), 512);
        assert_eq!(rec.last_index, 0);
        let bodies: Vec<_> = (1..=10).map(|i| body(i, 100)).collect();
        let appended = append(&log, 1, &bodies);
        assert_eq!((appended.first_index, appended.last_index), (1, 10));
        // 148-byte frames: three per 512-byte segment, then padding.
        let loc4 = log.location(4).unwrap();
        assert_eq!(loc4.pos, 512);
        assert_eq!(log.write_pos(), 3 * 512 + 148);
        for i in 1..=10u64 {
            let entry = log.read_entry(i).unwrap().unwrap();
            assert_eq!(entry.index, i);
            assert_eq!(entry.body.as_ref(), &bodies[i as usize - 1][..]);
        }
        assert!(log.read_entry(11).unwrap().is_none());
        assert!(
            log.read_body_at(loc4.pos + 48).is_none(),
            "unstable bytes are not shared"
        );
        log.mark_stable(log.write_pos());
        let (header, shared) = log.read_body_at(loc4.pos + 48).unwrap();
        assert_eq!(header.index, 4);
        assert_eq!(shared.as_ref(), &bodies[3][..]);

        // Reopen: everything recovered, the next entry continues the chain.
        log.flush_and_checkpoint().unwrap();
        drop(log);
        let (log, rec) = open(dir.path(), 512);
        assert_eq!(rec.cut, None);
        assert_eq!(log.last_index(), 10);
        assert_eq!(log.last_term(), 1);
        append(&log, 2, &[body(11, 10)]);
        assert_eq!(log.read_entry(11).unwrap().unwrap().term, 2);
    }

    #[test]
    fn follower_append_must_match_placement() {
        let dir = tempfile::tempdir().unwrap();
        let (leader, _) = open(&dir.path().join("a"), 512);
        let (follower, _) = open(&dir.path().join("b"), 512);
        append(
            &leader,
            1,
            &(1..=7)
                .map(|i| body(i, 100 + i as usize))
                .collect::<Vec<_>>(),
        );
        let mut batch = follower.begin_append().unwrap();
        for i in 1..=7 {
            batch
                .append_entry(&leader.read_entry(i).unwrap().unwrap())
                .unwrap();
        }
        batch.commit().unwrap();
        assert_eq!(follower.write_pos(), leader.write_pos());
        let mut wrong = leader.read_entry(7).unwrap().unwrap();
        wrong.index = 8;
        wrong.pos += 10;
        let mut batch = follower.begin_append().unwrap();
        assert!(matches!(
            batch.append_entry(&wrong),
            Err(StoreError::LogMismatch(_))
        ));
    }

    #[test]
    fn frames_are_written_as_given_and_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (leader, _) = open(&dir.path().join("a"), 512);
        let bodies: Vec<_> = (1..=7).map(|i| body(i, 100 + i as usize)).collect();
        append(&leader, 1, &bodies);
        let frames = leader.read_frames(1, 100, 1 << 20).unwrap();
        {
            let (follower, _) = open(&dir.path().join("b"), 512);
            let mut batch = follower.begin_append().unwrap();
            for frame in &frames {
                let header = EntryHeader::decode(frame).unwrap();
                batch.append_frame(&header, frame).unwrap();
            }
            batch.commit().unwrap();
            assert_eq!(
                follower.write_pos(),
                leader.write_pos(),
                "padding as placed"
            );
            assert_eq!(follower.read_frames(1, 100, 1 << 20).unwrap(), frames);
            follower.flush_and_checkpoint().unwrap();
        }
        let (follower, rec) = open(&dir.path().join("b"), 512);
        assert_eq!((rec.last_index, rec.cut), (7, None));
        assert_eq!(
            follower.read_entry(7).unwrap().unwrap().body.as_ref(),
            &bodies[6][..]
        );

        // A frame out of place, of the wrong size or of an older term is refused.
        let (other, _) = open(&dir.path().join("c"), 512);
        let mut batch = other.begin_append().unwrap();
        let second = EntryHeader::decode(&frames[1]).unwrap();
        assert!(batch.append_frame(&second, &frames[1]).is_err());
        let first = EntryHeader::decode(&frames[0]).unwrap();
        assert!(batch.append_frame(&first, &frames[0][..40]).is_err());
        batch.append_frame(&first, &frames[0]).unwrap();
        let older = EntryHeader { term: 0, ..second };
        assert!(batch.append_frame(&older, &frames[1]).is_err());
    }

    #[test]
    fn truncate_then_append_then_recover_keeps_only_new_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), 512);
        append(&log, 1, &(1..=6).map(|i| body(i, 100)).collect::<Vec<_>>());
        log.flush_and_checkpoint().unwrap();
        log.mark_stable(log.location(2).unwrap().end());
        assert!(
            log.truncate_after(1).is_err(),
            "stable entries cannot be removed"
        );
        log.truncate_after(3).unwrap();
        assert_eq!(log.last_index(), 3);
        assert!(log.read_entry(4).unwrap().is_none());
        // A shorter entry 4 from a new term; the old 5 and 6 must never come back.
        append(&log, 2, &[body(40, 20)]);
        drop(log);
        let (log, rec) = open(dir.path(), 512);
        assert_eq!(rec.last_index, 4);
        assert_eq!(log.read_entry(4).unwrap().unwrap().term, 2);
        assert_eq!(log.term_at(3), Some(1));
    }

    #[test]
    fn reset_starts_mid_segment_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), 512);
        append(&log, 1, &[body(1, 50)]);
        log.reset(100, 5 * 512 + 200, 7).unwrap();
        assert_eq!(log.last_index(), 99);
        assert_eq!(log.term_at(99), Some(7));
        let appended = append(&log, 8, &[body(100, 200), body(101, 200)]);
        assert_eq!(appended.first_index, 100);
        assert_eq!(log.location(100).unwrap().pos, 5 * 512 + 200);
        assert_eq!(
            log.location(101).unwrap().pos,
            6 * 512,
            "second entry rolls"
        );
        drop(log);
        let (log, rec) = open(dir.path(), 512);
        assert_eq!(rec.cut, None);
        assert_eq!((log.first_index(), log.last_index()), (100, 101));
        assert_eq!(log.term_at(99), Some(7));
    }

    #[test]
    fn durable_watch_tracks_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), 4096);
        let rx = log.subscribe_durable();
        append(&log, 1, &[body(1, 10), body(2, 10)]);
        assert_eq!(rx.borrow().index, 0);
        let before = log.fsync_count();
        let durable = log.flush().unwrap();
        assert_eq!(durable.index, 2);
        assert_eq!(rx.borrow().index, 2);
        assert_eq!(log.fsync_count(), before + 1);
        log.flush().unwrap();
        assert_eq!(log.fsync_count(), before + 1, "nothing new, no fsync");
    }

    #[test]
    fn oversized_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path(), 4096);
        let mut batch = log.begin_append().unwrap();
        let err = batch.append_with(EntryKind::Normal, 1, 0, 201, |_, _| Ok(()));
        assert!(matches!(err, Err(StoreError::EntryTooLarge { .. })));
        assert!(CommitLog::open(config(dir.path(), 100), &accept_all).is_err());
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Append { sizes: Vec<usize>, term_bump: u64 },
            Truncate { back: u64 },
            Reopen,
            Checkpoint,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (proptest::collection::vec(0usize..200, 1..6), 0u64..2)
                    .prop_map(|(sizes, term_bump)| Op::Append { sizes, term_bump }),
                1 => (0u64..5).prop_map(|back| Op::Truncate { back }),
                1 => Just(Op::Reopen),
                1 => Just(Op::Checkpoint),
            ]
        }

        fn check_matches(log: &CommitLog, model: &[(u64, Vec<u8>)]) {
            assert_eq!(log.last_index(), model.len() as u64);
            for (i, (term, body)) in model.iter().enumerate() {
                let entry = log.read_entry(i as u64 + 1).unwrap().unwrap();
                assert_eq!(entry.term, *term);
                assert_eq!(entry.body.as_ref(), &body[..]);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// Appends, truncations and restarts keep the log equal to a simple model; then
            /// one flipped byte after the safe point cuts exactly from its frame on.
            #[test]
            fn log_matches_model_and_corruption_cuts_a_suffix(
                ops in proptest::collection::vec(op(), 1..24),
                flip in any::<prop::sample::Index>(),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let (mut log, _) = open(dir.path(), 1024);
                let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
                let mut term = 1u64;
                for op in ops {
                    match op {
                        Op::Append { sizes, term_bump } => {
                            term += term_bump;
                            let bodies: Vec<Vec<u8>> = sizes
                                .iter()
                                .enumerate()
                                .map(|(k, &n)| body(model.len() as u64 + k as u64, n))
                                .collect();
                            append(&log, term, &bodies);
                            model.extend(bodies.into_iter().map(|b| (term, b)));
                        }
                        Op::Truncate { back } => {
                            let keep = (model.len() as u64).saturating_sub(back);
                            log.truncate_after(keep).unwrap();
                            model.truncate(keep as usize);
                        }
                        Op::Reopen => {
                            drop(log);
                            let (reopened, rec) = open(dir.path(), 1024);
                            prop_assert_eq!(rec.cut, None);
                            log = reopened;
                        }
                        Op::Checkpoint => {
                            log.flush_and_checkpoint().unwrap();
                        }
                    }
                    check_matches(&log, &model);
                }
                // Flip one byte somewhere in the frames after the safe point.
                let cp: LogCheckpoint = checkpoint::read(&dir.path().join(CHECKPOINT_FILE))
                    .unwrap_or(LogCheckpoint::empty_at(1, 0, 0));
                let end = log.write_pos();
                let safe = cp.safe_pos.min(end);
                if end > safe {
                    let at = safe + flip.index((end - safe) as usize) as u64;
                    let victim = (1..=model.len() as u64)
                        .map(|i| log.location(i).unwrap())
                        .find(|loc| loc.pos <= at && at < loc.end());
                    drop(log);
                    let path = dir.path().join("data").join(crate::segment::file_name(at - at % 1024));
                    let mut bytes = std::fs::read(&path).unwrap();
                    bytes[(at % 1024) as usize] ^= 0x01;
                    std::fs::write(&path, bytes).unwrap();
                    let (log, _) = open(dir.path(), 1024);
                    if let Some(victim) = victim {
                        // Everything before the damaged frame survives, nothing from it on.
                        prop_assert_eq!(log.last_index(), victim.index - 1);
                        check_matches(&log, &model[..victim.index as usize - 1]);
                    } else {
                        // Padding was hit: a prefix survives, at least up to the padding.
                        let kept = log.last_index() as usize;
                        let before = model
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| {
                                let loc = log.location(*i as u64 + 1);
                                loc.is_some_and(|l| l.end() <= at)
                            })
                            .count();
                        prop_assert!(kept >= before);
                        check_matches(&log, &model[..kept]);
                    }
                }
            }
        }
    }
}
