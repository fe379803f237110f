//! The engine both stores share: the CommitLog, the dispatcher of derived files
//! (ConsumeQueues, key index), the environment, counters, the arrival listener and the
//! signals of the background services. The standalone store writes to it under its put
//! lock; a replicated store's apply loop writes committed entries to it. Reads go through
//! [`crate::reader::StoreReader`], flushing and retention through their own modules.

use std::sync::Arc;

use bytes::Bytes;
use message::record::{field, store_timestamp_offset};
use message::{DispatchInfo, MessageView};
use parking_lot::{Condvar, Mutex, RwLock};
use raft::entry::{EntryHeader, EntryKind};

use crate::commit_log::{BodyAt, CommitLog, InvalidBody};
use crate::config::StoreConfig;
use crate::consume_queue::{is_safe_topic_dir, ConsumeQueue};
use crate::dispatch::{is_message_channel, Dispatcher};
use crate::environment::Environment;
use crate::error::{Result, StoreError};
use crate::key_index::KeyIndex;
use crate::results::ArrivalListener;
use crate::stats::StoreStats;

pub(crate) struct FlushSignal {
    pub(crate) state: Mutex<FlushRequest>,
    /// Wakes the flusher.
    pub(crate) wake: Condvar,
    /// Wakes the maintenance thread and the prefaulter (only at shutdown).
    pub(crate) clean_wake: Condvar,
}

#[derive(Default)]
pub(crate) struct FlushRequest {
    pub(crate) requested_pos: u64,
    pub(crate) shutdown: bool,
}

pub(crate) struct Engine {
    pub(crate) config: StoreConfig,
    pub(crate) env: Environment,
    pub(crate) log: Arc<CommitLog>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) stats: StoreStats,
    listener: RwLock<Option<ArrivalListener>>,
    pub(crate) flush_signal: FlushSignal,
    /// The last store checkpoint written; serialises checkpoint writes.
    pub(crate) checkpoint_lock: Mutex<crate::checkpoint::CheckpointState>,
    pub(crate) disk_used_ratio_bits: std::sync::atomic::AtomicU64,
    /// Set for a raft replica: retention asks the raft driver to remove segments.
    pub(crate) retention_gate: Option<Arc<crate::raft_log::RetentionGate>>,
    pub(crate) retention_holds: crate::retention_holds::RetentionHolds,
}

/// Opens the files derived from the log (the key index when enabled, and the ConsumeQueues
/// under their dispatcher), as both stores lay them out.
pub(crate) fn open_derived_files(config: &StoreConfig) -> Result<Dispatcher> {
    let key_index = if config.message_index_enable {
        Some(KeyIndex::open(
            &config.index_dir(),
            config.max_hash_slot_num,
            config.max_index_num,
        )?)
    } else {
        None
    };
    Ok(Dispatcher::open(
        &config.consume_queue_dir(),
        config.consume_queue_entries_per_file,
        key_index,
    )?
    .with_delay_levels(config.message_delay_level.clone()))
}

/// Why a CommitLog body is not a message record stored where it says it is.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MisplacedRecord {
    #[error("not a message record: {0}")]
    NotARecord(#[from] message::DecodeError),
    #[error("record of {record} bytes in a body of {body}")]
    SizeMismatch { record: usize, body: usize },
    #[error("record says PHYSICALOFFSET {says} but sits at {at}")]
    WrongPosition { says: i64, at: u64 },
}

/// Checks a CommitLog body during recovery: a message record whose PHYSICALOFFSET is the
/// body's own position.
pub(crate) fn validate_body(
    header: &EntryHeader,
    body: &[u8],
) -> std::result::Result<(), InvalidBody> {
    if !is_message_channel(header.channel) {
        return Ok(());
    }
    let view = MessageView::parse(body).map_err(MisplacedRecord::from)?;
    if view.total_size() != body.len() {
        return Err(MisplacedRecord::SizeMismatch {
            record: view.total_size(),
            body: body.len(),
        }
        .into());
    }
    if view.physical_offset() != header.body_pos() as i64 {
        return Err(MisplacedRecord::WrongPosition {
            says: view.physical_offset(),
            at: header.body_pos(),
        }
        .into());
    }
    Ok(())
}

impl Engine {
    /// The shared state of a store over an opened (and recovered) CommitLog and dispatcher.
    /// `retention_gate`: set for a raft replica, whose segments only the raft driver removes.
    pub(crate) fn new(
        config: StoreConfig,
        env: Environment,
        log: Arc<CommitLog>,
        dispatcher: Dispatcher,
        retention_gate: Option<Arc<crate::raft_log::RetentionGate>>,
    ) -> Engine {
        Engine {
            env,
            log,
            dispatcher,
            stats: StoreStats::default(),
            listener: RwLock::new(None),
            flush_signal: FlushSignal {
                state: Mutex::new(FlushRequest::default()),
                wake: Condvar::new(),
                clean_wake: Condvar::new(),
            },
            checkpoint_lock: Mutex::new(Default::default()),
            disk_used_ratio_bits: std::sync::atomic::AtomicU64::new(0f64.to_bits()),
            retention_gate,
            retention_holds: Default::default(),
            config,
        }
    }

    /// Whether a damaged entry can be repaired from another member's copy: a raft replica,
    /// whose raft node takes the damage readers report. A standalone store has no copy.
    pub(crate) fn repairs_damage(&self) -> bool {
        self.retention_gate.is_some()
    }

    /// Tells the arrival listener which queues grew.
    pub(crate) fn notify_arrivals(&self, grown: &[(Arc<ConsumeQueue>, i64)]) {
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
        match self.record_at(phys_offset) {
            RecordAt::Found(record) => Some(record),
            RecordAt::Missing | RecordAt::Damaged => None,
        }
    }

    /// The message record at a physical offset, or why there is none: a damaged one (bit
    /// rot, reported for repair) is not gone, and readers wait for it rather than skip it.
    pub(crate) fn record_at(&self, phys_offset: i64) -> RecordAt {
        let Ok(pos) = u64::try_from(phys_offset) else {
            return RecordAt::Missing;
        };
        let verify =
            self.log.write_pos().saturating_sub(pos) >= self.config.verify_reads_behind_bytes;
        match self.log.body_at(pos, verify) {
            BodyAt::Found(header, body)
                if is_message_channel(header.channel) && header.kind == EntryKind::Normal =>
            {
                RecordAt::Found(body)
            }
            BodyAt::Found(..) | BodyAt::Missing => RecordAt::Missing,
            BodyAt::Damaged { .. } => RecordAt::Damaged,
        }
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
}

/// See [`Engine::record_at`].
pub(crate) enum RecordAt {
    Found(Bytes),
    Missing,
    Damaged,
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
