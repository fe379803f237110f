//! What the compatibility tests of the official clients (`compat_java`, `compat_go`) share:
//! - [`Servers`]: a name server with a standalone broker or a 3-node broker group, started
//!   once per test and shared by its scenarios (each scenario has topics and groups of its
//!   own).
//! - [`Messages`]: the messages one produce run of a driver sends (every driver labels them
//!   the same way) and the checks of what a consumer or a lookup printed about them: topic,
//!   body (length, CRC-32, text), tag, key, user properties, and the message id, queue and
//!   offset the send result gave.
//! - [`check_stored`]: every queue of a topic read back by this project's own consumer: each
//!   acknowledged send is there exactly once, where its send result said.
//! - [`rolling_restart_under`]: what paced producers of any clients saw through a rolling
//!   restart of the group, and whether every send they were told was stored is.
//! - [`member_topics`] and [`member_groups`]: what one broker (or group member) itself holds,
//!   asked directly, for checks that a delete reached every member.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use client::{Admin, ClientOptions, PullConsumer};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::request;
use remoting::command::RemotingCommand;
use serde_json::{json, Value};

use crate::checker::{self, Acked, Read, SendLog};
use crate::driver::Running;
use crate::group::{self, BrokerGroup};
use crate::{Broker, NameServer};

/// Delay levels for the compat brokers: level 2 waits 2 s (the delayed-message scenarios), the
/// others 1 s, so a refused message is back (level 3 + reconsume times) after a second
/// instead of RocketMQ's 10 s, 30 s, 1 min...
pub const DELAY_LEVELS: &str = "1s 2s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s";

/// How long a broker or group may take until the name server lists its master.
const MASTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The runtime for this module's async calls (the scenarios run on plain threads).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Runs `future` to completion on the shared runtime (callable from any thread).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Which kind of broker the servers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Standalone,
    Group,
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Setup::Standalone => "standalone broker",
            Setup::Group => "3-node broker group",
        })
    }
}

/// A name server and either one standalone broker or one 3-node broker group.
pub struct Servers {
    pub setup: Setup,
    pub namesrv: NameServer,
    /// The broker name clients see (the group's name for a group).
    pub broker_name: String,
    pub cluster: String,
    pub broker: Option<Broker>,
    pub group: Option<BrokerGroup>,
}

impl Servers {
    /// Starts the servers in `dir` and waits until the name server lists the master.
    /// `extra` config entries go to every broker, after [`DELAY_LEVELS`].
    pub fn start(
        setup: Setup,
        dir: &Path,
        broker_name: &str,
        extra: &[(&str, String)],
    ) -> Result<Servers> {
        let namesrv = NameServer::start(dir)?;
        let mut entries = vec![
            ("messageDelayLevel", DELAY_LEVELS.to_owned()),
            ("bindAddress", "127.0.0.1".to_owned()),
        ];
        entries.extend(extra.iter().cloned());
        let (broker, group, cluster) = match setup {
            Setup::Standalone => {
                let broker = Broker::start(dir, broker_name, &namesrv.addr(), &entries)?;
                (Some(broker), None, "TestCluster")
            }
            Setup::Group => {
                let group = BrokerGroup::start(dir, broker_name, &namesrv.addr(), &entries)?;
                (None, Some(group), "RaftCluster")
            }
        };
        let servers = Servers {
            setup,
            namesrv,
            broker_name: broker_name.to_owned(),
            cluster: cluster.to_owned(),
            broker,
            group,
        };
        servers.wait_for_master(None)?;
        Ok(servers)
    }

    /// The name server address clients are given.
    pub fn ns(&self) -> String {
        self.namesrv.addr()
    }

    /// The master the name server lists now.
    pub fn master(&self) -> Result<String> {
        self.wait_for_master(None)
    }

