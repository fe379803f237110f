//! Reads: entries by index (checksums verified), frames as stored, a body by its position,
//! and what lies at a position. Stable bytes are shared views of the mapping; others are
//! copied under the truncation lock.

use super::*;

impl CommitLog {
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
    pub(super) fn read_bytes(&self, pos: u64, len: usize) -> Result<Option<Bytes>> {
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
}
