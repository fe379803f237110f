//! Durability: fsync of data and entry index, the checkpoint recovery starts from, and the
//! watch of the durable position.

use super::*;

impl CommitLog {
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

    pub(super) fn write_checkpoint_at(&self, safe_pos: u64, safe_next_index: u64) -> Result<()> {
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
}
