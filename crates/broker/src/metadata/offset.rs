//! Committed consumer offsets, keyed like RocketMQ's `topic@group` → queue id → offset and
//! persisted in `consumerOffset.json`.
//!
//! Commits arrive on the pull hot path (every pull may carry one), so applying one only
//! updates memory; the file is rewritten periodically (every few seconds) and at shutdown,
//! as RocketMQ does. A crash can therefore replay a few seconds of messages, never skip any.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::persist;
use super::MetaError;

/// A change to the offset table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OffsetOp {
    Commit {
        group: String,
        topic: String,
        queue_id: i32,
        offset: i64,
    },
    /// Forgets every group's offsets of a deleted topic.
    RemoveTopic { topic: String },
    /// Forgets a deleted group's offsets.
    RemoveGroup { group: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OffsetFile {
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// `topic@group`, RocketMQ's key (a topic name cannot contain `@`).
fn key(topic: &str, group: &str) -> String {
    let mut key = String::with_capacity(topic.len() + 1 + group.len());
    key.push_str(topic);
    key.push('@');
    key.push_str(group);
    key
}

fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('@')
}

pub struct ConsumerOffsetManager {
    table: Mutex<HashMap<String, BTreeMap<i32, i64>>>,
    dirty: AtomicBool,
    /// Serialises file writes.
    persist_lock: Mutex<()>,
    path: PathBuf,
    max_keys: usize,
}

impl ConsumerOffsetManager {
    pub fn open(config_dir: &Path, max_keys: usize) -> Result<Self, MetaError> {
        let path = config_dir.join(persist::CONSUMER_OFFSET_FILE);
        let table = match persist::read_optional(&path)? {
            Some(bytes) => {
                let file: OffsetFile = persist::decode(&path, &bytes)?;
                file.offset_table
                    .into_iter()
                    .filter(|(key, _)| split_key(key).is_some())
                    .collect()
            }
            None => HashMap::new(),
        };
        Ok(ConsumerOffsetManager {
            table: Mutex::new(table),
            dirty: AtomicBool::new(false),
            persist_lock: Mutex::new(()),
            path,
            max_keys,
        })
    }

    /// Applies one change in memory; [`ConsumerOffsetManager::persist`] writes it out.
    pub fn apply(&self, op: OffsetOp) -> Result<(), MetaError> {
        let mut table = self.table.lock();
        match op {
            OffsetOp::Commit {
                group,
                topic,
                queue_id,
                offset,
            } => {
                let key = key(&topic, &group);
                match table.get_mut(&key) {
                    Some(queues) => {
                        queues.insert(queue_id, offset);
                    }
                    None => {
                        if table.len() >= self.max_keys {
                            return Err(MetaError::LimitReached {
                                what: "consumer offset (topic@group)",
                                limit: self.max_keys,
                            });
                        }
                        table.insert(key, BTreeMap::from([(queue_id, offset)]));
                    }
                }
            }
            OffsetOp::RemoveTopic { topic } => {
                table.retain(|key, _| split_key(key).is_none_or(|(t, _)| t != topic));
            }
            OffsetOp::RemoveGroup { group } => {
                table.retain(|key, _| split_key(key).is_none_or(|(_, g)| g != group));
            }
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Replaces the whole table with one in RocketMQ's `{"offsetTable":{...}}` form (what
    /// [`ConsumerOffsetManager::encode`] writes: a copy of another member's table).
    pub fn replace_all_encoded(&self, bytes: &[u8]) -> Result<(), MetaError> {
        let file: OffsetFile = persist::decode(&self.path, bytes)?;
        let table: HashMap<String, BTreeMap<i32, i64>> = file
            .offset_table
            .into_iter()
            .filter(|(key, _)| split_key(key).is_some())
            .take(self.max_keys)
            .collect();
        *self.table.lock() = table;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// The committed offset, if any.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table
            .lock()
            .get(&key(topic, group))
            .and_then(|queues| queues.get(&queue_id).copied())
    }

    /// Every queue's committed offset of a group on a topic.
    pub fn queue_offsets(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.table
            .lock()
            .get(&key(topic, group))
            .cloned()
            .unwrap_or_default()
    }

    /// Every `(topic, group)` with its queues' committed offsets.
    pub fn all(&self) -> Vec<(String, String, BTreeMap<i32, i64>)> {
        self.table
            .lock()
            .iter()
            .filter_map(|(key, queues)| {
                let (topic, group) = split_key(key)?;
                Some((topic.to_owned(), group.to_owned(), queues.clone()))
            })
            .collect()
    }

    /// Topics a group has offsets for.
    pub fn topics_of_group(&self, group: &str) -> BTreeSet<String> {
        self.table
            .lock()
            .keys()
            .filter_map(|key| split_key(key))
            .filter(|(_, g)| *g == group)
            .map(|(t, _)| t.to_owned())
            .collect()
    }

    /// Groups with offsets on a topic.
    pub fn groups_of_topic(&self, topic: &str) -> BTreeSet<String> {
        self.table
            .lock()
            .keys()
            .filter_map(|key| split_key(key))
            .filter(|(t, _)| *t == topic)
            .map(|(_, g)| g.to_owned())
            .collect()
    }

    /// The table in RocketMQ's `{"offsetTable":{...}}` form (GET_ALL_CONSUMER_OFFSET).
    pub fn encode(&self) -> Result<Vec<u8>, MetaError> {
        let file = OffsetFile {
            offset_table: self
                .table
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        serde_json::to_vec_pretty(&file)
            .map_err(|e| MetaError::Invalid(format!("consumer offsets cannot be encoded: {e}")))
    }

    /// Writes the table if anything changed since the last write; returns whether it wrote.
    pub fn persist(&self) -> Result<bool, MetaError> {
        let _serial = self.persist_lock.lock();
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let written = self
            .encode()
            .and_then(|bytes| persist::write_atomically(&self.path, &bytes));
        if let Err(e) = written {
            // Try again next time.
            self.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(group: &str, topic: &str, queue_id: i32, offset: i64) -> OffsetOp {
        OffsetOp::Commit {
            group: group.into(),
            topic: topic.into(),
            queue_id,
            offset,
        }
    }

    #[test]
    fn offsets_survive_a_persist_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let offsets = ConsumerOffsetManager::open(dir.path(), 100).unwrap();
        offsets.apply(commit("CG", "T", 0, 5)).unwrap();
        offsets.apply(commit("CG", "T", 1, 7)).unwrap();
        offsets.apply(commit("CG", "T", 0, 6)).unwrap();
        assert!(offsets.persist().unwrap());
        assert!(!offsets.persist().unwrap(), "nothing changed since");
        drop(offsets);
        let reopened = ConsumerOffsetManager::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.query("CG", "T", 0), Some(6));
        assert_eq!(reopened.query("CG", "T", 1), Some(7));
        assert_eq!(reopened.query("CG", "T", 2), None);
        assert_eq!(reopened.query("Other", "T", 0), None);
    }

    #[test]
    fn unpersisted_commits_are_lost_but_persisted_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let offsets = ConsumerOffsetManager::open(dir.path(), 100).unwrap();
        offsets.apply(commit("CG", "T", 0, 5)).unwrap();
        offsets.persist().unwrap();
        offsets.apply(commit("CG", "T", 0, 9)).unwrap();
        drop(offsets);
        let reopened = ConsumerOffsetManager::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.query("CG", "T", 0), Some(5));
    }

    #[test]
    fn removing_a_topic_or_group_forgets_its_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let offsets = ConsumerOffsetManager::open(dir.path(), 100).unwrap();
        offsets.apply(commit("G1", "T1", 0, 1)).unwrap();
        offsets.apply(commit("G1", "T2", 0, 2)).unwrap();
        offsets.apply(commit("G2", "T1", 0, 3)).unwrap();
        assert_eq!(offsets.topics_of_group("G1").len(), 2);
        offsets
            .apply(OffsetOp::RemoveTopic { topic: "T1".into() })
            .unwrap();
        assert_eq!(offsets.groups_of_topic("T1").len(), 0);
        assert_eq!(offsets.query("G1", "T2", 0), Some(2));
        offsets
            .apply(OffsetOp::RemoveGroup { group: "G1".into() })
            .unwrap();
        assert_eq!(offsets.query("G1", "T2", 0), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let offsets = ConsumerOffsetManager::open(dir.path(), 2).unwrap();
        offsets.apply(commit("G", "T1", 0, 1)).unwrap();
        offsets.apply(commit("G", "T2", 0, 1)).unwrap();
        offsets.apply(commit("G", "T2", 1, 1)).unwrap();
        assert!(offsets.apply(commit("G", "T3", 0, 1)).is_err());
    }
}
