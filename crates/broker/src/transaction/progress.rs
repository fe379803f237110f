//! How far the check service has come, as consumer offsets of [`PROGRESS_GROUP`] (RocketMQ
//! keeps its half and op queue progress the same way, under this group): on
//! `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 the table's `low` (every transaction begun below it
//! is finished), on `RMQ_SYS_TRANS_OP_HALF_TOPIC` queue 0 where re-reading op records must
//! start. Offsets are persisted with the others and, in a group, travel through the raft
//! log, so a new master starts from them.
//!
//! The two are written together as one metadata op (one raft entry), taken at a moment
//! when every op record written was in the table: a new master always finds a pair that
//! belongs together, so no op record naming a transaction at or above `low` lies below the
//! op progress.

use crate::context::BrokerContext;
use crate::metadata::{MetaError, MetadataOp, OffsetOp};

use super::{TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};

/// RocketMQ's `CID_SYS_RMQ_TRANS` group.
pub const PROGRESS_GROUP: &str = "CID_RMQ_SYS_TRANS";

/// What was recorded: (low, op-queue progress).
pub fn recorded(ctx: &BrokerContext) -> (Option<i64>, Option<i64>) {
    (
        ctx.offsets.query(PROGRESS_GROUP, TRANS_HALF_TOPIC, 0),
        ctx.offsets.query(PROGRESS_GROUP, TRANS_OP_HALF_TOPIC, 0),
    )
}

/// Records `low` and `op_progress` as one op; resolves once it is committed and applied.
pub async fn record(ctx: &BrokerContext, low: i64, op_progress: i64) -> Result<(), MetaError> {
    let commit = |topic: &str, offset: i64| {
        MetadataOp::Offset(OffsetOp::Commit {
            group: PROGRESS_GROUP.to_owned(),
            topic: topic.to_owned(),
            queue_id: 0,
            offset,
        })
    };
    ctx.write_metadata(MetadataOp::Batch(vec![
        commit(TRANS_HALF_TOPIC, low),
        commit(TRANS_OP_HALF_TOPIC, op_progress),
    ]))
    .await
}
