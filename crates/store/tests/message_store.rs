//! Put/get/query behaviour of the standalone message store.

mod common;

use std::sync::Arc;

use common::{body_of, put_one, read_all_bodies, record, small_config, Msg};
use message::{tag_hash, MessageView};
use store::{AcceptAll, Boundary, GetMessageStatus, StandaloneStore, StoreError};

#[test]
fn queue_offsets_are_dense_and_records_are_patched() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let mut results = Vec::new();
    for i in 0..10 {
        let q = (i % 2) as i32;
        results.push((q, put_one(&store, &record("TopicA", q, &body_of(i, 100)))));
    }
    for (q, expect) in [(0, vec![0, 1, 2, 3, 4]), (1, vec![0, 1, 2, 3, 4])] {
        let offsets: Vec<i64> = results
            .iter()
            .filter(|(qq, _)| *qq == q)
            .map(|(_, r)| r.queue_offset)
            .collect();
        assert_eq!(offsets, expect);
    }
    for (q, r) in &results {
        let stored = store.reader().message_at(r.phys_offset).unwrap();
        let view = MessageView::parse(&stored).unwrap();
        assert_eq!(view.physical_offset(), r.phys_offset);
        assert_eq!(view.queue_offset(), r.queue_offset);
        assert_eq!(view.queue_id(), *q);
        assert_eq!(view.store_timestamp_ms(), r.store_timestamp_ms);
        assert_eq!(stored.len() as i32, r.size);
    }
    assert!(
        store
            .reader()
            .message_at(results[0].1.phys_offset + 1)
            .is_none(),
        "not a record start"
    );
    assert_eq!(store.reader().max_offset("TopicA", 0), 5);
    assert_eq!(store.reader().min_offset("TopicA", 0), 0);
    assert_eq!(store.reader().max_offset("Nope", 0), 0);
}

/// A message whose bytes rotted on disk is never served. A standalone store holds no other
/// copy to repair it from: its readers pass over it as over a removed message (a group
/// member's wait for the repair instead: `group_sim`).
#[test]
fn a_rotted_message_is_never_served_and_a_standalone_store_passes_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| body_of(i, 200)).collect();
    for body in &bodies {
        put_one(&store, &record("Rot", 0, body));
    }
    assert!(
        flip_first(dir.path(), &bodies[1][..40]),
        "the body is on disk"
    );
    let got = store
        .reader()
        .get_messages("Rot", 0, 0, 10, None, &AcceptAll);
    let served: Vec<Vec<u8>> = got
        .messages
        .iter()
        .map(|m| MessageView::parse(m).unwrap().body().to_vec())
        .collect();
    assert_eq!(served, vec![bodies[0].clone(), bodies[2].clone()]);
    assert_eq!(got.next_begin_offset, 3);
}

/// Flips one bit of the first copy of `needle` in any file under `dir`, in place.
fn flip_first(dir: &std::path::Path, needle: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if flip_first(&path, needle) {
                return true;
            }
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.write_all_at(&[bytes[at + 20] ^ 0x04], (at + 20) as u64)
                .unwrap();
            return true;
        }
    }
    false
}

#[test]
fn batch_put_assigns_consecutive_offsets_across_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let recs: Vec<Vec<u8>> = (0..6)
        .map(|i| record("T", (i % 3) as i32, &body_of(i, 50)))
        .collect();
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    let pending = store.put_messages_nowait(&refs).unwrap();
    let offsets: Vec<i64> = pending.messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(offsets, vec![0, 0, 0, 1, 1, 1]);
    for q in 0..3 {
        assert_eq!(store.reader().max_offset("T", q), 2);
    }
}

#[test]
fn get_statuses_follow_rocketmq() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let unknown = store.reader().get_messages("T", 0, 0, 32, None, &AcceptAll);
    assert_eq!(unknown.status, GetMessageStatus::NoMatchedLogicQueue);
    for i in 0..40 {
        put_one(&store, &record("T", 0, &body_of(i, 200)));
    }
    let first = store.reader().get_messages("T", 0, 0, 32, None, &AcceptAll);
    assert_eq!(first.status, GetMessageStatus::Found);
    assert_eq!(first.messages.len(), 32);
    assert_eq!(first.next_begin_offset, 32);
    assert_eq!((first.min_offset, first.max_offset), (0, 40));
    assert_eq!(first.queue_offsets, (0..32).collect::<Vec<i64>>());
    let rest = store
        .reader()
        .get_messages("T", 0, 32, 32, None, &AcceptAll);
    assert_eq!(rest.messages.len(), 8);
    assert_eq!(rest.next_begin_offset, 40);
    let caught_up = store
        .reader()
        .get_messages("T", 0, 40, 32, None, &AcceptAll);
    assert_eq!(caught_up.status, GetMessageStatus::OffsetOverflowOne);
    assert_eq!(caught_up.next_begin_offset, 40);
    let beyond = store
        .reader()
        .get_messages("T", 0, 99, 32, None, &AcceptAll);
    assert_eq!(beyond.status, GetMessageStatus::OffsetOverflowBadly);
    // Byte limit: at least one message, never more than the limit after the first.
    let one_kb = store
        .reader()
        .get_messages("T", 0, 0, 32, Some(700), &AcceptAll);
    let size = one_kb.messages[0].len();
    assert_eq!(one_kb.messages.len(), 700 / size);
    assert_eq!(one_kb.next_begin_offset, (700 / size) as i64);
    let tiny = store
        .reader()
        .get_messages("T", 0, 0, 32, Some(1), &AcceptAll);
    assert_eq!(tiny.messages.len(), 1);
}

