//! Topic and consumer-group naming rules, as RocketMQ 5.x brokers enforce them
//! (`TopicValidator`), plus the reserved and system topic names.
//!
//! Error messages reproduce Java's remarks because clients show them to users.

/// Template topic producers fall back to so brokers auto-create topics.
pub const AUTO_CREATE_TOPIC_KEY_TOPIC: &str = "TBW102";
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
pub const BENCHMARK_TOPIC: &str = "BenchmarkTest";
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
pub const OFFSET_MOVED_EVENT_TOPIC: &str = "OFFSET_MOVED_EVENT";
pub const ROCKSDB_OFFSET_TOPIC: &str = "CHECKPOINT_TOPIC";
pub const TOPIC_CONFIG_SYNC_TOPIC: &str = "RMQ_SYS_TOPIC_CONFIG_SYNC";
pub const CONSUMER_OFFSET_SYNC_TOPIC: &str = "RMQ_SYS_CONSUMER_OFFSET_SYNC";
pub const DELAY_OFFSET_SYNC_TOPIC: &str = "RMQ_SYS_DELAY_OFFSET_SYNC";
pub const SUBSCRIPTION_GROUP_SYNC_TOPIC: &str = "RMQ_SYS_SUBSCRIPTION_GROUP_SYNC";
pub const MESSAGE_MODE_SYNC_TOPIC: &str = "RMQ_SYS_MESSAGE_MODE_SYNC";
pub const TIMER_METRICS_SYNC_TOPIC: &str = "RMQ_SYS_TIMER_METRICS_SYNC";
/// Any topic starting with this is a system topic.
pub const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";

/// Prefix of a consumer group's retry topic (`%RETRY%<group>`).
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic (`%DLQ%<group>`).
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

pub const TOPIC_MAX_LEN: usize = 127;
/// Retry and DLQ topics may be longer: they embed a group name.
pub const RETRY_OR_DLQ_TOPIC_MAX_LEN: usize = 255;
/// Groups are at most 120 so that `%RETRY%<group>` stays a legal topic.
pub const GROUP_MAX_LEN: usize = 120;

/// Topics the broker keeps for itself.
pub const SYSTEM_TOPICS: &[&str] = &[
    AUTO_CREATE_TOPIC_KEY_TOPIC,
    SCHEDULE_TOPIC,
    BENCHMARK_TOPIC,
    TRANS_HALF_TOPIC,
    TRACE_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT_TOPIC,
    ROCKSDB_OFFSET_TOPIC,
    TOPIC_CONFIG_SYNC_TOPIC,
    CONSUMER_OFFSET_SYNC_TOPIC,
    DELAY_OFFSET_SYNC_TOPIC,
    SUBSCRIPTION_GROUP_SYNC_TOPIC,
    MESSAGE_MODE_SYNC_TOPIC,
    TIMER_METRICS_SYNC_TOPIC,
];

/// System topics clients may not send to (TBW102, BenchmarkTest and the trace topic are
/// system topics that clients do send to).
pub const NOT_ALLOWED_SEND_TOPICS: &[&str] = &[
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT_TOPIC,
    TOPIC_CONFIG_SYNC_TOPIC,
    CONSUMER_OFFSET_SYNC_TOPIC,
    DELAY_OFFSET_SYNC_TOPIC,
    SUBSCRIPTION_GROUP_SYNC_TOPIC,
    MESSAGE_MODE_SYNC_TOPIC,
    TIMER_METRICS_SYNC_TOPIC,
];

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

/// Whether the broker reserves `topic` (users may not create or delete it).
pub fn is_system_topic(topic: &str) -> bool {
    SYSTEM_TOPICS.contains(&topic) || topic.starts_with(SYSTEM_TOPIC_PREFIX)
}

/// Whether clients are forbidden to send to `topic` (answer NO_PERMISSION with
/// [`not_allowed_send_remark`]).
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    NOT_ALLOWED_SEND_TOPICS.contains(&topic)
}

/// The remark Java brokers send when a client sends to a forbidden topic.
pub fn not_allowed_send_remark(topic: &str) -> String {
    format!("Sending message to topic[{topic}] is forbidden.")
}

/// The remark Java brokers send when asked to create or delete a system topic.
pub fn system_topic_conflict_remark(topic: &str) -> String {
    format!("The topic[{topic}] is conflict with system topic.")
}

pub fn is_retry_topic(topic: &str) -> bool {
    topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
}

pub fn is_dlq_topic(topic: &str) -> bool {
    topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
}

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// The group a retry or DLQ topic belongs to.
pub fn group_of_retry_or_dlq_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(RETRY_GROUP_TOPIC_PREFIX)
        .or_else(|| topic.strip_prefix(DLQ_GROUP_TOPIC_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn system_and_forbidden_topics() {
        assert!(is_system_topic("TBW102"));
        assert!(is_system_topic("SCHEDULE_TOPIC_XXXX"));
        assert!(is_system_topic("rmq_sys_anything"));
        assert!(!is_system_topic("RMQ_SYS_anything_else"));
        assert!(!is_system_topic("TopicTest"));
        assert!(is_not_allowed_send_topic("RMQ_SYS_TRANS_HALF_TOPIC"));
        assert!(!is_not_allowed_send_topic("TBW102"));
        assert!(
            !is_not_allowed_send_topic("%RETRY%cg"),
            "send-back writes to retry topics"
        );
        assert_eq!(
            not_allowed_send_remark("SCHEDULE_TOPIC_XXXX"),
            "Sending message to topic[SCHEDULE_TOPIC_XXXX] is forbidden."
        );
    }
}
