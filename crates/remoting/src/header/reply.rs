//! PUSH_REPLY_MESSAGE_TO_CLIENT (326): the broker hands a reply to the client that sent the
//! request (RocketMQ's `ReplyMessageRequestHeader`). The replier's own request,
//! SEND_REPLY_MESSAGE (324) / SEND_REPLY_MESSAGE_V2 (325), carries a send header
//! ([`super::send::SendMessageRequestHeader`]).

command_header! {
    /// Everything the requester needs to rebuild the reply message: the replier's send
    /// header plus where and when the broker received it. Clients (Java and C++) require
    /// every field but `properties` and `reconsumeTimes`.
    pub struct ReplyMessageRequestHeader {
        producer_group: String = "producerGroup",
        topic: String = "topic",
        default_topic: String = "defaultTopic",
        default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        queue_id: i32 = "queueId",
        sys_flag: i32 = "sysFlag",
        born_timestamp: i64 = "bornTimestamp",
        flag: i32 = "flag",
        properties: Option<String> = "properties",
        reconsume_times: Option<i32> = "reconsumeTimes",
        unit_mode: bool = "unitMode" => false,
        /// `ip:port` of the replier's connection.
        born_host: String = "bornHost",
        /// `ip:port` of this broker.
        store_host: String = "storeHost",
        store_timestamp: i64 = "storeTimestamp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::CommandHeader;
    use crate::ExtFields;

    #[test]
    fn round_trips_with_rocketmq_keys() {
        let header = ReplyMessageRequestHeader {
            producer_group: "PG".into(),
            topic: "DefaultCluster_REPLY_TOPIC".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: 1,
            flag: 0,
            properties: Some("a\u{1}b\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: false,
            born_host: "127.0.0.1:5000".into(),
            store_host: "127.0.0.1:10911".into(),
            store_timestamp: 2,
        };
        let mut ext = ExtFields::default();
        header.to_ext_fields(&mut ext);
        for key in [
            "producerGroup",
            "topic",
            "defaultTopic",
            "defaultTopicQueueNums",
            "queueId",
            "sysFlag",
            "bornTimestamp",
            "flag",
            "bornHost",
            "storeHost",
            "storeTimestamp",
        ] {
            assert!(ext.get(key).is_some(), "{key}");
        }
        assert_eq!(
            ReplyMessageRequestHeader::from_ext_fields(&ext).unwrap(),
            header
        );
    }
}
