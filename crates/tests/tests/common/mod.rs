//! Helpers the `client_*` test binaries share: a name server with one or more standalone
//! brokers ([`Cluster`]) or with a 3-node broker group ([`Group`]), topic creation on
//! whatever masters serve, bounded waits, push-consumer settings for quick tests, a bounded
//! runner for the `mqadmin` / `mq` tools, and the client [`scenarios`] run against both.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::consumer::{ConsumeFromWhere, ConsumeResult};
use client::{Admin, ClientOptions, PushConsumerOptions, ReceivedMessage};
use remoting::body::TopicConfig;
use tests::group::{wait_for_master, BrokerGroup};
use tests::{binary, Broker, NameServer};

pub mod scenarios;

/// Bounds every wait of these tests.
pub const WAIT: Duration = Duration::from_secs(60);

/// The cluster name `tests::Broker` registers with.
pub const CLUSTER: &str = "TestCluster";

/// A name server and standalone brokers registered with it, each in the test's own
/// directory.
/// Retried messages wait one second whatever their delay level: RocketMQ's default levels
/// make the first retry wait 10 s and the second 30 s.
fn quick_retry_levels() -> (&'static str, String) {
    ("messageDelayLevel", "1s".to_owned())
}

pub struct Cluster {
    pub namesrv: NameServer,
    pub brokers: Vec<Broker>,
    /// Last: fields drop in order, and the processes above must stop (and print their
    /// logs on a failure) before the directory holding those logs is removed.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// One broker, `broker-a`, with the default config.
    pub async fn start() -> Cluster {
        Cluster::start_with(&[("broker-a", &[])]).await
    }

    /// Brokers named as given, each with extra config entries. Returns once the name
    /// server lists every broker as a master: a broker listens before it has registered,
    /// and until then no client can find it.
    pub async fn start_with(brokers: &[(&str, &[(&str, String)])]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let namesrv = NameServer::start(dir.path()).unwrap();
        let brokers: Vec<Broker> = brokers
            .iter()
            .map(|(name, extra)| {
                let mut entries = vec![quick_retry_levels()];
                entries.extend(extra.iter().cloned());
                Broker::start(dir.path(), name, &namesrv.addr(), &entries).unwrap()
            })
            .collect();
        let cluster = Cluster {
            dir,
            namesrv,
            brokers,
        };
        let admin = Admin::start(cluster.options()).unwrap();
        for broker in &cluster.brokers {
            let name = broker.process.name().to_owned();
            let addr = broker.addr();
            eventually(&format!("{name} registered"), || {
                let (admin, name, addr) = (admin.clone(), name.clone(), addr.clone());
                async move {
                    admin.cluster_info().await.is_ok_and(|info| {
                        info.broker_addr_table
                            .get(&name)
                            .and_then(|b| b.master_addr())
                            == Some(addr.as_str())
                    })
                }
            })
            .await;
        }
        admin.shutdown();
        cluster
    }

    /// The first broker.
    pub fn broker(&self) -> &Broker {
        &self.brokers[0]
    }

    pub fn namesrv_addr(&self) -> String {
        self.namesrv.addr()
    }

    pub fn options(&self) -> ClientOptions {
        client_options(&self.namesrv.addr())
    }

    /// Creates `topic` with `queues` queues on every broker and waits until the name
    /// server routes all of them.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        create_topic(&self.namesrv.addr(), topic, queues).await;
    }

    /// Messages stored in `topic`, summed over its queues (max offsets as the brokers
    /// report them).
    pub async fn stored(&self, topic: &str) -> i64 {
        let admin = Admin::start(self.options()).unwrap();
        let stats = admin.topic_stats(topic).await;
        admin.shutdown();
        stats.map_or(0, |s| s.offset_table.values().map(|o| o.max_offset).sum())
    }
}

/// The broker name (and raft group) of [`Group`]'s members.
pub const GROUP: &str = "RaftNode00";

/// A name server and a 3-node broker group (DLedger mode) registered with it, each member a
/// real `mqbroker` in the test's own directory.
pub struct Group {
    pub namesrv: NameServer,
    pub brokers: BrokerGroup,
    /// The master the name server listed once the group had elected one.
    pub master: String,
    admin: Admin,
    /// Last: fields drop in order, and the processes above must stop (and print their
    /// logs on a failure) before the directory holding those logs is removed.
    pub dir: tempfile::TempDir,
}

