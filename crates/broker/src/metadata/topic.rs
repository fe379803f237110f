//! Topic configs: the table name servers learn routes from, persisted in `topics.json`
//! (RocketMQ's TopicConfigSerializeWrapper form).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use message::topic::{AUTO_CREATE_TOPIC_KEY_TOPIC, OFFSET_MOVED_EVENT_TOPIC, SELF_TEST_TOPIC};
use parking_lot::{Mutex, RwLock};
use remoting::body::{perm, DataVersion, TopicConfig, TopicConfigSerializeWrapper};

use super::persist;
use super::MetaError;
use crate::clock::now_ms;

/// A change to the topic table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TopicOp {
    /// Adds the topic unless it exists (auto-creation: the first creator wins).
    Create(TopicConfig),
    /// Creates or replaces the topic's config (UPDATE_AND_CREATE_TOPIC).
    Upsert(TopicConfig),
    Delete {
        topic: String,
    },
}

/// What an applied op did.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicApplied {
    /// Whether the table changed (and name servers must hear about it).
    pub changed: bool,
    /// The topic's config after the op (`None` after a delete).
    pub config: Option<Arc<TopicConfig>>,
}

struct TopicTable {
    topics: HashMap<String, Arc<TopicConfig>>,
    data_version: DataVersion,
}

/// The broker's topics. Reads are lock-free in practice (a read lock on a map of `Arc`s);
/// changes go through [`TopicConfigManager::apply`], which persists before publishing.
pub struct TopicConfigManager {
    table: RwLock<TopicTable>,
    /// Serialises changes so each file write reflects one consistent table.
    apply_lock: Mutex<()>,
    path: PathBuf,
    max_topics: usize,
}

/// Settings that decide the system topics and auto-creation.
#[derive(Debug, Clone)]
pub struct TopicDefaults {
    pub cluster_name: String,
    pub broker_name: String,
    pub auto_create_topic_enable: bool,
    pub default_topic_queue_nums: u32,
}

/// The topics a RocketMQ broker always has.
pub fn system_topics(defaults: &TopicDefaults) -> Vec<TopicConfig> {
    let mut topics = vec![
        TopicConfig::new(SELF_TEST_TOPIC, 1, 1, perm::READ_WRITE),
        TopicConfig::new(OFFSET_MOVED_EVENT_TOPIC, 1, 1, perm::READ_WRITE),
    ];
    if defaults.auto_create_topic_enable {
        // Producers send new topics with `defaultTopic=TBW102`; INHERIT lets them.
        let queues = defaults.default_topic_queue_nums as i32;
        topics.push(TopicConfig::new(
            AUTO_CREATE_TOPIC_KEY_TOPIC,
            queues,
            queues,
            perm::READ_WRITE | perm::INHERIT,
        ));
    }
    // Request-reply: repliers send to it before anything else could create it.
    let reply = message::topic::reply_topic(&defaults.cluster_name);
    if message::validate_topic(&reply).is_ok() {
        topics.push(TopicConfig::new(&reply, 1, 1, perm::READ_WRITE));
    }
    // mqadmin finds brokers of a cluster (or a broker) through these topics' routes.
    for name in [&defaults.cluster_name, &defaults.broker_name] {
        if message::validate_topic(name).is_ok() {
            topics.push(TopicConfig::new(
                name,
                1,
                1,
                perm::READ_WRITE | perm::INHERIT,
            ));
        }
    }
    topics
}

impl TopicConfigManager {
    /// Loads `topics.json` from `config_dir` (if present) and adds the system topics.
    pub fn open(
        config_dir: &Path,
        defaults: &TopicDefaults,
        max_topics: usize,
    ) -> Result<TopicConfigManager, MetaError> {
        let path = config_dir.join(persist::TOPICS_FILE);
        let (mut topics, data_version) = match persist::read_optional(&path)? {
            Some(bytes) => {
                let wrapper: TopicConfigSerializeWrapper = persist::decode(&path, &bytes)?;
                let topics: HashMap<String, Arc<TopicConfig>> = wrapper
                    .topic_config_table
                    .into_iter()
                    .filter(|(name, config)| !name.is_empty() && *name == config.topic_name)
                    .map(|(name, config)| (name, Arc::new(config)))
                    .collect();
                (topics, wrapper.data_version)
            }
            None => (HashMap::new(), DataVersion::new(now_ms())),
        };
        if !defaults.auto_create_topic_enable {
            topics.remove(AUTO_CREATE_TOPIC_KEY_TOPIC);
        }
        for config in system_topics(defaults) {
            topics.insert(config.topic_name.clone(), Arc::new(config));
        }
        let manager = TopicConfigManager {
            table: RwLock::new(TopicTable {
                topics,
                data_version,
            }),
            apply_lock: Mutex::new(()),
            path,
            max_topics,
        };
        manager.persist_current()?;
        Ok(manager)
    }

    pub fn get(&self, topic: &str) -> Option<Arc<TopicConfig>> {
        self.table.read().topics.get(topic).cloned()
    }

