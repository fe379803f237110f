//! The message store of a broker in a raft group (DLedger mode): the CommitLog is the raft
//! log, and only committed entries reach the ConsumeQueues and the key index, on every node.
//!
//! - Writes ([`ReplicatedStore::put_messages`]) go to the raft leader. Each record is
//!   proposed with a patch that runs when the driver places the entry: it takes the next
//!   queue offset from the leader's queue-offset table (placement order is log order, so
//!   offsets are dense in log order) and writes QUEUEOFFSET, PHYSICALOFFSET (entry position +
//!   48) and STORETIMESTAMP into the entry body before it is checksummed and replicated. With
//!   SYNC_FLUSH a put completes once its entries are fsynced on a quorum and dispatched on
//!   this node; with ASYNC_FLUSH once they are in the page cache of a quorum (a power cut of
//!   a quorum may take them back).
//! - Only what a quorum holds on disk is dispatched (raft's durable commit index, see
//!   `raft::Node::safe_index`), in both modes: no consumer ever reads a message that a crash
//!   or power cut of any set of members could take back, and no (queue, offset) ever names
//!   two messages. Each member fsyncs in the background as entries arrive, so with
//!   ASYNC_FLUSH messages become visible one fsync after their acknowledgement.
//! - The apply loop receives committed entries in log order: channel 0 (message records) is
//!   dispatched to ConsumeQueues and the key index; other channels go to the broker's
//!   [`MetadataApplier`] with their index; raft's own no-ops are skipped. A log restart (the
//!   node was rebuilt from a leader's first retained entry) drops derived entries below the
//!   new start.
//! - Readiness: a new leader is *writable* only once its no-op, and so everything before it,
//!   is committed and dispatched, and its queue-offset table was rebuilt from the
//!   ConsumeQueues. A patch that finds the table not ready for its entry's term (a proposal
//!   that waited across a lost and regained leadership) poisons the record (queue offset -1):
//!   it is never dispatched and the put fails as not ready, so a retry cannot duplicate it.
//! - Restart resumes the apply stream at the first entry after the durable dispatch
//!   checkpoint: entries below it are committed (they were dispatched), so they are marked
//!   stable at once; nothing is dispatched twice or skipped.
//! - Retention runs on every node: expired segments below the durable dispatch checkpoint go
//!   (through the raft driver, see [`crate::raft_log`]) with their ConsumeQueue and index
//!   files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use message::MessageView;
use parking_lot::Mutex;
use raft::entry::{Entry, EntryKind, ENTRY_HEADER_LEN};
use raft::{
    ApplyEvent, DriverConfig, DriverError, FileHardStateStore, NodeId, Proposal, ProposalError,
    RaftDriver, RaftHandle, RaftState, Role,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::background::BackgroundThreads;
use crate::checkpoint::{self, StoreCheckpoint};
use crate::commit_log::{CommitLog, CommitLogConfig};
use crate::config::{FlushDiskType, StoreConfig};
use crate::dispatch::{
    is_message_channel, BatchAssembly, CHANNEL_MESSAGE, CHANNEL_MESSAGE_BATCH_PART,
};
use crate::engine::{open_derived_files, parse_records, validate_body, Engine};
use crate::environment::Environment;
use crate::error::StoreError;
use crate::queue_offsets::{stamp_record, QueueOffsetTable};
use crate::raft_log::{RaftLog, RetentionGate};
use crate::reader::StoreReader;
use crate::results::{PutMessageResult, PutMessagesResult, PutStatus, StoreRecovery};

/// The entry channel of replicated broker metadata operations (topic and subscription
/// configs, consumer offsets, ...). Any channel other than [`CHANNEL_MESSAGE`] is handed to
/// the [`MetadataApplier`].
pub const CHANNEL_METADATA: u32 = 1;

/// Queue offset a patch writes into a record it must not let through (see the module
/// documentation); such records are never dispatched.
const POISONED_QUEUE_OFFSET: i64 = -1;

/// What the broker plugs in to receive committed entries of channels other than messages.
/// Called from the apply loop, in log order; keep it quick (hand the op to a task or apply
/// it to in-memory state and persist in the background).
pub trait MetadataApplier: Send + Sync + 'static {
    /// Highest index whose op the broker has durably applied: after a restart, entries from
    /// the next index on are delivered again (so nothing is skipped), and none at or below
    /// it (so nothing is applied twice).
    fn applied_index(&self) -> u64 {
        0
    }

    /// A committed op.
    fn apply(&self, index: u64, channel: u32, body: &[u8]);

    /// The log restarted at `next_index`: ops before it will never be delivered to this node
    /// (it was rebuilt from a leader that no longer holds them), so the broker must fetch a
    /// full copy of its metadata from the leader.
    fn log_restarted(&self, _next_index: u64) {}
}

