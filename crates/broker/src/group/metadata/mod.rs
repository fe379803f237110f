//! Replicated metadata on every member, the applier side (the peer copy is [`copy`]): committed [`MetadataOp`]s from the raft log are
//! applied to the topic, subscription-group and offset tables, in log order, on every node.
//!
//! Restart: the tables are files written as ops apply (topics and groups at once, offsets
//! periodically), and `config/groupMetadata.json` records the highest index whose op all
//! three files are known to hold. The raft node resumes delivering at the next index, so an
//! op is neither skipped nor, apart from ops between that checkpoint and the crash, applied
//! twice. Applying such an op again is harmless: every op sets, creates-if-absent or removes
//! keys, so replaying a suffix of the log over a state that already holds part of it ends
//! in the same state.
//!
//! Log restart: a member rebuilt from a leader whose log no longer starts at 1 (retention
//! removed the start; a wiped disk, a follower that fell too far behind) never sees the ops
//! before the new start. It then copies the tables from another member (found through the
//! name servers), as RocketMQ's slaves copy them from their master: it reads that member's
//! applied index `L` first and then its tables (which hold at least every op up to `L`),
//! installs them, and applies the ops it received meanwhile that come after `L` (by the
//! replay argument above, ops the copy already held do no harm). Until then the ops it
//! receives are held back, the checkpoint says a copy is still owed (so a crash in between
//! resumes the copy), and the member does not become master.

mod copy;

pub use copy::{CopyError, CopySource, MetadataCopy};

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use store::replicated::{ReplicatedStore, CHANNEL_METADATA};
use store::MetadataApplier;
use tokio::sync::{watch, Notify};
use tracing::{error, warn};

use crate::metadata::persist;
use crate::metadata::{MetaError, MetadataOp, MetadataTables};

/// The metadata checkpoint file under `storePathRootDir/config/`.
pub const CHECKPOINT_FILE: &str = "groupMetadata.json";
/// Ops held back while a copy is fetched; beyond it the oldest are dropped and the copy
/// must then be at least as new as the last dropped one.
const MAX_HELD_OPS: usize = 100_000;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Checkpoint {
    applied_index: u64,
    /// The log restarted and the tables still miss what came before: copy them.
    copy_owed: bool,
}

/// Ops received while a copy is owed.
#[derive(Default)]
struct Held {
    ops: VecDeque<(u64, MetadataOp)>,
    /// Highest index of an op dropped for lack of room.
    dropped_through: u64,
    /// The log restarted after this index: a copy must hold every op up to it.
    needed_through: u64,
}

/// The broker's [`MetadataApplier`].
pub struct GroupMetadata {
    tables: MetadataTables,
    registration_needed: Arc<Notify>,
    /// Highest raft index applied to the in-memory tables.
    applied: AtomicU64,
    /// What the checkpoint file says: after a restart the raft node delivers from the next
    /// index, so retention keeps the entries from there on.
    durable: AtomicU64,
    path: PathBuf,
    persist_lock: Mutex<()>,
    /// `Some` while a copy is owed.
    held: Mutex<Option<Held>>,
    /// Whether the tables hold everything (no copy owed).
    complete: watch::Sender<bool>,
    source: Option<CopySource>,
    /// The member's store, set once it is open: a copy also moves queues that retain
    /// nothing to where the group's offsets reached.
    store: std::sync::OnceLock<Weak<ReplicatedStore>>,
    me: Weak<GroupMetadata>,
}

impl GroupMetadata {
    /// Reads the checkpoint under `config_dir`; resumes a copy a previous run still owed
    /// (must then be called inside a tokio runtime).
    pub fn open(
        config_dir: &Path,
        tables: MetadataTables,
        registration_needed: Arc<Notify>,
        source: Option<CopySource>,
    ) -> Result<Arc<GroupMetadata>, MetaError> {
        let path = config_dir.join(CHECKPOINT_FILE);
        let checkpoint: Checkpoint = match persist::read_optional(&path)? {
            Some(bytes) => persist::decode(&path, &bytes)?,
            None => Checkpoint::default(),
        };
        let metadata = Arc::new_cyclic(|me| GroupMetadata {
            tables,
            registration_needed,
            applied: AtomicU64::new(checkpoint.applied_index),
            durable: AtomicU64::new(checkpoint.applied_index),
            path,
            persist_lock: Mutex::new(()),
            held: Mutex::new(checkpoint.copy_owed.then(|| Held {
                // A log restart writes the index before the restart with the copy owed.
                needed_through: checkpoint.applied_index,
                ..Held::default()
            })),
            complete: watch::Sender::new(!checkpoint.copy_owed),
            source,
            store: std::sync::OnceLock::new(),
            me: me.clone(),
        });
        if checkpoint.copy_owed {
            warn!("a metadata copy was still owed at the last stop; fetching it");
            metadata.start_copy();
        }
        Ok(metadata)
    }

