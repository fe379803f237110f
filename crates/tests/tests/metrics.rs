//! Prometheus metrics (`metricsExporterType=PROM`) over real `mqnamesrv` and `mqbroker`
//! processes: a known workload's counters, lag and connections read back from a scrape of
//! a standalone broker and of its name server, POP's checkpoints, acks and redeliveries,
//! and a broker group's raft state across a kill -9 of its master. Scrapes are parsed by `prometheus-parse`, not by this project.

mod common;

use std::time::Duration;

use client::consumer::{PopConsumer, PopRequest};
use client::{
    Message, MessageQueue, Producer, ProducerOptions, PullConsumer, PushConsumer, ReceivedMessage,
    TransactionProducer, TransactionState,
};
use common::{push_options, recorder, Group, Seen, WAIT};
use tests::scrape::{scrape, Scrape};
use tests::{free_port, Broker, NameServer};

const TOPIC: &str = "MetricsTopic";
const READER: &str = "metrics-reader";
const BODY_BYTES: usize = 200;

fn prometheus_on() -> Vec<(&'static str, String)> {
    vec![
        ("metricsExporterType", "PROM".to_owned()),
        ("metricsPromExporterHost", "127.0.0.1".to_owned()),
        ("metricsLabel", "env:ci".to_owned()),
    ]
}

