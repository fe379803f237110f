//! The message store a standalone broker uses: the CommitLog plus dispatch, with the store
//! assigning indexes (1, 2, 3, ...), term 0, positions, queue offsets and store timestamps.
//!
//! Puts are serialised by one lock: validate each record, assign its queue offset (dense per
//! topic-queue), patch QUEUEOFFSET / PHYSICALOFFSET / STORETIMESTAMP in the staged copy,
//! append the batch, mark it stable, dispatch it, and publish. A put then completes at once
//! (ASYNC_FLUSH) or once its bytes are fsynced (SYNC_FLUSH, sharing fsyncs with concurrent
//! puts). Reads never take that lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use message::record::field;
use message::record::{
    patch_physical_offset, patch_queue_offset, patch_store_timestamp, store_timestamp_offset,
};
use message::{DispatchInfo, MessageView};
use parking_lot::{Condvar, Mutex, RwLock};
use raft::entry::{EntryHeader, EntryKind};

use crate::checkpoint::{self, StoreCheckpoint};
use crate::commit_log::{CommitLog, CommitLogConfig, LogRecovery};
use crate::config::{FlushDiskType, StoreConfig};
use crate::consume_queue::{is_safe_topic_dir, Boundary};
use crate::dispatch::{DispatchRecovery, Dispatcher, CHANNEL_MESSAGE};
use crate::environment::Environment;
use crate::error::{Result, StoreError};
use crate::key_index::KeyIndex;
use crate::stats::StoreStats;

/// Where one stored message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutMessageResult {
    /// CommitLog offset of the record (PHYSICALOFFSET; the offset in an offset msgId).
    pub phys_offset: i64,
    /// Queue offset (0 for half / rolled-back transaction messages, which get none).
    pub queue_offset: i64,
    pub store_timestamp_ms: i64,
    /// Record size in bytes.
    pub size: i32,
}

/// How a put ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    PutOk,
    /// Stored, but the fsync did not finish within `syncFlushTimeout` (RocketMQ
    /// FLUSH_DISK_TIMEOUT); the message may still be lost by a crash.
    FlushDiskTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutMessagesResult {
    pub status: PutStatus,
    pub messages: Vec<PutMessageResult>,
}

/// A put that is written and readable, maybe not yet durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPut {
    pub messages: Vec<PutMessageResult>,
    /// CommitLog position the put must be flushed to.
    pub end_pos: u64,
}

/// RocketMQ's `GetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    /// Entries were scanned but none passed the filter.
    NoMatchedMessage,
    /// Entries point at messages retention is removing.
    MessageWasRemoving,
    OffsetFoundNull,
    /// offset > max offset.
    OffsetOverflowBadly,
    /// offset == max offset (caught up).
    OffsetOverflowOne,
    /// offset < min offset.
    OffsetTooSmall,
    /// The topic-queue does not exist.
    NoMatchedLogicQueue,
    /// The queue exists but holds nothing.
    NoMessageInQueue,
}

#[derive(Debug, Clone)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Stored message records, shared with the mapped CommitLog (no copies).
    pub messages: Vec<Bytes>,
    /// Queue offset of each message in `messages`.
    pub queue_offsets: Vec<i64>,
    pub buffer_total_size: usize,
}

/// QUERY_MESSAGE's answer.
#[derive(Debug, Clone, Default)]
pub struct QueryMessageResult {
    pub messages: Vec<Bytes>,
    pub index_last_update_timestamp: i64,
    pub index_last_update_phyoffset: i64,
}

/// What opening the store recovered.
#[derive(Debug, Clone)]
pub struct StoreRecovery {
    pub commit_log: LogRecovery,
    pub dispatch: DispatchRecovery,
}

/// Called with (topic, queue id, new max offset) after messages are dispatched, outside
/// the put lock. Keep it quick (wake a waiter); it runs on the putting thread.
pub type ArrivalListener = Arc<dyn Fn(&str, i32, i64) + Send + Sync>;

