//! The official Go RocketMQ client (`github.com/apache/rocketmq-client-go/v2` v2.1.2,
//! unmodified, driven by `compat/go`) against the real `mqnamesrv` and `mqbroker`: a
//! standalone broker, and a 3-node broker group.
//!
//! Each test starts its servers once and runs every scenario against them (each with topics
//! and consumer groups of its own):
//! - producer: SendSync, SendAsync, a batch, ordered sends (the hash queue selector on a
//!   sharding key), with tags, keys and user properties; every acknowledged send is read
//!   back by this project's own consumer, exactly once where its send result said;
//! - push consumer: a tag expression (`TagA || TagB`), a SQL92 selector over the tag and a
//!   user property, everything (`*`), orderly;
//! - pull consumer (Poll, then ACK): everything, and one tag. (Not SQL92: v2.1.2's pull
//!   consumer sends every pull as a tag expression, whatever its selector says, so a
//!   RocketMQ broker reads the SQL text as one tag and selects nothing; this one does the same.)
//! - admin: the topic list; create a topic on the master, delete it (from the name server and
//!   from every member);
//! - a transaction producer: commit, rollback, check-backs answered commit and rollback;
//! - request-reply: `Request`, answered with `consumer.CreateReplyMessage`. Two defects of
//!   v2.1.2 that an application meets with any broker are worked around in the driver: the
//!   reply's body must be set by hand (CreateReplyMessage drops it), and a reply to a
//!   requester the broker does not know yet is sent again (for an existing topic the
//!   requester registers only with its scheduled heartbeats, 1 s after start, then every
//!   30 s);
//! - timer messages, `TIMER_DELIVER_MS` set as a property (the client predates them), and
//!   delay levels;
//! - on a group of its own: a paced producer while the master is replaced online with
//!   `mqadmin` (no failed send, nothing acknowledged lost).
//!
//! What each consumer receives is checked as a user sees it: body (length, CRC-32, text),
//! tag, key, user properties, message id, queue and offset. A failing scenario does not stop
//! the others; the test fails at the end naming every failed scenario and what differed.
//! The driver is built by `scripts/setup-compat-go`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tests::checker::SendLog;
use tests::compat::{
    self, check_done, check_sent, check_stored, eventually, single, Messages, Sent, Servers, Setup,
};
use tests::driver::{DriverOutput, Finished};
use tests::go_client;
use tests::scenario::Suite;

/// The most one driver run may take before it is killed (its own timeouts are shorter).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// What a consumer run is given to see all its messages.
const CONSUME_TIMEOUT_SECS: u64 = 45;
/// How long a consumer keeps listening after its last expected message.
const LINGER_MS: u64 = 1000;
/// Driver runs at once per test.
const AT_ONCE: usize = 4;

#[test]
fn go_client_against_a_standalone_broker() {
    go_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let servers = Servers::start(
        Setup::Standalone,
        dir.path(),
        "broker-go",
        &broker_settings(),
    )
    .unwrap();
    let suite = Suite::new("Go client v2.1.2 / standalone broker", AT_ONCE);
    run_scenarios(&suite, &servers);
    suite.finish();
}

#[test]
fn go_client_against_a_broker_group() {
    go_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let servers = Servers::start(Setup::Group, dir.path(), "GoGroup", &broker_settings()).unwrap();
    let suite = Suite::new("Go client v2.1.2 / 3-node broker group", AT_ONCE);
    run_scenarios(&suite, &servers);
    suite.finish();
}

