//! Round trips, required/invalid fields and client-specific spellings.

use super::admin::CreateTopicRequestHeader;
use super::client::{
    ConsumerSendMsgBackRequestHeader, ResetOffsetRequestHeader, UnregisterClientRequestHeader,
};
use super::namesrv::{GetRouteInfoRequestHeader, RegisterBrokerRequestHeader};
use super::offset::{BoundaryType, GetMaxOffsetRequestHeader, SearchOffsetRequestHeader};
use super::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use super::query::QueryMessageRequestHeader;
use super::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use super::transaction::EndTransactionRequestHeader;
use super::*;
use crate::code::request;

fn ext(pairs: &[(&str, &str)]) -> ExtFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn send_header() -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 1,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some("TAGS\u{1}TagA\u{2}".into()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: None,
        max_reconsume_times: None,
        broker_name: None,
    }
}

#[test]
fn send_v1_and_v2_round_trip_to_the_same_header() {
    let header = send_header();
    let v1 = to_ext_map(&header);
    assert_eq!(v1["producerGroup"], "PG");
    assert_eq!(v1["bornTimestamp"], "1700000000000");
    assert!(!v1.contains_key("batch"), "absent optionals are omitted");
    assert_eq!(
        SendMessageRequestHeader::from_ext_fields(&v1).unwrap(),
        header
    );

    let mut v2 = ExtFields::new();
    header.to_v2(&mut v2);
    assert_eq!(v2["a"], "PG");
    assert_eq!(v2["b"], "TopicTest");
    assert_eq!(v2["g"], "1700000000000");
    assert_eq!(v2["i"], "TAGS\u{1}TagA\u{2}");
    assert!(!v2.contains_key("m"));
    assert_eq!(SendMessageRequestHeader::from_v2(&v2).unwrap(), header);
    assert_eq!(
        SendMessageRequestHeader::from_request(request::SEND_MESSAGE_V2, &v2).unwrap(),
        header
    );
    assert_eq!(
        SendMessageRequestHeader::from_request(request::SEND_MESSAGE, &v1).unwrap(),
        header
    );
    assert!(SendMessageRequestHeader::from_request(request::SEND_BATCH_MESSAGE, &v1).is_err());
}

#[test]
fn cpp_batch_is_detected_by_flag() {
    let fields = ext(&[
        ("a", "PG"),
        ("b", "T"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "0"),
        ("f", "0"),
        ("g", "1"),
        ("h", "0"),
        ("m", "true"),
        ("AccessKey", ""),
        ("Signature", ""),
    ]);
    let header = SendMessageRequestHeader::from_request(request::SEND_MESSAGE_V2, &fields).unwrap();
    assert!(header.is_batch());
    assert_eq!(header.properties, None);
}

#[test]
fn missing_required_and_bad_numbers_are_reported_by_key() {
    let mut fields = to_ext_map(&send_header());
    fields.remove("topic");
    assert_eq!(
        SendMessageRequestHeader::from_ext_fields(&fields),
        Err(HeaderError::Missing("topic"))
    );

    let mut fields = to_ext_map(&send_header());
    fields.insert("queueId".into(), "one".into());
    assert_eq!(
        SendMessageRequestHeader::from_ext_fields(&fields),
        Err(HeaderError::Invalid {
            field: "queueId",
            value: "one".into()
        })
    );

    let mut fields = to_ext_map(&send_header());
    fields.insert("reconsumeTimes".into(), "9999999999".into());
    assert!(matches!(
        SendMessageRequestHeader::from_ext_fields(&fields),
        Err(HeaderError::Invalid {
            field: "reconsumeTimes",
            ..
        })
    ));

    let mut v2 = ExtFields::new();
    send_header().to_v2(&mut v2);
    v2.remove("h");
    assert_eq!(
        SendMessageRequestHeader::from_v2(&v2),
        Err(HeaderError::Missing("h"))
    );
}

#[test]
fn lenient_values() {
    // Surrounding whitespace, empty optional numbers, any-case booleans.
    let mut fields = to_ext_map(&send_header());
    fields.insert("queueId".into(), " 3 ".into());
    fields.insert("reconsumeTimes".into(), "".into());
    fields.insert("unitMode".into(), "TRUE".into());
    fields.insert("batch".into(), "yes".into()); // Java parseBoolean: not "true" -> false
    let header = SendMessageRequestHeader::from_ext_fields(&fields).unwrap();
    assert_eq!(header.queue_id, 3);
    assert_eq!(header.reconsume_times, None);
    assert_eq!(header.unit_mode, Some(true));
    assert_eq!(header.batch, Some(false));
    // An empty required number is still invalid.
    fields.insert("flag".into(), "".into());
    assert!(matches!(
        SendMessageRequestHeader::from_ext_fields(&fields),
        Err(HeaderError::Invalid { .. })
    ));
}

