//! The one read API of a store, the same for the standalone and the replicated store:
//! pulls from a ConsumeQueue, offsets, time lookups, lookups by CommitLog offset and by key,
//! and the hook told when messages become readable. Reads only touch published
//! (dispatched, stable) data, so they never take a write lock; in a replicated store that
//! is committed data only.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use message::MessageView;

use crate::commit_log::FrameAt;
use crate::consume_queue::{Boundary, ConsumeQueue, CqEntry};
use crate::engine::{Engine, RecordAt};
use crate::results::{
    AcceptAll, ArrivalListener, GetMessageResult, GetMessageStatus, MessageFilter,
    QueryMessageResult,
};
use crate::stats::StoreStats;

/// Reads of one store. Cheap to clone; every clone reads the same store.
#[derive(Clone)]
pub struct StoreReader {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("root", &self.engine.config.store_path_root_dir)
            .finish()
    }
}

/// Bytes of CommitLog written but not yet on disk, and not yet in the ConsumeQueues (in a
/// replicated store: not yet committed and applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub flush_behind_bytes: u64,
    pub dispatch_behind_bytes: u64,
}

/// Holes (entries recovery found lost) [`StoreReader::queue_entry_position`] passes over.
pub const HOLES_PASSED_OVER: usize = 1024;

/// Physical memory share beyond which RocketMQ assumes a message has left the page cache
/// (`accessMessageInMemoryMaxRatio`, 40).
const IN_MEMORY_RATIO: f64 = 0.40;

impl StoreReader {
    pub(crate) fn new(engine: Arc<Engine>) -> StoreReader {
        StoreReader { engine }
    }

    /// Registers the hook called with (topic, queue id, new max offset) whenever messages
    /// become readable (long-polling wake-up); in a replicated store on every member, as
    /// committed messages are dispatched.
    pub fn set_arrival_listener(&self, listener: ArrivalListener) {
        self.engine.set_listener(listener);
    }

