//! Messages as users build them ([`Message`]) and receive them ([`ReceivedMessage`]), and
//! the zlib body compression RocketMQ clients apply to large bodies.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::SocketAddr;

use bytes::Bytes;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use message::sysflag::{message as msg_flag, CompressionType};
use message::{keys, validate_topic, MessageView};
use remoting::body::MessageQueue;
use remoting::header::reply::ReplyMessageRequestHeader;

use crate::error::{ClientError, Result};

/// Java's `maxMessageSize` default (4 MiB): larger bodies are refused before sending.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Decompressed bodies larger than this are refused (a tiny zlib stream can expand to
/// gigabytes; a broker never stores a body above its own 4 MiB default limit anyway).
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// Highest delay level of a default broker (`1s 5s ... 2h`, 18 levels).
pub const MAX_DELAY_LEVEL: i32 = 18;

/// A message to send.
///
/// ```
/// use client::Message;
/// let message = Message::new("Orders", "hello")
///     .with_tag("created")
///     .with_keys(["order-42"])
///     .with_property("region", "eu");
/// assert_eq!(message.tag(), Some("created"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub body: Bytes,
    /// The user flag stored with the message (Java `Message.flag`).
    pub flag: i32,
    /// Properties, system ones (TAGS, KEYS, DELAY, UNIQ_KEY) included.
    pub properties: BTreeMap<String, String>,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: BTreeMap::new(),
        }
    }

    /// Sets the tag brokers filter on (one per message).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.properties.insert(keys::TAGS.to_owned(), tag.into());
        self
    }

    /// Sets the business keys the broker indexes for lookup by key.
    pub fn with_keys<I, K>(mut self, message_keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let joined: Vec<String> = message_keys
            .into_iter()
            .map(|k| k.as_ref().trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        if joined.is_empty() {
            self.properties.remove(keys::KEYS);
        } else {
            self.properties
                .insert(keys::KEYS.to_owned(), joined.join(keys::KEY_SEPARATOR));
        }
        self
    }

    /// Adds a user property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Asks the broker to deliver the message after delay level `level` (1..=18 on a
    /// default broker: 1s 5s 10s 30s 1m ... 2h); 0 clears it.
    pub fn with_delay_level(mut self, level: i32) -> Self {
        if level <= 0 {
            self.properties.remove(keys::DELAY);
        } else {
            self.properties
                .insert(keys::DELAY.to_owned(), level.to_string());
        }
        self
    }

    /// A RocketMQ 5 timer message: delivered at `deliver_time_ms` (epoch milliseconds,
    /// `TIMER_DELIVER_MS`), to the broker's precision (1 s by default), up to its
    /// `timerMaxDelaySec` ahead. The send's result carries a recall handle.
    pub fn with_deliver_time_ms(mut self, deliver_time_ms: i64) -> Self {
        self.properties.insert(
            keys::TIMER_DELIVER_MS.to_owned(),
            deliver_time_ms.to_string(),
        );
        self
    }

    /// A RocketMQ 5 timer message delivered `delay_ms` after the broker stores it
    /// (`TIMER_DELAY_MS`).
    pub fn with_delay_ms(mut self, delay_ms: i64) -> Self {
        self.properties
            .insert(keys::TIMER_DELAY_MS.to_owned(), delay_ms.to_string());
        self
    }

    /// Sets the user flag.
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    pub fn tag(&self) -> Option<&str> {
        self.property(keys::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.property(keys::KEYS)
    }

    pub fn delay_level(&self) -> i32 {
        self.property(keys::DELAY)
            .and_then(|level| level.parse().ok())
            .unwrap_or(0)
    }

    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// The client-made unique id, once the producer has assigned one.
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(keys::UNIQ_KEY)
    }

    /// What the producer checks before sending (Java `Validators.checkMessage`).
    pub(crate) fn validate(&self, max_message_bytes: usize) -> Result<()> {
        validate_topic(&self.topic)
            .map_err(|err| ClientError::InvalidMessage(format!("topic: {err}")))?;
        if message::topic::is_not_allowed_send_topic(&self.topic) {
            return Err(ClientError::InvalidMessage(format!(
                "sending to topic `{}` is not allowed",
                self.topic
            )));
        }
        if self.body.is_empty() {
            return Err(ClientError::InvalidMessage("body is empty".into()));
        }
        if self.body.len() > max_message_bytes {
            return Err(ClientError::InvalidMessage(format!(
                "body is {} bytes; the limit is {max_message_bytes}",
                self.body.len()
            )));
        }
        let delay = self.delay_level();
        if !(0..=MAX_DELAY_LEVEL).contains(&delay) {
            return Err(ClientError::InvalidMessage(format!(
                "delay level {delay} is outside 0..={MAX_DELAY_LEVEL}"
            )));
        }
        for (key, value) in &self.properties {
            let reserved = |text: &str| text.contains(['\u{1}', '\u{2}']);
            if key.is_empty() || reserved(key) || reserved(value) {
                return Err(ClientError::InvalidMessage(format!(
                    "property `{key}` is empty or holds a reserved separator character"
                )));
            }
        }
        Ok(())
    }

    /// The properties string sent in the request header.
    pub(crate) fn encode_properties(&self) -> String {
        message::properties::encode(
            self.properties
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
    }
}

/// A message as a consumer or a query receives it (Java `MessageExt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The topic the message was sent to (for retried messages: the original topic).
    pub topic: String,
    /// The queue it was read from (for retried messages: the `%RETRY%` queue).
    pub queue: MessageQueue,
    pub queue_offset: i64,
    /// Position of the stored record in the broker's CommitLog.
    pub commit_log_offset: i64,
    /// The body, decompressed.
    pub body: Bytes,
    pub flag: i32,
    /// SYSFLAG as stored, minus the compression bits once the body was inflated.
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub store_timestamp_ms: i64,
    pub store_host: SocketAddr,
    /// How many times the message was redelivered after failed consumption.
    pub reconsume_times: i32,
    pub properties: HashMap<String, String>,
    /// The broker's id for the stored record (store host + CommitLog offset).
    pub offset_msg_id: String,
}

