//! Replicated metadata on every member: committed [`MetadataOp`]s from the raft log are
//! applied to the topic, subscription-group and offset tables, in log order, on every node.
//!
//! Restart: the tables are files written as ops apply (topics and groups at once, offsets
//! periodically), and `config/groupMetadata.json` records the highest index whose op all
//! three files are known to hold. The raft node resumes delivering at the next index, so an
//! op is neither skipped nor, apart from ops between that checkpoint and the crash, applied
//! twice. Applying such an op again is harmless: every op sets, creates-if-absent or removes
//! keys, so replaying a suffix of the log over a state that already holds part of it ends
//! in the same state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use store::replicated::CHANNEL_METADATA;
use store::MetadataApplier;
use tokio::sync::Notify;
use tracing::{error, warn};

use crate::metadata::persist;
use crate::metadata::{MetaError, MetadataOp, MetadataTables};

/// The metadata checkpoint file under `storePathRootDir/config/`.
pub const CHECKPOINT_FILE: &str = "groupMetadata.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Checkpoint {
    applied_index: u64,
}

/// The broker's [`MetadataApplier`].
pub struct GroupMetadata {
    tables: MetadataTables,
    registration_needed: Arc<Notify>,
    /// Highest raft index applied to the in-memory tables.
    applied: AtomicU64,
    /// What the checkpoint file said at start: the raft node delivers from the next index.
    durable_at_open: u64,
    path: PathBuf,
    persist_lock: Mutex<()>,
}

impl GroupMetadata {
    /// Reads the checkpoint under `config_dir`.
    pub fn open(
        config_dir: &Path,
        tables: MetadataTables,
        registration_needed: Arc<Notify>,
    ) -> Result<GroupMetadata, MetaError> {
        let path = config_dir.join(CHECKPOINT_FILE);
        let checkpoint: Checkpoint = match persist::read_optional(&path)? {
            Some(bytes) => persist::decode(&path, &bytes)?,
            None => Checkpoint::default(),
        };
        Ok(GroupMetadata {
            tables,
            registration_needed,
            applied: AtomicU64::new(checkpoint.applied_index),
            durable_at_open: checkpoint.applied_index,
            path,
            persist_lock: Mutex::new(()),
        })
    }

    /// Highest raft index applied here.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Writes the offsets and then the checkpoint. The index is read first: every op at or
    /// below it is already in the topic and group files (written while applying) and in the
    /// offset table written next.
    pub fn persist(&self) -> Result<(), MetaError> {
        let _serial = self.persist_lock.lock();
        let applied_index = self.applied();
        self.tables.offsets.persist()?;
        let bytes = serde_json::to_vec(&Checkpoint { applied_index })
            .map_err(|e| MetaError::Invalid(e.to_string()))?;
        persist::write_atomically(&self.path, &bytes)
    }
}

impl MetadataApplier for GroupMetadata {
    fn applied_index(&self) -> u64 {
        self.durable_at_open
    }

    fn apply(&self, index: u64, channel: u32, body: &[u8]) {
        if channel != CHANNEL_METADATA {
            warn!(index, channel, "entry on an unknown channel ignored");
        } else {
            match MetadataOp::decode(body) {
                // The same op fails the same way on every member (the tables are equal), so
                // a refusal is logged, not retried.
                Ok(op) => match self.tables.apply(op) {
                    Ok(true) => self.registration_needed.notify_one(),
                    Ok(false) => {}
                    Err(e) => warn!(index, error = %e, "committed metadata op refused"),
                },
                Err(e) => error!(index, error = %e, "committed metadata entry is unreadable"),
            }
        }
        self.applied.fetch_max(index, Ordering::AcqRel);
    }

    fn log_restarted(&self, next_index: u64) {
        warn!(
            next_index,
            "the log restarted after metadata ops this node never saw; topics, groups and \
             offsets stay as they are until later ops change them"
        );
        self.applied
            .store(next_index.saturating_sub(1), Ordering::Release);
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
            store_path_root_dir: dir.to_path_buf(),
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
        let meta = GroupMetadata::open(&config_dir, tables(dir.path()), notify.clone()).unwrap();
        assert_eq!(meta.applied_index(), 0);
        let create = MetadataOp::Topic(crate::metadata::TopicOp::Create(TopicConfig::new(
            "T", 2, 2, 6,
        )));
        meta.apply(3, CHANNEL_METADATA, &create.encode());
        let commit = MetadataOp::Batch(vec![MetadataOp::Offset(OffsetOp::Commit {
            group: "G".into(),
            topic: "T".into(),
            queue_id: 1,
            offset: 9,
        })]);
        meta.apply(5, CHANNEL_METADATA, &commit.encode());
        meta.apply(6, CHANNEL_METADATA, b"not json");
        assert_eq!(meta.applied(), 6);
        meta.persist().unwrap();

        let reopened_tables = tables(dir.path());
        assert!(reopened_tables.topics.get("T").is_some());
        assert_eq!(reopened_tables.offsets.query("G", "T", 1), Some(9));
        let reopened = GroupMetadata::open(&config_dir, reopened_tables, notify).unwrap();
        assert_eq!(reopened.applied_index(), 6);
    }
}
