//! Safety properties checked after every step of the simulation.
//!
//! - Election safety: at most one leader per term.
//! - Log matching: two logs holding an entry with the same index and term hold the same
//!   entry (position and body checksum) after the same predecessor term; by induction their
//!   prefixes are equal. Checked on every entry when it is written.
//! - Durably committed entries never change: the first node to report an index durably
//!   committed records it; every node's entry at its own durable commit index must equal
//!   the record (with log matching, its whole prefix does), and so must every entry handed
//!   to the application. (Without `sync_flush` an entry committed in memory only may be
//!   lost when a quorum loses power; it is never applied.)
//! - Applied entries never change: what any node ever handed its application at an index is
//!   what every node hands there, whatever crashes and power cuts happen in between.
//! - Leader completeness: a new leader of term T holds every entry committed in a term
//!   before T (a stale leader of an older term, back from a pause, may lack newer ones).
//! - Durability: the highest durably committed entry is in the durable image of a quorum,
//!   so no power cut of any set of nodes can lose it.

use std::collections::HashMap;

use raft::{LogStorage, MemLog, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFacts {
    pub term: u64,
    pub pos: u64,
    pub body_crc: u32,
}

#[derive(Default)]
pub struct Checker {
    leaders: HashMap<u64, NodeId>,
    /// (index, term) -> (entry, term of the entry before it when known).
    written: HashMap<(u64, u64), (EntryFacts, Option<u64>)>,
    /// Committed entries by index; `committed[i]` is index `i + 1`.
    committed: Vec<Option<EntryFacts>>,
    /// For each committed index, the term of the node that first reported it committed: an
    /// upper bound of the term in which it was committed.
    commit_terms: Vec<u64>,
    /// What the first node to apply each index applied there.
    applied: HashMap<u64, (NodeId, EntryFacts)>,
}

pub type Violation = String;

fn facts(log: &MemLog, index: u64) -> Option<EntryFacts> {
    log.entry_meta(index)
        .map(|(term, pos, body_crc)| EntryFacts {
            term,
            pos,
            body_crc,
        })
}

impl Checker {
    pub fn leader_count(&self) -> u64 {
        self.leaders.len() as u64
    }

    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    pub fn committed_at(&self, index: u64) -> Option<EntryFacts> {
        if index == 0 {
            return None;
        }
        self.committed.get(index as usize - 1).copied().flatten()
    }

    /// `id` hands entry `index` to its application.
    pub fn applied(&mut self, id: NodeId, index: u64, entry: EntryFacts) -> Result<(), Violation> {
        match self.applied.get(&index) {
            None => {
                self.applied.insert(index, (id, entry));
                Ok(())
            }
            Some(&(first, known)) if known != entry => Err(format!(
                "applied entry changed: {id} applied {index} as {entry:?}, {first} applied it as {known:?}"
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn leader(&mut self, term: u64, id: NodeId) -> Result<(), Violation> {
        match self.leaders.insert(term, id) {
            Some(other) if other != id => Err(format!(
                "election safety: {other} and {id} both led term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// Checks entries `from..=last` of a log that changed there.
    pub fn written(&mut self, id: NodeId, log: &MemLog, from: u64) -> Result<(), Violation> {
        let from = from.max(log.first_index());
        for index in from..=log.last_index() {
            let Some(entry) = facts(log, index) else {
                return Err(format!("{id}: entry {index} unreadable"));
            };
            let prev_term = log.term(index - 1).ok().flatten();
            match self.written.get(&(index, entry.term)) {
                None => {
                    self.written.insert((index, entry.term), (entry, prev_term));
                }
                Some(&(known, known_prev)) => {
                    if known != entry {
                        return Err(format!(
                            "log matching: {id} has {index}@{} as {entry:?}, seen as {known:?}",
                            entry.term
                        ));
                    }
                    if let (Some(a), Some(b)) = (known_prev, prev_term) {
                        if a != b {
                            return Err(format!(
                                "log matching: {id} has {index}@{} after term {b}, seen after {a}",
                                entry.term
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A node reports `commit`: record new committed entries, compare known ones.
    pub fn committed(
        &mut self,
        id: NodeId,
        term: u64,
        log: &MemLog,
        commit: u64,
    ) -> Result<(), Violation> {
        if commit > log.last_index() {
            return Err(format!(
                "{id}: commit {commit} beyond its last index {}",
                log.last_index()
            ));
        }
        let first = log.first_index();
        while (self.committed.len() as u64) < commit {
            let index = self.committed.len() as u64 + 1;
            self.committed.push(if index >= first {
                facts(log, index)
            } else {
                None
            });
            self.commit_terms.push(term);
        }
        // Fill holes left by nodes that had compacted the entry.
        for index in first..=commit {
            let slot = &mut self.committed[index as usize - 1];
            if slot.is_none() {
                *slot = facts(log, index);
            } else {
                break;
            }
        }
        if commit >= first {
            let mine = facts(log, commit);
            let recorded = self.committed_at(commit);
            if recorded.is_some() && mine != recorded {
                return Err(format!(
                    "committed entry changed: {id} has {commit} as {mine:?}, committed as {recorded:?}"
                ));
            }
        }
        Ok(())
    }

    /// A new leader of `term` must hold every entry committed in an earlier term; the last
    /// such entry suffices, given log matching.
    pub fn leader_complete(&self, id: NodeId, term: u64, log: &MemLog) -> Result<(), Violation> {
        let Some(slot) = self.commit_terms.iter().rposition(|&t| t < term) else {
            return Ok(());
        };
        let last = slot as u64 + 1;
        if last < log.first_index() {
            return Ok(());
        }
        let mine = facts(log, last);
        if self.committed_at(last).is_some() && mine != self.committed_at(last) {
            return Err(format!(
                "leader completeness: new leader {id} of term {term} has {last} as {mine:?}, committed as {:?}",
                self.committed_at(last)
            ));
        }
        Ok(())
    }

    /// The highest durably committed entry must be durable on a majority of one of
    /// `voter_sets` (the memberships that may have counted it).
    pub fn durable_on_quorum<'a>(
        &self,
        logs: impl Iterator<Item = (NodeId, &'a MemLog)>,
        voter_sets: &[Vec<NodeId>],
    ) -> Result<(), Violation> {
        let last = self.committed_len();
        let Some(expected) = self.committed_at(last) else {
            return Ok(());
        };
        let mut holders = Vec::new();
        for (id, log) in logs {
            let held = if last < log.first_index() {
                true
            } else {
                log.durable_last_index() >= last && log.durable_term(last) == Some(expected.term)
            };
            if held {
                holders.push(id);
            }
        }
        let majority_of = |voters: &Vec<NodeId>| {
            voters.iter().filter(|v| holders.contains(v)).count() > voters.len() / 2
        };
        if !voter_sets.iter().any(majority_of) {
            return Err(format!(
                "durability: committed entry {last} is durable only on {holders:?}, no majority of {voter_sets:?}"
            ));
        }
        Ok(())
    }
}
