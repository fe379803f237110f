//! The third-party Rust RocketMQ client (`rocketmq-client-rust` 1.0.0 from crates.io, a port
//! of the Java client), unmodified, against the real `mqnamesrv` and `mqbroker`: sends with
//! tags, keys and user properties, a batch, 1 MiB bodies (compressed by the client and not)
//! and delayed messages; read back by this project's own reader and by the client's lite
//! pull consumer, and looked up by message id, offset message id and key; push consumer
//! groups with a tag expression, with a SQL92 selector (`MessageSelector::by_sql`, also on the
//! lite pull consumer), orderly, and refusing messages so they come back through the retry
//! topic; a `TransactionMQProducer` whose commits, rollbacks and check-backs end as RocketMQ
//! ends them; request-reply between two client instances (`DefaultMQProducer::request`
//! answered with `MessageUtil::create_reply_message`); and produce, push (tag and SQL92),
//! transactions and request-reply against a 3-node broker group.
//!
//! Two defects of the port's request-reply, not of the broker (RocketMQ's Java client has
//! neither), which the request-reply tests work around:
//! - The blocking `DefaultMQProducer::request` misses a reply that arrives before it starts
//!   waiting: the reply is stored and a `tokio::sync::Notify` is woken with `notify_waiters`,
//!   which wakes only tasks already waiting (Java counts a latch down, which a later wait
//!   sees), so the request times out although its reply came. With a replier that answers
//!   at once, about one run in eight lost a reply; the replier here waits a moment first.
//! - `request_with_callback` calls the callback as soon as the request is sent, with
//!   neither reply nor error, and again with the reply (Java calls it once, with the reply);
//!   the driver waits for the call with the reply.
//!
//! The driver (`compat/rust-client`) is built by `scripts/setup-compat-rust-client`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tests::checker::{self, Acked, Read, SendLog};
use tests::compat;
use tests::rust_client::{self, Output};
use tests::{Broker, NameServer};

/// Most one driver run may take (client start-up, route discovery, a rebalance and the
/// messages themselves, on a loaded CI machine).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// What a consuming run is given to see all its messages (the driver fails after it).
const CONSUME_TIMEOUT_SECS: &str = "90";
/// How long a consumer keeps listening after its last expected message, so a duplicate or
/// a message its expression should have filtered out would still show up.
const LINGER_MS: &str = "1000";

/// The tags produced messages cycle through: message `seq` has `TAGS[seq % 3]`.
const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];
/// The key prefix: message `seq` has the key `order-<seq>`.
const KEY: &str = "order";
/// A SQL92 selector over the tag and the `seq` property the driver gives every message (the
/// one the Java and Go scenarios use).
const SQL92: &str = compat::SQL92_SAMPLE;
/// The messages of `0..count` [`SQL92`] selects: `seq` 5 to 24, but not TagB.
fn sql92_selected(count: u64) -> BTreeSet<u64> {
    (0..count)
        .filter(|seq| (5..=24).contains(seq) && TAGS[*seq as usize % TAGS.len()] != "TagB")
        .collect()
}

/// Open transactions are checked back one second after they began, then every second (as
/// in compat_go.rs and compat_java.rs), so a run waits seconds for its check-backs, not
/// RocketMQ's default minute.
fn quick_checks() -> [(&'static str, String); 2] {
    [
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
    ]
}

fn run(args: &[&str]) -> Output {
    rust_client::run(args, RUN_TIMEOUT).unwrap()
}

fn start(dir: &Path) -> (NameServer, Broker) {
    let namesrv = NameServer::start(dir).unwrap();
    let broker = Broker::start(
        dir,
        "broker-rust",
        &namesrv.addr(),
        &[
            ("bindAddress", "127.0.0.1".to_string()),
            // Room for a 1 MiB body with its properties.
            ("maxMessageSize", (4 * 1024 * 1024).to_string()),
        ],
    )
    .unwrap();
    (namesrv, broker)
}

/// The body the driver gives message `seq` (see the driver's usage text): `TOPIC:SEQ:` padded
/// with a-z to `body_bytes`.
fn expected_body(topic: &str, seq: u64, body_bytes: Option<usize>) -> String {
    let mut body = format!("{topic}:{seq}:");
    let letters = "abcdefghijklmnopqrstuvwxyz".as_bytes();
    let target = body_bytes.unwrap_or(0);
    let mut index = 0;
    while body.len() < target {
        body.push(letters[index % letters.len()] as char);
        index += 1;
    }
    body
}

/// The user properties every produced message carries besides its `seq`.
fn user_properties(seq: u64) -> Value {
    json!({"seq": seq.to_string(), "color": "blue", "shape": "round"})
}

/// Arguments giving messages the [`TAGS`], the [`KEY`] and the [`user_properties`].
fn labelled<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    for tag in TAGS {
        all.extend(["--tag", tag]);
    }
    all.extend([
        "--key",
        KEY,
        "--prop",
        "color=blue",
        "--prop",
        "shape=round",
    ]);
    all
}

