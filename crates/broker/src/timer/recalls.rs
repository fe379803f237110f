//! The recall markers a member has loaded, by slot: what the timer service passes over.
//! Held in memory, bounded by [`MAX_RECALLS`] (recalls are rare; each costs a few dozen
//! bytes).

use std::collections::{BTreeMap, HashSet};

/// Recall markers held; beyond it new recalls are refused.
pub const MAX_RECALLS: usize = 1_000_000;

/// The recall markers the timer service loaded, by slot. Shared with RECALL_MESSAGE so it
/// can refuse recalls once [`MAX_RECALLS`] are held.
#[derive(Debug, Default)]
pub struct Recalls {
    by_slot: BTreeMap<i64, HashSet<String>>,
    count: usize,
}

impl Recalls {
    pub(super) fn insert(&mut self, slot_ms: i64, key: String) {
        if self.by_slot.entry(slot_ms).or_default().insert(key) {
            self.count += 1;
        }
    }

    pub(super) fn contains(&self, slot_ms: i64, key: &str) -> bool {
        self.by_slot
            .get(&slot_ms)
            .is_some_and(|keys| keys.contains(key))
    }

    pub(super) fn forget_before(&mut self, slot_ms: i64) {
        let kept = self.by_slot.split_off(&slot_ms);
        let forgotten: usize = self.by_slot.values().map(HashSet::len).sum();
        self.count -= forgotten;
        self.by_slot = kept;
    }

    pub fn is_full(&self) -> bool {
        self.count >= MAX_RECALLS
    }
}
