//! POP consumption over remoting (RocketMQ 5) against real `mqnamesrv` / `mqbroker`
//! processes, through the `client` crate's `PopConsumer` and, for what a client library
//! would never send, raw requests: popped messages stay invisible until their time runs
//! out, an acknowledged one never comes back, an unacknowledged one comes back once from
//! the group's pop retry topic with its delivery count raised, a new invisible time is
//! honoured, and a group master killed with pops outstanding loses none of them and
//! brings back none that were acknowledged. Bad requests get RocketMQ's codes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use client::consumer::{PopConsumer, PopRequest, PoppedMessage};
use client::{ClientOptions, Message, Producer, ProducerOptions};
use common::{Cluster, Group};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::pop::{
    AckMessageRequestHeader, PopMessageRequestHeader, PopMessageResponseHeader,
};

/// Pops until `want` distinct bodies came (or `within` passed); returns them by body.
async fn pop_until(
    consumer: &PopConsumer,
    topic: &str,
    invisible: Duration,
    want: usize,
    within: Duration,
) -> BTreeMap<String, PoppedMessage> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + within;
    while seen.len() < want && tokio::time::Instant::now() < deadline {
        let request = PopRequest {
            topic,
            expression: "*",
            max_messages: 32,
            invisible_time: invisible,
            wait: Duration::from_secs(2),
            orderly: false,
        };
        match consumer.pop(&request).await {
            Ok(result) => {
                for popped in result.messages {
                    let body = popped.message.body_text().into_owned();
                    assert!(
                        seen.insert(body.clone(), popped).is_none(),
                        "{body} popped twice while invisible"
                    );
                }
            }
            Err(e) => {
                println!("pop failed (retrying): {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    seen
}

async fn send(options: ClientOptions, topic: &str, prefix: &str, count: usize) -> BTreeSet<String> {
    let mut producer_options = ProducerOptions::new("pop-producer");
    producer_options.send_timeout = Duration::from_secs(10);
    let producer = Producer::start(options, producer_options).unwrap();
    let mut bodies = BTreeSet::new();
    for i in 0..count {
        let body = format!("{prefix}-{i}");
        producer
            .send(Message::new(topic, body.clone()))
            .await
            .unwrap();
        bodies.insert(body);
    }
    producer.shutdown().await;
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popped_messages_come_back_unless_acknowledged() {
    let cluster = Cluster::start().await;
    cluster.create_topic("PopTopic", 4).await;
    let sent = send(cluster.options(), "PopTopic", "m", 20).await;
    let consumer = PopConsumer::start(cluster.options(), "pop-group").unwrap();
    let invisible = Duration::from_secs(3);
    let popped = pop_until(
        &consumer,
        "PopTopic",
        invisible,
        20,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(popped.keys().cloned().collect::<BTreeSet<_>>(), sent);
    assert!(popped.values().all(|p| p.message.reconsume_times == 0));

    // Half acknowledged, one given a longer invisible time, the rest left to time out.
    let mut acked = BTreeSet::new();
    let mut left = BTreeSet::new();
    let mut postponed = None;
    for (i, (body, message)) in popped.iter().enumerate() {
        if i % 2 == 0 {
            consumer.ack(message).await.unwrap();
            acked.insert(body.clone());
        } else if postponed.is_none() {
            consumer
                .change_invisible_time(message, Duration::from_secs(8))
                .await
                .unwrap();
            postponed = Some(body.clone());
        } else {
            left.insert(body.clone());
        }
    }
    let postponed = postponed.unwrap();
    // Invisible time (3 s), then the broker's grace and revive round: back within ~6 s.
    let back = pop_until(
        &consumer,
        "PopTopic",
        invisible,
        left.len(),
        Duration::from_secs(7),
    )
    .await;
    assert_eq!(
        back.keys().cloned().collect::<BTreeSet<_>>(),
        left,
        "what came back before the postponed one's time"
    );
    for message in back.values() {
        assert_eq!(message.message.reconsume_times, 1);
        assert_eq!(message.message.queue.topic, "%RETRY%pop-group_PopTopic");
        assert_eq!(message.message.topic, "PopTopic");
        consumer.ack(message).await.unwrap();
    }
    let late = pop_until(&consumer, "PopTopic", invisible, 1, Duration::from_secs(10)).await;
    assert_eq!(
        late.keys().cloned().collect::<Vec<_>>(),
        vec![postponed.clone()],
        "the postponed message comes back once its new time runs out"
    );
    consumer.ack(&late[&postponed]).await.unwrap();
    // Nothing acknowledged comes back.
    let after = pop_until(&consumer, "PopTopic", invisible, 1, Duration::from_secs(6)).await;
    assert!(
        after.is_empty(),
        "acknowledged messages came back: {:?}",
        after.keys()
    );
    consumer.shutdown();
}

/// One orderly pop of `topic`: the bodies with their earlier deliveries.
async fn pop_orderly(
    consumer: &PopConsumer,
    topic: &str,
    max_messages: i32,
    invisible: Duration,
    wait: Duration,
) -> Vec<PoppedMessage> {
    let request = PopRequest {
        topic,
        expression: "*",
        max_messages,
        invisible_time: invisible,
        wait,
        orderly: true,
    };
    consumer.pop(&request).await.unwrap().messages
}

fn bodies_and_counts(popped: &[PoppedMessage]) -> Vec<(String, i32)> {
    popped
        .iter()
        .map(|p| {
            (
                p.message.body_text().into_owned(),
                p.message.reconsume_times,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_pops_hold_a_queue_until_its_messages_are_acknowledged() {
    let cluster = Cluster::start().await;
    cluster.create_topic("PopOrder", 1).await;
    send(cluster.options(), "PopOrder", "m", 6).await;
    let consumer =
        std::sync::Arc::new(PopConsumer::start(cluster.options(), "pop-order-group").unwrap());
    let short = Duration::from_secs(2);
    let long = Duration::from_secs(60);
    let no_wait = Duration::from_millis(200);
    let counted = |bodies: &[&str], count: i32| -> Vec<(String, i32)> {
        bodies.iter().map(|b| (b.to_string(), count)).collect()
    };

    let first = pop_orderly(&consumer, "PopOrder", 2, short, no_wait).await;
    assert_eq!(bodies_and_counts(&first), counted(&["m-0", "m-1"], 0));
    assert!(
        pop_orderly(&consumer, "PopOrder", 2, short, no_wait)
            .await
            .is_empty(),
        "the queue is held while its messages are in flight"
    );
    // The second acknowledged, the first not: the queue stays held, then both come back
    // (the group's offset is still at the first), delivered a second time.
    consumer.ack(&first[1]).await.unwrap();
    assert!(pop_orderly(&consumer, "PopOrder", 2, short, no_wait)
        .await
        .is_empty());
    let again = pop_orderly(&consumer, "PopOrder", 2, long, Duration::from_secs(8)).await;
    assert_eq!(bodies_and_counts(&again), counted(&["m-0", "m-1"], 1));
    for popped in &again {
        consumer.ack(popped).await.unwrap();
    }
    let next = pop_orderly(&consumer, "PopOrder", 2, long, no_wait).await;
    assert_eq!(bodies_and_counts(&next), counted(&["m-2", "m-3"], 0));

    // A pop waiting on the held queue is woken by the acks that free it (the messages
    // are invisible for a minute, far longer than the pop waits).
    let waiting = {
        let consumer = std::sync::Arc::clone(&consumer);
        tokio::spawn(async move {
            pop_orderly(&consumer, "PopOrder", 2, long, Duration::from_secs(8)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for popped in &next {
        consumer.ack(popped).await.unwrap();
    }
    let woken = waiting.await.unwrap();
    assert_eq!(bodies_and_counts(&woken), counted(&["m-4", "m-5"], 0));

    // A changed invisible time moves the hold: made visible now, both come back at once.
    for popped in &woken {
        consumer
            .change_invisible_time(popped, Duration::ZERO)
            .await
            .unwrap();
    }
    let changed = pop_orderly(&consumer, "PopOrder", 2, long, no_wait).await;
    assert_eq!(bodies_and_counts(&changed), counted(&["m-4", "m-5"], 1));
    for popped in &changed {
        consumer.ack(popped).await.unwrap();
    }
    assert!(
        pop_orderly(&consumer, "PopOrder", 2, long, no_wait)
            .await
            .is_empty(),
        "everything was acknowledged"
    );
    consumer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pop_requests_get_rocketmqs_codes_and_change_nothing() {
    let cluster = Cluster::start().await;
    cluster.create_topic("PopBad", 2).await;
    send(cluster.options(), "PopBad", "b", 3).await;
    let broker = cluster.broker().addr();
    let client = RemotingClient::new(ClientConfig::default());
    let pop = |max: i32, topic: &str, order: Option<bool>, poll: i64| {
        let header = PopMessageRequestHeader {
            consumer_group: "bad-group".into(),
            topic: topic.into(),
            queue_id: -1,
            max_msg_nums: max,
            invisible_time: 60_000,
            poll_time: poll,
            born_time: 0,
            init_mode: 0,
            exp_type: None,
            exp: None,
            order,
            attempt_id: None,
            broker_name: None,
        };
        RemotingCommand::request(request::POP_MESSAGE).with_header(&header)
    };
    let call = |command: RemotingCommand| {
        let (client, broker) = (client.clone(), broker.clone());
        async move {
            client
                .invoke(&broker, command, Duration::from_secs(10))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        call(pop(33, "PopBad", None, 0)).await.code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        call(pop(0, "PopBad", None, 0)).await.code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        call(pop(1, "NoSuchTopic", None, 0)).await.code,
        response::TOPIC_NOT_EXIST
    );
    // A header missing required fields.
    let bare = RemotingCommand::request(request::POP_MESSAGE);
    assert_ne!(call(bare).await.code, response::SUCCESS);

    let ack = |extra: &str, offset: i64| {
        RemotingCommand::request(request::ACK_MESSAGE).with_header(&AckMessageRequestHeader {
            consumer_group: "bad-group".into(),
            topic: "PopBad".into(),
            queue_id: 0,
            extra_info: extra.into(),
            offset,
            broker_name: None,
        })
    };
    assert_eq!(
        call(ack("garbage", 0)).await.code,
        response::INVALID_PARAMETER
    );
    let handle = "0 1 60000 0 0 broker-a 0 0";
    assert_eq!(
        call(ack(handle, 1_000_000)).await.code,
        response::NO_MESSAGE
    );
    let bad_batch =
        RemotingCommand::request(request::BATCH_ACK_MESSAGE).with_body(b"{nope".to_vec());
    assert_eq!(call(bad_batch).await.code, response::INVALID_PARAMETER);
    let empty_batch =
        RemotingCommand::request(request::BATCH_ACK_MESSAGE).with_body(b"{\"acks\":[]}".to_vec());
    assert_eq!(call(empty_batch).await.code, response::NO_MESSAGE);

    // None of that took anything: a real pop gets all three, and a pop of an empty topic
    // answers POLLING_TIMEOUT with the header a client decodes.
    let found = call(pop(32, "PopBad", None, 0)).await;
    assert_eq!(found.code, response::SUCCESS, "{:?}", found.remark);
    let header: PopMessageResponseHeader = found.decode_header().unwrap();
    let offsets = header.msg_offset_info.unwrap();
    let count: usize = offsets
        .split(';')
        .map(|entry| entry.rsplit(' ').next().unwrap_or("").split(',').count())
        .sum();
    assert_eq!(count, 3, "msgOffsetInfo {offsets}");
    let nothing = call(pop(32, "PopBad", None, 0)).await;
    assert_eq!(nothing.code, response::POLLING_TIMEOUT);
    let header: PopMessageResponseHeader = nothing.decode_header().unwrap();
    assert_eq!(header.invisible_time, 60_000);
    client.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_no_popped_message_and_brings_back_no_acked_one() {
    let mut group = Group::start().await;
    let namesrv = group.namesrv.addr();
    common::create_topic(&namesrv, "PopFailover", 4).await;
    let sent = send(common::client_options(&namesrv), "PopFailover", "f", 40).await;
    let consumer = PopConsumer::start(common::client_options(&namesrv), "pop-failover").unwrap();
    let invisible = Duration::from_secs(4);
    let popped = pop_until(
        &consumer,
        "PopFailover",
        invisible,
        40,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(popped.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let mut unacked = BTreeSet::new();
    for (i, (body, message)) in popped.iter().enumerate() {
        if i % 2 == 0 {
            consumer.ack(message).await.unwrap();
        } else {
            unacked.insert(body.clone());
        }
    }
    let old_master = group.master.clone();
    group.kill(&old_master);
    let new_master = group.new_master(&old_master).await;
    println!("master {old_master} killed; {new_master} took over");
    let back = pop_until(
        &consumer,
        "PopFailover",
        Duration::from_secs(60),
        unacked.len(),
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(
        back.keys().cloned().collect::<BTreeSet<_>>(),
        unacked,
        "after the failover: exactly the unacknowledged messages come back"
    );
    // And nothing more: the acknowledged ones stay gone.
    let more = pop_until(
        &consumer,
        "PopFailover",
        invisible,
        1,
        Duration::from_secs(8),
    )
    .await;
    // The receipts say where each copy came from (topic, queue, offset, pop time).
    let receipts = |popped: &BTreeMap<String, PoppedMessage>| -> Vec<String> {
        popped
            .iter()
            .map(|(body, message)| format!("{body}: {}", message.receipt))
            .collect()
    };
    assert!(
        more.is_empty(),
        "messages came back after the failover's redelivery: {:#?}\nthe redelivery: {:#?}",
        receipts(&more),
        receipts(&back)
    );
    consumer.shutdown();
}

/// With `mqadmin setConsumeMode -q 1`, each of three POP consumers is assigned its own share
/// of the queues plus the share of the consumer after it (RocketMQ's `allocate4Pop`), so
/// every queue has two consumers popping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_share_queue_num_adds_the_next_consumers_queues() {
    let cluster = Cluster::start().await;
    cluster.create_topic("ShareTopic", 4).await;
    let namesrv = cluster.namesrv_addr();
    let admin = |args: &[&str]| {
        let mut all = vec![args[0], "-n", &namesrv, "-c", "TestCluster"];
        all.extend_from_slice(&args[1..]);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let group_args = admin(&["updateSubGroup", "-g", "sharing"]);
    let group_args: Vec<&str> = group_args.iter().map(String::as_str).collect();
    common::tool_ok("mqadmin", &group_args, None).await;
    let mode_args = admin(&[
        "setConsumeMode",
        "-t",
        "ShareTopic",
        "-g",
        "sharing",
        "-m",
        "POP",
        "-q",
        "1",
    ]);
    let mode_args: Vec<&str> = mode_args.iter().map(String::as_str).collect();
    common::tool_ok("mqadmin", &mode_args, None).await;

    // Three members of the group, known to the broker by their heartbeats.
    let members: Vec<client::PullConsumer> = (0..3)
        .map(|_| client::PullConsumer::start(cluster.options(), "sharing").unwrap())
        .collect();
    for member in &members {
        member.queues("ShareTopic").await.unwrap();
        member.instance().send_heartbeat_now().await;
    }
    let mut ids: Vec<String> = members
        .iter()
        .map(|m| m.instance().client_id().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct client ids: {ids:?}");

    let client = RemotingClient::new(ClientConfig::default());
    let broker = cluster.broker().addr();
    // Four queues over three consumers (sorted by id): [0, 1], [2], [3]; each also pops
    // the next one's.
    let expected = [vec![0, 1, 2], vec![2, 3], vec![0, 1, 3]];
    for (client_id, expected) in ids.iter().zip(expected) {
        let body = format!(
            r#"{{"clientId":"{client_id}","consumerGroup":"sharing","messageModel":"CLUSTERING","strategyName":"AVG","topic":"ShareTopic"}}"#
        );
        let request =
            RemotingCommand::request(request::QUERY_ASSIGNMENT).with_body(body.into_bytes());
        let answer = client
            .invoke(&broker, request, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        let assignments = json["messageQueueAssignments"].as_array().unwrap();
        let mut queues: Vec<i64> = assignments
            .iter()
            .map(|a| a["messageQueue"]["queueId"].as_i64().unwrap())
            .collect();
        queues.sort();
        assert_eq!(queues, expected, "{client_id}: {json}");
        assert!(assignments.iter().all(|a| a["mode"] == "POP"), "{json}");
    }
    client.shutdown();
    for member in members {
        member.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_set_consume_mode_makes_the_broker_assign_pop() {
    let cluster = Cluster::start().await;
    cluster.create_topic("ModeTopic", 4).await;
    let namesrv = cluster.namesrv_addr();
    common::tool_ok(
        "mqadmin",
        &[
            "updateSubGroup",
            "-n",
            &namesrv,
            "-c",
            "TestCluster",
            "-g",
            "popping",
        ],
        None,
    )
    .await;
    let out = common::tool_ok(
        "mqadmin",
        &[
            "setConsumeMode",
            "-n",
            &namesrv,
            "-c",
            "TestCluster",
            "-t",
            "ModeTopic",
            "-g",
            "popping",
            "-m",
            "POP",
        ],
        None,
    )
    .await;
    assert!(out.contains("consume mode[POP]"), "{out}");
    let bad = common::tool(
        "mqadmin",
        &[
            "setConsumeMode",
            "-n",
            &namesrv,
            "-c",
            "TestCluster",
            "-t",
            "ModeTopic",
            "-g",
            "popping",
            "-m",
            "SOMETIMES",
        ],
        None,
    )
    .await;
    assert!(!bad.ok && bad.err.contains("PULL or POP"), "{}", bad.err);

    // A member of the PULL group, so the broker knows who shares the queues (its
    // heartbeat reaches the brokers its route names).
    let puller = client::PullConsumer::start(cluster.options(), "pulling").unwrap();
    puller.queues("ModeTopic").await.unwrap();
    puller.instance().send_heartbeat_now().await;
    let client = RemotingClient::new(ClientConfig::default());
    let assignment = |group: &str, client_id: &str| {
        let body = format!(
            r#"{{"clientId":"{client_id}","consumerGroup":"{group}","messageModel":"CLUSTERING","strategyName":"AVG","topic":"ModeTopic"}}"#
        );
        RemotingCommand::request(request::QUERY_ASSIGNMENT).with_body(body.into_bytes())
    };
    let broker = cluster.broker().addr();
    let answer = client
        .invoke(
            &broker,
            assignment("popping", "any"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(
        text.contains(r#""queueId":-1"#) && text.contains(r#""mode":"POP""#),
        "{text}"
    );
    let answer = client
        .invoke(
            &broker,
            assignment("pulling", puller.instance().client_id()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(
        text.matches(r#""mode":"PULL""#).count(),
        4,
        "the only consumer of a PULL group gets all four queues: {text}"
    );
    client.shutdown();
    puller.shutdown();
}