/// The official Go producer sending one message every 100 ms without retries while the
/// master is replaced online as an operator does it (`mqadmin addGroupMember`, then
/// `removeGroupMember` of the master and SIGTERM): the demoted master forwards the sends
/// that still reach it until the client's route poll (every 30 s) finds the new master, so
/// no send fails, and each acknowledged one is stored once where its result said.
#[test]
fn go_producer_sees_no_failed_send_while_the_master_is_replaced_online() {
    /// Some 45 s of sends: past the route poll after the replacement.
    const SENDS: u64 = 450;
    const REPLACE_AFTER: usize = 100;
    go_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The default forward (test groups shorten it): longer than the client's route poll.
    let extra = [("masterShutdownForwardMs", "35000".to_owned())];
    let mut servers = Servers::start(Setup::Group, dir.path(), "GoReplace", &extra).unwrap();
    let messages = Messages::new("GoReplaceTopic", "replace", SENDS);
    let args = messages.paced_produce_args(&servers.ns(), "100");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut producer = go_client::spawn(&args, Duration::from_secs(180)).unwrap();
    assert!(
        producer.wait_until(Duration::from_secs(90), |lines| {
            lines.iter().filter(|l| l["op"] == "sent").count() >= REPLACE_AFTER
        }),
        "the producer did not get {REPLACE_AFTER} sends through: {:?}",
        producer.lines()
    );
    let master = servers.master().unwrap();
    let ns = servers.ns();
    let group = servers.group.as_mut().unwrap();
    group
        .replace_member_online(dir.path(), &ns, &master)
        .unwrap();
    let new_master = servers.wait_for_master(Some(&master)).unwrap();
    let finished = producer.finish().unwrap();
    let output = &finished.output;
    let failures: Vec<&serde_json::Value> = output.ops("send_failed");
    eprintln!(
        "Go producer while {master} was replaced ({new_master} master after): {} sends \
         acknowledged, {} failed (first: {:?})",
        output.ops("sent").len(),
        failures.len(),
        failures.first()
    );
    let sent = check_sent(&output.ops("sent"), &messages, &servers.broker_name)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", finished.describe()));
    check_done(output, SENDS).unwrap_or_else(|e| panic!("{e:#}\n{}", finished.describe()));
    let log = SendLog {
        acked: sent.acked(&messages),
        ..SendLog::default()
    };
    let report = check_stored(&ns, &messages.topic, &log).unwrap();
    assert_eq!(report.read, SENDS as usize, "{report:?}");
}

/// Open transactions are checked back one second after they began, then every second; SQL92
/// selectors are allowed.
fn broker_settings() -> [(&'static str, String); 3] {
    [
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
        ("enablePropertyFilter", "true".to_owned()),
    ]
}

#[derive(Clone, Copy)]
struct Env<'a> {
    suite: &'a Suite,
    servers: &'a Servers,
}

impl<'a> Env<'a> {
    fn step<T>(&self, scenario: &str, run: impl FnOnce() -> Result<T>) -> Option<T> {
        self.suite.step(scenario, run)
    }

    fn ns(&self) -> String {
        self.servers.ns()
    }

    fn run(&self, args: &[String]) -> Result<Finished> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let finished = go_client::run(&args, RUN_TIMEOUT)?;
        if let Some(started) = finished.output.ops("started").first() {
            ensure!(
                started["client_version"] == go_client::RELEASE,
                "{} says it is client {}",
                finished.name,
                started["client_version"]
            );
        }
        Ok(finished)
    }

    fn admin(&self, action: &str, flags: &[&str]) -> Result<DriverOutput> {
        let mut args = strings(&["admin", action, "-n", &self.ns()]);
        args.extend(strings(flags));
        self.run(&args)?.ok()
    }

    fn produce(&self, messages: &Messages, mode: &str, flags: &[&str]) -> Result<DriverOutput> {
        let mut args = messages.produce_args(&self.ns());
        args.extend(strings(&["--mode", mode]));
        args.extend(strings(flags));
        self.run(&args)?.ok()
    }

    /// A `consume` (push) or `pull` run expecting `expect` messages.
    fn consume(
        &self,
        command: &str,
        topic: &str,
        group: &str,
        expect: usize,
        flags: &[&str],
    ) -> Result<DriverOutput> {
        let mut args = strings(&[
            command,
            "-n",
            &self.ns(),
            "-t",
            topic,
            "-g",
            group,
            "--expect",
            &expect.to_string(),
            "--timeout-secs",
            &CONSUME_TIMEOUT_SECS.to_string(),
            "--linger-ms",
            &LINGER_MS.to_string(),
        ]);
        args.extend(strings(flags));
        self.run(&args)?.ok()
    }
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

const SYNC: &str = "producer SendSync";
const ASYNC: &str = "producer SendAsync";
const BATCH: &str = "producer batch";
const ORDERED: &str = "producer ordered (hash queue selector on a sharding key)";
const TRANSACTION: &str =
    "transaction producer: commit, rollback, check-back answered commit and rollback";
const REQUEST: &str = "producer Request answered with consumer.CreateReplyMessage";
const PUSH_SQL92: &str = "push consumer with a SQL92 MessageSelector";
const DELAY: &str = "delay level messages (WithDelayTimeLevel), push consumer";
const TIMER: &str = "timer messages (TIMER_DELIVER_MS set as a property), push consumer";

