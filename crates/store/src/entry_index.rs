//! The entry-index file: one fixed 32-byte slot per raft index, so finding an entry (or its
//! term) by index is one read, and the mapping survives restarts.
//!
//! Slot `i` lives at absolute offset `i * 32` in a [`SegmentQueue`] of index files (the
//! files are named by that offset, like DLedger's index). Layout, big-endian:
//!
//! | off | size | field |
//! |----:|-----:|-------|
//! | 0 | 8 | index |
//! | 8 | 8 | term |
//! | 16 | 8 | pos of the frame |
//! | 24 | 4 | frame size (header + body) |
//! | 28 | 4 | CRC32C of bytes 0..28 |
//!
//! A zeroed slot fails its checksum and reads as absent. The index is derived data:
//! recovery rewrites the slots of every frame it verifies and clears the ones after the end.

use std::path::Path;

use crate::error::Result;
use crate::segment_queue::SegmentQueue;

pub const SLOT_LEN: u64 = 32;

/// Where one entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLocation {
    pub index: u64,
    pub term: u64,
    pub pos: u64,
    pub size: u32,
}

impl EntryLocation {
    pub fn end(&self) -> u64 {
        self.pos + u64::from(self.size)
    }

    fn encode(&self) -> [u8; SLOT_LEN as usize] {
        let mut out = [0u8; SLOT_LEN as usize];
        out[0..8].copy_from_slice(&self.index.to_be_bytes());
        out[8..16].copy_from_slice(&self.term.to_be_bytes());
        out[16..24].copy_from_slice(&self.pos.to_be_bytes());
        out[24..28].copy_from_slice(&self.size.to_be_bytes());
        let crc = crc32c::crc32c(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(slot: &[u8; SLOT_LEN as usize]) -> Option<EntryLocation> {
        let crc = u32::from_be_bytes([slot[28], slot[29], slot[30], slot[31]]);
        if crc != crc32c::crc32c(&slot[0..28]) {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&slot[at..at + 8]);
            u64::from_be_bytes(b)
        };
        Some(EntryLocation {
            index: u64_at(0),
            term: u64_at(8),
            pos: u64_at(16),
            size: u32::from_be_bytes([slot[24], slot[25], slot[26], slot[27]]),
        })
    }
}

#[derive(Debug)]
pub struct EntryIndex {
    files: SegmentQueue,
}

impl EntryIndex {
    pub fn open(dir: &Path, slots_per_file: u64) -> Result<EntryIndex> {
        Ok(EntryIndex {
            files: SegmentQueue::open(dir, slots_per_file.max(1) * SLOT_LEN)?,
        })
    }

    /// Writes the slots of consecutive entries.
    pub(crate) fn write(&self, locations: &[EntryLocation]) -> Result<()> {
        let mut buf: Vec<u8> = Vec::with_capacity(locations.len() * SLOT_LEN as usize);
        let mut run_start: Option<u64> = None;
        for loc in locations {
            let offset = loc.index * SLOT_LEN;
            let start = *run_start.get_or_insert(offset);
            let run_end = start + buf.len() as u64;
            let segment_end = self.files.segment_start(start) + self.files.segment_len();
            if run_end != offset || run_end >= segment_end {
                self.write_run(start, &buf)?;
                buf.clear();
                run_start = Some(offset);
            }
            buf.extend_from_slice(&loc.encode());
        }
        if let Some(start) = run_start {
            self.write_run(start, &buf)?;
        }
        Ok(())
    }

    fn write_run(&self, start: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let segment = self.files.find_or_create(start)?;
        segment.write(start - segment.start(), bytes)
    }

    /// Reads the slot of `index`.
    ///
    /// # Safety
    /// No concurrent [`EntryIndex::clear_after`] or write of this slot (the CommitLog holds
    /// its truncation lock and only reads published indexes).
    pub(crate) unsafe fn read(&self, index: u64) -> Option<EntryLocation> {
        let offset = index.checked_mul(SLOT_LEN)?;
        let segment = self.files.find(offset)?;
        let mut slot = [0u8; SLOT_LEN as usize];
        // SAFETY: forwarded from this function's contract.
        unsafe {
            segment
                .copy_unstable(offset - segment.start(), &mut slot)
                .ok()?
        };
        EntryLocation::decode(&slot).filter(|loc| loc.index == index)
    }

    /// Clears every slot after `last_index` up to `old_last_index`, and drops index files
    /// that lie wholly beyond it.
    pub(crate) fn clear_after(&self, last_index: u64, old_last_index: u64) -> Result<()> {
        let from = (last_index + 1) * SLOT_LEN;
        let to = (old_last_index + 1) * SLOT_LEN;
        if let Some(segment) = self.files.find(from) {
            segment.zero(from - segment.start(), to.saturating_sub(segment.start()))?;
        }
        self.files
            .remove_from(self.files.segment_start(from) + self.files.segment_len())
    }

    /// Drops everything (a reset log).
    pub(crate) fn clear(&self) -> Result<()> {
        self.files.clear()
    }

    /// Drops index files whose slots all lie before `first_index`.
    pub(crate) fn remove_before(&self, first_index: u64) -> Result<usize> {
        let mut removed = 0;
        let bound = first_index * SLOT_LEN;
        // Bounded by the number of files.
        while self.files.len() > 1 {
            match self.files.remove_first_if(|s| s.end() <= bound)? {
                Some(_) => removed += 1,
                None => break,
            }
        }
        Ok(removed)
    }

    pub fn flush(&self) -> Result<usize> {
        self.files.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(index: u64) -> EntryLocation {
        EntryLocation {
            index,
            term: index / 3,
            pos: index * 100,
            size: 100,
        }
    }

    #[test]
    fn write_read_clear_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let idx = EntryIndex::open(dir.path(), 4).unwrap();
        let locs: Vec<_> = (1..=10).map(loc).collect();
        idx.write(&locs).unwrap();
        for i in 1..=10 {
            assert_eq!(unsafe { idx.read(i) }, Some(loc(i)));
        }
        assert_eq!(unsafe { idx.read(0) }, None);
        assert_eq!(unsafe { idx.read(11) }, None);
        idx.clear_after(5, 10).unwrap();
        for i in 1..=5 {
            assert_eq!(unsafe { idx.read(i) }, Some(loc(i)));
        }
        for i in 6..=10 {
            assert_eq!(unsafe { idx.read(i) }, None, "slot {i}");
        }
        drop(idx);
        let idx = EntryIndex::open(dir.path(), 4).unwrap();
        assert_eq!(unsafe { idx.read(5) }, Some(loc(5)));
        assert_eq!(idx.remove_before(8).unwrap(), 1);
        assert_eq!(unsafe { idx.read(3) }, None);
        assert_eq!(unsafe { idx.read(4) }, Some(loc(4)));
    }
}
