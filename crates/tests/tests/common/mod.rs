//! Helpers the `client_*` test binaries share: a name server with one or more standalone
//! brokers, bounded waits, push-consumer settings for quick tests, and a bounded runner for
//! the `mqadmin` / `mq` tools.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::consumer::{ConsumeFromWhere, ConsumeResult};
use client::{Admin, ClientOptions, PushConsumerOptions, ReceivedMessage};
use tests::{binary, Broker, NameServer};

/// Bounds every wait of these tests.
pub const WAIT: Duration = Duration::from_secs(60);

/// The cluster name `tests::Broker` registers with.
pub const CLUSTER: &str = "TestCluster";

/// A name server and standalone brokers registered with it, each in the test's own
/// directory.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub namesrv: NameServer,
    pub brokers: Vec<Broker>,
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
            .map(|(name, extra)| Broker::start(dir.path(), name, &namesrv.addr(), extra).unwrap())
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
        let mut options = ClientOptions::new(&self.namesrv.addr());
        options.heartbeat_interval = Duration::from_secs(2);
        options
    }

    /// Creates `topic` with `queues` queues on every broker and waits until the name
    /// server routes all of them.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let admin = Admin::start(self.options()).unwrap();
        for broker in &self.brokers {
            admin
                .create_topic(&broker.addr(), &Admin::topic_config(topic, queues, queues))
                .await
                .unwrap();
        }
        let expected = queues * self.brokers.len() as i32;
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

    /// Messages stored in `topic`, summed over its queues (max offsets as the brokers
    /// report them).
    pub async fn stored(&self, topic: &str) -> i64 {
        let admin = Admin::start(self.options()).unwrap();
        let stats = admin.topic_stats(topic).await;
        admin.shutdown();
        stats.map_or(0, |s| s.offset_table.values().map(|o| o.max_offset).sum())
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
    seen.lock()
        .unwrap()
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect()
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

fn run_tool(name: &str, args: &[String], stdin: Option<&str>) -> ToolRun {
    use std::io::Write;
    let mut child = Command::new(binary(name))
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    // Read the pipes on their own threads so a chatty tool cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} {args:?} did not finish within {WAIT:?}; stderr: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ToolRun {
        ok: status.success(),
        out: out.join().unwrap_or_default(),
        err: err.join().unwrap_or_default(),
    }
}
