//! Bodies built around message queues: lock/unlock batches, consumer lists, and the admin
//! statistics that fastjson writes as maps keyed by MessageQueue objects
//! (`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{...}}}`), which is what
//! the Java admin tool parses. We write that form and read it back (or any quoting of it).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fastjson::{self, push_json, JsonError};
use super::topic::encode_json;

/// A queue of a topic on one broker group. Fields are declared in fastjson's (sorted)
/// output order; ordering is Java's `compareTo`: topic, broker name, queue id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    pub broker_name: String,
    pub queue_id: i32,
    pub topic: String,
}

impl MessageQueue {
    pub fn new(topic: &str, broker_name: &str, queue_id: i32) -> Self {
        MessageQueue {
            broker_name: broker_name.to_owned(),
            queue_id,
            topic: topic.to_owned(),
        }
    }
}

impl Ord for MessageQueue {
    fn cmp(&self, other: &Self) -> Ordering {
        self.topic
            .cmp(&other.topic)
            .then_with(|| self.broker_name.cmp(&other.broker_name))
            .then_with(|| self.queue_id.cmp(&other.queue_id))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// LOCK_BATCH_MQ request body; UNLOCK_BATCH_MQ uses the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    pub consumer_group: String,
    pub client_id: String,
    /// Absent from C++ requests.
    pub only_this_broker: bool,
    pub mq_set: BTreeSet<MessageQueue>,
}

pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// LOCK_BATCH_MQ response body; note the exact key spelling `lockOKMQSet`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    pub consumer_id_list: Vec<String>,
}

/// QUERY_TOPIC_CONSUME_BY_WHO response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    pub group_list: BTreeSet<String>,
}

macro_rules! json_codec {
    ($($ty:ty),*) => {$(
        impl $ty {
            pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
                fastjson::decode(body)
            }
            pub fn encode(&self) -> Vec<u8> {
                encode_json(self)
            }
        }
    )*};
}
json_codec!(
    LockBatchRequestBody,
    LockBatchResponseBody,
    ConsumerListBody,
    GroupList
);

/// Writes `{<MessageQueue object>:<value>,...}` as fastjson does.
pub(crate) fn push_mq_map<V: Serialize>(out: &mut String, map: &BTreeMap<MessageQueue, V>) {
    out.push('{');
    for (index, (queue, value)) in map.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_json(out, queue);
        out.push(':');
        push_json(out, value);
    }
    out.push('}');
}

/// Turns keys normalized to JSON text back into MessageQueues.
pub(crate) fn parse_mq_keys<V>(
    raw: BTreeMap<String, V>,
) -> Result<BTreeMap<MessageQueue, V>, JsonError> {
    raw.into_iter()
        .map(|(key, value)| {
            let queue: MessageQueue = serde_json::from_str(&key).map_err(|err| {
                JsonError::Shape(format!(
                    "offsetTable key `{key}` is not a MessageQueue: {err}"
                ))
            })?;
            Ok((queue, value))
        })
        .collect()
}

/// Decodes `body` as `Raw` (with string keys) after fastjson normalization.
fn decode_raw<Raw: DeserializeOwned>(body: &[u8]) -> Result<Raw, JsonError> {
    fastjson::decode(body)
}

/// One queue's offsets in GET_TOPIC_STATS_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    pub last_update_timestamp: i64,
    pub max_offset: i64,
    pub min_offset: i64,
}

/// GET_TOPIC_STATS_INFO response body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicStatsTable {
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
    pub topic_put_tps: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawTopicStatsTable {
    offset_table: BTreeMap<String, TopicOffset>,
    topic_put_tps: f64,
}

impl TopicStatsTable {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"offsetTable\":");
        push_mq_map(&mut out, &self.offset_table);
        out.push_str(",\"topicPutTps\":");
        push_json(&mut out, &self.topic_put_tps);
        out.push('}');
        out.into_bytes()
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawTopicStatsTable = decode_raw(body)?;
        Ok(TopicStatsTable {
            offset_table: parse_mq_keys(raw.offset_table)?,
            topic_put_tps: raw.topic_put_tps,
        })
    }
}

/// One queue's progress in GET_CONSUME_STATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub last_timestamp: i64,
    pub pull_offset: i64,
}

