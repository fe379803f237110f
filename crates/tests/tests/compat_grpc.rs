//! Apache's RocketMQ 5 gRPC client for Java (`rocketmq-client-java` 5.0.8, unmodified,
//! driven by `compat/java/src-grpc`) against the broker's own gRPC port — no proxy — on a
//! standalone broker and on a 3-node broker group (the client given every member):
//! - Producer: sends, each acknowledged once with its message id;
//! - SimpleConsumer: receive and ack, every message once; a message whose invisible time is
//!   changed (`changeInvisibleDuration`) comes back once, its delivery attempt raised;
//! - PushConsumer: every message once; a failed consumption comes back once; on a FIFO
//!   topic with an orderly consumer group, a failed message is retried before the rest of
//!   its message group, and no message is delivered while an earlier one of its group is
//!   not yet consumed (the broker's orderly POP, and the client's own FIFO retry);
//! - delay messages (`setDeliveryTimestamp`): none arrives before its time;
//! - transactions: commit, rollback, and two left open that the broker checks back over the
//!   producer's Telemetry stream, answered by its TransactionChecker;
//! - TLS on, the client's default: the same port answers TLS and plaintext;
//! - in the group, the master killed (-9) while a producer sends: every acknowledged
//!   message is received afterwards;
//! - the Python (`rocketmq-python-client` 5.1.2) and Node.js (`rocketmq-client-nodejs`
//!   1.0.8) clients: Producer sends with a tag, SimpleConsumer receives, a changed invisible
//!   time brings each message back, then it is acknowledged; transactions as above; FIFO
//!   messages as the Go client's below (`message_group`, `messageGroup`); a PushConsumer
//!   whose listener fails each first delivery: every message comes back and is taken;
//!   Python's delay messages as the Go client's below; lite topics (RocketMQ 5.5): a
//!   LitePushConsumer (and Python's LiteSimpleConsumer) takes the messages of the lite
//!   topics it subscribed, none of the others (see [`lite_topics`]); and, through the
//!   MessagingService stub generated in the Python client's package (no pinned client has
//!   a pull consumer), a pull consumer's calls: PullMessage from each queue's first offset
//!   to its last, a pull at the end answered MESSAGE_NOT_FOUND after its long poll, UpdateOffset
//!   and GetOffset;
//! - the Rust client (crates.io `rocketmq` 5.0.0, `compat/rust-grpc`): the same, except that
//!   its SimpleConsumer has no changeInvisibleDuration (5.0.0 offers receive and ack only):
//!   each first delivery, received invisible for 10 s, is left unacknowledged and comes back
//!   when that time runs out. Its transaction producer's checker answers the checks as the
//!   others do. Workarounds in its driver for the client's own defects: it builds only with
//!   the `time` crate's `local-offset` feature turned on, and its receive deadline is the
//!   long-polling timeout itself, so the driver keeps the default 40 s (the broker polls
//!   20 s at most). It logs an error for each Settings command the broker sends back on
//!   Telemetry (as RocketMQ's proxy does): it handles no command but transaction checks.
//!   Its FIFO messages (`set_message_group`) are received one at a time by its
//!   SimpleConsumer on an orderly group, each group's in the order sent, none delivered
//!   while an earlier one of its group is unacknowledged (without giving any back: that
//!   would cost the 10 s invisible time per message); its delay messages as Go's below.
//! - the Go client (`github.com/apache/rocketmq-clients/golang/v5` 5.1.2, `compat/go-grpc`;
//!   5.1.2 has a Producer and a SimpleConsumer, no PushConsumer): the same as Python's and
//!   Node.js's, and
//!   - FIFO messages (`SetMessageGroup`): 12 messages in 3 message groups on a topic of
//!     `message.type=FIFO`, received one at a time by a consumer group with
//!     consumeMessageOrderly, each first delivery given back (changeInvisibleDuration of
//!     1 s): no message is delivered while an earlier one of its group is unacknowledged,
//!     each comes back once with delivery attempt 2 and is acknowledged, carrying its
//!     group, each group's in the order sent (the broker's orderly POP);
//!   - delay messages (`SetDelayTimestamp`) on a topic of `message.type=DELAY`: none
//!     arrives before its time.
//!
//!   Workarounds in its driver for the client's own defects (`compat/go-grpc/main.go`): its
//!   log goes to `/logs` unless re-made (the driver sends it to stderr); Ack, Commit and
//!   RollBack report no refusal, so the checks judge by what comes back and what the topic
//!   holds; its receives carry no long-polling timeout and give up after the await duration
//!   plus 3 s, so the driver awaits 20 s, the broker's poll when a receive names none.
//!
//! Topics are created first (a 5.x client needs its topic's route before it starts, as
//! with RocketMQ's proxy). In a group the clients are started at once: a follower that has
//! not applied the topic yet answers QueryRoute from the name servers' route, as RocketMQ's
//! proxy does. The driver is built by `scripts/setup-compat-java`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use tests::compat::{Servers, Setup};
use tests::driver::DriverOutput;
use tests::grpc_clients::GrpcClient;
use tests::java_client;
use tests::scenario::Suite;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const CONSUME_TIMEOUT_SECS: &str = "60";

#[test]
fn java_grpc_client_against_a_standalone_broker() {
    check_installed();
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Servers::start(
        Setup::Standalone,
        dir.path(),
        "broker-grpc",
        &broker_settings(),
    )
    .unwrap();
    let suite = Suite::new("Java gRPC client 5.0.8 / standalone broker", 3);
    run_scenarios(&suite, &mut servers);
    suite.finish();
}

#[test]
fn java_grpc_client_against_a_broker_group() {
    check_installed();
    let dir = tempfile::tempdir().unwrap();
    let mut servers =
        Servers::start(Setup::Group, dir.path(), "GrpcGroup", &broker_settings()).unwrap();
    let suite = Suite::new("Java gRPC client 5.0.8 / 3-node broker group", 3);
    run_scenarios(&suite, &mut servers);
    suite.finish();
}