/// Sends `count` labelled messages to `topic` one by one; the `sent` lines by sequence
/// number, after checking each was stored.
fn produce(ns: &str, topic: &str, count: u64, extra: &[&str]) -> BTreeMap<u64, Value> {
    produce_with_output(ns, topic, count, extra).0
}

/// [`produce`], also returning everything the run printed.
fn produce_with_output(
    ns: &str,
    topic: &str,
    count: u64,
    extra: &[&str],
) -> (BTreeMap<u64, Value>, Output) {
    let count_arg = count.to_string();
    let mut args = labelled(&["produce", "-n", ns, "-t", topic, "-c", &count_arg]);
    args.extend_from_slice(extra);
    let output = run(&args);
    let mut sent = BTreeMap::new();
    for line in output.ops("sent") {
        assert_eq!(line["status"], "SendOk", "{line}");
        sent.insert(line["seq"].as_u64().unwrap(), line.clone());
    }
    assert_eq!(sent.len() as u64, count, "{:?}", output.lines);
    (sent, output)
}

/// Every queue of `topic` read from offset 0 by this project's own pull consumer.
fn stored(ns: &str, topic: &str) -> BTreeMap<i32, Vec<Read>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let reader =
            client::PullConsumer::start(client::ClientOptions::new(ns), &format!("{topic}-audit"))
                .unwrap();
        let queues = checker::read_all(&reader, topic).await.unwrap();
        reader.shutdown();
        queues
    })
}

/// Holds what is stored in `topic` against what the driver was told: every queue dense,
/// every message exactly once at the queue and offset its send result named, with its
/// message id and the body it was built with, and nothing else.
fn check_stored(ns: &str, topic: &str, acked: Vec<Acked>) {
    let count = acked.len();
    let log = SendLog {
        acked,
        ..SendLog::default()
    };
    let report = checker::check(&log, &stored(ns, topic)).unwrap();
    assert_eq!(report.read, count, "{report:?}");
}

fn acked_one_by_one(
    topic: &str,
    sent: &BTreeMap<u64, Value>,
    body_bytes: Option<usize>,
) -> Vec<Acked> {
    sent.iter()
        .map(|(seq, line)| Acked {
            queue_id: line["queue_id"].as_i64().unwrap() as i32,
            queue_offset: line["queue_offset"].as_i64().unwrap(),
            msg_id: line["msg_id"].as_str().unwrap().to_owned(),
            body: expected_body(topic, *seq, body_bytes),
        })
        .collect()
}

/// Checks one message a consumer received against the send of the same `seq` (and its
/// checksum, when the send reported one) and the body it was built with; returns the `seq`.
fn check_received(
    received: &Value,
    topic: &str,
    sent: &BTreeMap<u64, Value>,
    body_bytes: Option<usize>,
) -> u64 {
    let seq: u64 = received["properties"]["seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq property: {received}"));
    let original = &sent[&seq];
    assert_eq!(received["topic"], topic, "{received}");
    assert_eq!(
        received["msg_id"], original["msg_id"],
        "message id of {seq}"
    );
    if received["reconsume_times"] == 0 {
        // A redelivery comes from the group's retry topic, at its own queue and offset.
        assert_eq!(received["queue_id"], original["queue_id"], "queue of {seq}");
        if let Some(offset) = original.get("queue_offset") {
            assert_eq!(&received["queue_offset"], offset, "offset of {seq}");
        }
    }
    let body = expected_body(topic, seq, body_bytes);
    assert_eq!(received["body_len"], body.len(), "body length of {seq}");
    if let Some(text) = received.get("body") {
        // The driver prints short bodies whole.
        assert_eq!(text, &body, "body of {seq}");
    }
    if let Some(crc) = original.get("body_crc32") {
        assert_eq!(&received["body_crc32"], crc, "body checksum of {seq}");
    }
    assert_eq!(
        received["tags"],
        TAGS[seq as usize % TAGS.len()],
        "tag of {seq}"
    );
    assert_eq!(received["keys"], format!("{KEY}-{seq}"), "keys of {seq}");
    assert_eq!(
        received["properties"],
        user_properties(seq),
        "user properties of {seq}"
    );
    seq
}

