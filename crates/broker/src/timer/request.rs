//! What a message asks of the timer, and how it waits: the deliver time from its
//! properties (RocketMQ's order: `TIMER_DELAY_SEC`, then `TIMER_DELAY_MS`, then
//! `TIMER_DELIVER_MS`), the refusals RocketMQ answers, the rewrite into the timer topic,
//! and recall markers (the handles are `remoting::recall_handle`).

use message::properties::{keys, PropertyError, MAX_PROPERTIES_LEN};
use message::MessageProperties;
use remoting::recall_handle::RecallHandle;

use super::TimerSettings;

/// Why a timer message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerRefusal {
    /// `timerWheelEnable=false` (RocketMQ answers SYSTEM_ERROR).
    #[error("accurate timer message is not enabled, timerWheelEnable is false")]
    NotEnabled,
    /// A delay beyond `timerMaxDelaySec`, a time that is not a number, or a recall marker
    /// for a time already past (RocketMQ answers MESSAGE_ILLEGAL).
    #[error("timer message illegal, the delay time should not be bigger than the max delay {max_delay_ms}ms; or if set del msg, the delay time should be bigger than the current time")]
    Illegal { max_delay_ms: i64 },
    #[error("cannot put the timer message aside: {0}")]
    Property(#[from] PropertyError),
    #[error(
        "message properties are {0} bytes once put aside; at most {MAX_PROPERTIES_LEN} are allowed"
    )]
    PropertiesTooLong(usize),
}

/// Whether a message's (encoded) properties ask for the timer at all: a scan of the
/// string, so a send without timer properties never parses them into a map.
pub fn is_timer_message(properties: &str) -> bool {
    [
        keys::TIMER_DELAY_SEC,
        keys::TIMER_DELAY_MS,
        keys::TIMER_DELIVER_MS,
    ]
    .iter()
    .any(|key| message::properties::find(properties, key).is_some())
}

/// The deliver time a timer message asks for; `None` when it asks for none.
fn requested_deliver_ms(
    properties: &MessageProperties,
    now_ms: i64,
    settings: &TimerSettings,
) -> Result<Option<i64>, TimerRefusal> {
    let illegal = || TimerRefusal::Illegal {
        max_delay_ms: settings.max_delay_ms,
    };
    let number = |value: &str| value.trim().parse::<i64>().map_err(|_| illegal());
    if let Some(sec) = properties.get(keys::TIMER_DELAY_SEC) {
        return Ok(Some(
            now_ms.saturating_add(number(sec)?.saturating_mul(1000)),
        ));
    }
    if let Some(ms) = properties.get(keys::TIMER_DELAY_MS) {
        return Ok(Some(now_ms.saturating_add(number(ms)?)));
    }
    match properties.get(keys::TIMER_DELIVER_MS) {
        Some(at) => Ok(Some(number(at)?)),
        None => Ok(None),
    }
}

/// A timer message as it waits: its slot and its properties in the timer topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutAside {
    pub slot_ms: i64,
    pub properties: String,
}

/// Puts a message (its complete, stored properties) aside until its deliver time; `None`
/// when it asks for no timer or its time has come already (it is delivered at once, as
/// RocketMQ does).
pub fn put_aside(
    properties: &str,
    settings: &TimerSettings,
    now_ms: i64,
    real_topic: &str,
    real_queue_id: i32,
) -> Result<Option<PutAside>, TimerRefusal> {
    if !is_timer_message(properties) {
        return Ok(None);
    }
    let mut parsed = MessageProperties::parse(properties);
    if !settings.enabled {
        return Err(TimerRefusal::NotEnabled);
    }
    let Some(deliver_ms) = requested_deliver_ms(&parsed, now_ms, settings)? else {
        return Ok(None);
    };
    if deliver_ms <= now_ms {
        return Ok(None);
    }
    if deliver_ms - now_ms > settings.max_delay_ms {
        return Err(TimerRefusal::Illegal {
            max_delay_ms: settings.max_delay_ms,
        });
    }
    let slot_ms = settings.slot_of(deliver_ms);
    let slot_text = slot_ms.to_string();
    let queue_id_text = real_queue_id.to_string();
    for (key, value) in [
        (keys::TIMER_OUT_MS, slot_text.as_str()),
        (keys::REAL_TOPIC, real_topic),
        (keys::REAL_QID, queue_id_text.as_str()),
    ] {
        parsed.put(key, value)?;
    }
    let encoded = parsed.encode();
    if encoded.len() > MAX_PROPERTIES_LEN {
        return Err(TimerRefusal::PropertiesTooLong(encoded.len()));
    }
    Ok(Some(PutAside {
        slot_ms,
        properties: encoded,
    }))
}

