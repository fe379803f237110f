//! Requests an operator's tools send to the broker that reach online consumers
//! (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY, INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
//! INVOKE_BROKER_TO_RESET_OFFSET), cloning a group's offsets and the system topic list.
//! A consumer here is a client connection that answers what the broker asks it.

mod support;

use std::sync::Arc;

use message::decode_all;
use message::sysflag::pull as pull_flag;
use remoting::body::{
    ConsumerRunningInfo, GetConsumerStatusBody, MessageQueue, ResetOffsetBody, SubscriptionData,
    TopicList,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::admin::CloneGroupOffsetRequestHeader;
use remoting::header::client::{
    ConsumeMessageDirectlyRequestHeader, GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader, ResetOffsetRequestHeader,
};
use support::*;
use tokio::sync::mpsc;

/// A consumer that answers the broker's questions as a Java client does, and reports
/// every request it gets.
struct Consumer(mpsc::UnboundedSender<RemotingCommand>);

impl RequestProcessor for Consumer {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let answer = match request.code {
            request::GET_CONSUMER_RUNNING_INFO => Some(
                RemotingCommand::success_to(&request)
                    .with_body(br#"{"properties":{"consumeType":"CONSUME_PASSIVELY"}}"#.to_vec()),
            ),
            request::CONSUME_MESSAGE_DIRECTLY => {
                let consumed = decode_all(&request.body).map_or(0, |m| m.len());
                Some(
                    RemotingCommand::success_to(&request)
                        .with_body(format!(r#"{{"consumed":{consumed}}}"#).into_bytes()),
                )
            }
            request::GET_CONSUMER_STATUS_FROM_CLIENT => {
                let mut body = GetConsumerStatusBody::default();
                body.message_queue_table
                    .insert(MessageQueue::new("CallTopic", "broker-t", 0), 1);
                Some(RemotingCommand::success_to(&request).with_body(body.encode()))
            }
            _ => None,
        };
        let _ = self.0.send(request);
        answer
    }
}

#[tokio::test]
async fn requests_reach_online_consumers_and_offsets_reset_and_clone() {
    let broker = TestBroker::start().await;
    let created = broker.call(create_topic("CallTopic", 2)).await;
    assert_eq!(created.code, response::SUCCESS);
    let mut sent = Vec::new();
    for i in 0..4 {
        let answer = broker
            .call(send_v2(
                &send_header("CallTopic", 0, ""),
                format!("m{i}").as_bytes(),
            ))
            .await;
        assert_eq!(answer.code, response::SUCCESS);
        sent.push(answer);
    }
    let committed = broker
        .call(update_offset("CallGroup", "CallTopic", 0, 1))
        .await;
    assert_eq!(committed.code, response::SUCCESS);

    // Nobody online yet: RocketMQ's refusals.
    let running_info = |client_id: &str| {
        RemotingCommand::request(request::GET_CONSUMER_RUNNING_INFO).with_header(
            &GetConsumerRunningInfoRequestHeader {
                consumer_group: "CallGroup".into(),
                client_id: client_id.into(),
                jstack_enable: false,
            },
        )
    };
    let offline = broker.call(running_info("c1")).await;
    assert_eq!(offline.code, response::SYSTEM_ERROR);
    assert!(offline.remark.unwrap().contains("not online"));
    let status = RemotingCommand::request(request::INVOKE_BROKER_TO_GET_CONSUMER_STATUS)
        .with_header(&GetConsumerStatusRequestHeader {
            topic: "CallTopic".into(),
            group: "CallGroup".into(),
            client_addr: None,
        });
    assert_eq!(
        broker.call(status.clone()).await.code,
        response::SYSTEM_ERROR
    );

    let (tx, mut inbox) = mpsc::unbounded_channel();
    let consumer = client_with_handler(Arc::new(Consumer(tx)));
    let beat = consumer
        .invoke(
            &broker.addr(),
            consumer_heartbeat("c1", "CallGroup", "CallTopic"),
            TEST_WAIT,
        )
        .await
        .unwrap();
    assert_eq!(beat.code, response::SUCCESS);

    let info = broker.call(running_info("c1")).await;
    assert_eq!(info.code, response::SUCCESS, "{:?}", info.remark);
    assert!(String::from_utf8_lossy(&info.body).contains("CONSUME_PASSIVELY"));

    let direct = RemotingCommand::request(request::CONSUME_MESSAGE_DIRECTLY).with_header(
        &ConsumeMessageDirectlyRequestHeader {
            consumer_group: "CallGroup".into(),
            client_id: Some("c1".into()),
            msg_id: sent[2].ext_field("msgId").map(str::to_owned),
            broker_name: None,
            topic: Some("CallTopic".into()),
            topic_sys_flag: None,
            group_sys_flag: None,
        },
    );
    let consumed = broker.call(direct).await;
    assert_eq!(consumed.code, response::SUCCESS, "{:?}", consumed.remark);
    assert_eq!(consumed.body.as_ref(), br#"{"consumed":1}"#);

    let status = broker.call(status).await;
    assert_eq!(status.code, response::SUCCESS, "{:?}", status.remark);
    let status = GetConsumerStatusBody::decode(&status.body).unwrap();
    assert_eq!(status.consumer_table["c1"].len(), 1);

    // Reset to the end of each queue (timestamp -1): committed, answered and pushed.
    let reset = RemotingCommand::request(request::INVOKE_BROKER_TO_RESET_OFFSET).with_header(
        &ResetOffsetRequestHeader {
            topic: "CallTopic".into(),
            group: "CallGroup".into(),
            timestamp: -1,
            is_force: true,
            queue_id: -1,
            offset: None,
        },
    );
    let reset = broker.call(reset).await;
    assert_eq!(reset.code, response::SUCCESS, "{:?}", reset.remark);
    let table = ResetOffsetBody::decode(&reset.body).unwrap().offset_table;
    assert_eq!(table[&MessageQueue::new("CallTopic", "broker-t", 0)], 4);
    assert_eq!(table[&MessageQueue::new("CallTopic", "broker-t", 1)], 0);
    assert_eq!(
        ext_i64(
            &broker.call(query_offset("CallGroup", "CallTopic", 0)).await,
            "offset"
        ),
        4
    );
    let notice = loop {
        let next = tokio::time::timeout(TEST_WAIT, inbox.recv())
            .await
            .expect("the consumer is told")
            .unwrap();
        if next.code == request::RESET_CONSUMER_CLIENT_OFFSET {
            break next;
        }
    };
    assert_eq!(notice.ext_field("group"), Some("CallGroup"));
    assert_eq!(
        ResetOffsetBody::decode(&notice.body).unwrap().offset_table,
        table
    );

    // Reset offsets only move back without isForce.
    let reset_to_zero = |is_force: bool| {
        RemotingCommand::request(request::INVOKE_BROKER_TO_RESET_OFFSET).with_header(
            &ResetOffsetRequestHeader {
                topic: "CallTopic".into(),
                group: "CallGroup".into(),
                timestamp: 0,
                is_force,
                queue_id: -1,
                offset: None,
            },
        )
    };
    let back = broker.call(reset_to_zero(false)).await;
    assert_eq!(back.code, response::SUCCESS, "{:?}", back.remark);
    assert_eq!(
        ext_i64(
            &broker.call(query_offset("CallGroup", "CallTopic", 0)).await,
            "offset"
        ),
        0
    );

    // Until a consumer pulls the queue again, its commits (made before it heard of the
    // reset) are ignored; that pull is moved to the reset offset.
    let stale = broker
        .call(update_offset("CallGroup", "CallTopic", 0, 3))
        .await;
    assert_eq!(stale.code, response::SUCCESS);
    assert_eq!(
        ext_i64(
            &broker.call(query_offset("CallGroup", "CallTopic", 0)).await,
            "offset"
        ),
        0
    );
    let moved = broker
        .call(pull(&pull_header("CallGroup", "CallTopic", 0, 3)))
        .await;
    assert_eq!(moved.code, response::PULL_OFFSET_MOVED);
    assert_eq!(ext_i64(&moved, "nextBeginOffset"), 0);
    let found = broker
        .call(pull(&pull_header("CallGroup", "CallTopic", 0, 0)))
        .await;
    assert_eq!(found.code, response::SUCCESS);
    let committed = broker
        .call(update_offset("CallGroup", "CallTopic", 0, 2))
        .await;
    assert_eq!(committed.code, response::SUCCESS);
    assert_eq!(
        ext_i64(
            &broker.call(query_offset("CallGroup", "CallTopic", 0)).await,
            "offset"
        ),
        2,
        "commits count again once the consumer pulled after the reset"
    );
    let back = broker.call(reset_to_zero(true)).await;
    assert_eq!(back.code, response::SUCCESS);
    // A consumer the notice reached already reads from the reset offset: served, not moved
    // (Java clients moved again would drop the queue and idle until a rebalance).
    let mut notified = pull_header("CallGroup", "CallTopic", 0, 0);
    notified.sys_flag |= pull_flag::COMMIT_OFFSET;
    notified.commit_offset = 2;
    let served = broker.call(pull(&notified)).await;
    assert_eq!(served.code, response::SUCCESS, "{:?}", served.remark);
    assert_eq!(
        ext_i64(
            &broker.call(query_offset("CallGroup", "CallTopic", 0)).await,
            "offset"
        ),
        0,
        "the first pull after a reset commits nothing"
    );

    let clone = RemotingCommand::request(request::CLONE_GROUP_OFFSET).with_header(
        &CloneGroupOffsetRequestHeader {
            src_group: "CallGroup".into(),
            dest_group: "CloneGroup".into(),
            topic: None,
            offline: false,
        },
    );
    assert_eq!(broker.call(clone).await.code, response::SUCCESS);
    let cloned = broker
        .call(query_offset("CloneGroup", "CallTopic", 0))
        .await;
    assert_eq!(cloned.code, response::SUCCESS);
    assert_eq!(ext_i64(&cloned, "offset"), 0);

    let missing = RemotingCommand::request(request::INVOKE_BROKER_TO_RESET_OFFSET).with_header(
        &ResetOffsetRequestHeader {
            topic: "NoSuchTopic".into(),
            group: "CallGroup".into(),
            timestamp: -1,
            is_force: true,
            queue_id: -1,
            offset: None,
        },
    );
    assert_eq!(broker.call(missing).await.code, response::TOPIC_NOT_EXIST);

    let system = broker
        .call(RemotingCommand::request(
            request::GET_SYSTEM_TOPIC_LIST_FROM_BROKER,
        ))
        .await;
    assert_eq!(system.code, response::SUCCESS);
    let list: TopicList = serde_json::from_slice(&system.body).unwrap();
    assert!(list.topic_list.contains("SCHEDULE_TOPIC_XXXX"));
}

/// A consumer whose running info reports `reported` as its subscription, newer than the one
/// its heartbeat registered (as a Java 5.x client's is after a rebalance whose heartbeat
/// lost the client's own race, apache/rocketmq#3434).
struct Reporter {
    reported: Option<SubscriptionData>,
}

impl RequestProcessor for Reporter {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        if request.code != request::GET_CONSUMER_RUNNING_INFO {
            return None;
        }
        let info = ConsumerRunningInfo {
            subscription_set: self.reported.iter().cloned().collect(),
            ..ConsumerRunningInfo::default()
        };
        Some(RemotingCommand::success_to(&request).with_body(info.encode()))
    }
}

/// A pull whose subscription is newer than the registered one makes the broker ask the
/// group's members for theirs: the newer one a member reports is taken and the pull served
/// with it; a member that reports nothing newer leaves the pull refused until its next
/// heartbeat, as RocketMQ refuses it.
#[tokio::test]
async fn a_newer_pull_is_served_once_the_consumer_reports_its_subscription() {
    let broker = TestBroker::start().await;
    for (i, tag) in ["TagA", "TagB"].iter().enumerate() {
        let sent = send_tagged(&broker, "CheckTopic", 0, tag, format!("m{i}").as_bytes()).await;
        assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    }
    let mut stale_pull = pull_header("CheckGroup", "CheckTopic", 0, 0);
    stale_pull.sys_flag = 0;
    stale_pull.subscription = None;
    stale_pull.sub_version = 5;

    let silent = client_with_handler(Arc::new(Reporter { reported: None }));
    let beat = silent
        .invoke(
            &broker.addr(),
            tag_heartbeat("c1", "CheckGroup", "CheckTopic", "TagB", 4),
            TEST_WAIT,
        )
        .await
        .unwrap();
    assert_eq!(beat.code, response::SUCCESS);
    let refused = silent
        .invoke(&broker.addr(), pull(&stale_pull), TEST_WAIT)
        .await
        .unwrap();
    assert_eq!(refused.code, response::SUBSCRIPTION_NOT_LATEST);
    silent.shutdown();

    let reporter = client_with_handler(Arc::new(Reporter {
        reported: Some(SubscriptionData::tag("CheckTopic", "TagB", 5).unwrap()),
    }));
    let beat = reporter
        .invoke(
            &broker.addr(),
            tag_heartbeat("c2", "CheckGroup", "CheckTopic", "TagB", 4),
            TEST_WAIT,
        )
        .await
        .unwrap();
    assert_eq!(beat.code, response::SUCCESS);
    // The group was asked less than a second ago: bounded retries until it may be again.
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    let served = loop {
        let pulled = reporter
            .invoke(&broker.addr(), pull(&stale_pull), TEST_WAIT)
            .await
            .unwrap();
        if pulled.code != response::SUBSCRIPTION_NOT_LATEST
            || tokio::time::Instant::now() > deadline
        {
            break pulled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(served.code, response::SUCCESS, "{:?}", served.remark);
    let messages = decode_all(&served.body).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].tags(), Some("TagB"));
}
