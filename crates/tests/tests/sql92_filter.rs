//! SQL92 property filters (`enablePropertyFilter=true`) over the real `mqbroker`, driven with
//! the requests RocketMQ consumers send: subscriptions in the pull request and registered by
//! heartbeats, CHECK_CLIENT_CONFIG, long polling, refused expressions, a broker with the
//! feature off, and every member of a broker group serving filtered pulls.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use client::consumer::ConsumeResult;
use client::{Admin, ClientOptions, PushConsumer, PushConsumerOptions, ReceivedMessage};
use message::decode_all;
use message::sysflag::pull as pull_flag;
use remoting::body::{
    CheckClientRequestBody, ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData,
    MessageModel, SubscriptionData,
};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::pull::PullMessageRequestHeader;
use tests::group::{wait_for_master, BrokerGroup};
use tests::requests::*;
use tests::{Broker, NameServer};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);

fn enabled() -> Vec<(&'static str, String)> {
    vec![("enablePropertyFilter", "true".to_owned())]
}

fn start(dir: &Path, extra: &[(&str, String)]) -> (NameServer, Broker) {
    let namesrv = NameServer::start(dir).unwrap();
    let mut settings = vec![("bindAddress", "127.0.0.1".to_string())];
    settings.extend(extra.iter().cloned());
    let broker = Broker::start(dir, "broker-sql", &namesrv.addr(), &settings).unwrap();
    (namesrv, broker)
}

async fn call(client: &RemotingClient, addr: &str, command: RemotingCommand) -> RemotingCommand {
    client.invoke(addr, command, CALL_TIMEOUT).await.unwrap()
}

/// Message `i`: body `m{i}`, tag `a` for even `i` and `b` for odd, property `n` = i, `region`
/// `eu` for i < 5 and absent after, and `n` unreadable as a number for i = 7.
fn message_props(i: usize) -> String {
    let n = if i == 7 {
        "seven".to_owned()
    } else {
        i.to_string()
    };
    let tag = if i.is_multiple_of(2) { "a" } else { "b" };
    let mut pairs = vec![("TAGS", tag), ("n", n.as_str())];
    if i < 5 {
        pairs.push(("region", "eu"));
    }
    props(&pairs)
}

async fn send_messages(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    range: std::ops::Range<usize>,
) {
    for i in range {
        let sent = call(
            client,
            addr,
            send_v2(
                &send_header(topic, 0, &message_props(i)),
                format!("m{i}").as_bytes(),
            ),
        )
        .await;
        assert_eq!(sent.code, response::SUCCESS, "send {i}: {:?}", sent.remark);
    }
}

fn sql_pull(group: &str, topic: &str, offset: i64, expression: &str) -> PullMessageRequestHeader {
    let mut header = pull_header(group, topic, 0, offset);
    header.subscription = Some(expression.to_owned());
    header.expression_type = Some("SQL92".to_owned());
    header
}

fn bodies(pulled: &RemotingCommand) -> Vec<String> {
    decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(m.body()).into_owned())
        .collect()
}

/// Every message of queue 0 from offset 0 that `expression` selects, following the broker's
/// next offsets (bounded: each answer moves on or ends).
async fn select(
    client: &RemotingClient,
    addr: &str,
    header: PullMessageRequestHeader,
) -> Vec<String> {
    let mut header = header;
    let mut found = Vec::new();
    for _ in 0..50 {
        let pulled = call(client, addr, pull(&header)).await;
        let next = ext_i64(&pulled, "nextBeginOffset").unwrap();
        match pulled.code {
            response::SUCCESS => found.extend(bodies(&pulled)),
            response::PULL_RETRY_IMMEDIATELY => {}
            response::PULL_NOT_FOUND => return found,
            // A group follower that has not applied the topic's creation yet; a caller that
            // expects messages asks again.
            response::TOPIC_NOT_EXIST => return found,
            code => panic!("pull answered {code}: {:?}", pulled.remark),
        }
        assert!(next > header.queue_offset, "the pull moved on");
        header.queue_offset = next;
    }
    panic!("the queue never ended");
}

fn heartbeat(group: &str, topic: &str, expression: &str, version: i64) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: format!("127.0.0.1@{group}"),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: ConsumeType::ConsumeActively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            subscription_data_set: vec![SubscriptionData {
                topic: topic.into(),
                sub_string: expression.into(),
                sub_version: version,
                expression_type: "SQL92".into(),
                ..SubscriptionData::default()
            }],
            unit_mode: false,
        }],
        ..HeartbeatData::default()
    };
    RemotingCommand::request(request::HEART_BEAT).with_body(data.encode())
}