/// GET_CONSUME_STATS response body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumeStats {
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
    pub consume_tps: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawConsumeStats {
    offset_table: BTreeMap<String, OffsetWrapper>,
    consume_tps: f64,
}

impl ConsumeStats {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"consumeTps\":");
        push_json(&mut out, &self.consume_tps);
        out.push_str(",\"offsetTable\":");
        push_mq_map(&mut out, &self.offset_table);
        out.push('}');
        out.into_bytes()
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawConsumeStats = decode_raw(body)?;
        Ok(ConsumeStats {
            offset_table: parse_mq_keys(raw.offset_table)?,
            consume_tps: raw.consume_tps,
        })
    }

    /// Total lag: broker offset minus consumer offset over all queues (Java
    /// `computeTotalDiff`).
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|o| o.broker_offset.saturating_sub(o.consumer_offset))
            .fold(0i64, i64::saturating_add)
    }
}

/// RESET_CONSUMER_CLIENT_OFFSET body for Java clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResetOffsetBody {
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawResetOffsetBody {
    offset_table: BTreeMap<String, i64>,
}

impl ResetOffsetBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"offsetTable\":");
        push_mq_map(&mut out, &self.offset_table);
        out.push('}');
        out.into_bytes()
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawResetOffsetBody = decode_raw(body)?;
        Ok(ResetOffsetBody {
            offset_table: parse_mq_keys(raw.offset_table)?,
        })
    }

    /// The list form the Java broker sends to C++ clients instead.
    pub fn to_cpp_form(&self) -> ResetOffsetBodyForC {
        ResetOffsetBodyForC {
            offset_table: self
                .offset_table
                .iter()
                .map(|(queue, offset)| MessageQueueForC {
                    broker_name: queue.broker_name.clone(),
                    offset: *offset,
                    queue_id: queue.queue_id,
                    topic: queue.topic.clone(),
                })
                .collect(),
        }
    }
}

/// GET_CONSUMER_STATUS_FROM_CLIENT's answer (`messageQueueTable`: one client's offsets)
/// and INVOKE_BROKER_TO_GET_CONSUMER_STATUS's (`consumerTable`: every client's, by id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetConsumerStatusBody {
    pub message_queue_table: BTreeMap<MessageQueue, i64>,
    pub consumer_table: BTreeMap<String, BTreeMap<MessageQueue, i64>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawGetConsumerStatusBody {
    message_queue_table: BTreeMap<String, i64>,
    consumer_table: BTreeMap<String, BTreeMap<String, i64>>,
}