/// RECALL_MESSAGE is off by default, as in RocketMQ; open transactions are checked back
/// one second after they began, then every second.
fn broker_settings() -> [(&'static str, String); 3] {
    [
        ("recallMessageEnable", "true".to_owned()),
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
    ]
}

fn check_installed() {
    java_client::check_built().unwrap();
    for client in GrpcClient::OTHERS {
        client.check_installed().unwrap();
    }
}

#[derive(Clone, Copy)]
struct Env<'a> {
    servers: &'a Servers,
}

impl Env<'_> {
    fn endpoints(&self) -> Result<String> {
        self.servers.grpc_endpoints()
    }

    /// The broker's gRPC address, or in a group a follower's.
    fn one_endpoint(&self) -> Result<String> {
        let Some(group) = &self.servers.group else {
            return self.endpoints();
        };
        let master = self.servers.master()?;
        group
            .members
            .iter()
            .find(|m| m.addr() != master)
            .context("a group without followers")?
            .grpc_addr()
    }

    fn run(&self, command: &str, topic: &str, flags: &[&str]) -> Result<DriverOutput> {
        self.run_at(&self.endpoints()?, command, topic, flags)
    }

    fn run_at(
        &self,
        endpoints: &str,
        command: &str,
        topic: &str,
        flags: &[&str],
    ) -> Result<DriverOutput> {
        let mut args = vec![command, "--endpoints", endpoints, "-t", topic];
        args.extend_from_slice(flags);
        java_client::run_grpc(&args, RUN_TIMEOUT)?.ok()
    }

    fn create_topic(&self, topic: &str) -> Result<()> {
        let namesrv = self.servers.ns();
        tests::compat::block_on(async {
            let admin = client::Admin::start(client::ClientOptions::new(&namesrv))?;
            let created = admin
                .create_topic_in_cluster(
                    &self.servers.cluster,
                    &client::Admin::topic_config(topic, 4, 4),
                )
                .await;
            admin.shutdown();
            created.map(drop).map_err(anyhow::Error::from)
        })
    }

    /// Sends `count` messages; returns seq → message id.
    fn produce(
        &self,
        topic: &str,
        count: usize,
        flags: &[&str],
    ) -> Result<BTreeMap<String, String>> {
        let count_text = count.to_string();
        let mut all = vec!["-c", count_text.as_str()];
        all.extend_from_slice(flags);
        let output = self.run("produce", topic, &all)?;
        sent_by_seq(&output, count)
    }
}

/// A producer run's acknowledged sends, seq to message id: `count` of them.
fn sent_by_seq(output: &DriverOutput, count: usize) -> Result<BTreeMap<String, String>> {
    let sent: BTreeMap<String, String> = output
        .ops("sent")
        .iter()
        .map(|l| (l["seq"].to_string(), text(l, "msg_id")))
        .collect();
    ensure!(
        sent.len() == count,
        "{} of {count} sends acknowledged",
        sent.len()
    );
    Ok(sent)
}

fn text(line: &Value, field: &str) -> String {
    line[field].as_str().unwrap_or_default().to_owned()
}

/// Message id → how many times each op line named it.
fn tally(output: &DriverOutput, op: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in output.ops(op) {
        *seen.entry(text(line, "msg_id")).or_default() += 1;
    }
    seen
}

fn run_scenarios(suite: &Suite, servers: &mut Servers) {
    let env = Env { servers: &*servers };
    std::thread::scope(|s| {
        s.spawn(|| {
            suite.step("Producer send, SimpleConsumer receive and ack", || {
                simple_consumer(env)
            })
        });
        s.spawn(|| {
            suite.step(
                "SimpleConsumer changeInvisibleDuration: the message comes back",
                || simple_consumer_nack(env),
            )
        });
        s.spawn(|| {
            suite.step("PushConsumer, a failed consumption comes back", || {
                push_consumer(env)
            })
        });
        s.spawn(|| {
            suite.step(
                "PushConsumer on a FIFO group: a message group consumed in order, a failed message retried first",
                || push_consumer_fifo(env),
            )
        });
        s.spawn(|| {
            suite.step(
                "delay messages (setDeliveryTimestamp) arrive on time",
                || delay_messages(env),
            )
        });
        s.spawn(|| {
            suite.step(
                "transactions: commit, rollback, check-backs answered by the TransactionChecker",
                || transactions(env),
            )
        });
        s.spawn(|| {
            suite.step(
                "TLS on (the client's default): Producer send, SimpleConsumer receive and ack",
                || over_tls(env),
            )
        });
        // The Go client's scenarios beyond the others' (FIFO, delay), on a thread of their own.
        s.spawn(|| {
            let client = GrpcClient::GoV5;
            suite.step(
                &format!("{client}: FIFO message groups received in order per group"),
                || fifo_messages(env, client),
            );
            suite.step(
                &format!("{client}: delay messages (SetDelayTimestamp) arrive on time"),
                || client_delay_messages(env, client),
            );
        });
        // The other clients' PushConsumers, FIFO and delay messages, on a thread of their own.
        s.spawn(|| {
            for client in [GrpcClient::Python, GrpcClient::NodeJs] {
                suite.step(
                    &format!("{client}: PushConsumer, a failed consumption comes back"),
                    || other_client_push(env, client),
                );
            }
            let client = GrpcClient::Rust;
            suite.step(
                &format!("{client}: FIFO message groups received in order per group"),
                || fifo_messages(env, client),
            );
            for client in [GrpcClient::Rust, GrpcClient::Python] {
                suite.step(&format!("{client}: delay messages arrive on time"), || {
                    client_delay_messages(env, client)
                });
            }
            suite.step(
                "Python gRPC client's MessagingService stub: PullMessage, UpdateOffset, GetOffset, QueryOffset",
                || pull_consumer_calls(env),
            );
        });
        // Lite topics, on a thread of their own (their consumers mostly wait).
        s.spawn(|| {
            for client in [GrpcClient::Python, GrpcClient::NodeJs] {
                suite.step(
                    &format!("{client}: lite topics reach the lite consumers that subscribed them"),
                    || lite_topics(env, client),
                );
            }
        });
        // The other languages' clients, alongside the Java scenarios.
        s.spawn(|| {
            suite.step(
                "Node.js gRPC client 1.0.8: a recalled delay message never arrives",
                || recalled_delay_message(env),
            );
            for client in GrpcClient::OTHERS {
                let turned_down = match client {
                    // No changeInvisibleDuration in this client: see the module doc.
                    GrpcClient::Rust => "an unacknowledged delivery comes back",
                    _ => "changeInvisibleDuration",
                };
                suite.step(
                    &format!("{client}: Producer send, SimpleConsumer {turned_down} and ack"),
                    || other_client(env, client),
                );
                suite.step(&format!("{client}: transactions with check-backs"), || {
                    other_client_transactions(env, client)
                });
                // Go's runs on its own thread above; the Rust client cannot give a
                // delivery back (no changeInvisibleDuration).
                if matches!(client, GrpcClient::Python | GrpcClient::NodeJs) {
                    suite.step(
                        &format!("{client}: FIFO message groups received in order per group"),
                        || fifo_messages(env, client),
                    );
                }
            }
        });
    });
    if servers.setup == Setup::Group {
        suite.step("kill -9 of the master while the producer sends", || {
            master_killed(servers)
        });
    }
}

