//! Client management: heartbeats, unregistering, consumer lists, send-back, and the calls a
//! broker makes to clients (NOTIFY_CONSUMER_IDS_CHANGED, RESET_CONSUMER_CLIENT_OFFSET, ...).

command_header! {
    /// Ext fields of a HEART_BEAT response (Java `MixAll` keys).
    pub struct HeartbeatResponseHeader {
        is_support_heart_beat_v2: Option<bool> = "IS_SUPPORT_HEART_BEAT_V2",
        /// The fingerprint changed: the client must resend full subscriptions.
        is_sub_change: Option<bool> = "IS_SUB_CHANGE",
    }
}

command_header! {
    pub struct UnregisterClientRequestHeader {
        client_id: String = "clientID",
        producer_group: Option<String> = "producerGroup",
        consumer_group: Option<String> = "consumerGroup",
    }
}

command_header! {
    pub struct GetConsumerListByGroupRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// Broker to client, one-way: rebalance now.
    pub struct NotifyConsumerIdsChangedRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// A consumer returns a message it failed to consume, for retry or the DLQ.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// CommitLog offset of the consumed message.
        offset: i64 = "offset",
        group: String = "group",
        /// 0: broker picks 3 + reconsumeTimes; negative: straight to the DLQ.
        delay_level: i32 = "delayLevel",
        origin_msg_id: Option<String> = "originMsgId",
        origin_topic: Option<String> = "originTopic",
        unit_mode: bool = "unitMode" => false,
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
    }
}

command_header! {
    pub struct GetConsumerConnectionListRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    pub struct GetProducerConnectionListRequestHeader {
        producer_group: String = "producerGroup",
    }
}

command_header! {
    /// Admin to broker to client: a consumer's runtime diagnostics.
    pub struct GetConsumerRunningInfoRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: String = "clientId",
        jstack_enable: bool = "jstackEnable" => false,
    }
}

command_header! {
    /// RESET_CONSUMER_CLIENT_OFFSET (broker to client) and INVOKE_BROKER_TO_RESET_OFFSET.
    pub struct ResetOffsetRequestHeader {
        topic: String = "topic",
        group: String = "group",
        timestamp: i64 = "timestamp",
        is_force: bool = "isForce" => false,
        /// -1: every queue.
        queue_id: i32 = "queueId" => -1,
        offset: Option<i64> = "offset",
    }
}

command_header! {
    pub struct GetConsumerStatusRequestHeader {
        topic: String = "topic",
        group: String = "group",
        client_addr: Option<String> = "clientAddr",
    }
}

command_header! {
    /// CONSUME_MESSAGE_DIRECTLY (309): admin asks a consumer to consume one message.
    pub struct ConsumeMessageDirectlyRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: Option<String> = "clientId",
        msg_id: Option<String> = "msgId",
        broker_name: Option<String> = "brokerName",
        topic: Option<String> = "topic",
        topic_sys_flag: Option<i32> = "topicSysFlag",
        group_sys_flag: Option<i32> = "groupSysFlag",
    }
}
