//! Messages between RocketMQ 5's gRPC form (`apache.rocketmq.v2.Message`) and the stored
//! form: the system properties a 5.x client sets become the properties a remoting client
//! would have sent, and a stored message read back becomes what a 5.x client expects
//! (its receipt handle, delivery attempt and body digest included).

use std::collections::HashMap;

use grpc::v2::{self, DigestType, Encoding, MessageType};
use message::properties::{keys, MessageProperties};
use message::sysflag::message as msg_flag;
use message::MessageView;

use super::status;

/// Properties the broker and clients keep for themselves: never a 5.x user property.
const SYSTEM_KEYS: &[&str] = &[
    keys::TAGS,
    keys::KEYS,
    keys::UNIQ_KEY,
    keys::WAIT,
    keys::DELAY,
    keys::RETRY_TOPIC,
    keys::FIRST_POP_TIME,
    keys::POP_CK,
    keys::REAL_TOPIC,
    keys::REAL_QID,
    keys::TRAN_MSG,
    keys::PGROUP,
    keys::MIN_OFFSET,
    keys::MAX_OFFSET,
    keys::BUYER_ID,
    keys::ORIGIN_MESSAGE_ID,
    keys::TRANSFER_FLAG,
    keys::CORRECTION_FLAG,
    keys::MQ2_FLAG,
    keys::RECONSUME_TIME,
    keys::MSG_REGION,
    keys::TRACE_ON,
    keys::EXTEND_UNIQ_INFO,
    keys::MAX_RECONSUME_TIMES,
    keys::CONSUME_START_TIME,
    keys::INNER_NUM,
    keys::INNER_BASE,
    keys::DUP_INFO,
    keys::CHECK_IMMUNITY_TIME_IN_SECONDS,
    keys::TRAN_PREPARED_QUEUE_OFFSET,
    keys::TRANSACTION_ID,
    keys::TRANSACTION_CHECK_TIMES,
    keys::INSTANCE_ID,
    keys::CORRELATION_ID,
    keys::REPLY_TO_CLIENT,
    keys::TTL,
    keys::ARRIVE_TIME,
    keys::PUSH_REPLY_TIME,
    keys::CLUSTER,
    keys::MSG_TYPE,
    keys::SHARDING_KEY,
    keys::LITE_TOPIC,
    keys::TIMER_DELIVER_MS,
    keys::TIMER_DELAY_SEC,
    keys::TIMER_DELAY_MS,
    keys::TIMER_OUT_MS,
    keys::TIMER_DEL_UNIQKEY,
    keys::DLQ_ORIGIN_TOPIC,
    keys::DLQ_ORIGIN_MESSAGE_ID,
    TRACE_CONTEXT,
    BORN_HOST,
];

const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
const BORN_HOST: &str = "__BORNHOST";
/// Most user properties one message may carry (RocketMQ's proxy's limit).
const MAX_USER_PROPERTIES: usize = 128;

/// The name a resource (topic, group) gives, empty when absent.
pub fn resource_name(resource: Option<&v2::Resource>) -> String {
    resource.map(|r| r.name.clone()).unwrap_or_default()
}

pub fn is_system_key(key: &str) -> bool {
    SYSTEM_KEYS.contains(&key)
}

/// What a 5.x message becomes for the send path.
pub struct Outgoing {
    pub properties: String,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub kind: MessageType,
}

/// Why a 5.x message cannot be stored; the status the client gets.
pub type Refused = Option<v2::Status>;

