//! The prefault thread: keeps the CommitLog's next pages in the page cache before the
//! writer reaches them. Without it the writer stops at every fresh 4 KiB page for the
//! kernel to allocate and zero it (a quarter of a single broker's CPU under load). A writer
//! through the mapping also needs them mapped writable: populated for reading only, they
//! would still fault on the first write (measured: no gain). Populated for writing they
//! are dirty zeros, which is why a segment's flush syncs only the range written (see
//! `Segment::flush`). A raft log writes through the file (`Segment::write_through_file`):
//! its pages stay clean and mapped for reading until written, and are first warmed
//! (`Segment::warm`: zeros written and synced, so the writer's fsyncs do not also convert
//! the blocks fallocate reserved).

use std::time::Duration;

use crate::engine::Engine;

/// Populated per madvise call: small enough that the writer, when it catches up, waits
/// for little more than this.
const CHUNK: u64 = 4 << 20;
/// Between looks at the write position while the writer moves: at 200 MB/s it moves 1 MB
/// in this time, well inside the window.
const BUSY_WAIT: Duration = Duration::from_millis(5);
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Started only with a window (`prefault_ahead_bytes` > 0; see `background`).
pub(crate) fn run_prefaulter(inner: &Engine) {
    let ahead = inner.config.prefault_ahead_bytes;
    let mut faulted = 0u64;
    let mut last_seen = None;
    loop {
        let pos = inner.log.write_pos();
        // Behind the writer, or far ahead of a log cut back: start again at the writer.
        if faulted < pos || faulted > pos + 2 * ahead {
            faulted = pos;
        }
        // Refilled from half empty, not topped up at every look: a few large steps cost
        // fewer syscalls (and, warming, fewer and larger syncs) than one per look.
        let target = if faulted < pos + ahead / 2 {
            pos + ahead
        } else {
            faulted
        };
        // Bounded: each round advances by at most a chunk, and stops where no segment is.
        while faulted < target {
            match inner.log.prefault(faulted, (faulted + CHUNK).min(target)) {
                Ok(reached) if reached > faulted => faulted = reached,
                Ok(_) => break,
                Err(e) => {
                    // An old kernel without MADV_POPULATE_WRITE (Linux < 5.14), or a failed
                    // warming write: the writer faults and converts its own pages, as it
                    // would without this thread (a failing disk fails its own writes).
                    tracing::info!(error = %e, "CommitLog prefaulting stopped");
                    return;
                }
            }
        }
        let wait = if last_seen == Some(pos) {
            IDLE_WAIT
        } else {
            BUSY_WAIT
        };
        last_seen = Some(pos);
        let mut state = inner.flush_signal.state.lock();
        if state.shutdown {
            return;
        }
        inner.flush_signal.clean_wake.wait_for(&mut state, wait);
        if state.shutdown {
            return;
        }
    }
}
