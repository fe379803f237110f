//! The `client` crate and its tools against real `mqnamesrv` and `mqbroker` processes
//! (one standalone broker): ordered consumption, a consumer group sharing and
//! re-balancing queues, retries ending in the dead-letter queue, and the CLI tools.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use client::consumer::{ConsumeFromWhere, ConsumeMode, ConsumeResult};
use client::{
    Admin, Message, MessageQueue, Producer, ProducerOptions, PullConsumer, PushConsumer,
    ReceivedMessage,
};
use common::{eventually, push_options, recorder, tool, Cluster, Seen, ToolRun, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_messages_arrive_in_order_per_queue() {
    let cluster = Cluster::start().await;
    cluster.create_topic("OrderedTopic", 4).await;
    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("ordered-producer")).unwrap();
    let mut queue_of_key: HashMap<String, i32> = HashMap::new();
    for i in 0..200 {
        let key = format!("order-{}", i % 10);
        let sent = producer
            .send_ordered(Message::new("OrderedTopic", format!("{key}:{i}")), &key)
            .await
            .unwrap();
        assert_eq!(
            *queue_of_key.entry(key).or_insert(sent.queue.queue_id),
            sent.queue.queue_id
        );
    }
    let seen = Seen::default();
    let mut options = push_options("ordered-group", "OrderedTopic");
    options.consume_mode = ConsumeMode::Orderly;
    options.consume_batch_max = 3;
    let consumer = PushConsumer::start(cluster.options(), options, recorder(&seen))
        .await
        .unwrap();
    eventually("all 200 ordered messages", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 200 }
    })
    .await;
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<String, i32> = HashMap::new();
    for message in seen.lock().unwrap().iter() {
        let expected = next_offset.entry(message.queue.queue_id).or_insert(0);
        assert_eq!(
            message.queue_offset, *expected,
            "queue {} out of order",
            message.queue.queue_id
        );
        *expected += 1;
        let text = message.body_text();
        let (key, seq) = text.split_once(':').unwrap();
        let seq: i32 = seq.parse().unwrap();
        if let Some(previous) = last_seq.insert(key.to_owned(), seq) {
            assert!(previous < seq, "{key}: {previous} then {seq}");
        }
    }
    consumer.shutdown().await;
    producer.shutdown().await;
}

fn assigned(consumers: &[PushConsumer], topic: &str) -> Vec<BTreeSet<MessageQueue>> {
    consumers
        .iter()
        .map(|c| {
            c.assigned_queues()
                .into_iter()
                .filter(|q| q.topic == topic)
                .collect()
        })
        .collect()
}

