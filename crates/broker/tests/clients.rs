//! Heartbeats, consumer lists and membership notifications, locks, send-back, client
//! config checks.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use message::{decode_all, decode_offset_msg_id};
use remoting::body::{
    CheckClientRequestBody, ConsumerConnection, ConsumerListBody, LockBatchRequestBody,
    LockBatchResponseBody, MessageQueue, SubscriptionData,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::client::{
    ConsumerSendMsgBackRequestHeader, GetConsumerConnectionListRequestHeader,
    GetConsumerListByGroupRequestHeader, UnregisterClientRequestHeader,
};
use support::*;
use tokio::sync::mpsc;

fn consumer_list(group: &str) -> RemotingCommand {
    RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP).with_header(
        &GetConsumerListByGroupRequestHeader {
            consumer_group: group.into(),
        },
    )
}

/// Forwards every request the broker sends to this client.
struct Inbox(mpsc::UnboundedSender<RemotingCommand>);

impl RequestProcessor for Inbox {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let _ = self.0.send(request);
        None
    }
}

#[tokio::test]
async fn members_are_listed_notified_of_changes_and_dropped_with_their_connection() {
    let broker = TestBroker::start().await;
    let listed = broker.call(consumer_list("CG")).await;
    assert_eq!(listed.code, response::SYSTEM_ERROR, "unknown group");

    let (tx, mut inbox) = mpsc::unbounded_channel();
    let first = client_with_handler(Arc::new(Inbox(tx)));
    let addr = broker.addr();
    let first_beats = || async {
        first
            .invoke(&addr, consumer_heartbeat("c1", "CG", "T"), TEST_WAIT)
            .await
            .unwrap()
    };
    let beat = first_beats().await;
    assert_eq!(beat.code, response::SUCCESS);
    assert_eq!(beat.version, 479);
    assert!(
        broker.ctx().topics.get("%RETRY%CG").is_some(),
        "retry topic created"
    );

    // Joining is a change too: the new member hears of it.
    let own = tokio::time::timeout(TEST_WAIT, inbox.recv())
        .await
        .expect("told of its own joining")
        .unwrap();
    assert_eq!(own.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
    first_beats().await;
    broker.call(consumer_heartbeat("c2", "CG", "T")).await;
    let notice = tokio::time::timeout(TEST_WAIT, inbox.recv())
        .await
        .expect("first member told of the second")
        .unwrap();
    assert_eq!(notice.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
    assert_eq!(notice.ext_field("consumerGroup"), Some("CG"));

    let listed = broker.call(consumer_list("CG")).await;
    assert_eq!(listed.code, response::SUCCESS);
    let ids = ConsumerListBody::decode(&listed.body)
        .unwrap()
        .consumer_id_list;
    assert_eq!(ids, ["c1", "c2"]);

    let connections = broker
        .call(
            RemotingCommand::request(request::GET_CONSUMER_CONNECTION_LIST).with_header(
                &GetConsumerConnectionListRequestHeader {
                    consumer_group: "CG".into(),
                },
            ),
        )
        .await;
    let view: ConsumerConnection = serde_json::from_slice(&connections.body).unwrap();
    assert_eq!(view.connection_set.len(), 2);
    assert!(view.subscription_table.contains_key("T"));

    // The first client's connection goes away: so does its membership.
    first.shutdown();
    let mut remaining = Vec::new();
    for _ in 0..400 {
        let listed = broker.call(consumer_list("CG")).await;
        remaining = ConsumerListBody::decode(&listed.body)
            .unwrap()
            .consumer_id_list;
        if remaining.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(remaining, ["c2"]);
}

#[tokio::test]
async fn unregistering_leaves_the_group() {
    let broker = TestBroker::start().await;
    broker.call(consumer_heartbeat("c1", "UG", "T")).await;
    let unregistered = broker
        .call(
            RemotingCommand::request(request::UNREGISTER_CLIENT).with_header(
                &UnregisterClientRequestHeader {
                    client_id: "c1".into(),
                    producer_group: Some("PG".into()),
                    consumer_group: Some("UG".into()),
                },
            ),
        )
        .await;
    assert_eq!(unregistered.code, response::SUCCESS);
    assert_eq!(
        broker.call(consumer_list("UG")).await.code,
        response::SYSTEM_ERROR
    );
}

#[tokio::test]
async fn cpp_heartbeats_with_ordinals_are_understood() {
    let broker = TestBroker::start().await;
    let body = b"{\"clientID\":\"10.0.0.5@777#1\",\"consumerDataSet\":[{\"consumeFromWhere\":4,\
        \"consumeType\":1,\"groupName\":\"CppGroup\",\"messageModel\":1,\"subscriptionDataSet\":[\
        {\"subString\":\"TagA\",\"subVersion\":\"1700000000001\",\"topic\":\"T\"}]}]}\n";
    let beat = broker
        .call(RemotingCommand::request(request::HEART_BEAT).with_body(body.to_vec()))
        .await;
    assert_eq!(beat.code, response::SUCCESS);
    let listed = broker.call(consumer_list("CppGroup")).await;
    assert_eq!(
        ConsumerListBody::decode(&listed.body)
            .unwrap()
            .consumer_id_list,
        ["10.0.0.5@777#1"]
    );
    let bad = broker
        .call(RemotingCommand::request(request::HEART_BEAT).with_body(b"{not json".to_vec()))
        .await;
    assert_eq!(bad.code, response::SYSTEM_ERROR);
}

fn lock_request(code: i32, client_id: &str, queues: &[i32]) -> RemotingCommand {
    let body = LockBatchRequestBody {
        consumer_group: "OG".into(),
        client_id: client_id.into(),
        only_this_broker: false,
        mq_set: queues
            .iter()
            .map(|&q| MessageQueue::new("LockTopic", "broker-t", q))
            .collect(),
    };
    RemotingCommand::request(code).with_body(body.encode())
}

#[tokio::test]
async fn queue_locks_have_one_holder() {
    let broker = TestBroker::start().await;
    send_tagged(&broker, "LockTopic", 0, "a", b"x").await;
    let locked = broker
        .call(lock_request(request::LOCK_BATCH_MQ, "c1", &[0, 1]))
        .await;
    assert_eq!(locked.code, response::SUCCESS);
    let ok: BTreeSet<i32> = LockBatchResponseBody::decode(&locked.body)
        .unwrap()
        .lock_ok_mq_set
        .iter()
        .map(|mq| mq.queue_id)
        .collect();
    assert_eq!(ok, BTreeSet::from([0, 1]));
    assert!(String::from_utf8_lossy(&locked.body).contains("lockOKMQSet"));

    let other = broker
        .call(lock_request(request::LOCK_BATCH_MQ, "c2", &[1, 2, 99]))
        .await;
    let ok: BTreeSet<i32> = LockBatchResponseBody::decode(&other.body)
        .unwrap()
        .lock_ok_mq_set
        .iter()
        .map(|mq| mq.queue_id)
        .collect();
    assert_eq!(
        ok,
        BTreeSet::from([2]),
        "queue 1 is held; queue 99 does not exist"
    );

    let unlocked = broker
        .call(lock_request(request::UNLOCK_BATCH_MQ, "c1", &[1]))
        .await;
    assert_eq!(unlocked.code, response::SUCCESS);
    let other = broker
        .call(lock_request(request::LOCK_BATCH_MQ, "c2", &[1]))
        .await;
    assert_eq!(
        LockBatchResponseBody::decode(&other.body)
            .unwrap()
            .lock_ok_mq_set
            .len(),
        1
    );
}

fn send_back(offset: i64, max_reconsume_times: i32) -> RemotingCommand {
    RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK).with_header(
        &ConsumerSendMsgBackRequestHeader {
            offset,
            group: "RG".into(),
            delay_level: 0,
            origin_msg_id: None,
            origin_topic: Some("OrigTopic".into()),
            unit_mode: false,
            max_reconsume_times: Some(max_reconsume_times),
        },
    )
}

/// Pulls a queue from `offset` until it has a message (retries wait in the schedule first).
async fn pull_when_delivered(broker: &TestBroker, topic: &str, offset: i64) -> RemotingCommand {
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    loop {
        let pulled = broker
            .call(pull(&pull_header("RG", topic, 0, offset)))
            .await;
        if pulled.code == response::SUCCESS {
            return pulled;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} got nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sent_back_messages_go_to_the_retry_topic_then_the_dlq() {
    // Retries wait at level 3 + reconsumeTimes; one short level keeps the test quick.
    let broker =
        TestBroker::start_with(|config| config.store.message_delay_level = "1s".parse().unwrap())
            .await;
    let sent = send_tagged(&broker, "OrigTopic", 0, "TagA", b"payload").await;
    let offset = decode_offset_msg_id(sent.ext_field("msgId").unwrap())
        .unwrap()
        .commit_log_offset;
    let back = broker.call(send_back(offset, 2)).await;
    assert_eq!(back.code, response::SUCCESS, "{:?}", back.remark);
    let pulled = pull_when_delivered(&broker, "%RETRY%RG", 0).await;
    let retried = decode_all(&pulled.body).unwrap();
    assert_eq!(retried[0].body(), b"payload");
    assert_eq!(retried[0].reconsume_times(), 1);
    assert_eq!(retried[0].property("RETRY_TOPIC"), Some("OrigTopic"));
    assert_eq!(retried[0].tags(), Some("TagA"));

    // Sending the retried copy back again reaches the limit of 2: dead letter.
    let back = broker
        .call(send_back(retried[0].physical_offset(), 2))
        .await;
    assert_eq!(back.code, response::SUCCESS);
    let again = pull_when_delivered(&broker, "%RETRY%RG", 1).await;
    let twice = decode_all(&again.body).unwrap();
    assert_eq!(twice[0].reconsume_times(), 2);
    let back = broker.call(send_back(twice[0].physical_offset(), 2)).await;
    assert_eq!(back.code, response::SUCCESS);
    let dead = broker.call(pull(&pull_header("RG", "%DLQ%RG", 0, 0))).await;
    assert_eq!(dead.code, response::SUCCESS, "{:?}", dead.remark);
    let dead = decode_all(&dead.body).unwrap();
    assert_eq!(dead[0].body(), b"payload");
    assert_eq!(dead[0].property("DLQ_ORIGIN_TOPIC"), Some("OrigTopic"));

    let missing = broker.call(send_back(1 << 40, 2)).await;
    assert_eq!(missing.code, response::SYSTEM_ERROR);
}

#[tokio::test]
async fn client_config_checks_accept_tags_and_refuse_sql92() {
    let broker = TestBroker::start().await;
    let check = |expression: &str, kind: &str| {
        let mut subscription = SubscriptionData::tag("T", "*", 1).unwrap();
        subscription.sub_string = expression.into();
        subscription.expression_type = kind.into();
        let body = CheckClientRequestBody {
            client_id: "c".into(),
            group: "G".into(),
            subscription_data: Some(subscription),
            namespace: None,
        };
        RemotingCommand::request(request::CHECK_CLIENT_CONFIG)
            .with_body(serde_json::to_vec(&body).unwrap())
    };
    assert_eq!(
        broker.call(check("TagA || TagB", "TAG")).await.code,
        response::SUCCESS
    );
    assert_eq!(
        broker.call(check("a > 1", "SQL92")).await.code,
        response::SYSTEM_ERROR
    );
}

#[tokio::test]
async fn unknown_request_codes_are_not_supported() {
    let broker = TestBroker::start().await;
    let answer = broker.call(RemotingCommand::request(9_999)).await;
    assert_eq!(answer.code, response::REQUEST_CODE_NOT_SUPPORTED);
    assert_eq!(
        answer.remark.as_deref(),
        Some(" request type 9999 not supported")
    );
}

#[tokio::test]
async fn silent_clients_expire() {
    let broker = TestBroker::start_with(|c| {
        c.channel_expired_timeout = Duration::from_millis(1000);
    })
    .await;
    let beat = broker.call(consumer_heartbeat("quiet", "ExpG", "T")).await;
    assert_eq!(beat.code, response::SUCCESS);
    assert_eq!(
        broker.call(consumer_list("ExpG")).await.code,
        response::SUCCESS
    );
    // No more heartbeats: the housekeeping drops the client (and closes its connection).
    let mut gone = false;
    for _ in 0..400 {
        if broker.ctx().consumers.consumer_ids("ExpG").is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "the silent client was never expired");
}
