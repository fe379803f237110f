//! Dispatch: turning CommitLog records into ConsumeQueue and key-index entries, and
//! rebuilding those derived files after a crash.
//!
//! Only records at or below the *dispatchable* position are dispatched (a standalone store:
//! everything it wrote; a raft replica: committed entries). Records of half or rolled-back
//! transactions get no ConsumeQueue entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use message::delay::requested_level;
use message::properties::{self, keys};
use message::topic::{SCHEDULE_TOPIC, TIMER_TOPIC};
use message::{DelayLevels, DispatchInfo, MessageView};
use parking_lot::RwLock;
use raft::entry::{EntryKind, ENTRY_HEADER_LEN};

use crate::commit_log::{BodyAt, CommitLog, FrameAt};
use crate::consume_queue::{is_safe_topic_dir, ConsumeQueue, CqEntry, QueueMap};
use crate::dir_lock::DirLock;
use crate::error::{Result, StoreError};
use crate::key_index::{IndexRequest, KeyIndex};

/// The entry channel of RocketMQ message records (other channels carry other replicated
/// state and are not dispatched here).
pub const CHANNEL_MESSAGE: u32 = 0;

/// The entry channel of every record of a multi-record batch but its last (which is on
/// [`CHANNEL_MESSAGE`]). A batch is dispatched when its last record is, all at once; leading
/// records followed by anything else belong to a batch whose leader lost it part-way, and are
/// never dispatched: a batch is visible whole or not at all.
pub const CHANNEL_MESSAGE_BATCH_PART: u32 = 2;

/// Whether entries of `channel` hold a message record.
pub fn is_message_channel(channel: u32) -> bool {
    channel == CHANNEL_MESSAGE || channel == CHANNEL_MESSAGE_BATCH_PART
}

/// Collects the records of a multi-record batch from consecutive log entries, so that a
/// batch is dispatched whole (when its last record is read) or, when anything other than
/// its continuation follows, not at all.
#[derive(Default)]
pub(crate) struct BatchAssembly {
    /// Each leading record of the open batch: its entry position and body.
    parts: Vec<(u64, Bytes)>,
}

/// The message records one entry completes, with their entry positions.
pub(crate) enum Completed {
    Nothing,
    /// The usual case, a single record: no allocation on the apply path.
    One(u64, Bytes),
    Batch(std::vec::IntoIter<(u64, Bytes)>),
}

impl Iterator for Completed {
    type Item = (u64, Bytes);

    fn next(&mut self) -> Option<(u64, Bytes)> {
        match std::mem::replace(self, Completed::Nothing) {
            Completed::Nothing => None,
            Completed::One(pos, body) => Some((pos, body)),
            Completed::Batch(mut records) => {
                let next = records.next();
                *self = Completed::Batch(records);
                next
            }
        }
    }
}

impl BatchAssembly {
    /// Takes the next entry in log order (its position, kind, channel and body); returns the
    /// message records it completes: none for a leading part or a non-message entry, a
    /// whole batch at its last record.
    pub(crate) fn step(
        &mut self,
        pos: u64,
        kind: EntryKind,
        channel: u32,
        body: Bytes,
    ) -> Completed {
        let is_record = kind == EntryKind::Normal && is_message_channel(channel);
        if is_record && channel == CHANNEL_MESSAGE_BATCH_PART {
            self.parts.push((pos, body));
            return Completed::Nothing;
        }
        if !self.parts.is_empty() {
            if is_record {
                let mut whole = std::mem::take(&mut self.parts);
                whole.push((pos, body));
                return Completed::Batch(whole.into_iter());
            }
            tracing::warn!(
                records = self.parts.len(),
                at = self.open_at(),
                "a batch its leader did not finish is not dispatched"
            );
            self.parts.clear();
        }
        if is_record {
            Completed::One(pos, body)
        } else {
            Completed::Nothing
        }
    }

