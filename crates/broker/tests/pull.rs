//! PULL_MESSAGE rules: codes and nextBeginOffset, tag filtering, subscriptions from
//! heartbeats, long polling.

mod support;

use std::time::Duration;

use message::decode_all;
use message::sysflag::pull as pull_flag;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::CallError;
use remoting::header::pull::PullMessageRequestHeader;
use support::*;
use tokio::task::JoinHandle;

async fn fill(broker: &TestBroker, topic: &str, tags: &[&str]) {
    for (i, tag) in tags.iter().enumerate() {
        let sent = send_tagged(broker, topic, 0, tag, format!("m{i}").as_bytes()).await;
        assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    }
}

fn offsets(pulled: &RemotingCommand) -> (i64, i64, i64) {
    (
        ext_i64(pulled, "nextBeginOffset"),
        ext_i64(pulled, "minOffset"),
        ext_i64(pulled, "maxOffset"),
    )
}

#[tokio::test]
async fn found_messages_are_the_stored_records_and_carry_all_offsets() {
    let broker = TestBroker::start().await;
    fill(&broker, "PullTopic", &["TagA", "TagB", "TagA"]).await;
    let pulled = broker
        .call(pull(&pull_header("G", "PullTopic", 0, 1)))
        .await;
    assert_eq!(pulled.code, response::SUCCESS);
    assert_eq!(pulled.ext_field("suggestWhichBrokerId"), Some("0"));
    assert_eq!(offsets(&pulled), (3, 0, 3));
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].body(), b"m1");
    assert_eq!(messages[0].queue_offset(), 1);
    assert_eq!(messages[1].tags(), Some("TagA"));

    let mut few = pull_header("G", "PullTopic", 0, 0);
    few.max_msg_nums = 1;
    let pulled = broker.call(pull(&few)).await;
    assert_eq!(decode_all(&pulled.body).unwrap().len(), 1);
    assert_eq!(ext_i64(&pulled, "nextBeginOffset"), 1);
}

#[tokio::test]
async fn illegal_offsets_get_offset_moved_with_the_right_next_begin_offset() {
    let broker = TestBroker::start().await;
    fill(&broker, "MoveTopic", &["a", "b"]).await;
    // Caught up: nothing new, continue at the same offset.
    let pulled = broker
        .call(pull(&pull_header("G", "MoveTopic", 0, 2)))
        .await;
    assert_eq!(pulled.code, response::PULL_NOT_FOUND);
    assert_eq!(offsets(&pulled), (2, 0, 2));
    // Past the end: RocketMQ corrects to the min offset while it is 0, else to the max.
    let pulled = broker
        .call(pull(&pull_header("G", "MoveTopic", 0, 9)))
        .await;
    assert_eq!(pulled.code, response::PULL_OFFSET_MOVED);
    assert_eq!(ext_i64(&pulled, "nextBeginOffset"), 0);
    // An empty queue: offset 0 is simply "nothing yet", any other offset moved to 0.
    let pulled = broker
        .call(pull(&pull_header("G", "MoveTopic", 1, 0)))
        .await;
    assert_eq!(pulled.code, response::PULL_NOT_FOUND);
    let pulled = broker
        .call(pull(&pull_header("G", "MoveTopic", 1, 5)))
        .await;
    assert_eq!(pulled.code, response::PULL_OFFSET_MOVED);
    assert_eq!(offsets(&pulled), (0, 0, 0));
}

#[tokio::test]
async fn tag_expressions_filter_on_the_broker() {
    let broker = TestBroker::start().await;
    fill(&broker, "TagTopic", &["TagA", "TagB", "TagC", "TagB"]).await;
    let mut header = pull_header("G", "TagTopic", 0, 0);
    header.subscription = Some("TagB || TagC".into());
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUCCESS);
    let tags: Vec<_> = decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(|m| m.tags().unwrap().to_owned())
        .collect();
    assert_eq!(tags, ["TagB", "TagC", "TagB"]);
    // Entries exist but none match: retry immediately from after them.
    header.subscription = Some("TagZ".into());
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::PULL_RETRY_IMMEDIATELY);
    assert_eq!(ext_i64(&pulled, "nextBeginOffset"), 4);
    // Bad expressions.
    header.subscription = Some("||".into());
    assert_eq!(
        broker.call(pull(&header)).await.code,
        response::SUBSCRIPTION_PARSE_FAILED
    );
    header.subscription = Some("a > 1".into());
    header.expression_type = Some("SQL92".into());
    assert_eq!(
        broker.call(pull(&header)).await.code,
        response::SYSTEM_ERROR
    );
}

