//! How far each level's schedule queue has been delivered.
//!
//! The progress of level `n` is the consumer offset of [`PROGRESS_GROUP`] on
//! `SCHEDULE_TOPIC_XXXX` queue `n - 1`. Keeping it in the consumer-offset table (rather
//! than RocketMQ's separate `delayOffset.json`) gives it, with no second mechanism, what
//! consumer offsets already have: it is persisted with them (`consumerOffset.json`,
//! every few seconds and at shutdown), in a broker group it travels through the raft log
//! so a new master continues where the old one stopped, and a member rebuilt from another
//! member's metadata copy gets it too. The group name uses RocketMQ's prefix for
//! system consumer groups, which no application is expected to use.
//!
//! Progress is recorded after the delivered copy is stored, so a crash or failover between
//! the two delivers that message again (at least once), never loses it.

use message::DelayLevels;

use super::SCHEDULE_TOPIC;
use crate::context::BrokerContext;

/// The consumer group whose offsets on the schedule topic are the delivery progress.
pub const PROGRESS_GROUP: &str = "CID_RMQ_SYS_SCHEDULE";

/// The recorded progress of `level`: the first queue offset not yet delivered.
pub fn recorded(ctx: &BrokerContext, level: i32) -> Option<i64> {
    ctx.offsets
        .query(PROGRESS_GROUP, SCHEDULE_TOPIC, DelayLevels::queue_id(level))
}

/// Records that `level` is delivered below `next_offset` (a group master replicates it
/// with its next metadata proposal).
pub fn record(ctx: &BrokerContext, level: i32, next_offset: i64) {
    ctx.commit_offset_soon(
        PROGRESS_GROUP,
        SCHEDULE_TOPIC,
        DelayLevels::queue_id(level),
        next_offset,
    );
}

/// GET_BROKER_RUNTIME_INFO's `scheduleMessageOffset_<level>` entries, RocketMQ's
/// "delivered,stored" pair per level (how far behind delayed delivery is).
pub fn runtime_info(ctx: &BrokerContext) -> Vec<(String, String)> {
    (1..=ctx.delay_levels.max_level())
        .map(|level| {
            let queue_id = DelayLevels::queue_id(level);
            let stored = ctx.store.reader().max_offset(SCHEDULE_TOPIC, queue_id);
            let delivered = recorded(ctx, level).unwrap_or(0);
            (
                format!("scheduleMessageOffset_{level}"),
                format!("{delivered},{stored}"),
            )
        })
        .collect()
}
