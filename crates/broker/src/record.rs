//! Turning a message a client sent (or one being re-sent for retry) into the stored-message
//! record the store appends: the broker's properties are added (`CLUSTER`, a `UNIQ_KEY`
//! when the client gave none), transient properties dropped, and the record encoded with
//! placeholder offsets the store patches.

use std::net::{IpAddr, SocketAddr};

use message::properties::{self, keys, MAX_PROPERTIES_LEN, PROPERTY_SEPARATOR};
use message::{encode_into, EncodeError, MessageDraft, MessageProperties};

use crate::store_facade::RecordBatch;

/// One message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub body: &'a [u8],
    pub flag: i32,
    /// Encoded properties as the client sent them.
    pub properties: &'a str,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub reconsume_times: i32,
}

/// Why a message cannot become a stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("message properties are {0} bytes; at most {MAX_PROPERTIES_LEN} are allowed")]
    PropertiesTooLong(usize),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Properties as stored: the client's string with `CLUSTER` and (if missing) `UNIQ_KEY`
/// appended. The client's bytes stay as they are when possible, so what a consumer reads
/// back is what the producer wrote.
pub fn complete_properties(
    client: &str,
    cluster_name: &str,
    new_uniq_id: impl FnOnce() -> String,
) -> Result<String, RecordError> {
    let mut stored = if client.contains(keys::TRANSIENT_PREFIX) {
        let mut parsed = MessageProperties::parse(client);
        parsed.remove_transient();
        parsed.encode()
    } else {
        client.to_owned()
    };
    let has_uniq_key = properties::find(&stored, keys::UNIQ_KEY).is_some_and(|v| !v.is_empty());
    let has_cluster = properties::find(&stored, keys::CLUSTER) == Some(cluster_name);
    if !has_cluster && properties::find(&stored, keys::CLUSTER).is_some() {
        // A client-supplied CLUSTER would shadow ours; rebuild without it.
        let mut parsed = MessageProperties::parse(&stored);
        parsed.remove(keys::CLUSTER);
        stored = parsed.encode();
    }
    let mut append = |key: &str, value: &str| {
        if !stored.is_empty() && !stored.ends_with(PROPERTY_SEPARATOR) {
            stored.push(PROPERTY_SEPARATOR);
        }
        stored.push_str(key);
        stored.push(properties::NAME_VALUE_SEPARATOR);
        stored.push_str(value);
        stored.push(PROPERTY_SEPARATOR);
    };
    if !has_uniq_key {
        append(keys::UNIQ_KEY, &new_uniq_id());
    }
    if !has_cluster {
        append(keys::CLUSTER, cluster_name);
    }
    if stored.len() > MAX_PROPERTIES_LEN {
        return Err(RecordError::PropertiesTooLong(stored.len()));
    }
    Ok(stored)
}

/// Encodes one record into `batch`. `properties` must already be complete.
pub fn append_record(
    batch: &mut RecordBatch,
    message: &NewMessage<'_>,
    store_host: SocketAddr,
) -> Result<(), RecordError> {
    append_record_of_transaction(batch, message, store_host, 0)
}

/// [`append_record`] for a committed transactional message, whose record names the
/// CommitLog offset of its half message (RocketMQ's PREPAREDTRANSACTIONOFFSET field).
pub fn append_record_of_transaction(
    batch: &mut RecordBatch,
    message: &NewMessage<'_>,
    store_host: SocketAddr,
    prepared_transaction_offset: i64,
) -> Result<(), RecordError> {
    let draft = MessageDraft {
        topic: message.topic,
        body: message.body,
        flag: message.flag,
        properties: message.properties,
        queue_id: message.queue_id,
        sys_flag: message.sys_flag,
        born_timestamp_ms: message.born_timestamp_ms,
        born_host: ipv4_if_possible(message.born_host),
        store_host,
        reconsume_times: message.reconsume_times,
        prepared_transaction_offset,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp_ms: 0,
    };
    encode_into(&draft, batch.buffer())?;
    batch.finish_record();
    Ok(())
}

/// C++ consumers can only read IPv4 host fields; an IPv4 client reached over a dual-stack
/// socket shows up as `::ffff:a.b.c.d`, which we store as the IPv4 address it is.
pub fn ipv4_if_possible(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::MessageView;

    const CLUSTER: &str = "C1";

    #[test]
    fn cluster_and_uniq_key_are_added_and_client_bytes_kept() {
        let client = properties::encode([("TAGS", "TagA"), ("KEYS", "k1")]);
        let stored = complete_properties(&client, CLUSTER, || "ID1".into()).unwrap();
        assert!(stored.starts_with(&client));
        let parsed = MessageProperties::parse(&stored);
        assert_eq!(parsed.get("CLUSTER"), Some("C1"));
        assert_eq!(parsed.get("UNIQ_KEY"), Some("ID1"));
        assert_eq!(parsed.get("TAGS"), Some("TagA"));
    }

    #[test]
    fn an_existing_uniq_key_is_kept_and_transient_keys_dropped() {
        let client = properties::encode([("UNIQ_KEY", "MINE"), ("__RMQ.TRANSIENT.X", "1")]);
        let stored = complete_properties(&client, CLUSTER, || "NEW".into()).unwrap();
        let parsed = MessageProperties::parse(&stored);
        assert_eq!(parsed.get("UNIQ_KEY"), Some("MINE"));
        assert!(parsed.get("__RMQ.TRANSIENT.X").is_none());
        // No trailing separator from the client: one is inserted.
        let bare = "TAGS\u{1}A";
        let stored = complete_properties(bare, CLUSTER, || "N".into()).unwrap();
        assert_eq!(MessageProperties::parse(&stored).get("TAGS"), Some("A"));
        // A client's own CLUSTER value is replaced by ours.
        let spoofed = properties::encode([("CLUSTER", "evil")]);
        let stored = complete_properties(&spoofed, CLUSTER, || "N".into()).unwrap();
        assert_eq!(MessageProperties::parse(&stored).get("CLUSTER"), Some("C1"));
    }

    #[test]
    fn oversized_properties_are_refused() {
        let huge = properties::encode([("big", "x".repeat(MAX_PROPERTIES_LEN).as_str())]);
        assert!(complete_properties(&huge, CLUSTER, || "N".into()).is_err());
    }

    #[test]
    fn records_decode_with_the_given_fields() {
        let mut batch = RecordBatch::default();
        let message = NewMessage {
            topic: "T",
            queue_id: 3,
            body: b"hello",
            flag: 7,
            properties: "TAGS\u{1}A\u{2}",
            sys_flag: 0,
            born_timestamp_ms: 42,
            born_host: "[::ffff:10.0.0.1]:5000".parse().unwrap(),
            reconsume_times: 2,
        };
        append_record(&mut batch, &message, "127.0.0.1:10911".parse().unwrap()).unwrap();
        let records = batch.records();
        let view = MessageView::parse(records[0]).unwrap();
        assert_eq!(view.topic(), "T");
        assert_eq!(view.queue_id(), 3);
        assert_eq!(view.body(), b"hello");
        assert_eq!(view.flag(), 7);
        assert_eq!(view.reconsume_times(), 2);
        assert_eq!(view.born_host(), "10.0.0.1:5000".parse().unwrap());
        assert_eq!(view.tags(), Some("A"));
    }
}