#[tokio::test]
async fn queue_and_topic_checks() {
    let broker = TestBroker::start().await;
    fill(&broker, "CheckTopic", &["a"]).await;
    let pulled = broker
        .call(pull(&pull_header("G", "NoSuchTopic", 0, 0)))
        .await;
    assert_eq!(pulled.code, response::TOPIC_NOT_EXIST);
    assert!(pulled.ext_field("nextBeginOffset").is_some());
    let pulled = broker
        .call(pull(&pull_header("G", "CheckTopic", 4, 0)))
        .await;
    assert_eq!(pulled.code, response::INVALID_PARAMETER);
    let pulled = broker
        .call(pull(&pull_header("G", "CheckTopic", -1, 0)))
        .await;
    assert_eq!(pulled.code, response::INVALID_PARAMETER);
    let mut bad_header = pull(&pull_header("G", "CheckTopic", 0, 0));
    bad_header
        .ext_fields
        .insert("queueOffset".into(), "many".into());
    let pulled = broker.call(bad_header).await;
    assert_eq!(pulled.code, response::SYSTEM_ERROR);
    assert!(pulled.ext_field("nextBeginOffset").is_some());
}

#[tokio::test]
async fn pulls_without_a_subscription_use_the_heartbeat_one() {
    let broker = TestBroker::start().await;
    fill(&broker, "HbTopic", &["TagA", "TagB"]).await;
    let mut header = pull_header("HbGroup", "HbTopic", 0, 0);
    header.sys_flag = 0;
    header.subscription = None;
    header.sub_version = 5;
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUBSCRIPTION_NOT_EXIST);

    let beat = broker
        .call(tag_heartbeat(
            "127.0.0.1@test",
            "HbGroup",
            "HbTopic",
            "TagB",
            4,
        ))
        .await;
    assert_eq!(beat.code, response::SUCCESS);
    assert_eq!(beat.version, 479);
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUBSCRIPTION_NOT_LATEST);

    broker
        .call(tag_heartbeat(
            "127.0.0.1@test",
            "HbGroup",
            "HbTopic",
            "TagB",
            5,
        ))
        .await;
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUCCESS, "{:?}", pulled.remark);
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].tags(), Some("TagB"));
}

/// A Java 5.x push consumer raises its subscription version on each rebalance and can lose
/// the heartbeat saying so to its own scheduled one (apache/rocketmq#3434). A registered
/// `*` hides nothing, so its newer pulls are served rather than idled for 30 s; any other
/// registered expression, or a newer pull of another expression type, still waits for the
/// heartbeat.
#[tokio::test]
async fn a_newer_pull_is_served_when_the_registered_subscription_takes_every_tag() {
    let broker = TestBroker::start().await;
    fill(&broker, "AllTopic", &["TagA", "TagB"]).await;
    let beat = broker
        .call(tag_heartbeat(
            "127.0.0.1@test",
            "AllGroup",
            "AllTopic",
            "*",
            4,
        ))
        .await;
    assert_eq!(beat.code, response::SUCCESS);
    let mut header = pull_header("AllGroup", "AllTopic", 0, 0);
    header.sys_flag = 0;
    header.subscription = None;
    header.sub_version = 5;
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUCCESS, "{:?}", pulled.remark);
    assert_eq!(decode_all(&pulled.body).unwrap().len(), 2);

    header.expression_type = Some("SQL92".into());
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::SUBSCRIPTION_NOT_LATEST);
}

#[tokio::test]
async fn pulls_commit_the_consumer_offset_when_asked() {
    let broker = TestBroker::start().await;
    fill(&broker, "CommitTopic", &["a", "b"]).await;
    let mut header = pull_header("CG", "CommitTopic", 0, 2);
    header.sys_flag |= pull_flag::COMMIT_OFFSET;
    header.commit_offset = 2;
    broker.call(pull(&header)).await;
    let queried = broker.call(query_offset("CG", "CommitTopic", 0)).await;
    assert_eq!(queried.code, response::SUCCESS);
    assert_eq!(ext_i64(&queried, "offset"), 2);
}

/// Sends `header` as a long poll held up to 20 s, far longer than a test is allowed to wait
/// (only an arrival or a shutdown can answer it in time), and returns once the broker has
/// parked it.
async fn park(
    broker: &TestBroker,
    mut header: PullMessageRequestHeader,
) -> JoinHandle<Result<RemotingCommand, CallError>> {
    header.sys_flag |= pull_flag::SUSPEND;
    header.suspend_timeout_millis = 20_000;
    let client = broker.client.clone();
    let addr = broker.addr();
    let parked = tokio::spawn(async move {
        client
            .invoke(&addr, pull(&header), Duration::from_secs(30))
            .await
    });
    until_parked(broker, 1).await;
    parked
}

/// The answer to a parked pull; `why` says what should have brought it within 10 s.
async fn answer(
    parked: JoinHandle<Result<RemotingCommand, CallError>>,
    why: &str,
) -> RemotingCommand {
    tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect(why)
        .unwrap()
        .unwrap()
}

