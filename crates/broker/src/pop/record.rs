//! The records POP consumption keeps in the revive topic: a *checkpoint* for each queue a
//! pop took messages from (which offsets it handed out, until when they are invisible), an
//! *ack* for acknowledged offsets, and a *revived* marker stored in the same put as the
//! retry copies of a checkpoint's unacknowledged messages. Bodies are JSON (small, rare
//! next to messages, readable in a dump); the tag says the kind.

use std::net::SocketAddr;

use message::properties::keys;
use message::MessageView;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::record::{append_record, NewMessage, RecordError};
use crate::store_facade::RecordBatch;

/// What names a checkpoint: the group, the queue as read (a retry topic's queue 0 for a
/// redelivered message), where that pop started and when it happened. A receipt handle
/// carries all of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointKey {
    #[serde(rename = "g")]
    pub group: String,
    #[serde(rename = "t")]
    pub topic: String,
    #[serde(rename = "q")]
    pub queue_id: i32,
    #[serde(rename = "so")]
    pub start_offset: i64,
    #[serde(rename = "pt")]
    pub pop_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum PopRecord {
    /// Offsets handed out, invisible until `pop_time + invisible_time`.
    #[serde(rename = "ck")]
    Checkpoint {
        #[serde(flatten)]
        key: CheckpointKey,
        #[serde(rename = "it")]
        invisible_time: i64,
        #[serde(rename = "o")]
        offsets: Vec<i64>,
    },
    #[serde(rename = "ack")]
    Ack {
        #[serde(flatten)]
        key: CheckpointKey,
        #[serde(rename = "o")]
        offsets: Vec<i64>,
    },
    /// The checkpoint's unacknowledged messages were stored again for redelivery.
    #[serde(rename = "rv")]
    Revived {
        #[serde(flatten)]
        key: CheckpointKey,
    },
    /// Stored by a master after a redelivery whose put had an unknown outcome: once it is
    /// read back, everything stored before it is read too, so whether that redelivery was
    /// stored is known. Changes no checkpoint.
    #[serde(rename = "bar")]
    Barrier {
        #[serde(rename = "at")]
        stored_at: i64,
    },
}

impl PopRecord {
    /// The two records of a change of invisible time, stored in one put: a checkpoint for
    /// the message alone, invisible for `invisible_time` from its pop time, then the ack of
    /// the message under the checkpoint its receipt names (`old`). Returns them with the new
    /// checkpoint's pop time, which the client's next receipt carries.
    ///
    /// The new pop time is later than the old one even when the change comes within the
    /// millisecond of the pop (or of an earlier change): with equal times and a message
    /// that opened its checkpoint, both records would name the same checkpoint, the ack
    /// would cancel the renewal, and the message would never come back.
    pub fn renewal(
        old: CheckpointKey,
        offset: i64,
        invisible_time: i64,
        now_ms: i64,
    ) -> ([PopRecord; 2], i64) {
        let pop_time = now_ms.max(old.pop_time.saturating_add(1));
        let renewed = PopRecord::Checkpoint {
            key: CheckpointKey {
                start_offset: offset,
                pop_time,
                ..old.clone()
            },
            invisible_time,
            offsets: vec![offset],
        };
        let ack = PopRecord::Ack {
            key: old,
            offsets: vec![offset],
        };
        ([renewed, ack], pop_time)
    }

    /// The checkpoint a CK or ACK record names with RocketMQ's `revive_message_type`; the
    /// other records are this broker's own bookkeeping.
    pub fn revive_message_type(&self) -> Option<(&CheckpointKey, &'static str)> {
        match self {
            PopRecord::Checkpoint { key, .. } => Some((key, "CK")),
            PopRecord::Ack { key, .. } => Some((key, "ACK")),
            PopRecord::Revived { .. } | PopRecord::Barrier { .. } => None,
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            PopRecord::Checkpoint { .. } => "ck",
            PopRecord::Ack { .. } => "ack",
            PopRecord::Revived { .. } => "rv",
            PopRecord::Barrier { .. } => "bar",
        }
    }

    pub fn decode(record: &[u8]) -> Option<PopRecord> {
        let view = MessageView::parse(record).ok()?;
        serde_json::from_slice(view.body()).ok()
    }

    /// Adds this record to `batch`, for the revive topic's queue `queue_id`.
    pub fn append(
        &self,
        batch: &mut RecordBatch,
        revive_topic: &str,
        queue_id: i32,
        store_host: SocketAddr,
    ) -> Result<(), PopRecordError> {
        let body = serde_json::to_vec(self)?;
        let properties = format!(
            "{}{}{}{}",
            keys::TAGS,
            message::properties::NAME_VALUE_SEPARATOR,
            self.tag(),
            message::properties::PROPERTY_SEPARATOR
        );
        let message = NewMessage {
            topic: revive_topic,
            queue_id,
            body: &body,
            flag: 0,
            properties: &properties,
            sys_flag: 0,
            born_timestamp_ms: now_ms(),
            born_host: store_host,
            reconsume_times: 0,
        };
        Ok(append_record(batch, &message, store_host)?)
    }
}

/// Why a pop record could not be added to a put.
#[derive(Debug, thiserror::Error)]
pub enum PopRecordError {
    #[error("pop record cannot be encoded: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Record(#[from] RecordError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_stored_record() {
        let key = CheckpointKey {
            group: "G".into(),
            topic: "T".into(),
            queue_id: 3,
            start_offset: 10,
            pop_time: 1_700_000_000_000,
        };
        let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
        for record in [
            PopRecord::Checkpoint {
                key: key.clone(),
                invisible_time: 60_000,
                offsets: vec![10, 12],
            },
            PopRecord::Ack {
                key: key.clone(),
                offsets: vec![12],
            },
            PopRecord::Revived { key: key.clone() },
            PopRecord::Barrier {
                stored_at: 1_700_000_000_001,
            },
        ] {
            let mut batch = RecordBatch::with_capacity(256, 1);
            record
                .append(&mut batch, "rmq_sys_REVIVE_LOG_C", 0, host)
                .unwrap();
            let stored = batch.records()[0].to_vec();
            assert_eq!(PopRecord::decode(&stored), Some(record));
        }
        assert_eq!(PopRecord::decode(b"garbage"), None);
    }
}
