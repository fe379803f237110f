//! Recall handles (RocketMQ 5.3): what a timer message's send answer carries and
//! RECALL_MESSAGE names back — `v1 <topic> <brokerName> <slot time + 1> <UNIQ_KEY>`,
//! URL-safe base64. The broker writes and reads them; a client reads the broker name to
//! know where to send the recall.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;

/// The handle of the timer message `uniq_key` of `topic` waiting in `slot_ms` on `broker_name`.
pub fn encode(topic: &str, broker_name: &str, slot_ms: i64, uniq_key: &str) -> String {
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
pub fn decode(handle: &str) -> Result<RecallHandle, &'static str> {
    const INVALID: &str = "recall handle is invalid";
    let raw = URL_SAFE
        .decode(handle.trim().as_bytes())
        .map_err(|_| INVALID)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recall_handle_round_trips_and_bad_ones_are_refused() {
        let handle = encode("Orders", "broker-a", 15_000, "U1");
        let parsed = decode(&handle).unwrap();
        assert_eq!(parsed.topic, "Orders");
        assert_eq!(parsed.broker_name, "broker-a");
        assert_eq!(parsed.timestamp_ms, 15_001);
        assert_eq!(parsed.uniq_key, "U1");
        for bad in [
            "",
            "!!!",
            &URL_SAFE.encode("v2 a b 1 c"),
            &URL_SAFE.encode("v1 a b"),
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