    /// The config a queue of `topic` is read under: the topic's own or, for a lite topic's
    /// LMQ, its `LITE` parent's narrowed to the LMQ's one queue.
    pub fn queue_owner(&self, topic: &str) -> Option<Arc<TopicConfig>> {
        if let Some(config) = self.get(topic) {
            return Some(config);
        }
        let (parent, _) = message::topic::lmq_parts(topic)?;
        let parent = self.get(parent)?;
        if super::attributes::message_type_of_topic(&parent.attributes) != "LITE" {
            return None;
        }
        Some(Arc::new(TopicConfig {
            topic_name: topic.to_owned(),
            read_queue_nums: 1,
            write_queue_nums: 1,
            ..(*parent).clone()
        }))
    }

    pub fn contains(&self, topic: &str) -> bool {
        self.table.read().topics.contains_key(topic)
    }

    pub fn len(&self) -> usize {
        self.table.read().topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn data_version(&self) -> DataVersion {
        self.table.read().data_version
    }

    pub fn topic_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.table.read().topics.keys().cloned().collect();
        names.sort();
        names
    }

    /// The whole table as GET_ALL_TOPIC_CONFIG and REGISTER_BROKER carry it.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        let table = self.table.read();
        TopicConfigSerializeWrapper {
            topic_config_table: table
                .topics
                .iter()
                .map(|(name, config)| (name.clone(), TopicConfig::clone(config)))
                .collect::<BTreeMap<_, _>>(),
            data_version: table.data_version,
            ..TopicConfigSerializeWrapper::default()
        }
    }

    /// Applies one change: persists the new table, then publishes it.
    pub fn apply(&self, op: TopicOp) -> Result<TopicApplied, MetaError> {
        let _serial = self.apply_lock.lock();
        let (mut topics, mut data_version) = {
            let table = self.table.read();
            (table.topics.clone(), table.data_version)
        };
        let applied = match op {
            TopicOp::Create(config) => match topics.get(&config.topic_name) {
                Some(existing) => TopicApplied {
                    changed: false,
                    config: Some(Arc::clone(existing)),
                },
                None => self.insert(&mut topics, config)?,
            },
            TopicOp::Upsert(config) => {
                if topics.get(&config.topic_name).map(|c| c.as_ref()) == Some(&config) {
                    TopicApplied {
                        changed: false,
                        config: topics.get(&config.topic_name).cloned(),
                    }
                } else {
                    self.insert(&mut topics, config)?
                }
            }
            TopicOp::Delete { topic } => TopicApplied {
                changed: topics.remove(&topic).is_some(),
                config: None,
            },
        };
        if applied.changed {
            data_version.next_version(now_ms());
            write_table(&self.path, &topics, data_version)?;
            *self.table.write() = TopicTable {
                topics,
                data_version,
            };
        }
        Ok(applied)
    }

    /// Replaces the whole table with `configs` (a group member installing a copy of
    /// another member's table), keeping this broker's system topics; persists first.
    pub fn replace_all(&self, configs: Vec<TopicConfig>) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let mut topics: HashMap<String, Arc<TopicConfig>> = HashMap::new();
        for config in configs.into_iter().take(self.max_topics) {
            if !config.topic_name.is_empty() {
                topics.insert(config.topic_name.clone(), Arc::new(config));
            }
        }
        let mut data_version = self.table.read().data_version;
        for (name, config) in self.table.read().topics.iter() {
            if is_system_topic_name(name) {
                topics
                    .entry(name.clone())
                    .or_insert_with(|| Arc::clone(config));
            }
        }
        data_version.next_version(now_ms());
        write_table(&self.path, &topics, data_version)?;
        *self.table.write() = TopicTable {
            topics,
            data_version,
        };
        Ok(())
    }

    fn insert(
        &self,
        topics: &mut HashMap<String, Arc<TopicConfig>>,
        config: TopicConfig,
    ) -> Result<TopicApplied, MetaError> {
        if !topics.contains_key(&config.topic_name) && topics.len() >= self.max_topics {
            return Err(MetaError::LimitReached {
                what: "topic",
                limit: self.max_topics,
            });
        }
        let config = Arc::new(config);
        topics.insert(config.topic_name.clone(), Arc::clone(&config));
        Ok(TopicApplied {
            changed: true,
            config: Some(config),
        })
    }

    fn persist_current(&self) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let table = self.table.read();
        write_table(&self.path, &table.topics, table.data_version)
    }

    /// The config a topic auto-created by a send would get from its template topic
    /// (RocketMQ `createTopicInSendMessageMethod`), or why it cannot be created.
    pub fn config_for_auto_create(
        &self,
        topic: &str,
        default_topic: &str,
        client_queue_nums: i32,
        topic_sys_flag: i32,
    ) -> Result<TopicConfig, AutoCreateError> {
        let Some(template) = self.get(default_topic) else {
            return Err(AutoCreateError::NoTemplate(default_topic.to_owned()));
        };
        if !perm::is_inherited(template.perm) {
            return Err(AutoCreateError::NotInheritable {
                template: default_topic.to_owned(),
                perm: perm::to_display(template.perm),
            });
        }
        let queue_nums = client_queue_nums.min(template.write_queue_nums).max(1);
        Ok(TopicConfig {
            topic_name: topic.to_owned(),
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm: template.perm & !perm::INHERIT,
            topic_filter_type: template.topic_filter_type.clone(),
            topic_sys_flag,
            order: false,
            attributes: BTreeMap::new(),
        })
    }
}

