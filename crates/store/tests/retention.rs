//! Retention by age at `deleteWhen` hours and by disk pressure, with an injected clock.

mod common;

use std::sync::Arc;

use common::{body_of, put_one, read_all_bodies, record, small_config, Msg};
use store::{
    AcceptAll, Environment, GetMessageStatus, ManualClock, ManualDiskUsage, StandaloneStore,
};

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: StandaloneStore,
    clock: Arc<ManualClock>,
    disk: Arc<ManualDiskUsage>,
}

/// 200 messages of ~2 KiB over 64 KiB segments: 7 segments.
fn fixture(reserved_hours: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.file_reserved_time_hours = reserved_hours;
    config.delete_when = vec![4];
    config.disk_max_used_space_ratio = 0.75;
    config.disk_space_clean_forcibly_ratio = 0.85;
    let clock = ManualClock::new(now_ms(), 12);
    let disk = ManualDiskUsage::new(0.10);
    let env = Environment {
        clock: clock.clone(),
        disk: disk.clone(),
    };
    let (store, _) = StandaloneStore::open_with(config, env).unwrap();
    for i in 0..200 {
        let body = body_of(i, 2000);
        let key = format!("key-{i}");
        let mut m = Msg::new("T", (i % 2) as i32, &body);
        m.keys = Some(&key);
        put_one(&store, &m.encode());
    }
    Fixture {
        _dir: dir,
        store,
        clock,
        disk,
    }
}

fn segment_count(store: &StandaloneStore) -> usize {
    store.commit_log().segments().len()
}

#[test]
fn nothing_is_removed_outside_delete_hours_or_before_expiry() {
    let f = fixture(72);
    let before = segment_count(&f.store);
    assert!(before >= 6, "{before}");
    // Expired, but 12 o'clock is not a delete hour and the disk has room.
    f.clock.advance_ms(73 * HOUR_MS);
    let report = f.store.run_retention_once().unwrap();
    assert!(!report.triggered);
    // A delete hour, but not expired yet.
    f.clock.set_ms(now_ms() + 71 * HOUR_MS);
    f.clock.set_hour(4);
    let report = f.store.run_retention_once().unwrap();
    assert!(report.triggered);
    assert_eq!(report.segments_removed, 0);
    assert_eq!(segment_count(&f.store), before);
}

#[test]
fn expired_segments_go_at_the_delete_hour_but_never_the_active_one() {
    let f = fixture(72);
    let before = segment_count(&f.store);
    f.clock.advance_ms(73 * HOUR_MS);
    f.clock.set_hour(4);
    let report = f.store.run_retention_once().unwrap();
    assert_eq!(report.segments_removed, before - 1);
    assert!(report.derived_files_removed > 0, "{report:?}");
    assert_eq!(segment_count(&f.store), 1);
    let log = f.store.commit_log();
    let first_pos = log.first_pos();
    assert!(first_pos > 0);

    // Queues start after the removed messages; old offsets are "too small".
    let min = f.store.reader().min_offset("T", 0);
    assert!(min > 0);
    let r = f
        .store
        .reader()
        .get_messages("T", 0, 0, 32, None, &AcceptAll);
    assert_eq!(r.status, GetMessageStatus::OffsetTooSmall);
    assert_eq!(r.next_begin_offset, min);
    let kept = read_all_bodies(&f.store, "T", 0);
    assert_eq!(kept.len() as i64, 100 - min);
    assert_eq!(kept.last().unwrap(), &body_of(198, 2000));
    assert!(f
        .store
        .reader()
        .query_by_key("T", "key-0", 10, 0, i64::MAX)
        .messages
        .is_empty());
    assert_eq!(
        f.store
            .reader()
            .query_by_key("T", "key-199", 10, 0, i64::MAX)
            .messages
            .len(),
        1
    );

    // Writing continues, and a restart agrees on where the log starts.
    let next = put_one(&f.store, &record("T", 0, b"after retention"));
    assert_eq!(next.queue_offset, 100);
    let root = f.store.config().store_path_root_dir.clone();
    let config = f.store.config().clone();
    drop(f.store);
    let (store, recovery) = StandaloneStore::open(config).unwrap();
    assert_eq!(recovery.commit_log.cut, None);
    assert_eq!(store.commit_log().first_pos(), first_pos);
    assert_eq!(store.reader().min_offset("T", 0), min);
    assert_eq!(store.reader().max_offset("T", 0), 101);
    assert!(root.exists());
}

#[test]
fn disk_pressure_removes_expired_segments_at_any_hour() {
    let f = fixture(72);
    f.clock.advance_ms(73 * HOUR_MS);
    f.disk.set(0.80);
    let report = f.store.run_retention_once().unwrap();
    assert!(report.triggered);
    assert!(!report.forced);
    assert!(report.segments_removed > 0);
}

#[test]
fn a_nearly_full_disk_forces_removal_of_unexpired_segments() {
    let f = fixture(72);
    let before = segment_count(&f.store);
    f.disk.set(0.80);
    let report = f.store.run_retention_once().unwrap();
    assert_eq!(
        report.segments_removed, 0,
        "0.80 only removes expired segments"
    );
    f.disk.set(0.90);
    let report = f.store.run_retention_once().unwrap();
    assert!(report.forced);
    assert_eq!(report.segments_removed, before - 1);
}

#[test]
fn manual_clean_ignores_the_hour() {
    let f = fixture(1);
    f.clock.advance_ms(2 * HOUR_MS);
    let report = f.store.clean_expired_files_now().unwrap();
    assert!(report.segments_removed > 0);
}

#[test]
fn a_held_position_keeps_its_segment_and_those_after_it_even_when_forced() {
    let f = fixture(1);
    // Queue T-0 holds the even messages: its 60th is message 120, in a middle segment.
    let held = f.store.reader().queue_entry_position("T", 0, 60).unwrap();
    let segments = f.store.commit_log().segments();
    let holding = segments.iter().position(|s| s.end() > held as u64).unwrap();
    assert!(holding > 0 && holding < segments.len() - 1, "{holding}");
    f.store.reader().hold_retention("timer", Some(held));
    f.clock.advance_ms(2 * HOUR_MS);
    f.disk.set(0.95);
    let report = f.store.clean_expired_files_now().unwrap();
    assert_eq!(report.segments_removed, holding);
    assert!(f.store.commit_log().first_pos() <= held as u64);
    let kept = f
        .store
        .reader()
        .get_messages("T", 0, 60, 1, None, &AcceptAll);
    assert_eq!(kept.messages.len(), 1, "the held message is still readable");

    // Moved on past it: the segment may go.
    f.store.reader().hold_retention("timer", None);
    let report = f.store.clean_expired_files_now().unwrap();
    assert!(report.segments_removed > 0);
    assert!(f.store.commit_log().first_pos() > held as u64);
}