    /// Gives the copy the member's store (once it is open; before that a copy waits).
    pub fn attach_store(&self, store: &Arc<ReplicatedStore>) {
        let _ = self.store.set(Arc::downgrade(store));
    }

    /// The tables the ops apply to.
    pub fn tables(&self) -> &MetadataTables {
        &self.tables
    }

    /// Highest raft index applied here.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether the tables are complete; `false` from a log restart until a copy is in.
    pub fn complete(&self) -> watch::Receiver<bool> {
        self.complete.subscribe()
    }

    /// Writes the offsets and then the checkpoint. The index is read first: every op at or
    /// below it is already in the topic and group files (written while applying) and in the
    /// offset table written next.
    pub fn persist(&self) -> Result<(), MetaError> {
        let _serial = self.persist_lock.lock();
        let applied_index = self.applied();
        let copy_owed = self.held.lock().is_some();
        self.tables.offsets.persist()?;
        self.write_checkpoint(applied_index, copy_owed)
    }

    fn write_checkpoint(&self, applied_index: u64, copy_owed: bool) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(&Checkpoint {
            applied_index,
            copy_owed,
        })
        .map_err(|e| MetaError::Invalid(e.to_string()))?;
        persist::write_atomically(&self.path, &bytes)?;
        // A log restart writes an index below the old one: the entries before it are gone.
        self.durable.store(applied_index, Ordering::Release);
        Ok(())
    }

    fn apply_op(&self, index: u64, op: MetadataOp) {
        // The same op fails the same way on every member (the tables are equal), so a
        // refusal is logged, not retried.
        match self.tables.apply(op) {
            Ok(true) => self.registration_needed.notify_one(),
            Ok(false) => {}
            Err(e) => warn!(index, error = %e, "committed metadata op refused"),
        }
    }
}

