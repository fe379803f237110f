//! One member's replicated store without threads, channels or timers: recovery of its
//! files, queue-offset stamping of proposals, applying committed entries, leader readiness.
//! [`crate::ReplicatedStore`] runs it on a raft driver and an apply task; a deterministic
//! simulation drives the same code from one thread (see `tests/group_sim.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use message::MessageView;
use parking_lot::Mutex;
use raft::entry::{Entry, EntryKind, ENTRY_HEADER_LEN};
use raft::{ApplyEvent, DriverError, NodeId, Proposal, RaftState, Role};

use crate::checkpoint::{self, StoreCheckpoint};
use crate::commit_log::{CommitLog, CommitLogConfig};
use crate::config::StoreConfig;
use crate::dispatch::{
    is_message_channel, BatchAssembly, CHANNEL_MESSAGE, CHANNEL_MESSAGE_BATCH_PART,
};
use crate::engine::{open_derived_files, parse_records, validate_body, Engine};
use crate::environment::Environment;
use crate::error::StoreError;
use crate::queue_offsets::{stamp_record, QueueOffsetTable};
use crate::raft_log::{RaftLog, RetentionGate};
use crate::reader::StoreReader;
use crate::results::{PutMessageResult, StoreRecovery};

/// What the broker plugs in to receive committed entries of channels other than messages.
/// Called from the apply loop, in log order; keep it quick (hand the op to a task or apply
/// it to in-memory state and persist in the background).
pub trait MetadataApplier: Send + Sync + 'static {
    /// Highest index whose op the broker has durably applied: after a restart, entries from
    /// the next index on are delivered again (so nothing is skipped), and none at or below
    /// it (so nothing is applied twice). While ops applied are not yet written durably,
    /// retention keeps the entries after it (asked as entries apply, so the hold may lift
    /// later than the broker writes, never too early).
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
    /// The group removed this member: it must not be routed to.
    pub removed: bool,
}

