//! The check service: on a master, it loads the transaction table from the half and op
//! queues (where the recorded progress says to start), then every
//! `transactionCheckInterval` scans the half queue from where it stopped, as RocketMQ's
//! `TransactionalMessageCheckService` does:
//!
//! - a copy whose transaction ended, or which a later copy replaced, is passed over;
//! - a copy stored since the round began ends the round (it is next round's work);
//! - a copy checked `transactionCheckMax` times is given up: kept in
//!   `TRANS_CHECK_MAX_TIME_TOPIC` and ended with an op record;
//! - a copy still within its `CHECK_IMMUNITY_TIME_IN_SECONDS` is stored again unchanged so
//!   the scan can go on past it;
//! - without that property, a copy younger than `transactionTimeOut` ends the round
//!   (what follows is younger still);
//! - anything else is stored again with its check count raised, and a live producer of its
//!   group is asked (CHECK_TRANSACTION_STATE, one way) about the new copy. Its answer comes
//!   back as END_TRANSACTION with `fromTransactionCheck`.
//!
//! Storing the copy before asking means the scan's progress can move on and a lost answer
//! costs one more check, never a lost transaction. After each round (and whenever no
//! writer is busy) the progress is recorded for the next master.

use std::sync::Arc;
use std::time::Duration;

