//! The `mqadmin` and `mq` tools against real `mqnamesrv` and `mqbroker` processes: the
//! tables and texts RocketMQ's tools print, topic life cycle, message views, consumer
//! progress, offsets reset and cloned, connections and consumers' own reports, broker
//! config and subscription groups, messages printed by queue and time, traffic and lag
//! statistics, produce from stdin, tag filters, following a topic, and the benchmark.

mod common;

use std::time::Duration;

use client::{Admin, Message, MessageQueue, Producer, ProducerOptions, PullConsumer, PushConsumer};
use common::{
    bodies, eventually, push_options, recorder, tool, tool_line, tool_line_ok, tool_ok,
    topic_status_total, wait_for_topic_list, Cluster, Seen, ToolRun, CLUSTER,
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
async fn mq_bench_produces_and_consumes_over_grpc() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("BenchGrpc", 4).await;
    let endpoint = cluster.broker().grpc_addr().unwrap();
    let bench = |extra: &str| {
        format!("bench {extra} -n {ns} -t BenchGrpc --grpc {endpoint} -c 200 -d 60 --json")
    };
    let out = tool_line_ok("mq", &bench("produce -s 64 -w 8")).await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&summary["messages"], &summary["errors"]),
        (&200.into(), &0.into()),
        "{summary}"
    );
    assert_eq!(cluster.stored("BenchGrpc").await, 200);

    let out = tool_line_ok("mq", &bench("consume -g bench-grpc -w 2")).await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["messages"].as_u64().unwrap() >= 200, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_bench_transactional_sends_commit_every_message() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("TxBench", 4).await;
    let bench = |extra: &str| format!("bench produce -n {ns} -t TxBench --transaction {extra}");
    let out = tool_line_ok("mq", &bench("-s 64 -w 4 -c 100 -d 60 --json")).await;
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&summary["messages"], &summary["errors"]),
        (&100.into(), &0.into()),
        "{summary}"
    );
    // Half messages are invisible until committed; the commit travels one way after the
    // send's answer, so the topic fills a moment later.
    eventually("100 committed messages in the topic", || async {
        cluster.stored("TxBench").await == 100
    })
    .await;
    let refused = tool_line("mq", &bench("--batch 4")).await;
    assert!(!refused.ok);
    assert!(refused.err.contains("single sends"), "{}", refused.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_produce_ends_transactions_as_told_and_answers_check_backs() {
    let quick_checks = [
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
    ];
    let cluster = Cluster::start_with(&[("broker-a", &quick_checks)]).await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("TxTool", 2).await;
    let produce = |body: &str, ending: &str| {
        format!("produce -n {ns} -t TxTool -b {body} --transaction {ending}")
    };
    for (body, ending) in [
        ("committed", "commit"),
        ("rolled-back", "rollback"),
        ("checked-commit", "unknown -c 2"),
        ("checked-rollback", "unknown --check-answer rollback"),
    ] {
        let out = tool_line_ok("mq", &produce(body, ending)).await;
        let sends = out.lines().filter(|l| l.starts_with("SEND_OK")).count();
        let checks = out.lines().filter(|l| l.starts_with("checked ")).count();
        if ending.starts_with("unknown") {
            let times = if ending.contains("-c 2") { 2 } else { 1 };
            assert_eq!(sends, times, "{out}");
            // Every unknown transaction was checked back before the tool returned.
            assert!(checks >= times, "{out}");
            assert!(out.contains("transaction=Unknown"), "{out}");
        } else {
            assert_eq!((sends, checks), (1, 0), "{out}");
        }
    }
    let mut expected = vec!["checked-commit", "checked-commit", "committed"];
    expected.sort();
    eventually("the committed messages in the topic, once each", || async {
        let out = tool_ok(
            "mq",
            &["consume", "-n", &ns, "-t", "TxTool", "--json"],
            None,
        )
        .await;
        let mut stored: Vec<String> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["body"].to_string())
            .map(|body| body.trim_matches('"').to_owned())
            .collect();
        stored.sort();
        stored == expected
    })
    .await;
    let refused = tool(
        "mq",
        &[
            "produce",
            "-n",
            &ns,
            "-t",
            "TxTool",
            "-b",
            "x",
            "--transaction",
            "commit",
            "--order-key",
            "k",
        ],
        None,
    )
    .await;
    assert!(
        !refused.ok,
        "a transaction cannot be ordered: {}",
        refused.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_request_gets_the_answers_of_mq_reply() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Quotes", 2).await;
    // The replier reads from the first offset, so the requests it finds waiting when its
    // group has started are answered too; each request waits up to 30 s for that.
    let replier = tokio::spawn({
        let ns = ns.clone();
        async move {
            tool(
                "mq",
                &[
                    "reply", "-n", &ns, "-t", "Quotes", "--from", "first", "-c", "3",
                ],
                None,
            )
            .await
        }
    });
    let out = tool_ok(
        "mq",
        &[
            "request",
            "-n",
            &ns,
            "-t",
            "Quotes",
            "--timeout-ms",
            "30000",
            "--json",
        ],
        Some("EUR\nUSD\nGBP\n"),
    )
    .await;
    let replies: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bodies: Vec<&str> = replies
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["EUR", "USD", "GBP"],
        "each reply echoes its request: {out}"
    );
    let correlations: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|r| r["correlationId"].as_str().unwrap())
        .collect();
    assert_eq!(
        correlations.len(),
        3,
        "one correlation id per request: {out}"
    );
    let ToolRun { ok, out, err } = replier.await.unwrap();
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SEND_OK")).count(),
        3,
        "three replies sent: {out}"
    );
    // Nobody waits for this one: the request times out, reported as a failure.
    let unanswered = tool(
        "mq",
        &[
            "request",
            "-n",
            &ns,
            "-t",
            "Quotes",
            "-b",
            "CHF",
            "--timeout-ms",
            "500",
        ],
        None,
    )
    .await;
    assert!(!unanswered.ok, "{}", unanswered.out);
    assert!(
        unanswered.err.contains("not answered"),
        "{}",
        unanswered.err
    );
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

