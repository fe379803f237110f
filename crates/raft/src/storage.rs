//! The log-storage contract of the core, and an in-memory log that keeps the same semantics.
//!
//! The log is the broker's CommitLog: entries are framed (see [`crate::entry`]) and sit at a
//! byte position that is the same on every replica. The storage, not the core, decides where
//! an entry may start ([`LogStorage::place`]): a segmented file log never lets an entry
//! straddle two segments and pads the rest of a segment with blank filler instead.
//!
//! Indexes start at 1. An empty log has `first_index() == last_index() + 1`. After retention
//! deleted old segments, or after the log was restarted at a leader's first index,
//! `first_index()` is greater than 1; the entry just before it is the log's *base*, whose term
//! the storage may or may not know.

use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{EntryHeader, FrameError, ENTRY_HEADER_LEN};

/// Why a storage operation failed. Errors are fatal for the node that sees them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("entry {index} is not in the log (held: {first}..={last})")]
    Unavailable { index: u64, first: u64, last: u64 },
    #[error("entry of {framed_len} bytes does not fit in a segment of {segment_bytes} bytes")]
    EntryTooLarge { framed_len: u64, segment_bytes: u64 },
    #[error("append does not continue the log: {0}")]
    NotContiguous(String),
    #[error("corrupt entry: {0}")]
    Corrupt(#[from] FrameError),
    /// Entry `index` was read back damaged (its checksum fails): not fatal while another
    /// member holds an intact copy to repair it with (see [`LogStorage::repair`]).
    #[error("entry {index} is damaged: {reason}")]
    DamagedEntry { index: u64, reason: String },
    #[error("{0}")]
    Other(String),
}

/// What the core needs from a log. Implementations are used from one thread at a time (the
/// driver's task), so methods take `&self`/`&mut self` without locking.
///
/// Durability contract:
/// - [`append`](LogStorage::append) may leave data in volatile memory (page cache);
///   [`sync`](LogStorage::sync) makes everything appended and truncated before it durable.
/// - A truncation must be durable no later than the next `sync` (otherwise a crash could
///   resurrect a truncated tail behind newer entries).
/// - [`reset`](LogStorage::reset) is durable when it returns.
pub trait LogStorage: Send + 'static {
    /// First index held; `last_index() + 1` when the log is empty.
    fn first_index(&self) -> u64;
    /// Last index held; `first_index() - 1` when the log is empty (0 for a new log).
    fn last_index(&self) -> u64;
    /// Term of entry `index`. Must be `Some` for `first_index()..=last_index()`. For the base
    /// (`first_index() - 1`) it is `Some(0)` for a new log and otherwise whatever is known.
    fn term(&self, index: u64) -> Result<Option<u64>, StorageError>;
    /// Byte position just past the last entry: where the next placement starts from.
    fn end_pos(&self) -> u64;
    /// Where an entry of `framed_len` bytes starts if the log currently ends at `end_pos`.
    /// A flat log returns `end_pos`; a segmented log skips to the next segment when the entry
    /// would not fit in the current one. Must be a pure function of its arguments.
    fn place(&self, end_pos: u64, framed_len: u64) -> Result<u64, StorageError>;
    /// Appends framed entries. Each frame is one whole entry (header and body, checksums
    /// already verified) whose index continues the log and whose position is what
    /// [`place`](LogStorage::place) gives.
    fn append(&mut self, frames: &[Bytes]) -> Result<(), StorageError>;
    /// Removes every entry after `index` (`index >= first_index() - 1`).
    fn truncate_after(&mut self, index: u64) -> Result<(), StorageError>;
    /// Framed entries from `from` on, at most `max_entries` and about `max_bytes` (always at
    /// least one entry when `from <= last_index()`, however large). Empty past the end.
    fn read(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError>;
    /// Drops the whole log and restarts it empty so that the next entry is `next_index` at
    /// byte position `next_pos`, with `base_term` the term of entry `next_index - 1` if known.
    /// Used when a follower is behind the leader's first retained entry or lost its disk.
    fn reset(
        &mut self,
        next_index: u64,
        next_pos: u64,
        base_term: Option<u64>,
    ) -> Result<(), StorageError>;
    /// Makes every earlier append and truncation durable (fsync / msync).
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Writes `frame` over entry `index`, which a read found damaged
    /// ([`StorageError::DamagedEntry`]), durably. The caller checked that `frame` is intact
    /// and has the index and term this log holds for `index`; the storage refuses it
    /// (`Ok(false)`, nothing written) if it contradicts anything else it still knows of the
    /// entry: its position, its size, its header if that survived. Reads must return
    /// `DamagedEntry` only from the damaged entry on, so that what lies before it is still
    /// served.
    fn repair(&mut self, index: u64, _frame: Bytes) -> Result<bool, StorageError> {
        Err(StorageError::Other(format!(
            "this log cannot repair entries (entry {index})"
        )))
    }

    /// An entry some other reader of the log (consumers reading messages) found damaged,
    /// for the node to repair; each is handed out once.
    fn damage_reported(&mut self) -> Option<u64> {
        None
    }

    /// Whether [`sync`](LogStorage::sync) may block the thread (real I/O). The driver then
    /// runs it so that the runtime's other tasks move to another thread meanwhile, which
    /// costs a thread hand-off per sync; a storage whose sync is instant says `false`.
    fn sync_may_block(&self) -> bool {
        true
    }

    /// A way to make the log durable from another thread while this one keeps appending (a
    /// file log whose fsync is thread-safe): the driver then fsyncs in the background, so
    /// replication and acknowledgement never stall on the disk, and only what must wait for
    /// durability (`sync_flush` commits, applying) waits. The call must make durable every
    /// append and truncation made before it started. `None`: the driver calls
    /// [`sync`](LogStorage::sync) inline.
    fn background_sync(&self) -> Option<BackgroundSync> {
        None
    }

    /// Told by the driver when the durable commit index advances (see
    /// [`Node::safe_index`](crate::Node::safe_index)): entries up to `index` are never
    /// truncated again (a store may mark them stable and hand them out without copying).
    /// Only [`reset`](LogStorage::reset) still removes them, as it removes the whole log.
    fn committed(&mut self, _index: u64) {}
}

