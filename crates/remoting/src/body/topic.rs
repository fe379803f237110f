//! Topic and subscription-group configuration bodies: TopicConfig, DataVersion,
//! TopicConfigSerializeWrapper (GET_ALL_TOPIC_CONFIG), RegisterBrokerBody (REGISTER_BROKER),
//! KVTable (GET_BROKER_RUNTIME_INFO and others), SubscriptionGroupConfig and its wrapper.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fastjson::{self, JsonError};

/// `perm` bits of a topic or queue.
pub mod perm {
    pub const PRIORITY: i32 = 8;
    pub const READ: i32 = 4;
    pub const WRITE: i32 = 2;
    pub const INHERIT: i32 = 1;
    pub const READ_WRITE: i32 = READ | WRITE;

    pub fn is_readable(perm: i32) -> bool {
        perm & READ != 0
    }
    pub fn is_writeable(perm: i32) -> bool {
        perm & WRITE != 0
    }
    pub fn is_inherited(perm: i32) -> bool {
        perm & INHERIT != 0
    }

    /// RocketMQ's `PermName.perm2String` form, e.g. `RW-` for 6.
    pub fn to_display(perm: i32) -> String {
        let mut text = String::with_capacity(3);
        text.push(if is_readable(perm) { 'R' } else { '-' });
        text.push(if is_writeable(perm) { 'W' } else { '-' });
        text.push(if is_inherited(perm) { 'X' } else { '-' });
        text
    }
}

/// `topicFilterType` values.
pub const TOPIC_FILTER_SINGLE_TAG: &str = "SINGLE_TAG";
pub const TOPIC_FILTER_MULTI_TAG: &str = "MULTI_TAG";

/// Java's default queue counts for a new TopicConfig.
pub const DEFAULT_QUEUE_NUMS: i32 = 16;

/// A topic's configuration on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_filter_type: String,
    pub topic_sys_flag: i32,
    pub order: bool,
    /// 5.x attributes such as `message.type`.
    pub attributes: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: DEFAULT_QUEUE_NUMS,
            write_queue_nums: DEFAULT_QUEUE_NUMS,
            perm: perm::READ_WRITE,
            topic_filter_type: TOPIC_FILTER_SINGLE_TAG.to_owned(),
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

impl TopicConfig {
    pub fn new(topic_name: &str, read_queue_nums: i32, write_queue_nums: i32, perm: i32) -> Self {
        TopicConfig {
            topic_name: topic_name.to_owned(),
            read_queue_nums,
            write_queue_nums,
            perm,
            ..TopicConfig::default()
        }
    }
}

/// A version stamp brokers and name servers compare to detect config changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    pub counter: i64,
    pub state_version: i64,
    pub timestamp: i64,
}

impl DataVersion {
    pub fn new(now_ms: i64) -> Self {
        DataVersion {
            counter: 0,
            state_version: 0,
            timestamp: now_ms,
        }
    }

    /// Marks a change: bumps the counter and restamps the time (Java `nextVersion`).
    pub fn next_version(&mut self, now_ms: i64) {
        self.counter = self.counter.saturating_add(1);
        self.timestamp = now_ms;
    }

    /// Marks a change of state version (Java `nextVersion(stateVersion)`).
    pub fn next_state_version(&mut self, state_version: i64, now_ms: i64) {
        self.state_version = state_version;
        self.next_version(now_ms);
    }
}

/// Topic configs plus their version: GET_ALL_TOPIC_CONFIG body and the heart of
/// REGISTER_BROKER. The 5.x static-topic mapping sections pass through untouched.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
    pub topic_queue_mapping_info_map: BTreeMap<String, serde_json::Value>,
    pub topic_queue_mapping_detail_map: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_data_version: Option<DataVersion>,
}

impl TopicConfigSerializeWrapper {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

/// REGISTER_BROKER request body (uncompressed form). Its CRC for the `bodyCrc32` header
/// is [`message::record::body_crc`] of the encoded bytes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    pub filter_server_list: Vec<String>,
}

impl RegisterBrokerBody {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

/// A string table: `{"table":{...}}` (broker runtime info, KV lists, order-topic config).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KvTable {
    pub table: BTreeMap<String, String>,
}