    /// Waits (bounded) until the name server lists a master other than `not`.
    pub fn wait_for_master(&self, not: Option<&str>) -> Result<String> {
        block_on(async {
            let admin = Admin::start(ClientOptions::new(&self.ns()))?;
            let master =
                group::wait_for_master(&admin, &self.broker_name, not, MASTER_TIMEOUT).await;
            admin.shutdown();
            master
        })
    }

    /// The client address of every broker process (one, or the group's members).
    pub fn member_addrs(&self) -> Vec<String> {
        match (&self.broker, &self.group) {
            (Some(broker), _) => vec![broker.addr()],
            (None, Some(group)) => group.members.iter().map(|m| m.addr()).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The gRPC endpoints of every broker process, `;`-separated, as a RocketMQ 5 client is
    /// configured with them.
    pub fn grpc_endpoints(&self) -> Result<String> {
        let addrs: Vec<String> = match (&self.broker, &self.group) {
            (Some(broker), _) => vec![broker.grpc_addr()?],
            (None, Some(group)) => group
                .members
                .iter()
                .map(|m| m.grpc_addr())
                .collect::<Result<_>>()?,
            (None, None) => Vec::new(),
        };
        Ok(addrs.join(";"))
    }

    /// The broker ids and addresses the name server should list: 0 for the master; a
    /// group's followers as `dLegerSelfId` digits + 1.
    pub fn expected_addrs(&self, master: &str) -> BTreeMap<String, String> {
        let mut addrs = BTreeMap::new();
        match &self.group {
            None => {
                addrs.insert("0".to_owned(), master.to_owned());
            }
            Some(group) => {
                for member in &group.members {
                    let id = if member.addr() == master {
                        0
                    } else {
                        member
                            .id
                            .trim_start_matches('n')
                            .parse::<i64>()
                            .unwrap_or(-1)
                            + 1
                    };
                    addrs.insert(id.to_string(), member.addr());
                }
            }
        }
        addrs
    }
}

/// The tags produced messages cycle through unless a run says otherwise: message `seq` has
/// `TAGS[seq % 3]`.
pub const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];

/// A user property every produced message carries besides `seq` and `run`.
const COLOR: (&str, &str) = ("color", "blue");

/// The messages one produce run sends, labelled as every driver labels them: message `seq`
/// (from 0) has the body `TOPIC:SEQ:` padded with a-z to `body_bytes`, the tag
/// `tags[seq % tags.len()]`, the key `KEY-SEQ` (the key is the run's name) and the user
/// properties `seq`, `run` and `color`.
#[derive(Clone, Debug)]
pub struct Messages {
    pub topic: String,
    /// Names the run: its key and its `run` property (so runs sharing a topic are told apart).
    pub run: String,
    pub count: u64,
    pub tags: Vec<String>,
    pub body_bytes: usize,
}

/// A SQL92 selector over a produced run's tags and its `seq` user property, for the clients'
/// `MessageSelector.bySql` scenarios; [`Messages::selected_by_sql92_sample`] is what it selects.
pub const SQL92_SAMPLE: &str = "TAGS <> 'TagB' AND seq BETWEEN 5 AND 24";

impl Messages {
    pub fn new(topic: &str, run: &str, count: u64) -> Messages {
        Messages {
            topic: topic.to_owned(),
            run: run.to_owned(),
            count,
            tags: TAGS.iter().map(|t| (*t).to_owned()).collect(),
            body_bytes: 0,
        }
    }

    pub fn with_body_bytes(mut self, body_bytes: usize) -> Messages {
        self.body_bytes = body_bytes;
        self
    }