/// See [`LogStorage::background_sync`].
pub type BackgroundSync = Arc<dyn Fn() -> Result<(), StorageError> + Send + Sync>;

/// The placement rule of a log cut in segments of `segment_bytes`: an entry starts where
/// the log ends if it fits in the rest of that segment, otherwise at the start of the next
/// segment (the skipped tail holds blank filler, [`crate::entry::encode_blank`], or zeros if
/// it is shorter than [`crate::entry::BLANK_MIN_LEN`]). Shared by [`MemLog`] and the file-backed
/// CommitLog so that both place every entry at the same position.
pub fn segment_place(
    end_pos: u64,
    framed_len: u64,
    segment_bytes: u64,
) -> Result<u64, StorageError> {
    if framed_len > segment_bytes || segment_bytes == 0 {
        return Err(StorageError::EntryTooLarge {
            framed_len,
            segment_bytes,
        });
    }
    let used = end_pos % segment_bytes;
    if used + framed_len <= segment_bytes {
        Ok(end_pos)
    } else {
        (end_pos - used)
            .checked_add(segment_bytes)
            .ok_or_else(|| StorageError::Other(format!("position {end_pos} overflows")))
    }
}

#[derive(Debug, Clone)]
struct Stored {
    frame: Bytes,
    term: u64,
    pos: u64,
}

impl Stored {
    fn end_pos(&self) -> u64 {
        self.pos + self.frame.len() as u64
    }
}

/// An in-memory [`LogStorage`] with the semantics of the segmented file log, used by the
/// simulation and by tests. It also models durability: [`MemLog::crash`] keeps only what a
/// power cut would leave (everything up to the last `sync`, including a truncated tail whose
/// truncation was not yet synced).
#[derive(Debug, Clone)]
pub struct MemLog {
    segment_bytes: Option<u64>,
    /// Index of the entry before the first held one.
    base_index: u64,
    base_term: Option<u64>,
    base_end_pos: u64,
    entries: std::collections::VecDeque<Stored>,
    /// `entries[..durable_len]` followed by `durable_tail` is what survives a power cut.
    durable_len: usize,
    durable_tail: Vec<Stored>,
    /// Oldest entries are dropped beyond this many (benchmarks only: see `with_retention`).
    retain_entries: Option<usize>,
    /// Lowest index appended, truncated or replaced since the last `take_changed_from`.
    changed_from: Option<u64>,
    /// Entries whose bytes rotted ([`MemLog::damage`]): reads fail from them on until
    /// they are repaired.
    damaged: std::collections::BTreeSet<u64>,
}