/// Role and readiness of this node, published on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Leader, with everything in its log committed and dispatched and its queue-offset
    /// table rebuilt: the broker registers as master only while this holds.
    pub writable: bool,
    pub commit_index: u64,
    /// Last entry applied (dispatched or handed to the metadata applier) on this node.
    pub applied_index: u64,
}

/// Why a replicated operation failed, in the terms a broker maps to response codes.
#[derive(Debug, thiserror::Error)]
pub enum ReplicatedError {
    /// Not the leader: nothing was written; the producer can retry on `leader`
    /// (RocketMQ: SERVICE_NOT_AVAILABLE / NOT_LEADER).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// Leader, but not yet writable (its log is not yet committed and dispatched), or the
    /// leadership changed under the proposal. Nothing visible was written; retry shortly.
    #[error("leader not ready for writes yet")]
    NotReady,
    /// Too many uncommitted entries or proposals queued: back off (RocketMQ: SYSTEM_BUSY).
    #[error("busy: {0}")]
    Busy(String),
    /// The entries were proposed but not known to be committed (timeout, or leadership lost
    /// before the commit): they may still commit, so a retry may duplicate (RocketMQ:
    /// FLUSH_SLAVE_TIMEOUT-like "unknown" outcome).
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The raft node stopped.
    #[error("raft node stopped")]
    Stopped,
    /// A membership change the group refused; nothing changed.
    #[error("{0}")]
    MembershipRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Raft(#[from] DriverError),
    #[error("raft state: {0}")]
    HardState(#[from] raft::hard_state::HardStateError),
}

fn proposal_error(e: ProposalError) -> ReplicatedError {
    match e {
        ProposalError::NotLeader { leader } => ReplicatedError::NotLeader { leader },
        ProposalError::Transferring => ReplicatedError::NotLeader { leader: None },
        ProposalError::Busy | ProposalError::QueueFull => ReplicatedError::Busy(e.to_string()),
        ProposalError::TooLarge(reason) => ReplicatedError::Store(StoreError::BadRecord(reason)),
        ProposalError::LeadershipLost | ProposalError::Timeout => {
            ReplicatedError::OutcomeUnknown(e.to_string())
        }
        ProposalError::Stopped => ReplicatedError::Stopped,
        ProposalError::MembershipRefused(reason) => ReplicatedError::MembershipRefused(reason),
        ProposalError::ChangeInProgress => ReplicatedError::MembershipRefused(e.to_string()),
    }
}

/// The leader's next queue offset per topic-queue, valid for one term.
#[derive(Debug, Default)]
struct QueueTable {
    /// The term the table was rebuilt for; 0 while it is not valid.
    term: u64,
    offsets: QueueOffsetTable,
}

/// What a patch decided for one record.
#[derive(Debug, Clone, Copy)]
struct Assigned {
    queue_offset: i64,
    store_timestamp_ms: i64,
    phys_offset: i64,
    poisoned: bool,
}

/// A broker's store in a raft group. Dropping it stops everything (see
/// [`ReplicatedStore::close`] to wait for the raft node to release its port and files).
pub struct ReplicatedStore {
    engine: Arc<Engine>,
    reader: StoreReader,
    handle: RaftHandle,
    status: watch::Receiver<ReplicaStatus>,
    table: Arc<Mutex<QueueTable>>,
    gate: Arc<RetentionGate>,
    propose_timeout: Duration,
    shutdown: CancellationToken,
    /// Waits for the raft node to end and reports why, if it was not asked to.
    driver_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    apply_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    failure: watch::Receiver<Option<String>>,
    threads: BackgroundThreads,
    raft_dir: PathBuf,
}

impl std::fmt::Debug for ReplicatedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedStore")
            .field("raft_dir", &self.raft_dir)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

/// Index of the first entry starting at or after `pos` (the entry-index slots are ordered by
/// position).
fn index_at_or_after(log: &CommitLog, pos: u64) -> u64 {
    let (mut lo, mut hi) = (log.first_index(), log.last_index() + 1);
    // Bounded: binary search over the held range.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match log.location(mid) {
            Some(loc) if loc.pos < pos => lo = mid + 1,
            _ => hi = mid,
        }
    }
    lo
}