use message::properties::keys;
use message::MessageView;
use remoting::body::perm;
use store::{AcceptAll, StoreReader};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::bridge::{self, StoredCopy};
use super::state::{Claim, ClaimError};
use super::table::{TableFull, TransactionTable};
use super::{
    mastership, progress, record_at, TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::store_facade::RecordBatch;

/// How often the service looks at its role and its progress.
pub const LOOP_PAUSE: Duration = Duration::from_millis(100);
/// Messages read from a queue at a time.
const READ_BATCH: usize = 32;
/// Bytes read from a queue at a time (at least one message is always read).
const READ_MAX_BYTES: usize = 1024 * 1024;
/// Records one round writes at most; the rest wait for the next round.
const MAX_WRITES_PER_ROUND: usize = 2048;
/// How long sending one check may take.
const CHECK_SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs until the broker shuts down. Only a master checks; elsewhere it idles.
pub async fn run(ctx: Arc<BrokerContext>) {
    let mut service = CheckService {
        ctx: Arc::clone(&ctx),
        loaded: None,
        next_round: Instant::now(),
        recorded: None,
    };
    loop {
        service.tick().await;
        tokio::select! {
            _ = tokio::time::sleep(LOOP_PAUSE) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// Why the table could not be loaded (tried again on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Table(#[from] TableFull),
    #[error("the broker stopped being master while loading")]
    NotMaster,
}

struct CheckService {
    ctx: Arc<BrokerContext>,
    /// The mastership whose table is installed.
    loaded: Option<u64>,
    next_round: Instant,
    /// The progress last recorded by this service.
    recorded: Option<(i64, i64)>,
}

/// What the scan does after one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Next,
    Wrote,
    Stop,
}

impl CheckService {
    async fn tick(&mut self) {
        let ctx = &self.ctx;
        let term = mastership(ctx);
        if term != self.loaded {
            if self.loaded.take().is_some() {
                ctx.transactions.uninstall();
                info!("transaction check service idle (no longer master)");
            }
            let Some(term) = term else { return };
            match load(ctx, term).await {
                Ok(table) if mastership(ctx) == Some(term) => {
                    info!(
                        term,
                        low = table.low(),
                        checked_open = table.checked_open(),
                        op_read_below = table.op_read_below(),
                        "transaction table loaded; checking half messages"
                    );
                    ctx.transactions.install(term, table);
                    self.loaded = Some(term);
                    self.recorded = None;
                    self.next_round = Instant::now() + ctx.config.transaction_check_interval;
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "transaction table not loaded; trying again"),
            }
            return;
        }
        let Some(term) = self.loaded else { return };
        if Instant::now() >= self.next_round {
            self.round(term).await;
            self.next_round = Instant::now() + ctx.config.transaction_check_interval;
        }
        self.record_progress(term).await;
    }

    async fn record_progress(&mut self, term: u64) {
        let Some(now) = self.ctx.transactions.quiet_progress(term) else {
            return;
        };
        if self.recorded == Some(now) {
            return;
        }
        match progress::record(&self.ctx, now.0, now.1).await {
            Ok(()) => self.recorded = Some(now),
            Err(e) => debug!(error = %e, "transaction progress not recorded yet"),
        }
    }

    /// One scan of the half queue.
    async fn round(&self, term: u64) {
        let ctx = &self.ctx;
        let reader = ctx.store.reader();
        let round_start_ms = now_ms();
        let mut writes = 0;
        'scan: loop {
            if mastership(ctx) != Some(term) {
                break;
            }
            let Some(from) = ctx.transactions.with_table(term, |t| t.scanned_below()) else {
                break;
            };
            let max_offset = reader.max_offset(TRANS_HALF_TOPIC, 0);
            if from >= max_offset {
                break;
            }
            let read = reader.get_messages(
                TRANS_HALF_TOPIC,
                0,
                from,
                READ_BATCH,
                Some(READ_MAX_BYTES),
                &AcceptAll,
            );
            if read.messages.is_empty() {
                // Holes, or entries retention removed: go on where the store says.
                if read.next_begin_offset > from {
                    let to = read.next_begin_offset.min(max_offset);
                    ctx.transactions.with_table(term, |t| t.skip_to(to));
                    continue;
                }
                break;
            }
            for (record, &offset) in read.messages.iter().zip(&read.queue_offsets) {
                match self.visit(term, record, offset, round_start_ms).await {
                    Step::Next => {}
                    Step::Wrote => {
                        writes += 1;
                        if writes >= MAX_WRITES_PER_ROUND {
                            break 'scan;
                        }
                    }
                    Step::Stop => break 'scan,
                }
            }
        }
    }

    /// Deals with the copy at half-queue offset `offset`.
    async fn visit(&self, term: u64, record: &[u8], offset: i64, round_start_ms: i64) -> Step {
        let ctx = &self.ctx;
        let pass = |origin: i64| {
            ctx.transactions
                .with_table(term, |t| t.pass(offset, origin))
                .map_or(Step::Stop, |()| Step::Next)
        };
        let view = match MessageView::parse(record) {
            Ok(view) => view,
            Err(e) => {
                error!(offset, error = %e, "unreadable half message passed over");
                return pass(offset);
            }
        };
        let origin = bridge::origin_of(&view, offset);
        let settled = ctx.transactions.with_table(term, |t| {
            t.is_finished(origin) || t.is_superseded(offset, origin)
        });
        match settled {
            None => return Step::Stop,
            Some(true) => return pass(origin),
            Some(false) => {}
        }
        if view.store_timestamp_ms() >= round_start_ms {
            return Step::Stop;
        }
        let claim = match ctx.transactions.try_claim(term, origin) {
            Ok(claim) => claim,
            Err(ClaimError::Finished) => return pass(origin),
            // Being ended right now: looked at again next round.
            Err(ClaimError::Busy | ClaimError::NotReady) => return Step::Stop,
        };
        let config = &ctx.config;
        let check_times = bridge::check_times(&view);
        if check_times >= config.transaction_check_max {
            return self.give_up(claim, &view, offset).await;
        }
        let timeout_ms = config.transaction_timeout.as_millis() as i64;
        let age_ms = now_ms() - view.born_timestamp_ms();
        match immunity_ms(&view, timeout_ms) {
            Some(immunity) if age_ms < immunity => self.copy(claim, &view, offset, None).await,
            None if (0..timeout_ms).contains(&age_ms) => Step::Stop,
            _ => self.copy(claim, &view, offset, Some(check_times + 1)).await,
        }
    }

    /// Stores the copy at `offset` again, tied to its transaction; with `check_times`, a
    /// check: the new copy counts it and its producer is asked.
    async fn copy(
        &self,
        claim: Claim<'_>,
        view: &MessageView<'_>,
        offset: i64,
        check_times: Option<u32>,
    ) -> Step {
        let ctx = &self.ctx;
        let mut batch = RecordBatch::with_capacity(view.body().len() + 1024, 1);
        if let Err(e) = bridge::append_copy(
            &mut batch,
            view,
            claim.origin(),
            check_times,
            ctx.store_host,
        ) {
            // The properties a copy adds do not fit (the message was sent close to the
            // limit): it can never be checked, so it is given up now rather than lost.
            error!(offset, error = %e, "half message cannot be stored again; given up");
            return self.give_up(claim, view, offset).await;
        }
        let stored = match ctx.store.put(batch).await {
            Ok(outcome) => match outcome.messages.first() {
                Some(stored) => StoredCopy {
                    queue_offset: stored.queue_offset,
                    phys_offset: stored.phys_offset,
                    store_timestamp_ms: stored.store_timestamp_ms,
                },
                None => return Step::Stop,
            },
            Err(e) => {
                warn!(offset, error = %e, "half message not stored again; next round tries");
                return Step::Stop;
            }
        };
        ctx.stats.add_put(1);
        let origin = claim.origin();
        claim.copied(offset, stored.queue_offset);
        if check_times.is_some() {
            let ctx = Arc::clone(ctx);
            tokio::spawn(async move { send_check(&ctx, origin, stored).await });
        }
        Step::Wrote
    }

    /// The copy at `offset` was checked `transactionCheckMax` times: it is kept in
    /// `TRANS_CHECK_MAX_TIME_TOPIC` and its transaction ended.
    async fn give_up(&self, claim: Claim<'_>, view: &MessageView<'_>, offset: i64) -> Step {
        let ctx = &self.ctx;
        let origin = claim.origin();
        let term = claim.term();
        // As RocketMQ does, the topic gets a config (one queue, read-write) the first time,
        // so operators can read what was given up with ordinary tools.
        if let Err(e) = ctx
            .topic_or_create(TRANS_CHECK_MAX_TIME_TOPIC, 1, perm::READ_WRITE)
            .await
        {
            warn!(error = %e, "TRANS_CHECK_MAX_TIME_TOPIC not created; giving up waits");
            return Step::Stop;
        }
        let mut batch = RecordBatch::with_capacity(view.body().len() + 1024, 2);
        let built = bridge::append_given_up(&mut batch, view, ctx.store_host).and_then(|()| {
            bridge::append_op(
                &mut batch,
                origin,
                view.uniq_key().unwrap_or_default(),
                now_ms(),
                ctx.store_host,
            )
        });
        if let Err(e) = built {
            error!(offset, error = %e, "half message cannot be given up; passed over");
            ctx.transactions
                .with_table(term, |t| t.pass(offset, origin));
            return Step::Next;
        }
        match ctx.store.put(batch).await {
            Ok(outcome) => {
                ctx.stats.add_put(2);
                warn!(
                    origin,
                    msg_id = view.uniq_key().unwrap_or_default(),
                    producer_group = view.property(keys::PGROUP).unwrap_or_default(),
                    checks = ctx.config.transaction_check_max,
                    "transaction still unknown after its last check; given up into TRANS_CHECK_MAX_TIME_TOPIC"
                );
                let op_offset = outcome.messages.last().map_or(0, |op| op.queue_offset);
                if let Err(e) = claim.ended(op_offset) {
                    error!(origin, error = %e, "given-up transaction not noted");
                }
                ctx.transactions
                    .with_table(term, |t| t.pass(offset, origin));
                Step::Wrote
            }
            Err(e) => {
                warn!(offset, error = %e, "given-up transaction not stored; next round tries");
                Step::Stop
            }
        }
    }
}

/// `CHECK_IMMUNITY_TIME_IN_SECONDS` in milliseconds when the message has it (a value that
/// is not a number of seconds means `transactionTimeOut`, as RocketMQ reads it).
fn immunity_ms(view: &MessageView<'_>, timeout_ms: i64) -> Option<i64> {
    let text = view.property(keys::CHECK_IMMUNITY_TIME_IN_SECONDS)?;
    Some(
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds >= 0)
            .map_or(timeout_ms, |seconds| seconds.saturating_mul(1000)),
    )
}

