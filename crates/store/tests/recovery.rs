//! Crash recovery: restart must serve exactly the valid prefix of the CommitLog, with
//! ConsumeQueues rebuilt or cut to match.
//!
//! A crash is simulated by keeping the checkpoints of an earlier flush: the store is shut
//! down, those older checkpoints are put back, and the files are damaged the way a crash or
//! a bad disk would.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use common::{body_of, put_one, read_all_bodies, record, small_config};
use raft::entry::{Entry, ENTRY_HEADER_LEN};
use store::{PutMessageResult, StandaloneStore};

const SEGMENT: u64 = 64 * 1024;

fn segment_file(dir: &Path, pos: u64) -> (PathBuf, u64) {
    let start = pos - pos % SEGMENT;
    (dir.join(format!("commitlog/data/{start:020}")), pos - start)
}

fn checkpoint_files(dir: &Path) -> [PathBuf; 2] {
    [dir.join("checkpoint"), dir.join("commitlog/checkpoint")]
}

fn save_checkpoints(dir: &Path) -> Vec<Vec<u8>> {
    checkpoint_files(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn restore_checkpoints(dir: &Path, saved: &[Vec<u8>]) {
    for (path, bytes) in checkpoint_files(dir).iter().zip(saved) {
        std::fs::write(path, bytes).unwrap();
    }
}

fn write_at(path: &Path, at: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn read_at(path: &Path, at: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at).unwrap();
    buf
}

/// Puts 5 messages, checkpoints, puts 5 more, then "crashes" back to that checkpoint.
/// Returns the put results and the bodies.
fn ten_messages_with_old_checkpoint(dir: &Path) -> (Vec<PutMessageResult>, Vec<Vec<u8>>) {
    let (store, _) = StandaloneStore::open(small_config(dir)).unwrap();
    let bodies: Vec<Vec<u8>> = (0..10).map(|i| body_of(i, 900)).collect();
    let mut results = Vec::new();
    for b in &bodies[..5] {
        results.push(put_one(&store, &record("T", 0, b)));
    }
    store.flush().unwrap();
    let saved = save_checkpoints(dir);
    for b in &bodies[5..] {
        results.push(put_one(&store, &record("T", 0, b)));
    }
    drop(store);
    restore_checkpoints(dir, &saved);
    (results, bodies)
}

fn frame_span(r: &PutMessageResult) -> (u64, u64) {
    let pos = r.phys_offset as u64 - ENTRY_HEADER_LEN as u64;
    (pos, ENTRY_HEADER_LEN as u64 + r.size as u64)
}

fn assert_serves_prefix(dir: &Path, bodies: &[Vec<u8>], valid: usize) {
    let (store, recovery) = StandaloneStore::open(small_config(dir)).unwrap();
    assert_eq!(
        store.reader().max_offset("T", 0),
        valid as i64,
        "recovery: {recovery:?}"
    );
    assert_eq!(read_all_bodies(&store, "T", 0), bodies[..valid].to_vec());
    // The next message takes the first free offset, and survives another restart.
    let next = put_one(&store, &record("T", 0, b"after recovery"));
    assert_eq!(next.queue_offset, valid as i64);
    drop(store);
    let (store, recovery) = StandaloneStore::open(small_config(dir)).unwrap();
    assert_eq!(recovery.commit_log.cut, None);
    let mut expected = bodies[..valid].to_vec();
    expected.push(b"after recovery".to_vec());
    assert_eq!(read_all_bodies(&store, "T", 0), expected);
}

#[test]
fn torn_write_in_the_middle_of_the_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (results, bodies) = ten_messages_with_old_checkpoint(dir.path());
    let (pos, size) = frame_span(&results[9]);
    let (file, rel) = segment_file(dir.path(), pos);
    write_at(
        &file,
        rel + size / 2,
        &vec![0u8; (size - size / 2) as usize],
    );
    let (_, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert!(recovery.commit_log.cut.is_some(), "{recovery:?}");
    assert_eq!(recovery.commit_log.last_index, 9);
    assert_serves_prefix(dir.path(), &bodies, 9);
}

#[test]
fn file_cut_short_mid_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (results, bodies) = ten_messages_with_old_checkpoint(dir.path());
    let (pos, size) = frame_span(&results[8]);
    let (file, rel) = segment_file(dir.path(), pos);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(rel + size - 10)
        .unwrap();
    assert_serves_prefix(dir.path(), &bodies, 8);
}

#[test]
fn flipped_bit_in_a_body_cuts_from_there_and_queues_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (results, bodies) = ten_messages_with_old_checkpoint(dir.path());
    let (pos, _) = frame_span(&results[7]);
    let (file, rel) = segment_file(dir.path(), pos);
    let at = rel + ENTRY_HEADER_LEN as u64 + 200;
    let mut byte = read_at(&file, at, 1);
    byte[0] ^= 0x10;
    write_at(&file, at, &byte);
    // The ConsumeQueue still has entries 7..9 pointing past the cut: they must go.
    assert_serves_prefix(dir.path(), &bodies, 7);
}