/// FIFO messages from the Java producer, 12 in 3 message groups, consumed by a
/// PushConsumer of an orderly group whose listener fails each first delivery (`refused`
/// lines): see [`check_fifo_deliveries`]. In a group through a follower.
fn push_consumer_fifo(env: Env) -> Result<()> {
    let topic = "GrpcJavaFifo";
    let group = "grpc-java-fifo";
    create_typed_topic(env, topic, "FIFO", Some(group))?;
    let endpoint = env.one_endpoint()?;
    let output = env.run_at(
        &endpoint,
        "produce",
        topic,
        &["-c", "12", "--message-groups", "3"],
    )?;
    let sent = sent_in_groups(&output, 12)?;
    let output = env.run_at(
        &endpoint,
        "push",
        topic,
        &[
            "-g",
            group,
            "--expect",
            "12",
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
            "--fail-first",
        ],
    )?;
    check_fifo_deliveries(&output, &sent, "refused", 2)?;
    let once: BTreeMap<String, usize> = sent.keys().map(|id| (id.clone(), 1)).collect();
    let received = tally(&output, "received");
    ensure!(
        received == once,
        "received {received:?}, expected each of {once:?} once"
    );
    Ok(())
}

/// A producer's `sent` lines of `count` FIFO messages in 3 groups: message id to (seq,
/// group), each in group `G<seq mod 3>`.
fn sent_in_groups(output: &DriverOutput, count: usize) -> Result<BTreeMap<String, (i64, String)>> {
    let sent: BTreeMap<String, (i64, String)> = output
        .ops("sent")
        .iter()
        .map(|l| {
            (
                text(l, "msg_id"),
                (l["seq"].as_i64().unwrap_or(-1), text(l, "group")),
            )
        })
        .collect();
    ensure!(
        sent.len() == count,
        "{} of {count} sends acknowledged",
        sent.len()
    );
    for (id, (seq, group)) in &sent {
        ensure!(
            *group == format!("G{}", seq % 3),
            "{id} (seq {seq}) sent in group {group}"
        );
    }
    Ok(sent)
}

/// A Producer with a TransactionChecker: a commit, a rollback, and two transactions left
/// open that the broker checks back over the producer's Telemetry stream (answered COMMIT
/// and ROLLBACK through EndTransaction). Each check names the real topic; the topic ends up
/// holding the two commits, once each, under the message ids their sends returned. In a
/// group the producer reaches a follower only: its sends and ends are handed to the
/// master, and the master's checks come back through the follower.
fn transactions(env: Env) -> Result<()> {
    let topic = "GrpcTx";
    env.create_topic(topic)?;
    let output = env.run_at(
        &env.one_endpoint()?,
        "transaction",
        topic,
        &["--timeout-secs", "60", "--linger-ms", "1500"],
    )?;
    check_transactions(env, &output, topic)
}

/// [`transactions`] with another language's client (through a follower in a group).
fn other_client_transactions(env: Env, client: GrpcClient) -> Result<()> {
    let topic = match client {
        GrpcClient::Python => "GrpcPythonTx",
        GrpcClient::NodeJs => "GrpcNodeJsTx",
        GrpcClient::Rust => "GrpcRustTx",
        GrpcClient::GoV5 => "GrpcGoTx",
    };
    env.create_topic(topic)?;
    let endpoints = env.one_endpoint()?;
    let output = client
        .run(
            &[
                "transaction",
                "--endpoints",
                &endpoints,
                "-t",
                topic,
                "--timeout-secs",
                "60",
                "--linger-ms",
                "1500",
            ],
            RUN_TIMEOUT,
        )?
        .ok()?;
    check_transactions(env, &output, topic)
}

/// Each check names one of the run's messages, and the shared check of a transaction run.
fn check_transactions(env: Env, output: &DriverOutput, topic: &str) -> Result<()> {
    let sent: BTreeMap<String, String> = output
        .ops("sent")
        .iter()
        .map(|l| (text(l, "name"), text(l, "msg_id")))
        .collect();
    for line in output.ops("checked") {
        ensure!(
            sent.get(&text(line, "name")) == Some(&text(line, "msg_id")),
            "a check names another message: {line}"
        );
    }
    tests::compat::check_transaction_run(output, &env.servers.ns(), topic, false)
}