    /// Whether leading records wait for the rest of their batch.
    pub(crate) fn is_open(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Where the open batch starts: nothing from there on may count as dispatched.
    pub(crate) fn open_at(&self) -> Option<u64> {
        self.parts.first().map(|(pos, _)| *pos)
    }

    /// Forgets an open batch (the log restarted past it).
    pub(crate) fn clear(&mut self) {
        self.parts.clear();
    }
}

/// A stored message record's dispatch fields; a record that does not parse is corruption.
fn parse_stored<'a>(log: &CommitLog, entry_pos: u64, body: &'a [u8]) -> Result<DispatchInfo<'a>> {
    let view = MessageView::parse(body).map_err(|e| {
        StoreError::corrupt(
            log.dir(),
            format!("record at {}: {e}", entry_pos + ENTRY_HEADER_LEN as u64),
        )
    })?;
    Ok(view.dispatch_info())
}

/// Largest gap of lost ConsumeQueue entries recovery fills with holes.
const MAX_HOLES: i64 = 1 << 20;

/// What re-dispatch did during recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchRecovery {
    /// Where re-dispatch started (the checkpoint's safe point).
    pub from_pos: u64,
    /// Records re-dispatched.
    pub records: u64,
    /// ConsumeQueue entries dropped because they pointed at or past the safe point or
    /// beyond the CommitLog's end.
    pub dropped_entries: u64,
}

pub struct Dispatcher {
    _lock: DirLock,
    cq_root: PathBuf,
    entries_per_file: u64,
    queues: RwLock<QueueMap>,
    key_index: Option<KeyIndex>,
    /// A frame boundary: every record below it is dispatched.
    dispatched_pos: AtomicU64,
    dispatched_timestamp_ms: AtomicI64,
    /// Delay of each level, for SCHEDULE_TOPIC_XXXX tags codes; without them those
    /// entries keep their tag hash.
    delay_levels: Option<DelayLevels>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("cq_root", &self.cq_root)
            .field("dispatched_pos", &self.dispatched_pos())
            .finish()
    }
}

impl Dispatcher {
    /// Opens every ConsumeQueue under `cq_root` (unsealed: recovery comes next).
    pub fn open(
        cq_root: &Path,
        entries_per_file: u64,
        key_index: Option<KeyIndex>,
    ) -> Result<Dispatcher> {
        std::fs::create_dir_all(cq_root).map_err(|e| StoreError::io(cq_root, e))?;
        let lock = DirLock::acquire(cq_root)?;
        let mut queues: QueueMap = HashMap::new();
        for topic_dir in std::fs::read_dir(cq_root).map_err(|e| StoreError::io(cq_root, e))? {
            let topic_dir = topic_dir.map_err(|e| StoreError::io(cq_root, e))?;
            let Some(topic) = topic_dir.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_safe_topic_dir(&topic) || !topic_dir.path().is_dir() {
                continue;
            }
            let path = topic_dir.path();
            for queue_dir in std::fs::read_dir(&path).map_err(|e| StoreError::io(&path, e))? {
                let queue_dir = queue_dir.map_err(|e| StoreError::io(&path, e))?;
                let Some(queue_id) = queue_dir
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                    .filter(|q| *q >= 0)
                else {
                    continue;
                };
                let cq = ConsumeQueue::open(cq_root, &topic, queue_id, entries_per_file)?;
                queues
                    .entry(topic.clone())
                    .or_default()
                    .insert(queue_id, Arc::new(cq));
            }
        }
        Ok(Dispatcher {
            _lock: lock,
            cq_root: cq_root.to_path_buf(),
            entries_per_file,
            queues: RwLock::new(queues),
            key_index,
            dispatched_pos: AtomicU64::new(0),
            dispatched_timestamp_ms: AtomicI64::new(0),
            delay_levels: None,
        })
    }

