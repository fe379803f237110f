//! SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE rules against an in-process broker.

mod support;

use message::batch::{encode_batch, BatchItem};
use message::{decode_all, decode_offset_msg_id};
use remoting::body::{perm, TopicConfig};
use remoting::code::response;
use support::*;

#[tokio::test]
async fn v1_and_v2_sends_store_messages_with_dense_queue_offsets() {
    let broker = TestBroker::start().await;
    let properties = props(&[("TAGS", "TagA"), ("KEYS", "k1"), ("color", "blue")]);
    let header = send_header("SendTopic", 1, &properties);
    let first = broker.call(send_v1(&header, b"one")).await;
    assert_eq!(first.code, response::SUCCESS, "{:?}", first.remark);
    let second = broker.call(send_v2(&header, b"two")).await;
    assert_eq!(second.code, response::SUCCESS, "{:?}", second.remark);
    assert_eq!(ext_i64(&first, "queueOffset"), 0);
    assert_eq!(ext_i64(&second, "queueOffset"), 1);
    assert_eq!(first.ext_field("queueId"), Some("1"));
    assert_eq!(first.ext_field("MSG_REGION"), Some("DefaultRegion"));
    assert_eq!(first.ext_field("TRACE_ON"), Some("true"));
    assert!(first
        .ext_field("transactionId")
        .is_some_and(|id| !id.is_empty()));

    // The offset msgId names this broker and the record's CommitLog offset.
    let id = decode_offset_msg_id(first.ext_field("msgId").unwrap()).unwrap();
    assert_eq!(id.store_host, broker.running().local_addr());
    let view = broker
        .ctx()
        .store
        .reader()
        .message_at(id.commit_log_offset)
        .unwrap();
    let records = decode_all(&view).unwrap();
    assert_eq!(records[0].body(), b"one");
    assert_eq!(records[0].property("color"), Some("blue"));
    assert_eq!(records[0].property("CLUSTER"), Some("TestCluster"));
    assert_eq!(records[0].queue_offset(), 0);
}

#[tokio::test]
async fn a_new_topic_is_auto_created_from_tbw102_with_the_client_queue_count() {
    let broker = TestBroker::start().await;
    assert!(broker.ctx().topics.get("Fresh").is_none());
    let mut header = send_header("Fresh", 0, "");
    header.default_topic_queue_nums = 3;
    let sent = broker.call(send_v2(&header, b"x")).await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    let created = broker.ctx().topics.get("Fresh").unwrap();
    assert_eq!((created.read_queue_nums, created.write_queue_nums), (3, 3));
    assert_eq!(created.perm, perm::READ_WRITE, "INHERIT is not passed on");
}

#[tokio::test]
async fn without_auto_creation_an_unknown_topic_is_refused() {
    let broker = TestBroker::start_with(|c| c.auto_create_topic_enable = false).await;
    let sent = broker
        .call(send_v2(&send_header("Unknown", 0, ""), b"x"))
        .await;
    assert_eq!(sent.code, response::TOPIC_NOT_EXIST);
    assert!(sent.remark.unwrap().contains("not exist"));
}

#[tokio::test]
async fn illegal_and_reserved_topics_are_refused_before_anything_else() {
    let broker = TestBroker::start_with(|c| c.max_message_size = 16).await;
    let big = vec![0u8; 64];
    for topic in ["bad topic", "a/b", &"x".repeat(128), ""] {
        let sent = broker.call(send_v2(&send_header(topic, 0, ""), &big)).await;
        assert_eq!(
            sent.code,
            response::INVALID_PARAMETER,
            "{topic:?}: {:?}",
            sent.remark
        );
    }
    let sent = broker
        .call(send_v2(&send_header("SCHEDULE_TOPIC_XXXX", 0, ""), b"x"))
        .await;
    assert_eq!(sent.code, response::NO_PERMISSION);
}

#[tokio::test]
async fn oversize_bodies_and_bad_queue_ids_are_refused() {
    let broker = TestBroker::start_with(|c| c.max_message_size = 1024).await;
    let sent = broker
        .call(send_v2(&send_header("SizeTopic", 0, ""), &vec![7u8; 1025]))
        .await;
    assert_eq!(sent.code, response::MESSAGE_ILLEGAL);
    let ok = broker
        .call(send_v2(&send_header("SizeTopic", 0, ""), &vec![7u8; 1024]))
        .await;
    assert_eq!(ok.code, response::SUCCESS, "{:?}", ok.remark);
    let sent = broker
        .call(send_v2(&send_header("SizeTopic", 4, ""), b"x"))
        .await;
    assert_eq!(sent.code, response::INVALID_PARAMETER);
    // A negative queue id lets the broker choose.
    let chosen = broker
        .call(send_v2(&send_header("SizeTopic", -1, ""), b"x"))
        .await;
    assert_eq!(chosen.code, response::SUCCESS);
    assert!((0..4).contains(&ext_i64(&chosen, "queueId")));
}