/// A consumer group to run: what it subscribes to and which messages it must get.
#[derive(Clone, Copy)]
struct Consumption<'a> {
    /// `consume` (push consumer) or `pull` (lite pull consumer).
    mode: &'a str,
    topic: &'a str,
    group: &'a str,
    expression: &'a str,
    /// `expression` is SQL92 (`--sql`), not a tag expression (`--expr`).
    sql: bool,
    /// The size the driver padded bodies to, if any.
    body_bytes: Option<usize>,
    /// More driver flags (`--orderly`, `--reconsume-once`).
    flags: &'a [&'a str],
}

impl<'a> Consumption<'a> {
    /// A concurrent push consumer group taking everything (`*`).
    fn push(topic: &'a str, group: &'a str) -> Self {
        Consumption {
            mode: "consume",
            topic,
            group,
            expression: "*",
            sql: false,
            body_bytes: None,
            flags: &[],
        }
    }
}

/// Runs `consumption` until it has accepted the `expected` messages; returns what it
/// printed about each delivery, in arrival order, after checking each against its send.
fn consume(
    ns: &str,
    consumption: &Consumption,
    sent: &BTreeMap<u64, Value>,
    expected: &BTreeSet<u64>,
) -> Vec<(u64, Value)> {
    let expect = expected.len().to_string();
    let mut args = vec![
        consumption.mode,
        "-n",
        ns,
        "-t",
        consumption.topic,
        "-g",
        consumption.group,
        if consumption.sql { "--sql" } else { "--expr" },
        consumption.expression,
        "--expect",
        &expect,
        "--timeout-secs",
        CONSUME_TIMEOUT_SECS,
        "--linger-ms",
        LINGER_MS,
    ];
    args.extend_from_slice(consumption.flags);
    let output = run(&args);
    let op = if consumption.mode == "consume" {
        "received"
    } else {
        "pulled"
    };
    output
        .ops(op)
        .iter()
        .map(|line| {
            let seq = check_received(line, consumption.topic, sent, consumption.body_bytes);
            (seq, (*line).clone())
        })
        .collect()
}

/// Runs `consumption` until it has the `expected` messages; asserts it received exactly
/// those (no other, none twice), each as sent and delivered for the first time; returns
/// them in arrival order.
fn consume_exactly(
    ns: &str,
    consumption: &Consumption,
    sent: &BTreeMap<u64, Value>,
    expected: &BTreeSet<u64>,
) -> Vec<(u64, Value)> {
    let received = consume(ns, consumption, sent, expected);
    for (seq, line) in &received {
        assert_eq!(line["reconsume_times"], 0, "{seq}: {line}");
        assert_eq!(line["accepted"], true, "{seq}: {line}");
    }
    let mut seqs: Vec<u64> = received.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    let wanted: Vec<u64> = expected.iter().copied().collect();
    assert_eq!(
        seqs, wanted,
        "{} {}: {received:?}",
        consumption.mode, consumption.expression
    );
    received
}

/// Creates `topic` on every master of `cluster`, so a consumer subscribing before anything
/// was sent to it finds its route at once (not at its next route poll, 30 s later).
fn create_topic(ns: &str, cluster: &str, topic: &str) {
    compat::block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(ns))?;
        let created = admin
            .create_topic_in_cluster(cluster, &client::Admin::topic_config(topic, 4, 4))
            .await;
        admin.shutdown();
        created.map(drop).map_err(anyhow::Error::from)
    })
    .unwrap();
}