pub fn outgoing(
    message: &v2::Message,
    producer_group: &str,
    now_ms: i64,
) -> Result<Outgoing, Refused> {
    let system = message.system_properties.clone().unwrap_or_default();
    if message.user_properties.len() > MAX_USER_PROPERTIES {
        return Err(status::of(
            v2::Code::MessagePropertiesTooLarge,
            format!("at most {MAX_USER_PROPERTIES} user properties"),
        ));
    }
    let mut properties = MessageProperties::default();
    let mut put = |key: &str, value: &str| -> Result<(), Refused> {
        properties
            .put(key, value)
            .map_err(|e| status::of(v2::Code::IllegalMessagePropertyKey, e.to_string()))
    };
    let mut user: Vec<(&String, &String)> = message.user_properties.iter().collect();
    user.sort();
    for (key, value) in user {
        if key.is_empty() || is_system_key(key) {
            return Err(status::of(
                v2::Code::IllegalMessagePropertyKey,
                format!("property key `{key}` is reserved"),
            ));
        }
        put(key, value)?;
    }
    if let Some(tag) = system.tag.as_deref().filter(|t| !t.is_empty()) {
        if tag.trim().is_empty() || tag.contains('|') {
            return Err(status::of(
                v2::Code::IllegalMessageTag,
                format!("tag `{tag}` is not valid"),
            ));
        }
        put(keys::TAGS, tag)?;
    }
    if !system.keys.is_empty() {
        if system.keys.iter().any(|k| k.trim().is_empty()) {
            return Err(status::of(
                v2::Code::IllegalMessageKey,
                "a message key is blank",
            ));
        }
        put(keys::KEYS, &system.keys.join(keys::KEY_SEPARATOR))?;
    }
    if system.message_id.trim().is_empty() {
        return Err(status::of(
            v2::Code::IllegalMessageId,
            "the message has no message id",
        ));
    }
    put(keys::UNIQ_KEY, &system.message_id)?;
    let kind = MessageType::try_from(system.message_type).unwrap_or(MessageType::Normal);
    let mut sys_flag = 0;
    if kind == MessageType::Transaction {
        put(keys::TRAN_MSG, "true")?;
        sys_flag |= msg_flag::TRANSACTION_PREPARED_TYPE;
        if let Some(recovery) = &system.orphaned_transaction_recovery_duration {
            put(
                keys::CHECK_IMMUNITY_TIME_IN_SECONDS,
                &recovery.seconds.max(0).to_string(),
            )?;
        }
    }
    if let Some(deliver) = &system.delivery_timestamp {
        let deliver_ms = timestamp_ms(deliver);
        if deliver_ms > now_ms {
            put(keys::TIMER_DELIVER_MS, &deliver_ms.to_string())?;
        }
    }
    if let Some(group) = system.message_group.as_deref().filter(|g| !g.is_empty()) {
        if group.len() >= 64 || group.trim().is_empty() {
            return Err(status::of(
                v2::Code::IllegalMessageGroup,
                format!("message group `{group}` is not valid"),
            ));
        }
        put(keys::SHARDING_KEY, group)?;
    }
    if let Some(lite_topic) = system.lite_topic.as_deref() {
        message::topic::validate_lite_topic(lite_topic)
            .map_err(|e| status::of(v2::Code::IllegalLiteTopic, e.to_string()))?;
        put(keys::LITE_TOPIC, lite_topic)?;
    }
    if let Some(trace) = system.trace_context.as_deref().filter(|t| !t.is_empty()) {
        put(TRACE_CONTEXT, trace)?;
    }
    if !system.born_host.is_empty() {
        put(BORN_HOST, &system.born_host)?;
    }
    put(keys::PGROUP, producer_group)?;
    if system.body_encoding == Encoding::Gzip as i32 {
        sys_flag |= msg_flag::COMPRESSED;
    }
    Ok(Outgoing {
        properties: properties.encode(),
        sys_flag,
        born_timestamp_ms: system.born_timestamp.as_ref().map_or(now_ms, timestamp_ms),
        kind,
    })
}

/// The body's digest as RocketMQ's proxy sends it: MD5 in upper-case hex. The clients
/// disagree on how a CRC32 is written (Java upper-case hex, Go lower-case hex, Node.js
/// decimal) and Node.js's PushConsumer discards a message whose digest it reads as wrong,
/// while every client that checks MD5 expects the proxy's form.
fn body_digest(body: &[u8]) -> v2::Digest {
    use md5::{Digest, Md5};
    let checksum = Md5::digest(body)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    v2::Digest {
        r#type: DigestType::Md5 as i32,
        checksum,
    }
}