/// A pull relying on the subscription the group's heartbeat registered (as Java push
/// consumers pull).
fn registered_pull(group: &str, topic: &str, version: i64) -> PullMessageRequestHeader {
    let mut header = pull_header(group, topic, 0, 0);
    header.sys_flag = 0;
    header.subscription = None;
    header.expression_type = Some("SQL92".to_owned());
    header.sub_version = version;
    header
}

fn check_client(group: &str, topic: &str, expression: &str, kind: &str) -> RemotingCommand {
    let body = CheckClientRequestBody {
        client_id: "127.0.0.1@check".into(),
        group: group.into(),
        subscription_data: Some(SubscriptionData {
            topic: topic.into(),
            sub_string: expression.into(),
            sub_version: 1,
            expression_type: kind.into(),
            ..SubscriptionData::default()
        }),
        namespace: None,
    };
    RemotingCommand::request(request::CHECK_CLIENT_CONFIG)
        .with_body(serde_json::to_vec(&body).unwrap())
}

fn expect(indexes: &[usize]) -> Vec<String> {
    indexes.iter().map(|i| format!("m{i}")).collect()
}

#[tokio::test]
async fn sql92_subscriptions_filter_pulls_by_properties() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &enabled());
    let client = RemotingClient::new(ClientConfig::default());
    let addr = broker.addr();
    let topic = "SqlE2e";
    send_messages(&client, &addr, topic, 0..12).await;

    let cases: &[(&str, &[usize])] = &[
        ("n >= 3 AND n < 9", &[3, 4, 5, 6, 8]),
        ("TAGS = 'a' AND n BETWEEN 2 AND 8", &[2, 4, 6, 8]),
        ("TAGS IN ('b') AND region = 'eu'", &[1, 3]),
        ("region IS NULL AND NOT (n > 9)", &[5, 6, 8, 9]),
        ("n = 7", &[]),
        ("region <> 'eu' OR n < 1", &[0]),
        (
            "TAGS = 'a' OR TAGS = 'b'",
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ),
    ];
    for (expression, wanted) in cases {
        let found = select(&client, &addr, sql_pull("SqlGroup", topic, 0, expression)).await;
        assert_eq!(found, expect(wanted), "{expression}");
    }

    // Entries exist but none match: the consumer is sent on past them at once.
    let none = call(
        &client,
        &addr,
        pull(&sql_pull("SqlGroup", topic, 0, "n > 100")),
    )
    .await;
    assert_eq!(none.code, response::PULL_RETRY_IMMEDIATELY);
    assert_eq!(ext_i64(&none, "nextBeginOffset").unwrap(), 12);

    // The subscription a heartbeat registered, as Java push consumers pull.
    let beat = call(&client, &addr, heartbeat("SqlBeat", topic, "n > 8", 5)).await;
    assert_eq!(beat.code, response::SUCCESS);
    let found = select(&client, &addr, registered_pull("SqlBeat", topic, 5)).await;
    assert_eq!(found, expect(&[9, 10, 11]));
    let newer = call(&client, &addr, pull(&registered_pull("SqlBeat", topic, 6))).await;
    assert_eq!(newer.code, response::SUBSCRIPTION_NOT_LATEST);
    let beat = call(&client, &addr, heartbeat("SqlBeat", topic, "n < 2", 6)).await;
    assert_eq!(beat.code, response::SUCCESS);
    let found = select(&client, &addr, registered_pull("SqlBeat", topic, 6)).await;
    assert_eq!(
        found,
        expect(&[0, 1]),
        "a newer subscription replaces the old"
    );

    // A parked pull wakes for a matching arrival only.
    let mut parked = sql_pull("SqlGroup", topic, 12, "region = 'late'");
    parked.sys_flag |= pull_flag::SUSPEND;
    parked.suspend_timeout_millis = 20_000;
    let waiter = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            client
                .invoke(&addr, pull(&parked), Duration::from_secs(30))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (body, region) in [("early", "eu"), ("late", "late")] {
        let sent = call(
            &client,
            &addr,
            send_v2(
                &send_header(topic, 0, &props(&[("region", region)])),
                body.as_bytes(),
            ),
        )
        .await;
        assert_eq!(sent.code, response::SUCCESS);
    }
    let woken = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the matching arrival woke the pull")
        .unwrap();
    assert_eq!(woken.code, response::SUCCESS);
    assert_eq!(bodies(&woken), ["late"]);

    // Java consumers ask before they start.
    let ok = call(
        &client,
        &addr,
        check_client("SqlGroup", topic, "n > 1", "SQL92"),
    )
    .await;
    assert_eq!(ok.code, response::SUCCESS, "{:?}", ok.remark);
    let tags = call(
        &client,
        &addr,
        check_client("SqlGroup", topic, "a || b", "TAG"),
    )
    .await;
    assert_eq!(tags.code, response::SUCCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_consumer_and_mq_select_by_sql92() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, broker) = start(dir.path(), &enabled());
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let topic = "SqlClient";
    admin
        .create_topic(&broker.addr(), &Admin::topic_config(topic, 1, 1))
        .await
        .unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    send_messages(&client, &broker.addr(), topic, 0..12).await;

    // As Java does, a push consumer asks the broker about its expression before it starts.
    let refused = PushConsumer::start(
        options.clone(),
        PushConsumerOptions::new("SqlClientBad").subscribe_sql92(topic, "n >"),
        |_: Vec<ReceivedMessage>| std::future::ready(ConsumeResult::Success),
    )
    .await;
    let Err(refused) = refused else {
        panic!("a push consumer started with an expression the broker cannot parse")
    };
    assert!(refused.to_string().contains("code 23"), "{refused}");

    // A push consumer group: the broker selects, the consumer takes what it is given.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut consumer_options =
        PushConsumerOptions::new("SqlClientGroup").subscribe_sql92(topic, "n >= 3 AND n < 9");
    consumer_options.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    let consumer = PushConsumer::start(
        options,
        consumer_options,
        move |messages: Vec<ReceivedMessage>| {
            for message in messages {
                let _ = tx.send(String::from_utf8_lossy(&message.body).into_owned());
            }
            std::future::ready(ConsumeResult::Success)
        },
    )
    .await
    .unwrap();
    let wanted: BTreeSet<String> = expect(&[3, 4, 5, 6, 8]).into_iter().collect();
    let mut got = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < wanted.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(body)) => {
                got.insert(body);
            }
            _ => panic!("the push consumer got only {got:?}"),
        }
    }
    // Nothing else follows (the selected ones came first, in queue order).
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        panic!("{extra} was not selected");
    }
    assert_eq!(got, wanted);
    consumer.shutdown().await;

    // `mq consume --sql` reads on its own, and refuses an expression the broker refuses.
    let mq = |expression: &str| {
        std::process::Command::new(tests::binary("mq"))
            .args([
                "consume",
                "-n",
                &namesrv.addr(),
                "-t",
                topic,
                "--sql",
                expression,
            ])
            .output()
            .unwrap()
    };
    let out = mq("TAGS IN ('b') AND region = 'eu'");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let bodies: BTreeSet<String> = ["m1", "m3"]
        .iter()
        .filter(|b| printed.contains(&format!("{b}\n")) || printed.contains(&format!("{b}\t")))
        .map(|b| (*b).to_owned())
        .collect();
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert_eq!(bodies.len(), 2, "{printed}");
    let refused = mq("n >");
    assert!(!refused.status.success());
    assert!(
        !String::from_utf8_lossy(&refused.stderr).trim().is_empty(),
        "a refusal says why"
    );

    // The benchmark's tagged, propertied sends, and its SQL92-selecting consumer.
    let mq_json = |args: &[&str]| {
        let out = std::process::Command::new(tests::binary("mq"))
            .args(["-n", &namesrv.addr(), "--json", "bench"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        serde_json::from_str::<serde_json::Value>(text.trim()).unwrap()
    };
    let sent = mq_json(&[
        "produce",
        "-t",
        topic,
        "--tag",
        "c",
        "-p",
        "bench=yes",
        "-c",
        "10",
        "-w",
        "2",
    ]);
    assert_eq!(sent["messages"], 10, "{sent}");
    let consumed = mq_json(&[
        "consume",
        "-t",
        topic,
        "--sql",
        "bench = 'yes' AND TAGS = 'c'",
        "--from",
        "first",
        "-c",
        "10",
        "-d",
        "60",
    ]);
    // It stops at the tenth: any message it should not have selected, delivered with
    // them, would show in the count (the push consumer above checks for later ones).
    assert_eq!(
        consumed["messages"], 10,
        "only the benchmark's sends: {consumed}"
    );
}

#[tokio::test]
async fn bad_and_pathological_expressions_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &enabled());
    let client = RemotingClient::new(ClientConfig::default());
    let addr = broker.addr();
    let topic = "SqlBad";
    send_messages(&client, &addr, topic, 0..3).await;

    let deep = format!("{}n > 1{}", "(".repeat(200), ")".repeat(200));
    let long_in = format!(
        "n IN ({})",
        (0..2000)
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let many_terms = vec!["n=1"; 1500].join(" OR ");
    let huge = format!("n = '{}'", "x".repeat(64 * 1024));
    let cases: [(&str, &str); 8] = [
        ("n >", "does not parse"),
        ("n = 1 AMD m = 2", "does not parse"),
        ("", "empty"),
        ("n = 'unterminated", "does not parse"),
        (&deep, "nests deeper"),
        (&long_in, "IN list"),
        (&many_terms, "terms"),
        (&huge, "bytes long"),
    ];
    for (expression, reason) in cases {
        let shown: String = expression.chars().take(40).collect();
        let refused = call(
            &client,
            &addr,
            pull(&sql_pull("SqlGroup", topic, 0, expression)),
        )
        .await;
        assert_eq!(refused.code, response::SUBSCRIPTION_PARSE_FAILED, "{shown}");
        let remark = refused.remark.clone().unwrap_or_default();
        assert!(remark.contains(reason), "{shown}: {remark}");
        let checked = call(
            &client,
            &addr,
            check_client("SqlGroup", topic, expression, "SQL92"),
        )
        .await;
        assert_eq!(checked.code, response::SUBSCRIPTION_PARSE_FAILED, "{shown}");
        assert!(
            checked.remark.unwrap_or_default().contains(reason),
            "{shown}"
        );
    }
    let unknown = call(
        &client,
        &addr,
        check_client("SqlGroup", topic, "n > 1", "XPATH"),
    )
    .await;
    assert_eq!(unknown.code, response::SUBSCRIPTION_PARSE_FAILED);

    // A heartbeat's bad expression: no filter data for its pulls.
    let beat = call(&client, &addr, heartbeat("SqlBadBeat", topic, "n >>> 1", 1)).await;
    assert_eq!(beat.code, response::SUCCESS);
    let pulled = call(
        &client,
        &addr,
        pull(&registered_pull("SqlBadBeat", topic, 1)),
    )
    .await;
    assert_eq!(pulled.code, response::FILTER_DATA_NOT_EXIST);
    assert!(pulled.remark.unwrap_or_default().contains("n >>> 1"));

    // The broker is unharmed and still filters.
    let found = select(&client, &addr, sql_pull("SqlGroup", topic, 0, "n >= 1")).await;
    assert_eq!(found, expect(&[1, 2]));
}