    /// Sets the delay levels used for SCHEDULE_TOPIC_XXXX entries.
    pub fn with_delay_levels(mut self, delay_levels: DelayLevels) -> Dispatcher {
        self.delay_levels = Some(delay_levels);
        self
    }

    /// A record's ConsumeQueue entry. For SCHEDULE_TOPIC_XXXX the tags code is the delivery
    /// time (store time + the delay of its `DELAY` level), as RocketMQ's schedule service
    /// expects; for the timer topic it is the message's slot time (`TIMER_OUT_MS`), so the
    /// broker's time wheel is built from the queue without reading a message.
    fn cq_entry(&self, info: &DispatchInfo<'_>) -> CqEntry {
        let mut tags_code = info.tags_code;
        if info.topic == TIMER_TOPIC {
            if let Some(slot_ms) = properties::find(info.properties, keys::TIMER_OUT_MS)
                .and_then(|v| v.trim().parse::<i64>().ok())
            {
                tags_code = slot_ms;
            }
        }
        if let Some(levels) = self
            .delay_levels
            .as_ref()
            .filter(|_| info.topic == SCHEDULE_TOPIC)
        {
            if let Some(level) = levels.clamp(requested_level(info.properties)) {
                tags_code = info
                    .store_timestamp_ms
                    .saturating_add(levels.delay_ms(level));
            }
        }
        CqEntry {
            phys_offset: info.physical_offset,
            size: info.total_size as i32,
            tags_code,
        }
    }

    pub fn dispatched_pos(&self) -> u64 {
        self.dispatched_pos.load(Ordering::Acquire)
    }

    pub fn dispatched_timestamp_ms(&self) -> i64 {
        self.dispatched_timestamp_ms.load(Ordering::Acquire)
    }

    pub fn key_index(&self) -> Option<&KeyIndex> {
        self.key_index.as_ref()
    }

    pub fn queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    fn queue_or_create(&self, topic: &str, queue_id: i32) -> Result<Arc<ConsumeQueue>> {
        if let Some(cq) = self.queue(topic, queue_id) {
            return Ok(cq);
        }
        let mut queues = self.queues.write();
        let per_topic = queues.entry(topic.to_string()).or_default();
        if let Some(cq) = per_topic.get(&queue_id) {
            return Ok(Arc::clone(cq));
        }
        let cq = Arc::new(ConsumeQueue::open(
            &self.cq_root,
            topic,
            queue_id,
            self.entries_per_file,
        )?);
        cq.seal();
        per_topic.insert(queue_id, Arc::clone(&cq));
        Ok(cq)
    }