/// Scrapes `addr` until `done` holds for the scrape (bounded by [`WAIT`]); gauges and
/// counters follow the workload by a moment (a pull answer is counted after it is sent).
async fn scrape_until(addr: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let addr_owned = addr.to_owned();
        let scraped = tokio::task::spawn_blocking(move || scrape(&addr_owned))
            .await
            .unwrap();
        match scraped {
            Ok(scraped) if done(&scraped) => return scraped,
            Ok(scraped) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last scrape:\n{}",
                scraped.text
            ),
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {e:#}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_a_known_workload() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv_metrics_port = free_port();
    let mut namesrv_conf = prometheus_on();
    namesrv_conf.push(("metricsPromExporterPort", namesrv_metrics_port.to_string()));
    let namesrv = NameServer::start_with(dir.path(), &namesrv_conf).unwrap();
    // Open transactions are checked back a second after they began, then every second.
    let mut broker_conf = prometheus_on();
    broker_conf.push(("transactionTimeOut", "1000".to_owned()));
    broker_conf.push(("transactionCheckInterval", "1000".to_owned()));
    let broker = Broker::start(dir.path(), "broker-a", &namesrv.addr(), &broker_conf).unwrap();
    let options = common::client_options(&namesrv.addr());
    common::create_topic(&namesrv.addr(), TOPIC, 2).await;

    // 30 normal sends, 5 with a delay level and 5 timer messages (both message_type="delay"),
    // 200-byte bodies.
    let producer =
        Producer::start(options.clone(), ProducerOptions::new("metrics-producer")).unwrap();
    for i in 0..40 {
        let body = format!("{i:0>width$}", width = BODY_BYTES);
        let message = Message::new(TOPIC, body);
        let message = match i {
            30..35 => message.with_delay_level(1),
            35.. => message.with_delay_ms(500),
            _ => message,
        };
        producer.send(message).await.unwrap();
    }

    // Three transactions left open: their local state, and every check's answer, unknown.
    // They never reach the topic (its lag stays as below) but count as half messages, once
    // each however often a check stores them again.
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&checks);
    let transactions = TransactionProducer::start(
        options.clone(),
        ProducerOptions::new("metrics-tx-producer"),
        move |_: &ReceivedMessage| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            TransactionState::Unknown
        },
    )
    .unwrap();
    for i in 0..3 {
        let message = Message::new(TOPIC, format!("open transaction {i}"));
        let sent = transactions
            .send_in_transaction(message, |_| async { TransactionState::Unknown })
            .await
            .unwrap();
        assert_eq!(sent.state, TransactionState::Unknown);
    }

    // A pull consumer reads queue 0 from its start and commits 5 offsets there; a push
    // consumer group stays connected.
    let reader = PullConsumer::start(options.clone(), READER).unwrap();
    let queue = MessageQueue::new(TOPIC, "broker-a", 0);
    let read = common::read_queue(&reader, &queue).await;
    assert!(read.len() >= 15, "queue 0 holds about half: {}", read.len());
    reader.commit_offset(&queue, 5).await.unwrap();
    let seen = Seen::default();
    let push = PushConsumer::start(
        options.clone(),
        push_options("metrics-push-group", TOPIC),
        recorder(&seen),
    )
    .await
    .unwrap();

    let broker_metrics = broker.metrics_addr().unwrap();
    let on_broker = [
        ("cluster", "TestCluster"),
        ("node_type", "broker"),
        ("node_id", "broker-a"),
        ("env", "ci"),
    ];
    let topic_labels = [("topic", TOPIC)];
    let read_count = read.len() as f64;
    let scraped = scrape_until(&broker_metrics, "the workload in the scrape", |s| {
        s.value("rocketmq_messages_out_total", &[("topic", TOPIC), ("consumer_group", READER)])
            >= read_count
            && s.value(
                "rocketmq_consumer_connections",
                &[("consumer_group", "metrics-push-group")],
            ) >= 1.0
            // Once the delayed ones reached the topic, all 40 but the 5 committed.
            && s.value(
                "rocketmq_consumer_lag_messages",
                &[("topic", TOPIC), ("consumer_group", READER)],
            ) == 35.0
            && s.value("rocketmq_timer_dequeue_total", &[("topic", TOPIC)]) == 5.0
            && s.value("rocketmq_half_messages", &[("topic", TOPIC)]) == 3.0
    })
    .await;
    assert_eq!(
        scraped.value("rocketmq_timer_enqueue_total", &[("topic", TOPIC)]),
        5.0
    );

    let normal = [("topic", TOPIC), ("message_type", "normal")];
    let delay = [("topic", TOPIC), ("message_type", "delay")];
    assert_eq!(scraped.value("rocketmq_messages_in_total", &normal), 30.0);
    assert_eq!(scraped.value("rocketmq_messages_in_total", &delay), 10.0);
    let transaction = [("topic", TOPIC), ("message_type", "transaction")];
    assert_eq!(
        scraped.value("rocketmq_messages_in_total", &transaction),
        3.0
    );
    common::eventually("each open transaction checked twice", || {
        let checks = std::sync::Arc::clone(&checks);
        async move { checks.load(std::sync::atomic::Ordering::Relaxed) >= 6 }
    })
    .await;
    // Checks stored copies of them: still each transaction once.
    scrape_until(
        &broker_metrics,
        "three half messages after the checks",
        |s| s.value("rocketmq_half_messages", &[("topic", TOPIC)]) == 3.0,
    )
    .await;
    for (key, value) in on_broker {
        assert_eq!(
            scraped.value(
                "rocketmq_messages_in_total",
                &[("topic", TOPIC), (key, value)]
            ),
            43.0,
            "every series carries {key}={value}"
        );
    }
    let bytes_in = scraped.value("rocketmq_throughput_in_total", &topic_labels)
        - scraped.value("rocketmq_throughput_in_total", &transaction);
    assert!(
        bytes_in >= 40.0 * BODY_BYTES as f64 && bytes_in < 40.0 * (BODY_BYTES as f64 + 1024.0),
        "bytes in: {bytes_in}"
    );
    assert_eq!(scraped.value("rocketmq_message_size_count", &normal), 30.0);
    assert_eq!(
        scraped.value("rocketmq_message_size_sum", &normal),
        scraped.value("rocketmq_throughput_in_total", &normal),
        "each message's size is what it wrote"
    );
    // Sends were answered: each is one SEND_MESSAGE(_V2) in the latency histogram.
    let sends = scraped.value(
        "rocketmq_rpc_latency_count",
        &[
            ("request_code", "send_message_v2"),
            ("response_code", "success"),
        ],
    ) + scraped.value(
        "rocketmq_rpc_latency_count",
        &[
            ("request_code", "send_message"),
            ("response_code", "success"),
        ],
    );
    assert!(sends >= 40.0, "sends in rocketmq_rpc_latency: {sends}");
    assert!(scraped.value("rocketmq_topic_number", &[]) >= 1.0);
    assert_eq!(scraped.value("rocketmq_broker_permission", &[]), 6.0);
    assert!(scraped.value("rocketmq_storage_size", &[]) > 0.0);
    assert_eq!(
        scraped.series("rocketmq_storage_flush_behind_bytes", &[]),
        1
    );
    // With no more writes, dispatch and flush (every flushIntervalCommitLog) catch up.
    scrape_until(&broker_metrics, "the store caught up", |s| {
        s.value("rocketmq_storage_flush_behind_bytes", &[]) == 0.0
            && s.value("rocketmq_storage_dispatch_behind_bytes", &[]) == 0.0
    })
    .await;
    assert!(
        scraped.value(
            "rocketmq_producer_connections",
            &[("protocol_type", "remoting")]
        ) >= 1.0
    );
    assert_eq!(
        scraped.value(
            "rocketmq_consumer_connections",
            &[
                ("consumer_group", "metrics-push-group"),
                ("consume_mode", "push")
            ]
        ),
        1.0
    );
    // The pull consumer committed 5 of queue 0 and nothing of queue 1 (the scrape waited
    // for its lag to be every other message); nothing of it is popped, so all is ready.
    let reader_labels = [("topic", TOPIC), ("consumer_group", READER)];
    assert_eq!(
        scraped.value("rocketmq_consumer_ready_messages", &reader_labels),
        35.0
    );
    assert_eq!(
        scraped.value("rocketmq_consumer_inflight_messages", &reader_labels),
        0.0
    );
    assert_eq!(
        scraped.series("rocketmq_consumer_lag_latency", &reader_labels),
        1
    );
    assert_eq!(
        scraped.value("rocketmq_messages_out_total", &reader_labels),
        read_count,
        "every message pulled is counted once"
    );

    // The name server: the broker registered, and its requests were timed.
    let namesrv_metrics = format!("127.0.0.1:{namesrv_metrics_port}");
    let on_namesrv = scrape_until(&namesrv_metrics, "the broker in the name server", |s| {
        s.value("rocketmq_namesrv_brokers", &[]) >= 1.0
    })
    .await;
    assert_eq!(on_namesrv.value("rocketmq_namesrv_clusters", &[]), 1.0);
    assert!(on_namesrv.value("rocketmq_namesrv_topics", &[]) >= 1.0);
    assert!(
        on_namesrv.value(
            "rocketmq_rpc_latency_count",
            &[
                ("request_code", "register_broker"),
                ("node_type", "namesrv")
            ]
        ) >= 1.0
    );
    assert!(
        on_namesrv.value(
            "rocketmq_rpc_latency_count",
            &[("request_code", "get_routeinfo_by_topic")]
        ) >= 1.0
    );

    push.shutdown().await;
    reader.shutdown();
    producer.shutdown().await;
    transactions.producer().shutdown().await;
}

