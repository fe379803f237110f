//! One ConsumeQueue: the dense, per topic-queue list of where each message is in the
//! CommitLog, in RocketMQ's layout.
//!
//! Files `consumequeue/<topic>/<queueId>/<20-digit start byte offset>` hold fixed 20-byte
//! big-endian entries: CommitLog offset (i64), message size (i32), tags code (i64). Logical
//! offset `n` is at byte `20 n`. Entries are published by raising the max offset after they
//! are written, so readers never see a half-written entry; published entries are never
//! rewritten (truncation only happens during recovery, before anyone reads).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Result, StoreError};
use crate::segment_queue::SegmentQueue;

pub const ENTRY_LEN: u64 = 20;

/// One ConsumeQueue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    /// CommitLog offset of the message record (its PHYSICALOFFSET).
    pub phys_offset: i64,
    /// Message record size (TOTALSIZE).
    pub size: i32,
    pub tags_code: i64,
}

impl CqEntry {
    fn encode(&self) -> [u8; ENTRY_LEN as usize] {
        let mut out = [0u8; ENTRY_LEN as usize];
        out[0..8].copy_from_slice(&self.phys_offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.size.to_be_bytes());
        out[12..20].copy_from_slice(&self.tags_code.to_be_bytes());
        out
    }

    fn decode(raw: &[u8; ENTRY_LEN as usize]) -> CqEntry {
        let mut phys = [0u8; 8];
        phys.copy_from_slice(&raw[0..8]);
        let mut tags = [0u8; 8];
        tags.copy_from_slice(&raw[12..20]);
        CqEntry {
            phys_offset: i64::from_be_bytes(phys),
            size: i32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]),
            tags_code: i64::from_be_bytes(tags),
        }
    }

    /// A written entry; zero bytes (never written) are not.
    pub fn is_valid(&self) -> bool {
        self.phys_offset >= 0 && self.size > 0
    }

    /// Filler for a queue offset whose message is lost (written only when recovery finds a
    /// gap it cannot fill); readers skip it.
    pub const HOLE: CqEntry = CqEntry {
        phys_offset: -1,
        size: -1,
        tags_code: 0,
    };

    pub fn is_hole(&self) -> bool {
        self.phys_offset < 0
    }
}

/// Whether a topic name can be used as a directory name.
pub fn is_safe_topic_dir(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 255
        && topic != "."
        && topic != ".."
        && !topic.contains(['/', '\0', '\\'])
}

#[derive(Debug)]
pub struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    files: SegmentQueue,
    min_offset: AtomicI64,
    max_offset: AtomicI64,
    writer: Mutex<()>,
}

impl ConsumeQueue {
    /// Opens (or creates) the queue and finds its last written entry.
    pub fn open(
        root: &Path,
        topic: &str,
        queue_id: i32,
        entries_per_file: u64,
    ) -> Result<ConsumeQueue> {
        if !is_safe_topic_dir(topic) || queue_id < 0 {
            return Err(StoreError::BadRecord(format!(
                "topic {topic:?} / queue {queue_id} cannot name a ConsumeQueue"
            )));
        }
        let dir = queue_dir(root, topic, queue_id);
        let files = SegmentQueue::open(&dir, entries_per_file.max(1) * ENTRY_LEN)?;
        let cq = ConsumeQueue {
            topic: topic.to_string(),
            queue_id,
            files,
            min_offset: AtomicI64::new(0),
            max_offset: AtomicI64::new(0),
            writer: Mutex::new(()),
        };
        let first_start = cq.files.first().map(|s| s.start()).unwrap_or(0);
        cq.min_offset
            .store((first_start / ENTRY_LEN) as i64, Ordering::Release);
        let max = cq.scan_end()?;
        cq.max_offset.store(max, Ordering::Release);
        Ok(cq)
    }

