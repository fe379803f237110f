//! What a master knows of the transactions in the half queue: which are finished, which
//! open ones have been stored again (checked), how far the check scan has come and how far
//! the op queue has been read. Pure bookkeeping, no I/O: the check service fills it from the
//! half and op queues when this node becomes master, and keeps it current as it scans and
//! as transactions end.
//!
//! A transaction is named by its *origin*: the half-queue offset of its first half
//! message. Every later copy (stored again when it is checked) carries the origin in
//! `TRAN_PREPARED_QUEUE_OFFSET`, so an END_TRANSACTION naming any copy finds the same
//! transaction, and an op record (which names origins) ends it whichever copy is current.
//!
//! The invariant that keeps this small: every open transaction has a copy at or beyond the
//! scan's progress, so its origin is at least [`TransactionTable::low`] — the smaller of
//! that progress and the oldest origin that has been stored again. A transaction whose
//! origin is below `low` is finished (committed, rolled back or given up): the scan passed
//! its last copy without storing it again. Only origins from `low` on need a resolved bit,
//! one per half-queue offset, so memory follows the span of the half queue that open
//! transactions cover (at most `transactionTimeOut + transactionCheckMax ×
//! transactionCheckInterval` of half messages), not the count of transactions ever made.

use std::collections::{BTreeMap, VecDeque};

/// Op records are remembered in chunks of this many queue offsets (the greatest origin
/// each chunk names), enough to know where re-reading the op queue must start.
const OP_CHUNK: i64 = 1024;
/// Bits of the resolved set kept at most (2^31 half-queue offsets, 256 MiB): far beyond
/// what the check limits let open transactions span; a bound against a runaway table.
pub const MAX_TRACKED_OFFSETS: i64 = 1 << 31;

/// Why a transaction cannot be recorded as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("open transactions span more than {MAX_TRACKED_OFFSETS} half-queue offsets")]
pub struct TableFull;

#[derive(Debug, Clone)]
pub struct TransactionTable {
    low: i64,
    /// Word `i` holds the resolved bits of origins `base + 64 i ..`.
    resolved: VecDeque<u64>,
    base: i64,
    /// Open transactions stored again by a check: origin → newest copy.
    reput: BTreeMap<i64, i64>,
    scanned_below: i64,
    /// Op-queue chunk number → greatest origin its records name.
    op_chunks: BTreeMap<i64, i64>,
    op_read_below: i64,
    /// Where reading the op queue started when the table was built: progress never goes
    /// back before it.
    op_floor: i64,
}

impl TransactionTable {
    /// A table whose scan resumes at half-queue offset `scanned_below` and whose op queue
    /// is read from `op_read_below` (both as recorded by the previous master).
    pub fn new(scanned_below: i64, op_read_below: i64) -> Self {
        let scanned_below = scanned_below.max(0);
        let op_read_below = op_read_below.max(0);
        TransactionTable {
            low: scanned_below,
            resolved: VecDeque::new(),
            base: scanned_below - scanned_below.rem_euclid(64),
            reput: BTreeMap::new(),
            scanned_below,
            op_chunks: BTreeMap::new(),
            op_read_below,
            op_floor: op_read_below,
        }
    }

    /// Origins below this are finished.
    pub fn low(&self) -> i64 {
        self.low
    }

    /// The scan's progress: every copy below it has been dealt with.
    pub fn scanned_below(&self) -> i64 {
        self.scanned_below
    }

    /// The op queue has been read up to here.
    pub fn op_read_below(&self) -> i64 {
        self.op_read_below
    }

    /// Open transactions that have been checked at least once.
    pub fn checked_open(&self) -> usize {
        self.reput.len()
    }

    /// Whether the transaction that began at `origin` is over.
    pub fn is_finished(&self, origin: i64) -> bool {
        origin < self.low || self.bit(origin)
    }

    /// Whether the copy at `copy` has been replaced by a newer copy of its transaction.
    pub fn is_superseded(&self, copy: i64, origin: i64) -> bool {
        self.reput.get(&origin).is_some_and(|newest| *newest > copy)
    }