/// The driver's `transaction` (the Go and Java drivers' scenario): four transactions,
/// committed, rolled back, and two left unknown that the broker checks back, answered commit
/// and rollback. Each unknown one is checked once, naming its real topic and the transaction
/// id its send returned; the two ended ones are never checked; the topic then holds the two
/// committed messages once each, under the ids their sends reported, and nothing else.
fn transaction(ns: &str, topic: &str, group: &str) {
    let output = run(&[
        "transaction",
        "-n",
        ns,
        "-t",
        topic,
        "--group",
        group,
        "--timeout-secs",
        "60",
        // Long enough for a second, wrong check of an ended transaction to show.
        "--linger-ms",
        "1500",
    ]);
    let states: BTreeMap<&str, &str> = output
        .ops("sent")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["local_state"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<&str, &str> = [
        ("commit", "COMMIT_MESSAGE"),
        ("rollback", "ROLLBACK_MESSAGE"),
        ("check-commit", "UNKNOW"),
        ("check-rollback", "UNKNOW"),
    ]
    .into();
    assert_eq!(states, expected, "{:?}", output.lines);
    compat::check_transaction_run(&output, ns, topic, true)
        .unwrap_or_else(|e| panic!("{e:#}\n{:?}", output.lines));
}

/// How long the replier waits before answering a request `DefaultMQProducer::request` made:
/// the port's blocking `request` only notices a reply that comes back after it has started
/// waiting (see the module doc), and an immediate one can beat it.
const REPLY_DELAY_MS: &str = "300";

/// Request-reply between two client instances of the driver: `reply` (a push consumer that
/// answers every message with `MessageUtil::create_reply_message`, sent by its own producer
/// to `CLUSTER_REPLY_TOPIC`) runs in the background while `request` sends `count` requests
/// one at a time, with the blocking `DefaultMQProducer::request` (answered after
/// [`REPLY_DELAY_MS`]) or, with `callback`, `request_with_callback` (answered at once). The
/// broker stores each request with its cluster (which the reply topic is named after) and
/// pushes each reply to the requesting client (PUSH_REPLY_MESSAGE_TO_CLIENT): every request
/// gets the reply made for it, carrying the correlation id the request was sent with.
fn request_reply(ns: &str, cluster: &str, topic: &str, count: usize, callback: bool) {
    create_topic(ns, cluster, topic);
    let delay_ms = if callback { "0" } else { REPLY_DELAY_MS };
    let count_arg = count.to_string();
    let group = format!("{topic}-replier");
    let mut replier = rust_client::spawn(
        &[
            "reply",
            "-n",
            ns,
            "-t",
            topic,
            "-g",
            &group,
            "--expect",
            &count_arg,
            "--timeout-secs",
            CONSUME_TIMEOUT_SECS,
            // A second reply to any request would show.
            "--linger-ms",
            LINGER_MS,
            "--reply-delay-ms",
            delay_ms,
        ],
        RUN_TIMEOUT,
    )
    .unwrap();
    let started = replier.wait_until(Duration::from_secs(60), |lines| {
        lines.iter().any(|line| line["op"] == "started")
    });
    assert!(started, "the replier did not start: {:?}", replier.lines());
    // A request waits in the topic until the replier has taken its queue (its first
    // rebalance); the timeout covers that on a slow machine.
    let mut args = vec![
        "request",
        "-n",
        ns,
        "-t",
        topic,
        "-c",
        &count_arg,
        "--timeout-ms",
        "30000",
    ];
    if callback {
        args.push("--callback");
    }
    let requests = rust_client::run_signed(&args, None, RUN_TIMEOUT).unwrap();
    let replier = replier.finish().unwrap();
    assert!(
        requests.succeeded() && replier.succeeded(),
        "{}\n{}",
        requests.describe(),
        replier.describe()
    );
    let (requests, replier) = (requests.output, replier.output);
    let reply_topic = format!("{cluster}_REPLY_TOPIC");

    let mut replied: BTreeMap<String, &Value> = BTreeMap::new();
    for line in replier.ops("replied") {
        let body = line["request_body"].as_str().unwrap().to_owned();
        assert_eq!(line["status"], "SEND_OK", "{line}");
        assert_eq!(line["topic"], reply_topic.as_str(), "{line}");
        // The reply carries the request's correlation id and names the requesting client.
        assert!(line["request_correlation_id"].is_string(), "{line}");
        assert_eq!(
            line["correlation_id"], line["request_correlation_id"],
            "{line}"
        );
        assert!(line["reply_to"].is_string(), "{line}");
        assert!(
            replied.insert(body.clone(), line).is_none(),
            "{body} answered twice"
        );
    }
    let bodies: BTreeSet<String> = (0..count).map(|seq| format!("{topic}:{seq}")).collect();
    assert_eq!(
        replied.keys().cloned().collect::<BTreeSet<_>>(),
        bodies,
        "requests the replier got"
    );
    let clients: BTreeSet<&str> = replied
        .values()
        .filter_map(|line| line["reply_to"].as_str())
        .collect();
    assert_eq!(clients.len(), 1, "one requesting client: {clients:?}");

    let done = requests.ops("done");
    assert_eq!(done.len(), 1, "{:?}", requests.lines);
    assert_eq!(done[0]["ok"], count, "{}", done[0]);
    let responses = requests.ops("response");
    assert_eq!(responses.len(), count, "{:?}", requests.lines);
    for (seq, response) in responses.iter().enumerate() {
        let request_body = format!("{topic}:{seq}");
        assert_eq!(response["seq"], seq, "{response}");
        assert_eq!(
            response["body"],
            format!("reply:{request_body}").as_str(),
            "request {seq} answered with {response}"
        );
        assert_eq!(response["topic"], reply_topic.as_str(), "{response}");
        assert_eq!(
            response["correlation_id"], replied[&request_body]["request_correlation_id"],
            "request {seq} got the reply to another request: {response}"
        );
    }
}

#[test]
fn rust_client_keeps_tags_keys_and_properties_and_consumes_by_tag() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();
    let topic = "RustTopic";
    let (sent, output) = produce_with_output(&ns, topic, 30, &["--lookup"]);
    check_stored(&ns, topic, acked_one_by_one(topic, &sent, None));

    // Each message is found, as sent, by its message id (the client's unique key), by its
    // offset message id (QUERY_MESSAGE / VIEW_MESSAGE_BY_ID) and by its key.
    assert_eq!(output.ops("lookup_failed"), Vec::<&Value>::new());
    let everything: BTreeSet<u64> = sent.keys().copied().collect();
    for op in ["viewed", "viewed_by_offset_id", "queried"] {
        let mut found: Vec<u64> = output
            .ops(op)
            .iter()
            .map(|line| check_received(line, topic, &sent, None))
            .collect();
        found.sort_unstable();
        let wanted: Vec<u64> = everything.iter().copied().collect();
        assert_eq!(found, wanted, "{op}");
    }

    let lite_pull = Consumption {
        mode: "pull",
        ..Consumption::push(topic, "rust-lite")
    };
    consume_exactly(&ns, &lite_pull, &sent, &everything);

    // TagB messages (seq % 3 == 1) are filtered out: by the broker by tag hash, by the
    // client by tag.
    let a_or_c: BTreeSet<u64> = everything.iter().copied().filter(|s| s % 3 != 1).collect();
    let push = Consumption {
        expression: "TagA || TagC",
        ..Consumption::push(topic, "rust-push")
    };
    consume_exactly(&ns, &push, &sent, &a_or_c);

    // An orderly push consumer locks its queues on the broker first, then gets each queue
    // in offset order.
    let orderly = Consumption {
        flags: &["--orderly"],
        ..Consumption::push(topic, "rust-orderly")
    };
    let received = consume_exactly(&ns, &orderly, &sent, &everything);
    let mut last_offset_by_queue: BTreeMap<i64, i64> = BTreeMap::new();
    for (seq, line) in &received {
        let queue_id = line["queue_id"].as_i64().unwrap();
        let offset = line["queue_offset"].as_i64().unwrap();
        if let Some(last) = last_offset_by_queue.insert(queue_id, offset) {
            assert!(
                last < offset,
                "{seq} at {offset} came after {last} in queue {queue_id}"
            );
        }
    }
}

