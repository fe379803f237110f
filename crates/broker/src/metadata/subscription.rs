//! Consumer-group configs (retry queues, max reconsume times, consume enable), persisted
//! in `subscriptionGroup.json` (RocketMQ's SubscriptionGroupWrapper form).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use remoting::body::{DataVersion, SubscriptionGroupConfig, SubscriptionGroupWrapper};

use super::persist;
use super::MetaError;
use crate::clock::now_ms;

/// A change to the subscription-group table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SubscriptionOp {
    /// Adds the group unless it exists (auto-creation).
    Create(SubscriptionGroupConfig),
    /// Creates or replaces (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
    Upsert(SubscriptionGroupConfig),
    Delete {
        group: String,
    },
}

struct GroupTable {
    groups: HashMap<String, Arc<SubscriptionGroupConfig>>,
    data_version: DataVersion,
}

pub struct SubscriptionGroupManager {
    table: RwLock<GroupTable>,
    apply_lock: Mutex<()>,
    path: PathBuf,
    max_groups: usize,
}

impl SubscriptionGroupManager {
    pub fn open(config_dir: &Path, max_groups: usize) -> Result<Self, MetaError> {
        let path = config_dir.join(persist::SUBSCRIPTION_GROUP_FILE);
        let (groups, data_version) = match persist::read_optional(&path)? {
            Some(bytes) => {
                let wrapper: SubscriptionGroupWrapper = persist::decode(&path, &bytes)?;
                let groups = wrapper
                    .subscription_group_table
                    .into_iter()
                    .filter(|(name, config)| !name.is_empty() && *name == config.group_name)
                    .map(|(name, config)| (name, Arc::new(config)))
                    .collect();
                (groups, wrapper.data_version)
            }
            None => (HashMap::new(), DataVersion::new(now_ms())),
        };
        Ok(SubscriptionGroupManager {
            table: RwLock::new(GroupTable {
                groups,
                data_version,
            }),
            apply_lock: Mutex::new(()),
            path,
            max_groups,
        })
    }

    /// Subscription groups configured on this broker.
    pub fn len(&self) -> usize {
        self.table.read().groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many lite topics a client of `group` may subscribe (`None`: no limit): the
    /// group's `lite.sub.client.quota`, or the broker's default for a group not created yet.
    pub fn lite_client_quota(&self, group: &str) -> Option<usize> {
        self.get(group)
            .map_or(Some(crate::lite::CLIENT_QUOTA as usize), |config| {
                super::attributes::lite_client_quota(&config.attributes)
            })
    }

    pub fn get(&self, group: &str) -> Option<Arc<SubscriptionGroupConfig>> {
        self.table.read().groups.get(group).cloned()
    }

    /// The group's config; creates it with defaults when absent and `auto_create` is on
    /// (RocketMQ `findSubscriptionGroupConfig`).
    pub fn find_or_create(
        &self,
        group: &str,
        auto_create: bool,
    ) -> Result<Option<Arc<SubscriptionGroupConfig>>, MetaError> {
        if let Some(config) = self.get(group) {
            return Ok(Some(config));
        }
        if !auto_create {
            return Ok(None);
        }
        self.apply(SubscriptionOp::Create(SubscriptionGroupConfig::new(group)))
    }

    pub fn wrapper(&self) -> SubscriptionGroupWrapper {
        let table = self.table.read();
        SubscriptionGroupWrapper {
            subscription_group_table: table
                .groups
                .iter()
                .map(|(name, config)| (name.clone(), SubscriptionGroupConfig::clone(config)))
                .collect::<BTreeMap<_, _>>(),
            forbidden_table: BTreeMap::new(),
            data_version: table.data_version,
        }
    }

    /// Applies one change, persisting before publishing. Returns the group's config after
    /// the op (`None` after a delete).
    pub fn apply(
        &self,
        op: SubscriptionOp,
    ) -> Result<Option<Arc<SubscriptionGroupConfig>>, MetaError> {
        let _serial = self.apply_lock.lock();
        let (mut groups, mut data_version) = {
            let table = self.table.read();
            (table.groups.clone(), table.data_version)
        };
        let (changed, result) = match op {
            SubscriptionOp::Create(config) => match groups.get(&config.group_name) {
                Some(existing) => (false, Some(Arc::clone(existing))),
                None => (true, Some(self.insert(&mut groups, config)?)),
            },
            SubscriptionOp::Upsert(config) => {
                let existing = groups.get(&config.group_name).cloned();
                if existing.as_deref() == Some(&config) {
                    (false, existing)
                } else {
                    (true, Some(self.insert(&mut groups, config)?))
                }
            }
            SubscriptionOp::Delete { group } => (groups.remove(&group).is_some(), None),
        };
        if changed {
            data_version.next_version(now_ms());
            self.persist_and_install(groups, data_version)?;
        }
        Ok(result)
    }

    /// Replaces the whole table with `configs` (a copy of another member's); persists first.
    pub fn replace_all(&self, configs: Vec<SubscriptionGroupConfig>) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let groups: HashMap<String, Arc<SubscriptionGroupConfig>> = configs
            .into_iter()
            .filter(|c| !c.group_name.is_empty())
            .take(self.max_groups)
            .map(|c| (c.group_name.clone(), Arc::new(c)))
            .collect();
        let mut data_version = self.table.read().data_version;
        data_version.next_version(now_ms());
        self.persist_and_install(groups, data_version)
    }

