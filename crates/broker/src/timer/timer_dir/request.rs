//! What a message asks of the timer, and how it waits: the deliver time from its
//! properties (RocketMQ's order: `TIMER_DELAY_SEC`, then `TIMER_DELAY_MS`, then
//! `TIMER_DELIVER_MS`), the refusals RocketMQ answers, the rewrite into the timer topic,
//! and recall handles and markers.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use message::properties::{keys, PropertyError, MAX_PROPERTIES_LEN};
use message::MessageProperties;

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

/// Whether a message's properties ask for the timer at all.
pub fn is_timer_message(properties: &MessageProperties) -> bool {
    [keys::TIMER_DELAY_SEC, keys::TIMER_DELAY_MS, keys::TIMER_DELIVER_MS]
        .iter()
        .any(|key| properties.get(key).is_some())
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
        return Ok(Some(now_ms.saturating_add(number(sec)?.saturating_mul(1000))));
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
    let mut parsed = MessageProperties::parse(properties);
    if !is_timer_message(&parsed) {
        return Ok(None);
    }
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

/// What cancels the message `uniq_key` of `topic` (`TIMER_DEL_UNIQKEY`).
pub fn recall_key(topic: &str, uniq_key: &str) -> String {
    format!("{topic}+{uniq_key}")
}

/// A recall handle as RocketMQ 5.3 hands it to the producer in the send response:
/// `v1 <topic> <brokerName> <slot time + 1> <UNIQ_KEY>`, URL-safe base64.
pub fn recall_handle(topic: &str, broker_name: &str, slot_ms: i64, uniq_key: &str) -> String {
    let raw = format!(
        "v1 {topic} {broker_name} {} {uniq_key}",
        slot_ms.saturating_add(1)
    );
    URL_SAFE.encode(raw.as_bytes())
}

/// A decoded recall handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallHandle {
    pub topic: String,
    pub broker_name: String,
    pub timestamp_ms: i64,
    pub uniq_key: String,
}

/// Decodes a recall handle; the error is the remark RocketMQ answers.
pub fn parse_recall_handle(handle: &str) -> Result<RecallHandle, &'static str> {
    const INVALID: &str = "recall handle is invalid";
    let raw = URL_SAFE.decode(handle.trim().as_bytes()).map_err(|_| INVALID)?;
    let raw = String::from_utf8(raw).map_err(|_| INVALID)?;
    let items: Vec<&str> = raw.split(' ').collect();
    if items.len() < 5 || items[0] != "v1" {
        return Err(INVALID);
    }
    Ok(RecallHandle {
        topic: items[1].to_owned(),
        broker_name: items[2].to_owned(),
        // RocketMQ reads a bad number as -1, which its time check then refuses.
        timestamp_ms: items[3].parse().unwrap_or(-1),
        uniq_key: items[4].to_owned(),
    })
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
        let sent = properties::encode([("TIMER_DELAY_SEC", "5"), ("UNIQ_KEY", "U1"), ("TAGS", "a")]);
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
        let aside = put_aside(&both, &settings(), 10_000, "T", 0).unwrap().unwrap();
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
                Err(TimerRefusal::Illegal { max_delay_ms: 60_000 }),
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
    fn a_recall_handle_round_trips_and_names_the_messages_slot() {
        let handle = recall_handle("Orders", "broker-a", 15_000, "U1");
        let parsed = parse_recall_handle(&handle).unwrap();
        assert_eq!(parsed.topic, "Orders");
        assert_eq!(parsed.broker_name, "broker-a");
        assert_eq!(parsed.timestamp_ms, 15_001);
        assert_eq!(parsed.uniq_key, "U1");
        let marker = recall_marker_properties(&parsed, &settings(), Some("PG")).unwrap();
        let marker = MessageProperties::parse(&marker);
        assert_eq!(marker.get("TIMER_OUT_MS"), Some("15000"));
        assert_eq!(marker.get("TIMER_DEL_UNIQKEY"), Some("Orders+U1"));
        for bad in ["", "!!!", &URL_SAFE.encode("v2 a b 1 c"), &URL_SAFE.encode("v1 a b")] {
            assert!(parse_recall_handle(bad).is_err(), "{bad}");
        }
    }
}
