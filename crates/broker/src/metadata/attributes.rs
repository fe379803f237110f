//! Topic attributes (RocketMQ 5): `message.type`, `queue.type` and `cleanup.policy`, set by
//! UPDATE_AND_CREATE_TOPIC's `attributes` field as alterations (`+message.type=FIFO` adds
//! or changes, `-message.type` removes), checked against the allowed values, and stored with
//! the topic (so they replicate with it in a broker group and reach the name servers).
//!
//! Consumer group attributes (RocketMQ 5.5) work alike, sent in the group config's
//! `attributes` map (`"+lite.bind.topic": "Chats"`, `"-lite.bind.topic": ""`); the broker
//! takes the ones it honours: `lite.bind.topic` and `lite.sub.client.quota`.

use std::collections::BTreeMap;

/// One attribute RocketMQ knows: its allowed values and whether an existing topic or group
/// may change it.
struct Attribute {
    name: &'static str,
    values: Values,
    changeable: bool,
}

enum Values {
    OneOf(&'static [&'static str]),
    TopicName,
    Range(i64, i64),
}

impl Values {
    fn accept(&self, value: &str) -> bool {
        match self {
            Values::OneOf(values) => values.contains(&value),
            Values::TopicName => message::validate_topic(value).is_ok(),
            Values::Range(min, max) => value
                .parse::<i64>()
                .is_ok_and(|n| (*min..=*max).contains(&n)),
        }
    }
}

/// RocketMQ 5's `TopicAttributes.ALL`.
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: "message.type",
        values: Values::OneOf(&["NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED", "LITE"]),
        changeable: true,
    },
    Attribute {
        name: "queue.type",
        values: Values::OneOf(&["BatchCQ", "SimpleCQ"]),
        changeable: false,
    },
    Attribute {
        name: "cleanup.policy",
        values: Values::OneOf(&["DELETE", "COMPACTION"]),
        changeable: false,
    },
];

/// The parent topic a lite consumer group is bound to.
pub const LITE_BIND_TOPIC: &str = "lite.bind.topic";
/// How many lite topics each client of the group may subscribe (-1: no limit).
pub const LITE_SUB_CLIENT_QUOTA: &str = "lite.sub.client.quota";

/// The part of RocketMQ 5.5's `SubscriptionGroupAttributes.ALL` this broker honours.
const GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: LITE_BIND_TOPIC,
        values: Values::TopicName,
        changeable: true,
    },
    Attribute {
        name: LITE_SUB_CLIENT_QUOTA,
        values: Values::Range(-1, i32::MAX as i64),
        changeable: true,
    },
];

/// The group's `lite.bind.topic`, if it is bound.
pub fn lite_bind_topic(attributes: &BTreeMap<String, String>) -> Option<&str> {
    attributes.get(LITE_BIND_TOPIC).map(String::as_str)
}

/// The group's `lite.sub.client.quota`: `None` for no limit, the broker's default when
/// unset.
pub fn lite_client_quota(attributes: &BTreeMap<String, String>) -> Option<usize> {
    match attributes
        .get(LITE_SUB_CLIENT_QUOTA)
        .map(|q| q.parse::<i64>())
    {
        Some(Ok(quota)) if quota < 0 => None,
        Some(Ok(quota)) => Some(usize::try_from(quota).unwrap_or(usize::MAX)),
        _ => Some(crate::lite::CLIENT_QUOTA as usize),
    }
}

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
/// lite (a lite topic), else normal.
///
/// One pass over the properties: this runs for every message put with metrics on.
pub fn message_type_of(properties: &str) -> &'static str {
    use message::properties::{iter, keys};
    let (mut transaction, mut delayed, mut sharded, mut lite) = (false, false, false, false);
    for (key, value) in iter(properties) {
        match key {
            // The last occurrence wins, as in Java's map-based parse.
            keys::TRAN_MSG => transaction = value == "true",
            keys::DELAY | keys::TIMER_DELIVER_MS | keys::TIMER_DELAY_SEC | keys::TIMER_DELAY_MS => {
                delayed = true
            }
            keys::SHARDING_KEY => sharded = true,
            keys::LITE_TOPIC => lite = true,
            _ => {}
        }
    }
    if transaction {
        "TRANSACTION"
    } else if delayed {
        "DELAY"
    } else if sharded {
        "FIFO"
    } else if lite {
        "LITE"
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
/// `expected` type. A `MIXED` topic takes every kind but lite messages, which need a
/// `LITE` parent (RocketMQ 5.5).
pub fn check_message_type(expected: &str, actual: &str) -> Result<(), MessageTypeMismatch> {
    if expected == actual || (expected == "MIXED" && actual != "LITE") {
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
    alter_in(ATTRIBUTES, current, alterations)
}

/// The attributes a consumer group has after the alterations a group config carries
/// (`"+key": value` adds or changes, `"-key"` removes) are applied to `current` (`None`:
/// the group is being created).
pub fn alter_group(
    current: Option<&BTreeMap<String, String>>,
    alterations: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, AttributeError> {
    let text: Vec<String> = alterations
        .iter()
        .map(|(key, value)| {
            if key.starts_with('+') {
                format!("{key}={value}")
            } else {
                key.clone()
            }
        })
        .collect();
    alter_in(GROUP_ATTRIBUTES, current, Some(&text.join(",")))
}

fn alter_in(
    table: &'static [Attribute],
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
            let known = known(table, key)?;
            if value.contains(',') || !known.values.accept(value) {
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
            if !known(table, rest)?.changeable {
                return Err(AttributeError::Unchangeable(rest.to_owned()));
            }
            if attributes.remove(rest).is_none() {
                return Err(AttributeError::RemoveMissing(rest.to_owned()));
            }
        }
    }
    Ok(attributes)
}

fn known(table: &'static [Attribute], key: &str) -> Result<&'static Attribute, AttributeError> {
    table
        .iter()
        .find(|a| a.name == key)
        .ok_or_else(|| AttributeError::Unsupported(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_attributes_are_altered_as_rocketmqs_tools_send_them() {
        let alterations = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let created = alter_group(
            None,
            &alterations(&[
                ("+lite.bind.topic", "Chats"),
                ("+lite.sub.client.quota", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(lite_bind_topic(&created), Some("Chats"));
        assert_eq!(lite_client_quota(&created), Some(5));
        let unbound =
            alter_group(Some(&created), &alterations(&[("-lite.bind.topic", "")])).unwrap();
        assert_eq!(lite_bind_topic(&unbound), None);
        assert_eq!(lite_client_quota(&unbound), Some(5));
        assert_eq!(
            alter_group(Some(&created), &BTreeMap::new()).unwrap(),
            created,
            "no alterations keep what the group has"
        );
        for bad in [
            &[("+lite.sub.client.quota", "many")][..],
            &[("+lite.bind.topic", "a b")],
            &[("+no.such.key", "1")],
            &[("lite.bind.topic", "Chats")],
        ] {
            assert!(alter_group(None, &alterations(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            lite_client_quota(&alterations(&[("lite.sub.client.quota", "-1")])),
            None
        );
        assert_eq!(lite_client_quota(&BTreeMap::new()), Some(2000));
    }

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
