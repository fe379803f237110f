//! The `mqadmin` and `mq` binaries against the in-memory protocol server.

mod support;

use std::process::Command;
use std::time::Duration;

use client::{Admin, ClientOptions, Message, Producer, ProducerOptions};
use support::{MiniCluster, BROKER_NAME, CLUSTER};

/// Runs a binary with a time limit, off the async runtime (the server runs on it).
async fn run(
    binary: &'static str,
    args: Vec<String>,
    stdin: Option<&'static str>,
) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(binary)
            .args(&args)
            .env_remove("NAMESRV_ADDR")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{binary} {args:?} did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const MQADMIN: &str = env!("CARGO_BIN_EXE_mqadmin");
const MQ: &str = env!("CARGO_BIN_EXE_mq");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_topic_commands_print_rocketmq_tables() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();

    let (ok, out, err) = run(
        MQADMIN,
        args(&[
            "updateTopic",
            "-n",
            &addr,
            "-c",
            CLUSTER,
            "-t",
            "Audit",
            "-r",
            "4",
            "-w",
            "4",
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("create topic to {addr} success.")),
        "{out}"
    );
    assert!(
        out.contains("TopicConfig [topicName=Audit, readQueueNums=4, writeQueueNums=4, perm=RW-"),
        "{out}"
    );

    let (ok, out, err) = run(MQADMIN, args(&["topicList", "-n", &addr]), None).await;
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l == "Audit"), "{out}");

    Producer::start(ClientOptions::new(&addr), ProducerOptions::new("p"))
        .unwrap()
        .send(Message::new("Audit", "x").with_keys(["k-9"]))
        .await
        .unwrap();
    let (ok, out, err) = run(
        MQADMIN,
        args(&["topicStatus", "-n", &addr, "-t", "Audit"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("#Broker Name") && lines[0].contains("#Max Offset"),
        "{out}"
    );
    assert_eq!(lines.len(), 5, "{out}");
    let total: i64 = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 1);

    let (ok, out, err) = run(
        MQADMIN,
        args(&["topicRoute", "-n", &addr, "-t", "Audit", "--json"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let route: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(route["queueDatas"][0]["brokerName"], BROKER_NAME);

    let (ok, out, err) = run(
        MQADMIN,
        args(&["queryMsgByKey", "-n", &addr, "-t", "Audit", "-k", "k-9"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("#Message ID"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");

    let (ok, out, err) = run(
        MQADMIN,
        args(&["deleteTopic", "-n", &addr, "-c", CLUSTER, "-t", "Audit"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("delete topic [Audit] from cluster [MiniCluster] success."),
        "{out}"
    );

    let (ok, _, err) = run(
        MQADMIN,
        args(&["topicRoute", "-n", &addr, "-t", "Audit"]),
        None,
    )
    .await;
    assert!(!ok, "a deleted topic has no route");
    assert!(err.contains("no route"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_cluster_broker_and_message_views() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();
    let (ok, out, err) = run(MQADMIN, args(&["clusterList", "-n", &addr]), None).await;
    assert!(ok, "{err}");
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
        row.starts_with(CLUSTER) && row.contains(BROKER_NAME) && row.contains("V5_3_3"),
        "{row}"
    );
    assert!(row.contains("1.50("), "putTps first number: {row}");

    let (ok, out, err) = run(
        MQADMIN,
        args(&["brokerStatus", "-n", &addr, "-b", &addr]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{:<32}: V5_3_3", "brokerVersionDesc")),
        "{out}"
    );

    cluster.cluster.create_topic("V", 1);
    let sent = Producer::start(ClientOptions::new(&addr), ProducerOptions::new("p"))
        .unwrap()
        .send(Message::new("V", "viewed body").with_tag("t1"))
        .await
        .unwrap();
    let (ok, out, err) = run(
        MQADMIN,
        args(&[
            "queryMsgById",
            "-n",
            &addr,
            "-i",
            &sent.offset_msg_id,
            "-f",
            "UTF-8",
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{:<20} {}", "OffsetID:", sent.offset_msg_id)),
        "{out}"
    );
    assert!(out.contains("Tags:                [t1]"), "{out}");
    assert!(out.contains("Message Body:        viewed body"), "{out}");
    // A client unique id needs the topic.
    let (ok, out, err) = run(
        MQADMIN,
        args(&[
            "queryMsgById",
            "-n",
            &addr,
            "-i",
            &sent.msg_id,
            "-t",
            "V",
            "--json",
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found[0]["body"], "viewed body");

    let (ok, out, err) = run(
        MQADMIN,
        args(&["getBrokerGroup", "-n", &addr, "-b", BROKER_NAME]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.lines().nth(1).unwrap().contains("MASTER"), "{out}");
    let (ok, _, err) = run(
        MQADMIN,
        args(&["transferLeader", "-n", &addr, "-b", BROKER_NAME, "-i", "n1"]),
        None,
    )
    .await;
    assert!(!ok && err.contains("unsupported"), "{err}");

    let (ok, _, err) = run(MQADMIN, args(&["topicList"]), None).await;
    assert!(!ok && err.contains("-n"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_progress_shows_lag_per_queue() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();
    cluster.cluster.create_topic("P", 2);
    let producer = Producer::start(ClientOptions::new(&addr), ProducerOptions::new("p")).unwrap();
    for i in 0..6 {
        producer
            .send(Message::new("P", format!("{i}")))
            .await
            .unwrap();
    }
    let consumer = client::PullConsumer::start(ClientOptions::new(&addr), "lagging").unwrap();
    consumer
        .commit_offset(&client::MessageQueue::new("P", BROKER_NAME, 0), 1)
        .await
        .unwrap();
    consumer
        .commit_offset(&client::MessageQueue::new("P", BROKER_NAME, 1), 0)
        .await
        .unwrap();
    let admin = Admin::start(ClientOptions::new(&addr)).unwrap();
    assert_eq!(
        admin
            .consume_stats("lagging", None)
            .await
            .unwrap()
            .total_diff(),
        5
    );
    let (ok, out, err) = run(
        MQADMIN,
        args(&["consumerProgress", "-n", &addr, "-g", "lagging"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("#Topic"), "{out}");
    assert!(out.contains("Diff Total: 5"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_produce_then_consume_round_trip() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();
    cluster.cluster.create_topic("Chat", 2);
    let (ok, out, err) = run(
        MQ,
        args(&[
            "produce", "-n", &addr, "-t", "Chat", "--tag", "greeting", "-k", "k1",
        ]),
        Some("hello\nworld\n"),
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SEND_OK")).count(),
        2,
        "{out}"
    );

    let (ok, out, err) = run(
        MQ,
        args(&["consume", "-n", &addr, "-t", "Chat", "--json"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let mut bodies: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert_eq!(v["tags"], "greeting"))
        .map(|v| v["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["hello", "world"]);

    let (ok, out, err) = run(
        MQ,
        args(&["consume", "-n", &addr, "-t", "Chat", "-e", "other"]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.is_empty(), "tag filter: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_bench_prints_a_json_summary() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();
    cluster.cluster.create_topic("Bench", 4);
    let (ok, out, err) = run(
        MQ,
        args(&[
            "bench", "produce", "-n", &addr, "-t", "Bench", "-s", "64", "-w", "4", "-c", "200",
            "-d", "30", "--json",
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["messages"], 200);
    assert_eq!(summary["errors"], 0);
    assert_eq!(summary["send_latency_ms"]["count"], 200);
    assert!(
        summary["send_latency_ms"]["p99"].as_f64().unwrap()
            >= summary["send_latency_ms"]["p50"].as_f64().unwrap()
    );
    assert_eq!(cluster.cluster.bodies("Bench").len(), 200);

    let (ok, out, err) = run(
        MQ,
        args(&[
            "bench", "consume", "-n", &addr, "-t", "Bench", "--from", "first", "-c", "200", "-d",
            "30", "--json",
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["messages"].as_u64().unwrap() >= 200, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mq_consume_follow_waits_for_new_messages() {
    let cluster = MiniCluster::start().await;
    let addr = cluster.addr();
    cluster.cluster.create_topic("Tail", 2);
    let producer = Producer::start(ClientOptions::new(&addr), ProducerOptions::new("p")).unwrap();
    producer.send(Message::new("Tail", "first")).await.unwrap();
    let follower = tokio::spawn(run(
        MQ,
        args(&["consume", "-n", &addr, "-t", "Tail", "-f", "-c", "3"]),
        None,
    ));
    // Whether these land before or after the follower starts, it reads from the first
    // offset and keeps going until it has three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer.send(Message::new("Tail", "second")).await.unwrap();
    producer.send(Message::new("Tail", "third")).await.unwrap();
    let (ok, out, err) = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .unwrap()
        .unwrap();
    assert!(ok, "{err}");
    let mut bodies: Vec<&str> = out
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["first", "second", "third"]);
}