#[test]
fn pull_request_from_cpp_and_response_round_trip() {
    let fields = ext(&[
        ("consumerGroup", "CG"),
        ("topic", "T"),
        ("queueId", "2"),
        ("queueOffset", "100"),
        ("maxMsgNums", "32"),
        ("sysFlag", "6"),
        ("commitOffset", "0"),
        ("suspendTimeoutMillis", "15000"),
        ("subscription", "TagA || TagB"),
        ("subVersion", "1700000000000"),
        ("bname", "broker-a"),
        ("lo", "false"),
    ]);
    let header = PullMessageRequestHeader::from_ext_fields(&fields).unwrap();
    assert_eq!(header.queue_offset, 100);
    assert_eq!(header.subscription.as_deref(), Some("TagA || TagB"));
    assert_eq!(header.expression_type, None);
    assert_eq!(header.broker_name.as_deref(), Some("broker-a"));
    assert_eq!(
        PullMessageRequestHeader::from_ext_fields(&to_ext_map(&header)).unwrap(),
        header
    );
    let base = RpcBase::from_ext_fields(&fields).unwrap();
    assert_eq!(
        (base.broker_name.as_deref(), base.logical),
        (Some("broker-a"), Some(false))
    );

    let response = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: 132,
        min_offset: 0,
        max_offset: 500,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    };
    let map = to_ext_map(&response);
    assert_eq!(map.len(), 4);
    assert_eq!(map["nextBeginOffset"], "132");
    assert_eq!(
        PullMessageResponseHeader::from_ext_fields(&map).unwrap(),
        response
    );
}

#[test]
fn defaults_apply_when_java_declares_them() {
    let header =
        GetMaxOffsetRequestHeader::from_ext_fields(&ext(&[("topic", "T"), ("queueId", "0")]))
            .unwrap();
    assert!(header.committed);
    let header = SearchOffsetRequestHeader::from_ext_fields(&ext(&[
        ("topic", "T"),
        ("queueId", "0"),
        ("timestamp", "5"),
        ("boundaryType", "UPPER"),
    ]))
    .unwrap();
    assert_eq!(header.boundary_type, BoundaryType::Upper);
    let send_back = ConsumerSendMsgBackRequestHeader::from_ext_fields(&ext(&[
        ("offset", "4096"),
        ("group", "CG"),
        ("delayLevel", "0"),
    ]))
    .unwrap();
    assert!(!send_back.unit_mode);
    assert_eq!(send_back.max_reconsume_times, None);
    let reset = ResetOffsetRequestHeader::from_ext_fields(&ext(&[
        ("topic", "T"),
        ("group", "G"),
        ("timestamp", "1"),
        ("isForce", "true"),
    ]))
    .unwrap();
    assert_eq!((reset.queue_id, reset.is_force), (-1, true));
}

#[test]
fn other_headers_round_trip() {
    let end = EndTransactionRequestHeader {
        topic: Some("T".into()),
        producer_group: "PG".into(),
        tran_state_table_offset: 7,
        commit_log_offset: 4096,
        commit_or_rollback: 8,
        from_transaction_check: true,
        msg_id: "UNIQ".into(),
        transaction_id: None,
    };
    assert_eq!(
        EndTransactionRequestHeader::from_ext_fields(&to_ext_map(&end)).unwrap(),
        end
    );

    let create = CreateTopicRequestHeader::from_ext_fields(&ext(&[
        ("topic", "T"),
        ("defaultTopic", "TBW102"),
        ("readQueueNums", "8"),
        ("writeQueueNums", "8"),
        ("perm", "6"),
    ]))
    .unwrap();
    assert_eq!(create.topic_filter_type, "SINGLE_TAG");
    assert!(!create.order);
    assert_eq!(
        CreateTopicRequestHeader::from_ext_fields(&to_ext_map(&create)).unwrap(),
        create
    );

    let register = RegisterBrokerRequestHeader {
        broker_name: "broker-a".into(),
        broker_addr: "127.0.0.1:10911".into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: "127.0.0.1:10912".into(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: false,
        body_crc32: 12345,
        zone_name: None,
        raft_term: Some(7),
    };
    let map = to_ext_map(&register);
    assert_eq!(map["bodyCrc32"], "12345");
    assert_eq!(map["raftTerm"], "7");
    assert_eq!(
        RegisterBrokerRequestHeader::from_ext_fields(&map).unwrap(),
        register
    );

    let route = GetRouteInfoRequestHeader::from_ext_fields(&ext(&[("topic", "T")])).unwrap();
    assert_eq!(route.accept_standard_json_only, None);

    let query = QueryMessageRequestHeader::from_ext_fields(&ext(&[
        ("topic", "T"),
        ("key", "k"),
        ("maxNum", "32"),
        ("beginTimestamp", "0"),
        ("endTimestamp", "9"),
        ("_UNIQUE_KEY_QUERY", "true"),
    ]))
    .unwrap();
    assert_eq!(query.unique_key_query, Some(true));

    let unregister =
        UnregisterClientRequestHeader::from_ext_fields(&ext(&[("clientID", "c1")])).unwrap();
    assert_eq!(unregister.producer_group, None);
    assert_eq!(
        UnregisterClientRequestHeader::from_ext_fields(&ext(&[])),
        Err(HeaderError::Missing("clientID"))
    );

    let response = SendMessageResponseHeader {
        msg_id: "0A00000100002A9F0000000000001000".into(),
        queue_id: 1,
        queue_offset: 9,
        transaction_id: Some("UNIQ".into()),
        batch_uniq_id: None,
        recall_handle: None,
        msg_region: Some("DefaultRegion".into()),
        trace_on: Some(true),
    };
    let map = to_ext_map(&response);
    assert_eq!(map["TRACE_ON"], "true");
    assert_eq!(map["MSG_REGION"], "DefaultRegion");
    assert_eq!(
        SendMessageResponseHeader::from_ext_fields(&map).unwrap(),
        response
    );
    assert!(to_ext_map(&EmptyHeader {}).is_empty());
}