    /// The `produce` arguments that make these messages (before the mode and other flags).
    pub fn produce_args(&self, ns: &str) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "produce".into(),
            "-n".into(),
            ns.into(),
            "-t".into(),
            self.topic.clone(),
            "-c".into(),
            self.count.to_string(),
            "--key".into(),
            self.run.clone(),
            "--prop".into(),
            format!("run={}", self.run),
            "--prop".into(),
            format!("{}={}", COLOR.0, COLOR.1),
        ];
        for tag in &self.tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        if self.body_bytes > 0 {
            args.extend(["--body-bytes".into(), self.body_bytes.to_string()]);
        }
        args
    }

    /// [`Messages::produce_args`] for one synchronous send every `interval_ms`, each waiting
    /// at most 3 s: a steady stream across a fault (the Java and Go drivers).
    pub fn paced_produce_args(&self, ns: &str, interval_ms: &str) -> Vec<String> {
        let mut args = self.produce_args(ns);
        for arg in [
            "--mode",
            "sync",
            "--interval-ms",
            interval_ms,
            "--timeout-ms",
            "3000",
        ] {
            args.push(arg.to_owned());
        }
        args
    }

    pub fn body(&self, seq: u64) -> String {
        let mut body = format!("{}:{seq}:", self.topic);
        let mut letter = 0u8;
        while body.len() < self.body_bytes {
            body.push((b'a' + letter % 26) as char);
            letter = letter.wrapping_add(1) % 26;
        }
        body
    }

    pub fn tag(&self, seq: u64) -> Option<&str> {
        if self.tags.is_empty() {
            return None;
        }
        Some(&self.tags[(seq % self.tags.len() as u64) as usize])
    }

    pub fn key(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run)
    }

    /// The user properties of message `seq`.
    pub fn properties(&self, seq: u64) -> Value {
        json!({"seq": seq.to_string(), "run": self.run, COLOR.0: COLOR.1})
    }

    /// Every sequence number of the run.
    pub fn all(&self) -> BTreeSet<u64> {
        (0..self.count).collect()
    }

    /// The sequence numbers whose tag is one of `tags`.
    pub fn tagged(&self, tags: &[&str]) -> BTreeSet<u64> {
        self.all()
            .into_iter()
            .filter(|seq| self.tag(*seq).is_some_and(|t| tags.contains(&t)))
            .collect()
    }

    /// The sequence numbers [`SQL92_SAMPLE`] selects: those of `seq` 5 to 24 whose tag is
    /// not TagB.
    pub fn selected_by_sql92_sample(&self) -> BTreeSet<u64> {
        self.all()
            .into_iter()
            .filter(|seq| (5..=24).contains(seq) && self.tag(*seq) != Some("TagB"))
            .collect()
    }

    /// Whether a consumer's or lookup's line is about a message of this run.
    pub fn owns(&self, line: &Value) -> bool {
        line["properties"]["run"] == self.run.as_str()
    }

    /// Checks what a consumer (or a lookup) printed about one message against how the run
    /// built it: topic `topic` (the run's, or e.g. the dead-letter topic), body length,
    /// CRC-32 and text (when printed), tag, key and user properties. Returns its `seq`.
    pub fn check_content(&self, line: &Value, topic: &str) -> Result<u64> {
        let seq = line["properties"]["seq"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .with_context(|| format!("no numeric `seq` user property in {line}"))?;
        ensure!(seq < self.count, "seq {seq} was never sent: {line}");
        let mut differences = Vec::new();
        let mut differ = |what: &str, got: &Value, want: Value| {
            if *got != want {
                differences.push(format!("{what}: got {got}, sent {want}"));
            }
        };
        let body = self.body(seq);
        differ("topic", &line["topic"], json!(topic));
        differ("body length", &line["body_len"], json!(body.len()));
        differ(
            "body CRC-32",
            &line["body_crc32"],
            json!(crc32fast::hash(body.as_bytes())),
        );
        if let Some(text) = line.get("body") {
            differ("body", text, json!(body));
        }
        differ("tag", &line["tags"], json!(self.tag(seq)));
        differ("keys", &line["keys"], json!(self.key(seq)));
        differ("user properties", &line["properties"], self.properties(seq));
        if !differences.is_empty() {
            bail!(
                "message {seq} of run {} differs from what was sent: {}",
                self.run,
                differences.join("; ")
            );
        }
        Ok(seq)
    }

    /// [`Messages::check_content`] in the run's own topic, and against the send result of
    /// the same message: the message id, and (for a first delivery of a message that was not
    /// delayed) the broker, queue and offset.
    pub fn check_received(&self, line: &Value, sent: &Sent) -> Result<u64> {
        let seq = self.check_content(line, &self.topic)?;
        let Some(result) = sent.get(&seq) else {
            return Ok(seq);
        };
        if let Some(msg_id) = result.get("msg_id") {
            ensure!(
                line["msg_id"] == *msg_id,
                "message {seq}: message id {} where the send result said {msg_id}",
                line["msg_id"]
            );
        }
        let first_delivery = line["reconsume_times"].as_i64().unwrap_or(0) == 0;
        if first_delivery && !sent.delayed {
            // A retried or delayed message is stored anew: another offset message id.
            for field in ["broker_name", "queue_id", "queue_offset", "offset_msg_id"] {
                if result.get(field).is_none() {
                    continue;
                }
                ensure!(
                    line[field] == result[field],
                    "message {seq}: {field} {} where the send result said {}",
                    line[field],
                    result[field]
                );
            }
        }
        Ok(seq)
    }
}

