//! The topic names RocketMQ reserves: system topics, the schedule and transaction topics,
//! and each consumer group's `%RETRY%` and `%DLQ%` topics. Every crate names them through
//! this module, so a reserved name is spelled once.

/// Template topic producers fall back to so brokers auto-create topics.
pub const AUTO_CREATE_TOPIC_KEY_TOPIC: &str = "TBW102";
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Where RocketMQ 5 timer messages (`TIMER_DELIVER_MS` / `TIMER_DELAY_SEC` /
/// `TIMER_DELAY_MS`) wait: queue 0 holds the messages, queue 1 the recall markers.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
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
/// Replies of request-reply travel through `{cluster}_REPLY_TOPIC`, which every broker of
/// the cluster creates at start-up (repliers send to it; requesters never read it).
pub const REPLY_TOPIC_POSTFIX: &str = "REPLY_TOPIC";

/// The reply topic of `cluster`.
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}_{REPLY_TOPIC_POSTFIX}")
}

/// POP consumption's checkpoints and acknowledgements live in `rmq_sys_REVIVE_LOG_<cluster>`.
pub const REVIVE_TOPIC_PREFIX: &str = "rmq_sys_REVIVE_LOG_";

/// The revive topic of `cluster`.
pub fn revive_topic(cluster: &str) -> String {
    format!("{REVIVE_TOPIC_PREFIX}{cluster}")
}

/// Where popped messages not acknowledged in time are stored again for their group:
/// `%RETRY%<group>_<topic>`, the naming every 5.x client understands.
pub fn pop_retry_topic(group: &str, topic: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}_{topic}")
}

/// The newer naming some brokers use (`enableRetryTopicV2`): `%RETRY%<group>+<topic>`.
pub fn pop_retry_topic_v2(group: &str, topic: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}+{topic}")
}

/// Any topic starting with this is a system topic.
pub const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";

/// Prefix of a consumer group's retry topic (`%RETRY%<group>`).
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic (`%DLQ%<group>`).
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

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
    TIMER_TOPIC,
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

/// Whether the broker reserves `topic` (users may not create or delete it).
pub fn is_system_topic(topic: &str) -> bool {
    SYSTEM_TOPICS.contains(&topic) || topic.starts_with(SYSTEM_TOPIC_PREFIX)
}

/// Whether clients are forbidden to send to `topic` (answer NO_PERMISSION with
/// [`not_allowed_send_remark`]).
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    NOT_ALLOWED_SEND_TOPICS.contains(&topic) || topic.starts_with(REVIVE_TOPIC_PREFIX)
}

/// The remark Java brokers send when a client sends to a forbidden topic.
pub fn not_allowed_send_remark(topic: &str) -> String {
    format!("Sending message to topic[{topic}] is forbidden.")
}

/// The remark Java brokers send when asked to create or delete a system topic.
pub fn system_topic_conflict_remark(topic: &str) -> String {
    format!("The topic[{topic}] is conflict with system topic.")
}

/// Consumer groups the broker itself uses (its progress through system topics).
pub const SYSTEM_GROUP_PREFIX: &str = "CID_RMQ_SYS_";

/// Whether `group` is one of the broker's own consumer groups (RocketMQ's
/// `isSysConsumerGroup`).
pub fn is_system_group(group: &str) -> bool {
    group.starts_with(SYSTEM_GROUP_PREFIX)
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

/// Where a lite topic's messages are stored: a queue (id 0) of its own, a light message
/// queue named `%LMQ%$<parent>$<lite topic>` as in RocketMQ 5.5. `$` never occurs in a
/// topic or lite topic name, so the name parses back.
pub const LMQ_PREFIX: &str = "%LMQ%$";
/// Longest lite topic name, in bytes (RocketMQ's proxy's `maxLiteTopicSize`).
pub const MAX_LITE_TOPIC_SIZE: usize = 64;

pub fn lmq_name(parent: &str, lite_topic: &str) -> String {
    format!("{LMQ_PREFIX}{parent}${lite_topic}")
}

/// The parent topic and lite topic of an LMQ name.
pub fn lmq_parts(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(LMQ_PREFIX)?.split_once('$')
}

/// A lite topic name RocketMQ's proxy would refuse (`ILLEGAL_LITE_TOPIC`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lite topic `{0}` is not valid: 1 to {MAX_LITE_TOPIC_SIZE} characters of [a-zA-Z0-9_-]")]
pub struct IllegalLiteTopic(pub String);

pub fn validate_lite_topic(lite_topic: &str) -> Result<(), IllegalLiteTopic> {
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if lite_topic.is_empty()
        || lite_topic.len() > MAX_LITE_TOPIC_SIZE
        || !lite_topic.chars().all(legal)
    {
        return Err(IllegalLiteTopic(lite_topic.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite_topics_live_in_lmqs_whose_names_parse_back() {
        let name = lmq_name("Parent", "user-42_a");
        assert_eq!(name, "%LMQ%$Parent$user-42_a");
        assert_eq!(lmq_parts(&name), Some(("Parent", "user-42_a")));
        assert_eq!(lmq_parts("Parent"), None);
        assert!(validate_lite_topic("user-42_a").is_ok());
        for bad in ["", "a$b", "a b", "ü", &"x".repeat(65)] {
            assert!(validate_lite_topic(bad).is_err(), "{bad}");
        }
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
