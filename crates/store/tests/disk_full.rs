//! Writes are refused with a typed error while the filesystem is nearly full.

mod common;

use common::{put_one, read_all_bodies, record, small_config};
use store::{Environment, ManualClock, ManualDiskUsage, StandaloneStore, StoreError};

#[test]
fn writes_are_refused_above_the_threshold_and_resume_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.disk_space_warning_level_ratio = 0.90;
    let disk = ManualDiskUsage::new(0.50);
    let env = Environment {
        clock: ManualClock::new(1_000, 12),
        disk: disk.clone(),
    };
    let (store, _) = StandaloneStore::open_with(config, env).unwrap();
    put_one(&store, &record("T", 0, b"before"));
    disk.set(0.95);
    match store.put_messages_nowait(&[&record("T", 0, b"refused")]) {
        Err(StoreError::DiskFull {
            used_ratio,
            limit_ratio,
        }) => {
            assert!((used_ratio - 0.95).abs() < 1e-9);
            assert!((limit_ratio - 0.90).abs() < 1e-9);
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    let message = StoreError::DiskFull {
        used_ratio: 0.95,
        limit_ratio: 0.9,
    }
    .to_string();
    assert!(
        message.contains("95.0%") && message.contains("90.0%"),
        "{message}"
    );
    disk.set(0.60);
    assert_eq!(put_one(&store, &record("T", 0, b"after")).queue_offset, 1);
    assert_eq!(
        read_all_bodies(&store, "T", 0),
        vec![b"before".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn real_filesystem_threshold_of_zero_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.disk_space_warning_level_ratio = 0.0;
    let (store, _) = StandaloneStore::open(config).unwrap();
    assert!(matches!(
        store.put_messages_nowait(&[&record("T", 0, b"x")]),
        Err(StoreError::DiskFull { .. })
    ));
}