    /// Writes `groups` to the file, then makes them the table: a crash between the two
    /// leaves the file ahead, never behind, what readers saw.
    fn persist_and_install(
        &self,
        groups: HashMap<String, Arc<SubscriptionGroupConfig>>,
        data_version: DataVersion,
    ) -> Result<(), MetaError> {
        let wrapper = SubscriptionGroupWrapper {
            subscription_group_table: groups
                .iter()
                .map(|(name, config)| (name.clone(), SubscriptionGroupConfig::clone(config)))
                .collect(),
            forbidden_table: BTreeMap::new(),
            data_version,
        };
        let bytes =
            serde_json::to_vec_pretty(&wrapper).map_err(|e| MetaError::Invalid(e.to_string()))?;
        persist::write_atomically(&self.path, &bytes)?;
        *self.table.write() = GroupTable {
            groups,
            data_version,
        };
        Ok(())
    }

    fn insert(
        &self,
        groups: &mut HashMap<String, Arc<SubscriptionGroupConfig>>,
        config: SubscriptionGroupConfig,
    ) -> Result<Arc<SubscriptionGroupConfig>, MetaError> {
        if !groups.contains_key(&config.group_name) && groups.len() >= self.max_groups {
            return Err(MetaError::LimitReached {
                what: "subscription group",
                limit: self.max_groups,
            });
        }
        let config = Arc::new(config);
        groups.insert(config.group_name.clone(), Arc::clone(&config));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_auto_created_only_when_allowed_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let groups = SubscriptionGroupManager::open(dir.path(), 10).unwrap();
        assert!(groups.find_or_create("CG", false).unwrap().is_none());
        let created = groups.find_or_create("CG", true).unwrap().unwrap();
        assert_eq!(created.retry_max_times, 16);
        let mut custom = SubscriptionGroupConfig::new("CG2");
        custom.retry_max_times = 3;
        groups.apply(SubscriptionOp::Upsert(custom)).unwrap();
        drop(groups);
        let reopened = SubscriptionGroupManager::open(dir.path(), 10).unwrap();
        assert!(reopened.get("CG").is_some());
        assert_eq!(reopened.get("CG2").unwrap().retry_max_times, 3);
        reopened
            .apply(SubscriptionOp::Delete { group: "CG".into() })
            .unwrap();
        assert!(reopened.get("CG").is_none());
    }

    #[test]
    fn the_group_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let groups = SubscriptionGroupManager::open(dir.path(), 2).unwrap();
        groups.find_or_create("A", true).unwrap();
        groups.find_or_create("B", true).unwrap();
        assert!(matches!(
            groups.find_or_create("C", true),
            Err(MetaError::LimitReached { .. })
        ));
    }
}