impl Default for MemLog {
    fn default() -> Self {
        MemLog::new()
    }
}

impl MemLog {
    /// A flat log (entries back to back, no segments).
    pub fn new() -> MemLog {
        MemLog {
            segment_bytes: None,
            base_index: 0,
            base_term: Some(0),
            base_end_pos: 0,
            entries: Default::default(),
            durable_len: 0,
            durable_tail: Vec::new(),
            retain_entries: None,
            changed_from: None,
            damaged: Default::default(),
        }
    }

    /// A log cut in segments of `segment_bytes`, like the file-backed CommitLog.
    pub fn with_segments(segment_bytes: u64) -> MemLog {
        MemLog {
            segment_bytes: Some(segment_bytes.max(ENTRY_HEADER_LEN as u64)),
            ..MemLog::new()
        }
    }

    /// Keeps at most `entries` entries, dropping the oldest as new ones arrive, like retention
    /// deleting old segments. Only for benchmarks and tests that keep it far above the
    /// uncommitted window: it does not know what is committed.
    pub fn with_retention(mut self, entries: usize) -> MemLog {
        self.retain_entries = Some(entries.max(1));
        self
    }

    /// Retention: forgets every entry before `index` (which must be committed). The base
    /// term stays known, as a file log remembers the last term of a deleted segment.
    pub fn compact_to(&mut self, index: u64) {
        while self.base_index + 1 < index {
            let Some(front) = self.entries.pop_front() else {
                break;
            };
            self.base_index += 1;
            self.base_term = Some(front.term);
            self.base_end_pos = front.end_pos();
            self.durable_len = self.durable_len.saturating_sub(1);
        }
        self.damaged = self.damaged.split_off(&(self.base_index + 1));
    }

    /// Last index that survives a power cut right now.
    pub fn durable_last_index(&self) -> u64 {
        self.base_index + (self.durable_len + self.durable_tail.len()) as u64
    }

    /// Term of `index` in the durable image, if it is there.
    pub fn durable_term(&self, index: u64) -> Option<u64> {
        if index <= self.base_index {
            return if index == self.base_index {
                self.base_term
            } else {
                None
            };
        }
        let offset = (index - self.base_index - 1) as usize;
        if offset < self.durable_len {
            self.entries.get(offset).map(|s| s.term)
        } else {
            self.durable_tail
                .get(offset - self.durable_len)
                .map(|s| s.term)
        }
    }

    /// A power cut: everything not synced is lost, and an unsynced truncation is undone.
    pub fn crash(&mut self) {
        self.note_change(self.base_index + self.durable_len as u64 + 1);
        self.entries.truncate(self.durable_len);
        self.entries.extend(self.durable_tail.drain(..));
        self.durable_len = self.entries.len();
        let last = self.last_index();
        self.damaged.retain(|index| *index <= last);
    }

    /// The bytes of entry `index` rot in place (a bit flip on the disk, as the simulation
    /// models it): reads from it fail with [`StorageError::DamagedEntry`] until
    /// [`LogStorage::repair`] writes an intact copy over it. False if the log lacks it.
    pub fn damage(&mut self, index: u64) -> bool {
        if self.get(index).is_none() {
            return false;
        }
        self.damaged.insert(index);
        true
    }

    /// Entries damaged and not repaired yet.
    pub fn damaged(&self) -> impl Iterator<Item = u64> + '_ {
        self.damaged.iter().copied()
    }

    /// Position and body checksum of entry `index` (for checkers).
    pub fn entry_meta(&self, index: u64) -> Option<(u64, u64, u32)> {
        let stored = self.get(index)?;
        let header = EntryHeader::decode(&stored.frame).ok()?;
        Some((stored.term, stored.pos, header.body_crc))
    }

    /// Lowest index whose entry was appended, replaced or removed since the last call (for
    /// checkers that verify only what changed).
    pub fn take_changed_from(&mut self) -> Option<u64> {
        self.changed_from.take()
    }

    fn note_change(&mut self, index: u64) {
        self.changed_from = Some(self.changed_from.map_or(index, |c| c.min(index)));
    }

    fn get(&self, index: u64) -> Option<&Stored> {
        if index <= self.base_index {
            return None;
        }
        self.entries.get((index - self.base_index - 1) as usize)
    }
}

