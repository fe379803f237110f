//! Topic attributes (RocketMQ 5): `message.type`, `queue.type` and `cleanup.policy`, set by
//! UPDATE_AND_CREATE_TOPIC's `attributes` field as alterations (`+message.type=FIFO` adds
//! or changes, `-message.type` removes), checked against the allowed values, and stored with
//! the topic (so they replicate with it in a broker group and reach the name servers).

use std::collections::BTreeMap;

/// One attribute RocketMQ knows: its allowed values and whether an existing topic may
/// change it.
struct Attribute {
    name: &'static str,
    values: &'static [&'static str],
    changeable: bool,
}

/// RocketMQ 5's `TopicAttributes.ALL`.
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: "message.type",
        values: &["NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED"],
        changeable: true,
    },
    Attribute {
        name: "queue.type",
        values: &["BatchCQ", "SimpleCQ"],
        changeable: false,
    },
    Attribute {
        name: "cleanup.policy",
        values: &["DELETE", "COMPACTION"],
        changeable: false,
    },
];

/// The `message.type` a topic without the attribute has (RocketMQ's default).
pub const DEFAULT_MESSAGE_TYPE: &str = "NORMAL";

/// A topic's `message.type`.
pub fn message_type_of_topic(attributes: &BTreeMap<String, String>) -> &str {
    attributes
        .get("message.type")
        .map_or(DEFAULT_MESSAGE_TYPE, String::as_str)
}

/// The kind of message these properties make, as RocketMQ 5 reads it: transactional
/// (`TRAN_MSG=true`), delayed (a `DELAY` level or a timer property), FIFO (a sharding key),
/// else normal.
///
/// One pass over the properties: this runs for every message put with metrics on.
pub fn message_type_of(properties: &str) -> &'static str {
    use message::properties::{iter, keys};
    let (mut transaction, mut delayed, mut sharded) = (false, false, false);
    for (key, value) in iter(properties) {
        match key {
            // The last occurrence wins, as in Java's map-based parse.
            keys::TRAN_MSG => transaction = value == "true",
            keys::DELAY | keys::TIMER_DELIVER_MS | keys::TIMER_DELAY_SEC | keys::TIMER_DELAY_MS => {
                delayed = true
            }
            keys::SHARDING_KEY => sharded = true,
            _ => {}
        }
    }
    if transaction {
        "TRANSACTION"
    } else if delayed {
        "DELAY"
    } else if sharded {
        "FIFO"
    } else {
        "NORMAL"
    }
}

/// A message whose kind the topic's `message.type` does not take; the text is RocketMQ's
/// remark.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TopicMessageType validate failed, the expected type is {expected}, but actual type is {actual}")]
pub struct MessageTypeMismatch {
    pub expected: String,
    pub actual: String,
}

/// `enableTopicMessageTypeCheck`: whether a message of `actual` kind may go to a topic of
/// `expected` type.
pub fn check_message_type(expected: &str, actual: &str) -> Result<(), MessageTypeMismatch> {
    if expected == actual || expected == "MIXED" {
        Ok(())
    } else {
        Err(MessageTypeMismatch {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        })
    }
}

/// Most alterations one request may carry.
const MAX_ALTERATIONS: usize = 64;

/// Why an alteration is refused; the remarks are RocketMQ's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("kv string format wrong.")]
    Format,
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("value is not in set: {0}")]
    BadValue(String),
    #[error("only add attribute is supported while creating topic. key: {0}")]
    RemoveOnCreate(String),
    #[error("attempt to update an unchangeable attribute. key: {0}")]
    Unchangeable(String),
    #[error("attempt to delete a nonexistent key: {0}")]
    RemoveMissing(String),
}