impl Messages {
    /// [`Messages::check_content`] for a lookup (query by key, view by id): the message id,
    /// queue and offset the send result gave.
    pub fn check_lookup(&self, line: &Value, sent: &Sent) -> Result<u64> {
        let seq = self.check_content(line, &self.topic)?;
        let result = sent
            .get(&seq)
            .with_context(|| format!("no send result for {seq}"))?;
        for field in ["msg_id", "queue_id", "queue_offset"] {
            ensure!(
                line[field] == result[field],
                "message {seq}: {field} {} where the send result said {}",
                line[field],
                result[field]
            );
        }
        Ok(seq)
    }

    /// Checks a consumer's `received` lines: exactly the `expected` messages of this run,
    /// each once, on its first delivery, as [`Messages::check_received`] wants it. Returns
    /// `(seq, line)` in arrival order.
    pub fn check_received_exactly<'l>(
        &self,
        lines: &[&'l Value],
        sent: &Sent,
        expected: &BTreeSet<u64>,
    ) -> Result<Vec<(u64, &'l Value)>> {
        let mut arrivals = Vec::new();
        let mut times: BTreeMap<u64, usize> = BTreeMap::new();
        for line in lines {
            let seq = self.check_received(line, sent)?;
            ensure!(
                line["reconsume_times"].as_i64().unwrap_or(0) == 0,
                "message {seq} came back (reconsumed {} times) though it was never refused",
                line["reconsume_times"]
            );
            *times.entry(seq).or_default() += 1;
            arrivals.push((seq, *line));
        }
        let missing: Vec<u64> = expected
            .iter()
            .filter(|s| !times.contains_key(s))
            .copied()
            .collect();
        let unexpected: Vec<String> = times
            .keys()
            .filter(|s| !expected.contains(s))
            .map(|s| format!("{s} ({})", self.tag(*s).unwrap_or("no tag")))
            .collect();
        let repeated: Vec<u64> = times
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect();
        ensure!(
            missing.is_empty() && unexpected.is_empty() && repeated.is_empty(),
            "received {} messages of run {}, {} expected: missing {missing:?}, not expected \
             {unexpected:?}, delivered more than once {repeated:?}",
            lines.len(),
            self.run,
            expected.len()
        );
        Ok(arrivals)
    }
}

/// The one line with `op` of a run.
pub fn single<'o>(output: &'o crate::driver::DriverOutput, op: &str) -> Result<&'o Value> {
    let lines = output.ops(op);
    match lines.as_slice() {
        [line] => Ok(line),
        _ => bail!(
            "{} `{op}` lines where one was expected; the run printed: {:?}",
            lines.len(),
            output.lines
        ),
    }
}