fn run_scenarios(suite: &Suite, servers: &Servers) {
    let env = Env { suite, servers };
    let (sync, async_, batch, ordered) = std::thread::scope(|s| {
        let sync = s.spawn(|| {
            env.step(SYNC, || {
                send_checked(env, Messages::new("GoSync", "sync", 30), "sync")
            })
        });
        let async_ = s.spawn(|| {
            env.step(ASYNC, || {
                send_checked(env, Messages::new("GoAsync", "async", 30), "async")
            })
        });
        let batch = s.spawn(|| env.step(BATCH, || batch(env)));
        let ordered = s.spawn(|| env.step(ORDERED, || ordered(env)));
        (
            sync.join().unwrap(),
            async_.join().unwrap(),
            batch.join().unwrap(),
            ordered.join().unwrap(),
        )
    });
    std::thread::scope(|s| {
        let runs = [
            (
                "push consumer with TagA || TagB",
                "go-push-tags",
                &sync,
                "consume",
                vec!["--expr", "TagA || TagB"],
                SYNC,
            ),
            (
                "pull consumer with TagA",
                "go-pull-tag",
                &sync,
                "pull",
                vec!["--expr", "TagA"],
                SYNC,
            ),
            (
                "push consumer with *",
                "go-push-all",
                &async_,
                "consume",
                vec![],
                ASYNC,
            ),
            (
                "pull consumer with *",
                "go-pull-all",
                &batch,
                "pull",
                vec![],
                BATCH,
            ),
        ];
        for (scenario, group, produced, command, flags, needs) in runs {
            s.spawn(move || {
                let Some((messages, sent)) = produced else {
                    return env.suite.not_run(scenario, needs);
                };
                env.step(scenario, || {
                    let expression = flags.get(1).copied().unwrap_or("*");
                    let wanted = match expression {
                        "*" => messages.all(),
                        tags => messages.tagged(&tags.split(" || ").collect::<Vec<_>>()),
                    };
                    let output =
                        env.consume(command, &messages.topic, group, wanted.len(), &flags)?;
                    messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
                    Ok(())
                });
            });
        }
        s.spawn(|| {
            let Some((messages, sent)) = &sync else {
                return env.suite.not_run(PUSH_SQL92, SYNC);
            };
            env.step(PUSH_SQL92, || {
                let wanted = messages.selected_by_sql92_sample();
                ensure!(!wanted.is_empty() && wanted.len() < messages.all().len());
                let flags = ["--sql", compat::SQL92_SAMPLE];
                let output = env.consume(
                    "consume",
                    &messages.topic,
                    "go-push-sql92",
                    wanted.len(),
                    &flags,
                )?;
                messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
                Ok(())
            });
        });
        s.spawn(|| orderly(env, ordered.as_ref()));
        s.spawn(|| env.step(TIMER, || timer_messages(env)));
        s.spawn(|| env.step(DELAY, || delay_level_messages(env)));
        s.spawn(|| env.step(TRANSACTION, || transaction(env)));
        s.spawn(|| env.step(REQUEST, || request_reply(env)));
        s.spawn(|| {
            env.step("admin create-topic, delete-topic", || {
                create_and_delete(env)
            });
        });
        s.spawn(|| {
            env.step("admin topic-list", || {
                let output = env.admin("topic-list", &[])?;
                let listed = &single(&output, "topic_list")?["topics"];
                for topic in ["GoSync", "GoAsync", "GoBatch", "GoOrdered"] {
                    ensure!(
                        listed.as_array().is_some_and(|l| l.contains(&json!(topic))),
                        "{topic} not in the topic list {listed}"
                    );
                }
                Ok(())
            });
        });
    });
}

/// Request answered by another client instance of the run through CreateReplyMessage: every
/// request gets its own reply (same correlation id), pushed by the broker from the cluster's
/// reply topic.
fn request_reply(env: Env) -> Result<()> {
    let topic = "GoRequest";
    env.admin(
        "create-topic",
        &["-t", topic, "-b", &env.servers.master()?, "--queues", "2"],
    )?;
    let count = 5;
    let output = env
        .run(&strings(&[
            "request",
            "-n",
            &env.ns(),
            "-t",
            topic,
            "-c",
            &count.to_string(),
            "--group",
            "go-requester",
            // Requests sent before the replier has its queues wait for it.
            "--timeout-ms",
            "60000",
        ]))?
        .ok()?;
    compat::check_request_run(&output, topic, count)
}

/// A transaction producer: a commit, a rollback and two transactions left unknown that the
/// broker checks back (answered commit and rollback). Each check names the real topic and
/// the transaction; the topic ends up holding the two commits, once each, with the message
/// ids their sends returned.
fn transaction(env: Env) -> Result<()> {
    let topic = "GoTx";
    let output = env
        .run(&strings(&[
            "transaction",
            "-n",
            &env.ns(),
            "-t",
            topic,
            "--group",
            "go-tx-producer",
            "--timeout-secs",
            "60",
            "--linger-ms",
            "1500",
        ]))?
        .ok()?;
    compat::check_transaction_run(&output, &env.ns(), topic, false)
}

