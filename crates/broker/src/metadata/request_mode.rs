//! How each consumer group reads each topic when an operator said so (`mqadmin
//! setConsumeMode`, SET_MESSAGE_REQUEST_MODE): PULL or POP, persisted in
//! `messageRequestMode.json` (RocketMQ's `messageRequestModeMap` form).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use remoting::body::pop::SetMessageRequestModeRequestBody;

use super::persist;
use super::MetaError;

/// A change to the request-mode table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum RequestModeOp {
    Set(SetMessageRequestModeRequestBody),
    /// Forgets every group's mode of a deleted topic.
    RemoveTopic {
        topic: String,
    },
}

/// Topic → group → mode.
pub type ModeTable = BTreeMap<String, BTreeMap<String, SetMessageRequestModeRequestBody>>;

#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ModeFile {
    message_request_mode_map: ModeTable,
}

pub struct RequestModeManager {
    table: RwLock<ModeTable>,
    apply_lock: Mutex<()>,
    path: PathBuf,
    max_entries: usize,
}

impl RequestModeManager {
    pub fn open(config_dir: &Path, max_entries: usize) -> Result<Self, MetaError> {
        let path = config_dir.join(persist::MESSAGE_REQUEST_MODE_FILE);
        let table = match persist::read_optional(&path)? {
            Some(bytes) => persist::decode::<ModeFile>(&path, &bytes)?.message_request_mode_map,
            None => ModeTable::new(),
        };
        Ok(RequestModeManager {
            table: RwLock::new(table),
            apply_lock: Mutex::new(()),
            path,
            max_entries,
        })
    }

    pub fn get(&self, topic: &str, group: &str) -> Option<SetMessageRequestModeRequestBody> {
        self.table.read().get(topic)?.get(group).cloned()
    }

    pub fn all(&self) -> ModeTable {
        self.table.read().clone()
    }

    /// The table as RocketMQ's GET_ALL_MESSAGE_REQUEST_MODE answers it.
    pub fn encode(&self) -> Result<Vec<u8>, MetaError> {
        serde_json::to_vec(&ModeFile {
            message_request_mode_map: self.all(),
        })
        .map_err(|e| MetaError::Invalid(format!("request modes cannot be encoded: {e}")))
    }

    /// Applies one change, persisting before publishing.
    pub fn apply(&self, op: RequestModeOp) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let mut table = self.table.read().clone();
        match op {
            RequestModeOp::Set(mode) => {
                let entries: usize = table.values().map(BTreeMap::len).sum();
                let known = table
                    .get(&mode.topic)
                    .is_some_and(|groups| groups.contains_key(&mode.consumer_group));
                if !known && entries >= self.max_entries {
                    return Err(MetaError::LimitReached {
                        what: "message request modes",
                        limit: self.max_entries,
                    });
                }
                table
                    .entry(mode.topic.clone())
                    .or_default()
                    .insert(mode.consumer_group.clone(), mode);
            }
            RequestModeOp::RemoveTopic { topic } => {
                if table.remove(&topic).is_none() {
                    return Ok(());
                }
            }
        }
        self.install(table)
    }

    /// Replaces the whole table with a copy of another member's; persists first.
    pub fn replace_all_encoded(&self, bytes: &[u8]) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let copy: ModeFile = persist::decode(&self.path, bytes)?;
        self.install(copy.message_request_mode_map)
    }

    fn install(&self, table: ModeTable) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec_pretty(&ModeFile {
            message_request_mode_map: table.clone(),
        })
        .map_err(|e| MetaError::Invalid(format!("request modes cannot be encoded: {e}")))?;
        persist::write_atomically(&self.path, &bytes)?;
        *self.table.write() = table;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::body::pop::MessageRequestMode;

    fn pop(topic: &str, group: &str) -> SetMessageRequestModeRequestBody {
        SetMessageRequestModeRequestBody {
            topic: topic.into(),
            consumer_group: group.into(),
            mode: MessageRequestMode::Pop,
            pop_share_queue_num: 0,
        }
    }

    #[test]
    fn modes_persist_are_bounded_and_leave_with_their_topic() {
        let dir = tempfile::tempdir().unwrap();
        let modes = RequestModeManager::open(dir.path(), 2).unwrap();
        modes.apply(RequestModeOp::Set(pop("T", "G"))).unwrap();
        modes.apply(RequestModeOp::Set(pop("T", "H"))).unwrap();
        assert!(matches!(
            modes.apply(RequestModeOp::Set(pop("U", "G"))),
            Err(MetaError::LimitReached { .. })
        ));
        // Changing a known entry is not a new one.
        modes.apply(RequestModeOp::Set(pop("T", "G"))).unwrap();
        let reopened = RequestModeManager::open(dir.path(), 2).unwrap();
        assert_eq!(reopened.get("T", "G"), Some(pop("T", "G")));
        reopened
            .apply(RequestModeOp::RemoveTopic { topic: "T".into() })
            .unwrap();
        assert_eq!(reopened.get("T", "H"), None);
    }

    #[test]
    fn the_file_is_rocketmqs_layout() {
        let dir = tempfile::tempdir().unwrap();
        let modes = RequestModeManager::open(dir.path(), 10).unwrap();
        modes.apply(RequestModeOp::Set(pop("T", "G"))).unwrap();
        let text = String::from_utf8(modes.encode().unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"messageRequestModeMap":{"T":{"G":{"#),
            "{text}"
        );
        let other = RequestModeManager::open(&dir.path().join("other"), 10).unwrap();
        other.replace_all_encoded(text.as_bytes()).unwrap();
        assert_eq!(other.get("T", "G"), Some(pop("T", "G")));
        assert!(other.replace_all_encoded(b"not json").is_err());
        assert_eq!(
            other.get("T", "G"),
            Some(pop("T", "G")),
            "a bad copy changes nothing"
        );
    }
}
