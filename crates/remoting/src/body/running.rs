//! Bodies of the diagnostics an operator asks for: a consumer's own report of its state
//! (GET_CONSUMER_RUNNING_INFO, 307, relayed by the broker), a broker's statistics of one
//! topic or group (VIEW_BROKER_STATS_DATA, 315) and every group's consume stats on one
//! broker (GET_BROKER_CONSUME_STATS, 317).
//!
//! Java writes the queue-keyed tables with MessageQueue objects as keys, as in
//! [`super::queue`]; these types read that form (or any quoting of it) and write it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fastjson::{self, push_json, JsonError};
use super::heartbeat::SubscriptionData;
use super::queue::{parse_mq_keys, push_mq_map, ConsumeStats, MessageQueue};

/// `properties` keys of a consumer's running info (Java's `ConsumerRunningInfo.PROP_*`).
pub mod prop {
    pub const NAMESERVER_ADDR: &str = "PROP_NAMESERVER_ADDR";
    pub const THREADPOOL_CORE_SIZE: &str = "PROP_THREADPOOL_CORE_SIZE";
    pub const CONSUME_ORDERLY: &str = "PROP_CONSUMEORDERLY";
    pub const CONSUME_TYPE: &str = "PROP_CONSUME_TYPE";
    pub const CLIENT_VERSION: &str = "PROP_CLIENT_VERSION";
    pub const CONSUMER_START_TIMESTAMP: &str = "PROP_CONSUMER_START_TIMESTAMP";
}

/// One assigned queue as the consumer holds it (Java's `ProcessQueueInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    pub commit_offset: i64,
    pub cached_msg_min_offset: i64,
    pub cached_msg_max_offset: i64,
    pub cached_msg_count: i32,
    #[serde(rename = "cachedMsgSizeInMiB")]
    pub cached_msg_size_in_mib: i32,
    pub transaction_msg_min_offset: i64,
    pub transaction_msg_max_offset: i64,
    pub transaction_msg_count: i32,
    pub locked: bool,
    pub try_unlock_times: i64,
    pub last_lock_timestamp: i64,
    /// Java's spelling.
    pub droped: bool,
    pub last_pull_timestamp: i64,
    pub last_consume_timestamp: i64,
}

/// A consumer's rates for one topic (Java's `ConsumeStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumeStatus {
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    #[serde(rename = "consumeFailedMsgs")]
    pub consume_failed_msgs: i64,
}

/// GET_CONSUMER_RUNNING_INFO's answer: what one consumer reports about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerRunningInfo {
    /// Java `Properties`; values are kept as the text Java would print.
    pub properties: BTreeMap<String, String>,
    pub subscription_set: Vec<SubscriptionData>,
    pub mq_table: BTreeMap<MessageQueue, ProcessQueueInfo>,
    /// By topic.
    pub status_table: BTreeMap<String, ConsumeStatus>,
    pub user_consumer_info: BTreeMap<String, String>,
    pub jstack: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawConsumerRunningInfo {
    properties: BTreeMap<String, serde_json::Value>,
    subscription_set: Vec<SubscriptionData>,
    mq_table: BTreeMap<String, ProcessQueueInfo>,
    status_table: BTreeMap<String, ConsumeStatus>,
    user_consumer_info: BTreeMap<String, serde_json::Value>,
    jstack: Option<String>,
}

/// A JSON value as Java's `toString` of it would read (strings without quotes).
fn java_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl ConsumerRunningInfo {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawConsumerRunningInfo = fastjson::decode(body)?;
        Ok(ConsumerRunningInfo {
            properties: raw
                .properties
                .into_iter()
                .map(|(k, v)| (k, java_text(v)))
                .collect(),
            subscription_set: raw.subscription_set,
            mq_table: parse_mq_keys(raw.mq_table)?,
            status_table: raw.status_table,
            user_consumer_info: raw
                .user_consumer_info
                .into_iter()
                .map(|(k, v)| (k, java_text(v)))
                .collect(),
            jstack: raw.jstack,
        })
    }

    /// Java's form: fastjson's sorted keys, queues as object keys.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{");
        if let Some(jstack) = &self.jstack {
            out.push_str("\"jstack\":");
            push_json(&mut out, jstack);
            out.push(',');
        }
        out.push_str("\"mqPopTable\":{},\"mqTable\":");
        push_mq_map(&mut out, &self.mq_table);
        out.push_str(",\"properties\":");
        push_json(&mut out, &self.properties);
        out.push_str(",\"statusTable\":");
        push_json(&mut out, &self.status_table);
        out.push_str(",\"subscriptionSet\":");
        push_json(&mut out, &self.subscription_set);
        out.push_str(",\"userConsumerInfo\":");
        push_json(&mut out, &self.user_consumer_info);
        out.push('}');
        out.into_bytes()
    }
}

/// One window of a broker statistic (Java's `BrokerStatsItem`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerStatsItem {
    pub sum: i64,
    pub tps: f64,
    pub avgpt: f64,
}

/// VIEW_BROKER_STATS_DATA's answer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerStatsData {
    pub stats_minute: BrokerStatsItem,
    pub stats_hour: BrokerStatsItem,
    pub stats_day: BrokerStatsItem,
}

impl BrokerStatsData {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    /// The messages of the last 24 hours as RocketMQ's `statsAll` counts them: the day's
    /// sum, or the hour's, or the minute's, whichever is first non-zero.
    pub fn sum_24_hours(&self) -> i64 {
        [self.stats_day, self.stats_hour, self.stats_minute]
            .iter()
            .map(|item| item.sum)
            .find(|sum| *sum != 0)
            .unwrap_or(0)
    }
}

