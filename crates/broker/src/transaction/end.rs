//! Ending one transaction: a commit stores the message in its real topic and the op
//! record in one put, a rollback stores the op record alone. One put means a commit never
//! reaches consumers without its op record, so it is never checked and delivered again.

use message::MessageView;
use tracing::warn;

use super::bridge::{self, BridgeError};
use super::state::Claim;
use crate::context::BrokerContext;
use crate::stats_items;
use crate::store_facade::{PutError, RecordBatch};

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Rollback,
}

/// Why a transaction could not be ended.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    #[error("the half message cannot be committed: {0}")]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Put(#[from] PutError),
    #[error(transparent)]
    Table(#[from] super::table::TableFull),
}

/// Ends the transaction `claim` holds, whose current copy is `half`.
pub async fn finish(
    ctx: &BrokerContext,
    claim: Claim<'_>,
    half: &MessageView<'_>,
    outcome: Outcome,
) -> Result<(), EndError> {
    let mut batch = RecordBatch::with_capacity(half.body().len() + 1024, 2);
    let committed = match outcome {
        Outcome::Commit => Some(bridge::append_committed(
            &mut batch,
            half,
            &bridge::Delays {
                levels: &ctx.delay_levels,
                timer: &ctx.timer,
                now_ms: crate::clock::now_ms(),
            },
            ctx.store_host,
        )?),
        Outcome::Rollback => None,
    };
    let uniq_key = half.uniq_key().unwrap_or_default();
    bridge::append_op(
        &mut batch,
        claim.origin(),
        uniq_key,
        crate::clock::now_ms(),
        ctx.store_host,
    )?;
    let count = batch.len() as u64;
    let outcome_stored = ctx.store.put(batch).await.inspect_err(|e| {
        warn!(origin = claim.origin(), error = %e, "transaction end not stored");
    })?;
    ctx.stats.add_put(count);
    if let Some(topic) = half.property(message::properties::keys::REAL_TOPIC) {
        ctx.metrics
            .transaction_ended(topic, outcome == Outcome::Commit);
    }
    if let Some(real) = committed {
        let items = &ctx.stats_items;
        items.add(stats_items::TOPIC_PUT_NUMS, &real.topic, 1);
        items.add(
            stats_items::TOPIC_PUT_SIZE,
            &real.topic,
            half.body().len() as u64,
        );
    }
    let op_offset = outcome_stored
        .messages
        .last()
        .map_or(0, |op| op.queue_offset);
    Ok(claim.ended(op_offset)?)
}