impl KvTable {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

/// A consumer group's configuration (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP body,
/// GET_SUBSCRIPTIONGROUP_CONFIG response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_broadcast_enable: bool,
    pub consume_message_orderly: bool,
    pub retry_queue_nums: i32,
    pub retry_max_times: i32,
    /// 5.x retry policy object, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_retry_policy: Option<serde_json::Value>,
    pub broker_id: i64,
    pub which_broker_when_consume_slowly: i64,
    pub notify_consumer_ids_changed_enable: bool,
    pub group_sys_flag: i32,
    pub consume_timeout_minute: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_data_set: Option<Vec<serde_json::Value>>,
    pub attributes: BTreeMap<String, String>,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: 16,
            group_retry_policy: None,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
            subscription_data_set: None,
            attributes: BTreeMap::new(),
        }
    }
}

impl SubscriptionGroupConfig {
    /// A group with Java's defaults (what auto-creation makes).
    pub fn new(group_name: &str) -> Self {
        SubscriptionGroupConfig {
            group_name: group_name.to_owned(),
            ..SubscriptionGroupConfig::default()
        }
    }
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG response body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i32>>,
    pub data_version: DataVersion,
}

/// Compact JSON bytes of a body type.
pub(crate) fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = String::new();
    fastjson::push_json(&mut out, value);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perm_bits() {
        assert_eq!(perm::to_display(6), "RW-");
        assert_eq!(perm::to_display(7), "RWX");
        assert_eq!(perm::to_display(4), "R--");
        assert!(perm::is_inherited(7) && !perm::is_writeable(4));
    }

    #[test]
    fn register_broker_body_matches_the_documented_shape() {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        wrapper
            .topic_config_table
            .insert("TopicTest".into(), TopicConfig::new("TopicTest", 4, 4, 6));
        wrapper.data_version = DataVersion {
            counter: 12,
            state_version: 0,
            timestamp: 1_700_000_000_000,
        };
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list: vec![],
        };
        let bytes = body.encode();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let topic = &value["topicConfigSerializeWrapper"]["topicConfigTable"]["TopicTest"];
        assert_eq!(topic["perm"], 6);
        assert_eq!(topic["topicFilterType"], "SINGLE_TAG");
        assert_eq!(topic["order"], false);
        assert_eq!(
            value["topicConfigSerializeWrapper"]["dataVersion"]["counter"],
            12
        );
        assert_eq!(value["filterServerList"], serde_json::json!([]));
        assert_eq!(RegisterBrokerBody::decode(&bytes).unwrap(), body);
    }

    #[test]
    fn java_register_body_with_unquoted_mapping_keys_decodes() {
        let body = br#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":5},
            "topicConfigTable":{"T":{"attributes":{},"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":8}},
            "topicQueueMappingDetailMap":{"S":{"currIdMap":{0:1}}},"topicQueueMappingInfoMap":{}}}"#;
        let decoded = RegisterBrokerBody::decode(body).unwrap();
        let wrapper = decoded.topic_config_serialize_wrapper;
        assert_eq!(wrapper.topic_config_table["T"].read_queue_nums, 8);
        assert_eq!(wrapper.data_version.counter, 3);
        assert_eq!(
            wrapper.topic_queue_mapping_detail_map["S"]["currIdMap"]["0"],
            1
        );
    }

    #[test]
    fn data_version_changes() {
        let mut version = DataVersion::new(10);
        version.next_version(20);
        assert_eq!(
            version,
            DataVersion {
                counter: 1,
                state_version: 0,
                timestamp: 20
            }
        );
        assert_eq!(
            serde_json::to_string(&version).unwrap(),
            r#"{"counter":1,"stateVersion":0,"timestamp":20}"#
        );
    }

    #[test]
    fn subscription_group_defaults_match_java() {
        let config: SubscriptionGroupConfig =
            serde_json::from_str(r#"{"groupName":"CG"}"#).unwrap();
        assert_eq!(config, SubscriptionGroupConfig::new("CG"));
        assert_eq!((config.retry_queue_nums, config.retry_max_times), (1, 16));
        assert!(config.consume_enable);
        let kv = KvTable {
            table: [("brokerVersion".to_owned(), "479".to_owned())]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            String::from_utf8(kv.encode()).unwrap(),
            r#"{"table":{"brokerVersion":"479"}}"#
        );
    }
}
