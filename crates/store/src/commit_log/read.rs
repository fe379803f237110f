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
        self.verify_frame(&frame, &loc).map(Some)
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
    /// Stable frames share the mapping; others are copied. Stops early at a truncation, and
    /// before a damaged entry: it fails naming that entry only when it is the first.
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
            match self.verify_frame(&frame, &loc) {
                Ok(_) => {}
                Err(StoreError::DamagedEntry { .. }) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
            bytes += size;
            out.push(frame);
            index += 1;
        }
        Ok(out)
    }

    /// Decodes the frame read at `loc`, both checksums verified and matching its slot in
    /// the entry index; anything else is a damaged entry.
    fn verify_frame(&self, frame: &Bytes, loc: &EntryLocation) -> Result<Entry> {
        let damaged = |reason: String| StoreError::DamagedEntry {
            path: self.config.dir.clone(),
            index: loc.index,
            reason,
        };
        let entry = Entry::decode(frame).map_err(|e| damaged(format!("at {}: {e}", loc.pos)))?;
        if entry.index != loc.index
            || entry.pos != loc.pos
            || entry.term != loc.term
            || entry.size() != loc.size as usize
        {
            return Err(damaged(format!(
                "the frame at {} holds entry {} of term {} at {}",
                loc.pos, entry.index, entry.term, entry.pos
            )));
        }
        Ok(entry)
    }

    /// Writes `frame`, another member's intact copy of entry `index`, over the damaged one,
    /// durably. Refused (`false`, nothing written) unless it is exactly one intact entry with
    /// the index, term, position and size this log records for `index`, and the same header
    /// as the damaged copy when that header is still intact.
    pub fn repair_entry(&self, index: u64, frame: &Bytes) -> Result<bool> {
        let Some(loc) = self.location(index) else {
            return Ok(false);
        };
        if self.verify_frame(frame, &loc).is_err() {
            return Ok(false);
        }
        let Some(segment) = self.data.find(loc.pos) else {
            return Ok(false);
        };
        let rel = loc.pos - segment.start();
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        segment.pread(rel, &mut header_bytes)?;
        if let (Ok(left), Ok(copy)) = (
            EntryHeader::decode(&header_bytes),
            EntryHeader::decode(frame),
        ) {
            if left != copy {
                return Ok(false);
            }
        }
        let _guard = self.truncation.read();
        segment.overwrite_durably(rel, frame)?;
        Ok(true)
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
    /// offset), if a valid frame header sits right before it and the whole entry is stable;
    /// `None` as well when it is damaged (see [`CommitLog::body_at`]).
    pub fn read_body_at(&self, body_pos: u64) -> Option<(EntryHeader, Bytes)> {
        match self.body_at(body_pos, true) {
            BodyAt::Found(header, body) => Some((header, body)),
            BodyAt::Missing | BodyAt::Damaged { .. } => None,
        }
    }

    /// What lies at `body_pos` (a message's physical offset): a stable entry whose header
    /// (and with `verify_body`, body) checksums hold, nothing readable (not stable yet,
    /// removed, not an entry's start), or an entry that rotted, which is reported for repair
    /// ([`CommitLog::take_damage_report`]) and must not be skipped over as if it were gone.
    pub fn body_at(&self, body_pos: u64, verify_body: bool) -> BodyAt {
        let Some(pos) = body_pos.checked_sub(HEADER_LEN) else {
            return BodyAt::Missing;
        };
        if pos < self.first_pos() {
            return BodyAt::Missing;
        }
        let Some(segment) = self.data.find(pos) else {
            return BodyAt::Missing;
        };
        let rel = pos - segment.start();
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        if !segment.copy_stable(rel, &mut header_bytes) {
            return BodyAt::Missing;
        }
        let header = match EntryHeader::decode(&header_bytes) {
            Ok(header) if header.pos == pos => header,
            // A rotted header: damaged if an entry starts here, else not an entry's start.
            _ => return self.damaged_at(pos),
        };
        let Some(body) = segment.read_stable(rel + HEADER_LEN, header.body_len as usize) else {
            return BodyAt::Missing;
        };
        if verify_body && crc32c::crc32c(&body) != header.body_crc {
            return self.damaged_at(pos);
        }
        BodyAt::Found(header, body)
    }

    fn damaged_at(&self, pos: u64) -> BodyAt {
        let Some(index) = self.index_at_pos(pos) else {
            return BodyAt::Missing;
        };
        tracing::error!(dir = %self.config.dir.display(), index, pos,
            "a read found a damaged CommitLog entry (its checksum fails)");
        let mut reports = self.damage_reports.lock();
        if reports.len() < MAX_DAMAGE_REPORTS {
            reports.insert(index);
        }
        BodyAt::Damaged { index }
    }

    /// The entry whose frame starts exactly at `pos`, by binary search over the entry index
    /// (positions grow with indexes).
    fn index_at_pos(&self, pos: u64) -> Option<u64> {
        let (mut lo, mut hi) = (self.first_index(), self.last_index());
        // Bounded: the range halves every round.
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let loc = self.location(mid)?;
            match loc.pos.cmp(&pos) {
                std::cmp::Ordering::Equal => return Some(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid.checked_sub(1)?,
            }
        }
        None
    }

    /// A damaged entry a read found, not yet handed out and still damaged (lowest first):
    /// reports go stale when the raft node repairs the entry for a reason of its own.
    pub fn take_damage_report(&self) -> Option<u64> {
        // Bounded by the reports held.
        loop {
            let index = self.damage_reports.lock().pop_first()?;
            if matches!(self.read_entry(index), Err(StoreError::DamagedEntry { .. })) {
                return Some(index);
            }
        }
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
