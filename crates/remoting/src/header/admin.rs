//! Topic and subscription-group administration and statistics (mqadmin, dashboards).

/// `topicFilterType` values.
pub const TOPIC_FILTER_SINGLE_TAG: &str = "SINGLE_TAG";
pub const TOPIC_FILTER_MULTI_TAG: &str = "MULTI_TAG";

command_header! {
    /// UPDATE_AND_CREATE_TOPIC (17).
    pub struct CreateTopicRequestHeader {
        topic: String = "topic",
        default_topic: String = "defaultTopic",
        read_queue_nums: i32 = "readQueueNums",
        write_queue_nums: i32 = "writeQueueNums",
        perm: i32 = "perm",
        topic_filter_type: String = "topicFilterType" => TOPIC_FILTER_SINGLE_TAG.to_owned(),
        topic_sys_flag: Option<i32> = "topicSysFlag",
        order: bool = "order" => false,
        /// 5.x topic attributes, e.g. `+message.type=NORMAL`.
        attributes: Option<String> = "attributes",
        force: bool = "force" => false,
    }
}

command_header! {
    /// DELETE_TOPIC_IN_BROKER (215), also GET_TOPIC_STATS_INFO, GET_TOPIC_CONFIG,
    /// QUERY_TOPIC_CONSUME_BY_WHO and REGISTER_TOPIC_IN_NAMESRV, which carry only a topic.
    pub struct TopicRequestHeader {
        topic: String = "topic",
    }
}

pub type DeleteTopicRequestHeader = TopicRequestHeader;
pub type GetTopicStatsInfoRequestHeader = TopicRequestHeader;
pub type GetTopicConfigRequestHeader = TopicRequestHeader;
pub type QueryTopicConsumeByWhoRequestHeader = TopicRequestHeader;

command_header! {
    /// GET_CONSUME_STATS (208).
    pub struct GetConsumeStatsRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: Option<String> = "topic",
        /// 5.x: comma-separated topics.
        topic_list: Option<String> = "topicList",
    }
}

command_header! {
    pub struct GetSubscriptionGroupConfigRequestHeader {
        group: String = "group",
    }
}

command_header! {
    /// CLONE_GROUP_OFFSET (314): copy `srcGroup`'s offsets of `topic` (every topic it has
    /// offsets of, when blank) to `destGroup`.
    pub struct CloneGroupOffsetRequestHeader {
        src_group: String = "srcGroup",
        dest_group: String = "destGroup",
        topic: Option<String> = "topic",
        offline: bool = "offline" => false,
    }
}

command_header! {
    /// VIEW_BROKER_STATS_DATA (315): `statsName` such as TOPIC_PUT_NUMS, `statsKey` the
    /// topic (or `topic@group` for GROUP_GET_NUMS).
    pub struct ViewBrokerStatsDataRequestHeader {
        stats_name: String = "statsName",
        stats_key: String = "statsKey",
    }
}

command_header! {
    /// DELETE_SUBSCRIPTIONGROUP (207).
    pub struct DeleteSubscriptionGroupRequestHeader {
        group_name: String = "groupName",
        clean_offset: bool = "cleanOffset" => false,
    }
}

command_header! {
    /// GET_TOPICS_BY_CLUSTER (224).
    pub struct GetTopicsByClusterRequestHeader {
        cluster: String = "cluster",
    }
}

command_header! {
    /// GET_ALL_TOPIC_CONFIG response (5.x).
    pub struct GetAllTopicConfigResponseHeader {
        total_topic_num: Option<i32> = "totalTopicNum",
    }
}

command_header! {
    /// QUERY_CONSUME_TIME_SPAN (303).
    pub struct QueryConsumeTimeSpanRequestHeader {
        topic: String = "topic",
        group: String = "group",
    }
}

command_header! {
    /// GET_BROKER_CONSUME_STATS (317): every group's consume stats on one broker.
    pub struct GetConsumeStatsInBrokerHeader {
        is_order: bool = "isOrder" => false,
    }
}