    /// Logical offset one past the last written entry of the last non-empty file. Entries
    /// are written in order, so the written prefix is found by binary search (a few reads,
    /// not the whole file); recovery then checks the tail against the CommitLog.
    fn scan_end(&self) -> Result<i64> {
        let segments = self.files.snapshot();
        let first_start = segments.first().map_or(0, |s| s.start());
        let mut raw = [0u8; ENTRY_LEN as usize];
        // Bounded by the number of files; normally only the last one is read.
        for segment in segments.iter().rev() {
            let count = segment.len() / ENTRY_LEN;
            let (mut lo, mut hi) = (0u64, count);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                segment.pread(mid * ENTRY_LEN, &mut raw)?;
                let entry = CqEntry::decode(&raw);
                if entry.is_valid() || entry == CqEntry::HOLE {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if lo > 0 || segment.start() == first_start {
                return Ok(((segment.start() + lo * ENTRY_LEN) / ENTRY_LEN) as i64);
            }
        }
        Ok(self.min_offset.load(Ordering::Acquire))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }

    pub fn dir(&self) -> &Path {
        self.files.dir()
    }

    /// First retained logical offset.
    pub fn min_offset(&self) -> i64 {
        self.min_offset.load(Ordering::Acquire)
    }

    /// Next logical offset to be written (= entries ever written).
    pub fn max_offset(&self) -> i64 {
        self.max_offset.load(Ordering::Acquire)
    }

    /// Appends entries at the end; `first_offset` must be the current max offset.
    pub fn append(&self, first_offset: i64, entries: &[CqEntry]) -> Result<()> {
        let _writer = self.writer.lock();
        let max = self.max_offset();
        if first_offset != max {
            return Err(StoreError::LogMismatch(format!(
                "ConsumeQueue {}:{} expects offset {max}, got {first_offset}",
                self.topic, self.queue_id
            )));
        }
        if let [entry] = entries {
            // One entry never crosses a file boundary (files hold whole entries).
            self.write_run((first_offset as u64) * ENTRY_LEN, &entry.encode())?;
            self.max_offset.store(first_offset + 1, Ordering::Release);
            return Ok(());
        }
        // Within one append the records come in log order: CommitLog offsets increase.
        debug_assert!(entries
            .windows(2)
            .all(|w| w[0].is_hole() || w[1].is_hole() || w[0].phys_offset < w[1].phys_offset));
        let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN as usize);
        let mut run_start = (first_offset as u64) * ENTRY_LEN;
        for entry in entries {
            let at = run_start + buf.len() as u64;
            if !buf.is_empty() && at % self.files.segment_len() == 0 {
                self.write_run(run_start, &buf)?;
                buf.clear();
                run_start = at;
            }
            buf.extend_from_slice(&entry.encode());
        }
        self.write_run(run_start, &buf)?;
        let new_max = first_offset + entries.len() as i64;
        debug_assert!(new_max >= max, "queue offsets only grow");
        self.max_offset.store(new_max, Ordering::Release);
        Ok(())
    }

    /// Creates the file that entry `offset` will go to, so a later append cannot fail on
    /// a full disk after the CommitLog write it mirrors.
    pub fn ensure_room(&self, offset: i64) -> Result<()> {
        if offset != self.max_offset() {
            // Not the next entry: `append` will refuse it; creating files for it would only
            // waste disk.
            return Ok(());
        }
        let at = (offset as u64).saturating_mul(ENTRY_LEN);
        self.files.find_or_create(at).map(|_| ())
    }

    fn write_run(&self, start: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let segment = self.files.find_or_create(start)?;
        let rel = start - segment.start();
        segment.write(rel, bytes)?;
        segment.mark_stable(rel + bytes.len() as u64);
        Ok(())
    }

    /// The entry at logical `offset`, if it is retained and written.
    pub fn get(&self, offset: i64) -> Option<CqEntry> {
        if offset < self.min_offset() || offset >= self.max_offset() {
            return None;
        }
        let at = (offset as u64) * ENTRY_LEN;
        let segment = self.files.find(at)?;
        let mut raw = [0u8; ENTRY_LEN as usize];
        if !segment.copy_stable(at - segment.start(), &mut raw) {
            return None;
        }
        Some(CqEntry::decode(&raw))
    }

    /// Up to `max_count` entries from `offset`, stopping at the end of the queue.
    pub fn read(&self, offset: i64, max_count: usize, out: &mut Vec<CqEntry>) {
        let end = self.max_offset();
        let mut at = offset.max(self.min_offset());
        let mut raw = [0u8; ENTRY_LEN as usize];
        // Bounded by `max_count`.
        while at < end && out.len() < max_count {
            let pos = (at as u64) * ENTRY_LEN;
            let Some(segment) = self.files.find(pos) else {
                return;
            };
            if !segment.copy_stable(pos - segment.start(), &mut raw) {
                return;
            }
            out.push(CqEntry::decode(&raw));
            at += 1;
        }
    }

