//! The `mqadmin` and `mq` tools against real `mqnamesrv` and `mqbroker` processes: the
//! tables and texts RocketMQ's tools print, topic life cycle, message views, consumer
//! progress, produce from stdin, tag filters, following a topic, and the benchmark.

mod common;

use std::time::Duration;

use client::{Admin, Message, MessageQueue, Producer, ProducerOptions, PullConsumer};
use common::{
    eventually, tool, tool_ok, topic_status_total, wait_for_topic_list, Cluster, ToolRun, CLUSTER,
};

fn producer(cluster: &Cluster) -> Producer {
    Producer::start(cluster.options(), ProducerOptions::new("tools-tests")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_topic_commands_print_rocketmq_tables() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    let broker = cluster.broker().addr();

    let out = tool_ok(
        "mqadmin",
        &[
            "updateTopic",
            "-n",
            &ns,
            "-c",
            CLUSTER,
            "-t",
            "Audit",
            "-r",
            "4",
            "-w",
            "4",
        ],
        None,
    )
    .await;
    assert!(
        out.contains(&format!("create topic to {broker} success.")),
        "{out}"
    );
    assert!(
        out.contains("TopicConfig [topicName=Audit, readQueueNums=4, writeQueueNums=4, perm=RW-"),
        "{out}"
    );
    wait_for_topic_list(&ns, "Audit").await;

    producer(&cluster)
        .send(Message::new("Audit", "x").with_keys(["k-9"]))
        .await
        .unwrap();
    let out = tool_ok("mqadmin", &["topicStatus", "-n", &ns, "-t", "Audit"], None).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("#Broker Name") && lines[0].contains("#Max Offset"),
        "{out}"
    );
    assert_eq!(lines.len(), 5, "a header and four queues: {out}");
    assert_eq!(topic_status_total(&out), 1, "{out}");

    let out = tool_ok(
        "mqadmin",
        &["topicRoute", "-n", &ns, "-t", "Audit", "--json"],
        None,
    )
    .await;
    let route: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(route["queueDatas"][0]["brokerName"], "broker-a", "{out}");
    assert_eq!(route["brokerDatas"][0]["brokerAddrs"]["0"], broker, "{out}");

    let out = tool_ok(
        "mqadmin",
        &["queryMsgByKey", "-n", &ns, "-t", "Audit", "-k", "k-9"],
        None,
    )
    .await;
    assert!(out.starts_with("#Message ID"), "{out}");
    assert_eq!(out.lines().count(), 2, "a header and one message: {out}");

    let out = tool_ok(
        "mqadmin",
        &["deleteTopic", "-n", &ns, "-c", CLUSTER, "-t", "Audit"],
        None,
    )
    .await;
    assert!(
        out.contains(&format!(
            "delete topic [Audit] from cluster [{CLUSTER}] success."
        )),
        "{out}"
    );
    let ToolRun { ok, err, .. } =
        tool("mqadmin", &["topicRoute", "-n", &ns, "-t", "Audit"], None).await;
    assert!(!ok, "a deleted topic has no route");
    assert!(err.contains("no route"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_cluster_broker_and_message_views() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    let broker = cluster.broker().addr();

    let out = tool_ok("mqadmin", &["clusterList", "-n", &ns], None).await;
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("#Cluster Name     #Broker Name"),
        "{out}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(CLUSTER)
            && row.contains("broker-a")
            && row.contains(&broker)
            && row.contains("V5_3_3"),
        "{row}"
    );

    let out = tool_ok("mqadmin", &["brokerStatus", "-n", &ns, "-b", &broker], None).await;
    assert!(
        out.contains(&format!("{:<32}: V5_3_3", "brokerVersionDesc")),
        "{out}"
    );

    cluster.create_topic("Viewed", 1).await;
    let sent = producer(&cluster)
        .send(Message::new("Viewed", "viewed body").with_tag("t1"))
        .await
        .unwrap();
    let out = tool_ok(
        "mqadmin",
        &[
            "queryMsgById",
            "-n",
            &ns,
            "-i",
            &sent.offset_msg_id,
            "-f",
            "UTF-8",
        ],
        None,
    )
    .await;
    assert!(
        out.contains(&format!("{:<20} {}", "OffsetID:", sent.offset_msg_id)),
        "{out}"
    );
    assert!(out.contains("Tags:                [t1]"), "{out}");
    assert!(out.contains("Message Body:        viewed body"), "{out}");
    // A client's unique id needs the topic to be found.
    let out = tool_ok(
        "mqadmin",
        &[
            "queryMsgById",
            "-n",
            &ns,
            "-i",
            &sent.msg_id,
            "-t",
            "Viewed",
            "--json",
        ],
        None,
    )
    .await;
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found[0]["body"], "viewed body", "{out}");

    let out = tool_ok(
        "mqadmin",
        &["getBrokerGroup", "-n", &ns, "-b", "broker-a"],
        None,
    )
    .await;
    assert!(
        out.lines().nth(1).is_some_and(|row| row.contains("MASTER")),
        "{out}"
    );
    let ToolRun { ok, err, .. } = tool(
        "mqadmin",
        &["transferLeader", "-n", &ns, "-b", "broker-a", "-i", "n1"],
        None,
    )
    .await;
    assert!(!ok && err.contains("not in a broker group"), "{err}");

    let ToolRun { ok, err, .. } = tool("mqadmin", &["topicList"], None).await;
    assert!(!ok && err.contains("-n"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_progress_shows_the_lag_per_queue() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Progress", 2).await;
    let producer = producer(&cluster);
    let mut per_queue = [0i64; 2];
    for i in 0..6 {
        let sent = producer
            .send(Message::new("Progress", format!("{i}")))
            .await
            .unwrap();
        per_queue[sent.queue.queue_id as usize] += 1;
    }
    // The group has read one message of queue 0 and none of queue 1.
    let reader = PullConsumer::start(cluster.options(), "lagging").unwrap();
    let committed = [per_queue[0].min(1), 0];
    for (queue_id, offset) in committed.iter().enumerate() {
        reader
            .commit_offset(
                &MessageQueue::new("Progress", "broker-a", queue_id as i32),
                *offset,
            )
            .await
            .unwrap();
    }
    let lag = 6 - committed.iter().sum::<i64>();
    // The group's heartbeat makes the broker create its retry topic, through whose route
    // the tools find the group's brokers; the heartbeat goes out once the consumer has
    // learnt of the broker.
    let admin = Admin::start(cluster.options()).unwrap();
    eventually("the group's consume stats", || {
        let admin = admin.clone();
        async move {
            admin
                .consume_stats("lagging", None)
                .await
                .is_ok_and(|stats| stats.total_diff() == lag)
        }
    })
    .await;
    let out = tool_ok(
        "mqadmin",
        &["consumerProgress", "-n", &ns, "-g", "lagging"],
        None,
    )
    .await;
    assert!(out.starts_with("#Topic"), "{out}");
    assert!(out.contains(&format!("Diff Total: {lag}")), "{out}");
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_produces_from_stdin_and_consumes_with_a_tag_filter() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Chat", 2).await;
    let out = tool_ok(
        "mq",
        &[
            "produce", "-n", &ns, "-t", "Chat", "--tag", "greeting", "-k", "k1",
        ],
        Some("hello\nworld\n"),
    )
    .await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SEND_OK")).count(),
        2,
        "one send per line: {out}"
    );

    let out = tool_ok("mq", &["consume", "-n", &ns, "-t", "Chat", "--json"], None).await;
    let mut bodies: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert_eq!(v["tags"], "greeting", "{v}"))
        .map(|v| v["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["hello", "world"]);

    let out = tool_ok(
        "mq",
        &["consume", "-n", &ns, "-t", "Chat", "-e", "other"],
        None,
    )
    .await;
    assert!(out.is_empty(), "the tag filter lets nothing through: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_bench_produces_then_consumes_and_prints_json_summaries() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Bench", 4).await;
    let out = tool_ok(
        "mq",
        &[
            "bench", "produce", "-n", &ns, "-t", "Bench", "-s", "64", "-w", "4", "-c", "200", "-d",
            "60", "--json",
        ],
        None,
    )
    .await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["messages"], 200, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["send_latency_ms"]["count"], 200, "{summary}");
    assert!(
        summary["send_latency_ms"]["p99"].as_f64().unwrap()
            >= summary["send_latency_ms"]["p50"].as_f64().unwrap(),
        "{summary}"
    );
    assert_eq!(cluster.stored("Bench").await, 200);

    let out = tool_ok(
        "mq",
        &[
            "bench", "consume", "-n", &ns, "-t", "Bench", "--from", "first", "-c", "200", "-d",
            "60", "--json",
        ],
        None,
    )
    .await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["messages"].as_u64().unwrap() >= 200, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_consume_follow_waits_for_new_messages() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Tail", 2).await;
    let producer = producer(&cluster);
    producer.send(Message::new("Tail", "first")).await.unwrap();
    let follower = tokio::spawn({
        let ns = ns.clone();
        async move {
            tool(
                "mq",
                &["consume", "-n", &ns, "-t", "Tail", "-f", "-c", "3"],
                None,
            )
            .await
        }
    });
    // Whether these land before or after the follower starts, it reads from the first
    // offset and keeps going until it has three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer.send(Message::new("Tail", "second")).await.unwrap();
    producer.send(Message::new("Tail", "third")).await.unwrap();
    let ToolRun { ok, out, err } = follower.await.unwrap();
    assert!(ok, "{err}");
    let mut bodies: Vec<&str> = out
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["first", "second", "third"], "{out}");
    producer.shutdown().await;
}