/// The rows of an mqadmin table whose first column is `first`, split on blanks.
fn rows_starting<'a>(out: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.first() == Some(&first))
        .collect()
}

/// Sends `bodies[q]` to queue `q` of `topic`, each message tagged with its body's first
/// letter.
async fn send_per_queue(producer: &Producer, topic: &str, bodies: &[&[&str]]) {
    for (queue_id, bodies) in bodies.iter().enumerate() {
        let queue = MessageQueue::new(topic, "broker-a", queue_id as i32);
        for body in *bodies {
            let tag = &body[..1];
            producer
                .send_to_queue(Message::new(topic, body.to_string()).with_tag(tag), &queue)
                .await
                .unwrap();
        }
    }
}

/// Waits until the broker lists `group` (its heartbeat made the retry topic through
/// which the tools find the group) with `lag` messages left to consume.
async fn wait_for_group(admin: &Admin, group: &str, lag: i64) {
    eventually(&format!("{group}'s consume stats"), || {
        let admin = admin.clone();
        let group = group.to_owned();
        async move {
            admin
                .consume_stats(&group, None)
                .await
                .is_ok_and(|stats| stats.total_diff() == lag)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_resets_offsets_by_time_and_clones_them() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Rewind", 2).await;
    let producer = producer(&cluster);
    send_per_queue(&producer, "Rewind", &[&["a", "b", "c"], &["d", "e", "f"]]).await;
    // An offline group that has read one message of each queue.
    let reader = PullConsumer::start(cluster.options(), "rewinder").unwrap();
    for queue_id in 0..2 {
        reader
            .commit_offset(&MessageQueue::new("Rewind", "broker-a", queue_id), 1)
            .await
            .unwrap();
    }
    let admin = Admin::start(cluster.options()).unwrap();
    wait_for_group(&admin, "rewinder", 4).await;
    let reset = |timestamp: &'static str, extra: &'static [&'static str]| {
        let ns = ns.clone();
        async move {
            let mut args = vec![
                "resetOffsetByTime",
                "-n",
                &ns,
                "-g",
                "rewinder",
                "-t",
                "Rewind",
                "-s",
                timestamp,
            ];
            args.extend_from_slice(extra);
            tool_ok("mqadmin", &args, None).await
        }
    };
    let offsets = |out: &str| -> Vec<(i32, i64)> {
        rows_starting(out, "broker-a")
            .iter()
            .map(|cols| (cols[1].parse().unwrap(), cols[2].parse().unwrap()))
            .collect()
    };

    // Back to the epoch: every queue starts over.
    let out = reset("1970-01-01#00:00:00:000", &[]).await;
    assert!(
        out.starts_with(
            "start reset consumer offset by specified, group[rewinder], topic[Rewind], force[true], timestamp(string)[1970-01-01#00:00:00:000], timestamp(long)[0]"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{:<40}  {:<40}  {:<40}",
            "#brokerName", "#queueId", "#offset"
        )),
        "{out}"
    );
    assert_eq!(offsets(&out), [(0, 0), (1, 0)], "{out}");
    assert_eq!(
        admin
            .consume_stats("rewinder", None)
            .await
            .unwrap()
            .total_diff(),
        6
    );

    // Without force an offset only moves back: "now" leaves them at 0.
    let out = reset("now", &["-f", "false", "--json"]).await;
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["force"], false, "{out}");
    let moved: Vec<i64> = answer["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(moved, [0, 0], "{out}");

    // Forced to now: the end of each queue.
    let out = reset("now", &[]).await;
    assert_eq!(offsets(&out), [(0, 3), (1, 3)], "{out}");
    assert_eq!(
        admin
            .consume_stats("rewinder", None)
            .await
            .unwrap()
            .total_diff(),
        0
    );

    let out = tool_ok(
        "mqadmin",
        &[
            "cloneGroupOffset",
            "-n",
            &ns,
            "-s",
            "rewinder",
            "-d",
            "cloned",
            "-t",
            "Rewind",
        ],
        None,
    )
    .await;
    assert_eq!(
        out.trim(),
        "clone group offset success. srcGroup[rewinder], destGroup=[cloned], topic[Rewind]"
    );
    let cloned = admin.consume_stats("cloned", Some("Rewind")).await.unwrap();
    let consumed: Vec<i64> = cloned
        .offset_table
        .values()
        .map(|o| o.consumer_offset)
        .collect();
    assert_eq!(consumed, [3, 3]);

    let ToolRun { ok, err, .. } = tool(
        "mqadmin",
        &[
            "resetOffsetByTime",
            "-n",
            &ns,
            "-g",
            "rewinder",
            "-t",
            "Rewind",
            "-s",
            "yesterday",
        ],
        None,
    )
    .await;
    assert!(!ok && err.contains("yyyy-MM-dd#HH:mm:ss:SSS"), "{err}");
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_shows_connections_and_what_consumers_report() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Watched", 2).await;
    let producer = producer(&cluster);
    send_per_queue(&producer, "Watched", &[&["a", "b"], &["c", "d"]]).await;
    let seen = Seen::default();
    let consumer = PushConsumer::start(
        cluster.options(),
        push_options("watchers", "Watched"),
        recorder(&seen),
    )
    .await
    .unwrap();
    eventually("4 messages consumed", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() == 4 }
    })
    .await;
    let client_id = consumer.client_id().to_owned();

    let out = tool_ok(
        "mqadmin",
        &["consumerConnection", "-n", &ns, "-g", "watchers"],
        None,
    )
    .await;
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "{:<36} {:<22} {:<10} {}",
                "#ClientId", "#ClientAddr", "#Language", "#Version"
            )
            .as_str()
        ),
        "{out}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&client_id) && row.ends_with(" JAVA       V5_3_3"),
        "{row}"
    );
    assert!(
        out.contains("\nBelow is subscription:\n#Topic               #SubExpression\n"),
        "{out}"
    );
    assert!(out.contains(&format!("\n{:<20} *\n", "Watched")), "{out}");
    assert!(
        out.ends_with(
            "\nConsumeType: CONSUME_PASSIVELY\nMessageModel: CLUSTERING\nConsumeFromWhere: CONSUME_FROM_FIRST_OFFSET\n"
        ),
        "{out}"
    );

    producer.instance().send_heartbeat_now().await;
    let out = tool_ok(
        "mqadmin",
        &[
            "producerConnection",
            "-n",
            &ns,
            "-g",
            "tools-tests",
            "-t",
            "Watched",
        ],
        None,
    )
    .await;
    let producer_id = producer.instance().client_id().to_owned();
    assert!(
        out.starts_with(&format!("0001  {producer_id:<32} ")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("JAVA     V5_3_3"), "{out}");

    // One member's own report: its queues and the offsets it holds.
    let out = tool_ok(
        "mqadmin",
        &[
            "consumerStatus",
            "-n",
            &ns,
            "-g",
            "watchers",
            "-i",
            &client_id,
        ],
        None,
    )
    .await;
    assert!(out.starts_with("#Consumer Properties#\n"), "{out}");
    assert!(
        out.contains(&format!("{:<40}: CONSUME_PASSIVELY", "PROP_CONSUME_TYPE")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{:<40}: {ns}", "PROP_NAMESERVER_ADDR")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "\n001 Topic: {:<40} ClassFilter: false    SubExpression: *\n002 Topic: {:<40} ClassFilter: false    SubExpression: *\n",
            "Watched", "%RETRY%watchers"
        )),
        "{out}"
    );
    let held: i64 = out
        .split("#Consumer Offset#\n")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols[0] == "Watched")
        .map(|cols| cols[3].parse::<i64>().unwrap())
        .sum();
    assert_eq!(held, 4, "{out}");

    let out = tool_ok(
        "mqadmin",
        &["consumerStatus", "-n", &ns, "-g", "watchers"],
        None,
    )
    .await;
    assert!(out.starts_with("#Index     #ClientId"), "{out}");
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("{:<10} {client_id:<40} V5_3_3", 1)),
        "{row}"
    );
    let file = row.split_whitespace().last().unwrap();
    assert!(std::fs::read_to_string(file)
        .unwrap()
        .starts_with("#Consumer Properties#"));
    assert!(
        out.contains("\n\nSame subscription in the same group of consumer\n\nRebalance OK\n"),
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &[
            "getConsumerStatus",
            "-n",
            &ns,
            "-g",
            "watchers",
            "-t",
            "Watched",
        ],
        None,
    )
    .await;
    assert!(
        out.starts_with("get consumer status from client. group=watchers, topic=Watched, originClientId=\n#clientId"),
        "{out}"
    );
    let rows = rows_starting(&out, &client_id);
    let offsets: Vec<(&str, i64)> = rows.iter().map(|c| (c[2], c[3].parse().unwrap())).collect();
    assert_eq!(offsets, [("0", 2), ("1", 2)], "{out}");

    let out = tool_ok(
        "mqadmin",
        &[
            "getConsumerStatus",
            "-n",
            &ns,
            "-g",
            "watchers",
            "-t",
            "Watched",
            "-i",
            &client_id,
            "--json",
        ],
        None,
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let offsets: Vec<i64> = status[&client_id]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [2, 2], "{out}");
    let out = tool_ok(
        "mqadmin",
        &[
            "producerConnection",
            "-n",
            &ns,
            "-g",
            "tools-tests",
            "-t",
            "Watched",
            "--json",
        ],
        None,
    )
    .await;
    let connection: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        connection["connectionSet"][0]["clientId"],
        producer_id.as_str(),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &["consumerConnection", "-n", &ns, "-g", "watchers", "--json"],
        None,
    )
    .await;
    let connection: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        connection["connectionSet"][0]["clientId"],
        client_id.as_str(),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &[
            "consumerStatus",
            "-n",
            &ns,
            "-g",
            "watchers",
            "-i",
            &client_id,
            "--json",
        ],
        None,
    )
    .await;
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    let held: i64 = info["mqTable"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["topic"] == "Watched")
        .map(|q| q["processQueueInfo"]["commitOffset"].as_i64().unwrap())
        .sum();
    assert_eq!(held, 4, "{out}");

    let ToolRun { ok, err, .. } = tool(
        "mqadmin",
        &["consumerConnection", "-n", &ns, "-g", "nobody"],
        None,
    )
    .await;
    assert!(!ok && !err.is_empty(), "an unknown group has no connection");

    // A reset reaches the online member, which consumes everything again from there.
    let out = tool_ok(
        "mqadmin",
        &[
            "resetOffsetByTime",
            "-n",
            &ns,
            "-g",
            "watchers",
            "-t",
            "Watched",
            "-s",
            "0",
        ],
        None,
    )
    .await;
    let rows: Vec<(&str, &str)> = rows_starting(&out, "broker-a")
        .iter()
        .map(|c| (c[1], c[2]))
        .collect();
    assert_eq!(rows, [("0", "0"), ("1", "0")], "{out}");
    eventually("the 4 messages consumed again", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() == 8 }
    })
    .await;
    let mut again = bodies(&seen);
    again.sort();
    assert_eq!(again, ["a", "a", "b", "b", "c", "c", "d", "d"]);
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_reads_and_changes_broker_config_and_subscription_groups() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    let broker = cluster.broker().addr();

    let out = tool_ok(
        "mqadmin",
        &["getBrokerConfig", "-n", &ns, "-b", &broker],
        None,
    )
    .await;
    assert!(
        out.starts_with(&format!("============{broker}============\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n{:<50}=  broker-a\n", "brokerName")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n{:<50}=  {CLUSTER}\n", "brokerClusterName")),
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &[
            "updateBrokerConfig",
            "-n",
            &ns,
            "-b",
            &broker,
            "-k",
            "maxMessageSize",
            "-v",
            "1048576",
        ],
        None,
    )
    .await;
    assert_eq!(out, format!("update broker config success, {broker}\n"));
    let out = tool_ok(
        "mqadmin",
        &["getBrokerConfig", "-n", &ns, "-c", CLUSTER],
        None,
    )
    .await;
    assert!(
        out.starts_with(&format!("============Master: {broker}============\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n{:<50}=  1048576\n", "maxMessageSize")),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &["getBrokerConfig", "-n", &ns, "-b", &broker, "--json"],
        None,
    )
    .await;
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(config[&broker]["maxMessageSize"], "1048576", "{out}");
    // The cluster form goes to every master; a key the broker does not change at run
    // time is refused.
    let out = tool_ok(
        "mqadmin",
        &[
            "updateBrokerConfig",
            "-n",
            &ns,
            "-c",
            CLUSTER,
            "-k",
            "longPollingEnable",
            "-v",
            "false",
        ],
        None,
    )
    .await;
    assert_eq!(out, format!("update broker config success, {broker}\n"));
    let ToolRun { ok, err, .. } = tool(
        "mqadmin",
        &[
            "updateBrokerConfig",
            "-n",
            &ns,
            "-b",
            &broker,
            "-k",
            "brokerName",
            "-v",
            "other",
        ],
        None,
    )
    .await;
    assert!(!ok && err.contains("answered code"), "{err}");

    let out = tool_ok(
        "mqadmin",
        &[
            "updateSubGroup",
            "-n",
            &ns,
            "-c",
            CLUSTER,
            "-g",
            "audit-group",
            "-s",
            "false",
            "-q",
            "2",
            "-r",
            "3",
            "-w",
            "0",
        ],
        None,
    )
    .await;
    assert!(
        out.starts_with(&format!("create subscription group to {broker} success.\n")),
        "{out}"
    );
    assert!(
        out.contains(
            "SubscriptionGroupConfig{groupName=audit-group, consumeEnable=false, consumeFromMinEnable=false, consumeBroadcastEnable=false, consumeMessageOrderly=false, retryQueueNums=2, retryMaxTimes=3, groupRetryPolicy=null, brokerId=0, whichBrokerWhenConsumeSlowly=0, notifyConsumerIdsChangedEnable=true,"
        ),
        "{out}"
    );
    let admin = Admin::start(cluster.options()).unwrap();
    let stored = admin
        .subscription_group(&broker, "audit-group")
        .await
        .unwrap();
    assert!(!stored.consume_enable);
    assert_eq!((stored.retry_queue_nums, stored.retry_max_times), (2, 3));
    assert_eq!(stored.which_broker_when_consume_slowly, 0);

    // RocketMQ 5.5's group attributes: `--attributes`, applied as alterations.
    let with_attributes = |attributes: &'static str| {
        let ns = ns.clone();
        async move {
            tool(
                "mqadmin",
                &[
                    "updateSubGroup",
                    "-n",
                    &ns,
                    "-c",
                    CLUSTER,
                    "-g",
                    "audit-group",
                    "--attributes",
                    attributes,
                ],
                None,
            )
            .await
        }
    };
    let run = with_attributes("+lite.bind.topic=AuditParent,+lite.sub.client.quota=5").await;
    assert!(run.ok, "{}", run.err);
    let run = with_attributes("-lite.sub.client.quota").await;
    assert!(run.ok, "{}", run.err);
    let stored = admin
        .subscription_group(&broker, "audit-group")
        .await
        .unwrap();
    let expected: std::collections::BTreeMap<String, String> =
        [("lite.bind.topic".to_owned(), "AuditParent".to_owned())].into();
    assert_eq!(stored.attributes, expected);
    for bad in [
        "+no.such.attribute=1",
        "+lite.sub.client.quota=lots",
        "lite.bind.topic",
    ] {
        let run = with_attributes(bad).await;
        assert!(!run.ok, "{bad} was taken");
    }

    let out = tool_ok(
        "mqadmin",
        &[
            "deleteSubGroup",
            "-n",
            &ns,
            "-c",
            CLUSTER,
            "-g",
            "audit-group",
            "-r",
            "true",
        ],
        None,
    )
    .await;
    assert!(
        out.starts_with(&format!(
            "delete subscription group [audit-group] from broker [{broker}] in cluster [{CLUSTER}] success.\n"
        )),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &[
            "updateSubGroup",
            "-n",
            &ns,
            "-b",
            &broker,
            "-g",
            "other-group",
            "-d",
            "true",
            "--json",
        ],
        None,
    )
    .await;
    let written: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["brokers"][0], broker.as_str(), "{out}");
    assert_eq!(
        written["subscriptionGroupConfig"]["consumeBroadcastEnable"], true,
        "{out}"
    );
    assert!(
        admin
            .subscription_group(&broker, "other-group")
            .await
            .unwrap()
            .consume_broadcast_enable
    );
    let gone = admin.subscription_group(&broker, "audit-group").await;
    assert_eq!(
        gone.err().and_then(|e| e.response_code()),
        Some(remoting::code::response::SUBSCRIPTION_GROUP_NOT_EXIST)
    );
    admin.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_prints_messages_by_queue_offset_and_time() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Printed", 2).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let producer = producer(&cluster);
    send_per_queue(&producer, "Printed", &[&["a0", "b0"], &["a1"]]).await;

    let out = tool_ok(
        "mqadmin",
        &[
            "queryMsgByOffset",
            "-n",
            &ns,
            "-t",
            "Printed",
            "-b",
            "broker-a",
            "-i",
            "0",
            "-o",
            "1",
            "-f",
            "UTF-8",
        ],
        None,
    )
    .await;
    assert!(
        out.contains(&format!("{:<20} 1\n", "Queue Offset:")),
        "{out}"
    );
    assert!(out.contains(&format!("{:<20} [b]\n", "Tags:")), "{out}");
    assert!(
        out.contains(&format!("{:<20} b0\n", "Message Body:")),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &[
            "queryMsgByOffset",
            "-n",
            &ns,
            "-t",
            "Printed",
            "-b",
            "broker-a",
            "-i",
            "1",
            "-o",
            "0",
            "--json",
        ],
        None,
    )
    .await;
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (found["queueId"].as_i64(), found["queueOffset"].as_i64()),
        (Some(1), Some(0)),
        "{out}"
    );
    assert_eq!(found["body"], "a1", "{out}");
    let ToolRun { ok, err, .. } = tool(
        "mqadmin",
        &[
            "queryMsgByOffset",
            "-n",
            &ns,
            "-t",
            "Printed",
            "-b",
            "broker-a",
            "-i",
            "1",
            "-o",
            "5",
        ],
        None,
    )
    .await;
    assert!(!ok && err.contains("no message at offset 5"), "{err}");

    let out = tool_ok("mqadmin", &["printMsg", "-n", &ns, "-t", "Printed"], None).await;
    assert!(
        out.starts_with(
            "minOffset=0, maxOffset=2, MessageQueue [topic=Printed, brokerName=broker-a, queueId=0]\nMSGID: "
        ),
        "{out}"
    );
    assert!(out.contains("\nminOffset=0, maxOffset=1, MessageQueue [topic=Printed, brokerName=broker-a, queueId=1]\n"), "{out}");
    let bodies = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("MSGID: "))
            .map(|l| l.rsplit("BODY: ").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(bodies(&out), ["a0", "b0", "a1"], "{out}");
    assert_eq!(
        out.matches("--------------------------------------------------------\n")
            .count(),
        2
    );
    assert!(
        out.contains("toString()=Message{topic='Printed', flag=0, properties={"),
        "{out}"
    );

    let out = tool_ok(
        "mqadmin",
        &["printMsg", "-n", &ns, "-t", "Printed", "-s", "a"],
        None,
    )
    .await;
    assert_eq!(bodies(&out), ["a0", "a1"], "{out}");
    let out = tool_ok(
        "mqadmin",
        &["printMsg", "-n", &ns, "-t", "Printed", "-d", "false"],
        None,
    )
    .await;
    assert_eq!(bodies(&out), ["NOT PRINT BODY"; 3], "{out}");
    // Up to a time before the first send: nothing to print.
    let out = tool_ok(
        "mqadmin",
        &["printMsg", "-n", &ns, "-t", "Printed", "-e", &before],
        None,
    )
    .await;
    assert!(bodies(&out).is_empty(), "{out}");
    assert!(
        out.contains("minOffset=0, maxOffset=0, MessageQueue [topic=Printed"),
        "{out}"
    );
    let out = tool_ok(
        "mqadmin",
        &[
            "printMsg", "-n", &ns, "-t", "Printed", "-b", &before, "--json",
        ],
        None,
    )
    .await;
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all: Vec<&str> = printed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["messages"].as_array().unwrap())
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(all, ["a0", "b0", "a1"], "{out}");
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_stats_count_traffic_and_lag() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    let broker = cluster.broker().addr();
    cluster.create_topic("Counted", 2).await;
    cluster.create_topic("Quiet", 1).await;
    let producer = producer(&cluster);
    let reader = PullConsumer::start(cluster.options(), "counters").unwrap();
    let queue = MessageQueue::new("Counted", "broker-a", 0);
    // Traffic in two rounds more than one of the broker's 10-second stats samples apart,
    // so its minute window counts the second round whether or not it counts a key's
    // first burst.
    send_per_queue(&producer, "Counted", &[&["a"], &[]]).await;
    send_per_queue(&producer, "Quiet", &[&["q"]]).await;
    assert_eq!(
        reader.pull(&queue, "*", 0, 1).await.unwrap().messages.len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    send_per_queue(&producer, "Counted", &[&["b"], &["c"]]).await;
    assert_eq!(
        reader.pull(&queue, "*", 1, 1).await.unwrap().messages.len(),
        1
    );
    // The group has committed the first message of queue 0: two are left.
    reader.commit_offset(&queue, 1).await.unwrap();
    let admin = Admin::start(cluster.options()).unwrap();
    wait_for_group(&admin, "counters", 2).await;

    // statsAll prints the broker's own counters (VIEW_BROKER_STATS_DATA), which count
    // the second round once the broker has sampled it.
    let figures = || {
        let (admin, broker) = (admin.clone(), broker.clone());
        async move {
            let put = admin
                .broker_stats_data(&broker, client::admin::TOPIC_PUT_NUMS, "Counted")
                .await
                .unwrap();
            let got = admin
                .broker_stats_data(&broker, client::admin::GROUP_GET_NUMS, "Counted@counters")
                .await
                .unwrap();
            (put.sum_24_hours(), got.sum_24_hours())
        }
    };
    let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    eventually("statsAll showing the sampled traffic", || {
        let (ns, last, figures) = (ns.clone(), last.clone(), &figures);
        async move {
            let before = figures().await;
            let run = tool("mqadmin", &["statsAll", "-n", &ns, "-t", "Counted"], None).await;
            let after = figures().await;
            let printed = rows_starting(&run.out, "Counted").first().map(|cols| {
                (
                    cols[5].parse::<i64>().unwrap(),
                    cols[6].parse::<i64>().unwrap(),
                )
            });
            *last.lock().unwrap() = run.out;
            run.ok && before == after && printed == Some(before) && before.0 >= 2 && before.1 >= 1
        }
    })
    .await;
    let out = last.lock().unwrap().clone();
    assert!(
        out.starts_with(&format!(
            "{:<64}  {:<64} {:>12} {:>11} {:>11} {:>14} {:>14}\n",
            "#Topic",
            "#Consumer Group",
            "#Accumulation",
            "#InTPS",
            "#OutTPS",
            "#InMsg24Hour",
            "#OutMsg24Hour"
        )),
        "{out}"
    );
    let row = &rows_starting(&out, "Counted")[0];
    assert_eq!(row[..3], ["Counted", "counters", "2"], "{out}");
    assert!(
        row[3].parse::<f64>().unwrap() > 0.0,
        "puts in the last minute: {out}"
    );
    // A topic nobody consumes.
    let out = tool_ok("mqadmin", &["statsAll", "-n", &ns, "-t", "Quiet"], None).await;
    let rows = rows_starting(&out, "Quiet");
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(
        (rows[0][1], rows[0].last().copied()),
        ("0", Some("NO_CONSUMER")),
        "{out}"
    );
    let out = tool_ok("mqadmin", &["statsAll", "-n", &ns, "--json"], None).await;
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let topics: Vec<&str> = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert!(
        topics.contains(&"Counted") && topics.contains(&"Quiet"),
        "{out}"
    );
    assert!(!topics.iter().any(|t| t.starts_with("%RETRY%")), "{out}");
    assert_eq!(stats["source"], "brokerStats", "{out}");

    let out = tool_ok(
        "mqadmin",
        &["brokerConsumeStats", "-n", &ns, "-b", &broker],
        None,
    )
    .await;
    assert!(out.starts_with("#Topic"), "{out}");
    let rows = rows_starting(&out, "Counted");
    assert_eq!(
        rows.len(),
        1,
        "only the consumed queue has a last time: {out}"
    );
    assert_eq!(
        rows[0][..7],
        ["Counted", "counters", "broker-a", "0", "2", "1", "1"],
        "{out}"
    );
    assert!(out.ends_with("\nDiff Total: 2\n"), "{out}");
    let out = tool_ok(
        "mqadmin",
        &[
            "brokerConsumeStats",
            "-n",
            &ns,
            "-b",
            &broker,
            "-l",
            "5",
            "--json",
        ],
        None,
    )
    .await;
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["rows"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(stats["diffTotal"], 2, "{out}");
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_wipes_and_adds_back_a_brokers_write_permission() {
    let cluster = Cluster::start().await;
    let ns = cluster.namesrv_addr();
    cluster.create_topic("Guarded", 2).await;
    let admin = Admin::start(cluster.options()).unwrap();
    // The name server counts the topics in which the broker has queues.
    let mut served = 0;
    for topic in admin.topic_list().await.unwrap() {
        let route = admin.topic_route(&topic).await;
        if route.is_ok_and(|r| r.queue_datas.iter().any(|q| q.broker_name == "broker-a")) {
            served += 1;
        }
    }
    assert!(served > 1, "Guarded and the broker's own topics");
    let perm = || {
        let admin = admin.clone();
        async move { admin.topic_route("Guarded").await.unwrap().queue_datas[0].perm }
    };

    // A second name server that is not there: reported, and the command fails.
    let both = format!("{ns};127.0.0.1:1");
    let ToolRun { ok, out, err } = tool(
        "mqadmin",
        &["wipeWritePerm", "-n", &both, "-b", "broker-a"],
        None,
    )
    .await;
    assert!(!ok, "one name server failed: {err}");
    assert_eq!(
        out,
        format!(
            "wipe write perm of broker[broker-a] in name server[{ns}] OK, {served}\n\
             wipe write perm of broker[broker-a] in name server[127.0.0.1:1] Failed\n"
        )
    );
    assert_eq!(perm().await, remoting::body::perm::READ);

    let out = tool_ok(
        "mqadmin",
        &["addWritePerm", "-n", &ns, "-b", "broker-a", "--json"],
        None,
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer[0]["addTopicCount"], served, "{out}");
    assert_eq!(perm().await, remoting::body::perm::READ_WRITE);

    let out = tool_ok(
        "mqadmin",
        &["wipeWritePerm", "-n", &ns, "-b", "broker-a"],
        None,
    )
    .await;
    assert_eq!(
        out,
        format!("wipe write perm of broker[broker-a] in name server[{ns}] OK, {served}\n")
    );
    let out = tool_ok(
        "mqadmin",
        &["addWritePerm", "-n", &ns, "-b", "broker-a"],
        None,
    )
    .await;
    assert_eq!(
        out,
        format!("add write perm of broker[broker-a] in name server[{ns}] OK, {served}\n")
    );
    assert_eq!(perm().await, remoting::body::perm::READ_WRITE);
    admin.shutdown();
}