    /// Reads an entry during recovery (before anything is published as stable).
    pub(crate) fn get_for_recovery(&self, offset: i64) -> Result<Option<CqEntry>> {
        if offset < self.min_offset() || offset >= self.max_offset() {
            return Ok(None);
        }
        let at = (offset as u64) * ENTRY_LEN;
        let Some(segment) = self.files.find(at) else {
            return Ok(None);
        };
        let mut raw = [0u8; ENTRY_LEN as usize];
        segment.pread(at - segment.start(), &mut raw)?;
        Ok(Some(CqEntry::decode(&raw)))
    }

    /// Drops entries from logical `offset` on. Only for recovery: published entries are
    /// otherwise never rewritten, and the segments refuse to rewrite stable bytes.
    pub(crate) fn truncate_from(&self, offset: i64) -> Result<()> {
        let _writer = self.writer.lock();
        let max = self.max_offset();
        if offset >= max {
            return Ok(());
        }
        let offset = offset.max(self.min_offset());
        let from = (offset as u64) * ENTRY_LEN;
        let to = (max as u64) * ENTRY_LEN;
        if let Some(segment) = self.files.find(from) {
            segment.zero(from - segment.start(), to.saturating_sub(segment.start()))?;
        }
        // Keep the file holding `from` (it may be the first); drop later ones.
        self.files
            .remove_from(self.files.segment_start(from) + self.files.segment_len())?;
        self.max_offset.store(offset, Ordering::Release);
        if self.min_offset() > offset {
            self.min_offset.store(offset, Ordering::Release);
        }
        Ok(())
    }

    /// Fills logical offsets `[max_offset, up_to)` with holes (recovery found messages of
    /// this queue missing for good).
    pub(crate) fn fill_holes(&self, up_to: i64) -> Result<()> {
        let max = self.max_offset();
        if up_to <= max {
            return Ok(());
        }
        let count = (up_to - max) as usize;
        tracing::warn!(topic = %self.topic, queue_id = self.queue_id, from = max, count, "ConsumeQueue has lost entries; filling holes");
        let holes = vec![CqEntry::HOLE; count.min(1 << 20)];
        let mut at = max;
        while at < up_to {
            let n = ((up_to - at) as usize).min(holes.len());
            self.append(at, &holes[..n])?;
            at += n as i64;
        }
        Ok(())
    }

    /// Moves a queue that retains nothing forward so that its next entry is `offset`: a
    /// replica whose log restarted at a leader's first retained entry sees this queue's
    /// offsets continue from wherever the group had reached. Only the file holding `offset`
    /// is kept, with holes before it (readers skip them, recovery moves the min offset past).
    pub(crate) fn skip_to(&self, offset: i64) -> Result<()> {
        let _writer = self.writer.lock();
        let max = self.max_offset();
        if offset <= max {
            return Ok(());
        }
        if self.min_offset() != max {
            return Err(StoreError::LogMismatch(format!(
                "ConsumeQueue {}:{} holds entries up to {max}; cannot skip to {offset}",
                self.topic, self.queue_id
            )));
        }
        tracing::warn!(topic = %self.topic, queue_id = self.queue_id, from = max, to = offset, "ConsumeQueue skips to the group's offset");
        self.files.clear()?;
        let at = (offset as u64).saturating_mul(ENTRY_LEN);
        let file_start = self.files.segment_start(at);
        let holes = ((at - file_start) / ENTRY_LEN) as usize;
        let mut buf = Vec::with_capacity(holes * ENTRY_LEN as usize);
        for _ in 0..holes {
            buf.extend_from_slice(&CqEntry::HOLE.encode());
        }
        self.files.find_or_create(at)?;
        self.write_run(file_start, &buf)?;
        self.max_offset.store(offset, Ordering::Release);
        self.min_offset.store(offset, Ordering::Release);
        Ok(())
    }

    /// After recovery: every entry written so far is published and immutable.
    pub(crate) fn seal(&self) {
        let end = (self.max_offset() as u64) * ENTRY_LEN;
        for segment in self.files.snapshot() {
            if segment.start() < end {
                segment.mark_stable(end - segment.start());
            }
        }
    }