/// Checks a produce run's `done` line: `acked` acknowledged sends and no failed one.
pub fn check_done(output: &crate::driver::DriverOutput, acked: u64) -> Result<()> {
    let done = single(output, "done")?;
    ensure!(
        done["acked"] == acked && done["failed"] == 0,
        "the producer finished with {done}, {acked} acknowledged sends expected"
    );
    Ok(())
}

/// The send results of one produce run, by `seq`.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    pub by_seq: BTreeMap<u64, Value>,
    /// Delayed messages: the send result's offset is the schedule topic's.
    pub delayed: bool,
}

impl Sent {
    pub fn get(&self, seq: &u64) -> Option<&Value> {
        self.by_seq.get(seq)
    }

    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// The offset message id of message `seq`.
    pub fn offset_msg_id(&self, seq: u64) -> Result<String> {
        self.by_seq
            .get(&seq)
            .and_then(|l| l["offset_msg_id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no offset message id for {seq}"))
    }

    pub fn msg_id(&self, seq: u64) -> Result<String> {
        self.by_seq
            .get(&seq)
            .and_then(|l| l["msg_id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no message id for {seq}"))
    }

    /// How many messages each queue got, by queue id.
    pub fn per_queue(&self) -> BTreeMap<i64, i64> {
        let mut counts = BTreeMap::new();
        for line in self.by_seq.values() {
            *counts
                .entry(line["queue_id"].as_i64().unwrap_or(-1))
                .or_default() += 1;
        }
        counts
    }

    /// The acknowledged sends, for [`check_stored`].
    pub fn acked(&self, messages: &Messages) -> Vec<Acked> {
        self.by_seq
            .iter()
            .map(|(seq, line)| Acked {
                queue_id: line["queue_id"].as_i64().unwrap_or(-1) as i32,
                queue_offset: line["queue_offset"].as_i64().unwrap_or(-1),
                msg_id: line["msg_id"].as_str().unwrap_or_default().to_owned(),
                body: messages.body(*seq),
            })
            .collect()
    }
}

/// Checks the `sent` lines of a produce run: one per message, each `SEND_OK` from
/// `broker_name`, with the body, tag and key the run gave it. Returns them by `seq`.
pub fn check_sent(lines: &[&Value], messages: &Messages, broker_name: &str) -> Result<Sent> {
    let mut sent = Sent::default();
    for line in lines {
        let seq = line["seq"]
            .as_u64()
            .with_context(|| format!("no seq: {line}"))?;
        ensure!(
            line["status"] == "SEND_OK",
            "message {seq}: send status {} ({line})",
            line["status"]
        );
        ensure!(
            line["broker_name"] == broker_name,
            "message {seq} went to broker {} instead of {broker_name}",
            line["broker_name"]
        );
        let body = messages.body(seq);
        ensure!(
            line["body_len"] == body.len()
                && line["body_crc32"] == crc32fast::hash(body.as_bytes()),
            "message {seq}: the driver sent another body than expected ({line})"
        );
        ensure!(
            line["tags"] == json!(messages.tag(seq)) && line["keys"] == messages.key(seq),
            "message {seq}: the driver set other tags or keys than expected ({line})"
        );
        ensure!(
            sent.by_seq.insert(seq, (*line).clone()).is_none(),
            "two send results for message {seq}"
        );
    }
    let missing: Vec<u64> = messages
        .all()
        .into_iter()
        .filter(|s| !sent.by_seq.contains_key(s))
        .collect();
    ensure!(
        missing.is_empty(),
        "no send result for messages {missing:?}"
    );
    Ok(sent)
}

/// How long the audit reader waits for the name server to route a topic a send just
/// created: the broker registers it in the background (RocketMQ's broker registers before
/// it answers; the Go topic scenario asserts that on its own).
const ROUTE_WAIT: Duration = Duration::from_secs(15);

