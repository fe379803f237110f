//! Repairing a damaged entry from a peer's copy. A read that finds entry `i` damaged (its
//! checksum fails: bit rot in an old segment) does not stop the node: it asks every other
//! member for entry `i` and writes the first intact copy whose term matches its own record
//! of entry `i` over the damaged bytes. Two logs holding an entry with the same index and
//! term hold the same entry (log matching), so the copy is the very entry that rotted.
//! Meanwhile only what needs that entry waits: a follower whose next batch starts there,
//! and applying it.

use bytes::Bytes;

use super::{Event, Node};
use crate::entry::{EntryHeader, ENTRY_HEADER_LEN};
use crate::message::{Message, Payload};
use crate::storage::{LogStorage, StorageError};
use crate::NodeId;

/// A damaged entry this node is asking its peers for.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingRepair {
    pub(super) index: u64,
    asked_at: u64,
}

impl<S: LogStorage> Node<S> {
    /// The entry a repair is waiting for, if any.
    pub fn awaiting_repair(&self) -> Option<u64> {
        self.repair.map(|r| r.index)
    }

    /// A read found entry `index` damaged: asks the other members for a copy (once per
    /// leader timeout until one comes). One repair at a time; another damaged entry is
    /// found again by the read that needs it once this one is whole.
    pub fn on_damaged_entry(&mut self, index: u64) {
        if self.repair.is_some() {
            return;
        }
        tracing::warn!(node = %self.id, index,
            "entry read back damaged: asking the other members for an intact copy");
        self.repair = Some(PendingRepair {
            index,
            asked_at: self.now,
        });
        self.out.events.push(Event::EntryDamaged { index });
        self.ask_for_copy(index);
    }

    pub(super) fn repair_tick(&mut self) {
        let Some(pending) = self.repair else {
            let reported = self.storage.damage_reported();
            if let Some(index) = reported.filter(|i| *i >= self.storage.first_index()) {
                self.on_damaged_entry(index);
            }
            return;
        };
        if self.now.saturating_sub(pending.asked_at) >= self.ticks.leader_timeout {
            self.repair = Some(PendingRepair {
                asked_at: self.now,
                ..pending
            });
            self.ask_for_copy(pending.index);
        }
    }

    fn ask_for_copy(&mut self, index: u64) {
        let peers: Vec<NodeId> = self
            .membership
            .current()
            .members()
            .iter()
            .map(|m| m.id)
            .filter(|id| *id != self.id)
            .collect();
        for to in peers {
            self.out.messages.push(Message {
                from: self.id,
                to,
                term: self.term,
                payload: Payload::EntryRequest { index },
            });
        }
    }

    /// A peer asks for entry `index`: sent if this node holds it intact. Silence otherwise
    /// (the asker asks again, and others may hold it).
    pub(super) fn on_entry_request(&mut self, from: NodeId, index: u64) {
        if index < self.storage.first_index() || index > self.storage.last_index() {
            return;
        }
        let frame = match self.storage.read(index, 1, 0) {
            Ok(frames) => frames.into_iter().next(),
            Err(e) => {
                tracing::warn!(node = %self.id, index, peer = %from, error = %e,
                    "cannot send a copy of an entry a peer asks for");
                None
            }
        };
        if let Some(frame) = frame {
            self.out.messages.push(Message {
                from: self.id,
                to: from,
                term: self.term,
                payload: Payload::EntryCopy { index, frame },
            });
        }
    }

    /// A peer's copy of an entry: written over the damaged one if it is intact and is the
    /// same entry (same index and term).
    pub(super) fn on_entry_copy(
        &mut self,
        from: NodeId,
        index: u64,
        frame: Bytes,
    ) -> Result<(), StorageError> {
        if self.repair.map(|r| r.index) != Some(index) {
            return Ok(());
        }
        let Some(term) = self.storage.term(index)? else {
            // Truncated or removed by retention meanwhile: nothing to repair any more.
            self.repair = None;
            return Ok(());
        };
        if !is_intact_copy(&frame, index, term) {
            tracing::warn!(node = %self.id, index, peer = %from,
                "a peer's copy of a damaged entry does not match it; waiting for another");
            return Ok(());
        }
        if !self.storage.repair(index, frame)? {
            tracing::warn!(node = %self.id, index, peer = %from,
                "a peer's copy of a damaged entry contradicts what is left of it; waiting for another");
            return Ok(());
        }
        self.repair = None;
        self.out.events.push(Event::EntryRepaired { index, from });
        Ok(())
    }
}

/// Whether `frame` is an intact entry `index` of `term`: header and body checksums hold and
/// the frame is exactly one entry.
fn is_intact_copy(frame: &Bytes, index: u64, term: u64) -> bool {
    let Ok(header) = EntryHeader::decode(frame) else {
        return false;
    };
    header.index == index
        && header.term == term
        && frame.len() == header.size()
        && frame
            .get(ENTRY_HEADER_LEN..)
            .is_some_and(|body| crc32c::crc32c(body) == header.body_crc)
}