#[test]
fn tag_filter_skips_and_reports_no_match() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    for i in 0..10 {
        let mut m = Msg::new("T", 0, b"x");
        m.tags = Some(if i < 8 { "TagA" } else { "TagB" });
        put_one(&store, &m.encode());
    }
    let tag_b = tag_hash("TagB");
    let only_b = |code: i64| code == tag_b;
    let r = store.reader().get_messages("T", 0, 0, 32, None, &only_b);
    assert_eq!(r.status, GetMessageStatus::Found);
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.queue_offsets, vec![8, 9]);
    assert_eq!(r.next_begin_offset, 10);
    let parsed = message::TagFilter::parse("TagB || TagC").unwrap();
    assert_eq!(
        store
            .reader()
            .get_messages("T", 0, 0, 32, None, &parsed)
            .messages
            .len(),
        2
    );
    let only_c = |code: i64| code == tag_hash("TagC");
    let none = store.reader().get_messages("T", 0, 0, 32, None, &only_c);
    assert_eq!(none.status, GetMessageStatus::NoMatchedMessage);
    assert!(none.messages.is_empty());
    assert_eq!(none.next_begin_offset, 10, "filtered entries are consumed");
}

/// A filter that reads the stored record (SQL92 over properties), skipping by body here.
struct BodyIs(&'static [u8]);

impl store::MessageFilter for BodyIs {
    fn matches(&self, _tags_code: i64) -> bool {
        true
    }

    fn matches_record(&self, record: &[u8]) -> bool {
        MessageView::parse(record).is_ok_and(|view| view.body() == self.0)
    }
}

#[test]
fn a_record_filter_skips_like_a_tag_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    for i in 0..10 {
        let body: &[u8] = if i % 4 == 3 { b"wanted" } else { b"other" };
        put_one(&store, &Msg::new("T", 0, body).encode());
    }
    let wanted = store
        .reader()
        .get_messages("T", 0, 0, 32, None, &BodyIs(b"wanted"));
    assert_eq!(wanted.status, GetMessageStatus::Found);
    assert_eq!(wanted.queue_offsets, vec![3, 7]);
    assert_eq!(wanted.next_begin_offset, 10);
    let one = store
        .reader()
        .get_messages("T", 0, 0, 1, None, &BodyIs(b"wanted"));
    assert_eq!(one.queue_offsets, vec![3]);
    assert_eq!(one.next_begin_offset, 4, "stops after the first match");
    let none = store
        .reader()
        .get_messages("T", 0, 0, 32, None, &BodyIs(b"absent"));
    assert_eq!(none.status, GetMessageStatus::NoMatchedMessage);
    assert!(none.messages.is_empty());
    assert_eq!(none.next_begin_offset, 10, "skipped records are consumed");
}

