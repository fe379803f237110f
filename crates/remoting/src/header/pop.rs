//! POP consumption (RocketMQ 5): POP_MESSAGE (200050), ACK_MESSAGE (200051),
//! CHANGE_MESSAGE_INVISIBLETIME (200053), NOTIFICATION (200054), POLLING_INFO (200055) and
//! POP_LITE_MESSAGE (200070).

command_header! {
    /// Take up to `max_msg_nums` messages of a topic (all its queues when `queue_id` is
    /// negative), invisible to other poppers for `invisible_time` ms unless acknowledged.
    pub struct PopMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        max_msg_nums: i32 = "maxMsgNums",
        invisible_time: i64 = "invisibleTime",
        /// How long the broker may hold the request when nothing is there (long polling).
        poll_time: i64 = "pollTime",
        born_time: i64 = "bornTime",
        /// 0: a new group starts at the queue's first message; 1: at its end.
        init_mode: i32 = "initMode",
        /// `TAG` (default) or `SQL92`.
        exp_type: Option<String> = "expType",
        exp: Option<String> = "exp",
        order: Option<bool> = "order",
        attempt_id: Option<String> = "attemptId",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// A pop over the lite topics client `client_id` subscribed under parent `topic` for
    /// `consumer_group`; answered as a pop ([`PopMessageResponseHeader`]), orderly per lite
    /// topic.
    pub struct PopLiteMessageRequestHeader {
        client_id: String = "clientId",
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        max_msg_num: i32 = "maxMsgNum",
        invisible_time: i64 = "invisibleTime",
        poll_time: i64 = "pollTime",
        born_time: i64 = "bornTime",
        attempt_id: Option<String> = "attemptId",
    }
}

command_header! {
    /// The answer to a pop, on every non-error code. The client builds each message's
    /// receipt handle from these fields (see `PopOffsetInfo`).
    pub struct PopMessageResponseHeader {
        pop_time: i64 = "popTime",
        invisible_time: i64 = "invisibleTime",
        revive_qid: i32 = "reviveQid",
        rest_num: i64 = "restNum",
        start_offset_info: Option<String> = "startOffsetInfo",
        msg_offset_info: Option<String> = "msgOffsetInfo",
        order_count_info: Option<String> = "orderCountInfo",
    }
}

command_header! {
    /// Acknowledges one popped message. `topic`, `queue_id` and `offset` name the message
    /// as stored (a retry topic's queue 0 for a redelivered one); `extra_info` is its
    /// receipt handle.
    pub struct AckMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        extra_info: String = "extraInfo",
        offset: i64 = "offset",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// Makes a popped message visible again `invisible_time` ms from now.
    pub struct ChangeInvisibleTimeRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        extra_info: String = "extraInfo",
        offset: i64 = "offset",
        invisible_time: i64 = "invisibleTime",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// The new checkpoint a changed message belongs to; the client builds its new handle
    /// from it.
    pub struct ChangeInvisibleTimeResponseHeader {
        pop_time: i64 = "popTime",
        invisible_time: i64 = "invisibleTime",
        revive_qid: i32 = "reviveQid",
    }
}

command_header! {
    /// Whether a pop would find something, waiting up to `poll_time` ms for it.
    pub struct NotificationRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        poll_time: i64 = "pollTime",
        born_time: i64 = "bornTime",
        order: Option<bool> = "order",
        attempt_id: Option<String> = "attemptId",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    pub struct NotificationResponseHeader {
        has_msg: bool = "hasMsg",
        polling_full: Option<bool> = "pollingFull",
    }
}

command_header! {
    /// How many pops of a group wait for messages on a topic-queue.
    pub struct PollingInfoRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    pub struct PollingInfoResponseHeader {
        polling_num: i32 = "pollingNum",
    }
}
