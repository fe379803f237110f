//! The `client` crate and its tools against real `mqnamesrv` and `mqbroker` processes
//! (one standalone broker): the client scenarios also run against a broker group (ordered
//! consumption, a consumer group sharing and re-balancing queues, retries ending in the
//! dead-letter queue), the CLI tools, and the send, pull and consume-from options.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use client::consumer::ConsumeFromWhere;
use client::{Admin, Message, Producer, ProducerOptions, PullConsumer, PushConsumer};
use common::{
    assert_consecutive, bodies, body_texts, eventually, push_options, recorder, scenarios, tool_ok,
    topic_status_total, wait_for_topic_list, Cluster, Seen,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_messages_arrive_in_order_per_queue() {
    let cluster = Cluster::start().await;
    scenarios::ordered_messages_arrive_in_order_per_queue(&cluster.namesrv_addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_shares_queues_and_rebalances_when_one_leaves() {
    let cluster = Cluster::start().await;
    scenarios::a_group_of_three_shares_queues_and_rebalances_when_one_leaves(
        &cluster.namesrv_addr(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_is_redelivered_then_dead_lettered() {
    let cluster = Cluster::start().await;
    scenarios::a_failed_message_is_redelivered_then_dead_lettered(&cluster.namesrv_addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_and_mq_work_against_a_real_broker() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr();
    let out = tool_ok("mqadmin", &["clusterList", "-n", &ns], None).await;
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("TestCluster") && row.contains("broker-a")),
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &[
            "updateTopic",
            "-n",
            &ns,
            "-c",
            "TestCluster",
            "-t",
            "ToolTopic",
            "-r",
            "2",
            "-w",
            "2",
        ],
        None,
    )
    .await;
    assert!(
        out.contains(&format!(
            "create topic to {} success.",
            cluster.broker().addr()
        )),
        "{out}"
    );
    wait_for_topic_list(&ns, "ToolTopic").await;

    let out = tool_ok(
        "mq",
        &[
            "produce",
            "-n",
            &ns,
            "-t",
            "ToolTopic",
            "-b",
            "from the cli",
            "-k",
            "cli-key",
            "-c",
            "3",
        ],
        None,
    )
    .await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SEND_OK")).count(),
        3,
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &["topicStatus", "-n", &ns, "-t", "ToolTopic"],
        None,
    )
    .await;
    assert_eq!(topic_status_total(&out), 3, "{out}");

    let out = tool_ok(
        "mq",
        &["consume", "-n", &ns, "-t", "ToolTopic", "--json"],
        None,
    )
    .await;
    assert_eq!(
        out.lines().filter(|l| l.contains("from the cli")).count(),
        3,
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &[
            "queryMsgByKey",
            "-n",
            &ns,
            "-t",
            "ToolTopic",
            "-k",
            "cli-key",
        ],
        None,
    )
    .await;
    assert_eq!(out.lines().count(), 4, "{out}");

    let out = tool_ok(
        "mq",
        &[
            "bench",
            "produce",
            "-n",
            &ns,
            "-t",
            "ToolTopic",
            "-c",
            "300",
            "-w",
            "4",
            "-d",
            "60",
            "--json",
        ],
        None,
    )
    .await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["messages"], 300, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_batches_compression_long_polling_and_lookups() {
    let cluster = Cluster::start().await;
    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("api-producer")).unwrap();
    // A topic nobody created: the producer goes through TBW102 and the broker creates it.
    let first = producer
        .send(
            Message::new("AutoTopic", "auto")
                .with_tag("a")
                .with_keys(["auto-key"]),
        )
        .await
        .unwrap();
    assert_eq!(first.queue.topic, "AutoTopic");
    assert!(
        first.queue.queue_id < 4,
        "the producer's default_topic_queue_nums caps the template's queues: {:?}",
        first.queue
    );

    let big = "compress me ".repeat(1000);
    let compressed = producer
        .send(Message::new("AutoTopic", big.clone()))
        .await
        .unwrap();
    let batch: Vec<Message> = (0..10)
        .map(|i| Message::new("AutoTopic", format!("b{i}")).with_tag("b"))
        .collect();
    let batched = producer.send_batch(batch).await.unwrap();

    let reader = PullConsumer::start(cluster.options(), "api-reader").unwrap();
    let pulled = reader
        .pull(&compressed.queue, "*", compressed.queue_offset, 1)
        .await
        .unwrap();
    assert_eq!(pulled.messages[0].body_text(), big, "zlib body inflated");
    let pulled = reader
        .pull(&batched.queue, "b", batched.queue_offset, 32)
        .await
        .unwrap();
    assert_eq!(
        body_texts(&pulled.messages),
        (0..10).map(|i| format!("b{i}")).collect::<Vec<_>>()
    );
    assert_consecutive(&pulled.messages, batched.queue_offset, 10);

    // Long polling: a pull parked at the end of the queue answers when a message lands.
    let queue = first.queue.clone();
    let end = reader.max_offset(&queue).await.unwrap();
    let parked = tokio::spawn(async move {
        let result = reader
            .pull_blocking(&queue, "*", end, 32, Duration::from_secs(20))
            .await;
        (reader, result)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer
        .send_to_queue(Message::new("AutoTopic", "wake up"), &first.queue)
        .await
        .unwrap();
    let (reader, woken) = tokio::time::timeout(Duration::from_secs(30), parked)
        .await
        .unwrap()
        .unwrap();
    let woken = woken.unwrap();
    assert_eq!(woken.messages[0].body_text(), "wake up");

    let admin = Admin::start(cluster.options()).unwrap();
    let viewed = admin.view_message(&first.offset_msg_id).await.unwrap();
    assert_eq!(viewed.body_text(), "auto");
    assert_eq!(viewed.msg_id(), first.msg_id);
    let by_uniq = admin
        .find_message(Some("AutoTopic"), &first.msg_id)
        .await
        .unwrap();
    assert_eq!(by_uniq.offset_msg_id, first.offset_msg_id);
    let by_key = admin
        .query_by_key("AutoTopic", "auto-key", 64, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].msg_id(), first.msg_id);
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_resume_and_consume_from_last_skips_history() {
    let cluster = Cluster::start().await;
    cluster.create_topic("ResumeTopic", 2).await;
    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("resume-producer")).unwrap();
    for i in 0..10 {
        producer
            .send(Message::new("ResumeTopic", format!("old{i}")))
            .await
            .unwrap();
    }
    let seen = Seen::default();
    let mut options = push_options("resume-group", "ResumeTopic");
    options.consume_from_where = ConsumeFromWhere::ConsumeFromLastOffset;
    let consumer = PushConsumer::start(cluster.options(), options.clone(), recorder(&seen))
        .await
        .unwrap();
    eventually("both queues assigned", || {
        let n = consumer
            .assigned_queues()
            .iter()
            .filter(|q| q.topic == "ResumeTopic")
            .count();
        async move { n == 2 }
    })
    .await;
    for i in 0..4 {
        producer
            .send(Message::new("ResumeTopic", format!("new{i}")))
            .await
            .unwrap();
    }
    eventually("the four new messages", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 4 }
    })
    .await;
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|m| m.body_text().starts_with("new")),
        "history was skipped"
    );
    consumer.shutdown().await;

    let admin = Admin::start(cluster.options()).unwrap();
    let stats = admin
        .consume_stats("resume-group", Some("ResumeTopic"))
        .await
        .unwrap();
    assert_eq!(
        stats.total_diff(),
        0,
        "offsets committed on shutdown: {stats:?}"
    );

    for i in 0..3 {
        producer
            .send(Message::new("ResumeTopic", format!("away{i}")))
            .await
            .unwrap();
    }
    let again = Seen::default();
    let consumer = PushConsumer::start(cluster.options(), options, recorder(&again))
        .await
        .unwrap();
    eventually("the three sent while away", || {
        let n = again.lock().unwrap().len();
        async move { n >= 3 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received: BTreeSet<String> = bodies(&again).into_iter().collect();
    assert_eq!(received, (0..3).map(|i| format!("away{i}")).collect());
    consumer.shutdown().await;
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_timestamp_and_broadcasting() {
    let cluster = Cluster::start().await;
    cluster.create_topic("TimeTopic", 2).await;
    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("time-producer")).unwrap();
    let mut last_old = None;
    for i in 0..6 {
        last_old = Some(
            producer
                .send(Message::new("TimeTopic", format!("old{i}")))
                .await
                .unwrap(),
        );
    }
    let admin = Admin::start(cluster.options()).unwrap();
    let boundary = admin
        .view_message(&last_old.unwrap().offset_msg_id)
        .await
        .unwrap()
        .store_timestamp_ms
        + 1;
    // Store timestamps have millisecond resolution: make sure later ones differ.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..4 {
        producer
            .send(Message::new("TimeTopic", format!("new{i}")))
            .await
            .unwrap();
    }

    let seen = Seen::default();
    let mut options = push_options("time-group", "TimeTopic");
    options.consume_from_where = ConsumeFromWhere::ConsumeFromTimestamp;
    options.consume_timestamp_ms = Some(boundary);
    let consumer = PushConsumer::start(cluster.options(), options, recorder(&seen))
        .await
        .unwrap();
    eventually("the four newer messages", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 4 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received: BTreeSet<String> = bodies(&seen).into_iter().collect();
    assert_eq!(received, (0..4).map(|i| format!("new{i}")).collect());
    consumer.shutdown().await;

    // Broadcasting: every member gets every message.
    let members: Vec<Seen> = (0..2).map(|_| Seen::default()).collect();
    let mut consumers = Vec::new();
    for s in &members {
        let mut options = push_options("broadcast-group", "TimeTopic");
        options.message_model = client::consumer::MessageModel::Broadcasting;
        consumers.push(
            PushConsumer::start(cluster.options(), options, recorder(s))
                .await
                .unwrap(),
        );
    }
    eventually("both members see all ten", || {
        let counts: Vec<usize> = members.iter().map(|s| s.lock().unwrap().len()).collect();
        async move { counts.iter().all(|n| *n >= 10) }
    })
    .await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
    admin.shutdown();
    producer.shutdown().await;
}