/// POP's series: 6 messages popped, 4 acknowledged one by one, 2 left to run out of their
/// invisible time and stored again for redelivery; then nothing is open and the revive
/// queue is read to its end.
/// With `timerStopDequeue` the master holds due timer messages back: the scrape counts
/// them (`rocketmq_timer_dequeue_lag`, with a latency that grows); turned off with
/// `updateBrokerConfig`, they are delivered and the lag goes back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_gauges_count_due_messages_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut conf = prometheus_on();
    conf.push(("timerStopDequeue", "true".to_owned()));
    let broker = Broker::start(dir.path(), "broker-t", &namesrv.addr(), &conf).unwrap();
    let options = common::client_options(&namesrv.addr());
    let topic = "TimerHeld";
    common::create_topic(&namesrv.addr(), topic, 2).await;
    let producer =
        Producer::start(options.clone(), ProducerOptions::new("timer-held-producer")).unwrap();
    for i in 0..4 {
        let message = Message::new(topic, format!("held {i}")).with_delay_ms(200);
        producer.send(message).await.unwrap();
    }
    let metrics = broker.metrics_addr().unwrap();
    let held = scrape_until(&metrics, "four due messages held back", |s| {
        s.value("rocketmq_timer_dequeue_lag", &[]) == 4.0
            && s.value("rocketmq_timer_dequeue_latency", &[]) >= 1000.0
    })
    .await;
    assert_eq!(held.value("rocketmq_timer_enqueue_lag", &[]), 0.0);
    assert_eq!(
        held.value("rocketmq_timer_dequeue_total", &[("topic", topic)]),
        0.0
    );

    let admin = client::Admin::start(options.clone()).unwrap();
    admin
        .update_broker_config(&broker.addr(), &[("timerStopDequeue", "false")])
        .await
        .unwrap();
    scrape_until(&metrics, "the held messages delivered", |s| {
        s.value("rocketmq_timer_dequeue_lag", &[]) == 0.0
            && s.value("rocketmq_timer_dequeue_latency", &[]) == 0.0
            && s.value("rocketmq_timer_dequeue_total", &[("topic", topic)]) == 4.0
    })
    .await;
    admin.shutdown();
    producer.shutdown().await;
}