impl Group {
    /// Returns once the name server lists a master: until then no client can send.
    pub async fn start() -> Group {
        Group::start_with(&[]).await
    }

    /// [`Group::start`] with extra config entries for every member.
    pub async fn start_with(extra: &[(&str, String)]) -> Group {
        let dir = tempfile::tempdir().unwrap();
        let namesrv = NameServer::start(dir.path()).unwrap();
        let mut entries = vec![quick_retry_levels()];
        entries.extend(extra.iter().cloned());
        let brokers = BrokerGroup::start(dir.path(), GROUP, &namesrv.addr(), &entries).unwrap();
        let admin = Admin::start(client_options(&namesrv.addr())).unwrap();
        let master = wait_for_master(&admin, GROUP, None, WAIT).await.unwrap();
        Group {
            dir,
            namesrv,
            brokers,
            master,
            admin,
        }
    }

    /// Kills (SIGKILL) the member serving at `addr` and returns its index.
    pub fn kill(&mut self, addr: &str) -> usize {
        let index = self.brokers.index_of(addr).expect("a member's address");
        self.brokers.members[index].process.kill();
        index
    }

    /// Waits until the name server lists a master other than `not`.
    pub async fn new_master(&self, not: &str) -> String {
        wait_for_master(&self.admin, GROUP, Some(not), WAIT)
            .await
            .unwrap()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.admin.shutdown();
    }
}

/// Polls `check` every 100 ms until it holds; fails the test after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Client settings for these tests: heartbeats often enough that a consumer group forms
/// and re-forms within seconds.
pub fn client_options(namesrv: &str) -> ClientOptions {
    let mut options = ClientOptions::new(namesrv);
    options.heartbeat_interval = Duration::from_secs(2);
    options
}