/// Asks a live producer of the copy's group about it (one way; the answer is an
/// END_TRANSACTION). Without one the check counts all the same, as in RocketMQ.
async fn send_check(ctx: &BrokerContext, origin: i64, stored: StoredCopy) {
    let Some(record) = record_at(ctx, stored.phys_offset).await else {
        warn!(origin, "stored copy not readable; check not sent");
        return;
    };
    let view = match MessageView::parse(&record) {
        Ok(view) => view,
        Err(e) => return warn!(origin, error = %e, "stored copy unreadable; check not sent"),
    };
    let group = view.property(keys::PGROUP).unwrap_or_default();
    let request =
        match bridge::check_request(&view, stored, &ctx.config.broker_name, ctx.store_host) {
            Ok(request) => request,
            Err(e) => return error!(origin, error = %e, "check request not built"),
        };
    let Some(channel) = ctx.producers.available_channel(group) else {
        // A 5.x producer gets it over its Telemetry stream.
        if !ctx.grpc_producers.ask(group, &request) {
            info!(
                origin,
                producer_group = group,
                "no producer of the group connected; check not sent"
            );
        }
        return;
    };
    debug!(origin, producer_group = group, client = %channel.client_id, "checking transaction");
    if let Err(e) = channel
        .conn
        .invoke_oneway(request, CHECK_SEND_TIMEOUT)
        .await
    {
        debug!(origin, error = %e, "check not delivered; the next round asks again");
    }
}

