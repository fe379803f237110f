//! Transactional messages, as RocketMQ 5's broker keeps them, over the remoting protocol.
//!
//! A transactional send (`TRAN_MSG=true`, or a prepared SYSFLAG) is stored as a *half
//! message* in [`TRANS_HALF_TOPIC`] queue 0, its real topic and queue kept in
//! `REAL_TOPIC` / `REAL_QID`, where no consumer sees it. END_TRANSACTION (37) — from the
//! producer after its local transaction, or answering a check — commits it (the message is
//! stored again in its real topic, as sent) or rolls it back; either way an *op record* in
//! [`TRANS_OP_HALF_TOPIC`] marks it ended. On a master, the check service asks a live
//! producer of the group (CHECK_TRANSACTION_STATE, 39) about half messages still open after
//! `transactionTimeOut`, every `transactionCheckInterval`, at most `transactionCheckMax`
//! times; then the half message is given up into [`TRANS_CHECK_MAX_TIME_TOPIC`].
//!
//! Everything lives in the CommitLog: half messages, their copies, op records and the
//! check progress (consumer offsets of [`PROGRESS_GROUP`], replicated like any offset). In
//! a broker group a new master rebuilds its table from them and carries on.
//!
//! - [`bridge`]: the records of a transaction's life and the check request.
//! - [`table`]: which transactions are finished, as a master knows it (pure bookkeeping).
//! - [`state`]: the live table a master shares between END_TRANSACTION and the check
//!   service, and the claims that let one writer at a time end or copy a transaction.
//! - [`progress`]: the recorded scan and op-queue progress.
//! - [`check`]: the check service ([`check::run`]): rebuilding the table on a new master,
//!   the periodic scan of the half queue, check-backs and giving up.
//! - [`end`]: committing or rolling back one transaction (END_TRANSACTION's work).

pub mod bridge;
pub mod check;
pub mod end;
pub mod progress;
pub mod state;
pub mod table;

pub use message::topic::{TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};
pub use progress::PROGRESS_GROUP;
pub use state::Transactions;

use std::time::Duration;

use bytes::Bytes;

use crate::context::BrokerContext;

/// How long a record just stored may take to become readable by CommitLog offset.
const RECORD_WAIT: Duration = Duration::from_secs(3);

/// The tag of an op record that ends a transaction (RocketMQ's `REMOVE_TAG`).
pub const OP_REMOVE_TAG: &str = "d";
/// What follows each half-queue offset in an op record's body.
pub const OP_SEPARATOR: char = ',';

/// Which mastership this node holds, if any: `Some(term)` while it may write transaction
/// records (a standalone broker: always, term 0; a group member: while it is the writable
/// master, with its raft term). A change of term means another master may have written in
/// between, so what this node knew of the half queue is stale.
pub fn mastership(ctx: &BrokerContext) -> Option<u64> {
    if !ctx.role.is_master() || !ctx.is_writeable() {
        return None;
    }
    match &ctx.group {
        None => Some(0),
        Some(member) => {
            let status = member.store.status();
            status.writable.then_some(status.term)
        }
    }
}

/// The record at CommitLog offset `phys_offset`, waiting (up to [`RECORD_WAIT`]) for one
/// whose put was just acknowledged (see [`crate::store_facade::MessageStore::message_after_put`]):
/// a producer's END_TRANSACTION right after its half message, or a check naming the copy
/// just stored, falls in that moment.
pub async fn record_at(ctx: &BrokerContext, phys_offset: i64) -> Option<Bytes> {
    ctx.store.message_after_put(phys_offset, RECORD_WAIT).await
}
