//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361).

command_header! {
    /// A consumer's pull request. Bits of `sys_flag` are in
    /// [`message::sysflag::pull`].
    pub struct PullMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        max_msg_nums: i32 = "maxMsgNums",
        sys_flag: i32 = "sysFlag",
        /// The consumer's progress, stored when `sys_flag` has COMMIT_OFFSET.
        commit_offset: i64 = "commitOffset",
        /// How long the broker may hold the request (long polling).
        suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        /// Subscription expression, used when `sys_flag` has SUBSCRIPTION.
        subscription: Option<String> = "subscription",
        sub_version: i64 = "subVersion",
        /// `TAG` (default) or `SQL92`.
        expression_type: Option<String> = "expressionType",
        max_msg_bytes: Option<i32> = "maxMsgBytes",
        request_source: Option<i32> = "requestSource",
        proxy_forward_client_id: Option<String> = "proxyFrowardClientId",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// The broker's answer to a pull. Every client needs the four offsets on every
    /// response code, not only on SUCCESS.
    pub struct PullMessageResponseHeader {
        /// 0 (master) unless slave reads are enabled; never negative (Rust reads u64).
        suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        next_begin_offset: i64 = "nextBeginOffset",
        min_offset: i64 = "minOffset",
        max_offset: i64 = "maxOffset",
        offset_delta: Option<i64> = "offsetDelta",
        topic_sys_flag: Option<i32> = "topicSysFlag",
        group_sys_flag: Option<i32> = "groupSysFlag",
        forbidden_type: Option<i32> = "forbiddenType",
    }
}