impl LogStorage for MemLog {
    fn first_index(&self) -> u64 {
        self.base_index + 1
    }

    fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> Result<Option<u64>, StorageError> {
        if index == self.base_index {
            return Ok(self.base_term);
        }
        Ok(self.get(index).map(|s| s.term))
    }

    fn end_pos(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.base_end_pos, Stored::end_pos)
    }

    fn place(&self, end_pos: u64, framed_len: u64) -> Result<u64, StorageError> {
        match self.segment_bytes {
            Some(segment_bytes) => segment_place(end_pos, framed_len, segment_bytes),
            None => Ok(end_pos),
        }
    }

    fn append(&mut self, frames: &[Bytes]) -> Result<(), StorageError> {
        if !frames.is_empty() {
            self.note_change(self.last_index() + 1);
        }
        for frame in frames {
            let header = EntryHeader::decode(frame)?;
            let expected_index = self.last_index() + 1;
            let expected_pos = self.place(self.end_pos(), header.size() as u64)?;
            if header.index != expected_index || header.pos != expected_pos {
                return Err(StorageError::NotContiguous(format!(
                    "entry {}@{} after {}@{}",
                    header.index, header.pos, expected_index, expected_pos
                )));
            }
            if frame.len() != header.size() {
                return Err(StorageError::NotContiguous(format!(
                    "frame of {} bytes holds an entry of {}",
                    frame.len(),
                    header.size()
                )));
            }
            debug_assert!(header.index > self.base_index);
            self.entries.push_back(Stored {
                frame: frame.clone(),
                term: header.term,
                pos: header.pos,
            });
        }
        if let Some(retain) = self.retain_entries {
            if self.entries.len() > retain {
                let keep_from = self.last_index() + 1 - retain as u64;
                self.compact_to(keep_from);
            }
        }
        Ok(())
    }

    fn truncate_after(&mut self, index: u64) -> Result<(), StorageError> {
        if index < self.base_index {
            return Err(StorageError::Unavailable {
                index,
                first: self.first_index(),
                last: self.last_index(),
            });
        }
        let keep = (index - self.base_index) as usize;
        if keep >= self.entries.len() {
            return Ok(());
        }
        self.note_change(index + 1);
        if keep < self.durable_len {
            // The cut is not durable until the next sync: a crash before it brings the
            // synced part of the old tail back.
            let mut tail: Vec<Stored> = self
                .entries
                .range(keep..self.durable_len)
                .cloned()
                .collect();
            tail.append(&mut self.durable_tail);
            self.durable_tail = tail;
            self.durable_len = keep;
        }
        self.entries.truncate(keep);
        self.damaged.split_off(&(index + 1));
        Ok(())
    }

    fn read(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        if from <= self.base_index {
            return Err(StorageError::Unavailable {
                index: from,
                first: self.first_index(),
                last: self.last_index(),
            });
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let start = (from - self.base_index - 1) as usize;
        for (index, stored) in (from..).zip(self.entries.iter().skip(start)) {
            if out.len() >= max_entries
                || (!out.is_empty() && bytes + stored.frame.len() > max_bytes)
            {
                break;
            }
            if self.damaged.contains(&index) {
                if out.is_empty() {
                    return Err(StorageError::DamagedEntry {
                        index,
                        reason: "body checksum mismatch".to_owned(),
                    });
                }
                break;
            }
            bytes += stored.frame.len();
            out.push(stored.frame.clone());
        }
        Ok(out)
    }

    fn reset(
        &mut self,
        next_index: u64,
        next_pos: u64,
        base_term: Option<u64>,
    ) -> Result<(), StorageError> {
        self.note_change(next_index.min(self.first_index()));
        self.entries.clear();
        self.damaged.clear();
        self.durable_tail.clear();
        self.durable_len = 0;
        self.base_index = next_index.saturating_sub(1);
        self.base_term = if self.base_index == 0 {
            Some(0)
        } else {
            base_term
        };
        self.base_end_pos = next_pos;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.durable_len = self.entries.len();
        self.durable_tail.clear();
        Ok(())
    }

    fn repair(&mut self, index: u64, frame: Bytes) -> Result<bool, StorageError> {
        let header = EntryHeader::decode(&frame)?;
        let offset = index
            .checked_sub(self.base_index + 1)
            .and_then(|o| usize::try_from(o).ok());
        let Some(stored) = offset.and_then(|o| self.entries.get_mut(o)) else {
            return Err(StorageError::Unavailable {
                index,
                first: self.base_index + 1,
                last: self.base_index + self.entries.len() as u64,
            });
        };
        // The damage is modelled, so the stored header is the one the entry had.
        if EntryHeader::decode(&stored.frame).ok() != Some(header) {
            return Ok(false);
        }
        stored.frame = frame;
        self.damaged.remove(&index);
        Ok(true)
    }

    fn sync_may_block(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, EntryKind};
    use bytes::BytesMut;

    fn frame(log: &MemLog, index: u64, term: u64, body: &'static [u8]) -> Bytes {
        let pos = log
            .place(log.end_pos(), (ENTRY_HEADER_LEN + body.len()) as u64)
            .unwrap();
        let entry = Entry {
            kind: EntryKind::Normal,
            index,
            term,
            pos,
            channel: 0,
            body: Bytes::from_static(body),
        };
        let mut buf = BytesMut::new();
        entry.encode(&mut buf);
        buf.freeze()
    }

    fn push(log: &mut MemLog, term: u64, body: &'static [u8]) {
        let f = frame(log, log.last_index() + 1, term, body);
        log.append(&[f]).unwrap();
    }

    #[test]
    fn empty_log_shape() {
        let log = MemLog::new();
        assert_eq!(log.first_index(), 1);
        assert_eq!(log.last_index(), 0);
        assert_eq!(log.term(0).unwrap(), Some(0));
        assert_eq!(log.term(1).unwrap(), None);
    }

    #[test]
    fn segments_never_split_an_entry() {
        let mut log = MemLog::with_segments(128);
        push(&mut log, 1, &[0u8; 30]); // 78 bytes at 0
        push(&mut log, 1, &[0u8; 30]); // does not fit in 50 left: starts at 128
        assert_eq!(log.entry_meta(2).unwrap().1, 128);
        assert!(matches!(
            log.place(0, 129),
            Err(StorageError::EntryTooLarge { .. })
        ));
    }

    #[test]
    fn append_rejects_gaps_and_wrong_positions() {
        let mut log = MemLog::new();
        push(&mut log, 1, b"a");
        let gap = frame(&log, 3, 1, b"b");
        assert!(matches!(
            log.append(&[gap]),
            Err(StorageError::NotContiguous(_))
        ));
    }

    #[test]
    fn crash_keeps_synced_prefix_and_undoes_unsynced_truncation() {
        let mut log = MemLog::new();
        push(&mut log, 1, b"a");
        push(&mut log, 1, b"b");
        log.sync().unwrap();
        push(&mut log, 1, b"c");
        log.truncate_after(1).unwrap();
        push(&mut log, 2, b"x");
        log.crash();
        assert_eq!(log.last_index(), 2);
        assert_eq!(
            log.term(2).unwrap(),
            Some(1),
            "old tail is back after a power cut"
        );

        log.truncate_after(1).unwrap();
        push(&mut log, 2, b"x");
        log.sync().unwrap();
        log.crash();
        assert_eq!(log.term(2).unwrap(), Some(2));
    }

    #[test]
    fn reset_and_compaction_move_the_base() {
        let mut log = MemLog::new();
        for _ in 0..5 {
            push(&mut log, 1, b"abc");
        }
        log.compact_to(4);
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3).unwrap(), Some(1));
        assert!(log.read(2, 10, 100).is_err());
        assert_eq!(log.read(4, 10, 1 << 20).unwrap().len(), 2);
        log.reset(100, 4096, None).unwrap();
        assert_eq!(log.first_index(), 100);
        assert_eq!(log.last_index(), 99);
        assert_eq!(log.end_pos(), 4096);
        assert_eq!(log.term(99).unwrap(), None);
    }

    #[test]
    fn read_is_bounded_but_returns_at_least_one() {
        let mut log = MemLog::new();
        for _ in 0..4 {
            push(&mut log, 1, b"0123456789");
        }
        assert_eq!(log.read(1, 10, 1).unwrap().len(), 1);
        assert_eq!(log.read(1, 2, 1 << 20).unwrap().len(), 2);
        assert_eq!(log.read(5, 2, 1 << 20).unwrap().len(), 0);
    }
}