/// Rules for which ConsumeQueue entries a pull wants, by tags code.
pub trait TagsCodeFilter {
    fn matches(&self, tags_code: i64) -> bool;
}

impl<F: Fn(i64) -> bool> TagsCodeFilter for F {
    fn matches(&self, tags_code: i64) -> bool {
        self(tags_code)
    }
}

impl TagsCodeFilter for message::TagFilter {
    fn matches(&self, tags_code: i64) -> bool {
        self.matches_code(tags_code)
    }
}

/// Accepts every entry (subscription `*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl TagsCodeFilter for AcceptAll {
    fn matches(&self, _: i64) -> bool {
        true
    }
}

struct PutState {
    /// Next queue offset per topic and queue.
    queue_offsets: HashMap<String, HashMap<i32, i64>>,
    last_store_timestamp_ms: i64,
    disk_checked_at: Option<Instant>,
    disk_used_ratio: f64,
}

pub(crate) struct FlushSignal {
    pub(crate) state: Mutex<FlushRequest>,
    /// Wakes the flusher.
    pub(crate) wake: Condvar,
    /// Wakes the maintenance thread (only at shutdown).
    pub(crate) clean_wake: Condvar,
}

#[derive(Default)]
pub(crate) struct FlushRequest {
    pub(crate) requested_pos: u64,
    pub(crate) shutdown: bool,
}

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    pub(crate) env: Environment,
    pub(crate) log: Arc<CommitLog>,
    pub(crate) dispatcher: Dispatcher,
    put: Mutex<PutState>,
    pub(crate) stats: StoreStats,
    listener: RwLock<Option<ArrivalListener>>,
    pub(crate) flush_signal: FlushSignal,
    /// The last store checkpoint written; serialises checkpoint writes.
    pub(crate) checkpoint_lock: Mutex<StoreCheckpoint>,
    pub(crate) disk_used_ratio_bits: std::sync::atomic::AtomicU64,
    /// Set for a raft replica: retention asks the raft driver to remove segments.
    pub(crate) retention_gate: Option<Arc<crate::raft_log::RetentionGate>>,
}

/// The standalone broker's message store. Dropping it stops its background threads after
/// a final flush.
pub struct MessageStore {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MessageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStore")
            .field("root", &self.inner.config.store_path_root_dir)
            .finish()
    }
}

/// Checks a CommitLog body during recovery: a message record whose PHYSICALOFFSET is the
/// body's own position.
pub(crate) fn validate_body(header: &EntryHeader, body: &[u8]) -> std::result::Result<(), String> {
    if header.channel != CHANNEL_MESSAGE {
        return Ok(());
    }
    let view = MessageView::parse(body).map_err(|e| format!("not a message record: {e}"))?;
    if view.total_size() != body.len() {
        return Err(format!(
            "record of {} bytes in a body of {}",
            view.total_size(),
            body.len()
        ));
    }
    if view.physical_offset() != header.body_pos() as i64 {
        return Err(format!(
            "record says PHYSICALOFFSET {} but sits at {}",
            view.physical_offset(),
            header.body_pos()
        ));
    }
    Ok(())
}

impl MessageStore {
    /// Opens the store under `config.store_path_root_dir`, recovers it, and starts the
    /// flush and retention threads.
    pub fn open(config: StoreConfig) -> Result<(MessageStore, StoreRecovery)> {
        Self::open_with(config, Environment::default())
    }