impl ReplicaStatus {
    /// Whether `other` differs from this in role, term, leader, readiness or membership:
    /// what watchers of the status wait for. Commit and applied index move with every
    /// batch, and waking every watcher per batch costs task switches on the write path.
    pub fn same_standing(&self, other: &ReplicaStatus) -> bool {
        self.id == other.id
            && self.role == other.role
            && self.term == other.term
            && self.leader == other.leader
            && self.writable == other.writable
            && self.removed == other.removed
    }
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

/// Queue offset a patch writes into a record it must not let through (see the
/// [`crate::replicated`] module documentation); such records are never dispatched.
const POISONED_QUEUE_OFFSET: i64 = -1;

/// The leader's next queue offset per topic-queue, valid for one term.
#[derive(Debug, Default)]
pub(crate) struct QueueTable {
    /// The term the table was rebuilt for; 0 while it is not valid.
    pub(crate) term: u64,
    pub(crate) offsets: QueueOffsetTable,
}

/// What a patch decided for one record.
#[derive(Debug, Clone, Copy)]
struct Assigned {
    queue_offset: i64,
    store_timestamp_ms: i64,
    phys_offset: i64,
    poisoned: bool,
}

/// What the patches of one put decided, filled in as the raft node places its entries.
#[derive(Debug, Clone)]
pub struct Stamps {
    slots: Arc<Mutex<Vec<Option<Assigned>>>>,
}

impl Stamps {
    /// Where each record of the put went, once all its entries were placed and committed.
    /// A record placed under a table not rebuilt for its entry's term was poisoned (never
    /// dispatched): the whole put then fails as not ready, and a retry cannot duplicate it.
    pub fn results(&self, records: &[&[u8]]) -> Result<Vec<PutMessageResult>, ReplicatedError> {
        let assigned: Vec<Option<Assigned>> = self.slots.lock().clone();
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
        Ok(messages)
    }
}

/// Validates encoded message records and makes one proposal per record, each with a patch
/// that, when the raft node places the entry (in log order), takes the record's queue
/// offset from the leader's table and writes it with the physical offset and store
/// timestamp into the body before it is checksummed and replicated.
pub(crate) fn stamp_records(
    config: &StoreConfig,
    table: &Arc<Mutex<QueueTable>>,
    records: &[&[u8]],
    now_ms: i64,
) -> Result<(Vec<Proposal>, Stamps), ReplicatedError> {
    let parsed = parse_records(config, records)?;
    let slots: Arc<Mutex<Vec<Option<Assigned>>>> = Arc::new(Mutex::new(vec![None; records.len()]));
    // Decided by the batch's first record for all of them: a batch is stored whole or
    // poisoned whole, never with some records dispatchable and the send failed.
    let poisoned_batch: Arc<std::sync::OnceLock<bool>> = Arc::new(std::sync::OnceLock::new());
    let last = records.len().saturating_sub(1);
    let proposals: Vec<Proposal> = records
        .iter()
        .zip(&parsed)
        .enumerate()
        .map(|(i, (record, info))| {
            let queue = info
                .is_dispatchable()
                .then(|| (info.topic.to_string(), info.queue_id));
            let table = Arc::clone(table);
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
    Ok((proposals, Stamps { slots }))
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

/// Moves queues that hold nothing to the group's next offsets `floors` (topic, queue id,
/// next offset), a writable leader's queue-offset table with them (see
/// [`ReplicatedStore::raise_empty_queues`](crate::ReplicatedStore::raise_empty_queues)).
/// Returns how many moved.
pub(crate) fn raise_empty_queues(
    engine: &Engine,
    table: &Mutex<QueueTable>,
    floors: &[(String, i32, i64)],
) -> Result<usize, StoreError> {
    let mut raised = 0;
    for (topic, queue_id, next_offset) in floors {
        if engine
            .dispatcher
            .raise_empty_queue(topic, *queue_id, *next_offset)?
        {
            raised += 1;
            let mut table = table.lock();
            if table.term != 0 {
                table.offsets.raise(topic, *queue_id, *next_offset);
            }
        }
    }
    Ok(raised)
}

/// Who holds the CommitLog for the metadata applier, in retention's log lines.
const METADATA_HOLDER: &str = "metadata not yet written";

/// A member's files and what it derived from its log so far.
pub struct ReplicaCore {
    pub(crate) engine: Arc<Engine>,
    pub(crate) table: Arc<Mutex<QueueTable>>,
    pub(crate) gate: Arc<RetentionGate>,
    raft_dir: PathBuf,
    metadata: Option<Arc<dyn MetadataApplier>>,
    metadata_applied: u64,
    /// Entries up to here were dispatched before the last restart: they are delivered
    /// again only for the metadata's sake.
    redelivered_through: u64,
    /// The first entry the retention hold for the metadata keeps (`None`: no hold), as
    /// last set.
    metadata_hold_for: Option<Option<u64>>,
    applied_index: u64,
    applied_term: u64,
    /// The CommitLog start derived files were last trimmed to.
    trimmed_below_pos: u64,
    /// Leading records of a batch whose last record is not applied yet.
    batch: BatchAssembly,
}

impl std::fmt::Debug for ReplicaCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaCore")
            .field("raft_dir", &self.raft_dir)
            .field("applied_index", &self.applied_index)
            .finish()
    }
}

impl ReplicaCore {
    /// Opens and recovers member `id`'s files under `config.store_path_root_dir`
    /// (CommitLog in `dledger-<id>/data`, ConsumeQueues and index beside it as in a
    /// standalone store), and flushes what recovery kept before anything counts on it.
    pub fn open(
        config: StoreConfig,
        id: NodeId,
        metadata: Option<Arc<dyn MetadataApplier>>,
        env: Environment,
    ) -> Result<(ReplicaCore, StoreRecovery), StoreError> {
        config.validate()?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        let raft_dir = root.join(format!("dledger-{id}"));
        let log_config = CommitLogConfig {
            dir: raft_dir.join("data"),
            segment_len: config.mapped_file_size_commit_log,
            index_slots_per_file: config.entry_index_slots_per_file,
            max_body_len: config.max_message_size,
            max_batch_bytes: (4 << 20).max(2 * config.max_message_size + 4096),
            write_through_file: true,
            warm_ahead: config.warm_mapped_file,
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
        // Entries before the log's first one that the metadata has not written are gone
        // only if they held no op (retention keeps them otherwise: `hold_for_metadata`).
        let apply_from = dispatched_next
            .min(metadata_applied.saturating_add(1))
            .max(log.first_index())
            .max(1);
        let applied_index = apply_from - 1;
        let core = ReplicaCore {
            table: Arc::new(Mutex::new(QueueTable::default())),
            gate,
            raft_dir,
            metadata,
            metadata_applied: metadata_applied.min(applied_index),
            redelivered_through: dispatched_next.saturating_sub(1),
            metadata_hold_for: None,
            applied_index,
            applied_term: log.term_at(applied_index).unwrap_or(0),
            trimmed_below_pos: log.first_pos(),
            batch: BatchAssembly::default(),
            engine,
        };
        let recovery = StoreRecovery {
            commit_log: log_recovery,
            dispatch: dispatch_recovery,
        };
        let mut core = core;
        core.hold_for_metadata();
        Ok((core, recovery))
    }

    /// The first log index this member must be handed (committed entries from here on).
    pub fn next_apply_index(&self) -> u64 {
        self.applied_index + 1
    }

    /// Where raft keeps this member's term, vote and membership.
    pub fn raft_dir(&self) -> PathBuf {
        self.raft_dir.clone()
    }

    /// The CommitLog as raft's log storage.
    pub fn raft_log(&self) -> RaftLog {
        RaftLog::new(Arc::clone(&self.engine.log), Arc::clone(&self.gate))
    }

    /// Pulls, offsets and lookups over what this member dispatched.
    pub fn reader(&self) -> StoreReader {
        StoreReader::new(Arc::clone(&self.engine))
    }

    /// Flushes derived files and the CommitLog and writes the checkpoints, as the store's
    /// flush and maintenance threads do from time to time.
    pub fn flush(&self) -> Result<(), StoreError> {
        crate::flush::flush_all_and_checkpoint(&self.engine)
    }

    /// [`ReplicatedStore::raise_empty_queues`](crate::ReplicatedStore::raise_empty_queues)
    /// on this member.
    pub fn raise_empty_queues(
        &self,
        floors: &[(String, i32, i64)],
        as_of_index: u64,
    ) -> Result<Option<usize>, StoreError> {
        if self.applied_index < as_of_index {
            return Ok(None);
        }
        raise_empty_queues(&self.engine, &self.table, floors).map(Some)
    }

    /// A retention pass now, as the maintenance thread runs it at a `deleteWhen` hour: asks
    /// the raft log to remove expired segments (at its next commit notice).
    pub fn clean_expired_files_now(&self) -> Result<crate::retention::RetentionReport, StoreError> {
        crate::retention::run_once(&self.engine, true)
    }

    /// Proposals for a put on this member, stamped as they are placed (see
    /// [`ReplicatedStore::put_messages`](crate::ReplicatedStore::put_messages)).
    pub fn stamp(
        &self,
        records: &[&[u8]],
        now_ms: i64,
    ) -> Result<(Vec<Proposal>, Stamps), ReplicatedError> {
        stamp_records(&self.engine.config, &self.table, records, now_ms)
    }

    /// Takes the next committed entries (or a log restart) in log order: message records
    /// go to the ConsumeQueues and the key index, other channels to the metadata applier.
    pub fn apply(&mut self, event: ApplyEvent) -> Result<(), StoreError> {
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
        self.hold_for_metadata();
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

    /// Keeps retention from removing entries the metadata applier has applied but not yet
    /// written durably: a restart delivers them again, from the log.
    fn hold_for_metadata(&mut self) {
        let Some(metadata) = &self.metadata else {
            return;
        };
        let durable = metadata.applied_index();
        // Ops applied but not written yet come back from the log after a restart; once every
        // op applied is written, only entries delivered again after a restart (for the
        // metadata's sake, below the dispatch checkpoint that bounds retention otherwise)
        // may still hold one. In steady state there is no hold.
        let needed = if durable < self.metadata_applied {
            Some(durable + 1)
        } else if self.applied_index < self.redelivered_through {
            Some(self.applied_index + 1)
        } else {
            None
        };
        if self.metadata_hold_for == Some(needed) {
            return;
        }
        let log = &self.engine.log;
        let from = needed.and_then(|index| match log.location(index) {
            Some(loc) => Some(loc.pos as i64),
            None if index > log.last_index() => None,
            None => Some(log.first_pos() as i64),
        });
        // Where the entry is, it stays (until retention may take it); one not appended yet
        // is looked for again as entries apply.
        if needed.is_none() || from.is_some() {
            self.metadata_hold_for = Some(needed);
        }
        self.engine.retention_holds.set(METADATA_HOLDER, from);
    }

    /// Recomputes readiness from raft's state: a leader becomes writable once it applied an
    /// entry of its own term (its no-op, so everything before it is dispatched) and rebuilt
    /// its queue-offset table from the ConsumeQueues.
    pub fn refresh(&mut self, raft: &RaftState) -> ReplicaStatus {
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
        ReplicaStatus {
            id: raft.id,
            role: raft.role,
            term: raft.term,
            leader: raft.leader,
            writable,
            commit_index: raft.commit_index,
            applied_index: self.applied_index,
            removed: raft.removed,
        }
    }

    /// No more writes through this member's table (its apply loop ended).
    pub fn stop_writes(&self) {
        self.table.lock().term = 0;
    }
}