    /// A copy of an open transaction was stored at `copy`.
    pub fn note_copy(&mut self, copy: i64, origin: i64) {
        if copy <= origin || self.is_finished(origin) {
            return;
        }
        let newest = self.reput.entry(origin).or_insert(copy);
        *newest = (*newest).max(copy);
    }

    /// The transaction that began at `origin` ended. Returns whether it was open.
    pub fn resolve(&mut self, origin: i64) -> Result<bool, TableFull> {
        if self.is_finished(origin) {
            return Ok(false);
        }
        self.set_bit(origin)?;
        self.reput.remove(&origin);
        self.raise_low();
        Ok(true)
    }

    /// An op record at op-queue offset `op_offset` named `origins` as ended.
    pub fn note_op(&mut self, op_offset: i64, origins: &[i64]) -> Result<(), TableFull> {
        for &origin in origins {
            self.resolve(origin)?;
        }
        if let Some(&greatest) = origins.iter().max() {
            let chunk = self
                .op_chunks
                .entry(op_offset / OP_CHUNK)
                .or_insert(greatest);
            *chunk = (*chunk).max(greatest);
        }
        self.op_read_below = self.op_read_below.max(op_offset + 1);
        self.drop_spent_chunks();
        Ok(())
    }

    /// The scan is done with the copy at `copy` (of the transaction begun at `origin`).
    pub fn pass(&mut self, copy: i64, origin: i64) {
        if self.reput.get(&origin) == Some(&copy) {
            self.reput.remove(&origin);
        }
        self.scanned_below = self.scanned_below.max(copy + 1);
        self.raise_low();
    }

    /// The scan moves to `offset` over entries that hold no message (holes, or removed by
    /// retention).
    pub fn skip_to(&mut self, offset: i64) {
        self.scanned_below = self.scanned_below.max(offset);
        self.raise_low();
    }

    /// Where a new master must start reading the op queue: no op record below it names a
    /// transaction that could still be open.
    pub fn op_progress(&self) -> i64 {
        let first_needed = self
            .op_chunks
            .iter()
            .find(|(_, greatest)| **greatest >= self.low)
            .map_or(self.op_read_below, |(chunk, _)| chunk * OP_CHUNK);
        first_needed.min(self.op_read_below).max(self.op_floor)
    }

    fn raise_low(&mut self) {
        let oldest_reput = self.reput.keys().next().copied().unwrap_or(i64::MAX);
        let low = self.scanned_below.min(oldest_reput);
        if low <= self.low {
            return;
        }
        self.low = low;
        while self.base + 64 <= self.low && !self.resolved.is_empty() {
            self.resolved.pop_front();
            self.base += 64;
        }
        if self.resolved.is_empty() {
            self.base = self.low - self.low.rem_euclid(64);
        }
        self.drop_spent_chunks();
    }

    fn drop_spent_chunks(&mut self) {
        let low = self.low;
        self.op_chunks.retain(|_, greatest| *greatest >= low);
    }

