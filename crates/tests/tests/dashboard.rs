//! `mqdashboard` end to end, in headless Chromium (Debian's, driven by Playwright:
//! `crates/tests/dashboard/driver.js`, installed by `scripts/setup-dashboard-browser`):
//! over a 3-node broker group the pages show the numbers of a known workload (members and
//! roles, a topic's messages and queues, a group's lag, a live consumer among its group's
//! online clients, the in, out and consume rates of a paced producer and that consumer, a
//! message found by id, its markup
//! shown as text, messages found by key) and the changes work (a group's offsets reset, a topic created,
//! leadership moved to the member picked); with ACL on, a
//! change needs a signed-in admin account. Screenshots of each page are kept under
//! `target/dashboard-screenshots/`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use client::admin::MemberRole;
use client::{Admin, ClientOptions, Message, Producer, ProducerOptions};
use serde_json::Value;
use tests::compat::{block_on, Servers, Setup};
use tests::{binary, free_port, repo_root, wait_for_port, Broker, NameServer, Process};

const TOPIC: &str = "DashTopic";
const GROUP: &str = "dash-group";
const SENT: usize = 40;
const KEY: &str = "dash-key";
/// A group with an online consumer, taking what a producer sends at [`RATE`] messages a
/// second to [`RATE_TOPIC`] while the browser looks: the rates the pages show are checked
/// against it.
const ONLINE_GROUP: &str = "dash-online";
const RATE_TOPIC: &str = "DashPaced";
const RATE: f64 = 20.0;
/// How long the paced producer runs before the pages are read: the brokers' rates are over
/// their last 10 s.
const RATE_WARM_UP: Duration = Duration::from_secs(12);
const DRIVER_TIMEOUT: Duration = Duration::from_secs(240);

fn check_installed() -> Result<()> {
    let installed = repo_root().join("target/dashboard-browser/node_modules/playwright-core");
    ensure!(
        installed.exists() && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: run scripts/setup-dashboard-browser \
         (scripts/test does)"
    );
    Ok(())
}

/// `mqdashboard` on a free port of 127.0.0.1, with `extra` arguments.
fn start_dashboard(dir: &Path, namesrv: &str, extra: &[&str]) -> Result<(Process, String)> {
    let port = free_port();
    let port_text = port.to_string();
    let mut args = vec!["-n", namesrv, "-p", &port_text, "--address", "127.0.0.1"];
    args.extend_from_slice(extra);
    let process = Process::spawn(
        "mqdashboard",
        &binary("mqdashboard"),
        &args,
        dir.join("dashboard.log"),
    )?;
    wait_for_port(port, Duration::from_secs(20))?;
    Ok((process, format!("http://127.0.0.1:{port}")))
}

/// Runs the browser driver; the lines it printed, by step.
fn drive(url: &str, screenshots: &str, args: &[&str]) -> Result<Vec<Value>> {
    let root = repo_root();
    let mut command = Command::new("node");
    command
        .arg(root.join("crates/tests/dashboard/driver.js"))
        .args(["--url", url, "--screenshots", screenshots])
        .args(args)
        .env(
            "NODE_PATH",
            root.join("target/dashboard-browser/node_modules"),
        )
        .env("HOME", std::env::temp_dir());
    let finished = tests::driver::run_to_end("dashboard driver", command, DRIVER_TIMEOUT)?;
    ensure!(
        finished.status.is_some_and(|s| s.success()),
        "the driver failed ({:?}): {}",
        finished.status,
        finished.output.stderr
    );
    Ok(finished.output.lines)
}

fn step<'a>(lines: &'a [Value], name: &str) -> Result<&'a Value> {
    let line = lines
        .iter()
        .find(|l| l["step"] == name)
        .with_context(|| format!("the driver reported no `{name}` step: {lines:?}"))?;
    ensure!(
        line.get("error").is_none(),
        "step `{name}` failed in the browser: {line}"
    );
    Ok(line)
}

