//! The store a standalone broker uses: the CommitLog plus dispatch, with the store
//! assigning indexes (1, 2, 3, ...), term 0, positions, queue offsets and store timestamps.
//!
//! Puts are serialised by one lock: validate each record, assign its queue offset (dense per
//! topic-queue), patch QUEUEOFFSET / PHYSICALOFFSET / STORETIMESTAMP in the staged copy,
//! append the batch, mark it stable, dispatch it, and publish. A put then completes at once
//! (ASYNC_FLUSH) or once its bytes are fsynced (SYNC_FLUSH, sharing fsyncs with concurrent
//! puts). Reads never take that lock.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use raft::entry::EntryKind;

use crate::background::BackgroundThreads;
use crate::checkpoint::{self, StoreCheckpoint};
use crate::commit_log::{CommitLog, CommitLogConfig};
use crate::config::{FlushDiskType, StoreConfig};
use crate::consume_queue::{is_safe_topic_dir, ConsumeQueue};
use crate::dispatch::CHANNEL_MESSAGE;
use crate::engine::{open_derived_files, parse_records, validate_body, Engine};
use crate::environment::Environment;
use crate::error::{Result, StoreError};
use crate::queue_offsets::{stamp_record, QueueOffsetTable};
use crate::reader::StoreReader;
use crate::results::{PendingPut, PutMessageResult, PutMessagesResult, PutStatus, StoreRecovery};
use crate::stats::StoreStats;

/// What the put lock guards: queue offsets and the disk-usage reading.
struct PutState {
    offsets: QueueOffsetTable,
    disk_checked_at: Option<Instant>,
    disk_used_ratio: f64,
}

/// The standalone broker's message store. Dropping it stops its background threads after
/// a final flush.
pub struct StandaloneStore {
    engine: Arc<Engine>,
    reader: StoreReader,
    put: Mutex<PutState>,
    threads: BackgroundThreads,
}

impl std::fmt::Debug for StandaloneStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneStore")
            .field("root", &self.engine.config.store_path_root_dir)
            .finish()
    }
}

impl StandaloneStore {
    /// Opens the store under `config.store_path_root_dir`, recovers it, and starts the
    /// flush and retention threads.
    pub fn open(config: StoreConfig) -> Result<(StandaloneStore, StoreRecovery)> {
        Self::open_with(config, Environment::default())
    }

    /// [`StandaloneStore::open`] with an injected clock and disk-usage probe.
    pub fn open_with(
        config: StoreConfig,
        env: Environment,
    ) -> Result<(StandaloneStore, StoreRecovery)> {
        config.validate()?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        let log_config = CommitLogConfig {
            dir: config.commit_log_dir(),
            segment_len: config.mapped_file_size_commit_log,
            index_slots_per_file: config.entry_index_slots_per_file,
            max_body_len: config.max_message_size,
            max_batch_bytes: config.max_batch_bytes + config.max_batch_messages * 64 + 64,
            write_through_file: false,
            warm_ahead: false,
        };
        let (log, log_recovery) = CommitLog::open(log_config, &validate_body)?;
        // Standalone: everything in the log is final.
        log.mark_stable(log.write_pos());
        let dispatcher = open_derived_files(&config)?;
        let store_cp: StoreCheckpoint =
            checkpoint::read(&config.checkpoint_path()).unwrap_or_default();
        let dispatch_recovery = dispatcher.recover(
            &log,
            store_cp.dispatched_safe_pos,
            store_cp.dispatched_timestamp_ms,
        )?;
        let engine = Arc::new(Engine::new(config, env, Arc::new(log), dispatcher, None));
        // Recovery rebuilt derived files: make that the new safe point before serving.
        crate::flush::flush_all_and_checkpoint(&engine)?;
        let threads = BackgroundThreads::start(&engine)?;
        let recovery = StoreRecovery {
            commit_log: log_recovery,
            dispatch: dispatch_recovery,
        };
        tracing::info!(root = %root.display(), ?recovery, "message store opened");
        Ok((
            StandaloneStore {
                reader: StoreReader::new(Arc::clone(&engine)),
                put: Mutex::new(PutState {
                    offsets: QueueOffsetTable::from_queues(&engine.dispatcher),
                    disk_checked_at: None,
                    disk_used_ratio: 0.0,
                }),
                engine,
                threads,
            },
            recovery,
        ))
    }

