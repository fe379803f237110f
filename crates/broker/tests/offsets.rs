//! Consumer offsets (commit, query, new groups, persistence) and queue offset queries.

mod support;

use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::offset::{
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, QueryConsumerOffsetRequestHeader,
    SearchOffsetRequestHeader,
};
use support::*;

#[tokio::test]
async fn committed_offsets_are_answered_and_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    send_tagged(&broker, "OffTopic", 0, "a", b"x").await;
    let updated = broker.call(update_offset("CG", "OffTopic", 2, 7)).await;
    assert_eq!(updated.code, response::SUCCESS, "{:?}", updated.remark);
    let queried = broker.call(query_offset("CG", "OffTopic", 2)).await;
    assert_eq!(ext_i64(&queried, "offset"), 7);

    broker.restart().await;
    let queried = broker.call(query_offset("CG", "OffTopic", 2)).await;
    assert_eq!(queried.code, response::SUCCESS);
    assert_eq!(ext_i64(&queried, "offset"), 7);
    assert!(
        broker.ctx().topics.get("OffTopic").is_some(),
        "topic configs survive too"
    );
}

#[tokio::test]
async fn a_new_group_starts_at_zero_on_a_young_queue_unless_told_not_to() {
    let broker = TestBroker::start().await;
    send_tagged(&broker, "YoungTopic", 0, "a", b"x").await;
    // Never committed: the queue still starts at 0 and that message is in memory.
    let queried = broker.call(query_offset("NewGroup", "YoungTopic", 0)).await;
    assert_eq!(queried.code, response::SUCCESS);
    assert_eq!(ext_i64(&queried, "offset"), 0);
    // An empty queue, too.
    let queried = broker.call(query_offset("NewGroup", "YoungTopic", 1)).await;
    assert_eq!(ext_i64(&queried, "offset"), 0);
    let strict = RemotingCommand::request(request::QUERY_CONSUMER_OFFSET).with_header(
        &QueryConsumerOffsetRequestHeader {
            consumer_group: "NewGroup".into(),
            topic: "YoungTopic".into(),
            queue_id: 0,
            set_zero_if_not_found: Some(false),
        },
    );
    assert_eq!(broker.call(strict).await.code, response::QUERY_NOT_FOUND);
}

#[tokio::test]
async fn offset_commits_are_checked() {
    let broker = TestBroker::start().await;
    send_tagged(&broker, "ChkTopic", 0, "a", b"x").await;
    assert_eq!(
        broker.call(update_offset("CG", "NoTopic", 0, 1)).await.code,
        response::TOPIC_NOT_EXIST
    );
    assert_eq!(
        broker
            .call(update_offset("CG", "ChkTopic", 99, 1))
            .await
            .code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        broker
            .call(update_offset("CG", "ChkTopic", 0, -5))
            .await
            .code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        broker
            .call(update_offset("bad group!", "ChkTopic", 0, 1))
            .await
            .code,
        response::INVALID_PARAMETER
    );
}

fn max_offset(topic: &str, queue_id: i32) -> RemotingCommand {
    RemotingCommand::request(request::GET_MAX_OFFSET).with_header(&GetMaxOffsetRequestHeader {
        topic: topic.into(),
        queue_id,
        committed: true,
    })
}

#[tokio::test]
async fn queue_offsets_and_time_search() {
    let broker = TestBroker::start().await;
    for _ in 0..3 {
        send_tagged(&broker, "QTopic", 1, "a", b"x").await;
    }
    let max = broker.call(max_offset("QTopic", 1)).await;
    assert_eq!(ext_i64(&max, "offset"), 3);
    let min = broker
        .call(
            RemotingCommand::request(request::GET_MIN_OFFSET).with_header(
                &GetMinOffsetRequestHeader {
                    topic: "QTopic".into(),
                    queue_id: 1,
                },
            ),
        )
        .await;
    assert_eq!(ext_i64(&min, "offset"), 0);
    let unknown = broker.call(max_offset("Nothing", 0)).await;
    assert_eq!(ext_i64(&unknown, "offset"), 0);
    let search = |timestamp: i64| {
        RemotingCommand::request(request::SEARCH_OFFSET_BY_TIMESTAMP).with_header(
            &SearchOffsetRequestHeader {
                topic: "QTopic".into(),
                queue_id: 1,
                timestamp,
                boundary_type: Default::default(),
            },
        )
    };
    assert_eq!(ext_i64(&broker.call(search(0)).await, "offset"), 0);
    assert_eq!(
        ext_i64(&broker.call(search(i64::MAX / 2)).await, "offset"),
        3
    );
}