fn screenshots(test: &str) -> String {
    repo_root()
        .join("target/dashboard-screenshots")
        .join(test)
        .display()
        .to_string()
}

/// Sends [`SENT`] messages with [`KEY`]; the unique id and body of one of them.
async fn produce(options: ClientOptions) -> Result<(String, String)> {
    let producer = Producer::start(options, ProducerOptions::new("dash-producer"))?;
    let mut last = None;
    for i in 0..SENT {
        // Markup in a body must show as text, never run: the page escapes what producers sent.
        let body =
            format!("<b>dashboard</b> message {i} <img src=x onerror=\"document.title='x'\">");
        let message = Message::new(TOPIC, body.clone().into_bytes()).with_keys([KEY]);
        let sent = producer.send(message).await?;
        last = Some((sent.msg_id, body));
    }
    producer.shutdown().await;
    last.context("nothing sent")
}

/// A producer sending to [`RATE_TOPIC`] at [`RATE`] messages a second until stopped.
struct PacedProducer {
    sent: Arc<AtomicU64>,
    started: Instant,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PacedProducer {
    /// Starts sending; call on the runtime that is to carry it.
    fn start(options: ClientOptions) -> Result<PacedProducer> {
        let producer = Producer::start(options, ProducerOptions::new("dash-paced"))?;
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (Arc::clone(&sent), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            // A late tick is made up at once, so the rate holds over any window of seconds.
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                let message = Message::new(RATE_TOPIC, b"paced".to_vec());
                match producer.send(message).await {
                    Ok(_) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    // The leadership move at the end of the test fails a send or two.
                    Err(e) => eprintln!("paced send failed: {e}"),
                }
            }
            producer.shutdown().await;
        });
        Ok(PacedProducer {
            sent,
            started: Instant::now(),
            stop,
            task,
        })
    }

    /// Messages a second stored since it started.
    fn achieved_rate(&self) -> f64 {
        self.sent.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// A rate a page showed, against the rate the paced producer achieved: within half of it
/// either way (the brokers average over their last 10 s, the producer over its whole run).
fn ensure_rate_shown(what: &str, shown: &Value, achieved: f64) -> Result<()> {
    let shown = shown
        .as_f64()
        .with_context(|| format!("{what}: no number shown ({shown})"))?;
    ensure!(
        shown >= achieved * 0.5 && shown <= achieved * 1.5,
        "{what}: the page shows {shown} msg/s, the producer sent {achieved:.1} msg/s"
    );
    Ok(())
}

/// Total lag of the group as the brokers report it.
async fn lag(admin: &Admin) -> Result<i64> {
    let stats = admin.consume_stats(GROUP, Some(TOPIC)).await?;
    Ok(stats
        .offset_table
        .values()
        .map(|o| (o.broker_offset - o.consumer_offset.max(0)).max(0))
        .sum())
}

#[test]
fn the_dashboard_shows_a_broker_group_and_its_workload_and_makes_changes() -> Result<()> {
    check_installed()?;
    let dir = tempfile::tempdir()?;
    let servers = Servers::start(Setup::Group, dir.path(), "DashGroup", &[])?;
    let namesrv = servers.ns();
    let master = servers.master()?;
    let (msg_id, body, expected_lag, follower_node, old_master) = block_on(async {
        let admin = Admin::start(ClientOptions::new(&namesrv))?;
        admin
            .create_topic_in_cluster(&servers.cluster, &Admin::topic_config(TOPIC, 4, 4))
            .await?;
        common::wait_for_topic_list(&namesrv, TOPIC).await;
        let (msg_id, body) = produce(ClientOptions::new(&namesrv)).await?;
        // The group takes every message of queue 0: the rest is its lag.
        let queue = client::MessageQueue::new(TOPIC, &servers.broker_name, 0);
        // Its end as the master's stats say, once they count every message sent.
        let mut max = 0;
        common::eventually("the topic's stats count every message", || {
            let admin = admin.clone();
            async move {
                admin.topic_stats(TOPIC).await.is_ok_and(|stats| {
                    stats
                        .offset_table
                        .values()
                        .map(|o| o.max_offset)
                        .sum::<i64>()
                        == SENT as i64
                })
            }
        })
        .await;
        if let Some(offsets) = admin.topic_stats(TOPIC).await?.offset_table.get(&queue) {
            max = offsets.max_offset;
        }
        ensure!(max > 0, "queue 0 holds none of the messages sent");
        admin
            .instance()
            .update_consumer_offset(&master, GROUP, &queue, max)
            .await
            .context("committing the group's offset")?;
        let expected_lag = SENT as i64 - max;
        common::eventually("the group's lag as committed", || {
            let admin = admin.clone();
            async move { lag(&admin).await.is_ok_and(|l| l == expected_lag) }
        })
        .await;
        let members = admin.broker_group(&servers.broker_name).await?;
        let follower = members
            .iter()
            .find(|m| m.role == MemberRole::Slave)
            .and_then(|m| m.raft.as_ref())
            .map(|r| r.node_id.clone())
            .context("a follower with a raft status")?;
        let master = members
            .iter()
            .find(|m| m.role == MemberRole::Master)
            .map(|m| m.addr.clone())
            .context("a master")?;
        admin.shutdown();
        anyhow::Ok((msg_id, body, expected_lag, follower, master))
    })?;

    // An online consumer of a group of its own and a paced producer, kept running on a
    // runtime of their own while the browser looks (the group under test has no consumer:
    // a consumer's subscription would change which queues its lag counts).
    let online_runtime = tokio::runtime::Runtime::new()?;
    let (online, paced) = online_runtime.block_on(async {
        let admin = Admin::start(ClientOptions::new(&namesrv))?;
        admin
            .create_topic_in_cluster(&servers.cluster, &Admin::topic_config(RATE_TOPIC, 2, 2))
            .await?;
        admin.shutdown();
        common::wait_for_topic_list(&namesrv, RATE_TOPIC).await;
        let options = client::PushConsumerOptions {
            subscriptions: vec![(RATE_TOPIC.to_owned(), "*".to_owned())],
            ..client::PushConsumerOptions::new(ONLINE_GROUP)
        };
        let listener =
            |_: Vec<client::ReceivedMessage>| async { client::consumer::ConsumeResult::Success };
        let consumer =
            client::PushConsumer::start(ClientOptions::new(&namesrv), options, listener).await?;
        let client_id = consumer.client_id().to_owned();
        // Listed once the master has its heartbeat.
        common::eventually("the online consumer listed by the master", || {
            let (namesrv, client_id) = (namesrv.clone(), client_id.clone());
            async move {
                let Ok(admin) = Admin::start(ClientOptions::new(&namesrv)) else {
                    return false;
                };
                let listed = admin
                    .consumer_connection(ONLINE_GROUP)
                    .await
                    .is_ok_and(|c| c.connection_set.iter().any(|c| c.client_id == client_id));
                admin.shutdown();
                listed
            }
        })
        .await;
        let paced = PacedProducer::start(ClientOptions::new(&namesrv))?;
        tokio::time::sleep(RATE_WARM_UP).await;
        anyhow::Ok((consumer, paced))
    })?;
    let (_dashboard, url) = start_dashboard(dir.path(), &namesrv, &[])?;
    let lines = drive(
        &url,
        &screenshots("group"),
        &[
            "--topic",
            TOPIC,
            "--group",
            GROUP,
            "--msg-id",
            &msg_id,
            "--create-topic",
            "DashCreated",
            "--leader-node",
            &follower_node,
            "--reset-to-start",
            "true",
            "--key",
            KEY,
            "--online-group",
            ONLINE_GROUP,
        ],
    )?;
    println!("the driver saw: {lines:#?}");

    let cluster = step(&lines, "cluster")?;
    let members = cluster["members"].as_array().context("members")?;
    ensure!(members.len() == 3, "members shown: {members:?}");
    ensure!(
        members.iter().filter(|m| m["role"] == "MASTER").count() == 1,
        "one master shown: {members:?}"
    );
    ensure!(
        members.iter().all(|m| m["term"].as_i64().unwrap_or(0) >= 1),
        "raft terms shown: {members:?}"
    );
    ensure!(
        cluster["chartPoints"].as_i64().unwrap_or(0) >= 2,
        "throughput chart: {cluster}"
    );
    let achieved = paced.achieved_rate();
    ensure_rate_shown("cluster, in", &cluster["throughputIn"], achieved)?;
    ensure_rate_shown("cluster, out", &cluster["throughputOut"], achieved)?;

    let topics = step(&lines, "topics")?;
    ensure!(
        topics["messages"].as_i64() == Some(SENT as i64) && topics["queues"].as_i64() == Some(4),
        "the topic's row: {topics}"
    );
    ensure_rate_shown(
        "topics, the paced topic's in",
        &topics["inTps"][RATE_TOPIC],
        achieved,
    )?;
    let topic = step(&lines, "topic")?;
    let queues = topic["queues"].as_array().context("queues")?;
    let stored: i64 = queues.iter().filter_map(|q| q["maxOffset"].as_i64()).sum();
    ensure!(
        queues.len() == 4 && stored == SENT as i64,
        "the topic's queues: {topic}"
    );
    let group = step(&lines, "group")?;
    ensure!(
        group["lag"].as_i64() == Some(expected_lag),
        "the group's lag: {group}, the brokers say {expected_lag}"
    );
    let online_group = step(&lines, "online-group")?;
    ensure!(
        online_group["clientIds"] == serde_json::json!([online.client_id()]),
        "the online clients: {online_group}, the consumer is {}",
        online.client_id()
    );
    ensure_rate_shown(
        "the online group's consume rate",
        &online_group["consumeTps"],
        achieved,
    )?;
    online_runtime.block_on(async {
        paced.stop().await;
        online.shutdown().await;
    });
    let reset = step(&lines, "reset")?;
    ensure!(
        reset["lagAfter"].as_i64() == Some(SENT as i64),
        "after resetting the group to its topic's start: {reset}"
    );
    let message = step(&lines, "message")?;
    ensure!(
        message["found"] == true && message["body"].as_str() == Some(body.as_str()),
        "the message looked up by id {msg_id}: {message}"
    );

    let by_key = step(&lines, "messages-by-key")?;
    ensure!(
        by_key["found"].as_i64().is_some_and(|n| n >= 1)
            && by_key["topics"] == serde_json::json!([TOPIC]),
        "the messages with key {KEY}: {by_key}"
    );
    let created = step(&lines, "create-as-admin")?;
    ensure!(
        step(&lines, "created-listed")?["listed"] == true,
        "the created topic is not listed: {created}"
    );
    block_on(async {
        let admin = Admin::start(ClientOptions::new(&namesrv))?;
        let listed = admin.topic_list().await?.contains("DashCreated");
        admin.shutdown();
        ensure!(listed, "the name servers do not know the created topic");
        anyhow::Ok(())
    })?;

    step(&lines, "leader")?;
    let new_master = servers.wait_for_master(Some(&old_master))?;
    let moved_to = block_on(async {
        let admin = Admin::start(ClientOptions::new(&namesrv))?;
        let members = admin.broker_group(&servers.broker_name).await?;
        admin.shutdown();
        anyhow::Ok(
            members
                .into_iter()
                .find(|m| m.addr == new_master)
                .and_then(|m| m.raft)
                .map(|r| r.node_id),
        )
    })?;
    ensure!(
        moved_to.as_deref() == Some(follower_node.as_str()),
        "leadership went to {moved_to:?}, not the member picked ({follower_node})"
    );
    let errors = step(&lines, "page-errors")?;
    ensure!(
        errors["errors"].as_array().is_some_and(Vec::is_empty),
        "the page threw: {errors}"
    );
    Ok(())
}

const ADMIN_AK: &str = "dashAdmin";
const ADMIN_SK: &str = "dashAdminSecret";
const READER_AK: &str = "dashReader";
const READER_SK: &str = "dashReaderSecret";

const PLAIN_ACL: &str = r#"
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: dashReader
    secretKey: dashReaderSecret
    admin: false
    defaultTopicPerm: SUB
    defaultGroupPerm: SUB
  - accessKey: dashAdmin
    secretKey: dashAdminSecret
    admin: true
"#;

/// The status line of a plain HTTP request.
fn http_status(url: &str, method: &str, path: &str, body: &str) -> Result<String> {
    let answer = http_answer(url, method, path, body)?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// The whole answer to a plain HTTP request.
fn http_answer(url: &str, method: &str, path: &str, body: &str) -> Result<String> {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn with_acl_on_the_dashboard_makes_changes_only_for_a_signed_in_admin() -> Result<()> {
    check_installed()?;
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("rocketmq-home");
    std::fs::create_dir_all(home.join("conf"))?;
    std::fs::write(home.join("conf/plain_acl.yml"), PLAIN_ACL)?;
    let namesrv = NameServer::start(dir.path())?;
    let broker = Broker::start(
        dir.path(),
        "dash-acl",
        &namesrv.addr(),
        &[
            ("aclEnable", "true".to_owned()),
            ("rocketmqHome", home.display().to_string()),
        ],
    )?;
    let ns = namesrv.addr();
    let admin_options = || ClientOptions::new(&ns).with_credentials(ADMIN_AK, ADMIN_SK);
    let msg_id = block_on(async {
        let admin = Admin::start(admin_options())?;
        admin
            .create_topic(&broker.addr(), &Admin::topic_config(TOPIC, 4, 4))
            .await?;
        common::wait_for_topic_list(&ns, TOPIC).await;
        let (msg_id, _) = produce(admin_options()).await?;
        admin.shutdown();
        anyhow::Ok(msg_id)
    })?;
    let conf = dir.path().join("dashboard.properties");
    std::fs::write(
        &conf,
        format!(
            "rocketmq.config.aclEnabled=true\nrocketmq.config.accessKey={READER_AK}\n\
             rocketmq.config.secretKey={READER_SK}\n"
        ),
    )?;
    let conf_arg = conf.display().to_string();
    let (_dashboard, url) = start_dashboard(dir.path(), &ns, &["-c", &conf_arg])?;

    // Not signed in: refused by the dashboard itself.
    let unsigned = http_status(
        &url,
        "POST",
        "/api/topics",
        r#"{"topic":"DashUnsigned","queues":4}"#,
    )?;
    ensure!(
        unsigned.contains(" 401 "),
        "a change without signing in answered {unsigned}"
    );

    let lines = drive(
        &url,
        &screenshots("acl"),
        &[
            "--topic",
            TOPIC,
            "--group",
            GROUP,
            "--msg-id",
            &msg_id,
            "--user-key",
            READER_AK,
            "--user-secret",
            READER_SK,
            "--admin-key",
            ADMIN_AK,
            "--admin-secret",
            ADMIN_SK,
            "--create-topic",
            "DashAclCreated",
        ],
    )?;
    println!("the driver saw: {lines:#?}");
    // Reads go through with the dashboard's read-only keys.
    let topics = step(&lines, "topics")?;
    ensure!(
        topics["messages"].as_i64() == Some(SENT as i64),
        "the topic's row with ACL on: {topics}"
    );
    let as_user = step(&lines, "create-as-user")?;
    ensure!(
        as_user["result"]
            .as_str()
            .is_some_and(|r| r.contains("not an admin")),
        "a read-only account's create: {as_user}"
    );
    step(&lines, "create-as-admin")?;
    ensure!(
        step(&lines, "created-listed")?["listed"] == true,
        "the admin's topic is not listed"
    );
    let denied_exists = block_on(async {
        let admin = Admin::start(admin_options())?;
        let topics = admin.topic_list().await?;
        admin.shutdown();
        anyhow::Ok((
            topics.contains("DashAclCreatedDenied"),
            topics.contains("DashAclCreated"),
        ))
    })?;
    ensure!(
        denied_exists == (false, true),
        "(refused topic exists, admin's topic exists) = {denied_exists:?}"
    );
    drop(broker);
    Ok(())
}

/// With ACL 2.0 on the brokers (users and policies), signing in to the dashboard takes a
/// user's name and password: a super user may make changes, a normal user only read, a
/// wrong password is refused, and five failures lock the address out for a minute.
#[test]
fn with_acl_2_a_super_user_signs_in_as_admin() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let namesrv = NameServer::start(dir.path())?;
    let broker = Broker::start(
        dir.path(),
        "dash-acl2",
        &namesrv.addr(),
        &[
            ("authenticationEnabled", "true".to_owned()),
            ("authorizationEnabled", "true".to_owned()),
            (
                "initAuthenticationUser",
                r#"{"username":"dashSuper","password":"dashSuperPassword"}"#.to_owned(),
            ),
        ],
    )?;
    let ns = namesrv.addr();
    block_on(async {
        let admin = Admin::start(
            ClientOptions::new(&ns).with_credentials("dashSuper", "dashSuperPassword"),
        )?;
        let broker_addr = broker.addr();
        common::eventually("the super user exists", || {
            let (admin, addr) = (admin.clone(), broker_addr.clone());
            async move { matches!(admin.get_user(&addr, "dashSuper").await, Ok(Some(_))) }
        })
        .await;
        let reader = remoting::body::auth::UserInfo {
            username: Some("dashReader".into()),
            password: Some("dashReaderPassword".into()),
            ..Default::default()
        };
        admin.create_user(&broker_addr, &reader).await?;
        admin.shutdown();
        anyhow::Ok(())
    })?;
    let conf = dir.path().join("dashboard.properties");
    std::fs::write(
        &conf,
        "rocketmq.config.aclEnabled=true\nrocketmq.config.accessKey=dashReader\n\
         rocketmq.config.secretKey=dashReaderPassword\n",
    )?;
    let conf_arg = conf.display().to_string();
    let (_dashboard, url) = start_dashboard(dir.path(), &ns, &["-c", &conf_arg])?;
    let login = |user: &str, password: &str| {
        http_answer(
            &url,
            "POST",
            "/api/login",
            &format!(r#"{{"accessKey":"{user}","secretKey":"{password}"}}"#),
        )
    };
    let as_super = login("dashSuper", "dashSuperPassword")?;
    ensure!(
        as_super.starts_with("HTTP/1.1 200") && as_super.contains(r#""admin":true"#),
        "the super user's sign-in: {as_super}"
    );
    let as_reader = login("dashReader", "dashReaderPassword")?;
    ensure!(
        as_reader.starts_with("HTTP/1.1 200") && as_reader.contains(r#""admin":false"#),
        "a normal user's sign-in: {as_reader}"
    );
    let wrong = login("dashSuper", "wrong-password")?;
    ensure!(
        !wrong.starts_with("HTTP/1.1 200") && wrong.contains("check signature failed."),
        "a wrong password's sign-in: {wrong}"
    );
    // Guessing is cut short: after five failures in a minute this address waits, even
    // with the right password.
    for _ in 1..5 {
        login("dashSuper", "another-guess")?;
    }
    let locked = login("dashSuper", "dashSuperPassword")?;
    ensure!(
        locked.starts_with("HTTP/1.1 429") && locked.contains("too many failed sign-ins"),
        "the sign-in after five failures: {locked}"
    );
    drop(broker);
    Ok(())
}
