//! The revive loop.
//!
//! On every member, each round reads the revive queue's new records into the [`Ledger`], so
//! a member that becomes master knows the open checkpoints. On the master, checkpoints
//! whose invisible time ended more than [`REVIVE_GRACE_MS`] ago have their unacknowledged
//! messages stored again in the group's pop retry topic (delivery count + 1), in one put
//! with the checkpoint's *revived* marker: a failover neither loses a redelivery nor (the
//! marker being in the same raft entry) repeats one. The grace lets acks sent just before
//! the deadline arrive first. A redelivery whose put has an unknown outcome (raft could not
//! say in time whether it committed) is not tried again until a barrier record stored after
//! it is read back, so a late commit cannot make a second copy.
//!
//! Where reading must start again after a restart (the oldest open checkpoint's record) is
//! kept as the offset of [`REVIVE_GROUP`] on the revive queue, committed like any
//! consumer offset: starting lower only reads records again, which changes nothing.

use std::sync::Arc;
use std::time::Duration;

use message::properties::keys;
use message::{MessageProperties, MessageView};
use remoting::body::topic::perm;
use store::AcceptAll;
use tracing::{info, warn};

use super::ledger::Due;
use super::record::PopRecord;
use super::{PopState, REVIVE_GROUP, REVIVE_QUEUE};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::record::{append_record, NewMessage};
use crate::store_facade::RecordBatch;

/// How long after a checkpoint's deadline the master redelivers it.
pub const REVIVE_GRACE_MS: i64 = 1000;
/// Longest pause between two reads of the revive queue.
const READ_INTERVAL: Duration = Duration::from_millis(100);
/// Records read per store call.
const READ_BATCH: usize = 256;
/// Checkpoints redelivered per round.
const REVIVES_PER_ROUND: usize = 256;
/// A message retried this many times by pops is not retried again (the client's own
/// limit, 16 by default, stops well before).
const MAX_POP_RETRIES: i32 = 10_000;

