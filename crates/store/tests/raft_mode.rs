//! The CommitLog and dispatcher as a raft replica uses them: entries carry leader-assigned
//! terms, only committed (stable) entries are dispatched, uncommitted ones can be cut.

mod common;

use common::record;
use message::record::{patch_physical_offset, patch_queue_offset};
use raft::entry::{EntryHeader, EntryKind};
use store::commit_log::{CommitLog, CommitLogConfig};
use store::dispatch::{Dispatcher, CHANNEL_MESSAGE};
use store::StoreError;

fn accept(_: &EntryHeader, _: &[u8]) -> Result<(), store::commit_log::InvalidBody> {
    Ok(())
}

#[test]
fn only_stable_entries_are_dispatched_and_only_unstable_ones_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = CommitLog::open(
        CommitLogConfig {
            dir: dir.path().join("log"),
            segment_len: 8 * 1024,
            index_slots_per_file: 64,
            max_body_len: 4096,
            max_batch_bytes: 1 << 20,
            write_through_file: true,
            warm_ahead: true,
        },
        &accept,
    )
    .unwrap();
    let dispatcher = Dispatcher::open(&dir.path().join("cq"), 16, None).unwrap();
    let mut batch = log.begin_append().unwrap();
    for i in 0..10i64 {
        let rec = record("T", 0, format!("m{i}").as_bytes());
        batch
            .append_with(
                EntryKind::Normal,
                3,
                CHANNEL_MESSAGE,
                rec.len(),
                |placement, out| {
                    out.copy_from_slice(&rec);
                    patch_queue_offset(out, i).unwrap();
                    patch_physical_offset(out, placement.body_pos() as i64).unwrap();
                    Ok(())
                },
            )
            .unwrap();
    }
    batch.commit().unwrap();
    assert_eq!(log.last_index(), 10);

    // Entries 1..=6 commit.
    log.mark_stable(log.location(6).unwrap().end());
    let grown = dispatcher.dispatch_from_log(&log, u64::MAX).unwrap();
    assert_eq!(grown.len(), 1);
    assert_eq!(grown[0].1, 6);
    assert_eq!(dispatcher.queue("T", 0).unwrap().max_offset(), 6);

    // A new leader's log diverges after 8: fine. Cutting committed entries: refused.
    log.truncate_after(8).unwrap();
    assert!(matches!(
        log.truncate_after(4),
        Err(StoreError::LogMismatch(_))
    ));
    assert_eq!(log.read_entries(5, 100, 1 << 20).unwrap().len(), 4);
    assert_eq!(log.read_entries(1, 3, 1 << 20).unwrap().len(), 3);
    assert_eq!(
        log.read_entries(1, 100, 1).unwrap().len(),
        1,
        "at least one entry"
    );
    assert_eq!(log.term_at(8), Some(3));

    log.mark_stable(log.write_pos());
    dispatcher.dispatch_from_log(&log, u64::MAX).unwrap();
    assert_eq!(dispatcher.queue("T", 0).unwrap().max_offset(), 8);
    let entry = dispatcher.queue("T", 0).unwrap().get(7).unwrap();
    let (_, body) = log.read_body_at(entry.phys_offset as u64).unwrap();
    assert_eq!(message::MessageView::parse(&body).unwrap().body(), b"m7");
}