/// The attributes a topic has after `alterations` (`None`: no change) are applied to
/// `current` (`None`: the topic is being created).
pub fn alter(
    current: Option<&BTreeMap<String, String>>,
    alterations: Option<&str>,
) -> Result<BTreeMap<String, String>, AttributeError> {
    let mut attributes = current.cloned().unwrap_or_default();
    let Some(text) = alterations.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(attributes);
    };
    let creating = current.is_none();
    for (index, item) in text.split(',').enumerate() {
        if index >= MAX_ALTERATIONS {
            return Err(AttributeError::Format);
        }
        let item = item.trim();
        let (add, rest) = match item.split_at_checked(1) {
            Some(("+", rest)) => (true, rest),
            Some(("-", rest)) => (false, rest),
            _ => return Err(AttributeError::Format),
        };
        if add {
            let (key, value) = rest.split_once('=').ok_or(AttributeError::Format)?;
            let known = known(key)?;
            if !known.values.contains(&value) {
                return Err(AttributeError::BadValue(value.to_owned()));
            }
            let unchanged = attributes.get(key).is_none_or(|old| old == value);
            if !creating && !known.changeable && !unchanged {
                return Err(AttributeError::Unchangeable(key.to_owned()));
            }
            attributes.insert(key.to_owned(), value.to_owned());
        } else {
            if creating {
                return Err(AttributeError::RemoveOnCreate(rest.to_owned()));
            }
            if !known(rest)?.changeable {
                return Err(AttributeError::Unchangeable(rest.to_owned()));
            }
            if attributes.remove(rest).is_none() {
                return Err(AttributeError::RemoveMissing(rest.to_owned()));
            }
        }
    }
    Ok(attributes)
}

fn known(key: &str) -> Result<&'static Attribute, AttributeError> {
    ATTRIBUTES
        .iter()
        .find(|a| a.name == key)
        .ok_or_else(|| AttributeError::Unsupported(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_kind_must_match_its_topics_type_unless_mixed() {
        use message::properties::encode;
        assert_eq!(
            message_type_of(&encode([("TRAN_MSG", "true")])),
            "TRANSACTION"
        );
        assert_eq!(
            message_type_of(&encode([("TIMER_DELAY_SEC", "3")])),
            "DELAY"
        );
        assert_eq!(message_type_of(&encode([("DELAY", "2")])), "DELAY");
        assert_eq!(message_type_of(&encode([("__SHARDINGKEY", "g")])), "FIFO");
        assert_eq!(message_type_of(&encode([("TAGS", "a")])), "NORMAL");
        assert_eq!(message_type_of_topic(&BTreeMap::new()), "NORMAL");
        assert!(check_message_type("DELAY", "DELAY").is_ok());
        assert!(check_message_type("MIXED", "FIFO").is_ok());
        assert_eq!(
            check_message_type("NORMAL", "DELAY")
                .unwrap_err()
                .to_string(),
            "TopicMessageType validate failed, the expected type is NORMAL, but actual type is DELAY"
        );
    }

    #[test]
    fn alterations_add_change_and_remove_as_rocketmq_allows() {
        let created = alter(None, Some("+message.type=FIFO,+queue.type=SimpleCQ")).unwrap();
        assert_eq!(created["message.type"], "FIFO");
        assert_eq!(alter(None, None).unwrap(), BTreeMap::new());
        let changed = alter(Some(&created), Some("+message.type=DELAY")).unwrap();
        assert_eq!(changed["message.type"], "DELAY");
        assert_eq!(changed["queue.type"], "SimpleCQ");
        let removed = alter(Some(&changed), Some("-message.type")).unwrap();
        assert!(!removed.contains_key("message.type"));
        assert_eq!(alter(Some(&created), None).unwrap(), created);

        for (current, text, error) in [
            (
                None,
                "+color=red",
                AttributeError::Unsupported("color".into()),
            ),
            (
                None,
                "+message.type=LOUD",
                AttributeError::BadValue("LOUD".into()),
            ),
            (
                None,
                "-message.type",
                AttributeError::RemoveOnCreate("message.type".into()),
            ),
            (None, "message.type=FIFO", AttributeError::Format),
            (
                Some(&created),
                "+queue.type=BatchCQ",
                AttributeError::Unchangeable("queue.type".into()),
            ),
            (
                Some(&removed),
                "-message.type",
                AttributeError::RemoveMissing("message.type".into()),
            ),
        ] {
            assert_eq!(alter(current, Some(text)), Err(error), "{text}");
        }
        assert_eq!(
            AttributeError::BadValue("LOUD".into()).to_string(),
            "value is not in set: LOUD"
        );
    }
}
