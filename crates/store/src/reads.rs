//! Reads shared by the standalone [`MessageStore`](crate::MessageStore) and the replicated
//! store: pulls from a ConsumeQueue, offsets, time lookups, lookups by offset and by key. They
//! only touch published (dispatched, stable) data, so they never take a write lock.

use std::collections::BTreeMap;

use bytes::Bytes;
use message::MessageView;

use crate::commit_log::FrameAt;
use crate::consume_queue::{Boundary, CqEntry};
use crate::message_store::{
    GetMessageResult, GetMessageStatus, Inner, QueryMessageResult, TagsCodeFilter,
};
use crate::stats::StoreStats;

impl Inner {
    /// Reads up to `max_count` messages of a topic-queue from logical `offset`, skipping
    /// entries `filter` rejects; RocketMQ's `getMessage`.
    pub(crate) fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: usize,
        max_bytes: Option<usize>,
        filter: &dyn TagsCodeFilter,
    ) -> GetMessageResult {
        let config = &self.config;
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
        let Some(cq) = self.dispatcher.queue(topic, queue_id) else {
            StoreStats::add(&self.stats.get_message_times_total_miss, 1);
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
            &self.stats.get_message_times_total_found
        } else {
            &self.stats.get_message_times_total_miss
        };
        StoreStats::add(counter, 1);
        StoreStats::add(
            &self.stats.get_message_transferred_msg_count,
            result.messages.len() as u64,
        );
        result
    }

    fn scan_queue(
        &self,
        cq: &crate::consume_queue::ConsumeQueue,
        offset: i64,
        max_count: usize,
        max_bytes: usize,
        filter: &dyn TagsCodeFilter,
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
                match self.read_record(entry.phys_offset) {
                    Some(record) if record.len() == entry.size as usize => {
                        result.buffer_total_size += record.len();
                        result.messages.push(record);
                        result.queue_offsets.push(queue_offset);
                        result.status = GetMessageStatus::Found;
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

    /// Next queue offset to be written (0 for an unknown queue).
    pub(crate) fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.dispatcher
            .queue(topic, queue_id)
            .map_or(0, |cq| cq.max_offset())
    }

    /// Smallest retained queue offset (0 for an unknown queue).
    pub(crate) fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.dispatcher
            .queue(topic, queue_id)
            .map_or(0, |cq| cq.min_offset())
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (see [`ConsumeQueue::offset_by_time`] for the boundaries).
    ///
    /// [`ConsumeQueue::offset_by_time`]: crate::consume_queue::ConsumeQueue::offset_by_time
    pub(crate) fn offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64 {
        let Some(cq) = self.dispatcher.queue(topic, queue_id) else {
            return 0;
        };
        cq.offset_by_time(timestamp_ms, boundary, |entry| {
            self.store_timestamp_at(entry.phys_offset)
        })
    }

    /// Store time of the oldest retained message of a queue (GET_EARLIEST_MSG_STORETIME).
    pub(crate) fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        let cq = self.dispatcher.queue(topic, queue_id)?;
        let entry = cq.get(cq.min_offset())?;
        self.store_timestamp_at(entry.phys_offset)
    }

    /// Store time of the newest message of a queue (GET_TOPIC_STATS_INFO's
    /// `lastUpdateTimestamp`).
    pub(crate) fn last_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        let cq = self.dispatcher.queue(topic, queue_id)?;
        let entry = cq.get(cq.max_offset() - 1)?;
        self.store_timestamp_at(entry.phys_offset)
    }

    /// Store time of the oldest message in the whole store.
    pub(crate) fn earliest_message_time_in_store(&self) -> Option<i64> {
        let mut pos = self.log.first_pos();
        // Bounded: a few skips over padding at most.
        for _ in 0..4 {
            match self.log.frame_at(pos) {
                FrameAt::Entry { header, .. } => {
                    return self.store_timestamp_at(header.body_pos() as i64);
                }
                FrameAt::Skip { next_pos } => pos = next_pos,
                FrameAt::End => return None,
            }
        }
        None
    }

    /// The record stored at a CommitLog offset (VIEW_MESSAGE_BY_ID).
    pub(crate) fn message_at(&self, phys_offset: i64) -> Option<Bytes> {
        self.read_record(phys_offset)
    }

    /// QUERY_MESSAGE: messages of `topic` whose KEYS contain `key` or whose UNIQ_KEY is
    /// `key`, stored within `[begin_ms, end_ms]`, newest first.
    pub(crate) fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> QueryMessageResult {
        let mut result = QueryMessageResult::default();
        let Some(index) = self.dispatcher.key_index() else {
            return result;
        };
        let (ts, phys) = index.last_update();
        result.index_last_update_timestamp = ts;
        result.index_last_update_phyoffset = phys;
        let max_count = max_count.clamp(1, self.config.max_query_results.max(1));
        // Ask for a few more candidates than needed: some may be hash collisions.
        for candidate in index.query(topic, key, max_count * 2, begin_ms, end_ms) {
            if result.messages.len() >= max_count {
                break;
            }
            let Some(record) = self.read_record(candidate) else {
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
    pub(crate) fn topic_queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)> {
        self.dispatcher
            .topic_queues(topic)
            .into_iter()
            .map(|cq| (cq.queue_id(), (cq.min_offset(), cq.max_offset())))
            .collect()
    }
}
