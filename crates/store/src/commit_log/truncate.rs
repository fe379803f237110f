//! Removing entries: an uncommitted suffix (raft truncation), everything (a reset to a new
//! start), or the oldest segment (retention). Each cut is durable when it returns.

use super::*;

impl CommitLog {
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
    pub(super) fn erase(&self, from: u64, to: u64) -> Result<()> {
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