    fn bit(&self, origin: i64) -> bool {
        let Ok(index) = usize::try_from(origin - self.base) else {
            return false;
        };
        self.resolved
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    fn set_bit(&mut self, origin: i64) -> Result<(), TableFull> {
        let span = origin - self.base;
        if !(0..MAX_TRACKED_OFFSETS).contains(&span) {
            return Err(TableFull);
        }
        let index = span as usize;
        let word = index / 64;
        if self.resolved.len() <= word {
            self.resolved.resize(word + 1, 0);
        }
        if let Some(bits) = self.resolved.get_mut(word) {
            *bits |= 1 << (index % 64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_half_messages_are_open_until_resolved() {
        let mut table = TransactionTable::new(0, 0);
        assert!(!table.is_finished(0) && !table.is_finished(5));
        assert_eq!(table.resolve(5), Ok(true));
        assert!(table.is_finished(5));
        assert_eq!(
            table.resolve(5),
            Ok(false),
            "a second end finds it finished"
        );
        assert!(!table.is_finished(4));
    }

    #[test]
    fn a_checked_transaction_keeps_its_origin_open_across_copies() {
        let mut table = TransactionTable::new(0, 0);
        // Copy of origin 0 stored again at 3 when checked; the scan passes 0..=2.
        table.note_copy(3, 0);
        table.pass(0, 0);
        table.pass(1, 1);
        table.pass(2, 2);
        assert_eq!(table.low(), 0, "origin 0 is still open");
        assert!(!table.is_finished(0));
        assert!(table.is_superseded(0, 0) && !table.is_superseded(3, 0));
        // Resolved through the copy: finished, and low moves on to the scan's progress.
        assert_eq!(table.resolve(0), Ok(true));
        assert_eq!(table.low(), 3);
        assert!(table.is_finished(0) && table.is_finished(1));
        // Passing the finished copy later changes nothing.
        table.pass(3, 0);
        assert_eq!(table.low(), 4);
    }

    #[test]
    fn passing_the_newest_copy_releases_it() {
        let mut table = TransactionTable::new(10, 0);
        table.note_copy(12, 10);
        table.pass(10, 10);
        table.pass(11, 11);
        assert_eq!(table.low(), 10);
        // Scanning the copy at 12: checked again, stored at 13 first, then passed.
        table.note_copy(13, 10);
        table.pass(12, 10);
        assert_eq!(table.low(), 10);
        assert_eq!(table.checked_open(), 1);
        // Given up: the scan passes its copy without storing it again.
        table.pass(13, 10);
        assert_eq!(table.low(), 14);
        assert!(table.is_finished(10));
    }

    #[test]
    fn copies_of_finished_transactions_are_ignored() {
        let mut table = TransactionTable::new(0, 0);
        table.resolve(2).unwrap();
        table.note_copy(7, 2);
        assert_eq!(table.checked_open(), 0);
        // An origin claimed above its copy (a forged property) is not a transaction.
        table.note_copy(4, 9);
        assert_eq!(table.checked_open(), 0);
    }

    #[test]
    fn op_progress_waits_for_records_naming_open_transactions() {
        let mut table = TransactionTable::new(0, 0);
        table.note_copy(5, 1);
        for offset in 0..5 {
            table.pass(offset, offset);
        }
        table.pass(5, 1);
        table.note_copy(6, 1);
        // Op records: 0 ends origin 0 (already passed), 2000 ends origin 1 (open).
        table.note_op(0, &[0]).unwrap();
        assert_eq!(table.op_progress(), 1, "nothing open is named below 1");
        table.note_op(2000, &[1]).unwrap();
        assert!(table.is_finished(1));
        assert_eq!(table.op_progress(), 2001);
        // A record naming an origin at or above low keeps progress at its chunk.
        let mut table = TransactionTable::new(0, 0);
        table.note_op(3000, &[40]).unwrap();
        assert_eq!(
            table.op_progress(),
            2048,
            "the chunk holding it is read again"
        );
        table.note_copy(50, 45);
        table.pass(44, 44);
        assert_eq!(table.low(), 45);
        assert_eq!(table.op_progress(), 3001);
    }

    #[test]
    fn op_progress_never_goes_below_where_reading_began() {
        let table = TransactionTable::new(100, 700);
        assert_eq!(table.op_progress(), 700);
        let mut table = TransactionTable::new(100, 700);
        table.note_op(900, &[150]).unwrap();
        assert_eq!(table.op_progress(), 700);
    }

    #[test]
    fn bits_below_low_are_dropped() {
        let mut table = TransactionTable::new(0, 0);
        for origin in 0..1000 {
            table.resolve(origin).unwrap();
            table.pass(origin, origin);
        }
        assert_eq!(table.low(), 1000);
        assert!(
            table.resolved.len() <= 2,
            "{} words kept",
            table.resolved.len()
        );
        assert!(table.is_finished(999) && !table.is_finished(1000));
        table.resolve(1003).unwrap();
        assert!(table.is_finished(1003) && !table.is_finished(1002));
    }

    #[test]
    fn a_runaway_span_is_refused() {
        let mut table = TransactionTable::new(0, 0);
        assert_eq!(table.resolve(MAX_TRACKED_OFFSETS + 5), Err(TableFull));
        assert!(!table.is_finished(MAX_TRACKED_OFFSETS + 5));
    }
}