    /// [`MessageStore::open`] with an injected clock and disk-usage probe.
    pub fn open_with(
        config: StoreConfig,
        env: Environment,
    ) -> Result<(MessageStore, StoreRecovery)> {
        config.validate()?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        let log_config = CommitLogConfig {
            dir: config.commit_log_dir(),
            segment_len: config.mapped_file_size_commit_log,
            index_slots_per_file: config.entry_index_slots_per_file,
            max_body_len: config.max_message_size,
            max_batch_bytes: config.max_batch_bytes + config.max_batch_messages * 64 + 64,
        };
        let (log, log_recovery) = CommitLog::open(log_config, &validate_body)?;
        // Standalone: everything in the log is final.
        log.mark_stable(log.write_pos());
        let key_index = if config.message_index_enable {
            Some(KeyIndex::open(
                &config.index_dir(),
                config.max_hash_slot_num,
                config.max_index_num,
            )?)
        } else {
            None
        };
        let dispatcher = Dispatcher::open(
            &config.consume_queue_dir(),
            config.consume_queue_entries_per_file,
            key_index,
        )?
        .with_delay_levels(config.message_delay_level.clone());
        let store_cp: StoreCheckpoint =
            checkpoint::read(&config.checkpoint_path()).unwrap_or_default();
        let dispatch_recovery = dispatcher.recover(
            &log,
            store_cp.dispatched_safe_pos,
            store_cp.dispatched_timestamp_ms,
        )?;
        let inner = Arc::new(Inner::new(config, env, Arc::new(log), dispatcher, None));
        // Recovery rebuilt derived files: make that the new safe point before serving.
        crate::flush::flush_all_and_checkpoint(&inner)?;
        let threads = inner.start_threads()?;
        let recovery = StoreRecovery {
            commit_log: log_recovery,
            dispatch: dispatch_recovery,
        };
        tracing::info!(root = %root.display(), ?recovery, "message store opened");
        Ok((
            MessageStore {
                inner,
                threads: Mutex::new(threads),
            },
            recovery,
        ))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The underlying CommitLog (read access for stats and the future raft layer).
    pub fn commit_log(&self) -> &CommitLog {
        &self.inner.log
    }

    /// Registers the hook called when messages arrive in a queue (long-polling wake-up).
    pub fn set_arrival_listener(&self, listener: ArrivalListener) {
        self.inner.set_listener(listener);
    }

    /// Stores a batch of encoded message records (queue offset, physical offset and store
    /// timestamp fields are placeholders). Completes after the write (ASYNC_FLUSH) or after
    /// the fsync covering it (SYNC_FLUSH).
    pub async fn put_messages(&self, records: &[&[u8]]) -> Result<PutMessagesResult> {
        let pending = self.put_messages_nowait(records)?;
        let status = match self.inner.config.flush_disk_type {
            FlushDiskType::AsyncFlush => PutStatus::PutOk,
            FlushDiskType::SyncFlush => self.wait_durable(pending.end_pos).await?,
        };
        Ok(PutMessagesResult {
            status,
            messages: pending.messages,
        })
    }

    /// Waits (bounded by `syncFlushTimeout`) until the CommitLog is fsynced up to `pos`.
    pub async fn wait_durable(&self, pos: u64) -> Result<PutStatus> {
        let mut rx = self.inner.log.subscribe_durable();
        if rx.borrow().pos >= pos {
            return Ok(PutStatus::PutOk);
        }
        crate::flush::request_flush(&self.inner, pos);
        let timeout = Duration::from_millis(self.inner.config.sync_flush_timeout_ms);
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|d| d.pos >= pos).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(_)) => Ok(PutStatus::PutOk),
            Ok(Err(_)) => Err(StoreError::Shutdown),
            Err(_) => {
                StoreStats::add(&self.inner.stats.flush_timeouts, 1);
                if let Some(reason) = self.inner.log.failure() {
                    return Err(StoreError::ReadOnly(reason));
                }
                Ok(PutStatus::FlushDiskTimeout)
            }
        }
    }

    /// Writes a batch and makes it readable; does not wait for fsync.
    pub fn put_messages_nowait(&self, records: &[&[u8]]) -> Result<PendingPut> {
        let result = self.inner.put_locked(records);
        if result.is_err() {
            StoreStats::add(&self.inner.stats.put_message_failed_times, 1);
        }
        let (pending, grown) = result?;
        self.inner.notify_arrivals(&grown);
        Ok(pending)
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
        filter: &dyn TagsCodeFilter,
    ) -> GetMessageResult {
        self.inner
            .get_messages(topic, queue_id, offset, max_count, max_bytes, filter)
    }

    /// Next queue offset to be written (0 for an unknown queue).
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner.max_offset(topic, queue_id)
    }

    /// Smallest retained queue offset (0 for an unknown queue).
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner.min_offset(topic, queue_id)
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
        self.inner
            .offset_by_timestamp(topic, queue_id, timestamp_ms, boundary)
    }

    /// Store time of the oldest retained message of a queue (GET_EARLIEST_MSG_STORETIME).
    pub fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        self.inner.earliest_message_time(topic, queue_id)
    }

    /// Store time of the newest message of a queue (GET_TOPIC_STATS_INFO's
    /// `lastUpdateTimestamp`).
    pub fn last_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        self.inner.last_message_time(topic, queue_id)
    }

    /// Store time of the oldest message in the whole store.
    pub fn earliest_message_time_in_store(&self) -> Option<i64> {
        self.inner.earliest_message_time_in_store()
    }

    /// The record stored at a CommitLog offset (VIEW_MESSAGE_BY_ID).
    pub fn message_at(&self, phys_offset: i64) -> Option<Bytes> {
        self.inner.message_at(phys_offset)
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
        self.inner
            .query_by_key(topic, key, max_count, begin_ms, end_ms)
    }

    /// Drops a topic's ConsumeQueues (its messages stay in the CommitLog until retention).
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        if !is_safe_topic_dir(topic) {
            return Ok(());
        }
        {
            let mut put = self.inner.put.lock();
            put.queue_offsets.remove(topic);
            self.inner.dispatcher.delete_topic(topic)?;
        }
        // Move the recovery safe point past the topic's old records, so a restart does not
        // re-dispatch them into the queues the topic gets if it is created again.
        crate::flush::flush_all_and_checkpoint(&self.inner)
    }

    /// Topics with ConsumeQueues, with their queue ids and (min, max) offsets.
    pub fn topic_queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)> {
        self.inner.topic_queue_offsets(topic)
    }

    /// Runs retention now (as the background cleaner would at a `deleteWhen` hour).
    pub fn clean_expired_files_now(&self) -> Result<crate::retention::RetentionReport> {
        crate::retention::run_once(&self.inner, true)
    }

    /// Runs one retention pass with the normal rules (hour of day, disk usage).
    pub fn run_retention_once(&self) -> Result<crate::retention::RetentionReport> {
        crate::retention::run_once(&self.inner, false)
    }

    /// Flushes everything and writes both checkpoints.
    pub fn flush(&self) -> Result<()> {
        crate::flush::flush_all_and_checkpoint(&self.inner)
    }

    /// Counters.
    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// Number of CommitLog fsyncs so far.
    pub fn fsync_count(&self) -> u64 {
        self.inner.log.fsync_count()
    }

    /// Key/value runtime facts in the spirit of RocketMQ's `getRuntimeInfo`.
    pub fn runtime_info(&self) -> BTreeMap<String, String> {
        let inner = &self.inner;
        let s = &inner.stats;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("commitLogMinOffset", inner.log.first_pos().to_string());
        put("commitLogMaxOffset", inner.log.write_pos().to_string());
        put(
            "commitLogDiskRatio",
            format!(
                "{:.4}",
                f64::from_bits(inner.disk_used_ratio_bits.load(Ordering::Relaxed))
            ),
        );
        put(
            "dispatchBehindBytes",
            inner
                .log
                .write_pos()
                .saturating_sub(inner.dispatcher.dispatched_pos())
                .to_string(),
        );
        put(
            "putMessageTimesTotal",
            StoreStats::get(&s.put_message_times_total).to_string(),
        );
        put(
            "putMessageSizeTotal",
            StoreStats::get(&s.put_message_size_total).to_string(),
        );
        put(
            "putMessageFailedTimes",
            StoreStats::get(&s.put_message_failed_times).to_string(),
        );
        put(
            "getFoundTimesTotal",
            StoreStats::get(&s.get_message_times_total_found).to_string(),
        );
        put(
            "getMissTimesTotal",
            StoreStats::get(&s.get_message_times_total_miss).to_string(),
        );
        put(
            "getTransferedMsgCount",
            StoreStats::get(&s.get_message_transferred_msg_count).to_string(),
        );
        put(
            "flushDiskTimeouts",
            StoreStats::get(&s.flush_timeouts).to_string(),
        );
        put("commitLogFsyncs", inner.log.fsync_count().to_string());
        put(
            "earliestMessageTimeStamp",
            self.earliest_message_time_in_store()
                .unwrap_or(0)
                .to_string(),
        );
        put(
            "storeDiskBytes",
            (inner.log.disk_bytes() + inner.dispatcher.disk_bytes()).to_string(),
        );
        m
    }

    /// Stops the background threads after a final flush and checkpoint.
    pub fn shutdown(&self) {
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        self.inner.stop_threads(threads);
        if let Err(e) = crate::flush::flush_all_and_checkpoint(&self.inner) {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    /// The shared state of a store over an opened (and recovered) CommitLog and dispatcher.
    /// `retention_gate`: set for a raft replica, whose segments only the raft driver removes.
    pub(crate) fn new(
        config: StoreConfig,
        env: Environment,
        log: Arc<CommitLog>,
        dispatcher: Dispatcher,
        retention_gate: Option<Arc<crate::raft_log::RetentionGate>>,
    ) -> Inner {
        let mut queue_offsets: HashMap<String, HashMap<i32, i64>> = HashMap::new();
        for cq in dispatcher.all_queues() {
            queue_offsets
                .entry(cq.topic().to_string())
                .or_default()
                .insert(cq.queue_id(), cq.max_offset());
        }
        let last_store_timestamp_ms = dispatcher.dispatched_timestamp_ms();
        Inner {
            env,
            log,
            dispatcher,
            put: Mutex::new(PutState {
                queue_offsets,
                last_store_timestamp_ms,
                disk_checked_at: None,
                disk_used_ratio: 0.0,
            }),
            stats: StoreStats::default(),
            listener: RwLock::new(None),
            flush_signal: FlushSignal {
                state: Mutex::new(FlushRequest::default()),
                wake: Condvar::new(),
                clean_wake: Condvar::new(),
            },
            checkpoint_lock: Mutex::new(StoreCheckpoint::default()),
            disk_used_ratio_bits: std::sync::atomic::AtomicU64::new(0f64.to_bits()),
            retention_gate,
            config,
        }
    }

    /// Starts the CommitLog flusher and the maintenance thread.
    pub(crate) fn start_threads(self: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
        let root = self.config.store_path_root_dir.clone();
        let inner = self;
        let mut threads = Vec::new();
        let flusher = Arc::clone(inner);
        threads.push(
            std::thread::Builder::new()
                .name("store-flush".into())
                .spawn(move || crate::flush::run_flusher(&flusher))
                .map_err(|e| StoreError::io(&root, e))?,
        );
        let cleaner = Arc::clone(inner);
        threads.push(
            std::thread::Builder::new()
                .name("store-maintain".into())
                .spawn(move || crate::retention::run_cleaner(&cleaner))
                .map_err(|e| StoreError::io(&root, e))?,
        );
        Ok(threads)
    }

    /// Stops the background threads (they finish their current step first).
    pub(crate) fn stop_threads(&self, threads: Vec<JoinHandle<()>>) {
        {
            let mut state = self.flush_signal.state.lock();
            state.shutdown = true;
        }
        self.flush_signal.wake.notify_all();
        self.flush_signal.clean_wake.notify_all();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Tells the arrival listener which queues grew.
    pub(crate) fn notify_arrivals(&self, grown: &[(Arc<crate::consume_queue::ConsumeQueue>, i64)]) {
        let listener = self.listener.read().clone();
        if let Some(listener) = listener {
            for (cq, max) in grown {
                listener(cq.topic(), cq.queue_id(), *max);
            }
        }
    }

    pub(crate) fn set_listener(&self, listener: ArrivalListener) {
        *self.listener.write() = Some(listener);
    }

    /// The message record at a physical offset, shared with the mapping.
    pub(crate) fn read_record(&self, phys_offset: i64) -> Option<Bytes> {
        let pos = u64::try_from(phys_offset).ok()?;
        let (header, body) = self.log.read_body_at(pos)?;
        if header.channel != CHANNEL_MESSAGE || header.kind != EntryKind::Normal {
            return None;
        }
        Some(body)
    }

    /// STORETIMESTAMP of the record at a physical offset.
    pub(crate) fn store_timestamp_at(&self, phys_offset: i64) -> Option<i64> {
        let record = self.read_record(phys_offset)?;
        let sys_flag = i32::from_be_bytes(
            record
                .get(field::SYS_FLAG..field::SYS_FLAG + 4)?
                .try_into()
                .ok()?,
        );
        let at = store_timestamp_offset(sys_flag);
        Some(i64::from_be_bytes(record.get(at..at + 8)?.try_into().ok()?))
    }

    fn check_disk(&self, put: &mut PutState) -> Result<()> {
        let interval = Duration::from_millis(self.config.disk_check_interval_ms);
        let stale = put
            .disk_checked_at
            .is_none_or(|at| at.elapsed() >= interval);
        if stale {
            match self.env.disk.used_ratio(&self.config.store_path_root_dir) {
                Ok(ratio) => {
                    put.disk_used_ratio = ratio;
                    self.disk_used_ratio_bits
                        .store(ratio.to_bits(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read filesystem usage"),
            }
            put.disk_checked_at = Some(Instant::now());
        }
        let limit = self.config.disk_space_warning_level_ratio;
        if put.disk_used_ratio > limit {
            return Err(StoreError::DiskFull {
                used_ratio: put.disk_used_ratio,
                limit_ratio: limit,
            });
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn put_locked(
        &self,
        records: &[&[u8]],
    ) -> Result<(
        PendingPut,
        Vec<(Arc<crate::consume_queue::ConsumeQueue>, i64)>,
    )> {
        let total_bytes: usize = records.iter().map(|r| r.len()).sum();
        if records.is_empty() {
            return Ok((
                PendingPut {
                    messages: Vec::new(),
                    end_pos: self.log.write_pos(),
                },
                Vec::new(),
            ));
        }
        // Validate outside the lock: decoding is the expensive part.
        let mut parsed = parse_records(&self.config, records)?;
        let mut put = self.put.lock();
        self.check_disk(&mut put)?;
        let now = self.env.clock.now_ms();
        // Store timestamps never go backwards, so time search can bisect.
        let store_ts = now.max(put.last_store_timestamp_ms);
        let batch = self.log.begin_append()?;
        let mut results = Vec::with_capacity(records.len());
        let mut assigned = 0usize;
        let outcome = (|| {
            let mut batch = batch;
            for (record, info) in records.iter().zip(parsed.iter_mut()) {
                let queue_offset = if info.is_dispatchable() {
                    put.queue_offsets
                        .get(info.topic)
                        .and_then(|m| m.get(&info.queue_id))
                        .copied()
                        .unwrap_or(0)
                } else {
                    0
                };
                let placement = batch.append_with(
                    EntryKind::Normal,
                    0,
                    CHANNEL_MESSAGE,
                    record.len(),
                    |placement, out| {
                        out.copy_from_slice(record);
                        let patched = patch_queue_offset(out, queue_offset)
                            .and_then(|()| patch_physical_offset(out, placement.body_pos() as i64))
                            .and_then(|()| patch_store_timestamp(out, store_ts));
                        patched.map_err(|e| StoreError::BadRecord(e.to_string()))
                    },
                )?;
                info.queue_offset = queue_offset;
                info.physical_offset = placement.body_pos() as i64;
                info.store_timestamp_ms = store_ts;
                if info.is_dispatchable() {
                    let per_topic = match put.queue_offsets.get_mut(info.topic) {
                        Some(m) => m,
                        None => put.queue_offsets.entry(info.topic.to_string()).or_default(),
                    };
                    per_topic.insert(info.queue_id, queue_offset + 1);
                }
                assigned += 1;
                results.push(PutMessageResult {
                    phys_offset: placement.body_pos() as i64,
                    queue_offset,
                    store_timestamp_ms: store_ts,
                    size: record.len() as i32,
                });
            }
            // Create any ConsumeQueue file this batch needs before the CommitLog write, so
            // a full disk fails the put cleanly instead of leaving a queue behind its log.
            self.dispatcher.prepare(&parsed)?;
            batch.commit()
        })();
        let appended = match outcome {
            Ok(appended) => appended,
            Err(e) => {
                // Nothing was published: give the assigned queue offsets back, walking
                // backwards so each queue ends at the first offset this batch took.
                for info in parsed[..assigned].iter().rev() {
                    if info.is_dispatchable() {
                        if let Some(m) = put.queue_offsets.get_mut(info.topic) {
                            m.insert(info.queue_id, info.queue_offset);
                        }
                    }
                }
                return Err(e);
            }
        };
        put.last_store_timestamp_ms = store_ts;
        self.log.mark_stable(appended.end_pos);
        let grown = match self.dispatcher.dispatch(&parsed, appended.end_pos) {
            Ok(grown) => grown,
            Err(e) => {
                // The messages are in the CommitLog but a queue could not take them; going
                // on would hand out offsets the queue cannot follow. Recovery at the next
                // start re-dispatches from the checkpoint and repairs the queues.
                self.log
                    .fail(format!("dispatch failed after the CommitLog write: {e}"));
                return Err(e);
            }
        };
        drop(put);
        StoreStats::add(&self.stats.put_message_times_total, records.len() as u64);
        StoreStats::add(&self.stats.put_message_size_total, total_bytes as u64);
        Ok((
            PendingPut {
                messages: results,
                end_pos: appended.end_pos,
            },
            grown,
        ))
    }
}

/// Checks a batch of records a producer sent (sizes, layout, a storable topic and queue) and
/// returns what dispatching each will need.
pub(crate) fn parse_records<'a>(
    config: &StoreConfig,
    records: &[&'a [u8]],
) -> Result<Vec<DispatchInfo<'a>>> {
    let total_bytes: usize = records.iter().map(|r| r.len()).sum();
    if records.len() > config.max_batch_messages || total_bytes > config.max_batch_bytes {
        return Err(StoreError::BatchTooLarge {
            count: records.len(),
            bytes: total_bytes,
            max_count: config.max_batch_messages,
            max_bytes: config.max_batch_bytes,
        });
    }
    let mut parsed = Vec::with_capacity(records.len());
    for record in records {
        if record.len() > config.max_message_size {
            return Err(StoreError::EntryTooLarge {
                size: record.len(),
                max: config.max_message_size,
            });
        }
        let view = MessageView::parse(record).map_err(|e| StoreError::BadRecord(e.to_string()))?;
        if view.total_size() != record.len() {
            return Err(StoreError::BadRecord(format!(
                "TOTALSIZE {} but {} bytes were given",
                view.total_size(),
                record.len()
            )));
        }
        let info = view.dispatch_info();
        if info.is_dispatchable() && (!is_safe_topic_dir(info.topic) || info.queue_id < 0) {
            return Err(StoreError::BadRecord(format!(
                "topic {:?} / queue {} cannot be stored",
                info.topic, info.queue_id
            )));
        }
        parsed.push(info);
    }
    Ok(parsed)
}