/// Runs until the broker shuts down.
pub async fn run(ctx: Arc<BrokerContext>) {
    let pop = Arc::clone(&ctx.pop);
    {
        let reader = ctx.store.reader();
        let recorded = ctx
            .offsets
            .query(REVIVE_GROUP, &pop.revive_topic, REVIVE_QUEUE)
            .unwrap_or(0);
        let start = recorded.max(reader.min_offset(&pop.revive_topic, REVIVE_QUEUE));
        pop.ledger.lock().start_at(start);
    }
    let mut last_revive_ms = 0;
    let mut committed_watermark = -1;
    let mut doubt = Doubt::None;
    loop {
        // The role first, then the records: a member that became master had every record
        // of earlier terms dispatched before, so this read takes in every ack and revived
        // marker they hold before anything is redelivered. Read the other way round, the
        // role could change in between and a stale ledger redeliver messages again.
        let master = ctx.role.is_master() && ctx.is_writeable();
        read_new_records(&ctx, &pop);
        if !master {
            // Whoever is master next applied this term's records before it became master.
            doubt = Doubt::None;
        }
        let now = now_ms();
        if master && now - last_revive_ms >= pop.settings.revive_interval.as_millis() as i64 {
            last_revive_ms = now;
            if settled(&ctx, &pop, &mut doubt).await {
                if revive_due(&ctx, &pop, now).await == Stored::Unknown {
                    doubt = Doubt::NeedsBarrier;
                }
                let watermark = pop.ledger.lock().low_watermark();
                if watermark != committed_watermark {
                    ctx.commit_offset_soon(
                        REVIVE_GROUP,
                        &pop.revive_topic,
                        REVIVE_QUEUE,
                        watermark,
                    );
                    committed_watermark = watermark;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(READ_INTERVAL.min(pop.settings.revive_interval)) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// Whether a redelivery may have been stored without this master knowing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doubt {
    None,
    /// A redelivery's put had an unknown outcome (raft could not say in time): it may still
    /// commit, and redelivering the checkpoint again would hand its messages out twice.
    NeedsBarrier,
    /// A barrier record was stored at this offset of the revive queue; once it is read, so
    /// is the revived marker of that put if it was stored.
    AwaitingRead(i64),
}

/// Whether redelivery may go on; stores the barrier a doubt needs (at most one per round).
async fn settled(ctx: &BrokerContext, pop: &PopState, doubt: &mut Doubt) -> bool {
    match *doubt {
        Doubt::None => true,
        Doubt::AwaitingRead(offset) => {
            if pop.ledger.lock().read_below() > offset {
                *doubt = Doubt::None;
                true
            } else {
                false
            }
        }
        Doubt::NeedsBarrier => {
            let mut batch = RecordBatch::with_capacity(256, 1);
            let barrier = PopRecord::Barrier {
                stored_at: now_ms(),
            };
            if let Err(e) =
                barrier.append(&mut batch, &pop.revive_topic, REVIVE_QUEUE, ctx.store_host)
            {
                warn!(error = %e, "pop revive barrier not encoded");
                return false;
            }
            match ctx.store.put(batch).await {
                Ok(outcome) => {
                    if let Some(stored) = outcome.messages.first() {
                        *doubt = Doubt::AwaitingRead(stored.queue_offset);
                    }
                }
                Err(e) => warn!(error = %e, "pop revive barrier not stored; trying again"),
            }
            false
        }
    }
}

/// What became of a round's redeliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Each was stored, or refused before anything was stored.
    Known,
    /// One put may or may not have been stored.
    Unknown,
}

/// Reads the revive queue's records not yet read into the ledger.
pub fn read_new_records(ctx: &BrokerContext, pop: &PopState) {
    let reader = ctx.store.reader();
    let max = reader.max_offset(&pop.revive_topic, REVIVE_QUEUE);
    // Bounded: each pass moves forward or stops.
    loop {
        let from = {
            let ledger = pop.ledger.lock();
            ledger.read_below()
        }
        .max(reader.min_offset(&pop.revive_topic, REVIVE_QUEUE));
        if from >= max {
            return;
        }
        let read = reader.get_messages(
            &pop.revive_topic,
            REVIVE_QUEUE,
            from,
            READ_BATCH,
            None,
            &AcceptAll,
        );
        if read.messages.is_empty() || read.next_begin_offset <= from {
            return;
        }
        let mut ledger = pop.ledger.lock();
        for (record, offset) in read.messages.iter().zip(&read.queue_offsets) {
            match PopRecord::decode(record) {
                Some(pop_record) => {
                    if let Some((key, kind)) = pop_record.revive_message_type() {
                        ctx.metrics
                            .pop_revive_read(&key.group, &key.topic, REVIVE_QUEUE, kind);
                    }
                    ledger.take_in(*offset, pop_record)
                }
                None => warn!(offset, "unreadable record in the revive topic skipped"),
            }
        }
        ledger.start_at(read.next_begin_offset);
    }
}

async fn revive_due(ctx: &BrokerContext, pop: &PopState, now: i64) -> Stored {
    let due = pop
        .ledger
        .lock()
        .due(now - REVIVE_GRACE_MS, REVIVES_PER_ROUND);
    let (mut checkpoints, mut redelivered) = (0, 0);
    let mut stored = Stored::Known;
    for checkpoint in due {
        match revive_one(ctx, pop, &checkpoint).await {
            Ok(stored) => {
                pop.ledger.lock().close(&checkpoint.key);
                checkpoints += 1;
                redelivered += stored;
            }
            Err(e) => {
                if e.outcome_unknown() {
                    stored = Stored::Unknown;
                }
                warn!(group = %checkpoint.key.group, topic = %checkpoint.key.topic, error = %e,
                    "redelivery not known to be stored; trying again once that is known");
                break;
            }
        }
    }
    if redelivered > 0 {
        info!(
            checkpoints,
            redelivered, "popped messages not acknowledged in time stored for redelivery"
        );
    }
    stored
}

/// Stores the checkpoint's unacknowledged messages in the pop retry topic with its revived
/// marker, in one put; returns how many messages were stored.
async fn revive_one(ctx: &BrokerContext, pop: &PopState, due: &Due) -> Result<usize, ReviveError> {
    let key = &due.key;
    let retry_topic = if message::topic::is_retry_topic(&key.topic) {
        key.topic.clone()
    } else {
        message::topic::pop_retry_topic(&key.group, &key.topic)
    };
    ctx.topic_or_create(&retry_topic, 1, perm::READ_WRITE)
        .await
        .map_err(|e| ReviveError::RetryTopic(retry_topic.clone(), e))?;
    let reader = ctx.store.reader();
    let mut batch = RecordBatch::with_capacity(4096, due.unacked.len() + 1);
    let mut redelivered = 0;
    for offset in &due.unacked {
        let read = reader.get_messages(&key.topic, key.queue_id, *offset, 1, None, &AcceptAll);
        let Some(record) = read
            .messages
            .first()
            .filter(|_| read.queue_offsets.first() == Some(offset))
        else {
            // Gone with retention: nothing left to hand out again.
            continue;
        };
        let Ok(view) = MessageView::parse(record) else {
            warn!(topic = %key.topic, queue = key.queue_id, offset, "unreadable popped message not redelivered");
            continue;
        };
        if view.reconsume_times() >= MAX_POP_RETRIES {
            continue;
        }
        let mut properties = MessageProperties::parse(view.properties());
        if properties.get(keys::FIRST_POP_TIME).is_none() {
            // Values from a stored message and a number: no separators to refuse.
            let _ = properties.put(keys::FIRST_POP_TIME, &key.pop_time.to_string());
        }
        let properties = properties.encode();
        let message = NewMessage {
            topic: &retry_topic,
            queue_id: 0,
            body: view.body(),
            flag: view.flag(),
            properties: &properties,
            sys_flag: view.sys_flag(),
            born_timestamp_ms: view.born_timestamp_ms(),
            born_host: view.born_host(),
            reconsume_times: view.reconsume_times().saturating_add(1),
        };
        append_record(&mut batch, &message, ctx.store_host)
            .map_err(|e| ReviveError::Record(e.into()))?;
        redelivered += 1;
    }
    PopRecord::Revived { key: key.clone() }
        .append(&mut batch, &pop.revive_topic, REVIVE_QUEUE, ctx.store_host)
        .map_err(ReviveError::Record)?;
    let stored = ctx.store.put(batch).await;
    ctx.metrics
        .pop_revive_retried(&key.group, &key.topic, redelivered as u64, stored.is_ok());
    stored.map_err(ReviveError::Put)?;
    if redelivered > 0 {
        ctx.stats.add_put(redelivered as u64);
    }
    Ok(redelivered)
}

/// Why a redelivery was not stored (the next round tries again).
#[derive(Debug, thiserror::Error)]
enum ReviveError {
    #[error("pop retry topic {0} cannot be created: {1}")]
    RetryTopic(String, crate::metadata::MetaError),
    #[error(transparent)]
    Record(super::record::PopRecordError),
    #[error("put failed: {0}")]
    Put(crate::store_facade::PutError),
}

impl ReviveError {
    /// Whether the put may still be stored; every other failure stored nothing.
    fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ReviveError::Put(crate::store_facade::PutError::OutcomeUnknown(_))
        )
    }
}
