//! Recovery at open: every frame after the checkpoint's safe point is verified (header and
//! body checksums, position, index continuity, the owner's body check), and the log is cut
//! at the first that fails.

use super::*;

impl CommitLog {
    pub(super) fn recover(
        &self,
        cp: LogCheckpoint,
        validate: BodyValidator<'_>,
    ) -> Result<LogRecovery> {
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
}
