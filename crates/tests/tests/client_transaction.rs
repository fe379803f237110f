//! Transactional messages through the `client` crate's [`TransactionProducer`] against real
//! `mqnamesrv` and `mqbroker` processes: a commit delivers the message once as it was sent,
//! a rollback never; a check-back answered with commit, rollback or unknown (until
//! `transactionCheckMax`, then `TRANS_CHECK_MAX_TIME_TOPIC`); `CHECK_IMMUNITY_TIME_IN_SECONDS`;
//! and in a 3-node group, a master killed between the half message and its commit: the new
//! master resolves that transaction and one left open by checking back.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{
    ClientOptions, Message, MessageQueue, ProducerOptions, PullConsumer, ReceivedMessage,
    TransactionProducer, TransactionState,
};
use common::{client_options, create_topic, eventually, Cluster, Group};

/// Checks come quickly: a half message is first checked one second after it was born, then
/// every second, three times at most.
fn quick_checks() -> Vec<(&'static str, String)> {
    vec![
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
        ("transactionCheckMax", "3".to_owned()),
    ]
}

/// Every check the producer answered: body → times it was asked, when first.
#[derive(Default)]
struct Checks {
    asked: BTreeMap<String, (u32, Option<Instant>)>,
    /// Bodies starting with `later` stay unknown until this is set, then commit.
    later_decided: bool,
}

type SharedChecks = Arc<Mutex<Checks>>;

/// A checker that answers by body: bodies starting with `commit` commit, `rollback` roll
/// back, `later` commit once [`Checks::later_decided`], anything else stays unknown; every
/// check is counted.
fn checker(checks: SharedChecks) -> impl Fn(&ReceivedMessage) -> TransactionState {
    move |message: &ReceivedMessage| {
        let body = message.body_text().into_owned();
        let mut checks = checks.lock().unwrap();
        let entry = checks.asked.entry(body.clone()).or_default();
        entry.0 += 1;
        entry.1.get_or_insert_with(Instant::now);
        if body.starts_with("commit") || (body.starts_with("later") && checks.later_decided) {
            TransactionState::Commit
        } else if body.starts_with("rollback") {
            TransactionState::Rollback
        } else {
            TransactionState::Unknown
        }
    }
}

fn times_asked(checks: &SharedChecks, body: &str) -> u32 {
    checks
        .lock()
        .unwrap()
        .asked
        .get(body)
        .map_or(0, |(times, _)| *times)
}

fn transaction_producer(options: ClientOptions, checks: SharedChecks) -> TransactionProducer {
    let mut producer_options = ProducerOptions::new("tx-producer");
    producer_options.send_timeout = Duration::from_secs(10);
    TransactionProducer::start(options, producer_options, checker(checks)).unwrap()
}

