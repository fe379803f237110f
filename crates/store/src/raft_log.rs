//! The CommitLog as raft's log storage: [`RaftLog`] implements [`raft::LogStorage`] over a
//! shared [`CommitLog`], so the raft driver appends, truncates and resets the very files the
//! store dispatches from and serves reads out of.
//!
//! Placement uses [`raft::storage::segment_place`], the rule the CommitLog's own append
//! batches follow, so the position raft computes for an entry is where the file puts it.
//!
//! Durability, as the trait asks:
//! - `append` writes into the page cache (the mapped segment);
//! - `truncate_after` and `reset` are durable when they return (the CommitLog lowers its
//!   checkpoint and fsyncs the zeroed bytes first), so a crash never resurrects a cut tail;
//! - `sync` fsyncs the data segments. The entry index needs no fsync: recovery rebuilds
//!   every slot after the checkpoint's safe point from the data.
//!
//! The newest frames stay in memory as appended (`RecentFrames`): a leader replicates them
//! and both leader and followers apply them without reading the files back, copying or
//! checksumming them again. Older entries are read from the files, checksums verified.
//!
//! Retention runs on the driver's thread: the store's maintenance thread only *asks* for
//! segments below a position to go ([`RetentionGate`]); the driver removes them when it next
//! reports a commit, so the core never sees its first index move between two of its calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use raft::entry::EntryHeader;
use raft::storage::{segment_place, LogStorage, StorageError};

use crate::commit_log::CommitLog;
use crate::error::StoreError;

/// A request from the maintenance thread to remove old CommitLog segments, carried out on
/// the raft driver's thread.
#[derive(Debug, Default)]
pub struct RetentionGate {
    /// Segments lying wholly below this position may go (0: nothing requested).
    below_pos: AtomicU64,
    /// Segments removed so far, for reports and tests.
    removed: AtomicU64,
}

impl RetentionGate {
    /// Asks for every segment wholly below `pos` to be removed. Never moves backwards.
    pub fn request_below(&self, pos: u64) {
        self.below_pos.fetch_max(pos, Ordering::AcqRel);
    }

    /// Segments removed through this gate so far.
    pub fn removed_segments(&self) -> u64 {
        self.removed.load(Ordering::Acquire)
    }
}

/// Segments one commit notification removes at most, so a large request cannot stall the
/// driver for long.
const MAX_SEGMENTS_PER_COMMIT: usize = 4;

/// Bytes of the newest frames kept in memory by default: seconds of replication at full
/// speed, so followers that keep up and the apply stream never read the files.
pub const RECENT_FRAMES_MAX_BYTES: usize = 64 << 20;

/// The newest frames of the log, exactly as appended (checksums verified by raft before the
/// append), ending at the log's last entry. Truncation and reset cut it with the log.
#[derive(Debug)]
struct RecentFrames {
    /// Index of the first frame held.
    first_index: u64,
    frames: VecDeque<Bytes>,
    bytes: usize,
    max_bytes: usize,
}

