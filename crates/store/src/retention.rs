//! Retention: removing old CommitLog segments by age (`fileReservedTime`, at the
//! `deleteWhen` hours) or under disk pressure (`diskMaxUsedSpaceRatio`, and forcibly above
//! `diskSpaceCleanForciblyRatio`), together with the ConsumeQueue and index files that only
//! point into them. The segment being written is never removed, nor anything not yet
//! dispatched.

use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::engine::Engine;
use crate::error::Result;
use crate::stats::StoreStats;

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    /// Whether the pass was allowed to delete (a `deleteWhen` hour, disk pressure, or a
    /// manual request).
    pub triggered: bool,
    pub segments_removed: usize,
    /// ConsumeQueue and key-index files removed with them.
    pub derived_files_removed: usize,
    pub disk_used_ratio: f64,
    /// Segments were removed before expiring because the disk is nearly full.
    pub forced: bool,
}

/// Whether a segment ending at `end` holds a position someone still reads; logs who.
fn held(inner: &Engine, end: u64) -> bool {
    match inner.retention_holds.lowest() {
        Some((holder, pos)) if end > u64::try_from(pos).unwrap_or(0) => {
            tracing::info!(
                holder,
                held_from = pos,
                "expired CommitLog segments kept: still needed"
            );
            true
        }
        _ => false,
    }
}

/// The maintenance thread: flushes derived files and writes checkpoints every
/// `flushIntervalConsumeQueue`, and runs retention every `cleanResourceInterval`.
pub(crate) fn run_cleaner(inner: &Engine) {
    let clean_interval = Duration::from_millis(inner.config.clean_resource_interval_ms.max(10));
    let checkpoint_interval =
        Duration::from_millis(inner.config.flush_interval_consume_queue_ms.max(1));
    let mut next_clean = Instant::now() + clean_interval;
    let mut next_checkpoint = Instant::now() + checkpoint_interval;
    loop {
        {
            let mut state = inner.flush_signal.state.lock();
            // Bounded: each wait ends at the next deadline at the latest.
            loop {
                if state.shutdown {
                    return;
                }
                let now = Instant::now();
                let deadline = next_clean.min(next_checkpoint);
                if now >= deadline {
                    break;
                }
                inner
                    .flush_signal
                    .clean_wake
                    .wait_for(&mut state, deadline - now);
            }
        }
        let now = Instant::now();
        if now >= next_checkpoint {
            if let Err(e) = crate::flush::flush_and_checkpoint_periodically(inner) {
                tracing::error!(error = %e, "flushing derived files or checkpoints failed");
            }
            next_checkpoint = Instant::now() + checkpoint_interval;
        }
        if now >= next_clean {
            if let Err(e) = run_once(inner, false) {
                tracing::error!(error = %e, "retention pass failed");
            }
            next_clean = Instant::now() + clean_interval;
        }
    }
}

/// One pass. `manual` ignores the hour of day (an operator asked).
pub(crate) fn run_once(inner: &Engine, manual: bool) -> Result<RetentionReport> {
    let config = &inner.config;
    let now_ms = inner.env.clock.now_ms();
    let ratio = match inner.env.disk.used_ratio(&config.store_path_root_dir) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read filesystem usage");
            0.0
        }
    };
    inner
        .disk_used_ratio_bits
        .store(ratio.to_bits(), std::sync::atomic::Ordering::Relaxed);
    let hours = &config.delete_when;
    let time_up = hours.contains(&inner.env.clock.local_hour());
    let pressure = ratio > config.disk_max_used_space_ratio;
    let force = ratio > config.disk_space_clean_forcibly_ratio;
    let mut report = RetentionReport {
        triggered: manual || time_up || pressure,
        disk_used_ratio: ratio,
        ..Default::default()
    };
    if !report.triggered {
        return Ok(report);
    }
    let reserved_ms = (config.file_reserved_time_hours as i64).saturating_mul(3_600_000);
    if let Some(gate) = &inner.retention_gate {
        return request_removal(inner, gate, now_ms, reserved_ms, force, report);
    }
    let limit = inner
        .dispatcher
        .dispatched_pos()
        .min(inner.log.stable_pos());
    for _ in 0..config.max_segments_deleted_per_run {
        let segments = inner.log.segments();
        let Some(first) = segments.first() else { break };
        if segments.len() < 2 {
            break;
        }
        let modified_ms = first
            .modified()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let expired = modified_ms.saturating_add(reserved_ms) <= now_ms;
        if (!expired && !force) || held(inner, first.end()) {
            break;
        }
        let Some(new_first) = inner.log.remove_first_segment_below(limit)? else {
            break;
        };
        tracing::info!(segment = %first.path().display(), expired, forced = !expired, "removed CommitLog segment");
        report.segments_removed += 1;
        report.forced |= !expired;
        StoreStats::add(&inner.stats.segments_deleted, 1);
        report.derived_files_removed += inner.dispatcher.remove_below(new_first as i64)?;
    }
    Ok(report)
}

/// A raft replica's pass: the raft driver owns the log, so this only asks it (through the
/// gate) to remove the expired segments, and drops the derived files of segments it already
/// removed. Only what the durable dispatch checkpoint covers may go, so a restart never
/// needs a removed record to rebuild a ConsumeQueue.
fn request_removal(
    inner: &Engine,
    gate: &crate::raft_log::RetentionGate,
    now_ms: i64,
    reserved_ms: i64,
    force: bool,
    mut report: RetentionReport,
) -> Result<RetentionReport> {
    crate::flush::flush_all_and_checkpoint(inner)?;
    let limit = inner
        .checkpoint_lock
        .lock()
        .written
        .dispatched_safe_pos
        .min(inner.log.stable_pos());
    let segments = inner.log.segments();
    let mut below = None;
    // The last segment is the one being written; it never goes.
    for segment in segments
        .iter()
        .take(segments.len().saturating_sub(1))
        .take(inner.config.max_segments_deleted_per_run)
    {
        let modified_ms = segment
            .modified()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let expired = modified_ms.saturating_add(reserved_ms) <= now_ms;
        if (!expired && !force) || segment.end() > limit || held(inner, segment.end()) {
            break;
        }
        report.forced |= !expired;
        below = Some(segment.end());
    }
    if let Some(pos) = below {
        gate.request_below(pos);
    }
    let removed_before = inner.log.first_pos();
    report.derived_files_removed += inner.dispatcher.remove_below(removed_before as i64)?;
    // Segments go later, on the raft driver: `RetentionGate::removed_segments` counts them.
    Ok(report)
}