/// Every queue of `topic` read from offset 0 by this project's own consumer.
pub fn stored(ns: &str, topic: &str) -> Result<BTreeMap<i32, Vec<Read>>> {
    block_on(async {
        let reader = PullConsumer::start(ClientOptions::new(ns), &format!("{topic}-audit"))?;
        let deadline = tokio::time::Instant::now() + ROUTE_WAIT;
        while reader.queues(topic).await.is_err() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let queues = checker::read_all(&reader, topic).await;
        reader.shutdown();
        queues
    })
}

/// Holds what `topic` stores against the acknowledged sends (and the sends whose outcome is
/// unknown): every queue dense, each acknowledged message exactly once at the queue and
/// offset its send result named with its message id and body, nothing else but unknown ones
/// (at most once each). Returns the check's report.
pub fn check_stored(ns: &str, topic: &str, log: &SendLog) -> Result<checker::Report> {
    let queues = stored(ns, topic)?;
    checker::check(log, &queues).with_context(|| format!("what {topic} stores"))
}

/// Checks that `topic` stores exactly `expected` (queue id, offset, body), for sends whose
/// message ids the client does not report.
pub fn check_stored_at(ns: &str, topic: &str, expected: &[(i32, i64, String)]) -> Result<()> {
    let queues = stored(ns, topic)?;
    let mut problems = Vec::new();
    for (queue_id, offset, body) in expected {
        let found = queues
            .get(queue_id)
            .and_then(|reads| reads.iter().find(|r| r.queue_offset == *offset));
        match found {
            Some(read) if read.body == *body => {}
            Some(read) => problems.push(format!(
                "queue {queue_id} offset {offset}: {} where {body} was sent",
                read.body
            )),
            None => problems.push(format!(
                "queue {queue_id} offset {offset}: nothing ({body})"
            )),
        }
    }
    let total: usize = queues.values().map(Vec::len).sum();
    if total != expected.len() {
        problems.push(format!("{total} messages stored, {} sent", expected.len()));
    }
    ensure!(problems.is_empty(), "what {topic} stores: {problems:?}");
    Ok(())
}

/// A client for requests to one broker process.
fn raw_client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

async fn ask_member(addr: &str, code: i32) -> Result<Value> {
    let response = raw_client()
        .invoke(addr, RemotingCommand::request(code), Duration::from_secs(5))
        .await?;
    if !response.is_success() {
        bail!(
            "{addr} answered request {code} with {}: {:?}",
            response.code,
            response.remark
        );
    }
    serde_json::from_slice(&response.body).with_context(|| format!("{addr}: request {code}"))
}

/// The offset `group` committed for queue `queue_id` of `topic` on the broker at `addr`
/// (QUERY_CONSUMER_OFFSET), or `None` when it has none.
pub fn committed_offset(
    addr: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
) -> Result<Option<i64>> {
    let response = block_on(raw_client().invoke(
        addr,
        crate::requests::query_offset(group, topic, queue_id),
        Duration::from_secs(5),
    ))?;
    match response.code {
        remoting::code::response::SUCCESS => {
            Ok(Some(crate::requests::ext_i64(&response, "offset")?))
        }
        remoting::code::response::QUERY_NOT_FOUND => Ok(None),
        code => bail!(
            "{addr} answered QUERY_CONSUMER_OFFSET with {code}: {:?}",
            response.remark
        ),
    }
}

/// The topics the broker process at `addr` holds (GET_ALL_TOPIC_CONFIG).
pub fn member_topics(addr: &str) -> Result<BTreeSet<String>> {
    let body = block_on(ask_member(addr, request::GET_ALL_TOPIC_CONFIG))?;
    let table = body["topicConfigTable"]
        .as_object()
        .with_context(|| format!("{addr}: no topicConfigTable"))?;
    Ok(table.keys().cloned().collect())
}

/// The subscription groups the broker process at `addr` holds
/// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
pub fn member_groups(addr: &str) -> Result<BTreeSet<String>> {
    let body = block_on(ask_member(addr, request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG))?;
    let table = body["subscriptionGroupTable"]
        .as_object()
        .with_context(|| format!("{addr}: no subscriptionGroupTable"))?;
    Ok(table.keys().cloned().collect())
}

