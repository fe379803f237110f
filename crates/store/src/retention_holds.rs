//! What retention must keep: positions of the CommitLog that services of the broker will
//! still read, by holder.

use std::collections::BTreeMap;

use parking_lot::Mutex;

/// CommitLog positions that services of the broker will still read, by holder: retention
/// removes no segment holding any of them, whatever its age or the disk's pressure. A timer
/// message waits in the CommitLog for up to `timerMaxDelaySec` (3 days) before it is read
/// and delivered, which can be longer than `fileReservedTime`; removing its segment would
/// lose an acknowledged message.
#[derive(Debug, Default)]
pub(crate) struct RetentionHolds {
    lowest_by_holder: Mutex<BTreeMap<&'static str, i64>>,
}

impl RetentionHolds {
    /// `holder` needs the CommitLog from `from` on (`None`: nothing any more).
    pub(crate) fn set(&self, holder: &'static str, from: Option<i64>) {
        let mut holds = self.lowest_by_holder.lock();
        match from {
            Some(pos) => holds.insert(holder, pos),
            None => holds.remove(holder),
        };
    }

    /// The lowest position held, and by whom.
    pub(crate) fn lowest(&self) -> Option<(&'static str, i64)> {
        self.lowest_by_holder
            .lock()
            .iter()
            .min_by_key(|(_, pos)| **pos)
            .map(|(holder, pos)| (*holder, *pos))
    }
}
