//! Delayed messages and delayed retries: a message with a `DELAY` level waits in
//! SCHEDULE_TOPIC_XXXX and reaches its topic, intact, once its level's delay has passed;
//! levels above the last are clamped; delivery progress survives a restart; a message sent
//! back for retry waits at level 3 + reconsumeTimes, and one past its retries goes to the
//! dead-letter queue at once.
//!
//! The brokers here use delay levels of seconds. Whether a message waited is judged by
//! store times (the delivered copy is stored at least the delay after the waiting one),
//! never by how long a test took.

mod support;

use std::time::Duration;

use broker::schedule::{PROGRESS_GROUP, SCHEDULE_TOPIC};
use message::{decode_all, decode_offset_msg_id, MessageView, StoredMessage};
use remoting::code::response;
use remoting::command::RemotingCommand;
use support::*;
use tests::requests::send_back;

async fn broker_with_levels(levels: &'static str) -> TestBroker {
    TestBroker::start_with(|config| config.store.message_delay_level = levels.parse().unwrap())
        .await
}

/// Sends one message to `topic` queue 0 with `properties` and returns the response.
async fn send(
    broker: &TestBroker,
    topic: &str,
    properties: &[(&str, &str)],
    body: &[u8],
) -> RemotingCommand {
    let sent = broker
        .call(send_v2(&send_header(topic, 0, &props(properties)), body))
        .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    sent
}

/// The stored record a send response's msgId names.
fn stored_record(broker: &TestBroker, sent: &RemotingCommand) -> StoredMessage {
    let offset = decode_offset_msg_id(sent.ext_field("msgId").unwrap())
        .unwrap()
        .commit_log_offset;
    stored_at(broker, offset)
}

fn stored_at(broker: &TestBroker, commit_log_offset: i64) -> StoredMessage {
    let record = broker
        .ctx()
        .store
        .reader()
        .message_at(commit_log_offset)
        .unwrap();
    MessageView::parse(&record).unwrap().to_owned_message()
}

/// Every message of a queue from offset 0 (at most 32).
async fn pull_all(broker: &TestBroker, topic: &str, queue_id: i32) -> Vec<StoredMessage> {
    let pulled = broker
        .call(pull(&pull_header("CG", topic, queue_id, 0)))
        .await;
    if pulled.code != response::SUCCESS {
        return Vec::new();
    }
    decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(MessageView::to_owned_message)
        .collect()
}