#[test]
fn garbage_after_the_end_is_erased() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let bodies: Vec<Vec<u8>> = (0..6).map(|i| body_of(i, 500)).collect();
    let mut last = None;
    for b in &bodies {
        last = Some(put_one(&store, &record("T", 0, b)));
    }
    drop(store);
    let (pos, size) = frame_span(&last.unwrap());
    let (file, rel) = segment_file(dir.path(), pos + size);
    let garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write_at(&file, rel, &garbage);
    let (_, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert!(recovery.commit_log.cut.is_some());
    assert_eq!(recovery.commit_log.last_index, 6);
    assert_eq!(
        read_at(&file, rel, 3000),
        vec![0u8; 3000],
        "garbage is zeroed"
    );
    assert_serves_prefix(dir.path(), &bodies, 6);
}

#[test]
fn frame_with_valid_checksums_but_no_message_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (results, bodies) = ten_messages_with_old_checkpoint(dir.path());
    let (pos, size) = frame_span(&results[6]);
    let (file, rel) = segment_file(dir.path(), pos);
    let frame = Bytes::from(read_at(&file, rel, size as usize));
    let mut entry = Entry::decode(&frame).unwrap();
    entry.body = Bytes::from(vec![0xAB; entry.body.len()]);
    let mut reframed = BytesMut::new();
    entry.encode(&mut reframed);
    write_at(&file, rel, &reframed);
    assert_serves_prefix(dir.path(), &bodies, 6);
}

#[test]
fn lost_consume_queue_tail_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bodies) = ten_messages_with_old_checkpoint(dir.path());
    // Entries 6..9 never reached the disk.
    let cq = dir.path().join(format!("consumequeue/T/0/{:020}", 0));
    write_at(&cq, 6 * 20, &[0u8; 4 * 20]);
    let (store, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(recovery.commit_log.cut, None);
    assert!(recovery.dispatch.records >= 5, "{recovery:?}");
    assert_eq!(read_all_bodies(&store, "T", 0), bodies);
}

#[test]
fn consume_queue_gap_after_the_checkpoint_keeps_what_it_covers() {
    // Found by the group simulation: after a power cut the queue entries written after the
    // checkpoint were zeros in one file and present in the next (the kernel had written
    // back only that one). Recovery took the zeros for real entries below the last one the
    // checkpoint covers and dropped that one too, losing its message from the queue.
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..25).map(|i| body_of(i, 300)).collect();
    {
        let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
        for b in &bodies[..5] {
            put_one(&store, &record("T", 0, b));
        }
        store.flush().unwrap();
        let saved = save_checkpoints(dir.path());
        for b in &bodies[5..] {
            put_one(&store, &record("T", 0, b));
        }
        drop(store);
        restore_checkpoints(dir.path(), &saved);
    }
    // Entries 5..15 (the rest of the first 16-entry file) never reached the disk; the next
    // file, entries 16..24, did.
    let cq = dir.path().join(format!("consumequeue/T/0/{:020}", 0));
    write_at(&cq, 5 * 20, &[0u8; 11 * 20]);
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let names = |bodies: &[Vec<u8>]| -> Vec<String> {
        bodies
            .iter()
            .map(|b| String::from_utf8_lossy(&b[..16]).into_owned())
            .collect()
    };
    assert_eq!(names(&read_all_bodies(&store, "T", 0)), names(&bodies));
}