#[test]
fn queries_by_key_time_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let clock = store::ManualClock::new(1_000_000, 12);
    let env = store::Environment {
        clock: clock.clone(),
        disk: store::ManualDiskUsage::new(0.1),
    };
    let (store, _) = StandaloneStore::open_with(small_config(dir.path()), env).unwrap();
    let mut phys = Vec::new();
    for i in 0..20 {
        clock.set_ms(1_000_000 + (i / 2) as i64 * 1000);
        let key = format!("order-{}", i % 5);
        let uniq = format!("UNIQ{i:04}");
        let mut m = Msg::new("T", 0, b"payload");
        m.keys = Some(&key);
        m.uniq = Some(&uniq);
        phys.push(put_one(&store, &m.encode()).phys_offset);
    }
    let q = store.reader().query_by_key("T", "order-3", 10, 0, i64::MAX);
    let found: Vec<i64> = q
        .messages
        .iter()
        .map(|m| MessageView::parse(m).unwrap().physical_offset())
        .collect();
    assert_eq!(
        found,
        vec![phys[18], phys[13], phys[8], phys[3]],
        "newest first"
    );
    let q = store.reader().query_by_key("T", "order-3", 2, 0, i64::MAX);
    assert_eq!(q.messages.len(), 2);
    let q = store
        .reader()
        .query_by_key("T", "UNIQ0007", 10, 0, i64::MAX);
    assert_eq!(q.messages.len(), 1);
    assert!(store
        .reader()
        .query_by_key("Other", "order-3", 10, 0, i64::MAX)
        .messages
        .is_empty());
    let q = store
        .reader()
        .query_by_key("T", "order-3", 10, 1_000_000 + 5_000, i64::MAX);
    assert_eq!(q.messages.len(), 2, "time-bounded");

    assert_eq!(
        store
            .reader()
            .offset_by_timestamp("T", 0, 1_003_000, Boundary::Lower),
        6
    );
    assert_eq!(
        store
            .reader()
            .offset_by_timestamp("T", 0, 1_003_000, Boundary::Upper),
        7
    );
    assert_eq!(
        store
            .reader()
            .offset_by_timestamp("T", 0, 0, Boundary::Lower),
        0
    );
    assert_eq!(
        store
            .reader()
            .offset_by_timestamp("T", 0, 9_999_999, Boundary::Lower),
        20
    );
    assert_eq!(
        store.reader().earliest_message_time("T", 0),
        Some(1_000_000)
    );
    assert_eq!(store.reader().last_message_time("T", 0), Some(1_009_000));
    assert_eq!(store.reader().last_message_time("T", 1), None);
    assert_eq!(
        store.reader().earliest_message_time_in_store(),
        Some(1_000_000)
    );
}

#[test]
fn store_timestamps_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let clock = store::ManualClock::new(5_000, 12);
    let env = store::Environment {
        clock: clock.clone(),
        disk: store::ManualDiskUsage::new(0.1),
    };
    let (store, _) = StandaloneStore::open_with(small_config(dir.path()), env).unwrap();
    let a = put_one(&store, &record("T", 0, b"a"));
    clock.set_ms(1_000);
    let b = put_one(&store, &record("T", 0, b"b"));
    assert_eq!(a.store_timestamp_ms, 5_000);
    assert_eq!(b.store_timestamp_ms, 5_000);
}

#[test]
fn restart_continues_queue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
        for i in 0..30 {
            put_one(&store, &record("T", 1, &body_of(i, 3000)));
        }
    }
    let (store, recovery) = StandaloneStore::open(small_config(dir.path())).unwrap();
    assert_eq!(recovery.commit_log.cut, None);
    assert_eq!(store.reader().max_offset("T", 1), 30);
    assert_eq!(put_one(&store, &record("T", 1, b"next")).queue_offset, 30);
    let bodies = read_all_bodies(&store, "T", 1);
    assert_eq!(bodies.len(), 31);
    assert_eq!(bodies[29], body_of(29, 3000));
}

#[test]
fn bad_input_is_refused_without_consuming_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    put_one(&store, &record("T", 0, b"ok"));
    let good = record("T", 0, b"fine");
    let mut torn = record("T", 0, b"broken");
    torn.truncate(torn.len() - 3);
    assert!(matches!(
        store.put_messages_nowait(&[&good, &torn]),
        Err(StoreError::BadRecord(_))
    ));
    let huge = record("T", 0, &vec![0u8; 9000]);
    assert!(matches!(
        store.put_messages_nowait(&[&huge]),
        Err(StoreError::EntryTooLarge { .. })
    ));
    let many: Vec<&[u8]> = std::iter::repeat_n(good.as_slice(), 2000).collect();
    assert!(matches!(
        store.put_messages_nowait(&many),
        Err(StoreError::BatchTooLarge { .. })
    ));
    let evil = record("../escape", 0, b"x");
    assert!(matches!(
        store.put_messages_nowait(&[&evil]),
        Err(StoreError::BadRecord(_))
    ));
    assert_eq!(
        put_one(&store, &good).queue_offset,
        1,
        "failed puts consumed no offsets"
    );
    assert_eq!(
        read_all_bodies(&store, "T", 0),
        vec![b"ok".to_vec(), b"fine".to_vec()]
    );
}

#[test]
fn half_transaction_messages_get_no_queue_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let mut half = Msg::new("T", 0, b"half");
    half.sys_flag = 0x4;
    let r = put_one(&store, &half.encode());
    assert_eq!(r.queue_offset, 0);
    assert!(store.reader().message_at(r.phys_offset).is_some());
    assert_eq!(store.reader().max_offset("T", 0), 0);
    assert_eq!(put_one(&store, &record("T", 0, b"normal")).queue_offset, 0);
}