/// Waits (bounded) until a queue holds at least `count` messages and returns them.
async fn wait_for(
    broker: &TestBroker,
    topic: &str,
    queue_id: i32,
    count: usize,
) -> Vec<StoredMessage> {
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    loop {
        let messages = pull_all(broker, topic, queue_id).await;
        if messages.len() >= count {
            return messages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}/{queue_id} has {} messages, expected {count}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the schedule service's recorded progress covers every waiting message (after
/// that it delivers nothing more).
fn everything_delivered(ctx: &broker::BrokerContext) -> bool {
    (0..ctx.delay_levels.max_level()).all(|queue_id| {
        let waiting = ctx.store.reader().max_offset(SCHEDULE_TOPIC, queue_id);
        let delivered = ctx
            .offsets
            .query(PROGRESS_GROUP, SCHEDULE_TOPIC, queue_id)
            .unwrap_or(0);
        delivered >= waiting
    })
}

async fn wait_until_everything_delivered(broker: &TestBroker) {
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    while !everything_delivered(broker.ctx()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule service did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_waits_for_its_level_then_arrives_intact() {
    let broker = broker_with_levels("1s 2s").await;
    let sent = send(
        &broker,
        "DelayTopic",
        &[
            ("TAGS", "TagA"),
            ("KEYS", "order-1 order-2"),
            ("UNIQ_KEY", "7F0000010001000000000000AAAA"),
            ("color", "blue"),
            ("DELAY", "2"),
        ],
        b"later",
    )
    .await;
    assert_eq!(
        ext_i64(&sent, "queueId"),
        0,
        "the answer names the queue sent to"
    );
    assert!(
        pull_all(&broker, "DelayTopic", 0).await.is_empty(),
        "not in its topic right after the send"
    );
    let waiting = stored_record(&broker, &sent);
    assert_eq!(waiting.topic, SCHEDULE_TOPIC);
    assert_eq!(waiting.queue_id, 1, "level 2 waits in queue 1");
    assert_eq!(waiting.property("REAL_TOPIC"), Some("DelayTopic"));
    assert_eq!(waiting.property("REAL_QID"), Some("0"));

    let delivered = wait_for(&broker, "DelayTopic", 0, 1).await;
    assert_eq!(delivered.len(), 1);
    let message = &delivered[0];
    assert!(
        message.store_timestamp_ms >= waiting.store_timestamp_ms + 2_000,
        "delivered {} ms after it was stored to wait; level 2 is 2 s",
        message.store_timestamp_ms - waiting.store_timestamp_ms
    );
    assert_eq!(message.body, b"later");
    assert_eq!(
        (message.topic.as_str(), message.queue_id),
        ("DelayTopic", 0)
    );
    assert_eq!(message.tags(), Some("TagA"));
    assert_eq!(message.keys(), Some("order-1 order-2"));
    assert_eq!(message.property("color"), Some("blue"));
    assert_eq!(message.uniq_key(), Some("7F0000010001000000000000AAAA"));
    assert_eq!(
        sent.ext_field("transactionId"),
        Some("7F0000010001000000000000AAAA"),
        "the producer saw the id consumers see"
    );
    for gone in ["DELAY", "REAL_TOPIC", "REAL_QID"] {
        assert_eq!(
            message.property(gone),
            None,
            "{gone} is removed on delivery"
        );
    }
    assert_ne!(message.offset_msg_id, waiting.offset_msg_id, "a new record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_above_the_last_are_clamped_and_no_level_is_no_delay() {
    let broker = broker_with_levels("1s 2s").await;
    let clamped = send(&broker, "ClampTopic", &[("DELAY", "40")], b"clamped").await;
    let waiting = stored_record(&broker, &clamped);
    assert_eq!(waiting.queue_id, 1, "level 40 becomes the last level, 2");
    assert_eq!(waiting.property("DELAY"), Some("2"));

    for (level, body) in [("0", "zero"), ("-3", "negative")] {
        let sent = send(&broker, "NowTopic", &[("DELAY", level)], body.as_bytes()).await;
        assert_eq!(stored_record(&broker, &sent).topic, "NowTopic");
    }
    let now = pull_all(&broker, "NowTopic", 0).await;
    assert_eq!(now.len(), 2, "no level means stored for delivery at once");

    let delivered = wait_for(&broker, "ClampTopic", 0, 1).await;
    assert_eq!(delivered[0].body, b"clamped");
    assert!(delivered[0].store_timestamp_ms >= waiting.store_timestamp_ms + 2_000);

    // A batch cannot be delayed, and nobody sends into the schedule topic directly.
    let mut batch_header = send_header("ClampTopic", 0, &props(&[("DELAY", "1")]));
    batch_header.batch = Some(true);
    let batch = broker.call(send_batch(&batch_header, b"")).await;
    assert_eq!(batch.code, response::MESSAGE_ILLEGAL, "{:?}", batch.remark);
    let direct = broker
        .call(send_v2(&send_header(SCHEDULE_TOPIC, 0, ""), b"sneaky"))
        .await;
    assert_eq!(direct.code, response::NO_PERMISSION);
    assert!(
        broker.ctx().topics.get(SCHEDULE_TOPIC).is_none(),
        "not a client topic"
    );
    let pulled = broker
        .call(pull(&pull_header("CG", SCHEDULE_TOPIC, 1, 0)))
        .await;
    assert_eq!(pulled.code, response::TOPIC_NOT_EXIST);
    // Nor can a client move the delivery progress by committing offsets as its group.
    let moved = broker
        .call(update_offset(PROGRESS_GROUP, SCHEDULE_TOPIC, 0, 1_000))
        .await;
    assert_eq!(moved.code, response::TOPIC_NOT_EXIST, "{:?}", moved.remark);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_progress_survives_a_restart() {
    let mut broker = broker_with_levels("1s 2s").await;
    send(&broker, "RestartTopic", &[("DELAY", "1")], b"before").await;
    wait_for(&broker, "RestartTopic", 0, 1).await;
    wait_until_everything_delivered(&broker).await;

    let sent = send(&broker, "RestartTopic", &[("DELAY", "2")], b"while-down").await;
    let waiting = stored_record(&broker, &sent);
    broker.stop().await;
    // Down until the message is due, so it is delivered by the restarted broker.
    let due_ms = waiting.store_timestamp_ms + 2_000;
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    while broker::clock::now_ms() <= due_ms {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.running = Some(broker::start(broker.config.clone()).await.unwrap());

    let delivered = wait_for(&broker, "RestartTopic", 0, 2).await;
    wait_until_everything_delivered(&broker).await;
    let delivered_after = pull_all(&broker, "RestartTopic", 0).await;
    let bodies: Vec<&[u8]> = delivered_after.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(
        bodies,
        [&b"before"[..], &b"while-down"[..]],
        "each delivered exactly once"
    );
    assert_eq!(delivered[1].body, b"while-down");

    // Operators see each level's progress as "delivered,stored".
    let info = broker
        .call(RemotingCommand::request(
            remoting::code::request::GET_BROKER_RUNTIME_INFO,
        ))
        .await;
    let table = remoting::body::KvTable::decode(&info.body).unwrap().table;
    assert_eq!(table["scheduleMessageOffset_1"], "1,1");
    assert_eq!(table["scheduleMessageOffset_2"], "1,1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waits_at_level_three_and_a_spent_one_is_dead_lettered_at_once() {
    // Level 3 is the one a first retry (reconsumeTimes 0) waits at.
    let broker = broker_with_levels("1s 1s 2s 1s").await;
    let sent = send(
        &broker,
        "OrigTopic",
        &[
            ("TAGS", "TagA"),
            ("UNIQ_KEY", "7F0000010001000000000000BBBB"),
        ],
        b"payload",
    )
    .await;
    let original = stored_record(&broker, &sent);
    let back = broker
        .call(send_back(original.physical_offset, "RG", 0, 2))
        .await;
    assert_eq!(back.code, response::SUCCESS, "{:?}", back.remark);
    assert!(
        pull_all(&broker, "%RETRY%RG", 0).await.is_empty(),
        "the retry waits"
    );
    let ctx = broker.ctx();
    assert_eq!(
        ctx.store.reader().max_offset(SCHEDULE_TOPIC, 2),
        1,
        "at level 3"
    );
    let waiting = schedule_entry(&broker, 2);
    assert_eq!(waiting.property("REAL_TOPIC"), Some("%RETRY%RG"));

    let retried = wait_for(&broker, "%RETRY%RG", 0, 1).await;
    let retry = &retried[0];
    assert!(retry.store_timestamp_ms >= waiting.store_timestamp_ms + 2_000);
    assert_eq!(retry.body, b"payload");
    assert_eq!(retry.reconsume_times, 1);
    assert_eq!(retry.property("RETRY_TOPIC"), Some("OrigTopic"));
    assert_eq!(retry.tags(), Some("TagA"));
    assert_eq!(retry.uniq_key(), Some("7F0000010001000000000000BBBB"));
    assert_eq!(retry.property("DELAY"), None);

    // A level the consumer names is used instead (level 1 waits in queue 0).
    let back = broker
        .call(send_back(retry.physical_offset, "RG", 1, 5))
        .await;
    assert_eq!(back.code, response::SUCCESS, "{:?}", back.remark);
    assert_eq!(ctx.store.reader().max_offset(SCHEDULE_TOPIC, 0), 1);

    // Past its retries (1 retry done, at most 1): the dead-letter queue, at once.
    let back = broker
        .call(send_back(retry.physical_offset, "RG", 0, 1))
        .await;
    assert_eq!(back.code, response::SUCCESS, "{:?}", back.remark);
    let dead = pull_all(&broker, "%DLQ%RG", 0).await;
    assert_eq!(dead.len(), 1, "dead letters do not wait");
    assert_eq!(dead[0].body, b"payload");
    assert_eq!(dead[0].property("DLQ_ORIGIN_TOPIC"), Some("OrigTopic"));
    assert_eq!(dead[0].property("DELAY"), None);
}

/// The first entry waiting in a schedule queue.
fn schedule_entry(broker: &TestBroker, queue_id: i32) -> StoredMessage {
    let read = broker.ctx().store.reader().get_messages(
        SCHEDULE_TOPIC,
        queue_id,
        0,
        1,
        None,
        &store::AcceptAll,
    );
    let record = read.messages.first().expect("a waiting entry");
    MessageView::parse(record).unwrap().to_owned_message()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_beyond_the_schedule_queue_is_corrected_at_start() {
    let mut broker = broker_with_levels("1s").await;
    // As if the store had been replaced while config/ (and the progress) was kept.
    broker
        .ctx()
        .offsets
        .apply(broker::metadata::OffsetOp::Commit {
            group: PROGRESS_GROUP.into(),
            topic: SCHEDULE_TOPIC.into(),
            queue_id: 0,
            offset: 1_000,
        })
        .unwrap();
    broker.restart().await;
    send(&broker, "CorrectedTopic", &[("DELAY", "1")], b"not stuck").await;
    let delivered = wait_for(&broker, "CorrectedTopic", 0, 1).await;
    assert_eq!(delivered[0].body, b"not stuck");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_delivered_once_each_in_order_per_queue() {
    let broker = broker_with_levels("1s").await;
    const PER_QUEUE: i64 = 60;
    for i in 0..PER_QUEUE {
        for queue_id in 0..2 {
            let header = send_header("BacklogTopic", queue_id, &props(&[("DELAY", "1")]));
            let sent = broker
                .call(send_v2(&header, format!("{queue_id}-{i}").as_bytes()))
                .await;
            assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
        }
    }
    let ctx = broker.ctx();
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    while !(everything_delivered(ctx)
        && ctx.store.reader().max_offset(SCHEDULE_TOPIC, 0) == 2 * PER_QUEUE)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for queue_id in 0..2 {
        assert_eq!(
            ctx.store.reader().max_offset("BacklogTopic", queue_id),
            PER_QUEUE
        );
        let mut bodies = Vec::new();
        while (bodies.len() as i64) < PER_QUEUE {
            let pulled = broker
                .call(pull(&pull_header(
                    "CG",
                    "BacklogTopic",
                    queue_id,
                    bodies.len() as i64,
                )))
                .await;
            assert_eq!(pulled.code, response::SUCCESS);
            for message in decode_all(&pulled.body).unwrap() {
                bodies.push(String::from_utf8(message.body().to_vec()).unwrap());
            }
        }
        let expected: Vec<String> = (0..PER_QUEUE).map(|i| format!("{queue_id}-{i}")).collect();
        assert_eq!(
            bodies, expected,
            "queue {queue_id}: each once, in send order"
        );
    }
}