#[test]
fn torn_consume_queue_entry_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bodies) = ten_messages_with_old_checkpoint(dir.path());
    let cq = dir.path().join(format!("consumequeue/T/0/{:020}", 0));
    write_at(&cq, 9 * 20, &[0x7F; 12]);
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(read_all_bodies(&store, "T", 0), bodies);
}

#[test]
fn all_derived_files_lost_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..200).map(|i| body_of(i, 1000)).collect();
    {
        let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
        for (i, b) in bodies.iter().enumerate() {
            let mut m = common::Msg::new("T", (i % 4) as i32, b);
            let key = format!("k{i}");
            m.keys = Some(&key);
            put_one(&store, &m.encode());
        }
    }
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let (store, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(recovery.dispatch.records, 200);
    for q in 0..4 {
        let expected: Vec<Vec<u8>> = bodies.iter().skip(q).step_by(4).cloned().collect();
        assert_eq!(read_all_bodies(&store, "T", q as i32), expected);
    }
    assert_eq!(
        store
            .reader()
            .query_by_key("T", "k123", 10, 0, i64::MAX)
            .messages
            .len(),
        1
    );
}

#[test]
fn recovery_after_many_segments_verifies_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..300).map(|i| body_of(i, 1500)).collect();
    let saved;
    {
        let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
        for b in &bodies[..250] {
            put_one(&store, &record("T", 0, b));
        }
        store.flush().unwrap();
        saved = save_checkpoints(dir.path());
        for b in &bodies[250..] {
            put_one(&store, &record("T", 0, b));
        }
    }
    restore_checkpoints(dir.path(), &saved);
    let (store, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(
        recovery.commit_log.frames_verified, 50,
        "only the part after the checkpoint"
    );
    assert_eq!(recovery.dispatch.records, 50);
    assert_eq!(read_all_bodies(&store, "T", 0).len(), 300);
}

#[test]
fn deleted_topic_does_not_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    for i in 0..3 {
        put_one(&store, &record("Gone", 0, &body_of(i, 100)));
    }
    store.delete_topic("Gone").unwrap();
    let saved = save_checkpoints(dir.path());
    assert_eq!(
        put_one(&store, &record("Gone", 0, b"reborn")).queue_offset,
        0
    );
    drop(store);
    restore_checkpoints(dir.path(), &saved);
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(read_all_bodies(&store, "Gone", 0), vec![b"reborn".to_vec()]);
}

/// The maintenance thread flushes the key index less often than the ConsumeQueues; a crash
/// that loses what the index wrote since its last flush must not lose keys, so the
/// checkpoint it writes in between never claims those records dispatched.
#[test]
fn keys_indexed_after_the_key_index_last_flush_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.flush_interval_consume_queue_ms = 5;
    let put_keyed = |store: &StandaloneStore, i: usize| {
        let body = body_of(i, 500);
        let mut m = common::Msg::new("T", 0, &body);
        let key = format!("k{i}");
        m.keys = Some(&key);
        put_one(store, &m.encode())
    };
    let index_dir = dir.path().join("index");
    let (checkpoints, index_files) = {
        let (store, _) = StandaloneStore::open(config.clone()).unwrap();
        for i in 0..5 {
            put_keyed(&store, i);
        }
        store.flush().unwrap();
        // What the key index holds on disk from here on, as far as a crash is concerned.
        let index_files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&index_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        for i in 5..10 {
            put_keyed(&store, i);
        }
        // Bounded: the maintenance thread runs every 5 ms; the ConsumeQueue entries of the
        // last records reach the disk well within this.
        std::thread::sleep(std::time::Duration::from_millis(300));
        (save_checkpoints(dir.path()), index_files)
    };
    // The crash: the checkpoints of the last maintenance round, the key index as last flushed.
    restore_checkpoints(dir.path(), &checkpoints);
    for entry in std::fs::read_dir(&index_dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (path, bytes) in &index_files {
        std::fs::write(path, bytes).unwrap();
    }
    let (store, _) = StandaloneStore::open(config).unwrap();
    for i in 0..10 {
        let found = store
            .reader()
            .query_by_key("T", &format!("k{i}"), 10, 0, i64::MAX)
            .messages
            .len();
        assert_eq!(found, 1, "key k{i} after the crash");
    }
}