    /// Every queue, for stats and for rebuilding the queue-offset table.
    pub fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .values()
            .flat_map(|per_topic| per_topic.values().cloned())
            .collect()
    }

    /// How many topics whose names start with `prefix` have queues.
    pub fn count_topics_with_prefix(&self, prefix: &str) -> usize {
        self.queues
            .read()
            .keys()
            .filter(|topic| topic.starts_with(prefix))
            .count()
    }

    /// Queues of one topic.
    pub fn topic_queues(&self, topic: &str) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .get(topic)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Makes sure dispatching `records` cannot fail for lack of a file: creates their
    /// queues and the queue files their offsets fall in. Call before writing the CommitLog.
    pub fn prepare(&self, records: &[DispatchInfo<'_>]) -> Result<()> {
        for info in records.iter().filter(|r| r.is_dispatchable()) {
            let cq = self.queue_or_create(info.topic, info.queue_id)?;
            cq.ensure_room(info.queue_offset)?;
        }
        Ok(())
    }

    /// Dispatches records that are already in the CommitLog (in order), then publishes
    /// `end_pos` as dispatched. Returns the queues that grew, with their new max offsets.
    pub fn dispatch(
        &self,
        records: &[DispatchInfo<'_>],
        end_pos: u64,
    ) -> Result<Vec<(Arc<ConsumeQueue>, i64)>> {
        let mut grown: Vec<(Arc<ConsumeQueue>, i64)> = Vec::new();
        let mut i = 0;
        // Consecutive records of one queue become one append.
        while i < records.len() {
            let info = &records[i];
            if !info.is_dispatchable() {
                i += 1;
                continue;
            }
            let cq = self.queue_or_create(info.topic, info.queue_id)?;
            let mut j = i + 1;
            while j < records.len()
                && records[j].is_dispatchable()
                && records[j].topic == info.topic
                && records[j].queue_id == info.queue_id
            {
                j += 1;
            }
            // A single send (the usual put) needs no list of entries.
            if j == i + 1 {
                cq.append(
                    info.queue_offset,
                    std::slice::from_ref(&self.cq_entry(info)),
                )?;
            } else {
                let run: Vec<CqEntry> = records[i..j].iter().map(|r| self.cq_entry(r)).collect();
                cq.append(info.queue_offset, &run)?;
            }
            let max = cq.max_offset();
            match grown.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &cq)) {
                Some(slot) => slot.1 = max,
                None => grown.push((cq, max)),
            }
            i = j;
        }
        if let Some(index) = &self.key_index {
            let requests: Vec<IndexRequest<'_>> = records
                .iter()
                .filter(|r| r.keys.is_some() || r.uniq_key.is_some())
                .map(|r| IndexRequest {
                    topic: r.topic,
                    keys: r.keys,
                    uniq_key: r.uniq_key,
                    phys_offset: r.physical_offset,
                    store_timestamp_ms: r.store_timestamp_ms,
                })
                .collect();
            if !requests.is_empty() {
                // The key index only helps QUERY_MESSAGE: failing to extend it must not
                // fail a put whose message is already stored and queued.
                if let Err(e) = index.put(&requests) {
                    tracing::error!(error = %e, "key index update failed; keys of these messages are not queryable");
                }
            }
        }
        if let Some(last) = records.last() {
            self.dispatched_timestamp_ms
                .store(last.store_timestamp_ms, Ordering::Release);
        }
        self.dispatched_pos.fetch_max(end_pos, Ordering::AcqRel);
        Ok(grown)
    }

    /// Dispatches records from the CommitLog between the dispatched position and
    /// `up_to_pos` (a raft replica: the committed position; it must be stable). Returns the
    /// queues that grew, with their new max offsets.
    pub fn dispatch_from_log(
        &self,
        log: &CommitLog,
        up_to_pos: u64,
    ) -> Result<Vec<(Arc<ConsumeQueue>, i64)>> {
        let mut grown: Vec<(Arc<ConsumeQueue>, i64)> = Vec::new();
        let mut pos = self.dispatched_pos().max(log.first_pos());
        let up_to = up_to_pos.min(log.stable_pos());
        let mut batch = BatchAssembly::default();
        // Bounded: every step advances `pos` towards `up_to`.
        while pos < up_to {
            match log.frame_at(pos) {
                FrameAt::Entry { header, body } => {
                    let next = header.pos + header.size() as u64;
                    if next > up_to {
                        break;
                    }
                    for (at, body) in batch.step(header.pos, header.kind, header.channel, body) {
                        let info = parse_stored(log, at, &body)?;
                        self.prepare(std::slice::from_ref(&info))?;
                        for (cq, max) in self.dispatch(std::slice::from_ref(&info), next)? {
                            match grown.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &cq)) {
                                Some(slot) => slot.1 = max,
                                None => grown.push((cq, max)),
                            }
                        }
                    }
                    if !batch.is_open() {
                        self.dispatched_pos.fetch_max(next, Ordering::AcqRel);
                    }
                    pos = next;
                }
                FrameAt::Skip { next_pos } => {
                    if !batch.is_open() {
                        self.dispatched_pos
                            .fetch_max(next_pos.min(up_to), Ordering::AcqRel);
                    }
                    pos = next_pos;
                }
                FrameAt::End => break,
            }
        }
        Ok(grown)
    }

    /// Rebuilds what a crash may have lost: drops ConsumeQueue entries at or after the
    /// safe point (or past the CommitLog's end), re-dispatches every record from the safe
    /// point, then seals the queues. The CommitLog must be recovered and stable.
    ///
    /// `safe_timestamp_ms` is the store time of the last record below `safe_pos` (from the
    /// checkpoint), so store times stay monotonic across restarts.
    pub fn recover(
        &self,
        log: &CommitLog,
        safe_pos: u64,
        safe_timestamp_ms: i64,
    ) -> Result<DispatchRecovery> {
        self.dispatched_timestamp_ms
            .fetch_max(safe_timestamp_ms, Ordering::AcqRel);
        let log_end = log.write_pos() as i64;
        let from_pos = safe_pos.clamp(log.first_pos(), log.write_pos());
        let mut report = DispatchRecovery {
            from_pos,
            ..Default::default()
        };
        for cq in self.all_queues() {
            report.dropped_entries += trim_queue_tail(&cq, log, from_pos as i64, log_end)?;
        }
        let mut pos = from_pos;
        let mut batch = BatchAssembly::default();
        // Bounded: every step advances `pos` through the finite, recovered log.
        loop {
            match log.frame_at(pos) {
                FrameAt::Entry { header, body } => {
                    let next = header.pos + header.size() as u64;
                    for (at, body) in batch.step(header.pos, header.kind, header.channel, body) {
                        self.redispatch_one(&parse_stored(log, at, &body)?)?;
                        report.records += 1;
                    }
                    if !batch.is_open() {
                        self.dispatched_pos.store(next, Ordering::Release);
                    }
                    pos = next;
                }
                FrameAt::Skip { next_pos } => pos = next_pos,
                FrameAt::End => break,
            }
        }
        // A batch still waiting for its last record is dispatched when that arrives.
        let end = batch.open_at().unwrap_or(pos);
        self.dispatched_pos
            .store(end.max(from_pos), Ordering::Release);
        let min_phys = log.first_pos() as i64;
        for cq in self.all_queues() {
            cq.seal();
            cq.correct_min_offset(min_phys);
        }
        Ok(report)
    }

    fn redispatch_one(&self, info: &DispatchInfo<'_>) -> Result<()> {
        if let Some(index) = &self.key_index {
            if info.keys.is_some() || info.uniq_key.is_some() {
                index.put(&[IndexRequest {
                    topic: info.topic,
                    keys: info.keys,
                    uniq_key: info.uniq_key,
                    phys_offset: info.physical_offset,
                    store_timestamp_ms: info.store_timestamp_ms,
                }])?;
            }
        }
        self.dispatched_timestamp_ms
            .fetch_max(info.store_timestamp_ms, Ordering::AcqRel);
        if !info.is_dispatchable() {
            return Ok(());
        }
        if !is_safe_topic_dir(info.topic) || info.queue_id < 0 || info.queue_offset < 0 {
            tracing::error!(
                topic = info.topic,
                queue_id = info.queue_id,
                "record cannot be dispatched; skipped"
            );
            return Ok(());
        }
        let cq = match self.queue(info.topic, info.queue_id) {
            Some(cq) => cq,
            None => {
                let mut queues = self.queues.write();
                let cq = Arc::new(ConsumeQueue::open(
                    &self.cq_root,
                    info.topic,
                    info.queue_id,
                    self.entries_per_file,
                )?);
                queues
                    .entry(info.topic.to_string())
                    .or_default()
                    .insert(info.queue_id, Arc::clone(&cq));
                cq
            }
        };
        let entry = self.cq_entry(info);
        let max = cq.max_offset();
        if info.queue_offset < max {
            if cq.get_for_recovery(info.queue_offset)? == Some(entry) {
                return Ok(());
            }
            tracing::warn!(
                topic = info.topic,
                queue_id = info.queue_id,
                offset = info.queue_offset,
                "ConsumeQueue disagrees with the CommitLog; rewriting from here"
            );
            if let Err(e) = cq.truncate_from(info.queue_offset) {
                // Two records claim the same queue offset: keep the first, as a replay would.
                tracing::error!(topic = info.topic, queue_id = info.queue_id, offset = info.queue_offset, error = %e, "duplicate queue offset in the CommitLog; record skipped");
                return Ok(());
            }
        } else if info.queue_offset > max {
            // A gap: entries below were lost for good. A huge gap is a damaged record, not
            // lost entries; skip it rather than write millions of holes.
            if info.queue_offset - max > MAX_HOLES {
                tracing::error!(
                    topic = info.topic,
                    queue_id = info.queue_id,
                    offset = info.queue_offset,
                    max,
                    "implausible queue offset in the CommitLog; record skipped"
                );
                return Ok(());
            }
            cq.fill_holes(info.queue_offset)?;
        }
        cq.append(info.queue_offset, &[entry])
    }

    /// The CommitLog restarted at `next_pos` (a raft replica rebuilt from a leader's first
    /// retained entry): drop derived entries pointing below it, keep every queue's max offset
    /// (the group's offsets go on from there), and dispatch from `next_pos` on.
    pub fn restart_at(&self, next_pos: u64) -> Result<usize> {
        let removed = self.remove_below(next_pos as i64)?;
        // Never backwards: a restart notice can also mean "the entries you asked for were
        // removed by retention" while this node had dispatched past them.
        self.dispatched_pos.fetch_max(next_pos, Ordering::AcqRel);
        Ok(removed)
    }

    /// Dispatches records of a raft replica whose queue offsets were assigned by a leader:
    /// a queue that retains nothing skips forward to the first offset it is given (after a
    /// log restart); a record whose offset the queue cannot take is logged and left out
    /// rather than stopping every other queue. Publishes `end_pos` as dispatched.
    pub fn dispatch_replicated(
        &self,
        records: &[DispatchInfo<'_>],
        end_pos: u64,
    ) -> Result<Vec<(Arc<ConsumeQueue>, i64)>> {
        let mut accepted: Vec<DispatchInfo<'_>> = Vec::with_capacity(records.len());
        // Next offset each queue takes, counting the records accepted so far.
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for info in records {
            if !info.is_dispatchable() {
                accepted.push(info.clone());
                continue;
            }
            let cq = self.queue_or_create(info.topic, info.queue_id)?;
            let expected = *next
                .entry((info.topic, info.queue_id))
                .or_insert_with(|| cq.max_offset());
            if info.queue_offset > expected && cq.min_offset() == cq.max_offset() {
                cq.skip_to(info.queue_offset)?;
            } else if info.queue_offset != expected {
                tracing::error!(
                    topic = info.topic,
                    queue_id = info.queue_id,
                    offset = info.queue_offset,
                    expected,
                    "replicated record does not continue its ConsumeQueue; left out"
                );
                continue;
            }
            next.insert((info.topic, info.queue_id), info.queue_offset + 1);
            accepted.push(info.clone());
        }
        self.prepare(&accepted)?;
        self.dispatch(&accepted, end_pos)
    }

    /// Moves `topic`:`queue_id` forward so its next entry is `next_offset`, if it retains
    /// nothing and is behind (see [`ConsumeQueue::skip_to`]). Returns whether it moved.
    pub fn raise_empty_queue(&self, topic: &str, queue_id: i32, next_offset: i64) -> Result<bool> {
        let cq = self.queue_or_create(topic, queue_id)?;
        if cq.min_offset() != cq.max_offset() || cq.max_offset() >= next_offset {
            return Ok(false);
        }
        cq.skip_to(next_offset)?;
        // No record in the log brings the skip back after a power cut, and the metadata
        // checkpoint written next says no copy is owed any more: it must be on the disk.
        cq.flush()?;
        Ok(true)
    }

    /// Retention moved the CommitLog start: drop derived files that only point below it.
    pub fn remove_below(&self, min_phys_offset: i64) -> Result<usize> {
        let mut removed = 0;
        for cq in self.all_queues() {
            removed += cq.remove_below(min_phys_offset)?;
        }
        if let Some(index) = &self.key_index {
            removed += index.remove_below(min_phys_offset)?;
        }
        Ok(removed)
    }

    /// Flushes every ConsumeQueue.
    pub fn flush_queues(&self) -> Result<usize> {
        let mut synced = 0;
        for cq in self.all_queues() {
            synced += cq.flush()?;
        }
        Ok(synced)
    }

    /// Flushes the key index, if there is one.
    pub fn flush_key_index(&self) -> Result<usize> {
        match &self.key_index {
            Some(index) => index.flush(),
            None => Ok(0),
        }
    }

    /// Drops a topic's queues and their files.
    pub fn delete_topic(&self, topic: &str) -> Result<usize> {
        let removed = self.queues.write().remove(topic);
        let Some(queues) = removed else {
            return Ok(0);
        };
        for cq in queues.values() {
            cq.destroy()?;
        }
        let dir = self.cq_root.join(topic);
        if is_safe_topic_dir(topic) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(queues.len())
    }

    pub fn disk_bytes(&self) -> u64 {
        let cq: u64 = self.all_queues().iter().map(|q| q.disk_bytes()).sum();
        cq + self.key_index.as_ref().map_or(0, |k| k.disk_bytes())
    }
}

