//! The official Java RocketMQ remoting client, 4.9.8 and 5.5.0 (`rocketmq-client` and
//! `rocketmq-tools` from Maven Central, unmodified, driven by `compat/java`), against the real
//! `mqnamesrv` and `mqbroker`: a standalone broker, and a 3-node broker group.
//!
//! Each test starts its servers once; both client versions run every scenario against them
//! side by side, each with topics and consumer groups of its own:
//! - DefaultMQProducer: sync, async, oneway, batch, ordered (MessageQueueSelector), a delay
//!   level, tags/keys/user properties on everything, bodies over 4 KiB (compressed by the
//!   client) and of 1 MiB (compressed and not), sendMessageWithVIPChannel on (`--vip`) and
//!   off (every other scenario). Every acknowledged send is read back by this project's own
//!   consumer: exactly once, where its send result said.
//! - DefaultMQPushConsumer: concurrently with `TagA || TagB` and with a SQL92
//!   `MessageSelector.bySql` (the brokers run with `enablePropertyFilter=true`), orderly, broadcasting,
//!   consumption failures through `%RETRY%` into `%DLQ%`, two instances sharing and
//!   re-balancing the queues.
//! - DefaultLitePullConsumer: subscribe; assign with seek, pause/resume and commit.
//! - Request-reply: DefaultMQProducer.request answered with MessageUtil.createReplyMessage.
//! - DefaultMQAdminExt: examineTopicRouteInfo, examineBrokerClusterInfo, examineConsumeStats,
//!   examineTopicStats, fetchAllTopicList, queryMessage by key, viewMessage by id (offset
//!   message id and message id), min/max offsets and earliestMsgStoreTime,
//!   resetOffsetByTimestamp, examineConsumerConnectionInfo, getConsumerRunningInfo,
//!   getConsumeStatus, consumeMessageDirectly, wipeWritePermOfBroker/addWritePermOfBroker,
//!   getBrokerConfig/updateBrokerConfig, createAndUpdateSubscriptionGroupConfig and
//!   deleteSubscriptionGroup, cloneGroupOffset, viewBrokerStatsData, the system topic list,
//!   deleteTopic.
//! - TransactionMQProducer: a commit, a rollback, and two transactions left unknown that the
//!   broker checks back (answered commit and rollback): the commits stored once each, each
//!   check once, nothing else.
//! - In the group test, besides: kill -9 of the group's master while a producer and a push
//!   consumer of each version run (a group of its own): no acknowledged send is lost, the
//!   consumer gets every one, and its group goes on from the offsets it committed.
//!
//! What each consumer receives is checked as a user sees it: body (length, CRC-32, text),
//! tag, key, user properties, message id, queue and offset. A failing scenario does not stop
//! the others; the test fails at the end naming every failed scenario (client version,
//! set-up, scenario, what differed). The jars are built by `scripts/setup-compat-java`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use tests::checker::{Acked, SendLog};
use tests::compat::{
    self, check_done, check_sent, check_stored, eventually, single, Messages, Sent, Servers, Setup,
};
use tests::driver::{DriverOutput, Finished};
use tests::java_client::{self, Version};
use tests::scenario::Suite;

/// The most one driver run may take before it is killed (its own timeouts are shorter).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
/// What a consumer run is given to see all its messages.
const CONSUME_TIMEOUT_SECS: u64 = 60;
/// How long a consumer keeps listening after its last expected message, so a duplicate or a
/// message its expression should have filtered out still shows up.
const LINGER_MS: u64 = 1000;
/// Driver runs at once per test (two tests run side by side on two cores; more makes the
/// clients' own 3 s request timeouts fire on a loaded machine).
const AT_ONCE: usize = 2;
const MIB: usize = 1024 * 1024;