impl MetadataApplier for GroupMetadata {
    fn applied_index(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn apply(&self, index: u64, channel: u32, body: &[u8]) {
        if channel != CHANNEL_METADATA {
            warn!(index, channel, "entry on an unknown channel ignored");
            self.applied.fetch_max(index, Ordering::AcqRel);
            return;
        }
        let op = match MetadataOp::decode(body) {
            Ok(op) => op,
            Err(e) => {
                error!(index, error = %e, "committed metadata entry is unreadable");
                self.applied.fetch_max(index, Ordering::AcqRel);
                return;
            }
        };
        {
            let mut held = self.held.lock();
            if let Some(pending) = held.as_mut() {
                if pending.ops.len() >= MAX_HELD_OPS {
                    if let Some((dropped, _)) = pending.ops.pop_front() {
                        pending.dropped_through = pending.dropped_through.max(dropped);
                    }
                }
                pending.ops.push_back((index, op));
                return;
            }
        }
        self.apply_op(index, op);
        self.applied.fetch_max(index, Ordering::AcqRel);
    }

    fn log_restarted(&self, next_index: u64) {
        warn!(
            next_index,
            "the log restarted after metadata ops this member never saw; copying topics, \
             groups and offsets from another member"
        );
        let applied = next_index.saturating_sub(1);
        self.applied.store(applied, Ordering::Release);
        *self.held.lock() = Some(Held {
            needed_through: applied,
            ..Held::default()
        });
        self.complete.send_replace(false);
        if let Err(e) = self.write_checkpoint(applied, true) {
            warn!(error = %e, "metadata checkpoint not written at the log restart");
        }
        self.start_copy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::metadata::OffsetOp;
    use remoting::body::TopicConfig;

    fn tables(dir: &Path) -> MetadataTables {
        let config = BrokerConfig {
            store: store::StoreConfig::new(dir),
            broker_name: "g".into(),
            ..BrokerConfig::default()
        };
        MetadataTables::open(&config).unwrap()
    }

    #[test]
    fn committed_ops_apply_and_the_checkpoint_says_where_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = persist::config_dir(dir.path());
        let notify = Arc::new(Notify::new());
        let meta =
            GroupMetadata::open(&config_dir, tables(dir.path()), notify.clone(), None).unwrap();
        assert_eq!(meta.applied_index(), 0);
        let create = MetadataOp::Topic(crate::metadata::TopicOp::Create(TopicConfig::new(
            "T", 2, 2, 6,
        )));
        meta.apply(3, CHANNEL_METADATA, &create.encode().unwrap());
        let commit = MetadataOp::Batch(vec![MetadataOp::Offset(OffsetOp::Commit {
            group: "G".into(),
            topic: "T".into(),
            queue_id: 1,
            offset: 9,
        })]);
        meta.apply(5, CHANNEL_METADATA, &commit.encode().unwrap());
        meta.apply(6, CHANNEL_METADATA, b"not json");
        assert_eq!(meta.applied(), 6);
        meta.persist().unwrap();

        let reopened_tables = tables(dir.path());
        assert!(reopened_tables.topics.get("T").is_some());
        assert_eq!(reopened_tables.offsets.query("G", "T", 1), Some(9));
        let reopened = GroupMetadata::open(&config_dir, reopened_tables, notify, None).unwrap();
        assert_eq!(reopened.applied_index(), 6);
        assert!(*reopened.complete().borrow());
    }

    #[test]
    fn after_a_log_restart_ops_are_held_until_a_copy_arrives_and_a_crash_keeps_owing_it() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = persist::config_dir(dir.path());
        let notify = Arc::new(Notify::new());
        let meta =
            GroupMetadata::open(&config_dir, tables(dir.path()), notify.clone(), None).unwrap();
        meta.log_restarted(100);
        assert!(!*meta.complete().borrow());
        let create = MetadataOp::Topic(crate::metadata::TopicOp::Create(TopicConfig::new(
            "Later", 1, 1, 6,
        )));
        meta.apply(120, CHANNEL_METADATA, &create.encode().unwrap());
        assert!(meta.tables.topics.get("Later").is_none(), "held back");
        assert_eq!(meta.applied(), 99);
        drop(meta);

        let reopened = GroupMetadata::open(&config_dir, tables(dir.path()), notify, None).unwrap();
        assert_eq!(reopened.applied_index(), 99);
        assert!(!*reopened.complete().borrow(), "the copy is still owed");
    }

    #[test]
    fn a_copy_from_a_member_behind_the_log_restart_is_refused() {
        let notify = Arc::new(Notify::new());
        let open = |dir: &Path| {
            GroupMetadata::open(&persist::config_dir(dir), tables(dir), notify.clone(), None)
                .unwrap()
        };
        let create = |name: &str| {
            MetadataOp::Topic(crate::metadata::TopicOp::Create(TopicConfig::new(
                name, 1, 1, 6,
            )))
            .encode()
            .unwrap()
        };
        let (rebuilt_dir, behind_dir, ahead_dir) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        // The group created "Early" at index 80; the rebuilt member's log restarts at 100.
        let rebuilt = open(rebuilt_dir.path());
        rebuilt.log_restarted(100);
        rebuilt.apply(120, CHANNEL_METADATA, &create("Late"));
        // A follower still at index 50 has complete tables, but only through 50.
        let behind = open(behind_dir.path());
        behind.apply(40, CHANNEL_METADATA, &create("Old"));
        let refused = rebuilt.install_copy(behind.local_copy(50).unwrap());
        assert!(
            matches!(refused, Err(CopyError::Behind { .. })),
            "{refused:?}"
        );
        assert!(!*rebuilt.complete().borrow());

        let ahead = open(ahead_dir.path());
        ahead.apply(40, CHANNEL_METADATA, &create("Old"));
        ahead.apply(80, CHANNEL_METADATA, &create("Early"));
        rebuilt
            .install_copy(ahead.local_copy(110).unwrap())
            .unwrap();
        assert!(*rebuilt.complete().borrow());
        for topic in ["Old", "Early", "Late"] {
            assert!(rebuilt.tables.topics.get(topic).is_some(), "{topic}");
        }
        assert_eq!(rebuilt.applied(), 120);
    }
}