/// A stored message as a 5.x client reads it; `topic` is the topic the client asked for
/// (a redelivered message is stored in the group's retry topic). `receipt_handle`: what
/// settles a popped message (none for a pulled one).
pub fn incoming(
    view: &MessageView<'_>,
    topic: &str,
    receipt_handle: Option<String>,
) -> v2::Message {
    let mut user_properties = HashMap::new();
    for (key, value) in message::properties::iter(view.properties()) {
        if !is_system_key(key) && !key.starts_with(keys::CRC32) {
            user_properties.insert(key.to_owned(), value.to_owned());
        }
    }
    let body = view.body();
    let kind = message_type_of(view);
    let property = |key: &str| view.property(key).map(str::to_owned);
    let compressed = view.sys_flag() & msg_flag::COMPRESSED != 0;
    let system = v2::SystemProperties {
        tag: view.tags().filter(|t| !t.is_empty()).map(str::to_owned),
        keys: view
            .keys()
            .map(|k| {
                k.split(keys::KEY_SEPARATOR)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        message_id: view
            .uniq_key()
            .map(str::to_owned)
            .unwrap_or_else(|| view.offset_msg_id()),
        body_digest: Some(body_digest(body)),
        body_encoding: if compressed {
            Encoding::Gzip
        } else {
            Encoding::Identity
        } as i32,
        message_type: kind as i32,
        born_timestamp: Some(timestamp(view.born_timestamp_ms())),
        born_host: property(BORN_HOST).unwrap_or_else(|| view.born_host().to_string()),
        store_timestamp: Some(timestamp(view.store_timestamp_ms())),
        store_host: view.store_host().to_string(),
        delivery_timestamp: property(keys::TIMER_DELIVER_MS)
            .and_then(|ms| ms.parse().ok())
            .map(timestamp),
        receipt_handle,
        queue_id: view.queue_id(),
        queue_offset: Some(view.queue_offset()),
        invisible_duration: None,
        delivery_attempt: Some(view.reconsume_times().saturating_add(1)),
        message_group: property(keys::SHARDING_KEY),
        trace_context: property(TRACE_CONTEXT),
        orphaned_transaction_recovery_duration: None,
        dead_letter_queue: match (
            property(keys::DLQ_ORIGIN_TOPIC),
            property(keys::DLQ_ORIGIN_MESSAGE_ID),
        ) {
            (Some(topic), Some(message_id)) => Some(v2::DeadLetterQueue { topic, message_id }),
            _ => None,
        },
        lite_topic: property(keys::LITE_TOPIC),
        priority: None,
    };
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: topic.to_owned(),
        }),
        user_properties,
        system_properties: Some(system),
        body: body.to_vec(),
    }
}

fn message_type_of(view: &MessageView<'_>) -> MessageType {
    if view.property(keys::TRAN_MSG) == Some("true") {
        MessageType::Transaction
    } else if [
        keys::DELAY,
        keys::TIMER_DELIVER_MS,
        keys::TIMER_DELAY_SEC,
        keys::TIMER_DELAY_MS,
    ]
    .iter()
    .any(|k| view.property(k).is_some())
    {
        MessageType::Delay
    } else if view.property(keys::SHARDING_KEY).is_some() {
        MessageType::Fifo
    } else if view.property(keys::LITE_TOPIC).is_some() {
        MessageType::Lite
    } else {
        MessageType::Normal
    }
}

/// A request's filter as the remoting pop and pull take it: (expression type, expression);
/// none, or an empty one, is every tag.
pub fn filter_of(filter: Option<&v2::FilterExpression>) -> (&'static str, String) {
    match filter {
        Some(filter) if filter.r#type == v2::FilterType::Sql as i32 => {
            ("SQL92", filter.expression.clone())
        }
        Some(filter) if !filter.expression.is_empty() => ("TAG", filter.expression.clone()),
        _ => ("TAG", "*".to_owned()),
    }
}

pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn timestamp_ms(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos / 1_000_000))
}

pub fn duration_ms(d: &prost_types::Duration) -> i64 {
    d.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(d.nanos / 1_000_000))
}

pub fn duration(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{append_record, NewMessage};
    use crate::store_facade::RecordBatch;

    #[test]
    fn a_body_digest_is_md5_in_upper_case_hex_as_the_proxy_sends_it() {
        let mut batch = RecordBatch::default();
        let message = NewMessage {
            topic: "T",
            queue_id: 0,
            body: b"hello",
            flag: 0,
            properties: "UNIQ_KEY\u{1}C0A8010A30390000000000000001\u{2}",
            sys_flag: 0,
            born_timestamp_ms: 1_700_000_000_000,
            born_host: "127.0.0.1:5000".parse().expect("an address"),
            reconsume_times: 0,
        };
        let store_host = "127.0.0.1:10911".parse().expect("an address");
        append_record(&mut batch, &message, store_host).expect("a record");
        let view = MessageView::parse(batch.records()[0]).expect("a stored message");
        let incoming = incoming(&view, "T", Some("handle".to_owned()));
        let digest = incoming
            .system_properties
            .and_then(|system| system.body_digest)
            .expect("a body digest");
        assert_eq!(digest.r#type, DigestType::Md5 as i32);
        assert_eq!(digest.checksum, "5D41402ABC4B2A76B9719D911017C592");
    }
}
