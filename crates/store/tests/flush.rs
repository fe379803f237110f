//! Flush policies: SYNC_FLUSH group commit and the async background flush.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{put_one, record, small_config, wait_until};
use store::{FlushDiskType, PutStatus, StandaloneStore};

#[test]
fn sync_flush_shares_fsyncs_between_concurrent_puts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.flush_disk_type = FlushDiskType::SyncFlush;
    config.mapped_file_size_commit_log = 4 << 20;
    let (store, _) = StandaloneStore::open(config).unwrap();
    let store = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    const TASKS: usize = 64;
    const PUTS_PER_TASK: usize = 20;
    let before = store.fsync_count();
    runtime.block_on(async {
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let store = Arc::clone(&store);
            handles.push(tokio::spawn(async move {
                for i in 0..PUTS_PER_TASK {
                    let rec = record("T", (t % 8) as i32, format!("{t}-{i}").as_bytes());
                    let result = store.put_messages(&[&rec]).await.unwrap();
                    assert_eq!(result.status, PutStatus::PutOk);
                    // Acknowledged means durable.
                    assert!(
                        store.commit_log().durable().pos as i64 > result.messages[0].phys_offset
                    );
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    let fsyncs = store.fsync_count() - before;
    let puts = (TASKS * PUTS_PER_TASK) as u64;
    assert!(fsyncs > 0);
    assert!(
        fsyncs * 2 <= puts,
        "{fsyncs} fsyncs for {puts} puts: no group commit"
    );
    println!("{puts} sync puts took {fsyncs} fsyncs");
}

#[test]
fn async_flush_makes_data_durable_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.flush_interval_commit_log_ms = 10;
    config.flush_interval_consume_queue_ms = 10;
    let (store, _) = StandaloneStore::open(config).unwrap();
    let r = put_one(&store, &record("T", 0, b"lazy"));
    let end = r.phys_offset as u64 + r.size as u64;
    assert!(
        wait_until(Duration::from_secs(10), || store.commit_log().durable().pos
            >= end),
        "the background flush never ran"
    );
}

#[test]
fn sync_put_after_restart_waits_for_its_own_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.flush_disk_type = FlushDiskType::SyncFlush;
    {
        let (store, _) = StandaloneStore::open(config.clone()).unwrap();
        put_one(&store, &record("T", 0, b"first"));
    }
    let (store, _) = StandaloneStore::open(config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime
        .block_on(store.put_messages(&[&record("T", 0, b"second")]))
        .unwrap();
    assert_eq!(result.status, PutStatus::PutOk);
    assert_eq!(result.messages[0].queue_offset, 1);
    assert!(store.commit_log().durable().pos as i64 > result.messages[0].phys_offset);
}
