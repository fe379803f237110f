//! The property rewrites of a delayed message: into the schedule topic when it is sent
//! (the real topic and queue id kept in `REAL_TOPIC` / `REAL_QID`, `DELAY` set to the
//! level used) and out of it when it is due (those three removed; everything else,
//! `UNIQ_KEY` included, kept so consumers see the message id the producer saw).

use std::net::SocketAddr;

use message::properties::{keys, PropertyError, MAX_PROPERTIES_LEN};
use message::topic::TRANS_HALF_TOPIC;
use message::{MessageProperties, MessageView};

use crate::record::{append_record, NewMessage};
use crate::store_facade::RecordBatch;

use message::delay::requested_level;
use message::DelayLevels;

/// Why a message cannot go into, or come out of, the schedule topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivertError {
    #[error("cannot schedule the message: {0}")]
    Property(#[from] PropertyError),
    #[error(
        "message properties are {0} bytes once scheduled; at most {MAX_PROPERTIES_LEN} are allowed"
    )]
    PropertiesTooLong(usize),
    #[error("no REAL_TOPIC property")]
    NoRealTopic,
    #[error("no valid REAL_QID property")]
    NoRealQueue,
}

/// Where a delayed message waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diverted {
    /// The level it waits at (after clamping).
    pub level: i32,
    /// Its queue in the schedule topic.
    pub queue_id: i32,
    /// Its properties as stored there.
    pub properties: String,
}

/// Diverts a message whose (complete, stored) properties carry a `DELAY` level; `None` when
/// they ask for no delay.
pub fn by_delay_property(
    levels: &DelayLevels,
    properties: &str,
    real_topic: &str,
    real_queue_id: i32,
) -> Result<Option<Diverted>, DivertError> {
    match levels.clamp(requested_level(properties)) {
        Some(level) => at_level(properties, level, real_topic, real_queue_id).map(Some),
        None => Ok(None),
    }
}

/// Diverts a message to wait at `level` (already clamped into the known levels).
pub fn at_level(
    properties: &str,
    level: i32,
    real_topic: &str,
    real_queue_id: i32,
) -> Result<Diverted, DivertError> {
    let mut parsed = MessageProperties::parse(properties);
    let level_text = level.to_string();
    let queue_id_text = real_queue_id.to_string();
    for (key, value) in [
        (keys::DELAY, level_text.as_str()),
        (keys::REAL_TOPIC, real_topic),
        (keys::REAL_QID, queue_id_text.as_str()),
    ] {
        parsed.put(key, value)?;
    }
    let encoded = parsed.encode();
    if encoded.len() > MAX_PROPERTIES_LEN {
        return Err(DivertError::PropertiesTooLong(encoded.len()));
    }
    Ok(Diverted {
        level,
        queue_id: DelayLevels::queue_id(level),
        properties: encoded,
    })
}

/// Where a due message goes, and its properties there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub queue_id: i32,
    pub properties: String,
}

/// The message a due schedule entry becomes; an error when its properties do not say
/// where it belongs.
pub fn out(properties: &str) -> Result<Delivery, DivertError> {
    let mut parsed = MessageProperties::parse(properties);
    let topic = parsed
        .remove(keys::REAL_TOPIC)
        .filter(|t| !t.is_empty())
        .ok_or(DivertError::NoRealTopic)?;
    let queue_id = parsed
        .remove(keys::REAL_QID)
        .and_then(|q| q.trim().parse::<i32>().ok())
        .filter(|q| *q >= 0)
        .ok_or(DivertError::NoRealQueue)?;
    parsed.remove(keys::DELAY);
    Ok(Delivery {
        topic,
        queue_id,
        properties: parsed.encode(),
    })
}

/// Encodes a due message (delayed or timer) into `batch` as a new record under its real
/// topic and queue; an error when it can never be delivered.
pub fn append_delivery(
    batch: &mut RecordBatch,
    view: &MessageView<'_>,
    store_host: SocketAddr,
) -> Result<(), Undeliverable> {
    let delivery = out(view.properties())?;
    if delivery.topic == TRANS_HALF_TOPIC {
        // Half messages are never scheduled; one claiming to be is not delivered.
        return Err(Undeliverable::HalfMessage);
    }
    let message = NewMessage {
        topic: &delivery.topic,
        queue_id: delivery.queue_id,
        body: view.body(),
        flag: view.flag(),
        properties: &delivery.properties,
        sys_flag: view.sys_flag(),
        born_timestamp_ms: view.born_timestamp_ms(),
        born_host: view.born_host(),
        reconsume_times: view.reconsume_times(),
    };
    Ok(append_record(batch, &message, store_host)?)
}

/// Why a due message can never be delivered (it is passed over, with this logged).
#[derive(Debug, thiserror::Error)]
pub enum Undeliverable {
    #[error(transparent)]
    Divert(#[from] DivertError),
    #[error("real topic {TRANS_HALF_TOPIC} is not deliverable")]
    HalfMessage,
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::properties;

    fn levels() -> DelayLevels {
        "1s 2s 3s".parse().unwrap()
    }

    #[test]
    fn a_delayed_message_goes_in_and_comes_out_with_its_own_properties() {
        let sent = properties::encode([
            ("TAGS", "TagA"),
            ("KEYS", "k1 k2"),
            ("DELAY", "2"),
            ("UNIQ_KEY", "ID1"),
            ("user", "v"),
        ]);
        let diverted = by_delay_property(&levels(), &sent, "Orders", 3)
            .unwrap()
            .unwrap();
        assert_eq!((diverted.level, diverted.queue_id), (2, 1));
        let waiting = MessageProperties::parse(&diverted.properties);
        assert_eq!(waiting.get("REAL_TOPIC"), Some("Orders"));
        assert_eq!(waiting.get("REAL_QID"), Some("3"));

        let delivery = out(&diverted.properties).unwrap();
        assert_eq!((delivery.topic.as_str(), delivery.queue_id), ("Orders", 3));
        let delivered = MessageProperties::parse(&delivery.properties);
        for key in ["DELAY", "REAL_TOPIC", "REAL_QID"] {
            assert_eq!(delivered.get(key), None, "{key}");
        }
        for (key, value) in [
            ("TAGS", "TagA"),
            ("KEYS", "k1 k2"),
            ("UNIQ_KEY", "ID1"),
            ("user", "v"),
        ] {
            assert_eq!(delivered.get(key), Some(value), "{key}");
        }
    }

    #[test]
    fn levels_above_the_last_are_clamped_and_none_is_no_delay() {
        let too_high = properties::encode([("DELAY", "40")]);
        let diverted = by_delay_property(&levels(), &too_high, "T", 0)
            .unwrap()
            .unwrap();
        assert_eq!((diverted.level, diverted.queue_id), (3, 2));
        assert_eq!(
            MessageProperties::parse(&diverted.properties).get("DELAY"),
            Some("3")
        );
        for none in ["0", "-1", "soon"] {
            let props = properties::encode([("DELAY", none)]);
            assert_eq!(by_delay_property(&levels(), &props, "T", 0).unwrap(), None);
        }
    }

    #[test]
    fn an_entry_without_its_real_place_is_an_error() {
        assert!(out(&properties::encode([("REAL_QID", "1")])).is_err());
        assert!(out(&properties::encode([("REAL_TOPIC", "T")])).is_err());
        assert!(out(&properties::encode([
            ("REAL_TOPIC", "T"),
            ("REAL_QID", "-2")
        ]))
        .is_err());
    }
}