impl GetConsumerStatusBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"messageQueueTable\":");
        push_mq_map(&mut out, &self.message_queue_table);
        out.push_str(",\"consumerTable\":{");
        for (index, (client_id, table)) in self.consumer_table.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            push_json(&mut out, client_id);
            out.push(':');
            push_mq_map(&mut out, table);
        }
        out.push_str("}}");
        out.into_bytes()
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawGetConsumerStatusBody = decode_raw(body)?;
        Ok(GetConsumerStatusBody {
            message_queue_table: parse_mq_keys(raw.message_queue_table)?,
            consumer_table: raw
                .consumer_table
                .into_iter()
                .map(|(client_id, table)| Ok((client_id, parse_mq_keys(table)?)))
                .collect::<Result<_, JsonError>>()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueueForC {
    pub broker_name: String,
    pub offset: i64,
    pub queue_id: i32,
    pub topic: String,
}

/// RESET_CONSUMER_CLIENT_OFFSET body for C++ clients (a list, standard JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResetOffsetBodyForC {
    pub offset_table: Vec<MessageQueueForC>,
}

json_codec!(ResetOffsetBodyForC);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_status_keys_are_message_queue_objects() {
        // A Java client's answer to GET_CONSUMER_STATUS_FROM_CLIENT.
        let from_client = br#"{"messageQueueTable":{{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}:7}}"#;
        let body = GetConsumerStatusBody::decode(from_client).unwrap();
        assert_eq!(body.message_queue_table.get(&mq(1)), Some(&7));
        let merged = GetConsumerStatusBody {
            consumer_table: BTreeMap::from([("c1".to_owned(), body.message_queue_table)]),
            ..GetConsumerStatusBody::default()
        };
        let decoded = GetConsumerStatusBody::decode(&merged.encode()).unwrap();
        assert_eq!(decoded, merged);
    }

    fn mq(queue_id: i32) -> MessageQueue {
        MessageQueue::new("TopicTest", "broker-a", queue_id)
    }

    #[test]
    fn topic_stats_are_written_with_object_keys_like_fastjson() {
        let table = TopicStatsTable {
            offset_table: [(
                mq(0),
                TopicOffset {
                    last_update_timestamp: 7,
                    max_offset: 10,
                    min_offset: 0,
                },
            )]
            .into_iter()
            .collect(),
            topic_put_tps: 0.0,
        };
        let text = String::from_utf8(table.encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:"#,
                r#"{"lastUpdateTimestamp":7,"maxOffset":10,"minOffset":0}},"topicPutTps":0.0}"#
            )
        );
        assert_eq!(TopicStatsTable::decode(text.as_bytes()).unwrap(), table);
    }

    #[test]
    fn consume_stats_round_trip_and_lag() {
        let stats = ConsumeStats {
            offset_table: [
                (
                    mq(1),
                    OffsetWrapper {
                        broker_offset: 100,
                        consumer_offset: 40,
                        last_timestamp: 1,
                        pull_offset: 50,
                    },
                ),
                (
                    mq(0),
                    OffsetWrapper {
                        broker_offset: 10,
                        consumer_offset: 10,
                        last_timestamp: 1,
                        pull_offset: 10,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            consume_tps: 1.5,
        };
        let bytes = stats.encode();
        assert_eq!(ConsumeStats::decode(&bytes).unwrap(), stats);
        assert_eq!(stats.total_diff(), 60);
        // A Java broker's output with whitespace and a different key order also reads.
        let java = br#"{"consumeTps":0.0, "offsetTable":{ {"topic":"T","brokerName":"b","queueId":3} : {"brokerOffset":5,"consumerOffset":2,"lastTimestamp":0,"pullOffset":5}}}"#;
        let decoded = ConsumeStats::decode(java).unwrap();
        assert_eq!(
            decoded.offset_table[&MessageQueue::new("T", "b", 3)].consumer_offset,
            2
        );
        assert!(ConsumeStats::decode(br#"{"offsetTable":{"notaqueue":{}}}"#).is_err());
    }

    #[test]
    fn reset_offset_java_and_cpp_forms() {
        let body = ResetOffsetBody {
            offset_table: [(mq(2), 99)].into_iter().collect(),
        };
        assert_eq!(ResetOffsetBody::decode(&body.encode()).unwrap(), body);
        let cpp = String::from_utf8(body.to_cpp_form().encode()).unwrap();
        assert_eq!(
            cpp,
            r#"{"offsetTable":[{"brokerName":"broker-a","offset":99,"queueId":2,"topic":"TopicTest"}]}"#
        );
    }

    #[test]
    fn lock_bodies_use_java_spellings() {
        let cpp_request = br#"{"consumerGroup":"CG","clientId":"c1","mqSet":[{"topic":"T","brokerName":"b","queueId":0}]}"#;
        let request = LockBatchRequestBody::decode(cpp_request).unwrap();
        assert!(!request.only_this_broker);
        assert_eq!(request.mq_set.len(), 1);
        let response = LockBatchResponseBody {
            lock_ok_mq_set: request.mq_set.clone(),
        };
        let text = String::from_utf8(response.encode()).unwrap();
        assert_eq!(
            text,
            r#"{"lockOKMQSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}"#
        );
        assert_eq!(
            LockBatchResponseBody::decode(text.as_bytes()).unwrap(),
            response
        );
    }

    #[test]
    fn queues_sort_like_java() {
        let mut queues = [
            MessageQueue::new("B", "a", 0),
            MessageQueue::new("A", "b", 1),
            MessageQueue::new("A", "b", 0),
            MessageQueue::new("A", "a", 5),
        ];
        queues.sort();
        let keys: Vec<_> = queues
            .iter()
            .map(|q| (q.topic.as_str(), q.broker_name.as_str(), q.queue_id))
            .collect();
        assert_eq!(
            keys,
            [("A", "a", 5), ("A", "b", 0), ("A", "b", 1), ("B", "a", 0)]
        );
        let list = ConsumerListBody {
            consumer_id_list: vec!["c1".into()],
        };
        assert_eq!(
            String::from_utf8(list.encode()).unwrap(),
            r#"{"consumerIdList":["c1"]}"#
        );
    }
}
