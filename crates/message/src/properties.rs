//! The message properties string (`key 0x01 value 0x02 ...`) and the well-known keys.
//!
//! Parsing follows the Java client: split on 0x02, keep a segment only if it holds a 0x01
//! with a non-empty key and a non-empty value; a later duplicate key wins. Encoding writes
//! a trailing 0x02 after the last pair, like Java, so bytes we re-encode match theirs.

use std::collections::HashMap;

/// Separates a key from its value.
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Ends a key/value pair.
pub const PROPERTY_SEPARATOR: char = '\u{2}';
/// The stored PROPERTIES length is an int16.
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// Well-known property keys (RocketMQ `MessageConst`).
pub mod keys {
    pub const TAGS: &str = "TAGS";
    /// Space-separated business keys, indexed for QUERY_MESSAGE.
    pub const KEYS: &str = "KEYS";
    pub const KEY_SEPARATOR: &str = " ";
    /// Client-generated unique id; also the send response `transactionId`.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const WAIT: &str = "WAIT";
    /// Delay level 1..=18.
    pub const DELAY: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// POP: when a message was first popped, and the receipt handle a client attached.
    pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
    pub const POP_CK: &str = "POP_CK";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QID: &str = "REAL_QID";
    /// `"true"` marks a transactional half message.
    pub const TRAN_MSG: &str = "TRAN_MSG";
    pub const PGROUP: &str = "PGROUP";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const BUYER_ID: &str = "BUYER_ID";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
    pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
    pub const MQ2_FLAG: &str = "MQ2_FLAG";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MSG_REGION: &str = "MSG_REGION";
    pub const TRACE_ON: &str = "TRACE_ON";
    pub const EXTEND_UNIQ_INFO: &str = "EXTEND_UNIQ_INFO";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    pub const INNER_NUM: &str = "INNER_NUM";
    pub const INNER_BASE: &str = "INNER_BASE";
    pub const DUP_INFO: &str = "DUP_INFO";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    pub const TTL: &str = "TTL";
    pub const ARRIVE_TIME: &str = "ARRIVE_TIME";
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    pub const CLUSTER: &str = "CLUSTER";
    pub const MSG_TYPE: &str = "MSG_TYPE";
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// The lite topic (RocketMQ 5.5) a message of a `LITE` parent topic belongs to.
    pub const LITE_TOPIC: &str = "__LITE_TOPIC";
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// The slot time a timer message is delivered at (its deliver time rounded to the
    /// timer's precision), set by the broker when it puts the message aside.
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    /// On a recall marker: `<topic>+<UNIQ_KEY>` of the timer message it cancels.
    pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    /// Optional stored CRC property; its value follows the `#` in the same key.
    pub const CRC32: &str = "__CRC32#";
    /// Keys with this prefix are never stored.
    pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";
}

/// Iterates the valid `(key, value)` pairs of a properties string in order, without copying.
pub fn iter(properties: &str) -> Pairs<'_> {
    Pairs { rest: properties }
}

/// The pairs of a properties string; see [`iter`].
///
/// The broker looks properties up several times per message, so this finds the two ASCII
/// separators with `memchr`'s vectorised byte search rather than `str::split`'s char
/// searcher (a byte position of an ASCII separator is always a char boundary).
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        // Each round consumes one segment, so the loop ends with the string.
        while !self.rest.is_empty() {
            let bytes = self.rest.as_bytes();
            let end = memchr::memchr(PROPERTY_SEPARATOR as u8, bytes).unwrap_or(bytes.len());
            let segment = self.rest.get(..end).unwrap_or_default();
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            let Some(at) = memchr::memchr(NAME_VALUE_SEPARATOR as u8, segment.as_bytes()) else {
                continue;
            };
            let key = segment.get(..at).unwrap_or_default();
            let value = segment.get(at + 1..).unwrap_or_default();
            if !key.is_empty() && !value.is_empty() {
                return Some((key, value));
            }
        }
        None
    }
}

/// The value of `key`; the last occurrence wins, as in Java's map-based parse.
pub fn find<'a>(properties: &'a str, key: &str) -> Option<&'a str> {
    iter(properties)
        .filter(|(k, _)| *k == key)
        .last()
        .map(|(_, v)| v)
}

/// Parses a properties string into a map.
pub fn decode(properties: &str) -> HashMap<String, String> {
    iter(properties)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Encodes pairs into a properties string, Java style (trailing separator). Pairs with an
/// empty key or value are skipped because no reader would keep them.
pub fn encode<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out = String::new();
    for (key, value) in pairs {
        push_pair(&mut out, key, value);
    }
    out
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    if key.is_empty() || value.is_empty() {
        return;
    }
    out.push_str(key);
    out.push(NAME_VALUE_SEPARATOR);
    out.push_str(value);
    out.push(PROPERTY_SEPARATOR);
}

/// Why a key or value cannot be stored in a properties string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    #[error("property key is empty")]
    EmptyKey,
    #[error("property `{0}` contains a reserved separator character (0x01/0x02)")]
    ReservedCharacter(String),
}