/// Builds the table of mastership `term` from the recorded progress: op records from the
/// op progress on end transactions, and copies from `low` on say which open ones were
/// checked (and so which older copies are replaced).
pub async fn load(ctx: &BrokerContext, term: u64) -> Result<TransactionTable, LoadError> {
    let reader = ctx.store.reader();
    let (low, op_progress) = progress::recorded(ctx);
    let clamp = |recorded: Option<i64>, topic: &str| {
        let min = reader.min_offset(topic, 0);
        let max = reader.max_offset(topic, 0);
        recorded.unwrap_or(min).clamp(min, max.max(min))
    };
    let low = clamp(low, TRANS_HALF_TOPIC);
    let op_from = clamp(op_progress, TRANS_OP_HALF_TOPIC);
    let mut table = TransactionTable::new(low, op_from);
    let mut failed = None;
    read_queue(
        ctx,
        reader,
        TRANS_OP_HALF_TOPIC,
        op_from,
        term,
        |offset, view| {
            if failed.is_none() {
                if let Err(e) = table.note_op(offset, &bridge::op_origins(view)) {
                    failed = Some(e);
                }
            }
        },
    )
    .await?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    read_queue(ctx, reader, TRANS_HALF_TOPIC, low, term, |offset, view| {
        table.note_copy(offset, bridge::origin_of(view, offset));
    })
    .await?;
    Ok(table)
}

/// Calls `visit` on every readable message of `topic` queue 0 from `from` to the queue's
/// end as it is now, yielding between reads.
async fn read_queue(
    ctx: &BrokerContext,
    reader: &StoreReader,
    topic: &str,
    from: i64,
    term: u64,
    mut visit: impl FnMut(i64, &MessageView<'_>),
) -> Result<(), LoadError> {
    let end = reader.max_offset(topic, 0);
    let mut next = from;
    while next < end {
        if mastership(ctx) != Some(term) {
            return Err(LoadError::NotMaster);
        }
        let read =
            reader.get_messages(topic, 0, next, READ_BATCH, Some(READ_MAX_BYTES), &AcceptAll);
        if read.messages.is_empty() {
            if read.next_begin_offset > next {
                next = read.next_begin_offset;
                continue;
            }
            break;
        }
        for (record, &offset) in read.messages.iter().zip(&read.queue_offsets) {
            match MessageView::parse(record) {
                Ok(view) => visit(offset, &view),
                Err(e) => error!(topic, offset, error = %e, "unreadable record skipped"),
            }
            next = offset + 1;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::properties;
    use message::MessageDraft;

    fn record_with(props: &str) -> Vec<u8> {
        let draft = MessageDraft {
            topic: TRANS_HALF_TOPIC,
            body: b"b",
            flag: 0,
            properties: props,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            queue_offset: 0,
            physical_offset: 0,
            store_timestamp_ms: 0,
        };
        message::record::encode(&draft).unwrap()
    }

    #[test]
    fn immunity_is_read_as_rocketmq_reads_it() {
        let none = record_with("");
        assert_eq!(immunity_ms(&MessageView::parse(&none).unwrap(), 6000), None);
        let ten = record_with(&properties::encode([(
            "CHECK_IMMUNITY_TIME_IN_SECONDS",
            "10",
        )]));
        assert_eq!(
            immunity_ms(&MessageView::parse(&ten).unwrap(), 6000),
            Some(10_000)
        );
        let bad = record_with(&properties::encode([(
            "CHECK_IMMUNITY_TIME_IN_SECONDS",
            "x",
        )]));
        assert_eq!(
            immunity_ms(&MessageView::parse(&bad).unwrap(), 6000),
            Some(6000)
        );
    }
}
