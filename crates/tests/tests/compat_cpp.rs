//! The C++ RocketMQ client (librocketmq through the PyPI package `rocketmq` 0.4.4), unmodified,
//! against the real `mqnamesrv` and `mqbroker`: produce, batch, 1 MiB messages, pull with
//! `*` and with a tag, push consumers (concurrent and orderly), delay levels, and timer
//! messages with `TIMER_DELIVER_MS` set as a property.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tests::cpp_client::{self, ScriptOutput};
use tests::{Broker, NameServer};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn start(dir: &Path) -> (NameServer, Broker) {
    let namesrv = NameServer::start(dir).unwrap();
    let broker = Broker::start(
        dir,
        "broker-cpp",
        &namesrv.addr(),
        &[
            ("bindAddress", "127.0.0.1".to_string()),
            ("maxMessageSize", (4 * 1024 * 1024).to_string()),
        ],
    )
    .unwrap();
    (namesrv, broker)
}

fn run(args: &[&str]) -> ScriptOutput {
    cpp_client::run(args, SCRIPT_TIMEOUT).unwrap()
}

/// The `sent` lines by sequence number, after checking each was stored.
fn sent_by_seq(output: &ScriptOutput) -> BTreeMap<i64, Value> {
    let mut sent = BTreeMap::new();
    for line in output.ops("sent") {
        assert_eq!(line["status"], 0, "send not OK: {line}");
        sent.insert(line["seq"].as_i64().unwrap(), line.clone());
    }
    sent
}

/// The sequence numbers of the messages `output` reports under `op`, sorted, after checking
/// each against what was sent with its number.
fn sequences_as_sent(output: &ScriptOutput, op: &str, sent: &BTreeMap<i64, Value>) -> Vec<i64> {
    let mut seen: Vec<i64> = output
        .ops(op)
        .iter()
        .map(|m| check_against_sent(m, sent))
        .collect();
    seen.sort();
    seen
}

/// Checks one consumed message against what was sent with its sequence number.
fn check_against_sent(consumed: &Value, sent: &BTreeMap<i64, Value>) -> i64 {
    let seq: i64 = consumed["seq"].as_str().unwrap().parse().unwrap();
    let original = &sent[&seq];
    assert_eq!(consumed["sha256"], original["sha256"], "body of {seq}");
    assert_eq!(consumed["len"], original["len"], "length of {seq}");
    assert_eq!(consumed["tags"], original["tag"], "tag of {seq}");
    assert_eq!(consumed["keys"], format!("key-{seq}"), "keys of {seq}");
    let color = if seq % 2 == 0 { "blue" } else { "red" };
    assert_eq!(consumed["color"], color, "user property of {seq}");
    assert_eq!(
        consumed["queue_offset"], original["offset"],
        "queue offset of {seq} matches the send result"
    );
    assert_eq!(consumed["id"], original["msg_id"], "message id of {seq}");
    seq
}

/// Messages each produce-and-consume test sends.
const COUNT: usize = 20;

/// Produces [`COUNT`] messages to `topic` and reads them all back through a pull consumer
/// (`<prefix>-pull`, with `*`) and a push consumer group (`<prefix>-push`), each exactly
/// as sent; returns what was sent.
fn produce_then_pull_and_push(ns: &str, topic: &str, prefix: &str) -> BTreeMap<i64, Value> {
    let produced = run(&["produce", ns, topic, &COUNT.to_string()]);
    let sent = sent_by_seq(&produced);
    assert_eq!(sent.len(), COUNT);
    let pulled = run(&["pull", ns, topic, &format!("{prefix}-pull"), "*"]);
    let seen = sequences_as_sent(&pulled, "pulled", &sent);
    assert_eq!(seen, (0..COUNT as i64).collect::<Vec<_>>());
    push_everything(ns, topic, &format!("{prefix}-push"), &sent, &[]);
    sent
}

/// Runs a push consumer group (`extra` arguments after the count and timeout, e.g.
/// `orderly`) until it has received every message sent, each exactly as sent.
fn push_everything(
    ns: &str,
    topic: &str,
    group: &str,
    sent: &BTreeMap<i64, Value>,
    extra: &[&str],
) {
    let count = sent.len().to_string();
    let mut args = vec!["push", ns, topic, group, "*", &count, "60"];
    args.extend_from_slice(extra);
    let pushed = run(&args);
    let seen = sequences_as_sent(&pushed, "pushed", sent);
    assert_eq!(
        seen,
        (0..sent.len() as i64).collect::<Vec<_>>(),
        "{}",
        pushed.stderr
    );
}

#[test]
fn cpp_client_produces_and_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();
    // Every message once, exactly as sent, to a pull with `*` and to a push consumer group.
    let sent = produce_then_pull_and_push(&ns, "CppTopic", "cpp");

    // Pull with a tag: only TagA (the even sequence numbers).
    let tagged = run(&["pull", &ns, "CppTopic", "cpp-pull-taga", "TagA"]);
    let seen = sequences_as_sent(&tagged, "pulled", &sent);
    assert_eq!(seen, (0..COUNT as i64).step_by(2).collect::<Vec<_>>());

    // An orderly push consumer, which must lock its queues first, receives everything too.
    push_everything(&ns, "CppTopic", "cpp-push-orderly", &sent, &["orderly"]);
}