impl RecentFrames {
    fn new(max_bytes: usize) -> RecentFrames {
        RecentFrames {
            first_index: 0,
            frames: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    fn end_index(&self) -> u64 {
        self.first_index + self.frames.len() as u64
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Adds frames that continue the log at `first_index`; forgets the oldest beyond the
    /// byte budget.
    fn push(&mut self, first_index: u64, frames: &[Bytes]) {
        if self.frames.is_empty() || self.end_index() != first_index {
            self.clear();
            self.first_index = first_index;
        }
        for frame in frames {
            self.bytes += frame.len();
            self.frames.push_back(frame.clone());
        }
        // Bounded by the number of frames held.
        while self.bytes > self.max_bytes {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.first_index += 1;
        }
    }

    /// Keeps the frames up to `index` only.
    fn truncate_after(&mut self, index: u64) {
        // Bounded by the number of frames held.
        while self.end_index() > index.saturating_add(1) {
            let Some(old) = self.frames.pop_back() else {
                break;
            };
            self.bytes -= old.len();
        }
    }

    fn get(&self, index: u64) -> Option<&Bytes> {
        let offset = index.checked_sub(self.first_index)?;
        self.frames.get(usize::try_from(offset).ok()?)
    }
}

/// The term field of a frame whose header was verified when it entered the log.
fn frame_term(frame: &Bytes) -> Option<u64> {
    let bytes: [u8; 8] = frame.get(16..24)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// [`raft::LogStorage`] over a shared [`CommitLog`].
pub struct RaftLog {
    log: Arc<CommitLog>,
    retention: Arc<RetentionGate>,
    /// The base term the leader did not know at the last reset (the CommitLog stores 0).
    base_term_unknown: bool,
    recent: RecentFrames,
}

impl std::fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLog").field("log", &self.log).finish()
    }
}

impl RaftLog {
    pub fn new(log: Arc<CommitLog>, retention: Arc<RetentionGate>) -> RaftLog {
        Self::with_recent_frames(log, retention, RECENT_FRAMES_MAX_BYTES)
    }

    /// A log that keeps up to `max_bytes` of its newest frames in memory.
    pub fn with_recent_frames(
        log: Arc<CommitLog>,
        retention: Arc<RetentionGate>,
        max_bytes: usize,
    ) -> RaftLog {
        RaftLog {
            log,
            retention,
            base_term_unknown: false,
            recent: RecentFrames::new(max_bytes),
        }
    }

    pub fn commit_log(&self) -> &Arc<CommitLog> {
        &self.log
    }

    /// Carries out a pending retention request, only ever below the stable (committed)
    /// position.
    fn run_retention(&self) {
        let requested = self.retention.below_pos.load(Ordering::Acquire);
        if requested == 0 {
            return;
        }
        let limit = requested.min(self.log.stable_pos());
        for _ in 0..MAX_SEGMENTS_PER_COMMIT {
            match self.log.remove_first_segment_below(limit) {
                Ok(Some(new_first)) => {
                    self.retention.removed.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(dir = %self.log.dir().display(), new_first, "retention removed a CommitLog segment");
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "retention could not remove a CommitLog segment");
                    break;
                }
            }
        }
    }
}

fn storage_error(e: StoreError) -> StorageError {
    match e {
        StoreError::EntryTooLarge { size, max } => StorageError::EntryTooLarge {
            framed_len: size as u64,
            segment_bytes: max as u64,
        },
        StoreError::LogMismatch(reason) => StorageError::NotContiguous(reason),
        StoreError::DamagedEntry { index, reason, .. } => {
            StorageError::DamagedEntry { index, reason }
        }
        StoreError::Io { path, source } => StorageError::Io(std::io::Error::new(
            source.kind(),
            format!("{}: {source}", path.display()),
        )),
        other => StorageError::Other(other.to_string()),
    }
}

impl LogStorage for RaftLog {
    fn first_index(&self) -> u64 {
        self.log.first_index()
    }

    fn last_index(&self) -> u64 {
        self.log.last_index()
    }

    fn term(&self, index: u64) -> Result<Option<u64>, StorageError> {
        let first = self.log.first_index();
        if index.checked_add(1) == Some(first) {
            if index == 0 {
                return Ok(Some(0));
            }
            return Ok((!self.base_term_unknown).then(|| self.log.prev_term()));
        }
        if index < first || index > self.log.last_index() {
            return Ok(None);
        }
        if let Some(term) = self.recent.get(index).and_then(frame_term) {
            return Ok(Some(term));
        }
        match self.log.location(index) {
            Some(loc) => Ok(Some(loc.term)),
            // A slot missing inside the held range means the index file lies.
            None => Err(StorageError::Other(format!(
                "entry {index} has no entry-index slot in {}",
                self.log.dir().display()
            ))),
        }
    }

    fn end_pos(&self) -> u64 {
        self.log.write_pos()
    }

    fn place(&self, end_pos: u64, framed_len: u64) -> Result<u64, StorageError> {
        segment_place(end_pos, framed_len, self.log.segment_len())
    }