impl ReceivedMessage {
    /// Decodes one record read from `broker_name`. A compressed body is inflated; a body
    /// compressed with an algorithm this client lacks (LZ4, ZSTD) is kept as stored with
    /// its COMPRESSED sysflag bit still set.
    pub(crate) fn from_view(view: &MessageView<'_>, broker_name: &str) -> Result<Self, BodyError> {
        let mut sys_flag = view.sys_flag();
        let body = match CompressionType::of_sys_flag(sys_flag) {
            Some(Ok(CompressionType::Zlib)) => {
                sys_flag &= !(msg_flag::COMPRESSED | msg_flag::COMPRESSION_TYPE_MASK);
                Bytes::from(inflate(view.body(), MAX_DECOMPRESSED_BYTES)?)
            }
            _ => Bytes::copy_from_slice(view.body()),
        };
        Ok(ReceivedMessage {
            topic: view.topic().to_owned(),
            queue: MessageQueue::new(view.topic(), broker_name, view.queue_id()),
            queue_offset: view.queue_offset(),
            commit_log_offset: view.physical_offset(),
            body,
            flag: view.flag(),
            sys_flag,
            born_timestamp_ms: view.born_timestamp_ms(),
            born_host: view.born_host(),
            store_timestamp_ms: view.store_timestamp_ms(),
            store_host: view.store_host(),
            reconsume_times: view.reconsume_times(),
            properties: view.properties_map(),
            offset_msg_id: view.offset_msg_id(),
        })
    }

    /// A reply a broker pushed (PUSH_REPLY_MESSAGE_TO_CLIENT): not read from a queue, so it
    /// has no offsets, and no broker name.
    pub(crate) fn from_reply_push(
        header: &ReplyMessageRequestHeader,
        body: &[u8],
    ) -> Result<Self, BodyError> {
        let mut sys_flag = header.sys_flag;
        let body = match CompressionType::of_sys_flag(sys_flag) {
            Some(Ok(CompressionType::Zlib)) => {
                sys_flag &= !(msg_flag::COMPRESSED | msg_flag::COMPRESSION_TYPE_MASK);
                Bytes::from(inflate(body, MAX_DECOMPRESSED_BYTES)?)
            }
            _ => Bytes::copy_from_slice(body),
        };
        let unknown_host = SocketAddr::from(([0, 0, 0, 0], 0));
        Ok(ReceivedMessage {
            topic: header.topic.clone(),
            queue: MessageQueue::new(&header.topic, "", header.queue_id),
            queue_offset: 0,
            commit_log_offset: 0,
            body,
            flag: header.flag,
            sys_flag,
            born_timestamp_ms: header.born_timestamp,
            born_host: header.born_host.parse().unwrap_or(unknown_host),
            store_timestamp_ms: header.store_timestamp,
            store_host: header.store_host.parse().unwrap_or(unknown_host),
            reconsume_times: header.reconsume_times.unwrap_or(0),
            properties: message::properties::decode(header.properties.as_deref().unwrap_or("")),
            offset_msg_id: String::new(),
        })
    }