/// The client with TLS on, its default (the broker answers a TLS handshake on the same
/// port with its certificate, self-signed in RocketMQ's test mode, which the Java client
/// accepts): every message sent is received once.
fn over_tls(env: Env) -> Result<()> {
    let topic = "GrpcTls";
    env.create_topic(topic)?;
    let sent = env.produce(topic, 10, &["--tls"])?;
    let output = env.run(
        "simple",
        topic,
        &[
            "--tls",
            "-g",
            "grpc-tls",
            "--expect",
            "10",
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
        ],
    )?;
    let received = tally(&output, "received");
    let expected: BTreeMap<String, usize> = sent.values().map(|id| (id.clone(), 1)).collect();
    ensure!(
        received == expected,
        "received {received:?}, expected each of {expected:?} once"
    );
    Ok(())
}

fn simple_consumer(env: Env) -> Result<()> {
    let topic = "GrpcSimple";
    env.create_topic(topic)?;
    let sent = env.produce(topic, 20, &["--tag", "TagA"])?;
    let ids: BTreeSet<String> = sent.values().cloned().collect();
    ensure!(ids.len() == 20, "message ids repeat: {sent:?}");
    let output = env.run(
        "simple",
        topic,
        &[
            "-g",
            "grpc-simple",
            "--expect",
            "20",
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
        ],
    )?;
    let received = tally(&output, "received");
    ensure!(
        received.keys().cloned().collect::<BTreeSet<_>>() == ids,
        "received {received:?}, sent {ids:?}"
    );
    for line in output.ops("received") {
        ensure!(line["tag"] == "TagA", "tag lost: {line}");
        ensure!(
            text(line, "body") == format!("{topic}:{}", text(line, "seq")),
            "body: {line}"
        );
        ensure!(
            text(line, "keys") == format!("K-{}", text(line, "seq")),
            "keys: {line}"
        );
        ensure!(
            line["delivery_attempt"] == 1,
            "a first delivery says {line}"
        );
    }
    Ok(())
}

fn simple_consumer_nack(env: Env) -> Result<()> {
    let topic = "GrpcNack";
    env.create_topic(topic)?;
    let sent = env.produce(topic, 6, &[])?;
    let output = env.run(
        "simple",
        topic,
        &[
            "-g",
            "grpc-nack",
            "--expect",
            "6",
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
            "--nack-first",
        ],
    )?;
    let nacked = tally(&output, "nacked");
    let received = tally(&output, "received");
    check_back_once_or_more(&sent, &nacked, &received, "nacked")?;
    for line in output.ops("received") {
        ensure!(
            line["delivery_attempt"].as_i64() >= Some(2),
            "a redelivery says {line}"
        );
    }
    Ok(())
}

fn push_consumer(env: Env) -> Result<()> {
    let topic = "GrpcPush";
    env.create_topic(topic)?;
    let sent = env.produce(topic, 6, &[])?;
    let output = env.run("push", topic, &failing_push_consumer("grpc-push"))?;
    let refused = tally(&output, "refused");
    let received = tally(&output, "received");
    check_back_once_or_more(&sent, &refused, &received, "refused")
}

/// Each message's first delivery was turned down exactly once, and each came back and was
/// taken (at least once: POP redelivery is at-least-once; copies are printed).
fn check_back_once_or_more(
    sent: &BTreeMap<String, String>,
    turned_down: &BTreeMap<String, usize>,
    taken: &BTreeMap<String, usize>,
    how: &str,
) -> Result<()> {
    let ids: BTreeSet<&String> = sent.values().collect();
    let once: BTreeMap<String, usize> = sent.values().map(|id| (id.clone(), 1)).collect();
    ensure!(
        *turned_down == once,
        "each message {how} once on its first delivery; {how} {turned_down:?}"
    );
    ensure!(
        taken.keys().collect::<BTreeSet<_>>() == ids,
        "every message comes back and is taken; taken {taken:?}"
    );
    let copies: Vec<(&String, &usize)> = taken.iter().filter(|(_, n)| **n > 1).collect();
    if !copies.is_empty() {
        println!("messages taken more than once (at-least-once): {copies:?}");
    }
    Ok(())
}

/// A 5.x client of another language: its producer's messages, each turned down once with a
/// new invisible time by its SimpleConsumer (the Rust client: left unacknowledged until its
/// invisible time ran out), come back and are acknowledged.
fn other_client(env: Env, client: GrpcClient) -> Result<()> {
    let topic = match client {
        GrpcClient::Python => "GrpcPython",
        GrpcClient::NodeJs => "GrpcNodeJs",
        GrpcClient::Rust => "GrpcRust",
        GrpcClient::GoV5 => "GrpcGo",
    };
    env.create_topic(topic)?;
    // These clients take one address (grpc-js does not resolve a list, the Python client
    // fails its route lookup with one): in a group a follower, which hands what only the
    // master does to it.
    let endpoints = env.one_endpoint()?;
    let run = |args: &[&str]| -> Result<DriverOutput> {
        let mut all = vec![args[0], "--endpoints", &endpoints, "-t", topic];
        all.extend_from_slice(&args[1..]);
        client.run(&all, RUN_TIMEOUT)?.ok()
    };
    let output = run(&["produce", "-c", "6", "--tag", "TagG"])?;
    for line in output.ops("started") {
        ensure!(
            line["client_version"] == client.release(),
            "{client} says {line}"
        );
    }
    let sent = sent_by_seq(&output, 6)?;
    let group = format!("{}-group", topic.to_lowercase());
    let output = run(&[
        "simple",
        "-g",
        &group,
        "--expect",
        "6",
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
        "--nack-first",
    ])?;
    for line in output.ops("received") {
        ensure!(line["tag"] == "TagG", "tag lost: {line}");
        ensure!(
            text(line, "body") == format!("{topic}:{}", text(line, "seq")),
            "body: {line}"
        );
    }
    check_taken_on_redelivery(&sent, &output, "nacked")
}

