//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use message::{encode, properties, MessageDraft, MessageView};
use store::{StandaloneStore, StoreConfig};

/// A small store: 64 KiB CommitLog segments, 16-entry ConsumeQueue files, no background
/// flush or checkpoint for an hour (tests decide when state hits the disk).
pub fn small_config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.mapped_file_size_commit_log = 64 * 1024;
    c.consume_queue_entries_per_file = 16;
    c.entry_index_slots_per_file = 256;
    c.max_hash_slot_num = 64;
    c.max_index_num = 256;
    c.max_message_size = 8 * 1024;
    c.max_batch_bytes = 256 * 1024;
    c.flush_interval_commit_log_ms = 3_600_000;
    c.flush_interval_consume_queue_ms = 3_600_000;
    c.clean_resource_interval_ms = 3_600_000;
    c.disk_check_interval_ms = 0;
    c.disk_space_warning_level_ratio = 1.0;
    c.disk_max_used_space_ratio = 1.0;
    c.disk_space_clean_forcibly_ratio = 1.0;
    // Every read verifies: tests flip bits in what was just written.
    c.verify_reads_behind_bytes = 0;
    c
}

pub struct Msg<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub body: &'a [u8],
    pub tags: Option<&'a str>,
    pub keys: Option<&'a str>,
    pub uniq: Option<&'a str>,
    pub sys_flag: i32,
}

impl<'a> Msg<'a> {
    pub fn new(topic: &'a str, queue_id: i32, body: &'a [u8]) -> Msg<'a> {
        Msg {
            topic,
            queue_id,
            body,
            tags: None,
            keys: None,
            uniq: None,
            sys_flag: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut pairs = Vec::new();
        if let Some(t) = self.tags {
            pairs.push(("TAGS", t));
        }
        if let Some(k) = self.keys {
            pairs.push(("KEYS", k));
        }
        if let Some(u) = self.uniq {
            pairs.push(("UNIQ_KEY", u));
        }
        let props = properties::encode(pairs);
        let draft = MessageDraft {
            topic: self.topic,
            body: self.body,
            flag: 0,
            properties: &props,
            queue_id: self.queue_id,
            sys_flag: self.sys_flag,
            born_timestamp_ms: 1_700_000_000_000,
            born_host: "127.0.0.1:50000".parse().unwrap(),
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            queue_offset: 0,
            physical_offset: 0,
            store_timestamp_ms: 0,
        };
        encode(&draft).unwrap()
    }
}

pub fn record(topic: &str, queue_id: i32, body: &[u8]) -> Vec<u8> {
    Msg::new(topic, queue_id, body).encode()
}

/// Body of message `i`: distinct and recognisable.
pub fn body_of(i: usize, len: usize) -> Vec<u8> {
    let mut b = format!("message-{i:08}-").into_bytes();
    b.resize(len.max(b.len()), b'x');
    b
}

/// Puts one message per call, synchronously (ASYNC_FLUSH stores complete at once).
pub fn put_one(store: &StandaloneStore, rec: &[u8]) -> store::PutMessageResult {
    let pending = store.put_messages_nowait(&[rec]).unwrap();
    pending.messages[0]
}

/// All bodies of a queue from offset 0 on, in order, read page by page.
pub fn read_all_bodies(store: &StandaloneStore, topic: &str, queue_id: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = store.reader().min_offset(topic, queue_id);
    for _ in 0..10_000 {
        let r = store
            .reader()
            .get_messages(topic, queue_id, offset, 32, None, &store::AcceptAll);
        if r.messages.is_empty() {
            break;
        }
        for m in &r.messages {
            out.push(MessageView::parse(m).unwrap().body().to_vec());
        }
        offset = r.next_begin_offset;
    }
    out
}

/// Polls `cond` every 5 ms for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}