/// Timer messages still waiting, by the topic they will reach
/// (`rocketmq_timing_messages`) and by how soon they are due
/// (`rocketmq_timer_message_snapshot`): 3 due in 50 s, 2 in 10 min; one due at once is
/// delivered and counted in neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_gauges_count_waiting_messages_by_topic_and_due_time() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let broker = Broker::start(dir.path(), "broker-w", &namesrv.addr(), &prometheus_on()).unwrap();
    let options = common::client_options(&namesrv.addr());
    let (soon, later) = ("TimerSoon", "TimerLater");
    for topic in [soon, later] {
        common::create_topic(&namesrv.addr(), topic, 2).await;
    }
    let producer =
        Producer::start(options.clone(), ProducerOptions::new("timer-wait-producer")).unwrap();
    for i in 0..3 {
        let message = Message::new(soon, format!("soon {i}")).with_delay_ms(50_000);
        producer.send(message).await.unwrap();
    }
    for i in 0..2 {
        let message = Message::new(later, format!("later {i}")).with_delay_ms(600_000);
        producer.send(message).await.unwrap();
    }
    producer
        .send(Message::new(soon, "at once").with_delay_ms(100))
        .await
        .unwrap();
    let metrics = broker.metrics_addr().unwrap();
    // The snapshot is counted once a second: wait for one taken after the delivery.
    scrape_until(&metrics, "five messages waiting", |s| {
        let bucket = |bound: &str| {
            s.value(
                "rocketmq_timer_message_snapshot",
                &[("timer_bound_s", bound)],
            )
        };
        s.value("rocketmq_timing_messages", &[("topic", soon)]) == 3.0
            && s.value("rocketmq_timing_messages", &[("topic", later)]) == 2.0
            && s.value("rocketmq_timer_dequeue_total", &[("topic", soon)]) == 1.0
            && bucket("60") == 3.0
            && bucket("900") == 2.0
            && ["5", "300", "3600", "86400"]
                .iter()
                .all(|bound| bucket(bound) == 0.0)
    })
    .await;
    drop(broker);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_pop_checkpoints_acks_and_redeliveries() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let broker = Broker::start(dir.path(), "broker-a", &namesrv.addr(), &prometheus_on()).unwrap();
    let options = common::client_options(&namesrv.addr());
    let topic = "MetricsPop";
    let group = "metrics-pop";
    common::create_topic(&namesrv.addr(), topic, 1).await;
    let producer =
        Producer::start(options.clone(), ProducerOptions::new("metrics-producer")).unwrap();
    for i in 0..6 {
        producer
            .send(Message::new(topic, format!("pop-{i}")))
            .await
            .unwrap();
    }
    let consumer = PopConsumer::start(options.clone(), group).unwrap();
    let mut popped = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while popped.len() < 6 && tokio::time::Instant::now() < deadline {
        let request = PopRequest {
            topic,
            expression: "*",
            max_messages: 32,
            invisible_time: Duration::from_secs(1),
            wait: Duration::from_secs(2),
            orderly: false,
        };
        popped.extend(consumer.pop(&request).await.unwrap().messages);
    }
    assert_eq!(popped.len(), 6);
    for message in &popped[..4] {
        consumer.ack(message).await.unwrap();
    }

    let labels = [("topic", topic), ("consumer_group", group)];
    let with = |kind: &'static str| {
        [
            ("topic", topic),
            ("consumer_group", group),
            ("revive_message_type", kind),
        ]
    };
    let scraped = scrape_until(
        &broker.metrics_addr().unwrap(),
        "the acks read back and the rest stored again",
        |s| {
            s.value("rocketmq_pop_revive_retry_messages_total", &labels) == 2.0
                && s.value("rocketmq_pop_checkpoint_buffer_size", &[]) == 0.0
                && s.value("rocketmq_pop_revive_out_message_total", &with("ACK")) == 4.0
        },
    )
    .await;
    assert_eq!(
        scraped.value(
            "rocketmq_pop_revive_in_message_total",
            &[
                ("topic", topic),
                ("consumer_group", group),
                ("revive_message_type", "ACK"),
                ("put_status", "PUT_OK"),
            ]
        ),
        4.0
    );
    let checkpoints = scraped.value("rocketmq_pop_revive_in_message_total", &with("CK"));
    assert!(checkpoints >= 1.0, "checkpoints stored: {checkpoints}");
    assert_eq!(
        scraped.value("rocketmq_pop_revive_out_message_total", &with("CK")),
        checkpoints,
        "every checkpoint read back"
    );
    assert_eq!(
        scraped.value(
            "rocketmq_pop_revive_retry_messages_total",
            &[("topic", topic), ("put_status", "PUT_OK")]
        ),
        2.0
    );
    assert_eq!(
        scraped.series("rocketmq_pop_revive_lag", &[("queue_id", "0")]),
        1
    );
    scrape_until(
        &broker.metrics_addr().unwrap(),
        "the revive queue read to its end",
        |s| {
            s.value("rocketmq_pop_revive_lag", &[]) == 0.0
                && s.value("rocketmq_pop_revive_latency", &[]) == 0.0
        },
    )
    .await;
    consumer.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_reports_its_raft_state_through_a_failover() {
    // The members also prove a link secret to each other (dLegerSecret) through the broker.
    let mut config = prometheus_on();
    config.push(("dLegerSecret", "metrics-group-link-secret".to_owned()));
    let mut group = Group::start_with(&config).await;
    let producer = Producer::start(
        common::client_options(&group.namesrv.addr()),
        ProducerOptions::new("metrics-group-producer"),
    )
    .unwrap();
    common::create_topic(&group.namesrv.addr(), TOPIC, 2).await;
    for i in 0..20 {
        producer
            .send(Message::new(TOPIC, format!("m{i}")))
            .await
            .unwrap();
    }
    let members: Vec<(String, String)> = group
        .brokers
        .members
        .iter()
        .map(|m| (m.addr(), m.metrics_addr().unwrap()))
        .collect();
    let master_metrics = members
        .iter()
        .find(|(addr, _)| *addr == group.master)
        .map(|(_, metrics)| metrics.clone())
        .unwrap();
    let leader = scrape_until(&master_metrics, "the master's raft state", |s| {
        s.value("rocketmq_raft_role", &[("role", "LEADER")]) == 1.0
            && s.series("rocketmq_raft_follower_lag_entries", &[]) == 2
    })
    .await;
    let term = leader.value("rocketmq_raft_term", &[]);
    let commit = leader.value("rocketmq_raft_commit_index", &[]);
    assert!(
        term >= 1.0 && commit >= 20.0,
        "term {term}, commit {commit}"
    );
    assert_eq!(leader.value("rocketmq_raft_stopped", &[]), 0.0);
    // A group member reports its store's backlog too: every entry is fsynced in the
    // background and, once committed, applied.
    scrape_until(&master_metrics, "the leader's store caught up", |s| {
        s.series("rocketmq_storage_flush_behind_bytes", &[]) == 1
            && s.value("rocketmq_storage_flush_behind_bytes", &[]) == 0.0
            && s.value("rocketmq_storage_dispatch_behind_bytes", &[]) == 0.0
    })
    .await;
    // 20 sends (and the topic's creation) went through the leader's appends and fsyncs.
    assert!(leader.value("rocketmq_raft_entries_per_append_sum", &[]) >= 20.0);
    assert!(leader.value("rocketmq_raft_fsync_latency_count", &[]) >= 1.0);
    assert_eq!(
        leader.value("rocketmq_messages_in_total", &[("topic", TOPIC)]),
        20.0
    );
    for (addr, metrics) in members.iter().filter(|(addr, _)| *addr != group.master) {
        let follower = scrape_until(metrics, "a follower at the leader's commit", |s| {
            s.value("rocketmq_raft_role", &[("role", "FOLLOWER")]) == 1.0
                && s.value("rocketmq_raft_applied_index", &[]) >= commit
        })
        .await;
        assert_eq!(follower.value("rocketmq_raft_term", &[]), term, "{addr}");
        assert_eq!(
            follower.series("rocketmq_raft_follower_lag_entries", &[]),
            0
        );
    }

    // kill -9 of the master: a follower is elected and counts the election it saw.
    let old_master = group.master.clone();
    group.kill(&old_master);
    let new_master = group.new_master(&old_master).await;
    let new_metrics = members
        .iter()
        .find(|(addr, _)| *addr == new_master)
        .map(|(_, metrics)| metrics.clone())
        .unwrap();
    let after = scrape_until(&new_metrics, "the new leader's raft state", |s| {
        s.value("rocketmq_raft_role", &[("role", "LEADER")]) == 1.0
    })
    .await;
    assert!(after.value("rocketmq_raft_term", &[]) > term);
    assert!(after.value("rocketmq_raft_elections_total", &[]) >= 1.0);
    assert!(after.value("rocketmq_raft_leader_changes_total", &[]) >= 1.0);
    producer.shutdown().await;
}

/// Garbage in the exporter keys stops start-up with the key named, and a name server asked
/// for an exporter this project does not have says so.
#[test]
fn bad_exporter_settings_stop_start_up_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let refused = NameServer::start_with(
        dir.path(),
        &[("metricsExporterType", "OTLP_GRPC".to_owned())],
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(
        refused.contains("metricsExporterType") && refused.contains("PROM"),
        "{refused}"
    );
    let namesrv = NameServer::start(dir.path()).unwrap();
    let refused = Broker::start(
        dir.path(),
        "broker-bad",
        &namesrv.addr(),
        &[("metricsPromExporterPort", "not-a-port".to_owned())],
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(refused.contains("metricsPromExporterPort"), "{refused}");
}
