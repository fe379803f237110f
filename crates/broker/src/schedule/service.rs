//! The delivery loop: on a master (a standalone broker, or a group's writable leader), each
//! level's schedule queue is read from its progress; entries whose deliver time has come
//! are stored again under their real topic and queue, then the progress moves past them.
//!
//! Within one level every message waits the same delay, so deliver times rise with the
//! queue offset: the first entry not yet due holds back the rest of its level, and its time
//! is when the loop next needs to look. The loop sleeps until the earliest such time, at
//! most [`ROUND_MAX_WAIT`] (new entries are noticed within that), and delivers at most
//! [`MESSAGES_PER_LEVEL_ROUND`] per level per round so one busy level cannot starve others.
//! A level's due messages of one round are stored with one put (in a group: one proposal),
//! so a backlog costs one round trip per batch, not per message.

use std::sync::Arc;
use std::time::Duration;

use message::MessageView;
use store::AcceptAll;
use tracing::{error, info, warn};

use super::{divert, progress, SCHEDULE_TOPIC};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::store_facade::{PutError, RecordBatch};
use message::DelayLevels;

/// Longest sleep between two rounds.
pub const ROUND_MAX_WAIT: Duration = Duration::from_millis(100);
/// Messages one level delivers in one round, stored together as one put.
pub const MESSAGES_PER_LEVEL_ROUND: usize = 32;
/// Bytes of due messages read for one put (at least one message is always read).
const DELIVERY_BATCH_MAX_BYTES: usize = 1024 * 1024;
/// How long a level waits after its delivery could not be stored (not the leader any
/// more, disk full, busy) before trying the same entry again.
const RETRY_AFTER_FAILED_PUT: Duration = Duration::from_secs(1);

/// Who holds CommitLog retention back for the delayed messages still waiting.
const RETENTION_HOLDER: &str = "schedule";

