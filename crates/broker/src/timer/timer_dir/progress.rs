//! How far timer delivery went, as three consumer offsets of [`PROGRESS_GROUP`] on the
//! timer topic, written together as one metadata op (in a group: one raft entry), so a new
//! master finds a consistent triple:
//!
//! - queue 0: `caught_up_below` — every entry of the message queue below this offset whose
//!   slot is before `slot_ms` has been delivered;
//! - queue 1: `slot_ms` — the first slot not wholly delivered;
//! - queue 2: `delivered_in_slot` — how many entries of that slot's chain (in queue-offset
//!   order, the same on every member) have been delivered.
//!
//! Each is recorded after the deliveries it covers are stored, so a crash or failover in
//! between delivers those again (at least once), never loses one.

use crate::context::BrokerContext;
use crate::metadata::{MetaError, MetadataOp, OffsetOp};

use super::TIMER_TOPIC;

/// The consumer group whose offsets on the timer topic are the delivery progress.
pub const PROGRESS_GROUP: &str = "CID_RMQ_SYS_TIMER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub caught_up_below: i64,
    pub slot_ms: i64,
    pub delivered_in_slot: u64,
}

/// The recorded progress; `None` before the first record.
pub fn recorded(ctx: &BrokerContext) -> Option<Progress> {
    let at = |queue_id| ctx.offsets.query(PROGRESS_GROUP, TIMER_TOPIC, queue_id);
    Some(Progress {
        caught_up_below: at(0)?,
        slot_ms: at(1)?,
        delivered_in_slot: u64::try_from(at(2)?).unwrap_or(0),
    })
}

/// Records `progress`; resolves once it is committed and applied.
pub async fn record(ctx: &BrokerContext, progress: Progress) -> Result<(), MetaError> {
    let commit = |queue_id: i32, offset: i64| {
        MetadataOp::Offset(OffsetOp::Commit {
            group: PROGRESS_GROUP.to_owned(),
            topic: TIMER_TOPIC.to_owned(),
            queue_id,
            offset,
        })
    };
    ctx.write_metadata(MetadataOp::Batch(vec![
        commit(0, progress.caught_up_below),
        commit(1, progress.slot_ms),
        commit(
            2,
            i64::try_from(progress.delivered_in_slot).unwrap_or(i64::MAX),
        ),
    ]))
    .await
}