/// Each message `sent` was turned down (`how` lines) once and then taken (`received`) on a
/// redelivery that says so.
fn check_taken_on_redelivery(
    sent: &BTreeMap<String, String>,
    output: &DriverOutput,
    how: &str,
) -> Result<()> {
    for line in output.ops("received") {
        ensure!(
            line["delivery_attempt"].as_i64() >= Some(2),
            "a redelivery says {line}"
        );
    }
    check_back_once_or_more(sent, &tally(output, how), &tally(output, "received"), how)
}

/// A client's PushConsumer whose listener fails each message's first delivery: each
/// message of its producer comes back and is taken.
fn other_client_push(env: Env, client: GrpcClient) -> Result<()> {
    let (topic, group) = match client {
        GrpcClient::Python => ("GrpcPythonPush", "grpc-python-push"),
        GrpcClient::NodeJs => ("GrpcNodeJsPush", "grpc-nodejs-push"),
        GrpcClient::Rust | GrpcClient::GoV5 => bail!("{client} has no PushConsumer"),
    };
    env.create_topic(topic)?;
    let output = run_client(env, client, "produce", topic, &["-c", "6"])?;
    let sent = sent_by_seq(&output, 6)?;
    let output = run_client(env, client, "push", topic, &failing_push_consumer(group))?;
    check_taken_on_redelivery(&sent, &output, "refused")
}

/// Lite topics (RocketMQ 5.5) through a client: its producer sends 9 messages to the lite
/// topics `L0`..`L2` (by seq mod 3) of a `message.type=LITE` parent; its LitePushConsumer
/// subscribes `L0` and `L1` and takes exactly their 6 messages, each with its lite topic,
/// none of `L2`. Python's listener fails each first delivery, and each comes back and is
/// taken; then Python's LiteSimpleConsumer, in a group of its own, gives each first
/// delivery back (changeInvisibleDuration) and acknowledges it when it comes back (the
/// driver works around two defects of the Python client: see `subscribe_lite_topics` in
/// `compat/python-grpc/driver.py`). Node.js's
/// listener takes each at once: its lite consumer retries a failure locally only under an
/// exponential backoff policy and forwards it to the dead-letter queue otherwise (RocketMQ's
/// proxy, like the broker, gives a group's customized policy).
fn lite_topics(env: Env, client: GrpcClient) -> Result<()> {
    let (topic, group) = match client {
        GrpcClient::Python => ("GrpcPythonLite", "grpc-python-lite"),
        GrpcClient::NodeJs => ("GrpcNodeJsLite", "grpc-nodejs-lite"),
        GrpcClient::Rust | GrpcClient::GoV5 => bail!("{client} has no lite consumer"),
    };
    create_typed_topic(env, topic, "LITE", None)?;
    let flags = ["-c", "9", "--lite-topics", "3"];
    let output = run_client(env, client, "produce", topic, &flags)?;
    let lite_of: BTreeMap<String, String> = output
        .ops("sent")
        .iter()
        .map(|l| (text(l, "msg_id"), text(l, "lite")))
        .collect();
    ensure!(
        lite_of.len() == 9,
        "{} of 9 sends acknowledged",
        lite_of.len()
    );
    let subscribed: BTreeMap<String, String> = output
        .ops("sent")
        .iter()
        .filter(|l| text(l, "lite") != "L2")
        .map(|l| (l["seq"].to_string(), text(l, "msg_id")))
        .collect();
    let consume = |command: &str, group: &str, turn_down: Option<&str>| {
        let mut flags = vec![
            "-g",
            group,
            "--lite-topics",
            "2",
            "--expect",
            "6",
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
        ];
        flags.extend(turn_down);
        run_client(env, client, command, topic, &flags)
    };
    if client == GrpcClient::NodeJs {
        let output = consume("lite", group, None)?;
        check_lite_deliveries(&output, &lite_of)?;
        let once: BTreeMap<String, usize> = subscribed.values().map(|id| (id.clone(), 1)).collect();
        let received = tally(&output, "received");
        ensure!(
            received == once,
            "received {received:?}, expected each of {once:?} once"
        );
        return Ok(());
    }
    let output = consume("lite", group, Some("--fail-first"))?;
    check_lite_deliveries(&output, &lite_of)?;
    check_taken_on_redelivery(&subscribed, &output, "refused")?;
    let simple_group = format!("{group}-simple");
    let output = consume("simple", &simple_group, Some("--nack-first"))?;
    check_lite_deliveries(&output, &lite_of)?;
    check_taken_on_redelivery(&subscribed, &output, "nacked")
}

/// Every message a lite consumer's run delivered was sent to the lite topic it came with,
/// one it subscribed (`L0`, `L1`).
fn check_lite_deliveries(output: &DriverOutput, lite_of: &BTreeMap<String, String>) -> Result<()> {
    for op in ["received", "refused", "nacked"] {
        for line in output.ops(op) {
            let id = text(line, "msg_id");
            ensure!(
                lite_of
                    .get(&id)
                    .is_some_and(|lite| *lite == text(line, "lite") && lite != "L2"),
                "delivered {line}; sent to lite topic {:?}",
                lite_of.get(&id)
            );
        }
    }
    Ok(())
}

