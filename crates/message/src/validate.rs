//! Topic and consumer-group naming rules, as RocketMQ 5.x brokers enforce them
//! (`TopicValidator`).
//!
//! Error messages reproduce Java's remarks because clients show them to users.

use crate::topic::{is_dlq_topic, is_retry_topic};

pub const TOPIC_MAX_LEN: usize = 127;
/// Retry and DLQ topics may be longer: they embed a group name.
pub const RETRY_OR_DLQ_TOPIC_MAX_LEN: usize = 255;
/// Groups are at most 120 so that `%RETRY%<group>` stays a legal topic.
pub const GROUP_MAX_LEN: usize = 120;

/// Why a topic or group name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("The specified topic is blank.")]
    TopicBlank,
    #[error(
        "The specified topic: {0}, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    )]
    TopicIllegalChars(String),
    #[error("The specified topic: {0}, is longer than topic max length: {TOPIC_MAX_LEN}")]
    TopicTooLong(String),
    #[error("The specified topic is DLQ or Retry topic: {0}, and it's longer than topic max length: {RETRY_OR_DLQ_TOPIC_MAX_LEN}")]
    RetryOrDlqTopicTooLong(String),
    #[error("The specified group is blank.")]
    GroupBlank,
    #[error(
        "The specified group: {0}, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    )]
    GroupIllegalChars(String),
    #[error("The specified group: {0}, is longer than group max length: {GROUP_MAX_LEN}")]
    GroupTooLong(String),
}

/// Whether every character is in `^[%|a-zA-Z0-9_-]$`.
pub fn has_only_legal_chars(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// Java's `isBlank`: empty or only whitespace.
fn is_blank(name: &str) -> bool {
    name.trim().is_empty()
}

/// Checks a topic name like the broker does before creating or sending to it.
pub fn validate_topic(topic: &str) -> Result<(), NameError> {
    if is_blank(topic) {
        return Err(NameError::TopicBlank);
    }
    if !has_only_legal_chars(topic) {
        return Err(NameError::TopicIllegalChars(topic.to_owned()));
    }
    // Only ASCII passed the charset check, so bytes equal Java's UTF-16 length.
    if is_retry_topic(topic) || is_dlq_topic(topic) {
        if topic.len() > RETRY_OR_DLQ_TOPIC_MAX_LEN {
            return Err(NameError::RetryOrDlqTopicTooLong(topic.to_owned()));
        }
    } else if topic.len() > TOPIC_MAX_LEN {
        return Err(NameError::TopicTooLong(topic.to_owned()));
    }
    Ok(())
}

/// Checks a producer or consumer group name.
pub fn validate_group(group: &str) -> Result<(), NameError> {
    if is_blank(group) {
        return Err(NameError::GroupBlank);
    }
    if !has_only_legal_chars(group) {
        return Err(NameError::GroupIllegalChars(group.to_owned()));
    }
    if group.len() > GROUP_MAX_LEN {
        return Err(NameError::GroupTooLong(group.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::{dlq_topic, group_of_retry_or_dlq_topic, retry_topic};

    #[test]
    fn legal_topics_pass() {
        for topic in [
            "TopicTest",
            "a",
            "%RETRY%group-1",
            "A|B_c-9",
            &"x".repeat(127),
        ] {
            assert_eq!(validate_topic(topic), Ok(()), "{topic}");
        }
    }

    #[test]
    fn illegal_topics_fail_with_java_remarks() {
        assert_eq!(validate_topic(""), Err(NameError::TopicBlank));
        assert_eq!(validate_topic("  "), Err(NameError::TopicBlank));
        for topic in ["a b", "a.b", "topic/1", "tópico", "a\u{1}"] {
            assert!(
                matches!(validate_topic(topic), Err(NameError::TopicIllegalChars(_))),
                "{topic}"
            );
        }
        let long = "x".repeat(128);
        let err = validate_topic(&long).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("The specified topic: {long}, is longer than topic max length: 127")
        );
        assert_eq!(
            validate_topic("a b").unwrap_err().to_string(),
            "The specified topic: a b, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        );
    }

    #[test]
    fn retry_and_dlq_topics_may_reach_255() {
        let retry = retry_topic(&"g".repeat(248));
        assert_eq!(retry.len(), 255);
        assert_eq!(validate_topic(&retry), Ok(()));
        let too_long = dlq_topic(&"g".repeat(251));
        assert!(matches!(
            validate_topic(&too_long),
            Err(NameError::RetryOrDlqTopicTooLong(_))
        ));
        assert_eq!(group_of_retry_or_dlq_topic("%RETRY%cg"), Some("cg"));
        assert_eq!(group_of_retry_or_dlq_topic("%DLQ%cg"), Some("cg"));
        assert_eq!(group_of_retry_or_dlq_topic("cg"), None);
    }

    #[test]
    fn groups_are_limited_to_120() {
        assert_eq!(validate_group("please_rename_unique_group_name"), Ok(()));
        assert_eq!(validate_group(&"g".repeat(120)), Ok(()));
        assert!(matches!(
            validate_group(&"g".repeat(121)),
            Err(NameError::GroupTooLong(_))
        ));
        assert_eq!(validate_group(""), Err(NameError::GroupBlank));
        assert!(matches!(
            validate_group("g g"),
            Err(NameError::GroupIllegalChars(_))
        ));
    }
}