/// Every message of `topic`'s queues, from offset 0, read through `reader`.
async fn stored(reader: &PullConsumer, topic: &str) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    for queue in reader.queues(topic).await.unwrap() {
        all.extend(common::read_queue(reader, &queue).await);
    }
    all
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<String> {
    let mut bodies: Vec<String> = messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    bodies.sort();
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_delivers_the_message_once_as_sent_and_a_rollback_never() {
    let cluster = Cluster::start_with(&[("broker-a", &quick_checks())]).await;
    cluster.create_topic("TxOrders", 2).await;
    let checks = SharedChecks::default();
    let producer = transaction_producer(cluster.options(), Arc::clone(&checks));
    let reader = Arc::new(PullConsumer::start(cluster.options(), "tx-readers").unwrap());

    let committed = producer
        .send_in_transaction(
            Message::new("TxOrders", "committed order")
                .with_tag("created")
                .with_keys(["order-1", "customer-9"])
                .with_property("region", "eu"),
            |sent| {
                let reader = Arc::clone(&reader);
                async move {
                    // While the local transaction runs, nobody sees the message.
                    assert!(
                        common::read_queue(&reader, &sent.queue).await.is_empty(),
                        "a half message is invisible"
                    );
                    TransactionState::Commit
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(committed.state, TransactionState::Commit);
    let rolled_back = producer
        .send_in_transaction(Message::new("TxOrders", "rolled back order"), |_| async {
            TransactionState::Rollback
        })
        .await
        .unwrap();
    assert_eq!(rolled_back.send.queue.topic, "TxOrders");

    eventually("the committed message delivered", || {
        let reader = Arc::clone(&reader);
        async move { !stored(&reader, "TxOrders").await.is_empty() }
    })
    .await;
    // Well past the first check time: neither transaction is asked about or delivered again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let messages = stored(&reader, "TxOrders").await;
    assert_eq!(bodies(&messages), vec!["committed order"], "{messages:?}");
    let message = &messages[0];
    assert_eq!(message.msg_id(), committed.send.msg_id);
    assert_eq!(message.queue, committed.send.queue);
    assert_eq!(message.tag(), Some("created"));
    assert_eq!(message.keys(), Some("order-1 customer-9"));
    assert_eq!(message.property("region"), Some("eu"));
    assert!(
        checks.lock().unwrap().asked.is_empty(),
        "no check was needed"
    );
    producer.shutdown().await;
    reader.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_backs_commit_roll_back_or_ask_again_until_the_transaction_is_given_up() {
    let cluster = Cluster::start_with(&[("broker-a", &quick_checks())]).await;
    cluster.create_topic("TxChecked", 1).await;
    let checks = SharedChecks::default();
    let producer = transaction_producer(cluster.options(), Arc::clone(&checks));
    let reader = Arc::new(PullConsumer::start(cluster.options(), "tx-readers").unwrap());

    let mut sent_at = BTreeMap::new();
    for (body, immunity_s) in [
        ("commit after check", None),
        ("rollback after check", None),
        ("unknown forever", None),
        ("commit when immune no more", Some(4)),
    ] {
        let mut message = Message::new("TxChecked", body);
        if let Some(seconds) = immunity_s {
            message = message.with_property("CHECK_IMMUNITY_TIME_IN_SECONDS", seconds.to_string());
        }
        sent_at.insert(body, Instant::now());
        let result = producer
            .send_in_transaction(message, |_| async { TransactionState::Unknown })
            .await
            .unwrap();
        assert_eq!(result.state, TransactionState::Unknown);
    }

    eventually("both commits delivered after their checks", || {
        let reader = Arc::clone(&reader);
        async move { stored(&reader, "TxChecked").await.len() >= 2 }
    })
    .await;
    eventually("the unknown transaction checked three times", || {
        let checks = Arc::clone(&checks);
        async move { times_asked(&checks, "unknown forever") >= 3 }
    })
    .await;
    // Given up: kept for operators in TRANS_CHECK_MAX_TIME_TOPIC, never delivered.
    let given_up = MessageQueue::new("TRANS_CHECK_MAX_TIME_TOPIC", "broker-a", 0);
    eventually("the unknown transaction given up", || {
        let reader = Arc::clone(&reader);
        let given_up = given_up.clone();
        async move {
            common::read_queue(&reader, &given_up)
                .await
                .iter()
                .any(|m| m.body_text() == "unknown forever")
        }
    })
    .await;
    // Several more check intervals: nothing is asked again or delivered twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let messages = stored(&reader, "TxChecked").await;
    assert_eq!(
        bodies(&messages),
        vec!["commit after check", "commit when immune no more"]
    );
    assert_eq!(times_asked(&checks, "commit after check"), 1);
    assert_eq!(times_asked(&checks, "rollback after check"), 1);
    assert_eq!(
        times_asked(&checks, "unknown forever"),
        3,
        "transactionCheckMax"
    );
    assert_eq!(times_asked(&checks, "commit when immune no more"), 1);
    let given_up_bodies = bodies(&common::read_queue(&reader, &given_up).await);
    assert_eq!(given_up_bodies, vec!["unknown forever"]);

    // No check before transactionTimeOut, nor before a longer immunity.
    let first_check = |body: &str| {
        let checks = checks.lock().unwrap();
        let first = checks
            .asked
            .get(body)
            .and_then(|(_, first)| *first)
            .unwrap();
        first.duration_since(sent_at[body])
    };
    assert!(first_check("commit after check") >= Duration::from_secs(1));
    assert!(
        first_check("commit when immune no more") >= Duration::from_secs(4),
        "checked {:?} after the send",
        first_check("commit when immune no more")
    );
    producer.shutdown().await;
    reader.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_master_resolves_a_transaction_whose_master_died_before_its_commit() {
    // Enough checks that the pending transaction is not given up while the group elects.
    let mut settings = quick_checks();
    settings.retain(|(key, _)| *key != "transactionCheckMax");
    settings.push(("transactionCheckMax", "15".to_owned()));
    let mut group = Group::start_with(&settings).await;
    let namesrv = group.namesrv.addr();
    create_topic(&namesrv, "TxFailover", 2).await;
    let mut options = client_options(&namesrv);
    options.poll_name_server_interval = Duration::from_secs(1);
    let checks = SharedChecks::default();
    let producer = transaction_producer(options.clone(), Arc::clone(&checks));
    let reader = Arc::new(PullConsumer::start(options, "tx-readers").unwrap());

    // Committed while the first master lives: the new master must not deliver it again.
    let before = producer
        .send_in_transaction(
            Message::new("TxFailover", "commit before the kill"),
            |_| async { TransactionState::Commit },
        )
        .await
        .unwrap();
    assert_eq!(before.state, TransactionState::Commit);
    eventually("the first commit delivered", || {
        let reader = Arc::clone(&reader);
        async move { !stored(&reader, "TxFailover").await.is_empty() }
    })
    .await;

    // Checked back by the master before it dies, still undecided: the new master asks again.
    let pending = producer
        .send_in_transaction(
            Message::new("TxFailover", "later: committed across the kill"),
            |_| async { TransactionState::Unknown },
        )
        .await
        .unwrap();
    assert_eq!(pending.state, TransactionState::Unknown);
    eventually(
        "the first master checks the pending transaction back",
        || {
            let checks = Arc::clone(&checks);
            async move { times_asked(&checks, "later: committed across the kill") >= 1 }
        },
    )
    .await;

    // Two transactions open when the master dies: one left unknown (the checker will roll
    // it back), one whose commit the producer sends only after the master is killed.
    let old_master = group.master.clone();
    let open = producer
        .send_in_transaction(
            Message::new("TxFailover", "rollback across the kill"),
            |_| async { TransactionState::Unknown },
        )
        .await
        .unwrap();
    assert_eq!(open.state, TransactionState::Unknown);
    let committed = producer
        .send_in_transaction(Message::new("TxFailover", "commit across the kill"), |_| {
            // The master dies after storing the half message (replicated before the send
            // was acknowledged), before the producer's end reaches it.
            group.kill(&old_master);
            async { TransactionState::Commit }
        })
        .await
        .unwrap();
    assert_eq!(committed.state, TransactionState::Commit);
    let new_master = group.new_master(&old_master).await;
    assert_ne!(new_master, old_master);
    checks.lock().unwrap().later_decided = true;

    eventually(
        "the new master checked back and delivered the commits",
        || {
            let reader = Arc::clone(&reader);
            async move {
                let stored = stored(&reader, "TxFailover").await;
                ["commit across the kill", "later: committed across the kill"]
                    .iter()
                    .all(|body| stored.iter().any(|m| m.body_text() == *body))
            }
        },
    )
    .await;
    eventually("the open transaction checked and rolled back", || {
        let checks = Arc::clone(&checks);
        async move { times_asked(&checks, "rollback across the kill") >= 1 }
    })
    .await;
    // Checks on the new master keep running: nothing else appears, nothing twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let messages = stored(&reader, "TxFailover").await;
    assert_eq!(
        bodies(&messages),
        vec![
            "commit across the kill",
            "commit before the kill",
            "later: committed across the kill"
        ],
        "{messages:?}"
    );
    let pending_delivered = messages
        .iter()
        .find(|m| m.body_text() == "later: committed across the kill")
        .unwrap();
    assert_eq!(pending_delivered.msg_id(), pending.send.msg_id);
    let delivered = messages
        .iter()
        .find(|m| m.body_text() == "commit across the kill")
        .unwrap();
    assert_eq!(delivered.msg_id(), committed.send.msg_id);
    assert_eq!(times_asked(&checks, "commit before the kill"), 0);
    assert_eq!(times_asked(&checks, "commit across the kill"), 1);
    assert_eq!(times_asked(&checks, "rollback across the kill"), 1);
    producer.shutdown().await;
    reader.shutdown();
}