    /// Pulls, offsets and lookups.
    pub fn reader(&self) -> &StoreReader {
        &self.reader
    }

    pub fn config(&self) -> &StoreConfig {
        &self.engine.config
    }

    /// The underlying CommitLog (read access for stats and the future raft layer).
    pub fn commit_log(&self) -> &CommitLog {
        &self.engine.log
    }

    /// Stores a batch of encoded message records (queue offset, physical offset and store
    /// timestamp fields are placeholders). Completes after the write (ASYNC_FLUSH) or after
    /// the fsync covering it (SYNC_FLUSH).
    pub async fn put_messages(&self, records: &[&[u8]]) -> Result<PutMessagesResult> {
        let pending = self.put_messages_nowait(records)?;
        let status = match self.engine.config.flush_disk_type {
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
        let mut rx = self.engine.log.subscribe_durable();
        if rx.borrow().pos >= pos {
            return Ok(PutStatus::PutOk);
        }
        crate::flush::request_flush(&self.engine, pos);
        let timeout = Duration::from_millis(self.engine.config.sync_flush_timeout_ms);
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|d| d.pos >= pos).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(_)) => Ok(PutStatus::PutOk),
            Ok(Err(_)) => Err(StoreError::Shutdown),
            Err(_) => {
                StoreStats::add(&self.engine.stats.flush_timeouts, 1);
                if let Some(reason) = self.engine.log.failure() {
                    return Err(StoreError::ReadOnly(reason));
                }
                Ok(PutStatus::FlushDiskTimeout)
            }
        }
    }

    /// Writes a batch and makes it readable; does not wait for fsync.
    pub fn put_messages_nowait(&self, records: &[&[u8]]) -> Result<PendingPut> {
        let result = self.put_locked(records);
        if result.is_err() {
            StoreStats::add(&self.engine.stats.put_message_failed_times, 1);
        }
        let (pending, grown) = result?;
        self.engine.notify_arrivals(&grown);
        Ok(pending)
    }

    /// Drops a topic's ConsumeQueues (its messages stay in the CommitLog until retention).
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        if !is_safe_topic_dir(topic) {
            return Ok(());
        }
        {
            let mut put = self.put.lock();
            put.offsets.remove_topic(topic);
            self.engine.dispatcher.delete_topic(topic)?;
        }
        // Move the recovery safe point past the topic's old records, so a restart does not
        // re-dispatch them into the queues the topic gets if it is created again.
        crate::flush::flush_all_and_checkpoint(&self.engine)
    }

    /// Runs retention now (as the background cleaner would at a `deleteWhen` hour).
    pub fn clean_expired_files_now(&self) -> Result<crate::retention::RetentionReport> {
        crate::retention::run_once(&self.engine, true)
    }

    /// Runs one retention pass with the normal rules (hour of day, disk usage).
    pub fn run_retention_once(&self) -> Result<crate::retention::RetentionReport> {
        crate::retention::run_once(&self.engine, false)
    }

    /// Flushes everything and writes both checkpoints.
    pub fn flush(&self) -> Result<()> {
        crate::flush::flush_all_and_checkpoint(&self.engine)
    }

    /// Counters.
    pub fn stats(&self) -> &StoreStats {
        &self.engine.stats
    }

    /// Number of CommitLog fsyncs so far.
    pub fn fsync_count(&self) -> u64 {
        self.engine.log.fsync_count()
    }

    /// Key/value runtime facts in the spirit of RocketMQ's `getRuntimeInfo`.
    pub fn runtime_info(&self) -> BTreeMap<String, String> {
        let engine = &self.engine;
        let s = &engine.stats;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("commitLogMinOffset", engine.log.first_pos().to_string());
        put("commitLogMaxOffset", engine.log.write_pos().to_string());
        put(
            "commitLogDiskRatio",
            format!(
                "{:.4}",
                f64::from_bits(engine.disk_used_ratio_bits.load(Ordering::Relaxed))
            ),
        );
        put(
            "dispatchBehindBytes",
            self.reader.backlog().dispatch_behind_bytes.to_string(),
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
        put("commitLogFsyncs", engine.log.fsync_count().to_string());
        put(
            "earliestMessageTimeStamp",
            self.reader
                .earliest_message_time_in_store()
                .unwrap_or(0)
                .to_string(),
        );
        put(
            "storeDiskBytes",
            (engine.log.disk_bytes() + engine.dispatcher.disk_bytes()).to_string(),
        );
        m
    }

    /// Stops the background threads after a final flush and checkpoint.
    pub fn shutdown(&self) {
        self.threads.stop(&self.engine);
        if let Err(e) = crate::flush::flush_all_and_checkpoint(&self.engine) {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    fn check_disk(&self, put: &mut PutState) -> Result<()> {
        let interval = Duration::from_millis(self.engine.config.disk_check_interval_ms);
        let stale = put
            .disk_checked_at
            .is_none_or(|at| at.elapsed() >= interval);
        if stale {
            match self
                .engine
                .env
                .disk
                .used_ratio(&self.engine.config.store_path_root_dir)
            {
                Ok(ratio) => {
                    put.disk_used_ratio = ratio;
                    self.engine
                        .disk_used_ratio_bits
                        .store(ratio.to_bits(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read filesystem usage"),
            }
            put.disk_checked_at = Some(Instant::now());
        }
        let limit = self.engine.config.disk_space_warning_level_ratio;
        if put.disk_used_ratio > limit {
            return Err(StoreError::DiskFull {
                used_ratio: put.disk_used_ratio,
                limit_ratio: limit,
            });
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn put_locked(&self, records: &[&[u8]]) -> Result<(PendingPut, Vec<(Arc<ConsumeQueue>, i64)>)> {
        let total_bytes: usize = records.iter().map(|r| r.len()).sum();
        if records.is_empty() {
            return Ok((
                PendingPut {
                    messages: Vec::new(),
                    end_pos: self.engine.log.write_pos(),
                },
                Vec::new(),
            ));
        }
        // Validate outside the lock: decoding is the expensive part.
        let mut parsed = parse_records(&self.engine.config, records)?;
        let mut put = self.put.lock();
        self.check_disk(&mut put)?;
        let now = self.engine.env.clock.now_ms();
        let store_ts = put.offsets.peek_time(now);
        let batch = self.engine.log.begin_append()?;
        let mut results = Vec::with_capacity(records.len());
        let mut assigned = 0usize;
        let outcome = (|| {
            let mut batch = batch;
            for (record, info) in records.iter().zip(parsed.iter_mut()) {
                let queue_offset = if info.is_dispatchable() {
                    put.offsets.peek(info.topic, info.queue_id)
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
                        stamp_record(out, queue_offset, placement.body_pos() as i64, store_ts)
                            .map_err(|e| StoreError::BadRecord(e.to_string()))
                    },
                )?;
                info.queue_offset = queue_offset;
                info.physical_offset = placement.body_pos() as i64;
                info.store_timestamp_ms = store_ts;
                if info.is_dispatchable() {
                    let taken = put.offsets.take(info.topic, info.queue_id);
                    debug_assert_eq!(taken, queue_offset);
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
            self.engine.dispatcher.prepare(&parsed)?;
            batch.commit()
        })();
        let appended = match outcome {
            Ok(appended) => appended,
            Err(e) => {
                // Nothing was published: give the assigned queue offsets back, walking
                // backwards so each queue ends at the first offset this batch took.
                for info in parsed[..assigned].iter().rev() {
                    if info.is_dispatchable() {
                        put.offsets
                            .rewind(info.topic, info.queue_id, info.queue_offset);
                    }
                }
                return Err(e);
            }
        };
        put.offsets.stamp_time(store_ts);
        self.engine.log.mark_stable(appended.end_pos);
        let grown = match self.engine.dispatcher.dispatch(&parsed, appended.end_pos) {
            Ok(grown) => grown,
            Err(e) => {
                // The messages are in the CommitLog but a queue could not take them; going
                // on would hand out offsets the queue cannot follow. Recovery at the next
                // start re-dispatches from the checkpoint and repairs the queues.
                self.engine
                    .log
                    .fail(format!("dispatch failed after the CommitLog write: {e}"));
                return Err(e);
            }
        };
        drop(put);
        StoreStats::add(
            &self.engine.stats.put_message_times_total,
            records.len() as u64,
        );
        StoreStats::add(
            &self.engine.stats.put_message_size_total,
            total_bytes as u64,
        );
        Ok((
            PendingPut {
                messages: results,
                end_pos: appended.end_pos,
            },
            grown,
        ))
    }
}

impl Drop for StandaloneStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}