    fn append(&mut self, frames: &[Bytes]) -> Result<(), StorageError> {
        let first_new = self.log.last_index() + 1;
        let max_batch = self.log.config().max_batch_bytes;
        let mut rest = frames;
        // Bounded: every round commits at least one frame.
        while !rest.is_empty() {
            let mut batch = self.log.begin_append().map_err(storage_error)?;
            let mut taken = 0;
            for frame in rest {
                // Leave room for padding; an oversized single frame is refused by the batch.
                if taken > 0 && batch.staged_len() + frame.len() + 64 > max_batch {
                    break;
                }
                // The caller verified the body checksum (raft frames entries itself or checks
                // what it receives); the header is decoded (and its checksum checked) again
                // because placement is read from it.
                let header = EntryHeader::decode(frame)?;
                batch.append_frame(&header, frame).map_err(storage_error)?;
                taken += 1;
            }
            batch.commit().map_err(storage_error)?;
            rest = &rest[taken..];
        }
        self.recent.push(first_new, frames);
        Ok(())
    }

    fn truncate_after(&mut self, index: u64) -> Result<(), StorageError> {
        let first = self.log.first_index();
        if index + 1 < first {
            return Err(StorageError::Unavailable {
                index,
                first,
                last: self.log.last_index(),
            });
        }
        // The CommitLog refuses to cut stable (committed) bytes: raft asking for it is a bug
        // that must stop the node rather than lose acknowledged messages.
        let result = self.log.truncate_after(index).map_err(storage_error);
        if result.is_ok() {
            self.recent.truncate_after(index);
        } else {
            self.recent.clear();
        }
        result
    }

    fn read(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let first = self.log.first_index();
        if from < first {
            return Err(StorageError::Unavailable {
                index: from,
                first,
                last: self.log.last_index(),
            });
        }
        if self.recent.get(from).is_some() {
            let last = self.log.last_index();
            let mut out = Vec::new();
            let mut bytes = 0usize;
            // Bounded by `max_entries` and the frames held.
            for index in from..=last {
                let Some(frame) = self.recent.get(index) else {
                    break;
                };
                if out.len() >= max_entries || (!out.is_empty() && bytes + frame.len() > max_bytes)
                {
                    break;
                }
                bytes += frame.len();
                out.push(frame.clone());
            }
            return Ok(out);
        }
        self.log
            .read_frames(from, max_entries, max_bytes)
            .map_err(storage_error)
    }

    fn reset(
        &mut self,
        next_index: u64,
        next_pos: u64,
        base_term: Option<u64>,
    ) -> Result<(), StorageError> {
        if base_term.is_none() && next_index > 1 {
            tracing::warn!(
                next_index,
                "log reset without the base term; treating it as unknown"
            );
        }
        self.recent.clear();
        self.log
            .reset(next_index, next_pos, base_term.unwrap_or(0))
            .map_err(storage_error)?;
        self.base_term_unknown = base_term.is_none() && next_index > 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.log.flush().map(|_| ()).map_err(storage_error)
    }

    fn repair(&mut self, index: u64, frame: Bytes) -> Result<bool, StorageError> {
        self.log.repair_entry(index, &frame).map_err(storage_error)
    }

    fn damage_reported(&mut self) -> Option<u64> {
        self.log.take_damage_report()
    }

    fn background_sync(&self) -> Option<raft::BackgroundSync> {
        // CommitLog::flush is thread-safe and covers every append made before it; a
        // truncation waits for a running flush and is durable by itself.
        let log = Arc::clone(&self.log);
        Some(Arc::new(move || {
            log.flush().map(|_| ()).map_err(storage_error)
        }))
    }