/// Drops trailing entries at or after `from_pos` (re-dispatch rewrites them), pointing past
/// the log end, or not pointing at a matching record. Returns how many were dropped.
fn trim_queue_tail(cq: &ConsumeQueue, log: &CommitLog, from_pos: i64, log_end: i64) -> Result<u64> {
    let max = cq.max_offset();
    let min = cq.min_offset();
    let mut keep = max;
    let mut previous_phys = i64::MAX;
    // Bounded: walks back over at most the entries written since the checkpoint, plus one.
    while keep > min {
        let Some(entry) = cq.get_for_recovery(keep - 1)? else {
            break;
        };
        let plausible = entry.is_valid()
            && entry.phys_offset < from_pos
            && entry.phys_offset + i64::from(entry.size) <= log_end
            && entry.phys_offset < previous_phys;
        if plausible && entry_matches_log(&entry, cq, keep - 1, log) {
            break;
        }
        if entry.is_hole() && entry == CqEntry::HOLE {
            break;
        }
        // An entry that never reached the disk (zeros) says nothing about where the
        // records before it are: only a real one bounds them.
        if entry.is_valid() {
            previous_phys = entry.phys_offset;
        }
        keep -= 1;
    }
    let dropped = (max - keep) as u64;
    if dropped > 0 {
        cq.truncate_from(keep)?;
    }
    Ok(dropped)
}

/// Whether the record at the entry's offset is the one the entry describes. Entries whose
/// record retention already removed cannot be checked and are trusted.
fn entry_matches_log(entry: &CqEntry, cq: &ConsumeQueue, offset: i64, log: &CommitLog) -> bool {
    if entry.phys_offset < log.first_pos() as i64 + raft::entry::ENTRY_HEADER_LEN as i64 {
        return true;
    }
    let (header, body) = match log.body_at(entry.phys_offset as u64, true) {
        BodyAt::Found(header, body) => (header, body),
        // Rotted, not gone: the entry stays (the raft node repairs the bytes under it).
        BodyAt::Damaged { .. } => return true,
        BodyAt::Missing => return false,
    };
    if header.body_len as i64 != i64::from(entry.size) {
        return false;
    }
    match MessageView::parse(&body) {
        Ok(view) => {
            view.topic() == cq.topic()
                && view.queue_id() == cq.queue_id()
                && view.queue_offset() == offset
        }
        Err(_) => false,
    }
}