impl ReplicatedStore {
    /// Opens the store under `config.store_path_root_dir` (CommitLog and raft term/vote in
    /// `dledger-<id>/`, ConsumeQueues and index beside it as in a standalone store), recovers
    /// it, and starts the raft node serving peers on `listener`. `driver.apply_from` is set
    /// here; with SYNC_FLUSH the raft node commits only what a quorum fsynced. Must be called
    /// inside a multi-threaded tokio runtime.
    pub fn open(
        config: StoreConfig,
        driver: DriverConfig,
        listener: TcpListener,
        metadata: Option<Arc<dyn MetadataApplier>>,
    ) -> Result<(ReplicatedStore, StoreRecovery), ReplicatedError> {
        Self::open_with(config, driver, listener, metadata, Environment::default())
    }

    /// [`ReplicatedStore::open`] with an injected clock and disk-usage probe.
    pub fn open_with(
        config: StoreConfig,
        mut driver: DriverConfig,
        listener: TcpListener,
        metadata: Option<Arc<dyn MetadataApplier>>,
        env: Environment,
    ) -> Result<(ReplicatedStore, StoreRecovery), ReplicatedError> {
        config.validate()?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        let raft_dir = root.join(format!("dledger-{}", driver.id));
        let log_config = CommitLogConfig {
            dir: raft_dir.join("data"),
            segment_len: config.mapped_file_size_commit_log,
            index_slots_per_file: config.entry_index_slots_per_file,
            max_body_len: config.max_message_size,
            max_batch_bytes: (4 << 20).max(2 * config.max_message_size + 4096),
        };
        let (log, log_recovery) = CommitLog::open(log_config, &validate_body)?;
        let dispatcher = open_derived_files(&config)?;
        let store_cp: StoreCheckpoint =
            checkpoint::read(&config.checkpoint_path()).unwrap_or_default();
        // Everything the durable dispatch checkpoint covers was committed (only committed
        // entries are dispatched), so it is stable; the rest waits for raft's commit index.
        log.mark_stable(store_cp.dispatched_safe_pos);
        let dispatch_recovery = dispatcher.recover(
            &log,
            store_cp.dispatched_safe_pos,
            store_cp.dispatched_timestamp_ms,
        )?;
        let log = Arc::new(log);
        let gate = Arc::new(RetentionGate::default());
        if config.flush_disk_type == FlushDiskType::SyncFlush {
            driver.raft.sync_flush = true;
        }
        // Entry positions are CommitLog offsets, the same on every member only with the same
        // segment size.
        driver.shared_settings = format!(
            "mappedFileSizeCommitLog={} {}",
            config.mapped_file_size_commit_log, driver.shared_settings
        )
        .trim_end()
        .to_string();
        driver.raft.max_entry_body_bytes = driver
            .raft
            .max_entry_body_bytes
            .min(config.max_message_size);
        let engine = Arc::new(Engine::new(
            config,
            env,
            Arc::clone(&log),
            dispatcher,
            Some(Arc::clone(&gate)),
        ));
        crate::flush::flush_all_and_checkpoint(&engine)?;

        let dispatched_next = index_at_or_after(&log, engine.dispatcher.dispatched_pos());
        let metadata_applied = metadata.as_ref().map_or(u64::MAX, |m| m.applied_index());
        let apply_from = dispatched_next
            .min(metadata_applied.saturating_add(1))
            .max(1);
        driver.apply_from = Some(apply_from);
        let propose_timeout = Duration::from_millis(driver.propose_timeout_ms);
        let id = driver.id;
        let hard_state = FileHardStateStore::open(&raft_dir)?;
        let raft_log = RaftLog::new(Arc::clone(&log), Arc::clone(&gate));
        let started = RaftDriver::start(driver, raft_log, hard_state, listener)?;
        let Some(apply_rx) = started.apply else {
            return Err(ReplicatedError::Stopped);
        };
        let threads = BackgroundThreads::start(&engine)?;

        let raft_state = started.handle.state();
        let initial = *raft_state.borrow();
        let applied_index = apply_from - 1;
        let (status_tx, status_rx) = watch::channel(ReplicaStatus {
            id,
            role: initial.role,
            term: initial.term,
            leader: initial.leader,
            writable: false,
            commit_index: initial.commit_index,
            applied_index,
        });
        let table = Arc::new(Mutex::new(QueueTable::default()));
        let shutdown = CancellationToken::new();
        let (failure_tx, failure) = watch::channel(None);
        let failure_tx = Arc::new(failure_tx);
        let driver_task = tokio::spawn(report_driver_end(started.task, Arc::clone(&failure_tx)));
        let applier = Applier {
            failure: failure_tx,
            engine: Arc::clone(&engine),
            table: Arc::clone(&table),
            metadata,
            metadata_applied: metadata_applied.min(applied_index),
            raft_state,
            status: status_tx,
            applied_index,
            applied_term: log.term_at(applied_index).unwrap_or(0),
            trimmed_below_pos: log.first_pos(),
            batch: BatchAssembly::default(),
        };
        let apply_task = tokio::spawn(applier.run(apply_rx, shutdown.clone()));
        let recovery = StoreRecovery {
            commit_log: log_recovery,
            dispatch: dispatch_recovery,
        };
        tracing::info!(root = %root.display(), %id, apply_from, ?recovery, "replicated store opened");
        Ok((
            ReplicatedStore {
                reader: StoreReader::new(Arc::clone(&engine)),
                engine,
                handle: started.handle,
                status: status_rx,
                table,
                gate,
                propose_timeout,
                shutdown,
                driver_task: Mutex::new(Some(driver_task)),
                apply_task: Mutex::new(Some(apply_task)),
                failure,
                threads,
                raft_dir,
            },
            recovery,
        ))
    }