    fn committed(&mut self, index: u64) {
        let index = index.min(self.log.last_index());
        if let Some(loc) = self.log.location(index) {
            self.log.mark_stable(loc.end());
        }
        self.run_retention();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit_log::CommitLogConfig;
    use raft::entry::{Entry, EntryHeader, EntryKind};
    use raft::MemLog;

    fn accept(
        _: &EntryHeader,
        _: &[u8],
    ) -> std::result::Result<(), crate::commit_log::InvalidBody> {
        Ok(())
    }

    fn open(dir: &std::path::Path) -> RaftLog {
        open_with_recent_frames(dir, RECENT_FRAMES_MAX_BYTES)
    }

    fn open_with_recent_frames(dir: &std::path::Path, recent_frames_bytes: usize) -> RaftLog {
        let (log, _) = CommitLog::open(
            CommitLogConfig {
                dir: dir.to_path_buf(),
                segment_len: 512,
                index_slots_per_file: 16,
                max_body_len: 300,
                max_batch_bytes: 1024,
                write_through_file: true,
                warm_ahead: true,
            },
            &accept,
        )
        .unwrap();
        RaftLog::with_recent_frames(Arc::new(log), Arc::default(), recent_frames_bytes)
    }

    fn frame<S: LogStorage>(log: &S, index: u64, term: u64, len: usize) -> Bytes {
        let pos = log.place(log.end_pos(), (48 + len) as u64).unwrap();
        let entry = Entry {
            kind: EntryKind::Normal,
            index,
            term,
            pos,
            channel: 0,
            body: Bytes::from(vec![index as u8; len]),
        };
        let mut buf = bytes::BytesMut::new();
        entry.encode(&mut buf);
        buf.freeze()
    }

    /// The file log and raft's in-memory model place every entry at the same position and
    /// give the same frames back.
    #[test]
    fn agrees_with_the_in_memory_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = open(dir.path());
        let mut mem = MemLog::with_segments(512);
        let mut frames = Vec::new();
        for i in 1..=20u64 {
            let f = frame(&mem, i, 1 + i / 7, 30 + (i as usize * 37) % 250);
            mem.append(std::slice::from_ref(&f)).unwrap();
            frames.push(f);
        }
        // Several frames per call, more than one CommitLog batch holds.
        for chunk in frames.chunks(7) {
            file.append(chunk).unwrap();
        }
        assert_eq!(file.end_pos(), mem.end_pos());
        assert_eq!(file.last_index(), 20);
        let back = file.read(1, 100, 1 << 20).unwrap();
        assert_eq!(back, mem.read(1, 100, 1 << 20).unwrap());
        assert_eq!(file.read(5, 100, 1).unwrap().len(), 1);
        for i in 1..=20 {
            assert_eq!(file.term(i).unwrap(), mem.term(i).unwrap());
        }
        assert_eq!(file.term(0).unwrap(), Some(0));
        assert_eq!(file.term(21).unwrap(), None);
    }

    /// Flips one byte of `needle`'s first copy in any file under `dir`.
    fn rot(dir: &std::path::Path, needle: &[u8], at: usize) -> bool {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if rot(&path, needle, at) {
                    return true;
                }
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(found) = bytes.windows(needle.len()).position(|w| w == needle) {
                bytes[found + at] ^= 0x10;
                std::fs::write(&path, &bytes).unwrap();
                return true;
            }
        }
        false
    }

