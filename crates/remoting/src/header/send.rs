//! SEND_MESSAGE (10) with long keys and SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320)
//! with the abbreviated `a`..`n` keys; both parse into one [`SendMessageRequestHeader`].
//!
//! Brokers must detect batches by the `batch` / `m` flag, not by the request code: the C++
//! client sends batches as SEND_MESSAGE_V2 with `m="true"`.

use super::{CommandHeader, HeaderError, HeaderField};
use crate::code::request;
use crate::ExtFields;

command_header! {
    /// A producer's send request (long key names, as SEND_MESSAGE carries them).
    pub struct SendMessageRequestHeader {
        producer_group: String = "producerGroup",
        topic: String = "topic",
        /// Template topic for auto-creation, normally `TBW102`.
        default_topic: String = "defaultTopic",
        default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        /// Negative: the broker picks a writable queue.
        queue_id: i32 = "queueId",
        sys_flag: i32 = "sysFlag",
        born_timestamp: i64 = "bornTimestamp",
        flag: i32 = "flag",
        /// Encoded properties string.
        properties: Option<String> = "properties",
        reconsume_times: Option<i32> = "reconsumeTimes",
        unit_mode: Option<bool> = "unitMode",
        batch: Option<bool> = "batch",
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        /// Target broker name (V2 key `n`, 5.x; long form travels as base field `bname`).
        broker_name: Option<String> = "bname",
    }
}

/// V2 key for each field, in declaration order (`a`..`n`).
mod v2_key {
    pub const PRODUCER_GROUP: &str = "a";
    pub const TOPIC: &str = "b";
    pub const DEFAULT_TOPIC: &str = "c";
    pub const DEFAULT_TOPIC_QUEUE_NUMS: &str = "d";
    pub const QUEUE_ID: &str = "e";
    pub const SYS_FLAG: &str = "f";
    pub const BORN_TIMESTAMP: &str = "g";
    pub const FLAG: &str = "h";
    pub const PROPERTIES: &str = "i";
    pub const RECONSUME_TIMES: &str = "j";
    pub const UNIT_MODE: &str = "k";
    pub const MAX_RECONSUME_TIMES: &str = "l";
    pub const BATCH: &str = "m";
    pub const BROKER_NAME: &str = "n";
}

impl SendMessageRequestHeader {
    /// Parses the abbreviated keys of SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE.
    pub fn from_v2(ext: &ExtFields) -> Result<Self, HeaderError> {
        use v2_key::*;
        Ok(SendMessageRequestHeader {
            producer_group: HeaderField::read_field(ext, PRODUCER_GROUP)?,
            topic: HeaderField::read_field(ext, TOPIC)?,
            default_topic: HeaderField::read_field(ext, DEFAULT_TOPIC)?,
            default_topic_queue_nums: HeaderField::read_field(ext, DEFAULT_TOPIC_QUEUE_NUMS)?,
            queue_id: HeaderField::read_field(ext, QUEUE_ID)?,
            sys_flag: HeaderField::read_field(ext, SYS_FLAG)?,
            born_timestamp: HeaderField::read_field(ext, BORN_TIMESTAMP)?,
            flag: HeaderField::read_field(ext, FLAG)?,
            properties: HeaderField::read_field(ext, PROPERTIES)?,
            reconsume_times: HeaderField::read_field(ext, RECONSUME_TIMES)?,
            unit_mode: HeaderField::read_field(ext, UNIT_MODE)?,
            batch: HeaderField::read_field(ext, BATCH)?,
            max_reconsume_times: HeaderField::read_field(ext, MAX_RECONSUME_TIMES)?,
            broker_name: HeaderField::read_field(ext, BROKER_NAME)?,
        })
    }

    /// Writes the abbreviated keys of SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE.
    pub fn to_v2(&self, ext: &mut ExtFields) {
        use v2_key::*;
        self.producer_group.write_field(ext, PRODUCER_GROUP);
        self.topic.write_field(ext, TOPIC);
        self.default_topic.write_field(ext, DEFAULT_TOPIC);
        self.default_topic_queue_nums
            .write_field(ext, DEFAULT_TOPIC_QUEUE_NUMS);
        self.queue_id.write_field(ext, QUEUE_ID);
        self.sys_flag.write_field(ext, SYS_FLAG);
        self.born_timestamp.write_field(ext, BORN_TIMESTAMP);
        self.flag.write_field(ext, FLAG);
        self.properties.write_field(ext, PROPERTIES);
        self.reconsume_times.write_field(ext, RECONSUME_TIMES);
        self.unit_mode.write_field(ext, UNIT_MODE);
        self.batch.write_field(ext, BATCH);
        self.max_reconsume_times
            .write_field(ext, MAX_RECONSUME_TIMES);
        self.broker_name.write_field(ext, BROKER_NAME);
    }

    /// Parses the header of a send request according to its code: V2 keys for
    /// SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE, long keys otherwise.
    pub fn from_request(code: i32, ext: &ExtFields) -> Result<Self, HeaderError> {
        if code == request::SEND_MESSAGE_V2
            || code == request::SEND_BATCH_MESSAGE
            || code == request::SEND_REPLY_MESSAGE_V2
        {
            Self::from_v2(ext)
        } else {
            Self::from_ext_fields(ext)
        }
    }

    /// Whether the body is a batch (the flag decides, not the request code).
    pub fn is_batch(&self) -> bool {
        self.batch == Some(true)
    }
}

command_header! {
    /// The broker's answer to a send. `MSG_REGION` and `TRACE_ON` are plain ext fields
    /// in Java but every client reads them, so they live here too.
    pub struct SendMessageResponseHeader {
        /// Offset msgId(s); comma-joined for batches.
        msg_id: String = "msgId",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        /// The message's `UNIQ_KEY`.
        transaction_id: Option<String> = "transactionId",
        batch_uniq_id: Option<String> = "batchUniqId",
        recall_handle: Option<String> = "recallHandle",
        msg_region: Option<String> = "MSG_REGION",
        trace_on: Option<bool> = "TRACE_ON",
    }
}

command_header! {
    /// RECALL_MESSAGE (370): `recallHandle` is what the timer message's send returned.
    pub struct RecallMessageRequestHeader {
        producer_group: Option<String> = "producerGroup",
        topic: String = "topic",
        recall_handle: String = "recallHandle",
    }
}

command_header! {
    /// The recalled message's id (its `UNIQ_KEY`).
    pub struct RecallMessageResponseHeader {
        msg_id: String = "msgId",
    }
}