    /// Drops files whose every entry points below `min_phys_offset` (their messages were
    /// removed by retention), then moves the min offset to the first entry at or above it.
    /// Returns the number of files removed.
    pub fn remove_below(&self, min_phys_offset: i64) -> Result<usize> {
        let mut removed = 0;
        // Bounded by the number of files; the last file is always kept.
        while self.files.len() > 1 {
            let Some(first) = self.files.first() else {
                break;
            };
            let last_in_file = (first.end() / ENTRY_LEN) as i64 - 1;
            // A file the queue has not filled yet is the one it writes next (files past it
            // are leftovers of a power cut that lost their entries): it never goes.
            if last_in_file >= self.max_offset() {
                break;
            }
            let expired = match self.get(last_in_file) {
                Some(entry) => entry.phys_offset < min_phys_offset,
                None => true,
            };
            if !expired {
                break;
            }
            self.files.remove_first_if(|s| s.start() == first.start())?;
            removed += 1;
        }
        self.correct_min_offset(min_phys_offset);
        Ok(removed)
    }

    /// Moves the min offset to the first entry whose message is still in the CommitLog.
    pub fn correct_min_offset(&self, min_phys_offset: i64) {
        let first_file_start = self.files.first().map(|s| s.start()).unwrap_or(0);
        let mut lo = ((first_file_start / ENTRY_LEN) as i64).max(self.min_offset());
        let mut hi = self.max_offset();
        // Binary search for the first entry with phys_offset >= min (entries ascend).
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = match self.get_raw(mid) {
                Some(entry) => entry.phys_offset < min_phys_offset,
                None => true,
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.min_offset.fetch_max(lo, Ordering::AcqRel);
    }

    fn get_raw(&self, offset: i64) -> Option<CqEntry> {
        if offset < 0 || offset >= self.max_offset() {
            return None;
        }
        let at = (offset as u64) * ENTRY_LEN;
        let segment = self.files.find(at)?;
        let mut raw = [0u8; ENTRY_LEN as usize];
        if !segment.copy_stable(at - segment.start(), &mut raw) {
            return None;
        }
        Some(CqEntry::decode(&raw))
    }

    /// Binary search over store timestamps. `time_of` reads an entry's store timestamp
    /// (from the CommitLog); entries whose message is gone read as `None` and are treated as
    /// older than everything.
    ///
    /// `Lower`: the first offset whose message was stored at or after `timestamp_ms`
    /// (the max offset if none). `Upper`: the last offset stored at or before it (the min
    /// offset if none).
    pub fn offset_by_time(
        &self,
        timestamp_ms: i64,
        boundary: Boundary,
        time_of: impl Fn(&CqEntry) -> Option<i64>,
    ) -> i64 {
        let min = self.min_offset();
        let max = self.max_offset();
        if min >= max {
            return max;
        }
        let (mut lo, mut hi) = (min, max);
        // First offset whose time is > t (Upper) or >= t (Lower). Bounded: log2 steps.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let time = self.get(mid).and_then(|e| time_of(&e)).unwrap_or(i64::MIN);
            let before = match boundary {
                Boundary::Lower => time < timestamp_ms,
                Boundary::Upper => time <= timestamp_ms,
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match boundary {
            Boundary::Lower => lo,
            Boundary::Upper => (lo - 1).max(min),
        }
    }

    pub fn flush(&self) -> Result<usize> {
        self.files.flush()
    }

    /// Deletes all files of this queue.
    pub fn destroy(&self) -> Result<()> {
        self.files.remove_dir_all()
    }

    /// Bytes of disk the files take.
    pub fn disk_bytes(&self) -> u64 {
        self.files.len() as u64 * self.files.segment_len()
    }
}

/// Which side of a timestamp SEARCH_OFFSET_BY_TIMESTAMP resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boundary {
    #[default]
    Lower,
    Upper,
}

pub fn queue_dir(root: &Path, topic: &str, queue_id: i32) -> PathBuf {
    root.join(topic).join(queue_id.to_string())
}

/// Opened queues keyed by topic then queue id.
pub type QueueMap =
    std::collections::HashMap<String, std::collections::HashMap<i32, Arc<ConsumeQueue>>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> CqEntry {
        CqEntry {
            phys_offset: 1000 + i * 100,
            size: 100,
            tags_code: i % 3,
        }
    }

