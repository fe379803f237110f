//! QUERY_MESSAGE by key, VIEW_MESSAGE_BY_ID, GET_EARLIEST_MSG_STORETIME.

mod support;

use message::{decode_all, decode_offset_msg_id};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::offset::GetEarliestMsgStoretimeRequestHeader;
use remoting::header::query::{QueryMessageRequestHeader, ViewMessageRequestHeader};
use support::*;

fn query(topic: &str, key: &str, unique: bool) -> RemotingCommand {
    RemotingCommand::request(request::QUERY_MESSAGE).with_header(&QueryMessageRequestHeader {
        topic: topic.into(),
        key: key.into(),
        max_num: 32,
        begin_timestamp: 0,
        end_timestamp: i64::MAX,
        unique_key_query: unique.then_some(true),
    })
}

#[tokio::test]
async fn messages_are_found_by_key_uniq_key_and_offset_id() {
    let broker = TestBroker::start().await;
    let mut uniq_keys = Vec::new();
    for (i, keys) in ["order-1 shared", "order-2 shared", "order-3"]
        .iter()
        .enumerate()
    {
        let header = send_header("QueryTopic", 0, &props(&[("KEYS", keys)]));
        let sent = broker
            .call(send_v2(&header, format!("m{i}").as_bytes()))
            .await;
        assert_eq!(sent.code, response::SUCCESS);
        uniq_keys.push(sent.ext_field("transactionId").unwrap().to_owned());
    }
    let found = broker.call(query("QueryTopic", "shared", false)).await;
    assert_eq!(found.code, response::SUCCESS, "{:?}", found.remark);
    let mut bodies: Vec<Vec<u8>> = decode_all(&found.body)
        .unwrap()
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    bodies.sort();
    assert_eq!(bodies, [b"m0".to_vec(), b"m1".to_vec()]);
    assert!(found.ext_field("indexLastUpdateTimestamp").is_some());

    let by_uniq = broker.call(query("QueryTopic", &uniq_keys[2], true)).await;
    assert_eq!(decode_all(&by_uniq.body).unwrap()[0].body(), b"m2");
    let none = broker.call(query("QueryTopic", "no-such-key", false)).await;
    assert_eq!(none.code, response::QUERY_NOT_FOUND);
    let other_topic = broker.call(query("OtherTopic", "shared", false)).await;
    assert_eq!(other_topic.code, response::QUERY_NOT_FOUND);

    let sent = send_tagged(&broker, "QueryTopic", 1, "t", b"viewed").await;
    let offset = decode_offset_msg_id(sent.ext_field("msgId").unwrap())
        .unwrap()
        .commit_log_offset;
    let view = |offset: i64| {
        RemotingCommand::request(request::VIEW_MESSAGE_BY_ID).with_header(
            &ViewMessageRequestHeader {
                offset,
                topic: None,
            },
        )
    };
    let viewed = broker.call(view(offset)).await;
    assert_eq!(viewed.code, response::SUCCESS);
    assert_eq!(decode_all(&viewed.body).unwrap()[0].body(), b"viewed");
    assert_eq!(
        broker.call(view(offset + 1)).await.code,
        response::SYSTEM_ERROR
    );
    assert_eq!(broker.call(view(-5)).await.code, response::SYSTEM_ERROR);

    let earliest = |queue_id: i32| {
        RemotingCommand::request(request::GET_EARLIEST_MSG_STORETIME).with_header(
            &GetEarliestMsgStoretimeRequestHeader {
                topic: "QueryTopic".into(),
                queue_id,
            },
        )
    };
    let first = broker.call(earliest(0)).await;
    assert_eq!(first.code, response::SUCCESS);
    assert!(ext_i64(&first, "timestamp") > 0);
    // An empty queue has no earliest message: RocketMQ answers SUCCESS with -1, and
    // DefaultMQAdminExt.earliestMsgStoreTime reads it so.
    let empty = broker.call(earliest(3)).await;
    assert_eq!(empty.code, response::SUCCESS);
    assert_eq!(ext_i64(&empty, "timestamp"), -1);
}