    /// Reads up to `max_count` messages of a topic-queue from logical `offset`, skipping
    /// entries `filter` rejects; RocketMQ's `getMessage`.
    pub fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: usize,
        max_bytes: Option<usize>,
        filter: &dyn MessageFilter,
    ) -> GetMessageResult {
        let config = &self.engine.config;
        let max_count = max_count.clamp(1, config.max_transfer_count_on_message_in_memory.max(1));
        let max_bytes = max_bytes
            .unwrap_or(usize::MAX)
            .min(config.max_transfer_bytes_on_message_in_memory);
        let mut result = GetMessageResult {
            status: GetMessageStatus::NoMatchedLogicQueue,
            next_begin_offset: 0,
            min_offset: 0,
            max_offset: 0,
            messages: Vec::new(),
            queue_offsets: Vec::new(),
            buffer_total_size: 0,
        };
        let Some(cq) = self.engine.dispatcher.queue(topic, queue_id) else {
            StoreStats::add(&self.engine.stats.get_message_times_total_miss, 1);
            return result;
        };
        let min = cq.min_offset();
        let max = cq.max_offset();
        result.min_offset = min;
        result.max_offset = max;
        if max == 0 {
            result.status = GetMessageStatus::NoMessageInQueue;
        } else if offset < min {
            result.status = GetMessageStatus::OffsetTooSmall;
            result.next_begin_offset = min;
        } else if offset == max {
            result.status = GetMessageStatus::OffsetOverflowOne;
            result.next_begin_offset = offset;
        } else if offset > max {
            result.status = GetMessageStatus::OffsetOverflowBadly;
            result.next_begin_offset = if min == 0 { min } else { max };
        } else {
            self.scan_queue(&cq, offset, max_count, max_bytes, filter, &mut result);
        }
        let counter = if result.status == GetMessageStatus::Found {
            &self.engine.stats.get_message_times_total_found
        } else {
            &self.engine.stats.get_message_times_total_miss
        };
        StoreStats::add(counter, 1);
        StoreStats::add(
            &self.engine.stats.get_message_transferred_msg_count,
            result.messages.len() as u64,
        );
        result
    }

    fn scan_queue(
        &self,
        cq: &ConsumeQueue,
        offset: i64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn MessageFilter,
        result: &mut GetMessageResult,
    ) {
        // RocketMQ scans at most 16000 bytes of ConsumeQueue (800 entries) per pull.
        let scan_limit = 800usize.max(max_count);
        let mut entries: Vec<CqEntry> = Vec::with_capacity(64);
        let mut scanned = 0usize;
        result.status = GetMessageStatus::NoMatchedMessage;
        'scan: while scanned < scan_limit {
            entries.clear();
            cq.read(
                offset + scanned as i64,
                (scan_limit - scanned).min(64),
                &mut entries,
            );
            if entries.is_empty() {
                if scanned == 0 {
                    result.status = GetMessageStatus::OffsetFoundNull;
                }
                break;
            }
            for entry in &entries {
                if !result.messages.is_empty()
                    && (result.messages.len() >= max_count
                        || result.buffer_total_size + entry.size.max(0) as usize > max_bytes)
                {
                    break 'scan;
                }
                let queue_offset = offset + scanned as i64;
                scanned += 1;
                if entry.is_hole() {
                    continue;
                }
                if !filter.matches(entry.tags_code) {
                    continue;
                }
                match self.engine.record_at(entry.phys_offset) {
                    // Skipped like a tag mismatch: the scan (and the next begin offset)
                    // moves past it.
                    RecordAt::Found(record)
                        if record.len() == entry.size as usize
                            && !filter.matches_record(&record) => {}
                    RecordAt::Found(record) if record.len() == entry.size as usize => {
                        result.buffer_total_size += record.len();
                        result.messages.push(record);
                        result.queue_offsets.push(queue_offset);
                        result.status = GetMessageStatus::Found;
                    }
                    // Rotted, and being repaired from another member: the consumer comes
                    // back for it (the next begin offset stays on it) instead of losing it.
                    // Without another copy (standalone) it is passed over like a removed one.
                    RecordAt::Damaged if self.engine.repairs_damage() => {
                        scanned -= 1;
                        if result.messages.is_empty() {
                            result.status = GetMessageStatus::MessageWasRemoving;
                        }
                        break 'scan;
                    }
                    _ => {
                        if result.messages.is_empty() {
                            result.status = GetMessageStatus::MessageWasRemoving;
                        }
                    }
                }
            }
        }
        result.next_begin_offset = offset + scanned as i64;
    }

    /// The tags codes of up to `max_count` ConsumeQueue entries from `offset` (moved up to
    /// the queue's first retained entry), each with its queue offset; a hole's code is
    /// `None`. Reads no message: for services that index a queue by its tags codes (the
    /// timer wheel reads deliver times this way).
    pub fn queue_tags_codes(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: usize,
    ) -> Vec<(i64, Option<i64>)> {
        let Some(cq) = self.engine.dispatcher.queue(topic, queue_id) else {
            return Vec::new();
        };
        let start = offset.max(cq.min_offset());
        let mut entries = Vec::with_capacity(max_count.min(4096));
        cq.read(start, max_count, &mut entries);
        entries
            .iter()
            .zip(start..)
            .map(|(entry, at)| (at, (!entry.is_hole()).then_some(entry.tags_code)))
            .collect()
    }

    /// The CommitLog position of the first message at or after queue `offset` (from the
    /// queue's first retained entry, passing over up to [`HOLES_PASSED_OVER`] holes);
    /// `None` when the queue holds none there.
    pub fn queue_entry_position(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let cq = self.engine.dispatcher.queue(topic, queue_id)?;
        let mut entries = Vec::with_capacity(HOLES_PASSED_OVER);
        cq.read(offset.max(cq.min_offset()), HOLES_PASSED_OVER, &mut entries);
        entries
            .iter()
            .find(|entry| !entry.is_hole())
            .map(|entry| entry.phys_offset)
    }

    /// Keeps retention from removing the CommitLog from `from` on, for `holder` (a service
    /// that will read messages there later, such as the timer); `None` lets it go. A holder
    /// names its lowest such position again as it moves on.
    pub fn hold_retention(&self, holder: &'static str, from: Option<i64>) {
        self.engine.retention_holds.set(holder, from);
    }

    /// Next queue offset to be written (0 for an unknown queue).
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.engine
            .dispatcher
            .queue(topic, queue_id)
            .map_or(0, |cq| cq.max_offset())
    }

    /// Whether the store holds a queue `queue_id` of `topic`.
    pub fn has_queue(&self, topic: &str, queue_id: i32) -> bool {
        self.engine.dispatcher.queue(topic, queue_id).is_some()
    }

    /// How many topics whose names start with `prefix` have queues in the store.
    pub fn count_topics_with_prefix(&self, prefix: &str) -> usize {
        self.engine.dispatcher.count_topics_with_prefix(prefix)
    }

    /// Smallest retained queue offset (0 for an unknown queue).
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.engine
            .dispatcher
            .queue(topic, queue_id)
            .map_or(0, |cq| cq.min_offset())
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (see [`ConsumeQueue::offset_by_time`] for the boundaries).
    ///
    /// [`ConsumeQueue::offset_by_time`]: crate::consume_queue::ConsumeQueue::offset_by_time
    pub fn offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64 {
        let Some(cq) = self.engine.dispatcher.queue(topic, queue_id) else {
            return 0;
        };
        cq.offset_by_time(timestamp_ms, boundary, |entry| {
            self.engine.store_timestamp_at(entry.phys_offset)
        })
    }

    /// Store time of the oldest retained message of a queue (GET_EARLIEST_MSG_STORETIME).
    pub fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        let cq = self.engine.dispatcher.queue(topic, queue_id)?;
        let entry = cq.get(cq.min_offset())?;
        self.engine.store_timestamp_at(entry.phys_offset)
    }

    /// Store time of the newest message of a queue (GET_TOPIC_STATS_INFO's
    /// `lastUpdateTimestamp`).
    pub fn last_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        let cq = self.engine.dispatcher.queue(topic, queue_id)?;
        let entry = cq.get(cq.max_offset() - 1)?;
        self.engine.store_timestamp_at(entry.phys_offset)
    }

    /// How far the background work trails the CommitLog's writer (RocketMQ's
    /// `flushBehindBytes` and `dispatchBehindBytes`).
    pub fn backlog(&self) -> Backlog {
        let log = &self.engine.log;
        let written = log.write_pos();
        Backlog {
            flush_behind_bytes: written.saturating_sub(log.durable().pos),
            dispatch_behind_bytes: written.saturating_sub(self.engine.dispatcher.dispatched_pos()),
        }
    }

    /// Store time of the oldest message in the whole store.
    pub fn earliest_message_time_in_store(&self) -> Option<i64> {
        let mut pos = self.engine.log.first_pos();
        // Bounded: a few skips over padding at most.
        for _ in 0..4 {
            match self.engine.log.frame_at(pos) {
                FrameAt::Entry { header, .. } => {
                    return self.engine.store_timestamp_at(header.body_pos() as i64);
                }
                FrameAt::Skip { next_pos } => pos = next_pos,
                FrameAt::End => return None,
            }
        }
        None
    }

    /// The record stored at a CommitLog offset (VIEW_MESSAGE_BY_ID).
    pub fn message_at(&self, phys_offset: i64) -> Option<Bytes> {
        self.engine.read_record(phys_offset)
    }

    /// QUERY_MESSAGE: messages of `topic` whose KEYS contain `key` or whose UNIQ_KEY is
    /// `key`, stored within `[begin_ms, end_ms]`, newest first.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> QueryMessageResult {
        let mut result = QueryMessageResult::default();
        let Some(index) = self.engine.dispatcher.key_index() else {
            return result;
        };
        let (ts, phys) = index.last_update();
        result.index_last_update_timestamp = ts;
        result.index_last_update_phyoffset = phys;
        let max_count = max_count.clamp(1, self.engine.config.max_query_results.max(1));
        // Ask for a few more candidates than needed: some may be hash collisions.
        for candidate in index.query(topic, key, max_count * 2, begin_ms, end_ms) {
            if result.messages.len() >= max_count {
                break;
            }
            let Some(record) = self.engine.read_record(candidate) else {
                continue;
            };
            let Ok(view) = MessageView::parse(&record) else {
                continue;
            };
            let matches = view.topic() == topic
                && (view.uniq_key() == Some(key)
                    || view
                        .keys()
                        .is_some_and(|keys| keys.split(' ').any(|k| k == key)));
            if matches {
                result.messages.push(record);
            }
        }
        result
    }

    /// Topics with ConsumeQueues, with their queue ids and (min, max) offsets.
    pub fn topic_queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)> {
        self.engine
            .dispatcher
            .topic_queues(topic)
            .into_iter()
            .map(|cq| (cq.queue_id(), (cq.min_offset(), cq.max_offset())))
            .collect()
    }

    /// Store time of the message at a queue offset; like a pull of one message, it skips
    /// holes.
    pub fn message_store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let read = self.get_messages(topic, queue_id, offset, 1, None, &AcceptAll);
        let record = read.messages.first()?;
        Some(MessageView::parse(record).ok()?.store_timestamp_ms())
    }

    /// Whether the message at a queue offset is still likely in the page cache (RocketMQ
    /// decides with it where a brand-new consumer group starts).
    pub fn is_in_memory(&self, topic: &str, queue_id: i32, offset: i64) -> bool {
        let read = self.get_messages(topic, queue_id, offset, 1, None, &AcceptAll);
        let Some(record) = read.messages.first() else {
            return false;
        };
        let Ok(view) = MessageView::parse(record) else {
            return false;
        };
        let behind_bytes = self
            .engine
            .log
            .write_pos()
            .saturating_sub(u64::try_from(view.physical_offset()).unwrap_or(0));
        (behind_bytes as f64) <= physical_memory_bytes() as f64 * IN_MEMORY_RATIO
    }
}

/// Physical memory of the machine (read once), or a conservative 1 GiB when unknown.
fn physical_memory_bytes() -> u64 {
    static MEMORY_BYTES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MEMORY_BYTES.get_or_init(|| {
        // SAFETY: sysconf only reads system constants.
        let (pages, page_size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && page_size > 0 {
            (pages as u64).saturating_mul(page_size as u64)
        } else {
            1 << 30
        }
    })
}