    /// Why this member stopped following its group (its raft node stopped on an error, or
    /// applying committed entries failed); `None` while it follows. Once set it stays:
    /// the member serves only what it had, and should leave the routes and restart.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failure.clone()
    }

    /// Pulls, offsets and lookups: committed messages only.
    pub fn reader(&self) -> &StoreReader {
        &self.reader
    }

    pub fn config(&self) -> &StoreConfig {
        &self.engine.config
    }

    /// The CommitLog (raft log) of this node, for stats and checks.
    pub fn commit_log(&self) -> &CommitLog {
        &self.engine.log
    }

    /// The raft node, for status, leadership transfer and shutdown.
    pub fn raft(&self) -> &RaftHandle {
        &self.handle
    }

    /// Role and readiness now.
    pub fn status(&self) -> ReplicaStatus {
        *self.status.borrow()
    }

    /// A watch of role and readiness; `changed()` wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<ReplicaStatus> {
        self.status.clone()
    }

    /// Stores a batch of encoded message records through raft (queue offset, physical offset
    /// and store timestamp fields are placeholders). Only on a writable leader. Completes
    /// when the batch is committed: with SYNC_FLUSH fsynced on a quorum and dispatched here,
    /// with ASYNC_FLUSH in the page cache of a quorum (see the module documentation).
    pub async fn put_messages(
        &self,
        records: &[&[u8]],
    ) -> Result<PutMessagesResult, ReplicatedError> {
        let status = self.status();
        if !status.writable {
            return Err(not_writable(&status));
        }
        let parsed = parse_records(&self.engine.config, records)?;
        if records.is_empty() {
            return Ok(PutMessagesResult {
                status: PutStatus::PutOk,
                messages: Vec::new(),
            });
        }
        let now_ms = self.engine.env.clock.now_ms();
        let slots: Arc<Mutex<Vec<Option<Assigned>>>> =
            Arc::new(Mutex::new(vec![None; records.len()]));
        // Decided by the batch's first record for all of them: a batch is stored whole or
        // poisoned whole, never with some records dispatchable and the send failed.
        let poisoned_batch: Arc<std::sync::OnceLock<bool>> = Arc::new(std::sync::OnceLock::new());
        let last = records.len() - 1;
        let proposals: Vec<Proposal> = records
            .iter()
            .zip(&parsed)
            .enumerate()
            .map(|(i, (record, info))| {
                let queue = info
                    .is_dispatchable()
                    .then(|| (info.topic.to_string(), info.queue_id));
                let table = Arc::clone(&self.table);
                let slots = Arc::clone(&slots);
                let poisoned_batch = Arc::clone(&poisoned_batch);
                let channel = if i < last {
                    CHANNEL_MESSAGE_BATCH_PART
                } else {
                    CHANNEL_MESSAGE
                };
                Proposal::with_patch(
                    channel,
                    Bytes::copy_from_slice(record),
                    move |place, body| {
                        // Runs on the raft driver when the entry is placed, in log order.
                        let (queue_offset, store_ts, poisoned) = {
                            let mut table = table.lock();
                            if *poisoned_batch.get_or_init(|| table.term != place.term) {
                                (POISONED_QUEUE_OFFSET, table.offsets.peek_time(now_ms), true)
                            } else {
                                let store_ts = table.offsets.stamp_time(now_ms);
                                let offset = match &queue {
                                    Some((topic, queue_id)) => table.offsets.take(topic, *queue_id),
                                    None => 0,
                                };
                                (offset, store_ts, false)
                            }
                        };
                        let phys_offset = place.body_pos() as i64;
                        let patched = stamp_record(body, queue_offset, phys_offset, store_ts);
                        if let Err(e) = &patched {
                            // Validated records always patch; this is a bug, made loud.
                            tracing::error!(error = %e, "cannot patch a replicated record");
                        }
                        if let Some(slot) = slots.lock().get_mut(i) {
                            *slot = Some(Assigned {
                                queue_offset,
                                store_timestamp_ms: store_ts,
                                phys_offset,
                                poisoned: poisoned || patched.is_err(),
                            });
                        }
                    },
                )
            })
            .collect();
        let future = self
            .handle
            .propose_batch(proposals)
            .map_err(proposal_error)?;
        // The driver times proposals out itself; this only guards against a stuck driver.
        let places = match tokio::time::timeout(self.propose_timeout * 2, future).await {
            Ok(result) => result.map_err(proposal_error)?,
            Err(_) => {
                return Err(ReplicatedError::OutcomeUnknown(
                    "raft node did not answer in time".into(),
                ))
            }
        };
        let assigned: Vec<Option<Assigned>> = slots.lock().clone();
        let mut messages = Vec::with_capacity(records.len());
        for (slot, record) in assigned.iter().zip(records) {
            match slot {
                Some(a) if !a.poisoned => messages.push(PutMessageResult {
                    phys_offset: a.phys_offset,
                    queue_offset: a.queue_offset,
                    store_timestamp_ms: a.store_timestamp_ms,
                    size: record.len() as i32,
                }),
                _ => return Err(ReplicatedError::NotReady),
            }
        }
        if self.engine.config.flush_disk_type == FlushDiskType::SyncFlush {
            if let Some(last) = places.last() {
                self.wait_applied(last.index).await;
            }
        }
        Ok(PutMessagesResult {
            status: PutStatus::PutOk,
            messages,
        })
    }

    /// Replicates a broker metadata op (channel [`CHANNEL_METADATA`]) through raft. Only on
    /// the leader. Resolves with the op's log index once committed and handed to this node's
    /// [`MetadataApplier`].
    pub async fn propose_metadata(&self, body: Bytes) -> Result<u64, ReplicatedError> {
        let status = self.status();
        if status.role != Role::Leader {
            return Err(ReplicatedError::NotLeader {
                leader: status.leader,
            });
        }
        let future = self
            .handle
            .propose(Proposal::new(CHANNEL_METADATA, body))
            .map_err(proposal_error)?;
        let place = match tokio::time::timeout(self.propose_timeout * 2, future).await {
            Ok(result) => result.map_err(proposal_error)?,
            Err(_) => {
                return Err(ReplicatedError::OutcomeUnknown(
                    "raft node did not answer in time".into(),
                ))
            }
        };
        self.wait_applied(place.index).await;
        Ok(place.index)
    }

    /// The record at `phys_offset`, waiting up to `max_wait` for one whose put was just
    /// acknowledged: with ASYNC_FLUSH a put is acknowledged once a quorum holds it, and
    /// becomes readable here once a quorum has fsynced it and it is applied, a moment later.
    /// Wakes on each applied entry rather than polling.
    pub async fn message_after_put(&self, phys_offset: i64, max_wait: Duration) -> Option<Bytes> {
        let mut rx = self.status.clone();
        let deadline = tokio::time::Instant::now() + max_wait;
        // Bounded by the deadline: every wait is.
        loop {
            rx.borrow_and_update();
            if let Some(record) = self.reader.message_at(phys_offset) {
                return Some(record);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Waits (bounded) until this node applied `index`. A committed entry is applied soon;
    /// the bound only matters when the apply loop is stuck, and the put has committed anyway.
    async fn wait_applied(&self, index: u64) {
        let mut rx = self.status.clone();
        let _ = tokio::time::timeout(
            self.propose_timeout,
            rx.wait_for(|s| s.applied_index >= index),
        )
        .await;
    }

    /// After a log restart past records this node never saw, a queue with no record since
    /// the restart does not know where the group's offsets reached. `floors` are another
    /// member's next offsets (topic, queue id, next offset), read before it reported
    /// `as_of_index` as applied. Once this node has applied that far, a queue that is still
    /// empty here had no record since the restart up to `as_of_index`, so its floor is
    /// exactly where the group's queue goes on: such queues move forward to it (a writable
    /// leader's queue-offset table too). Returns how many moved, or `None` when this node
    /// has not applied `as_of_index` yet (ask again later).
    pub fn raise_empty_queues(
        &self,
        floors: &[(String, i32, i64)],
        as_of_index: u64,
    ) -> Result<Option<usize>, StoreError> {
        if self.status.borrow().applied_index < as_of_index {
            return Ok(None);
        }
        let mut raised = 0;
        for (topic, queue_id, next_offset) in floors {
            if self
                .engine
                .dispatcher
                .raise_empty_queue(topic, *queue_id, *next_offset)?
            {
                raised += 1;
                let mut table = self.table.lock();
                if table.term != 0 {
                    table.offsets.raise(topic, *queue_id, *next_offset);
                }
            }
        }
        Ok(Some(raised))
    }

    /// Runs retention now, ignoring the hour of day: asks the raft node to remove expired
    /// segments below the durable dispatch checkpoint (done at its next commit) and removes
    /// derived files of segments already gone.
    pub fn clean_expired_files_now(&self) -> Result<crate::retention::RetentionReport, StoreError> {
        crate::retention::run_once(&self.engine, true)
    }

    /// CommitLog segments removed by retention since open.
    pub fn removed_segments(&self) -> u64 {
        self.gate.removed_segments()
    }

    /// Flushes derived files and the CommitLog and writes the checkpoints.
    pub fn flush(&self) -> Result<(), StoreError> {
        crate::flush::flush_all_and_checkpoint(&self.engine)
    }

    /// Stops the raft node (waiting, bounded, until it released its port and log), the apply
    /// loop and the background threads, after a final flush.
    pub async fn close(&self) {
        self.shutdown.cancel();
        self.handle.shutdown();
        let driver = self.driver_task.lock().take();
        if let Some(task) = driver {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::error!("raft node did not stop in time");
            }
        }
        let apply = self.apply_task.lock().take();
        if let Some(task) = apply {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.stop_threads_and_flush();
    }

    fn stop_threads_and_flush(&self) {
        if !self.threads.stop(&self.engine) {
            return;
        }
        if let Err(e) = crate::flush::flush_all_and_checkpoint(&self.engine) {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

impl Drop for ReplicatedStore {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.handle.shutdown();
        self.stop_threads_and_flush();
    }
}

/// Waits for the raft node's task; an end it was not asked for becomes the store's failure.
async fn report_driver_end(
    task: tokio::task::JoinHandle<Result<(), DriverError>>,
    failure: Arc<watch::Sender<Option<String>>>,
) {
    let reason = match task.await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("raft node stopped: {e}"),
        Err(e) => format!("raft node task ended abnormally: {e}"),
    };
    tracing::error!(%reason, "this member no longer follows its group");
    record_failure(&failure, reason);
}

/// Keeps the first failure: later ones are its consequences.
fn record_failure(failure: &watch::Sender<Option<String>>, reason: String) {
    failure.send_if_modified(|current| {
        let first = current.is_none();
        if first {
            *current = Some(reason);
        }
        first
    });
}

fn not_writable(status: &ReplicaStatus) -> ReplicatedError {
    if status.role == Role::Leader {
        ReplicatedError::NotReady
    } else {
        ReplicatedError::NotLeader {
            leader: status.leader.filter(|l| *l != status.id),
        }
    }
}

/// The apply loop: committed entries in, ConsumeQueues, key index and metadata ops out;
/// role changes in, readiness out.
struct Applier {
    engine: Arc<Engine>,
    table: Arc<Mutex<QueueTable>>,
    metadata: Option<Arc<dyn MetadataApplier>>,
    metadata_applied: u64,
    raft_state: watch::Receiver<RaftState>,
    status: watch::Sender<ReplicaStatus>,
    applied_index: u64,
    applied_term: u64,
    /// The CommitLog start derived files were last trimmed to.
    trimmed_below_pos: u64,
    /// Leading records of a batch whose last record is not applied yet.
    batch: BatchAssembly,
    failure: Arc<watch::Sender<Option<String>>>,
}

impl Applier {
    async fn run(mut self, mut apply: mpsc::Receiver<ApplyEvent>, shutdown: CancellationToken) {
        self.refresh();
        let mut raft_alive = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = apply.recv() => {
                    let Some(event) = event else { break };
                    if let Err(e) = self.on_event(event) {
                        // The derived files can no longer follow the log: stop applying
                        // rather than serve queues that disagree with the group.
                        let reason = format!("applying committed entries failed: {e}");
                        self.engine.log.fail(reason.clone());
                        record_failure(&self.failure, reason);
                        break;
                    }
                }
                changed = self.raft_state.changed(), if raft_alive => {
                    raft_alive = changed.is_ok();
                }
            }
            self.refresh();
        }
        self.table.lock().term = 0;
        self.status.send_modify(|s| s.writable = false);
    }

    fn on_event(&mut self, event: ApplyEvent) -> Result<(), StoreError> {
        match event {
            ApplyEvent::Entries(entries) => self.apply_entries(&entries),
            ApplyEvent::LogRestarted {
                next_index,
                next_pos,
            } => {
                tracing::warn!(
                    next_index,
                    next_pos,
                    "log restarted: dropping derived entries below it"
                );
                self.batch.clear();
                self.engine.dispatcher.restart_at(next_pos)?;
                if let Some(metadata) = &self.metadata {
                    metadata.log_restarted(next_index);
                }
                self.metadata_applied = next_index - 1;
                self.applied_index = next_index - 1;
                self.applied_term = self.engine.log.term_at(next_index - 1).unwrap_or(0);
                crate::flush::flush_all_and_checkpoint(&self.engine)
            }
        }
    }

    fn apply_entries(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let dispatched = self.engine.dispatcher.dispatched_pos();
        let mut bodies: Vec<(u64, Bytes)> = Vec::new();
        let mut end_pos = None;
        for entry in entries {
            let entry_end = entry.pos + entry.size() as u64;
            if entry.kind == EntryKind::Normal
                && !is_message_channel(entry.channel)
                && entry.index > self.metadata_applied
            {
                if let Some(metadata) = &self.metadata {
                    metadata.apply(entry.index, entry.channel, &entry.body);
                }
                self.metadata_applied = entry.index;
            }
            // Below the dispatched position: re-delivered after a restart for the metadata
            // applier's sake; its queue entries are already there.
            if entry_end > dispatched {
                bodies.extend(self.batch.step(
                    entry.pos,
                    entry.kind,
                    entry.channel,
                    entry.body.clone(),
                ));
            }
            end_pos = Some(entry_end);
            self.applied_index = entry.index;
            self.applied_term = entry.term;
        }
        let mut records = Vec::with_capacity(bodies.len());
        for (pos, body) in &bodies {
            match MessageView::parse(body) {
                Ok(view)
                    if view.physical_offset() == (pos + ENTRY_HEADER_LEN as u64) as i64
                        && view.total_size() == body.len() =>
                {
                    let info = view.dispatch_info();
                    if info.queue_offset != POISONED_QUEUE_OFFSET {
                        records.push(info);
                    }
                }
                _ => tracing::error!(
                    pos,
                    "committed entry is not a valid message record; not dispatched"
                ),
            }
        }
        // Nothing of a batch still waiting for its last record counts as dispatched.
        let dispatch_end = match (end_pos, self.batch.open_at()) {
            (Some(end), Some(open)) => Some(end.min(open)),
            (end, _) => end,
        };
        if let Some(end_pos) = end_pos {
            // The driver marks committed entries stable as the commit index moves; this only
            // makes sure before reading them back.
            self.engine.log.mark_stable(end_pos);
        }
        if let Some(end_pos) = dispatch_end {
            if end_pos > dispatched {
                let grown = self
                    .engine
                    .dispatcher
                    .dispatch_replicated(&records, end_pos)?;
                self.engine.notify_arrivals(&grown);
            }
        }
        // Retention removes segments on the raft driver as commits arrive: drop the queue
        // and index entries of removed segments right away, so pulls never start at records
        // that are gone.
        let first_pos = self.engine.log.first_pos();
        if first_pos > self.trimmed_below_pos {
            self.engine.dispatcher.remove_below(first_pos as i64)?;
            self.trimmed_below_pos = first_pos;
        }
        Ok(())
    }

    /// Recomputes readiness: a leader becomes writable once it applied an entry of its own
    /// term (its no-op, so everything before it is dispatched) and rebuilt the table.
    fn refresh(&mut self) {
        let raft = *self.raft_state.borrow_and_update();
        let leading = raft.role == Role::Leader;
        let writable = {
            let mut table = self.table.lock();
            if !leading || table.term != raft.term {
                table.term = 0;
            }
            if leading && table.term == 0 && self.applied_term == raft.term && raft.term > 0 {
                table.offsets.reload(&self.engine.dispatcher);
                table.term = raft.term;
                tracing::info!(
                    term = raft.term,
                    applied = self.applied_index,
                    "leader is writable"
                );
            }
            leading && table.term == raft.term && raft.term > 0
        };
        let next = ReplicaStatus {
            id: raft.id,
            role: raft.role,
            term: raft.term,
            leader: raft.leader,
            writable,
            commit_index: raft.commit_index,
            applied_index: self.applied_index,
        };
        self.status.send_if_modified(|current| {
            if *current != next {
                *current = next;
                true
            } else {
                false
            }
        });
    }
}