/// A 5.x pull consumer's calls, made through the MessagingService stub generated in the
/// Python client's package (no pinned client has a pull consumer): every message its
/// producer sent is pulled once, from each queue's first offset to its last, without a
/// receipt handle; a pull at the end finds nothing once its long poll ran out; each queue's
/// offset committed is read back.
fn pull_consumer_calls(env: Env) -> Result<()> {
    let client = GrpcClient::Python;
    let topic = "GrpcPythonPull";
    env.create_topic(topic)?;
    let output = run_client(env, client, "produce", topic, &["-c", "6"])?;
    let sent: BTreeMap<String, String> = output
        .ops("sent")
        .iter()
        .map(|l| (text(l, "msg_id"), format!("{topic}:{}", l["seq"])))
        .collect();
    ensure!(sent.len() == 6, "{} of 6 sends acknowledged", sent.len());
    let flags = ["-g", "grpc-python-pull", "--expect", "6"];
    let output = run_client(env, client, "pull", topic, &flags)?;
    let mut pulled = BTreeMap::new();
    for line in output.ops("pulled") {
        ensure!(line["receipt_handle"] == false, "a receipt handle: {line}");
        pulled.insert(text(line, "msg_id"), text(line, "body"));
    }
    ensure!(
        pulled == sent && output.ops("pulled").len() == sent.len(),
        "pulled {pulled:?}, sent {sent:?}"
    );
    let empty = output.ops("empty");
    ensure!(
        empty.len() == 1 && empty[0]["code"] == "MESSAGE_NOT_FOUND",
        "a pull at the end: {empty:?}"
    );
    let committed = output.ops("committed");
    ensure!(
        !committed.is_empty() && committed.len() == output.ops("no_offset").len(),
        "every queue without an offset first, then committed: {committed:?}"
    );
    for line in committed {
        ensure!(
            line["code"] == "OK" && line["read_back"] == line["offset"],
            "committed offset read back: {line}"
        );
    }
    Ok(())
}

/// Three delay messages from the Node.js producer, the last recalled (RecallMessage with
/// the handle its send answered): the other two arrive, not before their time, and the
/// recalled one never does.
fn recalled_delay_message(env: Env) -> Result<()> {
    let topic = "GrpcRecall";
    env.create_topic(topic)?;
    let endpoints = env.one_endpoint()?;
    let client = GrpcClient::NodeJs;
    let run = |args: &[&str]| -> Result<DriverOutput> {
        let mut all = vec![args[0], "--endpoints", &endpoints, "-t", topic];
        all.extend_from_slice(&args[1..]);
        client.run(&all, RUN_TIMEOUT)?.ok()
    };
    let output = run(&["produce", "-c", "3", "--delay-ms", "3000", "--recall-last"])?;
    let deliver: BTreeMap<String, i64> = output
        .ops("sent")
        .iter()
        .map(|l| {
            (
                text(l, "msg_id"),
                l["deliver_ms"].as_i64().unwrap_or(i64::MAX),
            )
        })
        .collect();
    let recalled: Vec<String> = output
        .ops("recalled")
        .iter()
        .map(|l| text(l, "msg_id"))
        .collect();
    ensure!(
        deliver.len() == 3 && recalled.len() == 1,
        "sent {deliver:?}, recalled {recalled:?}"
    );
    let output = run(&[
        "simple",
        "-g",
        "grpc-recall",
        "--expect",
        "2",
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
        "--linger-ms",
        "4000",
    ])?;
    let received = tally(&output, "received");
    let expected: BTreeSet<&String> = deliver.keys().filter(|id| !recalled.contains(id)).collect();
    ensure!(
        received.keys().collect::<BTreeSet<_>>() == expected,
        "received {received:?}; sent {deliver:?}, recalled {recalled:?}"
    );
    for line in output.ops("received") {
        let at = line["at_ms"].as_i64().unwrap_or(0);
        let due = deliver
            .get(&text(line, "msg_id"))
            .copied()
            .unwrap_or(i64::MAX);
        ensure!(at >= due, "{line} received before its delivery time {due}");
    }
    Ok(())
}

/// FIFO delivery as a consumer that acknowledges each message on delivery `acked_attempt`
/// sees it (`given_back` lines: earlier deliveries given back; `received`: acknowledged): a
/// message is delivered only once every earlier message of its group is acknowledged, with
/// its delivery attempt counted. `sent`: message id to (seq, group).
fn check_fifo_deliveries(
    output: &DriverOutput,
    sent: &BTreeMap<String, (i64, String)>,
    given_back: &str,
    acked_attempt: i64,
) -> Result<()> {
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    for line in &output.lines {
        let op = text(line, "op");
        if op != given_back && op != "received" {
            continue;
        }
        let id = text(line, "msg_id");
        let (seq, group) = sent.get(&id).with_context(|| format!("{line}: not sent"))?;
        let waiting: Vec<i64> = sent
            .iter()
            .filter(|(other, (s, g))| g == group && s < seq && !acknowledged.contains(*other))
            .map(|(_, (s, _))| *s)
            .collect();
        ensure!(
            waiting.is_empty(),
            "{line} delivered while seqs {waiting:?} of its group were unacknowledged"
        );
        let attempt = if op == given_back { 1 } else { acked_attempt };
        ensure!(
            line["delivery_attempt"].as_i64() == Some(attempt),
            "{line}: delivery attempt {attempt} expected"
        );
        if op == "received" {
            acknowledged.insert(id);
        }
    }
    Ok(())
}

/// Creates `topic` with `message.type` = `kind` (FIFO, DELAY: the types a 5.x producer
/// checks a route for) and, when given, `group` consuming orderly (consumeMessageOrderly,
/// which a receive of RocketMQ's proxy turns into an orderly POP). The topic is created
/// plain first ([`Env::create_topic`]), then typed: until a follower has applied the type,
/// its route accepts every type (the broker does not check types by default, as RocketMQ).
fn create_typed_topic(env: Env, topic: &str, kind: &str, group: Option<&str>) -> Result<()> {
    env.create_topic(topic)?;
    let namesrv = env.servers.ns();
    let cluster = env.servers.cluster.clone();
    tests::compat::block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&namesrv))?;
        let result = async {
            let mut config = client::Admin::topic_config(topic, 4, 4);
            config
                .attributes
                .insert("+message.type".to_owned(), kind.to_owned());
            let masters = admin.create_topic_in_cluster(&cluster, &config).await?;
            if let Some(group) = group {
                let mut config = remoting::body::SubscriptionGroupConfig::new(group);
                config.consume_message_orderly = true;
                for addr in &masters {
                    admin.create_subscription_group(addr, &config).await?;
                }
            }
            Ok::<(), client::ClientError>(())
        }
        .await;
        admin.shutdown();
        result.map_err(anyhow::Error::from)
    })
}

