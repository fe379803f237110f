//! The table a master shares between END_TRANSACTION and the check service, and claims.
//!
//! Ending a transaction and copying it for a check each write records and then update the
//! table; two writers on one transaction at once could deliver a commit twice, or copy a
//! transaction that a commit is ending. A writer therefore first *claims* the transaction's
//! origin: while a claim is held nobody else writes for it, and a claim is only granted
//! for a transaction the table says is open. The table belongs to one mastership (term):
//! when the term changes it is dropped, and claims of the old term update nothing.

use std::collections::HashSet;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::table::{TableFull, TransactionTable};

/// Claims held at once; beyond this, writers are refused as busy.
pub const MAX_CLAIMS: usize = 65_536;

/// Why a transaction cannot be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the transaction state is not loaded on this broker (not the master, or loading)")]
    NotReady,
    #[error("the transaction has already ended")]
    Finished,
    #[error("the transaction is being ended or checked by another request")]
    Busy,
}

struct Installed {
    term: u64,
    table: TransactionTable,
}

#[derive(Default)]
struct LiveTable {
    installed: Option<Installed>,
    claimed: HashSet<i64>,
}

/// The live table, when this node is a master that has loaded it.
#[derive(Default)]
pub struct Transactions {
    inner: Mutex<LiveTable>,
    /// Fired when a claim is released or a table installed.
    changed: Notify,
}

impl Transactions {
    /// Makes `table` the state of mastership `term`.
    pub fn install(&self, term: u64, table: TransactionTable) {
        let mut inner = self.inner.lock();
        inner.installed = Some(Installed { term, table });
        inner.claimed.clear();
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Forgets the table (this node stopped being master, or its term changed).
    pub fn uninstall(&self) {
        let mut inner = self.inner.lock();
        inner.installed = None;
        inner.claimed.clear();
        drop(inner);
        self.changed.notify_waiters();
    }

    /// The term of the installed table.
    pub fn term(&self) -> Option<u64> {
        self.inner.lock().installed.as_ref().map(|i| i.term)
    }

    /// Runs `f` on the table of `term`; `None` when no table of that term is installed.
    pub fn with_table<R>(
        &self,
        term: u64,
        f: impl FnOnce(&mut TransactionTable) -> R,
    ) -> Option<R> {
        let mut inner = self.inner.lock();
        match inner.installed.as_mut() {
            Some(installed) if installed.term == term => Some(f(&mut installed.table)),
            _ => None,
        }
    }

    /// Whether no claim is held (the table then reflects every record written).
    pub fn is_quiet(&self) -> bool {
        self.inner.lock().claimed.is_empty()
    }

    /// The table's `low` and op progress, taken while no claim is held (every op record
    /// written is then in the table); `None` while a writer is busy or no table of `term`
    /// is installed.
    pub fn quiet_progress(&self, term: u64) -> Option<(i64, i64)> {
        let inner = self.inner.lock();
        if !inner.claimed.is_empty() {
            return None;
        }
        match &inner.installed {
            Some(installed) if installed.term == term => {
                Some((installed.table.low(), installed.table.op_progress()))
            }
            _ => None,
        }
    }

    /// Claims the open transaction begun at `origin` under mastership `term`, without
    /// waiting.
    pub fn try_claim(&self, term: u64, origin: i64) -> Result<Claim<'_>, ClaimError> {
        let mut inner = self.inner.lock();
        let LiveTable { installed, claimed } = &mut *inner;
        let table = match installed {
            Some(installed) if installed.term == term => &installed.table,
            _ => return Err(ClaimError::NotReady),
        };
        if table.is_finished(origin) {
            return Err(ClaimError::Finished);
        }
        if claimed.contains(&origin) || claimed.len() >= MAX_CLAIMS {
            return Err(ClaimError::Busy);
        }
        claimed.insert(origin);
        Ok(Claim {
            state: self,
            term,
            origin,
        })
    }

