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
//!   two messages. Each member fsyncs in the background as entries arrive (with ASYNC_FLUSH
//!   no more often than the driver's `min_sync_interval`), so with ASYNC_FLUSH messages
//!   become visible about that interval plus one fsync after their acknowledgement.
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
use parking_lot::Mutex;
use raft::{
    ApplyEvent, DriverConfig, DriverError, FileHardStateStore, Proposal, ProposalError, RaftDriver,
    RaftHandle, RaftState, Role,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::background::BackgroundThreads;
use crate::commit_log::CommitLog;
use crate::config::{FlushDiskType, StoreConfig};
use crate::engine::Engine;
use crate::environment::Environment;
use crate::error::StoreError;
use crate::raft_log::RetentionGate;
use crate::reader::StoreReader;
use crate::replica::{stamp_records, QueueTable, ReplicaCore};
pub use crate::replica::{MetadataApplier, ReplicaStatus, ReplicatedError};
use crate::results::{PutMessagesResult, PutStatus, StoreRecovery};

/// The entry channel of replicated broker metadata operations (topic and subscription
/// configs, consumer offsets, ...). Any channel other than [`CHANNEL_MESSAGE`] is handed to
/// the [`MetadataApplier`].
pub const CHANNEL_METADATA: u32 = 1;

fn proposal_error(e: ProposalError) -> ReplicatedError {
    match e {
        ProposalError::NotLeader { leader } => ReplicatedError::NotLeader { leader },
        ProposalError::Transferring => ReplicatedError::NotLeader { leader: None },
        ProposalError::Busy | ProposalError::QueueFull => ReplicatedError::Busy(e.to_string()),
        ProposalError::TooLarge(reason) => ReplicatedError::Store(StoreError::BadRecord(reason)),
        ProposalError::LeadershipLost
        | ProposalError::Timeout
        | ProposalError::StoppedBeforeCommit => ReplicatedError::OutcomeUnknown(e.to_string()),
        ProposalError::Stopped => ReplicatedError::Stopped,
        ProposalError::MembershipRefused(reason) => ReplicatedError::MembershipRefused(reason),
        ProposalError::ChangeInProgress => ReplicatedError::MembershipRefused(e.to_string()),
    }
}

/// A broker's store in a raft group. Dropping it stops everything (see
/// [`ReplicatedStore::close`] to wait for the raft node to release its port and files).
pub struct ReplicatedStore {
    engine: Arc<Engine>,
    reader: StoreReader,
    handle: RaftHandle,
    status: watch::Receiver<ReplicaStatus>,
    /// The last entry applied here, for waiters on one entry (SYNC_FLUSH puts, metadata).
    applied: watch::Receiver<u64>,
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
        let (core, recovery) = ReplicaCore::open(config, driver.id, metadata, env)?;
        let config = &core.engine.config;
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
        let apply_from = core.next_apply_index();
        driver.apply_from = Some(apply_from);
        let propose_timeout = Duration::from_millis(driver.propose_timeout_ms);
        let id = driver.id;
        let raft_dir = core.raft_dir();
        let root = config.store_path_root_dir.clone();
        let hard_state = FileHardStateStore::open(&raft_dir)?;
        let raft_log = core.raft_log();
        let engine = Arc::clone(&core.engine);
        let table = Arc::clone(&core.table);
        let gate = Arc::clone(&core.gate);
        let started = RaftDriver::start(driver, raft_log, hard_state, listener)?;
        let Some(apply_rx) = started.apply else {
            return Err(ReplicatedError::Stopped);
        };
        let threads = BackgroundThreads::start(&engine)?;

        let raft_state = started.handle.state();
        let initial = *raft_state.borrow();
        let (status_tx, status_rx) = watch::channel(ReplicaStatus {
            id,
            role: initial.role,
            term: initial.term,
            leader: initial.leader,
            writable: false,
            commit_index: initial.commit_index,
            applied_index: apply_from - 1,
            removed: initial.removed,
        });
        let (applied_tx, applied_rx) = watch::channel(apply_from - 1);
        let shutdown = CancellationToken::new();
        let (failure_tx, failure) = watch::channel(None);
        let failure_tx = Arc::new(failure_tx);
        let driver_task = tokio::spawn(report_driver_end(started.task, Arc::clone(&failure_tx)));
        let applier = Applier {
            failure: failure_tx,
            core,
            raft_state,
            status: status_tx,
            applied: applied_tx,
        };
        let apply_task = tokio::spawn(applier.run(apply_rx, shutdown.clone()));
        tracing::info!(root = %root.display(), %id, apply_from, ?recovery, "replicated store opened");
        Ok((
            ReplicatedStore {
                reader: StoreReader::new(Arc::clone(&engine)),
                engine,
                handle: started.handle,
                status: status_rx,
                applied: applied_rx,
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

    /// A watch of role and readiness. `changed()` wakes when role, term, leader, readiness or
    /// membership change (see [`ReplicaStatus::same_standing`]); commit and applied index
    /// are kept current for `borrow()` without a wake-up.
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
        if records.is_empty() {
            return Ok(PutMessagesResult {
                status: PutStatus::PutOk,
                messages: Vec::new(),
            });
        }
        let now_ms = self.engine.env.clock.now_ms();
        let (proposals, stamps) = stamp_records(&self.engine.config, &self.table, records, now_ms)?;
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
        let messages = stamps.results(records)?;
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
        let mut rx = self.applied.clone();
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
        let mut rx = self.applied.clone();
        let _ = tokio::time::timeout(
            self.propose_timeout,
            rx.wait_for(|applied| *applied >= index),
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
        crate::replica::raise_empty_queues(&self.engine, &self.table, floors).map(Some)
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
/// role changes in, readiness out. The work itself is [`ReplicaCore`]'s.
struct Applier {
    core: ReplicaCore,
    raft_state: watch::Receiver<RaftState>,
    status: watch::Sender<ReplicaStatus>,
    applied: watch::Sender<u64>,
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
                    if let Err(e) = self.core.apply(event) {
                        // The derived files can no longer follow the log: stop applying
                        // rather than serve queues that disagree with the group.
                        let reason = format!("applying committed entries failed: {e}");
                        self.core.engine.log.fail(reason.clone());
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
        self.core.stop_writes();
        self.status.send_modify(|s| s.writable = false);
    }

    fn refresh(&mut self) {
        let raft = *self.raft_state.borrow_and_update();
        let next = self.core.refresh(&raft);
        self.status.send_if_modified(|current| {
            let news = !current.same_standing(&next);
            *current = next;
            news
        });
        self.applied.send_if_modified(|applied| {
            let advanced = next.applied_index > *applied;
            *applied = next.applied_index.max(*applied);
            advanced
        });
    }
}