/// Runs until the broker shuts down. Only a master delivers; elsewhere it idles.
pub async fn run(ctx: Arc<BrokerContext>) {
    let mut schedule = Schedule::new(Arc::clone(&ctx));
    loop {
        let pause = schedule.round().await;
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// What one level's turn in a round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Everything in the queue is delivered.
    CaughtUp,
    /// Nothing more can be done for this long.
    WaitMs(i64),
    /// The round's share is used up; more is due.
    More,
}

#[derive(Debug, Default, Clone)]
struct LevelState {
    /// First offset this node knows is delivered below (ahead of the recorded progress
    /// while a group's commit of it is on its way).
    delivered_below: i64,
    /// The first entry not yet due, and its deliver time: no read until then.
    waiting: Option<(i64, i64)>,
    /// After a failed put, no attempt before this time.
    retry_at_ms: Option<i64>,
    /// Entries below this offset are delivered one per put (a batch of them was refused).
    one_at_a_time_below: i64,
}

struct Schedule {
    ctx: Arc<BrokerContext>,
    levels: DelayLevels,
    states: Vec<LevelState>,
    was_master: bool,
}

impl Schedule {
    fn new(ctx: Arc<BrokerContext>) -> Schedule {
        let levels = ctx.delay_levels.clone();
        let count = usize::try_from(levels.max_level()).unwrap_or(0);
        Schedule {
            ctx,
            levels,
            states: vec![LevelState::default(); count],
            was_master: false,
        }
    }

    /// One pass over every level; returns how long to sleep before the next.
    async fn round(&mut self) -> Duration {
        self.hold_waiting_messages();
        let master = self.ctx.role.is_master() && self.ctx.is_writeable();
        if master != self.was_master {
            info!(
                master,
                "schedule service {}",
                if master { "delivering" } else { "idle" }
            );
            self.was_master = master;
            if master {
                self.correct_progress();
            }
        }
        if !master {
            for state in &mut self.states {
                state.waiting = None;
                state.retry_at_ms = None;
            }
            return ROUND_MAX_WAIT;
        }
        let mut pause_ms = ROUND_MAX_WAIT.as_millis() as i64;
        for level in 1..=self.levels.max_level() {
            match self.turn(level).await {
                Turn::CaughtUp => {}
                Turn::WaitMs(ms) => pause_ms = pause_ms.min(ms),
                Turn::More => pause_ms = 0,
            }
        }
        Duration::from_millis(u64::try_from(pause_ms).unwrap_or(0))
    }

    /// Keeps retention off the CommitLog from the oldest message a level has yet to
    /// deliver (level 18 waits two hours, longer than a `fileReservedTime` of one may keep
    /// its segment). From the recorded progress, on every member: any may become master.
    fn hold_waiting_messages(&self) {
        let reader = self.ctx.store.reader();
        let mut lowest: Option<i64> = None;
        for level in 1..=self.levels.max_level() {
            let queue_id = DelayLevels::queue_id(level);
            let from = progress::recorded(&self.ctx, level).unwrap_or(0);
            if from >= reader.max_offset(SCHEDULE_TOPIC, queue_id) {
                continue;
            }
            match reader.queue_entry_position(SCHEDULE_TOPIC, queue_id, from) {
                Some(position) => lowest = Some(lowest.map_or(position, |l| l.min(position))),
                // Only holes where messages wait: keep the last hold.
                None => return,
            }
        }
        reader.hold_retention(RETENTION_HOLDER, lowest);
    }

    /// Progress recorded beyond the end of a level's queue (the store was replaced while
    /// `config/` was kept) would hold back every message stored there until the queue grew
    /// past it: such progress is moved back to the queue's end, as RocketMQ corrects its
    /// delay offsets at start. On a master every delivered entry is in its queue, so
    /// progress legitimately never exceeds the end.
    fn correct_progress(&mut self) {
        for level in 1..=self.levels.max_level() {
            let queue_id = DelayLevels::queue_id(level);
            let max_offset = self.ctx.store.reader().max_offset(SCHEDULE_TOPIC, queue_id);
            let recorded = progress::recorded(&self.ctx, level).unwrap_or(0);
            if recorded > max_offset {
                warn!(
                    level,
                    recorded,
                    max_offset,
                    "schedule progress beyond its queue's end; moved back to the end"
                );
                progress::record(&self.ctx, level, max_offset);
                if let Some(state) = usize::try_from(level - 1)
                    .ok()
                    .and_then(|index| self.states.get_mut(index))
                {
                    state.delivered_below = max_offset;
                }
            }
        }
    }

    /// Delivers what is due at one level.
    async fn turn(&mut self, level: i32) -> Turn {
        let index = usize::try_from(level - 1).unwrap_or(0);
        let Some(mut state) = self.states.get(index).cloned() else {
            return Turn::CaughtUp;
        };
        let turn = self.deliver_due(level, &mut state).await;
        if let Some(slot) = self.states.get_mut(index) {
            *slot = state;
        }
        turn
    }

    async fn deliver_due(&self, level: i32, state: &mut LevelState) -> Turn {
        let now = now_ms();
        if let Some(retry_at) = state.retry_at_ms {
            if now < retry_at {
                return Turn::WaitMs(retry_at - now);
            }
            state.retry_at_ms = None;
        }
        let store = &self.ctx.store;
        let queue_id = DelayLevels::queue_id(level);
        // The recorded progress may be ahead of this node's own (another master delivered
        // meanwhile) or behind it (this node's last commit is still on its way).
        let start = state
            .delivered_below
            .max(progress::recorded(&self.ctx, level).unwrap_or(0))
            .max(store.reader().min_offset(SCHEDULE_TOPIC, queue_id));
        state.delivered_below = start;
        let max_offset = store.reader().max_offset(SCHEDULE_TOPIC, queue_id);
        if start >= max_offset {
            return Turn::CaughtUp;
        }
        if let Some((offset, due_ms)) = state.waiting {
            if offset == start && now < due_ms {
                return Turn::WaitMs(due_ms - now);
            }
        }
        state.waiting = None;
        // After a batch of deliveries was refused as a whole, its messages go one at a time
        // so one bad record cannot hold back the others.
        let one_at_a_time = start < state.one_at_a_time_below;
        let read = store.reader().get_messages(
            SCHEDULE_TOPIC,
            queue_id,
            start,
            if one_at_a_time {
                1
            } else {
                MESSAGES_PER_LEVEL_ROUND
            },
            Some(DELIVERY_BATCH_MAX_BYTES),
            &AcceptAll,
        );
        // Where progress goes once `batch` is stored: past every entry looked at.
        let mut covered = start;
        let mut turn = None;
        if read.messages.is_empty() {
            // Holes, or entries retention is removing: go on where the store says reading
            // goes on; if it says nothing new, look again next round.
            if read.next_begin_offset > covered {
                covered = read.next_begin_offset.min(max_offset);
            } else {
                turn = Some(Turn::WaitMs(ROUND_MAX_WAIT.as_millis() as i64));
            }
        }
        let mut batch =
            RecordBatch::with_capacity(read.buffer_total_size + 1024, read.messages.len());
        for (record, &queue_offset) in read.messages.iter().zip(&read.queue_offsets) {
            let view = match MessageView::parse(record) {
                Ok(view) => view,
                Err(e) => {
                    error!(level, queue_offset, error = %e, "unreadable scheduled message passed over");
                    covered = queue_offset + 1;
                    continue;
                }
            };
            let now = now_ms();
            let due_ms =
                deliver_time_ms(self.levels.delay_ms(level), view.store_timestamp_ms(), now);
            if due_ms > now {
                state.waiting = Some((queue_offset, due_ms));
                turn = Some(Turn::WaitMs(due_ms - now));
                break;
            }
            if let Err(reason) = divert::append_delivery(&mut batch, &view, self.ctx.store_host) {
                error!(level, queue_offset, %reason, "scheduled message cannot be delivered; passed over");
            }
            covered = queue_offset + 1;
        }
        let next = if batch.is_empty() {
            covered
        } else {
            let count = batch.len();
            match self.ctx.store.put(batch).await {
                Ok(_) => {
                    self.ctx.stats.add_put(count as u64);
                    covered
                }
                Err(PutError::MessageIllegal(reason)) if count > 1 => {
                    warn!(level, count, %reason, "a batch of due messages was refused; delivering them one at a time");
                    state.one_at_a_time_below = covered;
                    turn = Some(Turn::More);
                    start
                }
                Err(PutError::MessageIllegal(reason)) => {
                    error!(level, offset = start, %reason, "scheduled message refused by the store; passed over");
                    covered
                }
                Err(e) => {
                    warn!(level, offset = start, error = %e, "due messages not delivered yet; will retry");
                    state.retry_at_ms = Some(now_ms() + RETRY_AFTER_FAILED_PUT.as_millis() as i64);
                    turn = Some(Turn::WaitMs(RETRY_AFTER_FAILED_PUT.as_millis() as i64));
                    start
                }
            }
        };
        if next > start {
            state.delivered_below = next;
            progress::record(&self.ctx, level, next);
        }
        turn.unwrap_or(if next < max_offset {
            Turn::More
        } else {
            Turn::CaughtUp
        })
    }
}

/// When a message stored at `store_timestamp_ms` with `delay_ms` is due. A deliver time
/// further ahead than the whole delay means the clock went back: due now, as RocketMQ
/// corrects it, rather than held for however far the clock jumped.
pub fn deliver_time_ms(delay_ms: i64, store_timestamp_ms: i64, now_ms: i64) -> i64 {
    let due = store_timestamp_ms.saturating_add(delay_ms);
    if due > now_ms.saturating_add(delay_ms) {
        now_ms
    } else {
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_time_is_store_time_plus_delay_unless_the_clock_went_back() {
        assert_eq!(deliver_time_ms(1_000, 5_000, 5_200), 6_000);
        assert_eq!(deliver_time_ms(1_000, 5_000, 9_000), 6_000);
        // Stored "in the future" by more than the delay: the clock was set back.
        assert_eq!(deliver_time_ms(1_000, 50_000, 9_000), 9_000);
    }
}