/// A message the consumer refuses goes back to the broker (CONSUMER_SEND_MSG_BACK), waits
/// out its delay in the schedule topic and comes back through the group's retry topic: the
/// same message id, topic, body, tag, key and properties, reconsumed once.
#[test]
fn rust_client_refused_messages_come_back_through_the_retry_topic() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let _broker = Broker::start(
        dir.path(),
        "broker-rust-retry",
        &namesrv.addr(),
        &[
            ("bindAddress", "127.0.0.1".to_string()),
            // Every delay level one second: RocketMQ's first retry would wait 10 s.
            ("messageDelayLevel", "1s".to_string()),
        ],
    )
    .unwrap();
    let ns = namesrv.addr();
    let topic = "RustRetry";
    let sent = produce(&ns, topic, 6, &[]);
    let all: BTreeSet<u64> = sent.keys().copied().collect();
    let refusing = Consumption {
        flags: &["--reconsume-once"],
        ..Consumption::push(topic, "rust-retry")
    };
    let received = consume(&ns, &refusing, &sent, &all);
    let mut deliveries: BTreeMap<u64, Vec<(bool, i64)>> = BTreeMap::new();
    for (seq, line) in &received {
        let accepted = line["accepted"].as_bool().unwrap();
        let reconsume_times = line["reconsume_times"].as_i64().unwrap();
        deliveries
            .entry(*seq)
            .or_default()
            .push((accepted, reconsume_times));
    }
    let expected: BTreeMap<u64, Vec<(bool, i64)>> = all
        .iter()
        .map(|seq| (*seq, vec![(false, 0), (true, 1)]))
        .collect();
    assert_eq!(deliveries, expected, "(accepted, reconsume times) by seq");
}

