//! VIEW_MESSAGE_BY_ID (33) and QUERY_MESSAGE (12).

command_header! {
    pub struct ViewMessageRequestHeader {
        /// CommitLog offset, decoded from an offset msgId.
        offset: i64 = "offset",
        topic: Option<String> = "topic",
    }
}

command_header! {
    pub struct QueryMessageRequestHeader {
        topic: String = "topic",
        key: String = "key",
        max_num: i32 = "maxNum",
        begin_timestamp: i64 = "beginTimestamp",
        end_timestamp: i64 = "endTimestamp",
        /// `true`: `key` is a UNIQ_KEY (Java puts this flag straight into extFields).
        unique_key_query: Option<bool> = "_UNIQUE_KEY_QUERY",
    }
}

command_header! {
    pub struct QueryMessageResponseHeader {
        index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }
}