/// RocketMQ 5 timer messages from a client that predates them: the property set by hand
/// (`WithProperty("TIMER_DELIVER_MS", ...)`). Every send is acknowledged; the push consumer
/// gets each message once, stored no earlier than its deliver time.
fn timer_messages(env: Env) -> Result<()> {
    let messages = Messages::new("GoTimer", "timer", 10);
    let deliver_ms = now_ms() + 4_000;
    let deliver_prop = format!("TIMER_DELIVER_MS={deliver_ms}");
    held_back(
        env,
        &messages,
        "go-timer",
        &["--prop", &deliver_prop],
        deliver_ms,
    )
}

/// Messages at delay level 2 (`WithDelayTimeLevel`; 2 s at the compat brokers' levels,
/// [`compat::DELAY_LEVELS`]).
fn delay_level_messages(env: Env) -> Result<()> {
    let messages = Messages::new("GoDelay", "delay", 5);
    let earliest_ms = now_ms() + 2_000;
    held_back(
        env,
        &messages,
        "go-delay",
        &["--delay-level", "2"],
        earliest_ms,
    )
}

/// Sends `messages` with `flags`, then a push consumer of `group` gets each once, none
/// stored in its topic before `earliest_ms`.
fn held_back(
    env: Env,
    messages: &Messages,
    group: &str,
    flags: &[&str],
    earliest_ms: i64,
) -> Result<()> {
    let output = env.produce(messages, "sync", flags)?;
    check_done(&output, messages.count)?;
    let sent = output.ops("sent");
    ensure!(
        sent.len() == messages.count as usize && sent.iter().all(|l| l["status"] == "SEND_OK"),
        "sends: {sent:?}"
    );
    let output = env.consume(
        "consume",
        &messages.topic,
        group,
        messages.count as usize,
        &[],
    )?;
    let received = output.ops("received");
    let mut bodies = BTreeSet::new();
    for line in &received {
        let body = line["body"].as_str().unwrap_or_default().to_owned();
        ensure!(bodies.insert(body.clone()), "{body} received twice");
        let stored = line["store_timestamp"].as_i64().unwrap_or(0);
        ensure!(
            stored >= earliest_ms,
            "{body} stored at {stored}, before its time {earliest_ms}"
        );
    }
    let wanted: BTreeSet<String> = (0..messages.count).map(|seq| messages.body(seq)).collect();
    ensure!(
        bodies == wanted,
        "received {} of {} held-back messages",
        bodies.len(),
        wanted.len()
    );
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends each message on its own (`sync`, `async`), checks every send result and that each
/// acknowledged message is stored exactly once where its result said.
fn send_checked(env: Env, messages: Messages, mode: &str) -> Result<(Messages, Sent)> {
    let output = env.produce(&messages, mode, &[])?;
    let sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
    check_done(&output, messages.count)?;
    check_stored_once(env, &messages, &sent)?;
    Ok((messages, sent))
}

fn check_stored_once(env: Env, messages: &Messages, sent: &Sent) -> Result<()> {
    let log = SendLog {
        acked: sent.acked(messages),
        ..SendLog::default()
    };
    let report = check_stored(&env.ns(), &messages.topic, &log)?;
    ensure!(
        report.read == log.acked.len(),
        "{} stores {} messages, {} were acknowledged",
        messages.topic,
        report.read,
        log.acked.len()
    );
    Ok(())
}

/// One batch of 10: one send result, the messages at consecutive offsets of one queue in
/// batch order, each under its own message id.
fn batch(env: Env) -> Result<(Messages, Sent)> {
    let messages = Messages::new("GoBatch", "batch", 10);
    let output = env.produce(&messages, "batch", &[])?;
    let line = single(&output, "sent_batch")?;
    ensure!(
        line["status"] == "SEND_OK" && line["broker_name"] == env.servers.broker_name.as_str(),
        "batch send result {line}"
    );
    // v2.1.2 gives the messages of a batch no unique key (UNIQ_KEY) and reports none: the
    // send result's message id is empty, its offset message ids name the messages (the
    // broker gives each a unique key of its own, which consumers see as its message id).
    ensure!(
        line["msg_ids"] == json!([]),
        "message ids of a batch the client gave none: {line}"
    );
    let ids = line["offset_msg_ids"]
        .as_array()
        .context("no offset_msg_ids")?;
    ensure!(
        ids.len() == 10,
        "{} offset message ids for 10 messages: {line}",
        ids.len()
    );
    let queue_id = line["queue_id"].as_i64().context("no queue_id")?;
    let first = line["queue_offset"].as_i64().context("no queue_offset")?;
    let mut sent = Sent::default();
    let mut expected = Vec::new();
    for (seq, id) in (0u64..).zip(ids) {
        let offset = first + seq as i64;
        sent.by_seq.insert(
            seq,
            json!({"offset_msg_id": id, "queue_id": queue_id, "queue_offset": offset,
                   "broker_name": env.servers.broker_name}),
        );
        expected.push((queue_id as i32, offset, messages.body(seq)));
    }
    compat::check_stored_at(&env.ns(), &messages.topic, &expected)?;
    Ok((messages, sent))
}

/// Ordered sends: every message of a sharding key (seq mod 4) in one queue, in send order.
fn ordered(env: Env) -> Result<(Messages, Sent)> {
    let messages = Messages::new("GoOrdered", "ordered", 24);
    let output = env.produce(&messages, "ordered", &["--order-keys", "4"])?;
    let sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
    let mut queues_of_key: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut offsets_of_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (seq, line) in &sent.by_seq {
        let key = (seq % 4).to_string();
        ensure!(
            line["order_key"] == key.as_str(),
            "sharding key of {seq}: {line}"
        );
        queues_of_key
            .entry(key.clone())
            .or_default()
            .insert(line["queue_id"].as_i64().unwrap_or(-1));
        offsets_of_key
            .entry(key)
            .or_default()
            .push(line["queue_offset"].as_i64().unwrap_or(-1));
    }
    ensure!(
        queues_of_key.values().all(|q| q.len() == 1),
        "queues by sharding key: {queues_of_key:?} (one queue per key)"
    );
    for (key, offsets) in &offsets_of_key {
        ensure!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets of sharding key {key} in send order: {offsets:?}"
        );
    }
    check_stored_once(env, &messages, &sent)?;
    Ok((messages, sent))
}