/// An ordered property set that keeps the order in which keys first appeared, so a broker
/// that adds `CLUSTER` or `UNIQ_KEY` leaves the client's bytes otherwise unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    pairs: Vec<(String, String)>,
}

impl MessageProperties {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a properties string; duplicate keys collapse to the last value.
    pub fn parse(properties: &str) -> Self {
        let mut parsed = Self::new();
        for (key, value) in iter(properties) {
            parsed.put_unchecked(key, value);
        }
        parsed
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, rejecting text that would corrupt the encoding. An empty value
    /// removes the key, since readers drop empty values anyway.
    pub fn put(&mut self, key: &str, value: &str) -> Result<(), PropertyError> {
        if key.is_empty() {
            return Err(PropertyError::EmptyKey);
        }
        for text in [key, value] {
            if text.contains([NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR]) {
                return Err(PropertyError::ReservedCharacter(key.to_owned()));
            }
        }
        if value.is_empty() {
            self.remove(key);
        } else {
            self.put_unchecked(key, value);
        }
        Ok(())
    }

    fn put_unchecked(&mut self, key: &str, value: &str) {
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some((_, existing)) => value.clone_into(existing),
            None => self.pairs.push((key.to_owned(), value.to_owned())),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(index).1)
    }

    /// Drops the `__RMQ.TRANSIENT.` keys that must never be stored.
    pub fn remove_transient(&mut self) {
        self.pairs
            .retain(|(k, _)| !k.starts_with(keys::TRANSIENT_PREFIX));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The encoded string (check its length against [`MAX_PROPERTIES_LEN`] before storing).
    pub fn encode(&self) -> String {
        encode(self.iter())
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        self.pairs.iter().cloned().collect()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for MessageProperties {
    fn from_iter<T: IntoIterator<Item = (&'a str, &'a str)>>(pairs: T) -> Self {
        let mut set = Self::new();
        for (key, value) in pairs {
            if !key.is_empty() && !value.is_empty() {
                set.put_unchecked(key, value);
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn byte_scan_finds_the_pairs_str_split_finds(text in "[ab\u{1}\u{2}é]{0,24}") {
            let by_split: Vec<(&str, &str)> = text
                .split(PROPERTY_SEPARATOR)
                .filter_map(|segment| segment.split_once(NAME_VALUE_SEPARATOR))
                .filter(|(key, value)| !key.is_empty() && !value.is_empty())
                .collect();
            prop_assert_eq!(iter(&text).collect::<Vec<_>>(), by_split);
        }
    }

    #[test]
    fn encodes_like_java_with_trailing_separator() {
        let encoded = encode([("TAGS", "TagA"), ("KEYS", "k1 k2")]);
        assert_eq!(encoded, "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}");
        assert_eq!(encode([("A", ""), ("", "x")]), "");
    }

    #[test]
    fn parses_and_skips_malformed_segments() {
        let text = "TAGS\u{1}TagA\u{2}broken\u{2}\u{1}nokey\u{2}novalue\u{1}\u{2}KEYS\u{1}k\u{2}TAGS\u{1}TagB";
        let map = decode(text);
        assert_eq!(map.len(), 2);
        assert_eq!(map["TAGS"], "TagB", "later duplicate wins");
        assert_eq!(map["KEYS"], "k");
        assert_eq!(find(text, "TAGS"), Some("TagB"));
        assert_eq!(find(text, "broken"), None);
        assert_eq!(find("", "TAGS"), None);
    }

    #[test]
    fn value_may_contain_name_separator_after_the_first() {
        // Java splits at the first 0x01 only.
        assert_eq!(find("K\u{1}a\u{1}b\u{2}", "K"), Some("a\u{1}b"));
    }

    #[test]
    fn ordered_set_keeps_first_position_and_rejects_separators() {
        let mut props = MessageProperties::parse("A\u{1}1\u{2}B\u{1}2\u{2}");
        props.put("A", "3").unwrap();
        props.put("CLUSTER", "c").unwrap();
        assert_eq!(props.encode(), "A\u{1}3\u{2}B\u{1}2\u{2}CLUSTER\u{1}c\u{2}");
        assert_eq!(
            props.put("X", "a\u{2}b"),
            Err(PropertyError::ReservedCharacter("X".into()))
        );
        assert_eq!(props.put("", "v"), Err(PropertyError::EmptyKey));
        props.put("B", "").unwrap();
        assert!(!props.contains("B"));
        assert_eq!(props.remove("A").as_deref(), Some("3"));
        assert_eq!(props.len(), 1);
    }

    #[test]
    fn transient_keys_are_dropped() {
        let mut props: MessageProperties = [("__RMQ.TRANSIENT.x", "1"), ("TAGS", "t")]
            .into_iter()
            .collect();
        props.remove_transient();
        assert_eq!(props.encode(), "TAGS\u{1}t\u{2}");
    }
}