#[test]
fn cpp_client_batches_and_big_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();

    let batch = run(&["batch", &ns, "CppBatch", "10"]);
    let result = batch.ops("batch");
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["status"], 0, "{}", result[0]);
    let first_offset = result[0]["offset"].as_i64().unwrap();
    let pulled = run(&["pull", &ns, "CppBatch", "cpp-batch-pull", "*"]);
    let messages = pulled.ops("pulled");
    assert_eq!(messages.len(), 10, "each batch message stored on its own");
    let queue_id = &messages[0]["queue_id"];
    for message in &messages {
        let seq: i64 = message["seq"].as_str().unwrap().parse().unwrap();
        assert_eq!(&message["queue_id"], queue_id, "a batch goes to one queue");
        assert_eq!(
            message["queue_offset"].as_i64().unwrap(),
            first_offset + seq
        );
        assert_eq!(message["keys"], format!("key-{seq}"));
        let body = format!("CppBatch-message-{seq}");
        assert_eq!(message["len"].as_u64().unwrap(), body.len() as u64);
    }

    // 1 MiB bodies: the C++ client compresses them; they come back as sent.
    let big = run(&["big", &ns, "CppBig", "3", &(1024 * 1024).to_string()]);
    let sent = sent_by_seq(&big);
    assert_eq!(sent.len(), 3);
    let pulled = run(&["pull", &ns, "CppBig", "cpp-big-pull", "*"]);
    let seen = sequences_as_sent(&pulled, "pulled", &sent);
    assert_eq!(seen, [0, 1, 2]);
}

/// The same client against a 3-node broker group: it finds the elected master through the
/// name server and sees its messages exactly as sent, from every queue.
#[test]
fn cpp_client_against_a_broker_group() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let ns = namesrv.addr();
    let _group = tests::group::BrokerGroup::start(dir.path(), "CppGroup", &ns, &[]).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&ns)).unwrap();
        tests::group::wait_for_master(&admin, "CppGroup", None, Duration::from_secs(60))
            .await
            .unwrap();
    });
    produce_then_pull_and_push(&ns, "CppGroupTopic", "cpp-group");
}

/// Pulls `topic` from its start until `count` messages are there (bounded).
fn pull_at_least(ns: &str, topic: &str, count: usize) -> Vec<Value> {
    let mut pulled = Vec::new();
    for _ in 0..30 {
        pulled = run(&[
            "pull",
            ns,
            topic,
            &format!("{}-pull", topic.to_lowercase()),
            "*",
        ])
        .ops("pulled")
        .into_iter()
        .cloned()
        .collect();
        if pulled.len() >= count {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    pulled
}

/// Checks that the pulled messages are the sent ones, once each, with their bodies, none
/// stored in its topic before `earliest(seq)`.
fn check_waited(pulled: &[Value], sent: &BTreeMap<i64, Value>, earliest: impl Fn(i64) -> i64) {
    let mut seqs: Vec<i64> = pulled
        .iter()
        .map(|m| {
            let seq: i64 = m["seq"].as_str().unwrap().parse().unwrap();
            assert_eq!(m["sha256"], sent[&seq]["sha256"], "body of {seq}");
            let stored = m["store_timestamp"].as_i64().unwrap();
            assert!(
                stored >= earliest(seq),
                "{seq} stored at {stored}, before its time {}",
                earliest(seq)
            );
            seq
        })
        .collect();
    seqs.sort();
    let expected: Vec<i64> = sent.keys().copied().collect();
    assert_eq!(seqs, expected, "each message once");
}

/// RocketMQ 5 timer messages from a client that predates them, the property set by hand:
/// each is stored once in its topic, with its body, no earlier than its deliver time.
#[test]
fn cpp_client_timer_messages_wait_for_their_deliver_time() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();
    let produced = run(&["timer", &ns, "CppTimer", "10", "3000"]);
    let sent = sent_by_seq(&produced);
    assert_eq!(sent.len(), 10);
    let deliver_ms = sent[&0]["deliver_ms"].as_i64().unwrap();
    let pulled = pull_at_least(&ns, "CppTimer", sent.len());
    check_waited(&pulled, &sent, |_| deliver_ms);
}

/// Delay level 2 (5 s at RocketMQ's default levels) set with `set_delay_time_level`: each
/// message reaches its topic once, with its body, no earlier than 5 s after its send.
#[test]
fn cpp_client_delay_levels_hold_messages_back() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, _broker) = start(dir.path());
    let ns = namesrv.addr();
    let produced = run(&["delay", &ns, "CppDelay", "5", "2"]);
    let sent = sent_by_seq(&produced);
    assert_eq!(sent.len(), 5);
    let pulled = pull_at_least(&ns, "CppDelay", sent.len());
    check_waited(&pulled, &sent, |seq| {
        sent[&seq]["sent_ms"].as_i64().unwrap() + 5_000
    });
}