/// A message sent with a delay level waits in the schedule topic, then arrives in its own
/// topic and queue, once, as sent.
#[test]
fn rust_client_delayed_messages_arrive_once_in_their_queue() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let _broker = Broker::start(
        dir.path(),
        "broker-rust-delay",
        &namesrv.addr(),
        &[
            ("bindAddress", "127.0.0.1".to_string()),
            ("messageDelayLevel", "1s 1s 1s".to_string()),
        ],
    )
    .unwrap();
    let ns = namesrv.addr();
    let topic = "RustDelay";
    let mut sent = produce(&ns, topic, 8, &["--delay-level", "3"]);
    // As in RocketMQ, the send result of a delayed message names the queue it was sent to
    // but the offset it got in the schedule topic's queue; its offset in its own queue is
    // only known once it is delivered there.
    // All of them went to the one schedule queue of delay level 3, so those offsets are
    // 0..8 whatever queues of their own topic they were sent to.
    let mut schedule_offsets: Vec<i64> = sent
        .values_mut()
        .map(|line| {
            let offset = line.as_object_mut().unwrap().remove("queue_offset");
            offset.and_then(|o| o.as_i64()).unwrap()
        })
        .collect();
    schedule_offsets.sort_unstable();
    assert_eq!(schedule_offsets, (0..8).collect::<Vec<i64>>());
    let all: BTreeSet<u64> = sent.keys().copied().collect();
    let received = consume_exactly(&ns, &Consumption::push(topic, "rust-delay"), &sent, &all);
    let mut offsets_by_queue: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (_, line) in &received {
        let queue_id = line["queue_id"].as_i64().unwrap();
        offsets_by_queue
            .entry(queue_id)
            .or_default()
            .push(line["queue_offset"].as_i64().unwrap());
    }
    for (queue_id, offsets) in &mut offsets_by_queue {
        offsets.sort_unstable();
        let dense: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &dense, "queue {queue_id}");
    }
}

#[test]
fn rust_client_batches_and_big_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();

    let topic = "RustBatch";
    let output = run(&labelled(&[
        "produce", "-n", &ns, "-t", topic, "-c", "10", "--batch",
    ]));
    let batch = output.ops("sent_batch");
    assert_eq!(batch.len(), 1, "{:?}", output.lines);
    let result = batch[0];
    assert_eq!(result["status"], "SendOk", "{result}");
    let ids = result["msg_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 10, "one id per message: {result}");
    let queue_id = result["queue_id"].as_i64().unwrap() as i32;
    let first_offset = result["queue_offset"].as_i64().unwrap();
    // A batch goes to one queue, its messages at consecutive offsets in batch order, each
    // under its own id.
    let acked: Vec<Acked> = ids
        .iter()
        .enumerate()
        .map(|(seq, id)| Acked {
            queue_id,
            queue_offset: first_offset + seq as i64,
            msg_id: id.as_str().unwrap().to_owned(),
            body: expected_body(topic, seq as u64, None),
        })
        .collect();
    check_stored(&ns, topic, acked);
    // Each batch member kept its own tag, key and properties.
    let sent: BTreeMap<u64, Value> = ids
        .iter()
        .enumerate()
        .map(|(seq, id)| {
            let line = json!({
                "msg_id": id,
                "queue_id": queue_id,
                "queue_offset": first_offset + seq as i64,
            });
            (seq as u64, line)
        })
        .collect();
    let all: BTreeSet<u64> = (0..10).collect();
    consume_exactly(
        &ns,
        &Consumption::push(topic, "rust-batch-push"),
        &sent,
        &all,
    );

    // 1 MiB bodies, stored as they are and compressed by the client: both come back whole.
    let mib = (1024 * 1024).to_string();
    for (topic, extra) in [
        (
            "RustBig",
            vec!["--body-bytes", mib.as_str(), "--no-compress"],
        ),
        ("RustBigZ", vec!["--body-bytes", mib.as_str()]),
    ] {
        let sent = produce(&ns, topic, 2, &extra);
        check_stored(
            &ns,
            topic,
            acked_one_by_one(topic, &sent, Some(1024 * 1024)),
        );
        let both: BTreeSet<u64> = [0, 1].into();
        let group = format!("{topic}-push");
        let push = Consumption {
            body_bytes: Some(1024 * 1024),
            ..Consumption::push(topic, &group)
        };
        consume_exactly(&ns, &push, &sent, &both);
    }
}