    #[test]
    fn append_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "TopicA", 3, 4).unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 0));
        let entries: Vec<_> = (0..10).map(entry).collect();
        cq.append(0, &entries[..3]).unwrap();
        cq.append(3, &entries[3..]).unwrap();
        assert!(cq.append(5, &entries[..1]).is_err(), "offsets are dense");
        assert_eq!(cq.max_offset(), 10);
        assert_eq!(cq.get(7), Some(entry(7)));
        assert_eq!(cq.get(10), None);
        let mut out = Vec::new();
        cq.read(2, 5, &mut out);
        assert_eq!(out, entries[2..7].to_vec());
        drop(cq);
        let cq = ConsumeQueue::open(dir.path(), "TopicA", 3, 4).unwrap();
        assert_eq!(cq.max_offset(), 10);
        cq.truncate_from(6).unwrap();
        assert_eq!(cq.max_offset(), 6);
        drop(cq);
        let cq = ConsumeQueue::open(dir.path(), "TopicA", 3, 4).unwrap();
        assert_eq!(cq.max_offset(), 6);
        cq.seal();
        assert_eq!(cq.get(5), Some(entry(5)));
    }

    #[test]
    fn full_last_file_reopens_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        cq.append(0, &(0..8).map(entry).collect::<Vec<_>>())
            .unwrap();
        drop(cq);
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        assert_eq!(cq.max_offset(), 8);
    }

    #[test]
    fn retention_moves_min_offset() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        cq.append(0, &(0..10).map(entry).collect::<Vec<_>>())
            .unwrap();
        // Messages below phys 1000 + 5*100 are gone: file 0 (offsets 0..4) goes.
        assert_eq!(cq.remove_below(1500).unwrap(), 1);
        assert_eq!(cq.min_offset(), 5);
        assert_eq!(cq.get(4), None);
        assert_eq!(cq.get(5), Some(entry(5)));
    }

    #[test]
    fn retention_keeps_files_a_queue_has_not_filled_yet() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        cq.append(0, &(0..6).map(entry).collect::<Vec<_>>())
            .unwrap();
        drop(cq);
        // A power cut: both files are there (their sizes were durable), their entries not.
        let queue = queue_dir(dir.path(), "T", 0);
        let files: Vec<_> = std::fs::read_dir(&queue)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        for file in &files {
            let len = std::fs::metadata(file).unwrap().len() as usize;
            std::fs::write(file, vec![0u8; len]).unwrap();
        }
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        assert_eq!(cq.max_offset(), 0);
        // Nothing in the queue is below any position: no file may go.
        assert_eq!(cq.remove_below(1_000_000).unwrap(), 0);
        cq.append(0, &(0..6).map(entry).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(cq.get(5), Some(entry(5)));
    }

    #[test]
    fn time_search_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        cq.append(0, &(0..10).map(entry).collect::<Vec<_>>())
            .unwrap();
        // Message i stored at time 10 * (i / 2): pairs share a timestamp.
        let time_of = |e: &CqEntry| Some(10 * ((e.phys_offset - 1000) / 100 / 2));
        assert_eq!(cq.offset_by_time(20, Boundary::Lower, time_of), 4);
        assert_eq!(cq.offset_by_time(20, Boundary::Upper, time_of), 5);
        assert_eq!(cq.offset_by_time(25, Boundary::Lower, time_of), 6);
        assert_eq!(cq.offset_by_time(25, Boundary::Upper, time_of), 5);
        assert_eq!(cq.offset_by_time(-1, Boundary::Lower, time_of), 0);
        assert_eq!(cq.offset_by_time(-1, Boundary::Upper, time_of), 0);
        assert_eq!(cq.offset_by_time(1000, Boundary::Lower, time_of), 10);
        assert_eq!(cq.offset_by_time(1000, Boundary::Upper, time_of), 9);
    }

    #[test]
    fn unsafe_topic_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for topic in ["", ".", "..", "a/b", "a\\b"] {
            assert!(
                ConsumeQueue::open(dir.path(), topic, 0, 4).is_err(),
                "{topic:?}"
            );
        }
        assert!(ConsumeQueue::open(dir.path(), "T", -1, 4).is_err());
    }
}