    /// [`Transactions::try_claim`], waiting up to `wait` while the table is loading or
    /// another writer holds the transaction. `term` is asked again after every wake-up, so
    /// a table installed meanwhile is used.
    pub async fn claim(
        &self,
        term: impl Fn() -> Option<u64>,
        origin: i64,
        wait: Duration,
    ) -> Result<Claim<'_>, ClaimError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let last = match term() {
                Some(term) => match self.try_claim(term, origin) {
                    Ok(claim) => return Ok(claim),
                    Err(ClaimError::Finished) => return Err(ClaimError::Finished),
                    Err(other) => other,
                },
                None => ClaimError::NotReady,
            };
            // Woken by a release or an install; the timeout also covers a mastership that
            // arrives without either (the check service installs within its own loop).
            let step = Duration::from_millis(100);
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(last);
            }
            let _ = tokio::time::timeout((deadline - now).min(step), notified).await;
        }
    }

    fn release(&self, term: u64, origin: i64) {
        let mut inner = self.inner.lock();
        // A claim of an older table was cleared when the new one was installed; the same
        // origin may be claimed again under the new term.
        if inner.installed.as_ref().is_some_and(|i| i.term == term) {
            inner.claimed.remove(&origin);
        }
        drop(inner);
        self.changed.notify_waiters();
    }
}

/// The right to write records for one transaction; released when dropped.
pub struct Claim<'a> {
    state: &'a Transactions,
    term: u64,
    origin: i64,
}

impl Claim<'_> {
    pub fn origin(&self) -> i64 {
        self.origin
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    /// The transaction ended with the op record stored at op-queue offset `op_offset`.
    pub fn ended(self, op_offset: i64) -> Result<(), TableFull> {
        let origin = self.origin;
        self.state
            .with_table(self.term, |table| table.note_op(op_offset, &[origin]))
            .unwrap_or(Ok(()))
    }

    /// A copy of the transaction stored at half-queue offset `copy` replaces the one at
    /// `scanned`, which the scan is done with.
    pub fn copied(self, scanned: i64, copy: i64) {
        let origin = self.origin;
        self.state.with_table(self.term, |table| {
            table.note_copy(copy, origin);
            table.pass(scanned, origin);
        });
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.state.release(self.term, self.origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_per_transaction_and_only_while_open() {
        let state = Transactions::default();
        assert_eq!(state.try_claim(1, 5).err(), Some(ClaimError::NotReady));
        state.install(1, TransactionTable::new(0, 0));
        assert_eq!(
            state.try_claim(2, 5).err(),
            Some(ClaimError::NotReady),
            "another term"
        );
        let claim = state.try_claim(1, 5).unwrap();
        assert_eq!(state.try_claim(1, 5).err(), Some(ClaimError::Busy));
        assert!(state.try_claim(1, 6).is_ok(), "other transactions are free");
        claim.ended(0).unwrap();
        assert_eq!(state.try_claim(1, 5).err(), Some(ClaimError::Finished));
        assert!(state.is_quiet());
    }

    #[test]
    fn a_claim_of_an_old_term_changes_nothing() {
        let state = Transactions::default();
        state.install(1, TransactionTable::new(0, 0));
        let claim = state.try_claim(1, 5).unwrap();
        state.install(2, TransactionTable::new(0, 0));
        let new_claim = state.try_claim(2, 5).unwrap();
        claim.ended(0).unwrap();
        assert_eq!(
            state.try_claim(2, 5).err(),
            Some(ClaimError::Busy),
            "still held"
        );
        drop(new_claim);
        assert!(
            state.try_claim(2, 5).is_ok(),
            "the new term's table still has it open"
        );
    }

    #[tokio::test]
    async fn a_waiting_claim_gets_the_transaction_once_released() {
        let state = std::sync::Arc::new(Transactions::default());
        state.install(1, TransactionTable::new(0, 0));
        let held = state.try_claim(1, 5).unwrap();
        let waiter = {
            let state = std::sync::Arc::clone(&state);
            tokio::spawn(async move {
                state
                    .claim(|| Some(1), 5, Duration::from_secs(5))
                    .await
                    .map(|claim| claim.origin())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(5));
        let _held = state.try_claim(1, 6).unwrap();
        let refused = state.claim(|| Some(1), 6, Duration::from_millis(200)).await;
        assert_eq!(refused.err(), Some(ClaimError::Busy));
    }
}