/// An orderly push consumer gets each queue in offset order.
fn orderly(env: Env, ordered: Option<&(Messages, Sent)>) {
    let scenario = "push consumer orderly";
    let Some((messages, sent)) = ordered else {
        return env.suite.not_run(scenario, ORDERED);
    };
    env.step(scenario, || {
        let output = env.consume(
            "consume",
            &messages.topic,
            "go-orderly",
            messages.count as usize,
            &["--orderly"],
        )?;
        let arrivals =
            messages.check_received_exactly(&output.ops("received"), sent, &messages.all())?;
        let mut last: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
        for (seq, line) in arrivals {
            let queue = line["queue_id"].as_i64().unwrap_or(-1);
            let offset = line["queue_offset"].as_i64().unwrap_or(-1);
            if let Some((before, before_offset)) = last.insert(queue, (seq, offset)) {
                ensure!(
                    before_offset < offset && before < seq,
                    "queue {queue}: message {seq} (offset {offset}) came after {before} \
                     (offset {before_offset})"
                );
            }
        }
        Ok(())
    });
}

/// CreateTopic on the master: the name server routes the topic's 6 queues; DeleteTopic: the
/// topic is gone from the topic list and from every member.
fn create_and_delete(env: Env) -> Result<()> {
    let topic = "GoCreated";
    let master = env.servers.master()?;
    let output = env.admin(
        "create-topic",
        &["-t", topic, "-b", &master, "--queues", "6"],
    )?;
    let created = single(&output, "create_topic")?;
    let broker = &env.servers.broker_name;
    let wanted: Vec<String> = (0..6).map(|q| format!("{broker}:{q}")).collect();
    ensure!(
        created["queues"] == json!(wanted),
        "the queues routed after CreateTopic: {}; wanted {wanted:?}",
        created["queues"]
    );
    for addr in env.servers.member_addrs() {
        eventually(Duration::from_secs(10), || {
            ensure!(
                compat::member_topics(&addr)?.contains(topic),
                "{addr} does not hold {topic} after CreateTopic"
            );
            Ok(())
        })?;
    }
    let output = env.admin(
        "delete-topic",
        &["-t", topic, "-c", &env.servers.cluster, "-b", &master],
    )?;
    let deleted = single(&output, "delete_topic")?;
    ensure!(
        deleted["still_listed"] == false,
        "{topic} still in the topic list after DeleteTopic: {deleted}"
    );
    for addr in env.servers.member_addrs() {
        eventually(Duration::from_secs(10), || {
            ensure!(
                !compat::member_topics(&addr)?.contains(topic),
                "{addr} still holds {topic} after DeleteTopic"
            );
            Ok(())
        })?;
    }
    Ok(())
}