fn partitions_all(sets: &[BTreeSet<MessageQueue>], queues: usize) -> bool {
    let union: BTreeSet<&MessageQueue> = sets.iter().flatten().collect();
    sets.iter().map(BTreeSet::len).sum::<usize>() == queues && union.len() == queues
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_shares_queues_and_rebalances_when_one_leaves() {
    let cluster = Cluster::start().await;
    cluster.create_topic("SharedTopic", 8).await;
    let seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let mut consumers = Vec::new();
    for s in &seen {
        let consumer = PushConsumer::start(
            cluster.options(),
            push_options("shared-group", "SharedTopic"),
            recorder(s),
        )
        .await
        .unwrap();
        consumers.push(consumer);
    }
    eventually("three members splitting eight queues", || {
        let sets = assigned(&consumers, "SharedTopic");
        async move { partitions_all(&sets, 8) && sets.iter().all(|s| s.len() >= 2) }
    })
    .await;

    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("shared-producer")).unwrap();
    for i in 0..120 {
        producer
            .send(Message::new("SharedTopic", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("120 consumed", || {
        let n: usize = seen.iter().map(|s| s.lock().unwrap().len()).sum();
        async move { n >= 120 }
    })
    .await;
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    let mut bodies = BTreeSet::new();
    for (member, s) in seen.iter().enumerate() {
        for message in s.lock().unwrap().iter() {
            let first = *owner.entry(message.queue.queue_id).or_insert(member);
            assert_eq!(
                first, member,
                "queue {} consumed by two members",
                message.queue.queue_id
            );
            assert!(
                bodies.insert(message.body_text().into_owned()),
                "delivered twice"
            );
        }
    }
    assert_eq!(bodies.len(), 120);

    let leaving = consumers.pop().unwrap();
    leaving.shutdown().await;
    eventually("two members splitting eight queues", || {
        let sets = assigned(&consumers, "SharedTopic");
        async move { partitions_all(&sets, 8) }
    })
    .await;
    for i in 120..180 {
        producer
            .send(Message::new("SharedTopic", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("the remaining members consume all new messages", || {
        let got: BTreeSet<String> = seen[..2]
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap()
                    .iter()
                    .map(|m| m.body_text().into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        async move { (120..180).all(|i| got.contains(&i.to_string())) }
    })
    .await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_is_redelivered_then_dead_lettered() {
    let cluster = Cluster::start().await;
    cluster.create_topic("PoisonTopic", 1).await;
    let deliveries = Seen::default();
    let mut options = push_options("poison-group", "PoisonTopic");
    options.max_reconsume_times = Some(2);
    let log = Arc::clone(&deliveries);
    let consumer = PushConsumer::start(
        cluster.options(),
        options,
        move |messages: Vec<ReceivedMessage>| {
            log.lock().unwrap().extend(messages);
            std::future::ready(ConsumeResult::Retry)
        },
    )
    .await
    .unwrap();
    let producer =
        Producer::start(cluster.options(), ProducerOptions::new("poison-producer")).unwrap();
    let sent = producer
        .send(Message::new("PoisonTopic", "poison").with_keys(["poison-1"]))
        .await
        .unwrap();
    eventually("three deliveries (the first and two retries)", || {
        let n = deliveries.lock().unwrap().len();
        async move { n >= 3 }
    })
    .await;

    let reader = PullConsumer::start(cluster.options(), "dlq-reader").unwrap();
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while dead.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the dead-letter queue"
        );
        if let Ok(queues) = reader.queues("%DLQ%poison-group").await {
            for queue in queues {
                if let Ok(result) = reader.pull(&queue, "*", 0, 32).await {
                    dead.extend(result.messages);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body_text(), "poison");
    assert_eq!(dead[0].uniq_key(), Some(sent.msg_id.as_str()));
    let seen = deliveries.lock().unwrap().clone();
    assert!(seen
        .iter()
        .all(|m| m.topic == "PoisonTopic" && m.msg_id() == sent.msg_id));
    let retries: Vec<i32> = seen.iter().map(|m| m.reconsume_times).collect();
    assert_eq!(&retries[..3], &[0, 1, 2], "{retries:?}");
    let queues: Vec<&str> = seen.iter().map(|m| m.queue.topic.as_str()).collect();
    assert_eq!(
        queues,
        ["PoisonTopic", "%RETRY%poison-group", "%RETRY%poison-group"],
        "redeliveries come through the group's retry topic"
    );
    assert_eq!(
        seen.len(),
        3,
        "no delivery after the message was dead-lettered"
    );
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_and_mq_work_against_a_real_broker() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv.addr();
    let ToolRun { ok, out, err } = tool("mqadmin", &["clusterList", "-n", &ns], None).await;
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("TestCluster") && row.contains("broker-a")),
        "{out}"
    );

    let ToolRun { ok, out, err } = tool(
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
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "create topic to {} success.",
            cluster.broker().addr()
        )),
        "{out}"
    );
    eventually("ToolTopic in topicList", || {
        let ns = ns.clone();
        async move {
            let ToolRun { ok, out, .. } = tool("mqadmin", &["topicList", "-n", &ns], None).await;
            ok && out.lines().any(|l| l == "ToolTopic")
        }
    })
    .await;

    let ToolRun { ok, out, err } = tool(
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
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SEND_OK")).count(),
        3,
        "{out}"
    );

    let ToolRun { ok, out, err } = tool(
        "mqadmin",
        &["topicStatus", "-n", &ns, "-t", "ToolTopic"],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let max_total: i64 = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(max_total, 3, "{out}");

    let ToolRun { ok, out, err } = tool(
        "mq",
        &["consume", "-n", &ns, "-t", "ToolTopic", "--json"],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("from the cli")).count(),
        3,
        "{out}"
    );

    let ToolRun { ok, out, err } = tool(
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
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");

    let ToolRun { ok, out, err } = tool(
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
    assert!(ok, "{err}");
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
    let bodies: Vec<String> = pulled
        .messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(bodies, (0..10).map(|i| format!("b{i}")).collect::<Vec<_>>());
    let offsets: Vec<i64> = pulled.messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(
        offsets,
        (batched.queue_offset..batched.queue_offset + 10).collect::<Vec<_>>()
    );

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
    let bodies: BTreeSet<String> = again
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(bodies, (0..3).map(|i| format!("away{i}")).collect());
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
    let bodies: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(bodies, (0..4).map(|i| format!("new{i}")).collect());
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