/// Waits (up to `timeout`) until `check` returns `Ok`; returns its last error otherwise.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(error) if std::time::Instant::now() >= deadline => {
                return Err(error.context(format!("still so after {timeout:?}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Checks what a driver's `request` run printed: `count` requests (bodies `TOPIC:SEQ`), each
/// answered in turn by the run's replier with `reply:` + its body, under the request's
/// correlation id, from the cluster's reply topic.
pub fn check_request_run(
    output: &crate::driver::DriverOutput,
    topic: &str,
    count: usize,
) -> Result<()> {
    let done = single(output, "done")?;
    ensure!(
        done["ok"] == count && done["failed"] == 0,
        "requests answered: {done}"
    );
    let responses = output.ops("response");
    ensure!(responses.len() == count, "{} responses", responses.len());
    for (seq, response) in responses.iter().enumerate() {
        ensure!(
            response["seq"] == seq && response["body"] == format!("reply:{topic}:{seq}").as_str(),
            "request {seq} answered with {response}"
        );
        ensure!(
            response["correlation_id"] == response["request_correlation_id"]
                && response["correlation_id"].is_string(),
            "reply to another request: {response}"
        );
        ensure!(
            response["topic"]
                .as_str()
                .is_some_and(|t| t.ends_with("_REPLY_TOPIC")),
            "reply from {}",
            response["topic"]
        );
    }
    Ok(())
}

/// Checks a transaction driver run (Java's and Go's `transaction`): four transactions sent
/// (`commit`, `rollback`, `check-commit`, `check-rollback`), the two left unknown checked
/// back once each, naming the real topic (and, with `check_ids`, the transaction by the
/// message id its send returned), and `topic` holding the two commits once each under the
/// message ids their sends returned.
pub fn check_transaction_run(
    output: &crate::driver::DriverOutput,
    ns: &str,
    topic: &str,
    check_ids: bool,
) -> Result<()> {
    let mut sent = BTreeMap::new();
    for line in output.ops("sent") {
        // SEND_OK from a remoting client, OK (the send's status) from a 5.x gRPC client.
        ensure!(
            line["status"] == "SEND_OK" || line["status"] == "OK",
            "a half message not stored: {line}"
        );
        let name = line["name"].as_str().unwrap_or_default().to_owned();
        sent.insert(name, line["msg_id"].as_str().unwrap_or_default().to_owned());
    }
    ensure!(
        sent.len() == 4,
        "{} transactions sent, 4 expected",
        sent.len()
    );
    let mut checked = BTreeMap::<String, u64>::new();
    for line in output.ops("checked") {
        let name = line["name"].as_str().unwrap_or_default().to_owned();
        ensure!(
            line["topic"] == topic,
            "a check names topic {} (its real topic is {topic})",
            line["topic"]
        );
        ensure!(
            !check_ids || line["transaction_id"].as_str() == sent.get(&name).map(String::as_str),
            "the check of {name} names transaction {}",
            line["transaction_id"]
        );
        *checked.entry(name).or_default() += 1;
    }
    let expected_checks: BTreeMap<String, u64> = [("check-commit", 1), ("check-rollback", 1)]
        .into_iter()
        .map(|(name, times)| (name.to_owned(), times))
        .collect();
    ensure!(
        checked == expected_checks,
        "checks {checked:?}, expected {expected_checks:?}"
    );
    let committed: BTreeMap<String, String> = ["commit", "check-commit"]
        .into_iter()
        .map(|name| (format!("{topic}:{name}"), sent[name].clone()))
        .collect();
    eventually(Duration::from_secs(30), || {
        let stored: Vec<(String, String)> = stored(ns, topic)?
            .into_values()
            .flatten()
            .map(|read| (read.body, read.msg_id))
            .collect();
        let by_body: BTreeMap<String, String> = stored.iter().cloned().collect();
        // A second copy of either commit would show as a second read.
        ensure!(
            stored.len() == committed.len() && by_body == committed,
            "{topic} holds {stored:?}, expected the commits {committed:?} once each"
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_padded_as_the_drivers_pad_them() {
        let messages = Messages::new("T", "r", 3).with_body_bytes(8);
        assert_eq!(messages.body(1), "T:1:abcd");
        assert_eq!(Messages::new("T", "r", 3).body(2), "T:2:");
        assert_eq!(messages.body(1).len(), 8);
    }

    #[test]
    fn a_received_message_is_checked_field_by_field() {
        let messages = Messages::new("T", "r", 3);
        let mut line = json!({
            "topic": "T", "tags": "TagB", "keys": "r-1",
            "properties": {"seq": "1", "run": "r", "color": "blue"},
            "body_len": 4, "body_crc32": crc32fast::hash(b"T:1:"), "body": "T:1:",
        });
        assert_eq!(messages.check_content(&line, "T").unwrap(), 1);
        line["tags"] = json!("TagC");
        let error = messages.check_content(&line, "T").unwrap_err().to_string();
        assert!(
            error.contains("tag: got \"TagC\", sent \"TagB\""),
            "{error}"
        );
    }
}

/// A paced producer run (one driver printing `sent` and `send_failed` lines) to take
/// through a rolling restart.
pub struct RollingProducer {
    /// The client's name, for the outcome.
    pub client: &'static str,
    pub topic: String,
    pub running: Running,
    /// Whether a `sent` line says SEND_OK, in the client's own words.
    pub is_ok: fn(&Value) -> bool,
}

/// What a producer's application saw through a rolling restart.
#[derive(Debug, Clone)]
pub struct RollingOutcome {
    pub client: &'static str,
    pub acknowledged: usize,
    /// Sends that failed or answered anything but SEND_OK.
    pub failed: usize,
    /// Acknowledged sends whose message the topic does not hold afterwards.
    pub lost: usize,
    /// How long restarting every member took.
    pub restart: Duration,
}

/// Restarts every member of `servers`' group in turn (SIGTERM, start, 5 s to settle) once
/// every producer has 50 sends acknowledged, lets the runs end, then reads every topic back:
/// what each application saw, and whether each acknowledged send is stored.
pub fn rolling_restart_under(
    servers: &mut Servers,
    producers: Vec<RollingProducer>,
) -> Result<Vec<RollingOutcome>> {
    let mut producers = producers;
    for producer in &mut producers {
        let warmed = producer
            .running
            .wait_until(Duration::from_secs(90), |lines| {
                lines.iter().filter(|l| l["op"] == "sent").count() >= 50
            });
        ensure!(
            warmed,
            "the {} producer did not get 50 sends through before the restart",
            producer.client
        );
    }
    let ns = servers.ns();
    let group = servers.group.as_mut().context("a group setup")?;
    let restart = group.rolling_restart(Duration::from_secs(90), Duration::from_secs(5))?;
    let mut outcomes = Vec::new();
    for producer in producers {
        let finished = producer.running.finish()?;
        let sent = finished.output.ops("sent");
        let acknowledged: Vec<&Value> = sent
            .iter()
            .copied()
            .filter(|line| (producer.is_ok)(line))
            .collect();
        let stored_ids: BTreeSet<String> = stored(&ns, &producer.topic)?
            .into_values()
            .flatten()
            .map(|read| read.msg_id)
            .collect();
        let lost = acknowledged
            .iter()
            .filter(|line| {
                !line["msg_id"]
                    .as_str()
                    .is_some_and(|id| stored_ids.contains(id))
            })
            .count();
        outcomes.push(RollingOutcome {
            client: producer.client,
            acknowledged: acknowledged.len(),
            failed: finished.output.ops("send_failed").len() + sent.len() - acknowledged.len(),
            lost,
            restart,
        });
    }
    Ok(outcomes)
}
