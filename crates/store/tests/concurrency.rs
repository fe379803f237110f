//! Readers running alongside writers only ever see complete, correctly ordered messages.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{record, small_config};
use message::MessageView;
use store::{AcceptAll, GetMessageStatus, StandaloneStore};

#[test]
fn readers_see_a_growing_consistent_prefix_while_writers_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.flush_interval_commit_log_ms = 5;
    config.flush_interval_consume_queue_ms = 5;
    let (store, _) = StandaloneStore::open(config).unwrap();
    let store = Arc::new(store);
    const WRITERS: i32 = 2;
    const PER_WRITER: usize = 2000;

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..PER_WRITER {
                    // Each writer owns one queue, so its messages must appear in its order.
                    let body = format!("w{w}-{i:06}-{}", "x".repeat(i % 300));
                    let rec = record("T", w, body.as_bytes());
                    store.put_messages_nowait(&[&rec]).unwrap();
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..WRITERS)
        .map(|q| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut offset = 0i64;
                let mut seen = 0usize;
                while seen < PER_WRITER && Instant::now() < deadline {
                    let r = store
                        .reader()
                        .get_messages("T", q, offset, 32, None, &AcceptAll);
                    match r.status {
                        GetMessageStatus::Found => {
                            for (m, qo) in r.messages.iter().zip(&r.queue_offsets) {
                                let view = MessageView::parse(m).expect("complete record");
                                assert_eq!(view.queue_offset(), *qo);
                                let expected = format!("w{q}-{seen:06}-");
                                assert!(view.body().starts_with(expected.as_bytes()));
                                seen += 1;
                            }
                            offset = r.next_begin_offset;
                        }
                        GetMessageStatus::OffsetOverflowOne
                        | GetMessageStatus::NoMatchedLogicQueue
                        | GetMessageStatus::NoMessageInQueue => std::thread::yield_now(),
                        other => panic!("unexpected status {other:?}"),
                    }
                }
                seen
            })
        })
        .collect();

    for w in writers {
        w.join().unwrap();
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), PER_WRITER);
    }
}