/// Runs a client's driver: `command` against `topic` through one endpoint (in a group a
/// follower, as [`other_client`]).
fn run_client(
    env: Env,
    client: GrpcClient,
    command: &str,
    topic: &str,
    flags: &[&str],
) -> Result<DriverOutput> {
    let endpoints = env.one_endpoint()?;
    let mut args = vec![command, "--endpoints", &endpoints, "-t", topic];
    args.extend_from_slice(flags);
    client.run(&args, RUN_TIMEOUT)?.ok()
}

/// FIFO messages from a client's producer, 12 in 3 message groups (`G0`..`G2`, by seq mod
/// 3), received one at a time by an orderly consumer group's SimpleConsumer that gives each
/// first delivery back: no message is delivered while an earlier one of its group is not
/// yet acknowledged, each comes back with delivery attempt 2, and every message is
/// acknowledged once, with its group, each group's in the order sent.
fn fifo_messages(env: Env, client: GrpcClient) -> Result<()> {
    let (topic, group) = match client {
        GrpcClient::GoV5 => ("GrpcGoFifo", "grpc-go-fifo"),
        GrpcClient::Python => ("GrpcPythonFifo", "grpc-python-fifo"),
        GrpcClient::NodeJs => ("GrpcNodeJsFifo", "grpc-nodejs-fifo"),
        GrpcClient::Rust => ("GrpcRustFifo", "grpc-rust-fifo"),
    };
    create_typed_topic(env, topic, "FIFO", Some(group))?;
    let output = run_client(
        env,
        client,
        "produce",
        topic,
        &["-c", "12", "--message-groups", "3"],
    )?;
    let sent = sent_in_groups(&output, 12)?;
    // The Rust client cannot give a delivery back but by letting its 10 s invisible time
    // run out: it acknowledges every first delivery instead.
    let give_back = client != GrpcClient::Rust;
    let mut flags = vec![
        "-g",
        group,
        "--expect",
        "12",
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
        "--batch",
        "1",
    ];
    if give_back {
        flags.push("--nack-first");
    }
    let output = run_client(env, client, "simple", topic, &flags)?;
    check_fifo_deliveries(&output, &sent, "nacked", if give_back { 2 } else { 1 })?;
    let received = tally(&output, "received");
    let once: BTreeMap<String, usize> = sent.keys().map(|id| (id.clone(), 1)).collect();
    ensure!(
        received == once,
        "received {received:?}, expected each of {once:?} once"
    );
    let mut order: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in output.ops("received") {
        let (seq, group) = &sent[&text(line, "msg_id")];
        ensure!(
            text(line, "group") == *group,
            "{line} lost its group {group}"
        );
        order.entry(group.clone()).or_default().push(*seq);
    }
    for (group, seqs) in &order {
        ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "group {group} received out of order: {seqs:?}"
        );
    }
    Ok(())
}

/// Delay messages from a client's producer (its delivery timestamp due 3 s after each
/// send) on a DELAY topic, received by its SimpleConsumer: each arrives once, none before
/// its time.
fn client_delay_messages(env: Env, client: GrpcClient) -> Result<()> {
    let (topic, group) = match client {
        GrpcClient::GoV5 => ("GrpcGoDelay", "grpc-go-delay"),
        GrpcClient::Python => ("GrpcPythonDelay", "grpc-python-delay"),
        GrpcClient::NodeJs => ("GrpcNodeJsDelay", "grpc-nodejs-delay"),
        GrpcClient::Rust => ("GrpcRustDelay", "grpc-rust-delay"),
    };
    create_typed_topic(env, topic, "DELAY", None)?;
    let flags = ["-c", "4", "--delay-ms", "3000"];
    let sent = run_client(env, client, "produce", topic, &flags)?;
    let received = run_client(env, client, "simple", topic, &delay_consumer(group))?;
    check_on_time(&sent, &received, 4)
}

fn delay_messages(env: Env) -> Result<()> {
    let topic = "GrpcDelay";
    env.create_topic(topic)?;
    let sent = env.run("produce", topic, &["-c", "4", "--delay-ms", "3000"])?;
    let received = env.run("simple", topic, &delay_consumer("grpc-delay"))?;
    check_on_time(&sent, &received, 4)
}

/// A PushConsumer run of `group` expecting 6 messages, failing each first delivery.
fn failing_push_consumer(group: &str) -> [&str; 7] {
    [
        "-g",
        group,
        "--expect",
        "6",
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
        "--fail-first",
    ]
}

/// A SimpleConsumer run of `group` expecting the 4 delay messages.
fn delay_consumer(group: &str) -> [&str; 6] {
    [
        "-g",
        group,
        "--expect",
        "4",
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
    ]
}