    /// The message id RocketMQ clients show: the client-made `UNIQ_KEY`, else the offset id.
    pub fn msg_id(&self) -> &str {
        self.uniq_key().unwrap_or(&self.offset_msg_id)
    }

    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    pub fn tag(&self) -> Option<&str> {
        self.property(keys::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.property(keys::KEYS)
    }

    pub fn uniq_key(&self) -> Option<&str> {
        self.property(keys::UNIQ_KEY)
    }

    /// The body as text, lossily.
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// Why a response body does not hold readable messages.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Record(#[from] message::DecodeError),
    #[error("zlib body does not inflate: {0}")]
    Inflate(std::io::Error),
    #[error("inflated body exceeds {0} bytes")]
    TooLarge(usize),
}

/// Decodes a concatenated body of stored records (pull, query and view responses).
pub(crate) fn decode_messages(
    body: &[u8],
    broker_name: &str,
) -> Result<Vec<ReceivedMessage>, BodyError> {
    message::MessageIter::new(body)
        .map(|view| ReceivedMessage::from_view(&view?, broker_name))
        .collect()
}

/// zlib at level 5, as Java's producer compresses.
pub(crate) fn deflate(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(body.len() / 2), Compression::new(5));
    encoder.write_all(body)?;
    encoder.finish()
}

/// Inflates a zlib stream, refusing output larger than `limit` bytes.
pub(crate) fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(2).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    ZlibDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(BodyError::Inflate)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::{encode, MessageDraft};

    #[test]
    fn builder_sets_rocketmq_properties() {
        let message = Message::new("T", "b")
            .with_tag("TagA")
            .with_keys(["k1", " ", "k2"])
            .with_delay_level(3);
        assert_eq!(message.keys(), Some("k1 k2"));
        assert_eq!(message.delay_level(), 3);
        let encoded = message.encode_properties();
        assert!(encoded.contains("TAGS\u{1}TagA\u{2}"));
        assert!(encoded.contains("DELAY\u{1}3\u{2}"));
        assert_eq!(message.with_delay_level(0).delay_level(), 0);
    }

    #[test]
    fn validation_follows_javas_checks() {
        assert!(Message::new("T", "x").validate(10).is_ok());
        assert!(Message::new("T", "").validate(10).is_err());
        assert!(Message::new("T", "x".repeat(11)).validate(10).is_err());
        assert!(Message::new("bad topic", "x").validate(10).is_err());
        assert!(Message::new("SCHEDULE_TOPIC_XXXX", "x")
            .validate(10)
            .is_err());
        assert!(Message::new("T", "x")
            .with_delay_level(19)
            .validate(10)
            .is_err());
        assert!(Message::new("T", "x")
            .with_property("k", "a\u{1}b")
            .validate(10)
            .is_err());
    }

    #[test]
    fn compression_round_trips_and_bombs_are_refused() {
        let body = "abc".repeat(10_000);
        let compressed = deflate(body.as_bytes()).unwrap();
        assert!(compressed.len() < body.len());
        assert_eq!(inflate(&compressed, body.len()).unwrap(), body.as_bytes());
        assert!(inflate(&compressed, body.len() - 1).is_err());
        assert!(inflate(b"not zlib", 100).is_err());
    }

    fn record(body: &[u8], sys_flag: i32, properties: &str) -> Vec<u8> {
        let draft = MessageDraft {
            topic: "T",
            queue_id: 2,
            flag: 7,
            queue_offset: 5,
            physical_offset: 1000,
            sys_flag,
            born_timestamp_ms: 1,
            born_host: "127.0.0.1:5000".parse().unwrap(),
            store_timestamp_ms: 2,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 1,
            prepared_transaction_offset: 0,
            body,
            properties,
        };
        encode(&draft).unwrap()
    }

    #[test]
    fn received_messages_inflate_zlib_bodies() {
        let body = "hello ".repeat(2000);
        let compressed = deflate(body.as_bytes()).unwrap();
        let mut bytes = record(
            &compressed,
            CompressionType::Zlib.sys_flag_bits(),
            "UNIQ_KEY\u{1}U1\u{2}TAGS\u{1}A\u{2}",
        );
        bytes.extend(record(b"plain", 0, ""));
        let messages = decode_messages(&bytes, "broker-a").unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].body, body.as_bytes());
        assert_eq!(messages[0].sys_flag & msg_flag::COMPRESSED, 0);
        assert_eq!(messages[0].msg_id(), "U1");
        assert_eq!(messages[0].tag(), Some("A"));
        assert_eq!(messages[0].queue, MessageQueue::new("T", "broker-a", 2));
        assert_eq!(messages[1].msg_id(), messages[1].offset_msg_id);
        assert_eq!(messages[1].commit_log_offset, 1000);
        assert!(decode_messages(&bytes[..bytes.len() - 1], "b").is_err());
    }
}
