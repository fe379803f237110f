//! Bodies of RocketMQ 5's broker-side assignment and POP calls: SET_MESSAGE_REQUEST_MODE,
//! QUERY_ASSIGNMENT and BATCH_ACK_MESSAGE.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
// The names `java_enum!` expands to.
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::fastjson::{self, JsonError};
use super::heartbeat::{java_enum, MessageModel};
use super::queue::MessageQueue;

java_enum! {
    /// How a consumer group reads a topic: pulling queues it rebalances itself, or popping
    /// from the broker.
    pub enum MessageRequestMode {
        Pull = "PULL",
        Pop = "POP",
    }
}

// `java_enum!` cannot mark a variant `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for MessageRequestMode {
    fn default() -> Self {
        MessageRequestMode::Pull
    }
}

/// SET_MESSAGE_REQUEST_MODE body; also the value kept per topic and group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetMessageRequestModeRequestBody {
    pub consumer_group: String,
    pub mode: MessageRequestMode,
    /// How many following consumers' queues a popping consumer also pops; 0 or less:
    /// every consumer pops every queue.
    pub pop_share_queue_num: i32,
    pub topic: String,
}

impl SetMessageRequestModeRequestBody {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        fastjson::encode(self)
    }
}

/// QUERY_ASSIGNMENT request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryAssignmentRequestBody {
    pub client_id: String,
    pub consumer_group: String,
    pub message_model: Option<MessageModel>,
    pub strategy_name: Option<String>,
    pub topic: String,
}

impl QueryAssignmentRequestBody {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }
}

/// One assigned queue (queue id -1: every queue of that broker, popped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueueAssignment {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachments: Option<BTreeMap<String, String>>,
    pub message_queue: MessageQueue,
    pub mode: MessageRequestMode,
}

/// QUERY_ASSIGNMENT response body; no assignments (`None`) tells the client to skip the
/// round.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryAssignmentResponseBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_queue_assignments: Option<Vec<MessageQueueAssignment>>,
}

impl QueryAssignmentResponseBody {
    pub fn encode(&self) -> Vec<u8> {
        fastjson::encode(self)
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }
}

/// BATCH_ACK_MESSAGE body: acknowledgements grouped by checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchAckMessageRequestBody {
    pub acks: Vec<BatchAck>,
    pub broker_name: Option<String>,
}

impl BatchAckMessageRequestBody {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        fastjson::encode(self)
    }
}

/// The acknowledged messages of one checkpoint; the short names are RocketMQ's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchAck {
    #[serde(rename = "c", alias = "consumerGroup")]
    pub consumer_group: String,
    /// The topic popped (a redelivered message's is rebuilt from `retry`).
    #[serde(rename = "t", alias = "topic")]
    pub topic: String,
    /// "0": the topic itself; "1": its retry topic `%RETRY%group_topic`; "2":
    /// `%RETRY%group+topic`.
    #[serde(rename = "r", alias = "retry")]
    pub retry: String,
    #[serde(rename = "so", alias = "startOffset")]
    pub start_offset: i64,
    #[serde(rename = "q", alias = "queueId")]
    pub queue_id: i32,
    #[serde(rename = "rq", alias = "reviveQueueId")]
    pub revive_queue_id: i32,
    #[serde(rename = "pt", alias = "popTime")]
    pub pop_time: i64,
    #[serde(rename = "it", alias = "invisibleTime")]
    pub invisible_time: i64,
    /// Java's `BitSet.toByteArray()` in base64: bit i acknowledges `start_offset + i`.
    #[serde(rename = "b", alias = "bitSet")]
    pub bit_set: String,
}

/// Most offsets one batch entry may acknowledge: a pop returns at most 32 messages, and a
/// checkpoint spans at most the messages one pop read past.
pub const MAX_BATCH_ACK_BITS: usize = 1 << 16;

impl BatchAck {
    /// The acknowledged queue offsets; `None` when the bit set is not base64 or too long.
    pub fn acked_offsets(&self) -> Option<Vec<i64>> {
        let bytes = STANDARD.decode(self.bit_set.as_bytes()).ok()?;
        if bytes.len() * 8 > MAX_BATCH_ACK_BITS {
            return None;
        }
        let mut offsets = Vec::new();
        for (byte_index, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let index = i64::try_from(byte_index * 8 + bit).ok()?;
                    offsets.push(self.start_offset.checked_add(index)?);
                }
            }
        }
        Some(offsets)
    }

    /// The bit set acknowledging `offsets` (each at or above `start_offset`).
    pub fn bit_set_of(start_offset: i64, offsets: &[i64]) -> String {
        let mut bytes: Vec<u8> = Vec::new();
        for offset in offsets {
            let Ok(index) = usize::try_from(offset - start_offset) else {
                continue;
            };
            if index >= MAX_BATCH_ACK_BITS {
                continue;
            }
            if bytes.len() <= index / 8 {
                bytes.resize(index / 8 + 1, 0);
            }
            bytes[index / 8] |= 1 << (index % 8);
        }
        STANDARD.encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ack_bit_sets_read_as_java_writes_them() {
        // so+1, so+3, so+5 → byte 0b0010_1010 → "Kg==".
        assert_eq!(BatchAck::bit_set_of(100, &[101, 103, 105]), "Kg==");
        let ack = BatchAck {
            start_offset: 100,
            bit_set: "Kg==".into(),
            ..BatchAck::default()
        };
        assert_eq!(ack.acked_offsets(), Some(vec![101, 103, 105]));
        let bad = BatchAck {
            bit_set: "%%".into(),
            ..BatchAck::default()
        };
        assert_eq!(bad.acked_offsets(), None);
    }

    #[test]
    fn batch_ack_bodies_take_short_and_long_names() {
        let body = br#"{"acks":[{"c":"G","t":"T","r":"0","so":7,"q":1,"rq":0,"pt":5,"it":60000,"b":"AQ=="}],"brokerName":"b"}"#;
        let decoded = BatchAckMessageRequestBody::decode(body).unwrap();
        assert_eq!(decoded.acks[0].consumer_group, "G");
        assert_eq!(decoded.acks[0].acked_offsets(), Some(vec![7]));
        let long =
            br#"{"acks":[{"consumerGroup":"G","topic":"T","startOffset":7,"bitSet":"AQ=="}]}"#;
        assert_eq!(
            BatchAckMessageRequestBody::decode(long).unwrap().acks[0].start_offset,
            7
        );
    }

    #[test]
    fn assignments_encode_as_the_java_client_reads_them() {
        let body = QueryAssignmentResponseBody {
            message_queue_assignments: Some(vec![MessageQueueAssignment {
                attachments: None,
                message_queue: MessageQueue::new("T", "b", -1),
                mode: MessageRequestMode::Pop,
            }]),
        };
        let text = String::from_utf8(body.encode()).unwrap();
        assert_eq!(
            text,
            r#"{"messageQueueAssignments":[{"messageQueue":{"brokerName":"b","queueId":-1,"topic":"T"},"mode":"POP"}]}"#
        );
        let request = br#"{"clientId":"c","consumerGroup":"G","messageModel":"CLUSTERING","strategyName":"AVG","topic":"T"}"#;
        let decoded = QueryAssignmentRequestBody::decode(request).unwrap();
        assert_eq!(decoded.message_model, Some(MessageModel::Clustering));
        let mode = br#"{"topic":"T","consumerGroup":"G","mode":"POP","popShareQueueNum":0}"#;
        assert_eq!(
            SetMessageRequestModeRequestBody::decode(mode).unwrap().mode,
            MessageRequestMode::Pop
        );
    }
}