/// Waits (bounded) until `count` pulls are parked.
async fn until_parked(broker: &TestBroker, count: usize) {
    for _ in 0..2000 {
        if broker.ctx().long_poll.parked() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{count} pulls never parked");
}

#[tokio::test]
async fn a_parked_pull_wakes_when_a_message_arrives() {
    let broker = TestBroker::start().await;
    fill(&broker, "LongTopic", &["x"]).await;
    let parked = park(&broker, pull_header("G", "LongTopic", 0, 1)).await;
    assert!(!parked.is_finished(), "nothing arrived yet");
    fill(&broker, "LongTopic", &["y"]).await;
    let pulled = answer(parked, "the arrival woke the pull").await;
    assert_eq!(pulled.code, response::SUCCESS);
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].queue_offset(), 1);
    assert_eq!(broker.ctx().long_poll.parked(), 0);
}

#[tokio::test]
async fn a_parked_pull_ignores_arrivals_its_filter_rejects() {
    let broker = TestBroker::start().await;
    fill(&broker, "FilterLong", &["TagA"]).await;
    let mut header = pull_header("G", "FilterLong", 0, 1);
    header.subscription = Some("TagA".into());
    let parked = park(&broker, header).await;
    fill(&broker, "FilterLong", &["TagB", "TagB"]).await;
    fill(&broker, "FilterLong", &["TagA"]).await;
    let pulled = answer(parked, "the matching arrival woke the pull").await;
    assert_eq!(pulled.code, response::SUCCESS);
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages.len(), 1, "only the TagA message");
    assert_eq!(messages[0].tags(), Some("TagA"));
    assert_eq!(messages[0].queue_offset(), 3);
    assert_eq!(ext_i64(&pulled, "nextBeginOffset"), 4);
}

#[tokio::test]
async fn a_parked_pull_answers_not_found_when_its_time_runs_out() {
    let broker = TestBroker::start().await;
    fill(&broker, "QuietTopic", &["x"]).await;
    let mut header = pull_header("G", "QuietTopic", 0, 1);
    header.sys_flag |= pull_flag::SUSPEND;
    header.suspend_timeout_millis = 50;
    let pulled = broker.call(pull(&header)).await;
    assert_eq!(pulled.code, response::PULL_NOT_FOUND);
    assert_eq!(ext_i64(&pulled, "nextBeginOffset"), 1);
}

#[tokio::test]
async fn shutdown_answers_parked_pulls() {
    let mut broker = TestBroker::start().await;
    fill(&broker, "ByeTopic", &["x"]).await;
    let parked = park(&broker, pull_header("G", "ByeTopic", 0, 1)).await;
    broker.stop().await;
    let answered = answer(parked, "shutdown answered the pull").await;
    assert_eq!(answered.code, response::PULL_NOT_FOUND);
}

#[tokio::test]
async fn a_parked_pull_woken_by_a_long_run_of_other_tags_sends_the_client_on() {
    use message::batch::{encode_batch, BatchItem};
    let broker = TestBroker::start().await;
    fill(&broker, "RunTopic", &["TagA"]).await;
    let mut header = pull_header("G", "RunTopic", 0, 1);
    header.subscription = Some("TagA".into());
    let parked = park(&broker, header).await;
    // One arrival: far more non-matching entries than one read scans, then a match.
    let other = props(&[("TAGS", "TagB")]);
    let wanted = props(&[("TAGS", "TagA")]);
    let mut items: Vec<BatchItem<'_>> = (0..1000)
        .map(|_| BatchItem {
            flag: 0,
            body: b"b",
            properties: &other,
        })
        .collect();
    items.push(BatchItem {
        flag: 0,
        body: b"a",
        properties: &wanted,
    });
    let mut batch = send_header("RunTopic", 0, "");
    batch.batch = Some(true);
    let sent = broker
        .call(send_batch(&batch, &encode_batch(items).unwrap()))
        .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    let answered = answer(parked, "the pull did not sit out its timeout").await;
    assert_eq!(answered.code, response::PULL_RETRY_IMMEDIATELY);
    let next = ext_i64(&answered, "nextBeginOffset");
    assert!(next > 1 && next <= 1001, "{next}");
    // Reading on from there finds the match.
    let mut header = pull_header("G", "RunTopic", 0, next);
    header.subscription = Some("TagA".into());
    let mut found = None;
    for _ in 0..10 {
        let pulled = broker.call(pull(&header)).await;
        if pulled.code == response::SUCCESS {
            found = Some(pulled);
            break;
        }
        header.queue_offset = ext_i64(&pulled, "nextBeginOffset");
    }
    let found = found.expect("the TagA message");
    assert_eq!(decode_all(&found.body).unwrap()[0].queue_offset(), 1001);
}