/// The `count` delay messages a producer run sent (each `sent` line with its `deliver_ms`)
/// were each received once, none before its delivery time.
fn check_on_time(sent: &DriverOutput, received: &DriverOutput, count: usize) -> Result<()> {
    let deliver: BTreeMap<String, i64> = sent
        .ops("sent")
        .iter()
        .map(|l| (text(l, "msg_id"), l["deliver_ms"].as_i64().unwrap_or(0)))
        .collect();
    ensure!(
        deliver.len() == count && deliver.values().all(|ms| *ms > 0),
        "delay messages acknowledged: {deliver:?}"
    );
    for line in received.ops("received") {
        let id = text(line, "msg_id");
        let due = deliver.get(&id).context("a message never sent")?;
        let at = line["at_ms"].as_i64().unwrap_or(0);
        ensure!(
            at >= *due,
            "{id} received at {at}, before its delivery time {due}"
        );
    }
    let received = tally(received, "received");
    let once: BTreeMap<String, usize> = deliver.keys().map(|id| (id.clone(), 1)).collect();
    ensure!(
        received == once,
        "received {received:?}, expected each of {once:?} once"
    );
    Ok(())
}

/// A producer sends and a SimpleConsumer receives through a kill -9 of the group's master:
/// the consumer gets everything the producer was told was sent. Prints how long after the
/// kill the consumer received again (issue 11 asks for under 2 s; measured, not asserted).
fn master_killed(servers: &mut Servers) -> Result<()> {
    let env = Env { servers: &*servers };
    let topic = "GrpcFailover";
    env.create_topic(topic)?;
    let endpoints = env.endpoints()?;
    let mut consumer = java_client::spawn_grpc(
        &[
            "simple",
            "--endpoints",
            &endpoints,
            "-t",
            topic,
            "-g",
            "grpc-failover",
            "--expect",
            "1000000",
            "--timeout-secs",
            "150",
        ],
        Duration::from_secs(180),
    )?;
    ensure!(
        consumer.wait_until(Duration::from_secs(60), |lines| lines
            .iter()
            .any(|l| l["op"] == "started")),
        "the consumer did not start"
    );
    let mut producer = java_client::spawn_grpc(
        &[
            "produce",
            "--endpoints",
            &endpoints,
            "-t",
            topic,
            "-c",
            "300",
            "--interval-ms",
            "20",
        ],
        RUN_TIMEOUT,
    )?;
    ensure!(
        producer.wait_until(Duration::from_secs(30), |lines| {
            lines.iter().filter(|l| l["op"] == "sent").count() >= 50
        }),
        "the producer did not get going"
    );
    let master = servers.master()?;
    let killed_at_ms = epoch_ms();
    servers
        .group
        .as_mut()
        .and_then(|g| g.member_mut(&master))
        .context("the master is no member")?
        .process
        .kill();
    servers.wait_for_master(Some(&master))?;
    let finished = producer.finish()?;
    let acked: BTreeSet<String> = finished
        .output
        .ops("sent")
        .iter()
        .map(|l| text(l, "msg_id"))
        .collect();
    ensure!(
        acked.len() >= 100,
        "only {} sends acknowledged through the failover",
        acked.len()
    );
    // What the application was handed. An ack that failed through the failover may still
    // have been stored by the old master (its answer lost with it): such a message is
    // delivered and, rightly, not delivered again.
    let delivered = |lines: &[Value]| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|l| l["op"] == "received" || l["op"] == "ack_failed")
            .map(|l| text(l, "msg_id"))
            .collect()
    };
    consumer.wait_until(Duration::from_secs(90), |lines| {
        acked.is_subset(&delivered(lines))
    });
    let lines = consumer.lines();
    let handed_out = delivered(&lines);
    let lost: Vec<&String> = acked.difference(&handed_out).collect();
    if !lost.is_empty() {
        let failures: Vec<&Value> = lines.iter().filter(|l| l["op"] != "received").collect();
        let last_received = lines
            .iter()
            .filter(|l| l["op"] == "received")
            .filter_map(|l| l["at_ms"].as_i64())
            .max()
            .map(|at| at - killed_at_ms);
        anyhow::bail!(
            "{} acknowledged messages not received by the consumer: {lost:?}; its last \
             receive {last_received:?} ms after the kill; its other lines ({}), the first \
             ten: {:?}",
            lost.len(),
            failures.len(),
            &failures[..failures.len().min(10)]
        );
    }
    // When the consumer got a message newer than any it had before the kill (a receive
    // under way at the kill may still bring older ones).
    let receipts: Vec<(i64, i64)> = lines
        .iter()
        .filter(|l| l["op"] == "received")
        .filter_map(|l| {
            let seq = l["seq"].as_str()?.parse().ok()?;
            Some((l["at_ms"].as_i64()?, seq))
        })
        .collect();
    let newest_before = receipts
        .iter()
        .filter(|(at, _)| *at <= killed_at_ms)
        .map(|(_, seq)| *seq)
        .max()
        .unwrap_or(-1);
    let resumed_at_ms = receipts
        .iter()
        .filter(|(at, seq)| *at > killed_at_ms && *seq > newest_before)
        .map(|(at, _)| *at)
        .min();
    let count = |op: &str| lines.iter().filter(|l| l["op"] == op).count();
    match resumed_at_ms {
        Some(at) => println!(
            "gRPC failover: the SimpleConsumer received new messages again {} ms after the master's kill -9 \
             ({} acknowledged sends, none lost; {} receives and {} acks failed)",
            at - killed_at_ms,
            acked.len(),
            count("receive_failed"),
            count("ack_failed")
        ),
        None => println!("gRPC failover: nothing received after the kill -9"),
    }
    Ok(())
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The long run of the failover scenario: `ROUNDS` rounds (10 by default), each on a new
/// group (CI runs it once, inside the group's suite):
/// `ROUNDS=30 cargo test -p tests --test compat_grpc failover_rounds -- --ignored --nocapture`.
#[test]
#[ignore]
fn java_grpc_client_failover_rounds() {
    check_installed();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    for round in 1..=rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut servers = Servers::start(
            Setup::Group,
            dir.path(),
            "GrpcFailoverRounds",
            &broker_settings(),
        )
        .unwrap();
        if let Err(e) = master_killed(&mut servers) {
            panic!("round {round} of {rounds}: {e:#}");
        }
    }
}