/// Creates `topic` with `queues` queues on every master the name server at `namesrv` lists
/// (each standalone broker, or a group's elected master, which replicates it to its
/// followers), and waits until the name server routes all of them. A create is tried
/// again until [`WAIT`] passes: a group's master may change hands just as it is asked.
pub async fn create_topic(namesrv: &str, topic: &str, queues: i32) {
    let admin = Admin::start(client_options(namesrv)).unwrap();
    let config = Admin::topic_config(topic, queues, queues);
    let deadline = tokio::time::Instant::now() + WAIT;
    let masters = loop {
        match create_on_masters(&admin, &config).await {
            Ok(masters) => break masters,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "creating {topic}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expected = queues * masters as i32;
    eventually(&format!("a route for {topic}"), || {
        let admin = admin.clone();
        let topic = topic.to_owned();
        async move {
            admin.topic_route(&topic).await.is_ok_and(|r| {
                r.queue_datas
                    .iter()
                    .map(|q| q.write_queue_nums)
                    .sum::<i32>()
                    == expected
            })
        }
    })
    .await;
    admin.shutdown();
}

/// Creates the topic on every listed master; the number of masters, or why it failed.
async fn create_on_masters(admin: &Admin, config: &TopicConfig) -> Result<usize, String> {
    let info = admin.cluster_info().await.map_err(|e| e.to_string())?;
    let masters: Vec<String> = info
        .broker_addr_table
        .values()
        .filter_map(|b| b.master_addr().map(str::to_owned))
        .collect();
    if masters.is_empty() {
        return Err("no master listed".to_owned());
    }
    for master in &masters {
        admin
            .create_topic(master, config)
            .await
            .map_err(|e| format!("{master}: {e}"))?;
    }
    Ok(masters.len())
}

/// Push-consumer settings with short timers, consuming from the first offset.
pub fn push_options(group: &str, topic: &str) -> PushConsumerOptions {
    let mut options = PushConsumerOptions::new(group).subscribe(topic, "*");
    options.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    options.rebalance_interval = Duration::from_secs(1);
    options.persist_offset_interval = Duration::from_millis(500);
    options.long_poll = Duration::from_secs(2);
    options.pull_error_delay = Duration::from_millis(300);
    options.lock_interval = Duration::from_secs(2);
    options
}

/// What a listener received.
pub type Seen = Arc<Mutex<Vec<ReceivedMessage>>>;

/// A listener that records every message and reports success.
pub fn recorder(
    seen: &Seen,
) -> impl Fn(Vec<ReceivedMessage>) -> std::future::Ready<ConsumeResult> + Send + Sync + 'static {
    let seen = Arc::clone(seen);
    move |messages| {
        seen.lock().unwrap().extend(messages);
        std::future::ready(ConsumeResult::Success)
    }
}

/// The bodies `seen` holds, in arrival order.
pub fn bodies(seen: &Seen) -> Vec<String> {
    body_texts(&seen.lock().unwrap())
}

/// The bodies of `messages`, in order.
pub fn body_texts(messages: &[ReceivedMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect()
}

/// Checks that `messages` are `count` messages at consecutive queue offsets from
/// `first_offset`, as a batch is stored.
pub fn assert_consecutive(messages: &[ReceivedMessage], first_offset: i64, count: i64) {
    let offsets: Vec<i64> = messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(
        offsets,
        (first_offset..first_offset + count).collect::<Vec<_>>()
    );
}

/// What a finished tool run printed.
pub struct ToolRun {
    pub ok: bool,
    pub out: String,
    pub err: String,
}

/// Runs one of this workspace's binaries (`mqadmin`, `mq`) with `stdin` as its input,
/// killing it if it runs longer than [`WAIT`]. Runs off the async runtime.
pub async fn tool(name: &'static str, args: &[&str], stdin: Option<&'static str>) -> ToolRun {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || run_tool(name, &args, stdin))
        .await
        .unwrap()
}

/// [`tool`] with its arguments written as one line (split on blanks; none may hold one).
pub async fn tool_line(name: &'static str, line: &str) -> ToolRun {
    let args: Vec<&str> = line.split_whitespace().collect();
    tool(name, &args, None).await
}

/// [`tool_line`] for a run that must succeed; returns what it printed to stdout.
pub async fn tool_line_ok(name: &'static str, line: &str) -> String {
    let ToolRun { ok, out, err } = tool_line(name, line).await;
    assert!(ok, "{err}");
    out
}

/// Runs a tool that must succeed and returns what it printed to stdout.
pub async fn tool_ok(name: &'static str, args: &[&str], stdin: Option<&'static str>) -> String {
    let ToolRun { ok, out, err } = tool(name, args, stdin).await;
    assert!(ok, "{err}");
    out
}

/// Waits until `mqadmin topicList` names `topic`.
pub async fn wait_for_topic_list(namesrv: &str, topic: &str) {
    eventually(&format!("{topic} in topicList"), || {
        let namesrv = namesrv.to_owned();
        async move {
            let run = tool("mqadmin", &["topicList", "-n", &namesrv], None).await;
            run.ok && run.out.lines().any(|l| l == topic)
        }
    })
    .await;
}

/// The messages an `mqadmin topicStatus` table counts: its `#Max Offset` column summed
/// over the queue rows.
pub fn topic_status_total(out: &str) -> i64 {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<i64>().unwrap())
        .sum()
}

fn run_tool(name: &str, args: &[String], stdin: Option<&str>) -> ToolRun {
    let mut command = Command::new(binary(name));
    command.args(args).env_remove("NAMESRV_ADDR");
    let run = tests::driver::run_captured(&mut command, stdin, WAIT).unwrap();
    let Some(status) = run.status else {
        panic!(
            "{name} {args:?} did not finish within {WAIT:?}; stderr: {}",
            run.stderr
        );
    };
    ToolRun {
        ok: status.success(),
        out: run.stdout,
        err: run.stderr,
    }
}

/// Every message of `queue` from offset 0, through `reader` (bounded: 1000 pulls).
pub async fn read_queue(
    reader: &client::PullConsumer,
    queue: &client::MessageQueue,
) -> Vec<ReceivedMessage> {
    use client::consumer::PullStatus;
    let mut all = Vec::new();
    let mut offset = 0;
    for _ in 0..1000 {
        let Ok(pulled) = reader.pull(queue, "*", offset, 32).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match pulled.status {
            PullStatus::Found => {
                all.extend(pulled.messages);
                offset = pulled.next_begin_offset;
            }
            PullStatus::NoMatchedMsg => offset = pulled.next_begin_offset,
            PullStatus::NoNewMsg | PullStatus::OffsetIllegal => break,
        }
    }
    all
}