/// RocketMQ's tag of a recall marker.
const RECALL_TAG: &str = "_RECALL_TAG_";

/// What cancels the message `uniq_key` of `topic` (`TIMER_DEL_UNIQKEY`).
pub fn recall_key(topic: &str, uniq_key: &str) -> String {
    format!("{topic}+{uniq_key}")
}

/// The properties of the marker that recalls `handle`'s message: its key and its slot.
pub fn recall_marker_properties(
    handle: &RecallHandle,
    settings: &TimerSettings,
    producer_group: Option<&str>,
) -> Result<String, TimerRefusal> {
    let mut parsed = MessageProperties::default();
    let slot_text = settings.slot_of(handle.timestamp_ms).to_string();
    let key = recall_key(&handle.topic, &handle.uniq_key);
    parsed.put(keys::TIMER_DEL_UNIQKEY, &key)?;
    parsed.put(keys::UNIQ_KEY, &handle.uniq_key)?;
    parsed.put(keys::TIMER_OUT_MS, &slot_text)?;
    parsed.put(keys::REAL_TOPIC, &handle.topic)?;
    parsed.put(keys::TAGS, RECALL_TAG)?;
    if let Some(group) = producer_group.filter(|g| !g.is_empty()) {
        parsed.put(keys::PGROUP, group)?;
    }
    let encoded = parsed.encode();
    if encoded.len() > MAX_PROPERTIES_LEN {
        return Err(TimerRefusal::PropertiesTooLong(encoded.len()));
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::properties;

    fn settings() -> TimerSettings {
        TimerSettings {
            enabled: true,
            max_delay_ms: 60_000,
            precision_ms: 1000,
        }
    }

    #[test]
    fn a_delay_puts_the_message_aside_in_its_slot_with_its_real_place() {
        let sent =
            properties::encode([("TIMER_DELAY_SEC", "5"), ("UNIQ_KEY", "U1"), ("TAGS", "a")]);
        let aside = put_aside(&sent, &settings(), 10_500, "Orders", 3)
            .unwrap()
            .unwrap();
        assert_eq!(aside.slot_ms, 15_000);
        let stored = MessageProperties::parse(&aside.properties);
        assert_eq!(stored.get("TIMER_OUT_MS"), Some("15000"));
        assert_eq!(stored.get("REAL_TOPIC"), Some("Orders"));
        assert_eq!(stored.get("REAL_QID"), Some("3"));
        assert_eq!(stored.get("TAGS"), Some("a"));
        // Seconds win over milliseconds and an absolute time, as in RocketMQ.
        let both = properties::encode([("TIMER_DELAY_SEC", "2"), ("TIMER_DELIVER_MS", "99999")]);
        let aside = put_aside(&both, &settings(), 10_000, "T", 0)
            .unwrap()
            .unwrap();
        assert_eq!(aside.slot_ms, 11_000);
    }

    #[test]
    fn past_times_go_at_once_and_bad_or_too_long_delays_are_refused() {
        let past = properties::encode([("TIMER_DELIVER_MS", "9000")]);
        assert_eq!(put_aside(&past, &settings(), 10_000, "T", 0).unwrap(), None);
        let none = properties::encode([("TAGS", "a")]);
        assert_eq!(put_aside(&none, &settings(), 10_000, "T", 0).unwrap(), None);
        for bad in [("TIMER_DELAY_MS", "soon"), ("TIMER_DELAY_SEC", "61")] {
            let props = properties::encode([bad]);
            assert_eq!(
                put_aside(&props, &settings(), 10_000, "T", 0),
                Err(TimerRefusal::Illegal {
                    max_delay_ms: 60_000
                }),
                "{bad:?}"
            );
        }
        let off = TimerSettings {
            enabled: false,
            ..settings()
        };
        let props = properties::encode([("TIMER_DELAY_MS", "10")]);
        assert_eq!(
            put_aside(&props, &off, 10_000, "T", 0),
            Err(TimerRefusal::NotEnabled)
        );
    }

    #[test]
    fn a_recall_marker_names_the_messages_key_and_slot() {
        let handle = RecallHandle {
            topic: "Orders".into(),
            broker_name: "broker-a".into(),
            timestamp_ms: 15_001,
            uniq_key: "U1".into(),
        };
        let marker = recall_marker_properties(&handle, &settings(), Some("PG")).unwrap();
        let marker = MessageProperties::parse(&marker);
        assert_eq!(marker.get("TIMER_OUT_MS"), Some("15000"));
        assert_eq!(marker.get("TIMER_DEL_UNIQKEY"), Some("Orders+U1"));
    }
}