#[test]
fn arrival_listener_sees_new_max_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let calls = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    store
        .reader()
        .set_arrival_listener(Arc::new(move |topic: &str, q: i32, max: i64| {
            seen.lock().push((topic.to_string(), q, max));
        }));
    put_one(&store, &record("T", 3, b"a"));
    put_one(&store, &record("T", 3, b"b"));
    assert_eq!(
        *calls.lock(),
        vec![("T".to_string(), 3, 1), ("T".to_string(), 3, 2)]
    );
}

#[test]
fn delete_topic_drops_its_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    put_one(&store, &record("Gone", 0, b"a"));
    put_one(&store, &record("Kept", 0, b"b"));
    store.delete_topic("Gone").unwrap();
    assert_eq!(
        store
            .reader()
            .get_messages("Gone", 0, 0, 32, None, &AcceptAll)
            .status,
        GetMessageStatus::NoMatchedLogicQueue
    );
    assert!(!dir.path().join("consumequeue/Gone").exists());
    assert_eq!(
        put_one(&store, &record("Gone", 0, b"again")).queue_offset,
        0
    );
    assert_eq!(store.reader().max_offset("Kept", 0), 1);
}

#[test]
fn reads_share_memory_and_outlive_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let held;
    {
        let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
        put_one(&store, &record("T", 0, b"kept alive"));
        held = store
            .reader()
            .get_messages("T", 0, 0, 1, None, &AcceptAll)
            .messages;
    }
    assert_eq!(held.len(), 1);
    assert_eq!(MessageView::parse(&held[0]).unwrap().body(), b"kept alive");
}

#[test]
fn runtime_info_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    put_one(&store, &record("T", 0, b"a"));
    store.reader().get_messages("T", 0, 0, 32, None, &AcceptAll);
    let info = store.runtime_info();
    assert_eq!(info["putMessageTimesTotal"], "1");
    assert_eq!(info["getFoundTimesTotal"], "1");
    assert_eq!(info["getTransferedMsgCount"], "1");
}

#[test]
fn store_timestamps_stay_monotonic_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let env = |ms| store::Environment {
        clock: store::ManualClock::new(ms, 12),
        disk: store::ManualDiskUsage::new(0.1),
    };
    {
        let (store, _) = StandaloneStore::open_with(small_config(dir.path()), env(50_000)).unwrap();
        put_one(&store, &record("T", 0, b"a"));
    }
    let (store, _) = StandaloneStore::open_with(small_config(dir.path()), env(10_000)).unwrap();
    assert_eq!(
        put_one(&store, &record("T", 0, b"b")).store_timestamp_ms,
        50_000
    );
}

#[test]
fn scheduled_messages_carry_their_delivery_time_as_tags_code() {
    let dir = tempfile::tempdir().unwrap();
    let env = store::Environment {
        clock: store::ManualClock::new(100_000, 12),
        disk: store::ManualDiskUsage::new(0.1),
    };
    let (store, _) = StandaloneStore::open_with(small_config(dir.path()), env).unwrap();
    let props = message::properties::encode([("DELAY", "3"), ("TAGS", "TagA")]);
    let draft = message::MessageDraft {
        topic: "SCHEDULE_TOPIC_XXXX",
        body: b"later",
        flag: 0,
        properties: &props,
        queue_id: 2,
        sys_flag: 0,
        born_timestamp_ms: 1,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_host: "127.0.0.1:2".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp_ms: 0,
    };
    put_one(&store, &message::encode(&draft).unwrap());
    // Level 3 of the default "1s 5s 10s ..." is 10 s.
    let due_now = |code: i64| code <= 100_000 + 9_999;
    assert_eq!(
        store
            .reader()
            .get_messages("SCHEDULE_TOPIC_XXXX", 2, 0, 32, None, &due_now)
            .status,
        GetMessageStatus::NoMatchedMessage
    );
    let due_later = |code: i64| code == 110_000;
    assert_eq!(
        store
            .reader()
            .get_messages("SCHEDULE_TOPIC_XXXX", 2, 0, 32, None, &due_later)
            .messages
            .len(),
        1
    );
}

#[test]
fn a_store_directory_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = StandaloneStore::open(small_config(dir.path())).unwrap();
    let second = StandaloneStore::open(small_config(dir.path()));
    assert!(matches!(second, Err(StoreError::Config(_))));
    drop(first);
    StandaloneStore::open(small_config(dir.path())).unwrap();
}