#[tokio::test]
async fn sql92_is_refused_unless_enable_property_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &[]);
    let client = RemotingClient::new(ClientConfig::default());
    let addr = broker.addr();
    let topic = "SqlOff";
    send_messages(&client, &addr, topic, 0..2).await;
    let refused = call(&client, &addr, pull(&sql_pull("G", topic, 0, "n > 0"))).await;
    assert_eq!(refused.code, response::SYSTEM_ERROR);
    assert!(refused
        .remark
        .unwrap_or_default()
        .contains("enablePropertyFilter"));
    let checked = call(&client, &addr, check_client("G", topic, "n > 0", "SQL92")).await;
    assert_eq!(checked.code, response::SYSTEM_ERROR);
    // TAG subscriptions are unaffected.
    let mut tags = pull_header("G", topic, 0, 0);
    tags.subscription = Some("b".into());
    let pulled = call(&client, &addr, pull(&tags)).await;
    assert_eq!(bodies(&pulled), ["m1"]);
}

#[tokio::test]
async fn every_member_of_a_broker_group_serves_sql92_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let name = "sql-group";
    let group = BrokerGroup::start(dir.path(), name, &namesrv.addr(), &enabled()).unwrap();
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options).unwrap();
    let master = wait_for_master(&admin, name, None, WAIT).await.unwrap();
    let topic = "SqlGroupTopic";
    admin
        .create_topic(&master, &Admin::topic_config(topic, 1, 1))
        .await
        .unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    send_messages(&client, &master, topic, 0..12).await;

    let wanted = expect(&[3, 5, 9, 11]);
    let members: BTreeSet<String> = group.members.iter().map(|m| m.addr()).collect();
    for addr in &members {
        // A follower may still be applying the last sends: ask again until it has them.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let header = sql_pull("SqlGroupG", topic, 0, "TAGS = 'b' AND n > 2 AND n <> 7");
            let found = select(&client, addr, header).await;
            if found == wanted {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} (master {master}) serves {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The heartbeat path works on followers too (consumers heartbeat every member).
        let beat = call(
            &client,
            addr,
            heartbeat("SqlGroupBeat", topic, "region = 'eu'", 1),
        )
        .await;
        assert_eq!(beat.code, response::SUCCESS);
        let found = select(&client, addr, registered_pull("SqlGroupBeat", topic, 1)).await;
        assert_eq!(found, expect(&[0, 1, 2, 3, 4]), "{addr}");
    }
}