/// Why a send cannot auto-create its topic; the remarks are RocketMQ's, which clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoCreateError {
    #[error("create new topic failed, because the default topic[{0}] not exist")]
    NoTemplate(String),
    #[error("create new topic failed, because the default topic[{template}] has no perm [{perm}] producer")]
    NotInheritable { template: String, perm: String },
}

/// Topics every broker makes for itself (kept when a table is replaced).
fn is_system_topic_name(name: &str) -> bool {
    message::topic::is_system_topic(name)
}

fn write_table(
    path: &Path,
    topics: &HashMap<String, Arc<TopicConfig>>,
    data_version: DataVersion,
) -> Result<(), MetaError> {
    let wrapper = TopicConfigSerializeWrapper {
        topic_config_table: topics
            .iter()
            .map(|(name, config)| (name.clone(), TopicConfig::clone(config)))
            .collect(),
        data_version,
        ..TopicConfigSerializeWrapper::default()
    };
    let bytes =
        serde_json::to_vec_pretty(&wrapper).map_err(|e| MetaError::Invalid(e.to_string()))?;
    persist::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(auto_create: bool) -> TopicDefaults {
        TopicDefaults {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            auto_create_topic_enable: auto_create,
            default_topic_queue_nums: 8,
        }
    }

    #[test]
    fn system_topics_exist_and_tbw102_follows_auto_create() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicConfigManager::open(dir.path(), &defaults(true), 100).unwrap();
        let tbw = topics.get("TBW102").unwrap();
        assert_eq!(tbw.perm, 7);
        assert_eq!(tbw.write_queue_nums, 8);
        assert!(topics.contains("DefaultCluster") && topics.contains("broker-a"));
        drop(topics);
        let topics = TopicConfigManager::open(dir.path(), &defaults(false), 100).unwrap();
        assert!(!topics.contains("TBW102"));
    }

    #[test]
    fn topics_survive_a_reopen_and_deletes_too() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicConfigManager::open(dir.path(), &defaults(true), 100).unwrap();
        let before = topics.data_version();
        let applied = topics
            .apply(TopicOp::Upsert(TopicConfig::new("T1", 4, 4, 6)))
            .unwrap();
        assert!(applied.changed);
        assert!(topics.data_version().counter > before.counter);
        topics
            .apply(TopicOp::Upsert(TopicConfig::new("T2", 2, 2, 6)))
            .unwrap();
        topics
            .apply(TopicOp::Delete { topic: "T2".into() })
            .unwrap();
        drop(topics);
        let reopened = TopicConfigManager::open(dir.path(), &defaults(true), 100).unwrap();
        assert_eq!(reopened.get("T1").unwrap().read_queue_nums, 4);
        assert!(!reopened.contains("T2"));
    }

    #[test]
    fn create_keeps_the_first_config_and_upsert_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicConfigManager::open(dir.path(), &defaults(true), 100).unwrap();
        topics
            .apply(TopicOp::Create(TopicConfig::new("T", 4, 4, 6)))
            .unwrap();
        let again = topics
            .apply(TopicOp::Create(TopicConfig::new("T", 8, 8, 6)))
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.config.unwrap().read_queue_nums, 4);
        let same = topics
            .apply(TopicOp::Upsert(TopicConfig::new("T", 4, 4, 6)))
            .unwrap();
        assert!(!same.changed);
        topics
            .apply(TopicOp::Upsert(TopicConfig::new("T", 8, 8, 6)))
            .unwrap();
        assert_eq!(topics.get("T").unwrap().read_queue_nums, 8);
    }

    #[test]
    fn auto_create_inherits_from_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicConfigManager::open(dir.path(), &defaults(true), 100).unwrap();
        let config = topics
            .config_for_auto_create("NewTopic", "TBW102", 4, 0)
            .unwrap();
        assert_eq!(
            (config.read_queue_nums, config.write_queue_nums, config.perm),
            (4, 4, 6)
        );
        let capped = topics
            .config_for_auto_create("NewTopic", "TBW102", 64, 0)
            .unwrap();
        assert_eq!(capped.write_queue_nums, 8);
        assert!(topics
            .config_for_auto_create("NewTopic", "NoSuchTemplate", 4, 0)
            .is_err());
        topics
            .apply(TopicOp::Upsert(TopicConfig::new("Plain", 4, 4, 6)))
            .unwrap();
        assert!(topics
            .config_for_auto_create("NewTopic", "Plain", 4, 0)
            .is_err());
    }

    #[test]
    fn the_topic_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicConfigManager::open(dir.path(), &defaults(false), 5).unwrap();
        let mut created = 0;
        for i in 0..10 {
            if topics
                .apply(TopicOp::Create(TopicConfig::new(&format!("T{i}"), 1, 1, 6)))
                .is_ok()
            {
                created += 1;
            }
        }
        assert_eq!(topics.len(), 5);
        assert!(created < 10);
    }
}