/// GET_BROKER_CONSUME_STATS's answer: per subscription group, its consume stats per
/// topic, and the broker's total lag.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumeStatsList {
    pub consume_stats_list: Vec<BTreeMap<String, Vec<ConsumeStats>>>,
    pub broker_addr: String,
    pub total_diff: i64,
    pub total_inflight_diff: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawConsumeStatsList {
    consume_stats_list: Vec<BTreeMap<String, Vec<serde_json::Value>>>,
    broker_addr: Option<String>,
    total_diff: i64,
    total_inflight_diff: i64,
}

impl ConsumeStatsList {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        let raw: RawConsumeStatsList = fastjson::decode(body)?;
        let mut list = Vec::with_capacity(raw.consume_stats_list.len());
        for groups in raw.consume_stats_list {
            let mut decoded = BTreeMap::new();
            for (group, stats) in groups {
                let mut all = Vec::with_capacity(stats.len());
                for value in stats {
                    // Normalized keys are JSON text; ConsumeStats reads them back.
                    let text = serde_json::to_vec(&value)
                        .map_err(|err| JsonError::Shape(err.to_string()))?;
                    all.push(ConsumeStats::decode(&text)?);
                }
                decoded.insert(group, all);
            }
            list.push(decoded);
        }
        Ok(ConsumeStatsList {
            consume_stats_list: list,
            broker_addr: raw.broker_addr.unwrap_or_default(),
            total_diff: raw.total_diff,
            total_inflight_diff: raw.total_inflight_diff,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"brokerAddr\":");
        push_json(&mut out, &self.broker_addr);
        out.push_str(",\"consumeStatsList\":[");
        for (index, groups) in self.consume_stats_list.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push('{');
            for (g, (group, stats)) in groups.iter().enumerate() {
                if g > 0 {
                    out.push(',');
                }
                push_json(&mut out, group);
                out.push_str(":[");
                for (s, one) in stats.iter().enumerate() {
                    if s > 0 {
                        out.push(',');
                    }
                    out.push_str(&String::from_utf8_lossy(&one.encode()));
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push_str("],\"totalDiff\":");
        push_json(&mut out, &self.total_diff);
        out.push_str(",\"totalInflightDiff\":");
        push_json(&mut out, &self.total_inflight_diff);
        out.push('}');
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::OffsetWrapper;

    #[test]
    fn a_java_consumers_running_info_reads() {
        // Shaped as a Java 5.x push consumer answers (trimmed).
        let java = br#"{"jstack":null,"mqPopTable":{},"mqTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"cachedMsgCount":2,"cachedMsgMaxOffset":9,"cachedMsgMinOffset":8,"cachedMsgSizeInMiB":0,"commitOffset":8,"droped":false,"lastConsumeTimestamp":1700000000000,"lastLockTimestamp":0,"lastPullTimestamp":1700000000001,"locked":false,"transactionMsgCount":0,"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0}},"properties":{"PROP_CONSUME_TYPE":"CONSUME_PASSIVELY","PROP_CONSUMER_START_TIMESTAMP":1700000000000,"PROP_CONSUMEORDERLY":"false"},"statusTable":{"T":{"consumeFailedMsgs":0,"consumeFailedTPS":0.0,"consumeOKTPS":1.5,"consumeRT":2.0,"pullRT":3.0,"pullTPS":4.0}},"subscriptionSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}],"userConsumerInfo":{}}"#;
        let info = ConsumerRunningInfo::decode(java).unwrap();
        let queue = MessageQueue::new("T", "broker-a", 1);
        assert_eq!(info.mq_table[&queue].commit_offset, 8);
        assert_eq!(info.mq_table[&queue].cached_msg_count, 2);
        assert_eq!(
            info.properties[prop::CONSUMER_START_TIMESTAMP],
            "1700000000000"
        );
        assert_eq!(info.status_table["T"].consume_ok_tps, 1.5);
        assert_eq!(info.subscription_set[0].topic, "T");
        assert_eq!(info.jstack, None);
        assert_eq!(ConsumerRunningInfo::decode(&info.encode()).unwrap(), info);
    }

    #[test]
    fn broker_stats_and_consume_stats_lists_round_trip() {
        let stats = BrokerStatsData::decode(
            br#"{"statsDay":{"avgpt":0.0,"sum":0,"tps":0.0},"statsHour":{"avgpt":0.0,"sum":7,"tps":0.1},"statsMinute":{"avgpt":0.0,"sum":3,"tps":0.05}}"#,
        )
        .unwrap();
        assert_eq!(stats.sum_24_hours(), 7);
        let consume = ConsumeStats {
            offset_table: [(
                MessageQueue::new("T", "b", 0),
                OffsetWrapper {
                    broker_offset: 5,
                    consumer_offset: 2,
                    last_timestamp: 9,
                    pull_offset: 2,
                },
            )]
            .into_iter()
            .collect(),
            consume_tps: 0.0,
        };
        let list = ConsumeStatsList {
            consume_stats_list: vec![[("G".to_owned(), vec![consume])].into_iter().collect()],
            broker_addr: "127.0.0.1:10911".into(),
            total_diff: 3,
            total_inflight_diff: 0,
        };
        assert_eq!(ConsumeStatsList::decode(&list.encode()).unwrap(), list);
    }
}