#[tokio::test]
async fn missing_header_fields_and_transactions_are_refused() {
    let broker = TestBroker::start_with(|c| c.reject_transaction_message = true).await;
    let mut command = send_v2(&send_header("T", 0, ""), b"x");
    command.ext_fields.remove("b");
    let sent = broker.call(command).await;
    assert_eq!(sent.code, response::SYSTEM_ERROR);
    assert!(sent.remark.unwrap().contains('b'));

    let tx = send_header("T", 0, &props(&[("TRAN_MSG", "true"), ("PGROUP", "PG")]));
    let sent = broker.call(send_v2(&tx, b"x")).await;
    assert_eq!(sent.code, response::NO_PERMISSION);
}

#[tokio::test]
async fn batches_by_code_320_and_by_the_m_flag_store_each_message() {
    let broker = TestBroker::start().await;
    let items: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                format!("body-{i}"),
                props(&[("TAGS", "TagA"), ("KEYS", &format!("k{i}"))]),
            )
        })
        .collect();
    let body = encode_batch(items.iter().map(|(b, p)| BatchItem {
        flag: 0,
        body: b.as_bytes(),
        properties: p,
    }))
    .unwrap();
    let mut header = send_header("BatchTopic", 2, "");
    header.batch = Some(true);
    let by_code = broker.call(send_batch(&header, &body)).await;
    assert_eq!(by_code.code, response::SUCCESS, "{:?}", by_code.remark);
    assert_eq!(ext_i64(&by_code, "queueOffset"), 0);
    assert_eq!(by_code.ext_field("msgId").unwrap().split(',').count(), 3);
    // The C++ client sends batches as SEND_MESSAGE_V2 with m=true.
    let by_flag = broker.call(send_v2(&header, &body)).await;
    assert_eq!(by_flag.code, response::SUCCESS, "{:?}", by_flag.remark);
    assert_eq!(ext_i64(&by_flag, "queueOffset"), 3);

    let pulled = broker
        .call(pull(&pull_header("G", "BatchTopic", 2, 0)))
        .await;
    assert_eq!(pulled.code, response::SUCCESS);
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages.len(), 6);
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.queue_offset(), i as i64);
        assert_eq!(message.body(), format!("body-{}", i % 3).as_bytes());
        assert_eq!(message.keys(), Some(format!("k{}", i % 3).as_str()));
        assert!(message.uniq_key().is_some());
    }
}

#[tokio::test]
async fn malformed_batches_are_illegal_messages() {
    let broker = TestBroker::start().await;
    let mut header = send_header("BatchTopic", 0, "");
    header.batch = Some(true);
    let sent = broker.call(send_batch(&header, &[0, 0, 0, 99, 1, 2])).await;
    assert_eq!(sent.code, response::MESSAGE_ILLEGAL);
    let sent = broker.call(send_batch(&header, b"")).await;
    assert_eq!(sent.code, response::MESSAGE_ILLEGAL);
}

#[tokio::test]
async fn a_retry_message_past_max_reconsume_times_goes_to_the_dlq() {
    let broker = TestBroker::start().await;
    let mut header = send_header("%RETRY%CG", 0, "");
    header.reconsume_times = Some(3);
    header.max_reconsume_times = Some(3);
    let sent = broker.call(send_v2(&header, b"dead")).await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    assert!(broker.ctx().topics.get("%DLQ%CG").is_some());
    let pulled = broker.call(pull(&pull_header("CG", "%DLQ%CG", 0, 0))).await;
    assert_eq!(pulled.code, response::SUCCESS);
    assert_eq!(decode_all(&pulled.body).unwrap()[0].body(), b"dead");
}

#[tokio::test]
async fn write_protected_topics_refuse_sends() {
    let broker = TestBroker::start().await;
    broker
        .ctx()
        .write_metadata(broker::metadata::MetadataOp::Topic(
            broker::metadata::TopicOp::Upsert(TopicConfig::new("ReadOnly", 1, 1, perm::READ)),
        ))
        .await
        .unwrap();
    let sent = broker
        .call(send_v2(&send_header("ReadOnly", 0, ""), b"x"))
        .await;
    assert_eq!(sent.code, response::NO_PERMISSION);
}