/// Broker settings every test adds: transactions left unknown are checked back a second
/// after they were born, every second.
fn quick_checks() -> [(&'static str, String); 4] {
    [
        ("transactionTimeOut", "1000".to_owned()),
        ("transactionCheckInterval", "1000".to_owned()),
        ("recallMessageEnable", "true".to_owned()),
        ("timerPrecisionMs", "200".to_owned()),
    ]
}

#[test]
fn java_clients_against_a_standalone_broker() {
    java_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let servers = Servers::start(
        Setup::Standalone,
        dir.path(),
        "broker-java",
        &[
            [
                ("maxMessageSize", (4 * MIB).to_string()),
                ("enablePropertyFilter", "true".to_string()),
            ]
            .as_slice(),
            &quick_checks(),
        ]
        .concat(),
    )
    .unwrap();
    let suite = Suite::new("Java clients 4.9.8 and 5.5.0 / standalone broker", AT_ONCE);
    run_scenarios(&suite, &servers);
    suite.finish();
}

#[test]
fn java_clients_against_a_broker_group() {
    java_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Room for a 1 MiB body with its properties (the group harness allows 1 MiB).
    let extra = [
        [
            ("maxMessageSize", (2 * MIB).to_string()),
            ("enablePropertyFilter", "true".to_string()),
        ]
        .as_slice(),
        &quick_checks(),
    ]
    .concat();
    let servers = Servers::start(Setup::Group, dir.path(), "JavaGroup", &extra).unwrap();
    // The kill scenario gets a group (and name server) of its own, so it runs alongside the
    // others without disturbing them.
    let kill_dir = tempfile::tempdir().unwrap();
    let mut kill_servers =
        Servers::start(Setup::Group, kill_dir.path(), "JavaKillGroup", &extra).unwrap();
    // As does replacing a member online, after it (a group at a time under fault load).
    // Its master forwards sends for longer than the clients' 30 s route poll once it is
    // demoted and stopped, as in production.
    let replace_dir = tempfile::tempdir().unwrap();
    let replace_extra = [
        extra.as_slice(),
        &[("masterShutdownForwardMs", "35000".to_string())],
    ]
    .concat();
    let suite = Suite::new(
        "Java clients 4.9.8 and 5.5.0 / 3-node broker group",
        AT_ONCE,
    );
    std::thread::scope(|s| {
        let suite = &suite;
        let kill_servers = &mut kill_servers;
        let replace_dir = replace_dir.path();
        s.spawn(move || {
            group_fault_under_load(suite, kill_servers, GroupFault::KillMaster, kill_dir.path());
            match Servers::start(
                Setup::Group,
                replace_dir,
                "JavaReplaceGroup",
                &replace_extra,
            ) {
                Ok(mut servers) => group_fault_under_load(
                    suite,
                    &mut servers,
                    GroupFault::ReplaceMaster,
                    replace_dir,
                ),
                Err(e) => {
                    suite.step(
                        "the master replaced online: start the servers",
                        || -> Result<()> { Err(e) },
                    );
                }
            }
        });
        run_scenarios(suite, &servers);
    });
    suite.finish();
}

/// Every scenario but the kill: sends first (both versions at once), then everything that
/// reads what they sent, then what changes the whole broker (write permission), one by one.
fn run_scenarios(suite: &Suite, servers: &Servers) {
    let produced: Vec<(Env, Produced)> = std::thread::scope(|s| {
        let handles: Vec<_> = Version::ALL
            .map(|v| {
                let env = Env { suite, servers, v };
                s.spawn(move || (env, send_scenarios(env)))
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    std::thread::scope(|s| {
        for (env, produced) in &produced {
            read_scenarios(s, *env, produced);
        }
    });
    for (env, produced) in &produced {
        write_permission(*env, produced);
    }
}

/// One client version's view of the suite and servers.
#[derive(Clone, Copy)]
struct Env<'a> {
    suite: &'a Suite,
    servers: &'a Servers,
    v: Version,
}

impl<'a> Env<'a> {
    fn step<T>(&self, scenario: &str, run: impl FnOnce() -> Result<T>) -> Option<T> {
        self.suite.step(&format!("{} / {scenario}", self.v), run)
    }

    fn not_run(&self, scenario: &str, because: &str) {
        self.suite.not_run(
            &format!("{} / {scenario}", self.v),
            &format!("{} / {because}", self.v),
        );
    }

    fn ns(&self) -> String {
        self.servers.ns()
    }

    /// This version's name for a topic.
    fn topic(&self, name: &str) -> String {
        format!("J{}{name}", self.v.major())
    }

    /// This version's name for a consumer group.
    fn group(&self, name: &str) -> String {
        format!("j{}-{name}", self.v.major())
    }

    /// Runs the driver to its end, after checking it is the client version asked for.
    fn run(&self, args: &[String]) -> Result<Finished> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let finished = java_client::run(self.v, &args, RUN_TIMEOUT)?;
        if let Some(started) = finished.output.ops("started").first() {
            ensure!(
                started["client_version"] == self.v.version_desc(),
                "{} says it is client {}",
                finished.name,
                started["client_version"]
            );
        }
        Ok(finished)
    }

    fn run_ok(&self, args: &[String]) -> Result<DriverOutput> {
        self.run(args)?.ok()
    }

    fn admin_run(&self, action: &str, flags: &[&str]) -> Result<Finished> {
        let mut args = strings(&["admin", action, "-n", &self.ns()]);
        args.extend(strings(flags));
        self.run(&args)
    }

    fn admin(&self, action: &str, flags: &[&str]) -> Result<DriverOutput> {
        self.admin_run(action, flags)?.ok()
    }

    fn produce(&self, messages: &Messages, mode: &str, flags: &[&str]) -> Result<Finished> {
        let mut args = messages.produce_args(&self.ns());
        args.extend(strings(&["--mode", mode]));
        args.extend(strings(flags));
        self.run(&args)
    }

    /// A push consumer run (`consume`) expecting `expect` messages.
    fn consume(
        &self,
        topic: &str,
        group: &str,
        expect: usize,
        flags: &[&str],
    ) -> Result<DriverOutput> {
        let mut args = strings(&[
            "consume",
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
        self.run_ok(&args)
    }
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// What the send scenarios left for the others: each run's messages and send results.
#[derive(Default)]
struct Produced {
    sync: Option<(Messages, Sent)>,
    async_: Option<(Messages, Sent)>,
    batch: Option<(Messages, Sent)>,
    ordered: Option<(Messages, Sent)>,
    delayed: Option<(Messages, Sent)>,
    big: Option<Vec<(Messages, Sent)>>,
    vip: Option<(Messages, Sent)>,
    doomed: Option<(Messages, Sent)>,
}

const SYNC: &str = "DefaultMQProducer sync send";
const ASYNC: &str = "DefaultMQProducer async send";
const BATCH: &str = "DefaultMQProducer batch send";
const ORDERED: &str = "DefaultMQProducer ordered send (MessageQueueSelector)";
const DELAYED: &str = "DefaultMQProducer send with delay level 2";
const BIG: &str = "DefaultMQProducer bodies of 5000 B and 1 MiB, compressed and not";
const VIP: &str = "DefaultMQProducer sendMessageWithVIPChannel on";
const TRANSACTION: &str =
    "TransactionMQProducer: commit, rollback, check-back answered commit and rollback";

fn send_scenarios(env: Env) -> Produced {
    std::thread::scope(|s| {
        let sync = s.spawn(move || {
            env.step(SYNC, || {
                send_one_by_one(env, Messages::new(&env.topic("Sync"), "sync", 30), &[])
            })
        });
        let async_ = s.spawn(move || {
            env.step(ASYNC, || {
                let messages = Messages::new(&env.topic("Async"), "async", 30);
                send_checked(env, messages, "async", &[])
            })
        });
        let oneway = s.spawn(move || env.step("DefaultMQProducer oneway send", || oneway(env)));
        let batch = s.spawn(move || env.step(BATCH, || batch(env)));
        let ordered = s.spawn(move || env.step(ORDERED, || ordered(env)));
        let delayed = s.spawn(move || env.step(DELAYED, || delayed(env)));
        let big = s.spawn(move || env.step(BIG, || big(env)));
        let vip = s.spawn(move || {
            env.step(VIP, || {
                send_one_by_one(env, Messages::new(&env.topic("Vip"), "vip", 10), &["--vip"])
            })
        });
        let doomed = s.spawn(move || {
            env.step("DefaultMQProducer sync send (a topic to delete)", || {
                send_one_by_one(env, Messages::new(&env.topic("Doomed"), "doomed", 3), &[])
            })
        });
        let transaction = s.spawn(move || env.step(TRANSACTION, || transaction(env)));
        oneway.join().unwrap();
        transaction.join().unwrap();
        Produced {
            sync: sync.join().unwrap(),
            async_: async_.join().unwrap(),
            batch: batch.join().unwrap(),
            ordered: ordered.join().unwrap(),
            delayed: delayed.join().unwrap(),
            big: big.join().unwrap(),
            vip: vip.join().unwrap(),
            doomed: doomed.join().unwrap(),
        }
    })
}

fn send_one_by_one(env: Env, messages: Messages, flags: &[&str]) -> Result<(Messages, Sent)> {
    send_checked(env, messages, "sync", flags)
}

/// Sends `messages` one send each (`sync`, `async`), checks every send result and that each
/// acknowledged message is stored exactly once where its result said.
fn send_checked(
    env: Env,
    messages: Messages,
    mode: &str,
    flags: &[&str],
) -> Result<(Messages, Sent)> {
    let output = env.produce(&messages, mode, flags)?.ok()?;
    let sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
    check_done(&output, messages.count)?;
    check_stored_once(env, &[(&messages, &sent)])?;
    Ok((messages, sent))
}

/// Every acknowledged message of the runs stored once, where its send result said, and
/// nothing else in their topic.
fn check_stored_once(env: Env, runs: &[(&Messages, &Sent)]) -> Result<()> {
    let mut log = SendLog::default();
    for (messages, sent) in runs {
        log.acked.extend(sent.acked(messages));
    }
    let topic = &runs[0].0.topic;
    let report = check_stored(&env.ns(), topic, &log)?;
    ensure!(
        report.read == log.acked.len(),
        "{topic} stores {} messages, {} were acknowledged",
        report.read,
        log.acked.len()
    );
    Ok(())
}

/// Four transactions (the driver's `transaction`): committed, rolled back, and two left
/// unknown that the broker checks back, answered commit and rollback. Each unknown one is
/// checked once (its answer ends it), the two ended ones never; the topic then holds the two
/// committed messages once each, under the ids their sends reported, and nothing else.
fn transaction(env: Env) -> Result<()> {
    let topic = env.topic("Tx");
    let output = env.run_ok(&strings(&[
        "transaction",
        "-n",
        &env.ns(),
        "-t",
        &topic,
        "--group",
        &env.group("tx-producer"),
        "--timeout-secs",
        "60",
        "--linger-ms",
        "1500",
    ]))?;
    compat::check_transaction_run(&output, &env.ns(), &topic, true)
}

/// Oneway sends get no result: each message must still be stored once, under the message id
/// the client gave it.
fn oneway(env: Env) -> Result<()> {
    let messages = Messages::new(&env.topic("Oneway"), "oneway", 20);
    let output = env.produce(&messages, "oneway", &[])?.ok()?;
    check_done(&output, messages.count)?;
    let ids: BTreeMap<String, String> = output
        .ops("sent_oneway")
        .iter()
        .map(|l| {
            let seq = l["seq"].as_u64().unwrap_or(u64::MAX);
            (
                messages.body(seq),
                l["msg_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    ensure!(ids.len() == 20, "{} sent_oneway lines", ids.len());
    eventually(Duration::from_secs(10), || {
        let queues = compat::stored(&env.ns(), &messages.topic)?;
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for read in queues.values().flatten() {
            ensure!(
                found
                    .insert(read.body.clone(), read.msg_id.clone())
                    .is_none(),
                "{} stored twice",
                read.body
            );
        }
        ensure!(
            found == ids,
            "stored (body -> message id) {found:?}, sent {ids:?}"
        );
        Ok(())
    })
}

/// One batch of 10: one send result for all, the messages at consecutive offsets of one
/// queue in batch order, each under its own message id.
fn batch(env: Env) -> Result<(Messages, Sent)> {
    let messages = Messages::new(&env.topic("Batch"), "batch", 10);
    let output = env.produce(&messages, "batch", &[])?.ok()?;
    let line = single(&output, "sent_batch")?;
    ensure!(
        line["status"] == "SEND_OK" && line["broker_name"] == env.servers.broker_name.as_str(),
        "batch send result {line}"
    );
    let ids = line["msg_ids"].as_array().context("no msg_ids")?;
    ensure!(
        ids.len() == 10,
        "{} message ids for 10 messages: {line}",
        ids.len()
    );
    let queue_id = line["queue_id"].as_i64().context("no queue_id")?;
    let first = line["queue_offset"].as_i64().context("no queue_offset")?;
    let mut sent = Sent::default();
    for (seq, id) in (0u64..).zip(ids) {
        sent.by_seq.insert(
            seq,
            json!({"msg_id": id, "queue_id": queue_id, "queue_offset": first + seq as i64,
                   "broker_name": env.servers.broker_name}),
        );
    }
    check_stored_once(env, &[(&messages, &sent)])?;
    Ok((messages, sent))
}

/// Ordered sends: the selector puts every message of an order key (seq mod 3) in one queue,
/// different keys in different queues, in send order. With 3 keys and 4 queues, queue 3
/// stays empty (the offsets scenario wants one).
fn ordered(env: Env) -> Result<(Messages, Sent)> {
    let messages = Messages::new(&env.topic("Ordered"), "ordered", 30);
    let output = env
        .produce(&messages, "ordered", &["--order-keys", "3"])?
        .ok()?;
    let sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
    let mut queue_of_key: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
    let mut offsets_of_key: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for (seq, line) in &sent.by_seq {
        ensure!(line["order_key"] == seq % 3, "order key of {seq}: {line}");
        queue_of_key
            .entry(seq % 3)
            .or_default()
            .insert(line["queue_id"].as_i64().unwrap_or(-1));
        offsets_of_key
            .entry(seq % 3)
            .or_default()
            .push(line["queue_offset"].as_i64().unwrap_or(-1));
    }
    let queues: BTreeSet<i64> = queue_of_key.values().flatten().copied().collect();
    ensure!(
        queue_of_key.values().all(|q| q.len() == 1) && queues.len() == 3,
        "queues by order key: {queue_of_key:?} (one queue per key, a different one each)"
    );
    for (key, offsets) in &offsets_of_key {
        ensure!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets of order key {key} in send order: {offsets:?}"
        );
    }
    check_stored_once(env, &[(&messages, &sent)])?;
    Ok((messages, sent))
}

/// Sends with delay level 2 (2 s on these brokers): acknowledged at once; consumers see them
/// later (the delayed-consumer scenario).
fn delayed(env: Env) -> Result<(Messages, Sent)> {
    let messages = Messages::new(&env.topic("Delayed"), "delayed", 6);
    let output = env
        .produce(&messages, "sync", &["--delay-level", "2"])?
        .ok()?;
    let mut sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
    sent.delayed = true;
    Ok((messages, sent))
}

/// 5000-byte bodies (over the client's 4 KiB threshold: compressed), 1 MiB bodies
/// (compressed) and 1 MiB - 1 B bodies with compression off (one byte short so their bodies
/// differ from the compressed run's), all in one topic.
fn big(env: Env) -> Result<Vec<(Messages, Sent)>> {
    let topic = env.topic("Big");
    let runs = [
        (
            Messages::new(&topic, "big5k", 3).with_body_bytes(5000),
            false,
        ),
        (
            Messages::new(&topic, "big1m", 2).with_body_bytes(MIB),
            false,
        ),
        (
            Messages::new(&topic, "big1mraw", 2).with_body_bytes(MIB - 1),
            true,
        ),
    ];
    let mut sent_runs = Vec::new();
    for (messages, raw) in runs {
        let flags: &[&str] = if raw { &["--no-compress"] } else { &[] };
        let output = env.produce(&messages, "sync", flags)?.ok()?;
        let compress_over = single(&output, "started")?["compress_over"].clone();
        ensure!(
            raw || compress_over == 4096,
            "the client compresses bodies over {compress_over} B, not 4 KiB"
        );
        let sent = check_sent(&output.ops("sent"), &messages, &env.servers.broker_name)?;
        sent_runs.push((messages, sent));
    }
    let runs: Vec<(&Messages, &Sent)> = sent_runs.iter().map(|(m, s)| (m, s)).collect();
    check_stored_once(env, &runs)?;
    Ok(sent_runs)
}

/// The scenarios that read what was sent; each a thread of `scope`.
fn read_scenarios<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    env: Env<'env>,
    produced: &'env Produced,
) {
    let p = produced;
    match &p.sync {
        Some(sync) => {
            scope.spawn(move || tags_then_offsets(env, sync));
            scope.spawn(move || sql92_selector(env, sync));
            scope.spawn(move || lookups(env, sync, p));
            scope.spawn(move || lite_pull_assign(env, sync));
            scope.spawn(move || rebalance(env, sync));
            scope.spawn(move || reset_offset(env, sync));
            scope.spawn(move || consumer_info(env, sync));
        }
        None => {
            for scenario in [
                TAGS,
                SQL92,
                "DefaultMQAdminExt queryMessage by key",
                "DefaultLitePullConsumer assign, seek, pause/resume, commit",
                REBALANCE,
                RESET,
                CONNECTION,
            ] {
                env.not_run(scenario, SYNC);
            }
        }
    }
    match &p.async_ {
        Some(async_) => {
            scope.spawn(move || lite_pull_subscribe(env, async_));
            scope.spawn(move || retry_then_dead_letters(env, async_));
        }
        None => {
            env.not_run("DefaultLitePullConsumer subscribe", ASYNC);
            env.not_run(DLQ, ASYNC);
        }
    }
    scope.spawn(move || broadcast(env, p.batch.as_ref()));
    scope.spawn(move || orderly(env, p.ordered.as_ref()));
    scope.spawn(move || delayed_arrive(env, p.delayed.as_ref()));
    scope.spawn(move || big_bodies(env, p.big.as_ref()));
    scope.spawn(move || vip_consumer(env, p.vip.as_ref()));
    scope.spawn(move || subscription_groups(env));
    scope.spawn(move || broker_config(env));
    scope.spawn(move || request_reply(env));
    scope.spawn(move || timer_messages(env));
    scope.spawn(move || pop_consumer(env));
    scope.spawn(move || pop_notification(env));
    scope.spawn(move || system_topics_and_stats(env, p.sync.as_ref()));
    scope.spawn(move || delete_topic(env, p.doomed.as_ref()));
}

const TAGS: &str = "DefaultMQPushConsumer concurrently with TagA || TagB";
const SQL92: &str = "DefaultMQPushConsumer with MessageSelector.bySql";
const REBALANCE: &str = "DefaultMQPushConsumer two instances share the queues and re-balance";
const RESET: &str = "DefaultMQAdminExt resetOffsetByTimestamp with the consumer online";
const CONNECTION: &str = "DefaultMQAdminExt examineConsumerConnectionInfo";
const DLQ: &str = "DefaultMQPushConsumer refusals through %RETRY% into %DLQ%";

/// RocketMQ 5 timer messages (5.5.0's `setDeliverTimeMs`; 4.9.8 sets the property itself):
/// each arrives once, never before its deliver time; 5.5.0 recalls one with
/// `recallMessage` and it never arrives.
fn timer_messages(env: Env) {
    let recall = env.v == Version::V5;
    let name = if recall {
        "DefaultMQProducer timer messages (setDeliverTimeMs) and recallMessage"
    } else {
        "DefaultMQProducer timer messages (TIMER_DELIVER_MS)"
    };
    env.step(name, || {
        let topic = env.topic("Timer");
        env.admin("create-topic", &["-t", &topic, "--queues", "2"])?;
        let count = 6usize;
        let mut args = strings(&[
            "timer",
            "-n",
            &env.ns(),
            "-t",
            &topic,
            "-c",
            &count.to_string(),
            "--group",
            &env.group("timer"),
            "--first-ms",
            "2000",
            "--step-ms",
            "300",
        ]);
        if recall {
            args.push("--recall".to_owned());
        }
        let output = env.run_ok(&args)?;
        let sent = output.ops("sent");
        ensure!(
            sent.len() == count + usize::from(recall),
            "{} sent",
            sent.len()
        );
        if recall {
            ensure!(
                sent.iter().all(|s| s["recall_handle"].is_string()),
                "5.5.0 send results without a recall handle: {sent:?}"
            );
            let recalled = single(&output, "recalled")?;
            ensure!(recalled["msg_id"].is_string(), "recall failed: {recalled}");
        }
        let received = output.ops("received");
        for line in &sent {
            let body = line["body"].as_str().unwrap_or_default();
            let copies: Vec<_> = received.iter().filter(|r| r["body"] == body).collect();
            if body == "recalled" {
                ensure!(copies.is_empty(), "the recalled message arrived");
                continue;
            }
            ensure!(copies.len() == 1, "{body} arrived {} times", copies.len());
            let deliver = line["deliver_ms"].as_i64().unwrap_or(i64::MAX);
            let stored = copies[0]["store_ms"].as_i64().unwrap_or(0);
            ensure!(
                stored >= deliver,
                "{body} stored at {stored}, before its deliver time {deliver}"
            );
        }
        Ok(())
    });
}

/// RocketMQ 5's POP consumption over remoting (5.5.0; 4.9.8 has none): with the group's
/// mode set to POP for the topic (`setMessageRequestMode`, what `mqadmin setConsumeMode`
/// sends), a push consumer that leaves rebalancing to the broker pops every message once
/// and acknowledges it; a delivery it refuses (changeInvisibleTime) comes back once, from
/// the group's pop retry topic, with its delivery count raised.
fn pop_consumer(env: Env) {
    if env.v != Version::V5 {
        return;
    }
    env.step(
        "DefaultMQPushConsumer in POP mode: pop and ack, a refused message comes back",
        || {
            let group = env.group("pop");
            env.admin("create-group", &["-g", &group])?;
            let pop_mode = |topic: &str| -> Result<()> {
                env.admin("create-topic", &["-t", topic, "--queues", "4"])?;
                env.admin("set-consume-mode", &["-t", topic, "-g", &group, "--mode", "POP"])?;
                Ok(())
            };
            let topic = env.topic("Pop");
            pop_mode(&topic)?;
            let (messages, sent) =
                send_one_by_one(env, Messages::new(&topic, "pop", 20), &[])?;
            let output = env.consume(&topic, &group, 20, &["--pop"])?;
            let received = output.ops("received");
            messages.check_received_exactly(&received, &sent, &messages.all())?;
            ensure!(
                received
                    .iter()
                    .all(|line| line["sys_properties"]["POP_CK"].is_string()),
                "messages arrived without a receipt handle (not popped): {:?}",
                received.first()
            );

            let topic = env.topic("PopRefused");
            pop_mode(&topic)?;
            let (messages, sent) =
                send_one_by_one(env, Messages::new(&topic, "pop-refused", 10), &[])?;
            let output = env.consume(&topic, &group, 10, &["--pop", "--fail-first", "1"])?;
            let mut refused = BTreeMap::new();
            for line in output.ops("refused") {
                let seq = messages.check_received(line, &sent)?;
                *refused.entry(seq).or_insert(0) += 1;
            }
            let mut accepted = BTreeMap::new();
            for line in output.ops("received") {
                let seq = messages.check_received(line, &sent)?;
                ensure!(
                    line["reconsume_times"] == 1,
                    "message {seq} accepted with reconsume times {}, wanted 1: {line}",
                    line["reconsume_times"]
                );
                let handle = line["sys_properties"]["POP_CK"].as_str().unwrap_or("");
                ensure!(
                    handle.split(' ').nth(4) == Some("1"),
                    "message {seq} came back with receipt `{handle}`, not from the pop retry topic"
                );
                *accepted.entry(seq).or_insert(0) += 1;
            }
            let once: BTreeMap<u64, i32> = messages.all().into_iter().map(|s| (s, 1)).collect();
            ensure!(
                refused == once && accepted == once,
                "each message refused once and accepted once; refused {refused:?}, accepted {accepted:?}"
            );
            Ok(())
        },
    );
}

/// RocketMQ 5's NOTIFICATION and POLLING_INFO over remoting (5.5.0's `MQClientAPIExt`;
/// 4.9.8 has neither): a notification on an empty topic answers no message, after its poll
/// time when it has one; one waiting when a message is sent answers that there is one
/// before its poll time ends; a push consumer in POP mode waiting on a topic counts in
/// POLLING_INFO; a topic that does not exist, or a queue past the topic's, is refused
/// with RocketMQ's codes.
fn pop_notification(env: Env) {
    if env.v != Version::V5 {
        return;
    }
    env.step(
        "MQClientAPIExt notification (long polling) and POLLING_INFO",
        || {
            let group = env.group("notify");
            env.admin("create-group", &["-g", &group])?;
            let topic = env.topic("Notify");
            env.admin("create-topic", &["-t", &topic, "--queues", "2"])?;
            let broker = env.servers.master()?;
            let notify_on = |topic: &str, flags: &[&str]| -> Result<Finished> {
                let mut args = strings(&["notify", "-b", &broker, "-t", topic, "--group", &group]);
                args.extend(strings(flags));
                env.run(&args)
            };
            let notify = |flags: &[&str]| notify_on(&topic, flags);
            let notified = |finished: &Finished| -> Result<(bool, i64)> {
                let line = compat::single(&finished.output, "notified")
                    .with_context(|| finished.describe())?;
                Ok((
                    line["has_msg"].as_bool().unwrap_or_default(),
                    line["waited_ms"].as_i64().unwrap_or_default(),
                ))
            };
            let (has_msg, _) = notified(&notify(&[])?)?;
            ensure!(!has_msg, "an empty topic has a message to pop");
            let (has_msg, waited_ms) = notified(&notify(&["--poll-ms", "1500"])?)?;
            ensure!(
                !has_msg && waited_ms >= 1000,
                "an empty topic: has_msg {has_msg} after {waited_ms} ms of a 1.5 s poll"
            );

            const POLL_MS: i64 = 30_000;
            let args = strings(&[
                "notify", "-b", &broker, "-t", &topic, "--group", &group, "--poll-ms",
                &POLL_MS.to_string(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut waiting = java_client::spawn(env.v, &args, RUN_TIMEOUT)?;
            ensure!(
                waiting.wait_until(Duration::from_secs(30), |lines| {
                    lines.iter().any(|l| l["op"] == "started")
                }),
                "the notification never started"
            );
            // Room for the request to reach the broker and wait there.
            std::thread::sleep(Duration::from_secs(2));
            send_one_by_one(env, Messages::new(&topic, "notify", 1), &[])?;
            let (has_msg, waited_ms) = notified(&waiting.finish()?)?;
            ensure!(
                has_msg && waited_ms < POLL_MS,
                "a message sent during the wait: has_msg {has_msg} after {waited_ms} ms"
            );

            let refused = |topic: &str, flags: &[&str]| -> Result<i64> {
                let finished = notify_on(topic, flags)?;
                let line = compat::single(&finished.output, "failed")
                    .with_context(|| finished.describe())?;
                Ok(line["response_code"].as_i64().unwrap_or_default())
            };
            let code = refused(&topic, &["--queue", "9"])?;
            ensure!(code == 1, "a queue past the topic's: code {code}, wanted SYSTEM_ERROR (1)");
            let code = refused("NoSuchTopicToNotify", &[])?;
            ensure!(code == 17, "a topic that does not exist: code {code}, wanted TOPIC_NOT_EXIST (17)");
            let code = refused(&topic, &["--polling-info", "--queue", "9"])?;
            ensure!(
                code == 29,
                "POLLING_INFO of a queue past the topic's: code {code}, wanted INVALID_PARAMETER (29)"
            );

            // A push consumer in POP mode, waiting on an empty topic, counts as polling.
            let pop_topic = env.topic("NotifyPop");
            env.admin("create-topic", &["-t", &pop_topic, "--queues", "1"])?;
            env.admin("set-consume-mode", &["-t", &pop_topic, "-g", &group, "--mode", "POP"])?;
            let args = strings(&[
                "consume", "-n", &env.ns(), "-t", &pop_topic, "-g", &group, "--expect", "1",
                "--timeout-secs", "60", "--pop",
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut consumer = java_client::spawn(env.v, &args, RUN_TIMEOUT)?;
            let polling = compat::eventually(Duration::from_secs(30), || {
                let mut total = 0;
                for queue in ["-1", "0"] {
                    let finished = notify_on(&pop_topic, &["--polling-info", "--queue", queue])?;
                    let line = compat::single(&finished.output, "polling_info")
                        .with_context(|| finished.describe())?;
                    total += line["polling_num"].as_i64().unwrap_or_default();
                }
                ensure!(total >= 1, "no pop of the consumer is waiting");
                Ok(total)
            });
            send_one_by_one(env, Messages::new(&pop_topic, "notify-pop", 1), &[])?;
            ensure!(
                consumer.wait_until(Duration::from_secs(60), |lines| {
                    lines.iter().any(|l| l["op"] == "received")
                }),
                "the POP consumer did not receive the message"
            );
            drop(consumer);
            polling?;
            Ok(())
        },
    );
}

/// DefaultMQProducer.request answered by another client instance through
/// MessageUtil.createReplyMessage: every request gets its own reply (same correlation id),
/// pushed by the broker from the cluster's reply topic.
fn request_reply(env: Env) {
    env.step(
        "DefaultMQProducer request / MessageUtil.createReplyMessage",
        || {
            let topic = env.topic("Request");
            env.admin("create-topic", &["-t", &topic, "--queues", "2"])?;
            let count = 5;
            let output = env.run_ok(&strings(&[
                "request",
                "-n",
                &env.ns(),
                "-t",
                &topic,
                "-c",
                &count.to_string(),
                "--group",
                &env.group("requester"),
                // The responder is a push consumer: before pulls newer than a registered
                // `*` were served, 5.5.0's lost heartbeat race (apache/rocketmq#3434) kept
                // it idle for 30 s in a group. The scenario checks request-reply, not
                // latency, so the wait stays generous.
                "--timeout-ms",
                "60000",
            ]))?;
            compat::check_request_run(&output, &topic, count)
        },
    );
}

/// A push consumer subscribed with `MessageSelector.bySql` (the client first asks each broker
/// with CHECK_CLIENT_CONFIG, then its heartbeats register the expression) gets exactly the
/// messages whose tag and user property `seq` the expression selects.
fn sql92_selector(env: Env, (messages, sent): &(Messages, Sent)) {
    env.step(SQL92, || {
        let wanted = messages.selected_by_sql92_sample();
        ensure!(!wanted.is_empty() && wanted.len() < messages.all().len());
        let output = env.consume(
            &messages.topic,
            &env.group("sql92"),
            wanted.len(),
            &["--sql", compat::SQL92_SAMPLE],
        )?;
        messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
        Ok(())
    });
}

/// A concurrent push consumer with `TagA || TagB` gets exactly those messages; then its
/// group's progress as examineConsumeStats reports it, and cloneGroupOffset of it.
fn tags_then_offsets(env: Env, (messages, sent): &(Messages, Sent)) {
    let group = env.group("tags");
    let consumed = env.step(TAGS, || {
        let wanted = messages.tagged(&["TagA", "TagB"]);
        let output = env.consume(
            &messages.topic,
            &group,
            wanted.len(),
            &["--expr", "TagA || TagB"],
        )?;
        messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
        Ok(())
    });
    if consumed.is_none() {
        env.not_run("DefaultMQAdminExt examineConsumeStats", TAGS);
        env.not_run("DefaultMQAdminExt cloneGroupOffset", TAGS);
        return;
    }
    let per_queue = sent.per_queue();
    // The offset after the last message of each queue the consumer took: its committed
    // offset is at least that. It reaches the queue's end only when a pull past messages
    // the expression filters out came back before the consumer stopped (a long poll holds
    // such a pull up to 15 s), as with RocketMQ's brokers.
    let consumed_to: BTreeMap<i64, i64> = sent
        .by_seq
        .iter()
        .filter(|(seq, _)| matches!(messages.tag(**seq), Some("TagA" | "TagB")))
        .fold(BTreeMap::new(), |mut to, (_, line)| {
            let queue = line["queue_id"].as_i64().unwrap_or(-1);
            let next = line["queue_offset"].as_i64().unwrap_or(-1) + 1;
            let entry = to.entry(queue).or_insert(0);
            *entry = (*entry).max(next);
            to
        });
    let stats = env.step("DefaultMQAdminExt examineConsumeStats", || {
        // The consumer commits its offsets as it shuts down (oneway): allow a moment.
        eventually(Duration::from_secs(10), || {
            let output = env.admin("consume-stats", &["-g", &group, "-t", &messages.topic])?;
            let stats = single(&output, "consume_stats")?;
            let mut offsets = BTreeMap::new();
            let mut lag = 0;
            for queue in stats["queues"].as_array().context("no queues")? {
                let broker = queue["broker_offset"].as_i64().unwrap_or(-1);
                let consumer = queue["consumer_offset"].as_i64().unwrap_or(-1);
                lag += broker - consumer;
                if queue["topic"] == messages.topic.as_str() {
                    offsets.insert(queue["queue_id"].as_i64().unwrap_or(-1), (broker, consumer));
                }
            }
            ensure!(
                stats["diff_total"] == lag,
                "diff total {} where the queues add up to {lag}",
                stats["diff_total"]
            );
            let queues: BTreeSet<i64> = offsets.keys().copied().collect();
            ensure!(
                queues == (0..4).collect(),
                "consume stats of queues {queues:?} of {}",
                messages.topic
            );
            for (queue, (broker, consumer)) in &offsets {
                let count = per_queue.get(queue).copied().unwrap_or(0);
                let least = consumed_to.get(queue).copied().unwrap_or(0);
                ensure!(
                    *broker == count && (least..=count).contains(consumer),
                    "queue {queue}: broker offset {broker}, consumer offset {consumer}; wanted \
                     {count} and {least}..={count} (the consumer took messages up to offset \
                     {least})"
                );
            }
            Ok(offsets)
        })
    });
    let Some(src_offsets) = stats else {
        return env.not_run(
            "DefaultMQAdminExt cloneGroupOffset",
            "DefaultMQAdminExt examineConsumeStats",
        );
    };
    env.step("DefaultMQAdminExt cloneGroupOffset", || {
        let clone = env.group("tags-clone");
        let output = env.admin(
            "clone-offset",
            &["--src", &group, "--dest", &clone, "-t", &messages.topic],
        )?;
        single(&output, "clone_offset")?;
        let master = env.servers.master()?;
        let mut cloned = BTreeMap::new();
        for queue_id in src_offsets.keys() {
            cloned.insert(
                *queue_id,
                compat::committed_offset(&master, &clone, &messages.topic, *queue_id as i32)?,
            );
        }
        let wanted: BTreeMap<i64, Option<i64>> = src_offsets
            .iter()
            .map(|(q, (_, consumer))| (*q, Some(*consumer)))
            .collect();
        ensure!(
            cloned == wanted,
            "{clone}'s offsets by queue after the clone: {cloned:?}; {group} has {wanted:?}"
        );
        Ok(())
    });
}

/// Lookups and views of the sync topic and of the cluster, each its own scenario.
fn lookups(env: Env, (messages, sent): &(Messages, Sent), produced: &Produced) {
    let topic = &messages.topic;
    env.step("DefaultMQAdminExt queryMessage by key", || {
        let key = messages.key(5);
        let output = env.admin("query-key", &["-t", topic, "-k", &key])?;
        let found = output.ops("queried");
        ensure!(
            found.len() == 1,
            "{} messages found by key {key}: {found:?}",
            found.len()
        );
        let seq = messages.check_lookup(found[0], sent)?;
        ensure!(seq == 5, "key {key} found message {seq}");
        Ok(())
    });
    for (how, seq, id) in [
        ("offset message id", 7, sent.offset_msg_id(7)),
        ("message id", 8, sent.msg_id(8)),
    ] {
        env.step(&format!("DefaultMQAdminExt viewMessage by {how}"), || {
            let output = env.admin("view", &["-t", topic, "-i", &id?])?;
            let got = messages.check_lookup(single(&output, "viewed")?, sent)?;
            ensure!(got == seq, "viewing {seq} by {how} gave message {got}");
            Ok(())
        });
    }
    env.step("DefaultMQAdminExt examineTopicStats", || {
        let output = env.admin("topic-stats", &["-t", topic])?;
        let stats = single(&output, "topic_stats")?;
        let per_queue = sent.per_queue();
        let mut got = BTreeMap::new();
        for queue in stats["queues"].as_array().context("no queues")? {
            ensure!(
                queue["broker_name"] == env.servers.broker_name.as_str(),
                "queue of another broker: {queue}"
            );
            got.insert(
                queue["queue_id"].as_i64().unwrap_or(-1),
                (queue["min_offset"].clone(), queue["max_offset"].clone()),
            );
        }
        let wanted: BTreeMap<i64, (Value, Value)> = (0..4)
            .map(|q| {
                (
                    q,
                    (json!(0), json!(per_queue.get(&q).copied().unwrap_or(0))),
                )
            })
            .collect();
        ensure!(
            got == wanted,
            "(min, max) offset by queue {got:?}, sent {wanted:?}"
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt examineTopicRouteInfo", || {
        let output = env.admin("route", &["-t", topic])?;
        let route = single(&output, "route")?;
        let master = env.servers.master()?;
        let wanted_brokers = json!([{
            "broker_name": env.servers.broker_name,
            "cluster": env.servers.cluster,
            "addrs": env.servers.expected_addrs(&master),
        }]);
        let wanted_queues = json!([{
            "broker_name": env.servers.broker_name,
            "read": 4, "write": 4, "perm": 6, "sys_flag": 0,
        }]);
        ensure!(
            route["brokers"] == wanted_brokers && route["queues"] == wanted_queues,
            "route brokers {} and queues {}; wanted {wanted_brokers} and {wanted_queues}",
            route["brokers"],
            route["queues"]
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt examineBrokerClusterInfo", || {
        let output = env.admin("cluster", &[])?;
        let cluster = single(&output, "cluster")?;
        let master = env.servers.master()?;
        let wanted = json!({
            "clusters": {env.servers.cluster.clone(): [env.servers.broker_name]},
            "brokers": {env.servers.broker_name.clone(): {
                "cluster": env.servers.cluster,
                "addrs": env.servers.expected_addrs(&master),
            }},
        });
        ensure!(
            cluster["clusters"] == wanted["clusters"] && cluster["brokers"] == wanted["brokers"],
            "cluster info {cluster}; wanted {wanted}"
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt fetchAllTopicList", || {
        let output = env.admin("topic-list", &[])?;
        let listed: BTreeSet<String> = single(&output, "topic_list")?["topics"]
            .as_array()
            .context("no topics")?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let mut wanted: BTreeSet<String> = [
            &produced.sync,
            &produced.async_,
            &produced.batch,
            &produced.ordered,
            &produced.delayed,
            &produced.vip,
        ]
        .into_iter()
        .flatten()
        .map(|(m, _)| m.topic.clone())
        .collect();
        wanted.insert(env.servers.cluster.clone());
        wanted.insert(env.servers.broker_name.clone());
        let missing: Vec<&String> = wanted.difference(&listed).collect();
        ensure!(
            missing.is_empty(),
            "topic list {listed:?} lacks {missing:?}"
        );
        Ok(())
    });
}

/// A lite pull consumer subscribing with `TagA || TagC`.
fn lite_pull_subscribe(env: Env, (messages, sent): &(Messages, Sent)) {
    env.step("DefaultLitePullConsumer subscribe", || {
        let wanted = messages.tagged(&["TagA", "TagC"]);
        let output = env.run_ok(&strings(&[
            "pull",
            "-n",
            &env.ns(),
            "-t",
            &messages.topic,
            "-g",
            &env.group("lite-subscribe"),
            "--mode",
            "subscribe",
            "--expr",
            "TagA || TagC",
            "--expect",
            &wanted.len().to_string(),
            "--timeout-secs",
            &CONSUME_TIMEOUT_SECS.to_string(),
            "--linger-ms",
            &LINGER_MS.to_string(),
        ]))?;
        messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
        Ok(())
    });
}

/// A lite pull consumer assigned every queue: seek each to offset 1, pause them (nothing
/// arrives), resume, take what is at offset 1 and on, commit, and read the commits back.
fn lite_pull_assign(env: Env, (messages, sent): &(Messages, Sent)) {
    env.step(
        "DefaultLitePullConsumer assign, seek, pause/resume, commit",
        || {
            let wanted: BTreeSet<u64> = sent
                .by_seq
                .iter()
                .filter(|(_, l)| l["queue_offset"].as_i64().unwrap_or(0) >= 1)
                .map(|(s, _)| *s)
                .collect();
            let output = env.run_ok(&strings(&[
                "pull",
                "-n",
                &env.ns(),
                "-t",
                &messages.topic,
                "-g",
                &env.group("lite-assign"),
                "--mode",
                "assign",
                "--seek",
                "1",
                "--pause-ms",
                "1500",
                "--commit",
                "--expect",
                &wanted.len().to_string(),
                "--timeout-secs",
                &CONSUME_TIMEOUT_SECS.to_string(),
                "--linger-ms",
                &LINGER_MS.to_string(),
            ]))?;
            let broker = &env.servers.broker_name;
            let all_queues: Vec<String> = (0..4).map(|q| format!("{broker}:{q}")).collect();
            ensure!(
                single(&output, "queues")?["queues"] == json!(all_queues),
                "fetchMessageQueues: {}",
                single(&output, "queues")?
            );
            let seeked = output.ops("seeked");
            ensure!(
                seeked.len() == 4 && seeked.iter().all(|l| l["offset"] == 1),
                "seeks: {seeked:?}"
            );
            let paused = single(&output, "paused")?;
            ensure!(
                paused["received_while_paused"] == 0,
                "messages arrived while every queue was paused: {paused}"
            );
            single(&output, "resumed")?;
            messages.check_received_exactly(&output.ops("received"), sent, &wanted)?;
            let per_queue = sent.per_queue();
            let mut committed = BTreeMap::new();
            for line in output.ops("committed") {
                committed.insert(
                    line["queue_id"].as_i64().unwrap_or(-1),
                    (line["offset"].clone(), line["read_back"].clone()),
                );
            }
            let wanted_commits: BTreeMap<i64, (Value, Value)> = per_queue
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(q, n)| (*q, (json!(n), json!(n))))
                .collect();
            ensure!(
                committed == wanted_commits,
                "(committed, read back) by queue {committed:?}; wanted {wanted_commits:?}"
            );
            Ok(())
        },
    );
}

/// Two push consumers of one group: they split the queues; when one shuts down the other
/// takes all of them, and every message is consumed.
fn rebalance(env: Env, (messages, sent): &(Messages, Sent)) {
    env.step(REBALANCE, || {
        let output = env.consume(
            &messages.topic,
            &env.group("rebalance"),
            messages.count as usize,
            &[
                "--instances",
                "2",
                "--stop-instance-after",
                "12",
                // Slow enough that both instances hold queues before one stops, even on a
                // loaded machine.
                "--consume-delay-ms",
                "300",
                "--threads",
                "1",
            ],
        )?;
        let topic = messages.topic.as_str();
        let allocations: Vec<&Value> = output
            .ops("allocated")
            .into_iter()
            .filter(|l| l["topic"] == topic)
            .collect();
        let queues_of = |line: &Value| -> BTreeSet<String> {
            line["queues"]
                .as_array()
                .map(|q| {
                    q.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let all: BTreeSet<String> = (0..4)
            .map(|q| format!("{}:{q}", env.servers.broker_name))
            .collect();
        // The last allocation each instance had while both were in the group.
        let mut shared: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for line in &allocations {
            if line["consumers"].as_array().map(Vec::len) == Some(2) {
                shared.insert(line["instance"].as_i64().unwrap_or(-1), queues_of(line));
            }
        }
        let (Some(first), Some(second)) = (shared.get(&0), shared.get(&1)) else {
            bail!("the two instances never held queues side by side: {allocations:?}");
        };
        ensure!(
            !first.is_empty()
                && !second.is_empty()
                && first.is_disjoint(second)
                && first.union(second).cloned().collect::<BTreeSet<_>>() == all,
            "queues while both ran: {first:?} and {second:?}"
        );
        single(&output, "instance_stopped")?;
        let last_shared = allocations
            .iter()
            .rposition(|l| l["consumers"].as_array().map(Vec::len) == Some(2))
            .unwrap_or(0);
        ensure!(
            allocations[last_shared..].iter().any(|l| l["instance"] == 0
                && l["consumers"].as_array().map(Vec::len) == Some(1)
                && queues_of(l) == all),
            "instance 0 did not take every queue once instance 1 stopped: {allocations:?}"
        );
        let done = single(&output, "done")?;
        ensure!(
            done["distinct"] == messages.count,
            "{done}: not every message consumed"
        );
        for line in output.ops("received") {
            messages.check_received(line, sent)?;
        }
        Ok(())
    });
}

/// A consumer takes everything; resetOffsetByTimestamp(0) rewinds its group (the broker
/// tells the online consumer), and it takes everything again.
fn reset_offset(env: Env, (messages, _): &(Messages, Sent)) {
    env.step(RESET, || {
        let count = messages.count.to_string();
        let finished = env.admin_run(
            "reset-offset",
            &[
                "-t",
                &messages.topic,
                "-g",
                &env.group("reset"),
                "--timestamp",
                "0",
                "--no-fallback",
                "--with-consumer",
                "--expect",
                &count,
                "--timeout-secs",
                &CONSUME_TIMEOUT_SECS.to_string(),
            ],
        )?;
        let output = &finished.output;
        let passes: BTreeMap<i64, BTreeSet<u64>> =
            output
                .ops("received")
                .iter()
                .try_fold(BTreeMap::new(), |mut passes, line| {
                    let seq = messages.check_content(line, &messages.topic)?;
                    passes
                        .entry(line["pass"].as_i64().unwrap_or(0))
                        .or_insert_with(BTreeSet::new)
                        .insert(seq);
                    anyhow::Ok(passes)
                })?;
        ensure!(
            passes.get(&1) == Some(&messages.all()),
            "before the reset the consumer got {:?}; {}",
            passes.get(&1),
            finished.describe()
        );
        let reset = output
            .ops("reset_offset")
            .first()
            .copied()
            .with_context(|| format!("no reset: {}", finished.describe()))?;
        let offsets: BTreeMap<i64, Value> = reset["offsets"]
            .as_array()
            .context("no offsets")?
            .iter()
            .filter(|o| o["topic"] == messages.topic.as_str())
            .map(|o| (o["queue_id"].as_i64().unwrap_or(-1), o["offset"].clone()))
            .collect();
        let zeros: BTreeMap<i64, Value> = (0..4).map(|q| (q, json!(0))).collect();
        ensure!(
            offsets == zeros,
            "offsets after the reset to time 0: {reset}"
        );
        ensure!(
            passes.get(&2) == Some(&messages.all()),
            "after the reset the consumer got {:?} again, not every message; {}",
            passes.get(&2),
            finished.describe()
        );
        Ok(())
    });
}

/// A push consumer (`TagA`) online while the admin asks about it: its connection and
/// subscription (examineConsumerConnectionInfo), its running info (getConsumerRunningInfo,
/// which the broker forwards to the client), its offsets (getConsumeStatus) and a message
/// consumed on request (consumeMessageDirectly).
fn consumer_info(env: Env, (messages, sent): &(Messages, Sent)) {
    let group = env.group("info");
    let Some(finished) = env.step("DefaultMQAdminExt consumer-info run", || {
        let direct = sent.offset_msg_id(0)?;
        env.admin_run(
            "consumer-info",
            &[
                "-t",
                &messages.topic,
                "-g",
                &group,
                "--expr",
                "TagA",
                "--direct-msg-id",
                &direct,
            ],
        )
    }) else {
        for scenario in [
            CONNECTION,
            "DefaultMQAdminExt getConsumerRunningInfo",
            "DefaultMQAdminExt getConsumeStatus",
            "DefaultMQAdminExt consumeMessageDirectly",
        ] {
            env.not_run(scenario, "DefaultMQAdminExt consumer-info run");
        }
        return;
    };
    let output = &finished.output;
    let line = |op: &str, step: &str| -> Result<Vec<&Value>> {
        let lines = output.ops(op);
        if lines.is_empty() {
            let failures: Vec<&Value> = output
                .ops("failed")
                .into_iter()
                .filter(|f| f["step"] == step)
                .collect();
            bail!("{step} gave nothing: {failures:?}");
        }
        Ok(lines)
    };
    let topic = messages.topic.as_str();
    let version_code = output
        .ops("started")
        .first()
        .map(|s| s["client_version_code"].clone())
        .unwrap_or_default();
    env.step(CONNECTION, || {
        let connection = line("consumer_connection", "examineConsumerConnectionInfo")?[0];
        let connections = connection["connections"]
            .as_array()
            .context("no connections")?;
        ensure!(
            connections.len() == 1
                && connections[0]["language"] == "JAVA"
                && connections[0]["version"] == version_code,
            "connections {connections:?}: one Java client of version {version_code} wanted"
        );
        let subscription = &connection["subscriptions"][topic];
        let wanted = json!({
            "expression": "TagA",
            "tags": ["TagA"],
            "codes": [java_string_hash("TagA")],
            "type": "TAG",
        });
        ensure!(
            *subscription == wanted,
            "subscription to {topic}: {subscription}, wanted {wanted}"
        );
        for (field, value) in [
            ("consume_type", "CONSUME_PASSIVELY"),
            ("message_model", "CLUSTERING"),
            ("consume_from_where", "CONSUME_FROM_FIRST_OFFSET"),
        ] {
            ensure!(
                connection[field] == value,
                "{field}: {}, wanted {value}",
                connection[field]
            );
        }
        Ok(())
    });
    env.step("DefaultMQAdminExt getConsumerRunningInfo", || {
        let info = line("consumer_running_info", "getConsumerRunningInfo")?[0];
        let subscriptions = info["subscriptions"]
            .as_array()
            .context("no subscriptions")?;
        ensure!(
            subscriptions.contains(&json!(format!("{topic} TagA"))),
            "subscriptions {subscriptions:?} lack {topic} TagA"
        );
        let queues: BTreeSet<&str> = info["queues"]
            .as_array()
            .context("no queues")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let broker = &env.servers.broker_name;
        let all: Vec<String> = (0..4).map(|q| format!("{broker}:{q}")).collect();
        ensure!(
            all.iter().all(|q| queues.contains(q.as_str())),
            "the consumer's queues {queues:?} lack some of {all:?}"
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt getConsumeStatus", || {
        let status = line("consume_status", "getConsumeStatus")?[0];
        let clients = status["clients"].as_object().context("no clients")?;
        ensure!(
            clients.len() == 1,
            "consume status of {} clients: {status}",
            clients.len()
        );
        let offsets = clients.values().next().unwrap();
        let broker = &env.servers.broker_name;
        ensure!(
            (0..4).all(|q| offsets.get(format!("{broker}:{q}")).is_some()),
            "offsets of the client {offsets}: every queue of {topic} wanted"
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt consumeMessageDirectly", || {
        let result = line("consume_message_directly", "consumeMessageDirectly")?[0];
        ensure!(
            result["result"] == "CR_SUCCESS",
            "consumed directly: {result}"
        );
        Ok(())
    });
}

/// Java's String.hashCode, which tag codes are.
fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// A lite pull scenario's and others' shared run: every message of the async topic refused
/// by its consumer comes back through the group's %RETRY% topic (same id and content,
/// reconsumed 1, 2 times) and after the maximum into %DLQ%group.
fn retry_then_dead_letters(env: Env, (messages, sent): &(Messages, Sent)) {
    let group = env.group("dlq");
    let refused = env.step(DLQ, || {
        // Delivery, then 2 retries (the client's maxReconsumeTimes), each refused.
        let refusals = 3 * messages.count;
        let output = env.run_ok(&strings(&[
            "consume",
            "-n",
            &env.ns(),
            "-t",
            &messages.topic,
            "-g",
            &group,
            "--fail-always",
            "--expect-refusals",
            &refusals.to_string(),
            "--max-reconsume-times",
            "2",
            // 5.x finds a new group's retry topic at its next route poll (30 s).
            "--timeout-secs",
            "120",
            // Let the last refusals go back to the broker before the consumer stops.
            "--linger-ms",
            "3000",
        ]))?;
        ensure!(
            output.ops("received").is_empty(),
            "messages accepted by a consumer refusing everything"
        );
        let mut times: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for line in output.ops("refused") {
            let seq = messages.check_content(line, &messages.topic)?;
            ensure!(
                line["msg_id"] == sent.by_seq[&seq]["msg_id"],
                "message {seq} came back under id {}",
                line["msg_id"]
            );
            times
                .entry(seq)
                .or_default()
                .push(line["reconsume_times"].as_i64().unwrap_or(-1));
        }
        let wanted: BTreeMap<u64, Vec<i64>> = messages
            .all()
            .into_iter()
            .map(|s| (s, vec![0, 1, 2]))
            .collect();
        for list in times.values_mut() {
            list.sort_unstable();
        }
        ensure!(
            times == wanted,
            "reconsume times of each refused delivery, by seq: {times:?}; wanted 0, 1, 2 each"
        );
        Ok(())
    });
    if refused.is_none() {
        env.not_run("%DLQ% holds the messages", DLQ);
        return;
    }
    env.step(
        "%DLQ% holds the messages (examineTopicStats, queryMessage)",
        || {
            let dlq = format!("%DLQ%{group}");
            eventually(Duration::from_secs(15), || {
                let output = env.admin("topic-stats", &["-t", &dlq])?;
                let total: i64 = single(&output, "topic_stats")?["queues"]
                    .as_array()
                    .context("no queues")?
                    .iter()
                    .map(|q| {
                        q["max_offset"].as_i64().unwrap_or(0)
                            - q["min_offset"].as_i64().unwrap_or(0)
                    })
                    .sum();
                ensure!(
                    total == messages.count as i64,
                    "{dlq} holds {total} messages"
                );
                Ok(())
            })?;
            let output = env.admin("query-key", &["-t", &dlq, "-k", &messages.key(0)])?;
            let found = output.ops("queried");
            ensure!(
                found.len() == 1,
                "{} messages with key {} in {dlq}",
                found.len(),
                messages.key(0)
            );
            // 5.x brokers (and this one) add where a dead letter came from; a 4.9.8 client
            // does not know these keys as system properties.
            let mut line = found[0].clone();
            if let Some(properties) = line["properties"].as_object_mut() {
                ensure!(
                    properties.remove("DLQ_ORIGIN_TOPIC") == Some(json!(messages.topic))
                        || env.v == Version::V5,
                    "DLQ_ORIGIN_TOPIC of {line}"
                );
                properties.remove("DLQ_ORIGIN_MESSAGE_ID");
            }
            let seq = messages.check_content(&line, &dlq)?;
            ensure!(
                seq == 0 && line["msg_id"] == sent.by_seq[&0]["msg_id"],
                "{dlq} has {line}"
            );
            Ok(())
        },
    );
}

/// Two broadcasting instances each get every message.
fn broadcast(env: Env, batch: Option<&(Messages, Sent)>) {
    let scenario = "DefaultMQPushConsumer broadcasting";
    let Some((messages, sent)) = batch else {
        return env.not_run(scenario, BATCH);
    };
    env.step(scenario, || {
        let output = env.consume(
            &messages.topic,
            &env.group("broadcast"),
            messages.count as usize,
            &["--broadcast", "--instances", "2"],
        )?;
        for instance in [0, 1] {
            let lines: Vec<&Value> = output
                .ops("received")
                .into_iter()
                .filter(|l| l["instance"] == instance)
                .collect();
            messages
                .check_received_exactly(&lines, sent, &messages.all())
                .with_context(|| format!("instance {instance}"))?;
        }
        Ok(())
    });
}

/// An orderly consumer gets each queue in offset order (so each order key in send order);
/// then the queues' offsets and earliest store times, one of them empty.
fn orderly(env: Env, ordered: Option<&(Messages, Sent)>) {
    let scenario = "DefaultMQPushConsumer orderly";
    let offsets_scenario = "DefaultMQAdminExt minOffset, maxOffset, earliestMsgStoreTime";
    let Some((messages, sent)) = ordered else {
        env.not_run(scenario, ORDERED);
        return env.not_run(offsets_scenario, ORDERED);
    };
    env.step(scenario, || {
        let output = env.consume(
            &messages.topic,
            &env.group("orderly"),
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
    env.step(offsets_scenario, || {
        let output = env.admin_run("offsets", &["-t", &messages.topic])?;
        let per_queue = sent.per_queue();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let lines = output.output.ops("offsets");
        ensure!(lines.len() == 4, "{}", output.describe());
        for line in lines {
            let queue = line["queue_id"].as_i64().unwrap_or(-1);
            let count = per_queue.get(&queue).copied().unwrap_or(0);
            let earliest = line["earliest_msg_store_time"].as_i64();
            let earliest_ok = if count == 0 {
                // RocketMQ answers an empty queue with -1.
                earliest == Some(-1)
            } else {
                earliest.is_some_and(|t| t > 0 && t <= now_ms)
            };
            ensure!(
                line["errors"] == json!([])
                    && line["min_offset"] == 0
                    && line["max_offset"] == count
                    && earliest_ok,
                "queue {queue} with {count} messages: {line}"
            );
        }
        Ok(())
    });
}

/// Delayed messages arrive in their own topic and queue, once each, no earlier than their
/// delay after they were sent.
fn delayed_arrive(env: Env, delayed: Option<&(Messages, Sent)>) {
    let scenario = "DefaultMQPushConsumer gets delayed messages after their delay";
    let Some((messages, sent)) = delayed else {
        return env.not_run(scenario, DELAYED);
    };
    env.step(scenario, || {
        let output = env.consume(
            &messages.topic,
            &env.group("delayed"),
            messages.count as usize,
            &[],
        )?;
        let arrivals =
            messages.check_received_exactly(&output.ops("received"), sent, &messages.all())?;
        let mut offsets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (seq, line) in arrivals {
            let queue = line["queue_id"].as_i64().unwrap_or(-1);
            ensure!(
                line["queue_id"] == sent.by_seq[&seq]["queue_id"],
                "message {seq} arrived in queue {queue}, was sent to {}",
                sent.by_seq[&seq]["queue_id"]
            );
            let waited = line["store_timestamp"].as_i64().unwrap_or(0)
                - line["born_timestamp"].as_i64().unwrap_or(0);
            ensure!(
                waited >= 2000,
                "message {seq} was stored in its topic {waited} ms after it was sent; \
                 level 2 is 2 s"
            );
            offsets
                .entry(queue)
                .or_default()
                .push(line["queue_offset"].as_i64().unwrap_or(-1));
        }
        for (queue, list) in &mut offsets {
            list.sort_unstable();
            let dense: Vec<i64> = (0..list.len() as i64).collect();
            ensure!(*list == dense, "offsets in queue {queue}: {list:?}");
        }
        Ok(())
    });
}

/// The big bodies come back whole (the client decompresses what it compressed).
fn big_bodies(env: Env, big: Option<&Vec<(Messages, Sent)>>) {
    let scenario = "DefaultMQPushConsumer gets 5000 B and 1 MiB bodies whole";
    let Some(runs) = big else {
        return env.not_run(scenario, BIG);
    };
    env.step(scenario, || {
        let total: u64 = runs.iter().map(|(m, _)| m.count).sum();
        let output = env.consume(&runs[0].0.topic, &env.group("big"), total as usize, &[])?;
        let received = output.ops("received");
        for (messages, sent) in runs {
            let lines: Vec<&Value> = received
                .iter()
                .copied()
                .filter(|l| messages.owns(l))
                .collect();
            messages.check_received_exactly(&lines, sent, &messages.all())?;
        }
        ensure!(
            received.len() as u64 == total,
            "{} messages received, {total} sent",
            received.len()
        );
        Ok(())
    });
}

/// A consumer with the VIP channel on gets what the VIP producer sent.
fn vip_consumer(env: Env, vip: Option<&(Messages, Sent)>) {
    let scenario = "DefaultMQPushConsumer with the VIP channel on";
    let Some((messages, sent)) = vip else {
        return env.not_run(scenario, VIP);
    };
    env.step(scenario, || {
        let output = env.consume(
            &messages.topic,
            &env.group("vip"),
            messages.count as usize,
            &["--vip"],
        )?;
        messages.check_received_exactly(&output.ops("received"), sent, &messages.all())?;
        Ok(())
    });
}

/// createAndUpdateSubscriptionGroupConfig: the group is created as asked on every member;
/// deleteSubscriptionGroup: it is gone from every member.
fn subscription_groups(env: Env) {
    let group = env.group("created");
    let created = env.step(
        "DefaultMQAdminExt createAndUpdateSubscriptionGroupConfig",
        || {
            let output = env.admin(
                "create-group",
                &[
                    "-g",
                    &group,
                    "--retry-max",
                    "3",
                    "--broadcast-enable",
                    "false",
                ],
            )?;
            let line = single(&output, "create_group")?;
            let read = &line["read_back"];
            ensure!(
                read["group_name"] == group.as_str()
                    && read["retry_max_times"] == 3
                    && read["consume_broadcast_enable"] == false
                    && read["consume_enable"] == true,
                "the group read back: {read}"
            );
            for addr in env.servers.member_addrs() {
                eventually(Duration::from_secs(10), || {
                    ensure!(
                        compat::member_groups(&addr)?.contains(&group),
                        "{addr} does not hold {group}"
                    );
                    Ok(())
                })?;
            }
            Ok(())
        },
    );
    let scenario = "DefaultMQAdminExt deleteSubscriptionGroup";
    if created.is_none() {
        return env.not_run(
            scenario,
            "DefaultMQAdminExt createAndUpdateSubscriptionGroupConfig",
        );
    }
    env.step(scenario, || {
        env.admin("delete-group", &["-g", &group])?;
        for addr in env.servers.member_addrs() {
            eventually(Duration::from_secs(10), || {
                ensure!(
                    !compat::member_groups(&addr)?.contains(&group),
                    "{addr} still holds {group} after its deletion"
                );
                Ok(())
            })?;
        }
        Ok(())
    });
}

/// getBrokerConfig names the broker as configured; updateBrokerConfig changes a value (each
/// version its own key, so they can run side by side): 4.9.8 lowers maxMessageSize (still
/// above every later send), 5.5.0 turns autoCreateSubscriptionGroup on (already on): both
/// are among the keys this broker changes while it runs (see `broker::live_config`).
fn broker_config(env: Env) {
    env.step("DefaultMQAdminExt getBrokerConfig", || {
        let output = env.admin("broker-config", &[])?;
        let line = single(&output, "broker_config")?;
        let master = env.servers.master()?;
        let port = master.rsplit(':').next().unwrap_or_default();
        let config = &line["config"];
        ensure!(
            line["addr"] == master.as_str()
                && config["brokerName"] == env.servers.broker_name.as_str()
                && config["brokerClusterName"] == env.servers.cluster.as_str()
                && config["listenPort"] == port,
            "config of {master}: {line}"
        );
        Ok(())
    });
    env.step("DefaultMQAdminExt updateBrokerConfig", || {
        let (key, value) = match env.v {
            Version::V4 => ("maxMessageSize", "1572864"),
            Version::V5 => ("autoCreateSubscriptionGroup", "true"),
        };
        let output = env.admin(
            "update-broker-config",
            &["--set", &format!("{key}={value}")],
        )?;
        let line = single(&output, "update_broker_config")?;
        ensure!(
            line["read_back"] == json!({key: value}),
            "{key} read back after the update: {line}"
        );
        Ok(())
    });
}

/// The system topic list (name server 304, then the broker's 305) and viewBrokerStatsData.
fn system_topics_and_stats(env: Env, sync: Option<&(Messages, Sent)>) {
    env.step("MQClientAPIImpl getSystemTopicList", || {
        let output = env.admin("system-topics", &[])?;
        let topics: BTreeSet<String> = single(&output, "system_topics")?["topics"]
            .as_array()
            .context("no topics")?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let wanted = [
            env.servers.cluster.as_str(),
            env.servers.broker_name.as_str(),
            "TBW102",
            "SELF_TEST_TOPIC",
            "OFFSET_MOVED_EVENT",
        ];
        let missing: Vec<&str> = wanted
            .into_iter()
            .filter(|t| !topics.contains(*t))
            .collect();
        ensure!(
            missing.is_empty(),
            "system topics {topics:?} lack {missing:?}"
        );
        Ok(())
    });
    let scenario = "DefaultMQAdminExt viewBrokerStatsData";
    let Some((messages, _)) = sync else {
        return env.not_run(scenario, SYNC);
    };
    env.step(scenario, || {
        let output = env.admin(
            "stats-data",
            &["--name", "TOPIC_PUT_NUMS", "--key", &messages.topic],
        )?;
        let line = single(&output, "stats_data")?;
        for field in ["minute_sum", "hour_sum", "day_sum"] {
            ensure!(
                line[field].as_i64().is_some_and(|n| n >= 0),
                "{field} in {line}"
            );
        }
        Ok(())
    });
}

/// deleteTopicInBroker + deleteTopicInNameServer: the topic is gone from the topic list, its
/// route and every member.
fn delete_topic(env: Env, doomed: Option<&(Messages, Sent)>) {
    let scenario = "DefaultMQAdminExt deleteTopic";
    let Some((messages, _)) = doomed else {
        return env.not_run(scenario, "DefaultMQProducer sync send (a topic to delete)");
    };
    env.step(scenario, || {
        let topic = &messages.topic;
        let output = env.admin("delete-topic", &["-t", topic, "-c", &env.servers.cluster])?;
        single(&output, "delete_topic")?;
        let output = env.admin("topic-list", &[])?;
        let listed = &single(&output, "topic_list")?["topics"];
        ensure!(
            !listed.as_array().is_some_and(|l| l.contains(&json!(topic))),
            "{topic} still in the topic list: {listed}"
        );
        let route = env.admin_run("route", &["-t", topic])?;
        let refused = route.output.ops("failed");
        ensure!(
            !route.succeeded() && refused.iter().any(|f| f["response_code"] == 17),
            "the route of a deleted topic: TOPIC_NOT_EXIST (17) wanted; {}",
            route.describe()
        );
        for addr in env.servers.member_addrs() {
            eventually(Duration::from_secs(10), || {
                ensure!(
                    !compat::member_topics(&addr)?.contains(topic),
                    "{addr} still holds {topic}"
                );
                Ok(())
            })?;
        }
        Ok(())
    });
}

/// wipeWritePermOfBroker: sends to the broker are refused; addWritePermOfBroker: they are
/// accepted again. Changes the whole broker, so it runs alone.
fn write_permission(env: Env, produced: &Produced) {
    let wipe = "DefaultMQAdminExt wipeWritePermOfBroker";
    let add = "DefaultMQAdminExt addWritePermOfBroker";
    let Some((messages, _)) = &produced.sync else {
        env.not_run(wipe, SYNC);
        return env.not_run(add, SYNC);
    };
    let one = Messages::new(&messages.topic, "perm", 1);
    let broker = env.servers.broker_name.clone();
    let wiped = env.step(wipe, || {
        let output = env.admin("wipe-write-perm", &["--broker-name", &broker])?;
        let line = single(&output, "wipe_write_perm")?;
        ensure!(
            line["topics_changed"].as_i64().is_some_and(|n| n > 0),
            "no topic lost its write permission: {line}"
        );
        let send = env.produce(&one, "sync", &[])?;
        ensure!(
            !send.succeeded() && !send.output.ops("send_failed").is_empty(),
            "a send after wipeWritePermOfBroker was not refused: {}",
            send.describe()
        );
        Ok(())
    });
    env.step(add, || {
        let output = env.admin("add-write-perm", &["--broker-name", &broker])?;
        let line = single(&output, "add_write_perm")?;
        if wiped.is_some() {
            ensure!(
                line["topics_changed"].as_i64().is_some_and(|n| n > 0),
                "no topic got its write permission back: {line}"
            );
        }
        let send = env.produce(&one, "sync", &[])?.ok()?;
        check_done(&send, 1)
    });
}

/// What happens to a group under load in [`group_fault_under_load`].
#[derive(Clone, Copy)]
enum GroupFault {
    /// kill -9 of the master.
    KillMaster,
    /// A new member added with `mqadmin addGroupMember`, then the master removed with
    /// `removeGroupMember` and stopped.
    ReplaceMaster,
}

impl GroupFault {
    fn label(self) -> &'static str {
        match self {
            GroupFault::KillMaster => "kill -9 of the master",
            GroupFault::ReplaceMaster => "the master replaced by a new member online",
        }
    }

    /// Names of topics and groups.
    fn tag(self) -> &'static str {
        match self {
            GroupFault::KillMaster => "Kill",
            GroupFault::ReplaceMaster => "Replace",
        }
    }
}

/// A fault on the master of a group while a paced producer and a push consumer of each
/// client version run: every acknowledged send is stored once where its result said (none
/// lost), the consumer gets every one, and a new consumer of its group gets nothing again:
/// the group's committed offsets survived. `dir` holds a member the fault adds.
fn group_fault_under_load(suite: &Suite, servers: &mut Servers, fault: GroupFault, dir: &Path) {
    /// Sends each producer makes, one every [`INTERVAL_MS`]: they go on for some 35 s after
    /// the kill, past the clients' next route poll (every 30 s), which finds the new master.
    const SENDS: u64 = 450;
    const INTERVAL_MS: &str = "100";
    /// Sends each producer has made when the master is killed.
    const KILL_AFTER: usize = 100;
    let ns = servers.ns();
    let mut runs = Vec::new();
    let started = Version::ALL.map(|v| -> Result<_> {
        let messages = Messages::new(
            &format!("J{}{}", v.major(), fault.tag()),
            &fault.tag().to_lowercase(),
            SENDS,
        );
        let group = format!("j{}-{}", v.major(), fault.tag().to_lowercase());
        let consume = strings(&[
            "consume",
            "-n",
            &ns,
            "-t",
            &messages.topic,
            "-g",
            &group,
            "--expect",
            &SENDS.to_string(),
            // The producers' time and then some: it ends on this timeout unless every send
            // was stored.
            "--timeout-secs",
            "100",
        ]);
        let consumer = java_client::spawn(
            v,
            &consume.iter().map(String::as_str).collect::<Vec<_>>(),
            RUN_TIMEOUT,
        )?;
        let produce = messages.paced_produce_args(&ns, INTERVAL_MS);
        let producer = java_client::spawn(
            v,
            &produce.iter().map(String::as_str).collect::<Vec<_>>(),
            RUN_TIMEOUT,
        )?;
        Ok((v, messages, group, producer, consumer))
    });
    for run in started {
        match run {
            Ok(run) => runs.push(run),
            Err(error) => {
                suite.step(
                    &format!("{}: start the clients", fault.label()),
                    || -> Result<()> { Err(error) },
                );
                return;
            }
        }
    }
    // The kill must come at a point of the producers' runs, whatever else the suite is
    // doing: these steps take no permit.
    let under_load = format!("{} under load", fault.label());
    let killed = suite.unlimited_step(&under_load, || {
        for (v, _, _, producer, _) in &mut runs {
            ensure!(
                producer.wait_until(Duration::from_secs(90), |lines| {
                    lines.iter().filter(|l| l["op"] == "sent").count() >= KILL_AFTER
                }),
                "{v} producer did not get {KILL_AFTER} sends through: {:?}",
                producer.lines()
            );
        }
        let master = servers.master()?;
        let acked_before: Vec<usize> = runs.iter().map(|r| r.3.count("sent")).collect();
        let ns = servers.ns();
        let group = servers.group.as_mut().context("a broker group")?;
        match fault {
            GroupFault::KillMaster => group
                .member_mut(&master)
                .context("the master is no member")?
                .process
                .kill(),
            GroupFault::ReplaceMaster => {
                group.replace_member_online(dir, &ns, &master)?;
            }
        }
        let new_master = servers.wait_for_master(Some(&master))?;
        Ok((master, new_master, acked_before))
    });
    let Some((_, _, acked_before)) = killed else {
        for v in Version::ALL {
            suite.not_run(
                &format!("{v} / {}: no acknowledged send lost", fault.label()),
                &under_load,
            );
        }
        return;
    };
    for ((v, messages, group, producer, consumer), before) in runs.into_iter().zip(acked_before) {
        let env_name = |s: &str| format!("{v} / {s}");
        let producer = producer.finish();
        let consumer = consumer.finish();
        let no_loss = env_name(&format!("{}: no acknowledged send lost", fault.label()));
        let acked = suite.unlimited_step(&no_loss, || {
            let producer = producer?;
            let lines = &producer.output;
            let mut log = SendLog::default();
            let mut acked_ids = BTreeSet::new();
            for line in lines.ops("sent") {
                let seq = line["seq"].as_u64().context("no seq")?;
                if line["status"] == "SEND_OK" {
                    log.acked.push(Acked {
                        queue_id: line["queue_id"].as_i64().unwrap_or(-1) as i32,
                        queue_offset: line["queue_offset"].as_i64().unwrap_or(-1),
                        msg_id: line["msg_id"].as_str().unwrap_or_default().to_owned(),
                        body: messages.body(seq),
                    });
                    acked_ids.insert(line["msg_id"].as_str().unwrap_or_default().to_owned());
                } else {
                    log.unknown.insert(messages.body(seq));
                }
            }
            for line in lines.ops("send_failed") {
                if let Some(seq) = line["seq"].as_u64() {
                    log.unknown.insert(messages.body(seq));
                }
            }
            ensure!(
                log.acked.len() > before,
                "no send was acknowledged after the fault ({} before it); {}",
                before,
                producer.describe()
            );
            ensure!(
                log.acked.len() + log.unknown.len() == SENDS as usize,
                "{} acknowledged and {} failed sends of {SENDS}; {}",
                log.acked.len(),
                log.unknown.len(),
                producer.describe()
            );
            let report = check_stored(&servers.ns(), &messages.topic, &log)?;
            let mut causes: BTreeMap<String, usize> = BTreeMap::new();
            for line in lines.ops("send_failed") {
                // Counts and timings vary from failure to failure; the words name the cause.
                let cause: String = line["error"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect();
                *causes.entry(cause).or_default() += 1;
            }
            eprintln!(
                "{v} through {}: {} sends acknowledged, {} failed ({} of them stored); causes: {causes:?}",
                fault.label(),
                report.acked,
                report.unknown,
                report.unknown_stored
            );
            Ok(acked_ids)
        });
        let scenario = env_name(&format!(
            "{}: the push consumer gets every acknowledged message and its group resumes \
             where it committed",
            fault.label()
        ));
        let Some(acked_ids) = acked else {
            suite.not_run(&scenario, &no_loss);
            continue;
        };
        suite.unlimited_step(&scenario, || {
            let consumer = consumer?;
            let mut received = BTreeSet::new();
            for line in consumer.output.ops("received") {
                messages.check_content(line, &messages.topic)?;
                received.insert(line["msg_id"].as_str().unwrap_or_default().to_owned());
            }
            let end = consumer
                .output
                .lines
                .iter()
                .rev()
                .find(|l| l["op"] == "done" || l["op"] == "timeout")
                .cloned()
                .unwrap_or_default();
            eprintln!(
                "{v} consumer through {}: {} deliveries of {} messages; it ended with {end}",
                fault.label(),
                consumer.output.ops("received").len(),
                received.len()
            );
            let missing: Vec<&String> = acked_ids.difference(&received).collect();
            ensure!(
                missing.is_empty(),
                "the consumer never got {} acknowledged messages: {missing:?}; {}",
                missing.len(),
                consumer.describe()
            );
            // A new consumer of the group starts from its committed offsets: nothing is left.
            let again = java_client::run(
                v,
                &[
                    "consume",
                    "-n",
                    &servers.ns(),
                    "-t",
                    &messages.topic,
                    "-g",
                    &group,
                    "--expect",
                    "0",
                    "--linger-ms",
                    "5000",
                    "--timeout-secs",
                    "30",
                ],
                RUN_TIMEOUT,
            )?
            .ok()?;
            let redelivered = again.ops("received");
            ensure!(
                redelivered.is_empty(),
                "a new consumer of {group} got {} messages again (its group's offsets were \
                 lost or stale): {:?}",
                redelivered.len(),
                redelivered
                    .iter()
                    .map(|l| (l["queue_id"].clone(), l["queue_offset"].clone()))
                    .collect::<Vec<_>>()
            );
            Ok(())
        });
    }
}