    /// Bit rot in an old entry: reads stop just before it and name it, a copy that is not
    /// that entry is refused, the intact copy is written back in place and outlives a
    /// restart.
    #[test]
    fn a_rotted_entry_is_named_and_repaired_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = open_with_recent_frames(dir.path(), 0);
        let mut frames = Vec::new();
        for i in 1..=10u64 {
            let f = frame(&file, i, 1, 40);
            file.append(std::slice::from_ref(&f)).unwrap();
            frames.push(f);
        }
        file.sync().unwrap();
        let rotten = &frames[4];
        assert!(rot(dir.path(), rotten, 60));
        assert_eq!(file.read(1, 100, 1 << 20).unwrap(), frames[..4].to_vec());
        match file.read(5, 100, 1 << 20) {
            Err(StorageError::DamagedEntry { index: 5, .. }) => {}
            other => panic!("read of a rotted entry: {other:?}"),
        }
        let mut impostor = Entry::decode(rotten).unwrap();
        impostor.body = Bytes::from(vec![0xAB; 40]);
        let mut buf = bytes::BytesMut::new();
        impostor.encode(&mut buf);
        assert!(!file.repair(5, buf.freeze()).unwrap());
        assert!(!file.repair(5, frames[3].clone()).unwrap(), "another entry");
        assert!(file.repair(5, rotten.clone()).unwrap());
        assert_eq!(file.read(1, 100, 1 << 20).unwrap(), frames);
        drop(file);
        let file = open_with_recent_frames(dir.path(), 0);
        assert_eq!(file.read(1, 100, 1 << 20).unwrap(), frames);
    }

    /// Whether frames come from memory or from the files (a cache smaller than the log),
    /// reads and terms agree with the in-memory model across truncations and a reset.
    #[test]
    fn recent_frames_and_files_agree() {
        for cache_bytes in [0, 700, 1 << 20] {
            let dir = tempfile::tempdir().unwrap();
            let mut file = open_with_recent_frames(dir.path(), cache_bytes);
            let mut mem = MemLog::with_segments(512);
            let check = |file: &RaftLog, mem: &MemLog| {
                let (first, last) = (mem.first_index(), mem.last_index());
                assert_eq!((file.first_index(), file.last_index()), (first, last));
                for from in first..=last {
                    assert_eq!(
                        file.read(from, 5, 400).unwrap(),
                        mem.read(from, 5, 400).unwrap(),
                        "cache {cache_bytes}, from {from}"
                    );
                    assert_eq!(file.term(from).unwrap(), mem.term(from).unwrap());
                }
                assert_eq!(file.end_pos(), mem.end_pos());
            };
            let push = |file: &mut RaftLog, mem: &mut MemLog, index: u64, term: u64| {
                let f = frame(mem, index, term, 20 + (index as usize * 53) % 200);
                mem.append(std::slice::from_ref(&f)).unwrap();
                file.append(&[f]).unwrap();
            };
            for i in 1..=12 {
                push(&mut file, &mut mem, i, 1);
            }
            check(&file, &mem);
            file.truncate_after(8).unwrap();
            mem.truncate_after(8).unwrap();
            check(&file, &mem);
            for i in 9..=14 {
                push(&mut file, &mut mem, i, 2);
            }
            check(&file, &mem);
            file.reset(40, 20 * 512, Some(2)).unwrap();
            mem.reset(40, 20 * 512, Some(2)).unwrap();
            for i in 40..=45 {
                push(&mut file, &mut mem, i, 3);
            }
            check(&file, &mem);
        }
    }

    #[test]
    fn corrupt_or_misplaced_frames_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = open(dir.path());
        let good = frame(&file, 1, 1, 10);
        // Bodies are verified by raft before an append; headers, which placement reads,
        // are checked again here.
        let mut bad = good.to_vec();
        bad[20] ^= 1;
        assert!(matches!(
            file.append(&[Bytes::from(bad)]),
            Err(StorageError::Corrupt(_))
        ));
        let gap = frame(&file, 2, 1, 10);
        assert!(file.append(&[gap]).is_err());
        file.append(&[good]).unwrap();
        assert_eq!(file.last_index(), 1);
    }

    #[test]
    fn committed_entries_cannot_be_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = open(dir.path());
        for i in 1..=5 {
            let f = frame(&file, i, 1, 20);
            file.append(&[f]).unwrap();
        }
        file.committed(3);
        assert!(file.truncate_after(2).is_err());
        file.truncate_after(3).unwrap();
        assert_eq!(file.last_index(), 3);
        assert!(file.read(0, 1, 1).is_err());
    }

    #[test]
    fn reset_survives_reopen_and_retention_waits_for_commit() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut file = open(dir.path());
            for i in 1..=3 {
                let f = frame(&file, i, 1, 20);
                file.append(&[f]).unwrap();
            }
            file.reset(50, 5 * 512, Some(4)).unwrap();
            assert_eq!((file.first_index(), file.last_index()), (50, 49));
            assert_eq!(file.term(49).unwrap(), Some(4));
            let f = frame(&file, 50, 5, 20);
            file.append(&[f]).unwrap();
        }
        let mut file = open(dir.path());
        assert_eq!((file.first_index(), file.last_index()), (50, 50));
        assert_eq!(file.term(49).unwrap(), Some(4));
        // Fill three segments, ask retention to remove below the third: nothing moves
        // until the entries are committed, then the first index follows.
        for i in 51..=60 {
            let f = frame(&file, i, 5, 200);
            file.append(&[f]).unwrap();
        }
        let gate = Arc::clone(&file.retention);
        gate.request_below(8 * 512);
        file.committed(50);
        assert_eq!(file.first_index(), 50, "uncommitted segments stay");
        file.committed(60);
        assert!(file.first_index() > 50);
        assert!(gate.removed_segments() > 0);
        assert!(file.term(file.first_index() - 1).unwrap().is_some());
        assert!(file.read(50, 1, 1).is_err());
    }
}
