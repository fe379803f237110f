//! The flush thread: periodic fsync of the CommitLog (ASYNC_FLUSH) and group commit on
//! demand (SYNC_FLUSH: every put waiting for durability shares the next fsync); and the
//! flush of derived files followed by the checkpoints, which the maintenance thread runs.

use std::time::{Duration, Instant};

use crate::checkpoint::{self, StoreCheckpoint};
use crate::config::FlushDiskType;
use crate::engine::Engine;
use crate::error::Result;

/// Asks the flusher to make the CommitLog durable up to at least `pos`.
pub(crate) fn request_flush(inner: &Engine, pos: u64) {
    {
        let mut state = inner.flush_signal.state.lock();
        if pos > state.requested_pos {
            state.requested_pos = pos;
        }
    }
    inner.flush_signal.wake.notify_one();
}

/// The CommitLog flusher: nothing else runs on this thread, so a SYNC_FLUSH put never
/// waits behind ConsumeQueue flushes or checkpoint writes.
pub(crate) fn run_flusher(inner: &Engine) {
    let sync = inner.config.flush_disk_type == FlushDiskType::SyncFlush;
    let data_interval = Duration::from_millis(inner.config.flush_interval_commit_log_ms.max(1));
    let mut next_data = Instant::now() + data_interval;
    loop {
        {
            let mut state = inner.flush_signal.state.lock();
            // Bounded: each wait ends at the next deadline at the latest.
            loop {
                if state.shutdown {
                    return;
                }
                let healthy = inner.log.failure().is_none();
                if sync && healthy && state.requested_pos > inner.log.durable().pos {
                    break;
                }
                let now = Instant::now();
                if now >= next_data {
                    break;
                }
                inner
                    .flush_signal
                    .wake
                    .wait_for(&mut state, next_data - now);
            }
        }
        // One fsync covers every put written so far: that is the group commit.
        if let Err(e) = inner.log.flush() {
            tracing::error!(error = %e, "CommitLog flush failed");
        }
        let now = Instant::now();
        if now >= next_data {
            next_data = now + data_interval;
        }
    }
}

/// The key index is flushed at most this often by the maintenance thread (everything else
/// every `flushIntervalConsumeQueue`). Its hash slots are spread over the whole file, so each
/// flush writes back, and write-protects, nearly every slot page, and the next put to each
/// faults it writable again. Flushing it less often only moves the checkpoint less often:
/// a crash re-dispatches (and re-indexes) more, and queries drop the duplicates.
const KEY_INDEX_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Flushes ConsumeQueues, key index, CommitLog and entry index, then records the safe
/// points recovery will start from.
pub(crate) fn flush_all_and_checkpoint(inner: &Engine) -> Result<()> {
    flush_and_checkpoint(inner, true)
}

/// As [`flush_all_and_checkpoint`], with the key index flushed only when
/// [`KEY_INDEX_FLUSH_INTERVAL`] has passed: the maintenance thread's round.
pub(crate) fn flush_and_checkpoint_periodically(inner: &Engine) -> Result<()> {
    flush_and_checkpoint(inner, false)
}

fn flush_and_checkpoint(inner: &Engine, key_index_always: bool) -> Result<()> {
    let mut state = inner.checkpoint_lock.lock();
    // Read the dispatched position before flushing: everything below it is then durable.
    let dispatched = inner.dispatcher.dispatched_pos();
    let dispatched_ts = inner.dispatcher.dispatched_timestamp_ms();
    inner.dispatcher.flush_queues()?;
    let now = Instant::now();
    let key_index_due = key_index_always
        || state
            .key_index_flushed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= KEY_INDEX_FLUSH_INTERVAL);
    if key_index_due {
        inner.dispatcher.flush_key_index()?;
        state.key_index_covers = Some((dispatched, dispatched_ts));
        state.key_index_flushed_at = Some(now);
    }
    let (covered, covered_ts) = match state.key_index_covers {
        Some((pos, ts)) if pos < dispatched => (pos, ts),
        _ => (dispatched, dispatched_ts),
    };
    let durable = inner.log.flush_and_checkpoint()?;
    let next = StoreCheckpoint {
        dispatched_safe_pos: covered.min(durable.pos),
        dispatched_timestamp_ms: covered_ts,
        written_at_ms: inner.env.clock.now_ms(),
    };
    let last = &mut state.written;
    if next.dispatched_safe_pos != last.dispatched_safe_pos || last.written_at_ms == 0 {
        checkpoint::write(&inner.config.checkpoint_path(), &next)?;
        *last = next;
    }
    Ok(())
}