/// A push consumer and a lite pull consumer subscribed with `MessageSelector::by_sql` (the
/// broker runs with `enablePropertyFilter=true`) get exactly the messages whose tag and user
/// property `seq` the expression selects, each once, as sent.
#[test]
fn rust_client_sql92_selector_push_and_lite_pull() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let _broker = Broker::start(
        dir.path(),
        "broker-rust-sql",
        &namesrv.addr(),
        &[
            ("bindAddress", "127.0.0.1".to_string()),
            ("enablePropertyFilter", "true".to_string()),
        ],
    )
    .unwrap();
    let ns = namesrv.addr();
    let topic = "RustSql";
    let sent = produce(&ns, topic, 30, &[]);
    let wanted = sql92_selected(30);
    assert!(!wanted.is_empty() && wanted.len() < sent.len());
    for (mode, group) in [("consume", "rust-sql-push"), ("pull", "rust-sql-lite")] {
        let sql = Consumption {
            mode,
            expression: SQL92,
            sql: true,
            ..Consumption::push(topic, group)
        };
        consume_exactly(&ns, &sql, &sent, &wanted);
    }
}

#[test]
fn rust_client_transactions_commit_roll_back_and_answer_checks() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut config = vec![("bindAddress", "127.0.0.1".to_string())];
    config.extend(quick_checks());
    let _broker = Broker::start(dir.path(), "broker-rust-tx", &namesrv.addr(), &config).unwrap();
    transaction(&namesrv.addr(), "RustTx", "rust-tx-producer");
}

#[test]
fn rust_client_request_reply() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    // Broker::start's cluster.
    request_reply(&namesrv.addr(), "TestCluster", "RustRequest", 5, false);
    request_reply(&namesrv.addr(), "TestCluster", "RustRequestCb", 5, true);
}

/// The same client against a 3-node broker group: it finds the elected master through the
/// name server, and what it sends is stored once, where it was told, and consumed by tag and
/// by SQL92; transactions end and are checked back by the master; request-reply goes through
/// the group's cluster reply topic.
#[test]
fn rust_client_against_a_broker_group() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let ns = namesrv.addr();
    let mut config = vec![("enablePropertyFilter", "true".to_string())];
    config.extend(quick_checks());
    let _group = tests::group::BrokerGroup::start(dir.path(), "RustGroup", &ns, &config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&ns)).unwrap();
        tests::group::wait_for_master(&admin, "RustGroup", None, Duration::from_secs(60))
            .await
            .unwrap();
    });
    let topic = "RustGroupTopic";
    let sent = produce(&ns, topic, 20, &[]);
    check_stored(&ns, topic, acked_one_by_one(topic, &sent, None));
    let tag_b: BTreeSet<u64> = sent.keys().copied().filter(|s| s % 3 == 1).collect();
    let push = Consumption {
        expression: "TagB",
        ..Consumption::push(topic, "rust-group-push")
    };
    consume_exactly(&ns, &push, &sent, &tag_b);
    let sql = Consumption {
        expression: SQL92,
        sql: true,
        ..Consumption::push(topic, "rust-group-sql")
    };
    consume_exactly(&ns, &sql, &sent, &sql92_selected(20));

    transaction(&ns, "RustGroupTx", "rust-group-tx-producer");
    // The group's cluster (tests::group).
    request_reply(&ns, "RaftCluster", "RustGroupRequest", 5, false);
    request_reply(&ns, "RaftCluster", "RustGroupRequestCb", 5, true);
}
