//! ACL 2.0 (`authenticationEnabled`, `authorizationEnabled`: users and policies, RocketMQ
//! 5.3) over real `mqnamesrv` and `mqbroker` processes: users and ACLs made with `mqadmin`;
//! this project's client, the official Java (4.9.8 and 5.5.0), Go and C++ clients and the
//! Rust port signing as users over remoting, and the 5.x clients over gRPC; refusals with RocketMQ's code (16)
//! and text that change nothing; and in a broker group, users and policies replicated
//! through the raft log and in force on a new master after the old one is killed.

mod common;

use std::time::Duration;

use client::PullConsumer;
use client::{Admin, ClientError, ClientOptions, Message, MessageQueue, Producer, ProducerOptions};
use common::{eventually, tool, CLUSTER};
use tests::driver::Finished;
use tests::group::{wait_for_master, BrokerGroup};
use tests::{Broker, NameServer};

const SUPER: (&str, &str) = ("rocketmq", "12345678");
const ALICE: (&str, &str) = ("alice", "alice-password");
const TOPIC: &str = "Acl2Topic";
const OTHER: &str = "Acl2Other";
const GROUP: &str = "acl2-readers";

/// The keys a secured broker (or group member) runs with.
fn secured_conf() -> Vec<(&'static str, String)> {
    vec![
        ("authenticationEnabled", "true".into()),
        ("authorizationEnabled", "true".into()),
        (
            "initAuthenticationUser",
            r#"{"username":"rocketmq","password":"12345678"}"#.into(),
        ),
        (
            "innerClientAuthenticationCredentials",
            r#"{"accessKey":"inner-member","secretKey":"inner-member-secret"}"#.into(),
        ),
        ("autoCreateTopicEnable", "false".into()),
    ]
}

fn options(namesrv: &str, credentials: Option<(&str, &str)>) -> ClientOptions {
    let options = common::client_options(namesrv);
    match credentials {
        Some((user, password)) => options.with_credentials(user, password),
        None => options,
    }
}

fn producer(namesrv: &str, credentials: Option<(&str, &str)>) -> Producer {
    let mut producer_options = ProducerOptions::new("acl2-producer");
    producer_options.retry_times = 0;
    Producer::start(options(namesrv, credentials), producer_options).unwrap()
}

/// The remark of an ACL 2.0 refusal: NO_PERMISSION (16), as RocketMQ 5.3 answers.
fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    let error = match result {
        Err(ClientError::RetriesExhausted { last, .. }) => Err(*last),
        other => other,
    };
    match error {
        Err(ClientError::Broker { code, remark, .. }) => {
            assert_eq!(code, 16, "refusals are NO_PERMISSION: {remark}");
            remark
        }
        other => panic!("expected an ACL 2.0 refusal, got {other:?}"),
    }
}

/// `mqadmin` signed as `credentials`.
async fn mqadmin(args: &[&str], credentials: (&str, &str)) -> common::ToolRun {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--access-key", credentials.0, "--secret-key", credentials.1]);
    tool("mqadmin", &all, None).await
}

async fn mqadmin_ok(args: &[&str], credentials: (&str, &str)) -> String {
    let run = mqadmin(args, credentials).await;
    assert!(run.ok, "mqadmin {args:?}: {}\n{}", run.out, run.err);
    run.out
}

/// Alice: a user allowed to publish to and read [`TOPIC`] and to read as [`GROUP`], made
/// through `mqadmin` by the super user on `target` (`-b addr` or `-c cluster`).
async fn make_alice(namesrv: &str, target: [&str; 2]) {
    let [flag, value] = target;
    let out = mqadmin_ok(
        &[
            "createUser",
            "-n",
            namesrv,
            flag,
            value,
            "-u",
            ALICE.0,
            "-p",
            ALICE.1,
        ],
        SUPER,
    )
    .await;
    assert!(
        out.contains("create user to ") && out.contains(" success."),
        "{out}"
    );
    let topic = format!("Topic:{TOPIC}");
    let group = format!("Group:{GROUP}");
    for (resource, actions) in [(topic.as_str(), "Pub,Sub"), (group.as_str(), "Sub")] {
        let out = mqadmin_ok(
            &[
                "createAcl",
                "-n",
                namesrv,
                flag,
                value,
                "-s",
                "User:alice",
                "-r",
                resource,
                "-a",
                actions,
                "-d",
                "Allow",
            ],
            SUPER,
        )
        .await;
        assert!(out.contains("create acl to "), "{out}");
    }
}

async fn stored(admin: &Admin, topic: &str) -> i64 {
    let stats = admin.topic_stats(topic).await.unwrap();
    stats.offset_table.values().map(|o| o.max_offset).sum()
}

struct Secured {
    namesrv: NameServer,
    broker: Broker,
    admin: Admin,
    _dir: tempfile::TempDir,
}

impl Secured {
    /// A secured standalone broker with [`TOPIC`] and [`OTHER`] created and routed, and
    /// alice made.
    async fn start() -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let namesrv = NameServer::start(dir.path()).unwrap();
        let broker =
            Broker::start(dir.path(), "broker-a", &namesrv.addr(), &secured_conf()).unwrap();
        let admin = Admin::start(options(&namesrv.addr(), Some(SUPER))).unwrap();
        let broker_addr = broker.addr();
        eventually("the super user from broker.conf exists", || {
            let (admin, addr) = (admin.clone(), broker_addr.clone());
            async move { matches!(admin.get_user(&addr, SUPER.0).await, Ok(Some(_))) }
        })
        .await;
        for topic in [TOPIC, OTHER] {
            let config = remoting::body::TopicConfig::new(topic, 2, 2, 6);
            admin.create_topic(&broker_addr, &config).await.unwrap();
            common::wait_for_topic_list(&namesrv.addr(), topic).await;
        }
        make_alice(&namesrv.addr(), ["-b", &broker_addr]).await;
        Secured {
            namesrv,
            broker,
            admin,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_policies_made_with_mqadmin_guard_every_request() {
    let secured = Secured::start().await;
    let ns = secured.namesrv.addr();
    let broker_addr = secured.broker.addr();
    let target = ["-b", broker_addr.as_str()];

    // Alice sends to her topic, reads it as her group, and is refused the other topic.
    let alice = producer(&ns, Some(ALICE));
    let sent = alice.send(Message::new(TOPIC, "from alice")).await.unwrap();
    assert_eq!(
        refusal(alice.send(Message::new(OTHER, "not hers")).await),
        format!(
            "User:alice has no permission to access Topic:{OTHER} from 127.0.0.1, \
             no matched policies."
        )
    );
    let queue = MessageQueue::new(TOPIC, "broker-a", sent.queue.queue_id);
    let reader = PullConsumer::start(options(&ns, Some(ALICE)), GROUP).unwrap();
    assert_eq!(
        reader
            .pull(&queue, "*", 0, 32)
            .await
            .unwrap()
            .messages
            .len(),
        1
    );
    let stranger = PullConsumer::start(options(&ns, Some(ALICE)), "other-group").unwrap();
    let remark = refusal(stranger.pull(&queue, "*", 0, 32).await);
    assert!(remark.contains("access Group:other-group"), "{remark}");

    // Who is not alice, or cannot prove it, is refused.
    for (credentials, reason) in [
        (None, "username cannot be null."),
        (Some((ALICE.0, "wrong-password")), "check signature failed."),
        (Some(("bob", "bob-password")), "User:bob is not found."),
    ] {
        let producer = producer(&ns, credentials);
        let remark = refusal(producer.send(Message::new(TOPIC, "refused")).await);
        assert_eq!(remark, reason);
        producer.shutdown().await;
    }

    // Only the super user manages users: alice (a normal user) and nobody are refused.
    let by_alice = mqadmin(
        &[
            "createUser",
            "-n",
            &ns,
            target[0],
            target[1],
            "-u",
            "mallory",
            "-p",
            "pw",
        ],
        ALICE,
    )
    .await;
    assert!(!by_alice.ok);
    assert!(
        by_alice.err.contains(&format!("access Cluster:{CLUSTER}")) && by_alice.err.contains("16"),
        "{}",
        by_alice.err
    );
    let unsigned = tool(
        "mqadmin",
        &[
            "createUser",
            "-n",
            &ns,
            target[0],
            target[1],
            "-u",
            "mallory",
            "-p",
            "pw",
        ],
        None,
    )
    .await;
    assert!(
        !unsigned.ok && unsigned.err.contains("username cannot be null."),
        "{}",
        unsigned.err
    );
    assert_eq!(
        secured
            .admin
            .get_user(&broker_addr, "mallory")
            .await
            .unwrap(),
        None
    );

    // The users and policies as mqadmin shows them.
    let users = mqadmin_ok(&["listUser", "-n", &ns, target[0], target[1]], SUPER).await;
    assert!(
        users.contains("#UserName") && users.contains("alice") && users.contains("Normal"),
        "{users}"
    );
    assert!(
        users.contains("rocketmq") && users.contains("Super"),
        "{users}"
    );
    let acl = mqadmin_ok(
        &[
            "getAcl",
            "-n",
            &ns,
            target[0],
            target[1],
            "-s",
            "User:alice",
        ],
        SUPER,
    )
    .await;
    assert!(
        acl.contains(&format!("Topic:{TOPIC}")) && acl.contains("[Pub, Sub]"),
        "{acl}"
    );

    // A Deny entry for the same resource replaces the Allow: alice's sends are refused.
    mqadmin_ok(
        &[
            "updateAcl",
            "-n",
            &ns,
            target[0],
            target[1],
            "-s",
            "User:alice",
            "-r",
            &format!("Topic:{TOPIC}"),
            "-a",
            "Pub",
            "-d",
            "Deny",
        ],
        SUPER,
    )
    .await;
    let remark = refusal(alice.send(Message::new(TOPIC, "denied")).await);
    assert!(remark.ends_with("the decision is deny."), "{remark}");
    // Deleting the entry leaves no policy for the topic.
    mqadmin_ok(
        &[
            "deleteAcl",
            "-n",
            &ns,
            target[0],
            target[1],
            "-s",
            "User:alice",
            "-r",
            &format!("Topic:{TOPIC}"),
        ],
        SUPER,
    )
    .await;
    let remark = refusal(alice.send(Message::new(TOPIC, "no policy")).await);
    assert!(remark.ends_with("no matched policies."), "{remark}");

    // A disabled user fails authentication; a deleted one is unknown.
    mqadmin_ok(
        &[
            "updateUser",
            "-n",
            &ns,
            target[0],
            target[1],
            "-u",
            "alice",
            "-s",
            "disable",
        ],
        SUPER,
    )
    .await;
    assert_eq!(
        refusal(alice.send(Message::new(TOPIC, "disabled")).await),
        "User:alice is disabled."
    );
    mqadmin_ok(
        &["deleteUser", "-n", &ns, target[0], target[1], "-u", "alice"],
        SUPER,
    )
    .await;
    assert_eq!(
        refusal(alice.send(Message::new(TOPIC, "deleted")).await),
        "User:alice is not found."
    );
    assert_eq!(
        secured
            .admin
            .get_acl(&broker_addr, "User:alice")
            .await
            .ok()
            .flatten(),
        None
    );

    // Only alice's first send was stored.
    assert_eq!(stored(&secured.admin, TOPIC).await, 1);
    assert_eq!(stored(&secured.admin, OTHER).await, 0);
    reader.shutdown();
    stranger.shutdown();
    alice.shutdown().await;
    secured.admin.shutdown();
}

/// Runs a driver's `produce` of 2 messages as alice with her password, then with a wrong
/// one: the first sends both, the second none. Returns the second run.
async fn right_then_wrong_password<F>(what: &str, run: F) -> Finished
where
    F: Fn(&'static str) -> anyhow::Result<Finished> + Send + Sync + Clone + 'static,
{
    let mut runs = Vec::new();
    for password in [ALICE.1, "wrong-password"] {
        let run = run.clone();
        runs.push(
            tokio::task::spawn_blocking(move || run(password))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (Some(wrong), Some(right)) = (runs.pop(), runs.pop()) else {
        unreachable!("two runs were made");
    };
    assert!(right.succeeded(), "{what}: {}", right.describe());
    assert_eq!(
        right.output.ops("sent").len(),
        2,
        "{what}: {}",
        right.describe()
    );
    assert!(
        wrong.output.ops("sent").is_empty(),
        "{what}: {}",
        wrong.describe()
    );
    wrong
}

/// The official Java (4.9.8, 5.5.0), Go and C++ clients and the Rust port sign with their
/// ACL hooks as a user: with alice's password their sends pass, with a wrong one they are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remoting_clients_sign_as_users() {
    use tests::go_client;
    use tests::java_client::{self, Version};
    java_client::check_built().unwrap();
    go_client::check_built().unwrap();
    let secured = Secured::start().await;
    let ns = secured.namesrv.addr();
    let timeout = Duration::from_secs(90);
    for version in Version::ALL {
        let ns = ns.clone();
        let wrong = right_then_wrong_password(version.release(), move |password| {
            let args = ["produce", "-n", ns.as_str(), "-t", TOPIC, "-c", "2"];
            java_client::run_signed(version, &args, (ALICE.0, password), timeout)
        })
        .await;
        let describe = wrong.describe();
        assert!(describe.contains("check signature failed."), "{describe}");
    }
    let go_ns = ns.clone();
    right_then_wrong_password("Go client", move |password| {
        let args = ["produce", "-n", go_ns.as_str(), "-t", TOPIC, "-c", "2"];
        go_client::run_signed(&args, (ALICE.0, password), timeout)
    })
    .await;
    // The C++ client (session credentials) and the Rust port (its AclClientRPCHook).
    let cpp_ns = ns.clone();
    let cpp = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str], password| {
            tests::cpp_client::run_signed(args, Some((ALICE.0, password)), timeout)
        };
        (
            run(&["produce", cpp_ns.as_str(), TOPIC, "2"], ALICE.1),
            run(&["refused", cpp_ns.as_str(), TOPIC], "wrong-password"),
        )
    })
    .await
    .unwrap();
    let (right, wrong) = (cpp.0.unwrap(), cpp.1.unwrap());
    assert_eq!(right.ops("sent").len(), 2, "C++ client: {:?}", right.lines);
    // The C++ client reports its own error after its retries; the broker refused it.
    assert_eq!(
        wrong.ops("refused").len(),
        1,
        "C++ client: {:?}",
        wrong.lines
    );
    let rust_ns = ns.clone();
    right_then_wrong_password("Rust port", move |password| {
        let args = ["produce", "-n", rust_ns.as_str(), "-t", TOPIC, "-c", "2"];
        tests::rust_client::run_signed(&args, Some((ALICE.0, password)), timeout)
    })
    .await;
    // The Java client sends to a topic alice may not publish to: refused, nothing stored.
    let other = tokio::task::spawn_blocking(move || {
        let args = ["produce", "-n", ns.as_str(), "-t", OTHER, "-c", "1"];
        java_client::run_signed(Version::ALL[0], &args, ALICE, timeout)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(other.output.ops("sent").is_empty(), "{}", other.describe());
    assert!(
        other.describe().contains("no matched policies."),
        "{}",
        other.describe()
    );
    let log = secured.broker.process.log();
    assert!(log.contains("request refused by ACL"), "{log}");
    assert!(!log.contains(ALICE.1), "a password reached the log");
    let java_go_cpp_rust = 2 * Version::ALL.len() as i64 + 2 + 2 + 2;
    assert_eq!(stored(&secured.admin, TOPIC).await, java_go_cpp_rust);
    assert_eq!(stored(&secured.admin, OTHER).await, 0);
    secured.admin.shutdown();
}

/// Over gRPC the RocketMQ 5 clients (Java, and the Python, Node.js, Rust and Go ones) sign
/// as users too: alice's password passes, a wrong one is refused, and so is a topic alice
/// may not publish to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_clients_sign_as_users() {
    use tests::grpc_clients::GrpcClient;
    use tests::java_client;
    java_client::check_built().unwrap();
    let secured = Secured::start().await;
    let endpoints = secured.broker.grpc_addr().unwrap();
    let timeout = Duration::from_secs(90);
    let java_endpoints = endpoints.clone();
    right_then_wrong_password("Java 5.x gRPC client", move |password| {
        let args = [
            "produce",
            "--endpoints",
            java_endpoints.as_str(),
            "-t",
            TOPIC,
            "-c",
            "2",
        ];
        java_client::run_grpc_signed(&args, (ALICE.0, password), timeout)
    })
    .await;
    let other_endpoints = endpoints.clone();
    let other = tokio::task::spawn_blocking(move || {
        let args = [
            "produce",
            "--endpoints",
            other_endpoints.as_str(),
            "-t",
            OTHER,
            "-c",
            "1",
        ];
        java_client::run_grpc_signed(&args, ALICE, timeout)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(other.output.ops("sent").is_empty(), "{}", other.describe());
    let mut expected = 2;
    for client in GrpcClient::OTHERS {
        client.check_installed().unwrap();
        let endpoints = endpoints.clone();
        right_then_wrong_password(&client.to_string(), move |password| {
            let args = [
                "produce",
                "--endpoints",
                endpoints.as_str(),
                "-t",
                TOPIC,
                "-c",
                "2",
            ];
            client.run_signed(&args, (ALICE.0, password), timeout)
        })
        .await;
        expected += 2;
    }
    let log = secured.broker.process.log();
    assert!(log.contains("gRPC call refused by ACL"), "{log}");
    assert!(log.contains("check signature failed."), "{log}");
    assert!(
        log.contains(&format!(
            "User:alice has no permission to access Topic:{OTHER}"
        )),
        "{log}"
    );
    assert_eq!(stored(&secured.admin, TOPIC).await, expected);
    assert_eq!(stored(&secured.admin, OTHER).await, 0);
    secured.admin.shutdown();
}

/// In a broker group, users and policies go through the raft log: every member holds them,
/// and after the master is killed the new master enforces them and takes new users, which
/// reach the restarted old master too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_policies_survive_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let ns = namesrv.addr();
    let mut group = BrokerGroup::start(dir.path(), "acl2-group", &ns, &secured_conf()).unwrap();
    let admin = Admin::start(options(&ns, Some(SUPER))).unwrap();
    let master = wait_for_master(&admin, "acl2-group", None, common::WAIT)
        .await
        .unwrap();
    eventually("the super user from broker.conf exists", || {
        let (admin, master) = (admin.clone(), master.clone());
        async move { matches!(admin.get_user(&master, SUPER.0).await, Ok(Some(_))) }
    })
    .await;
    let config = remoting::body::TopicConfig::new(TOPIC, 2, 2, 6);
    admin.create_topic(&master, &config).await.unwrap();
    common::wait_for_topic_list(&ns, TOPIC).await;
    make_alice(&ns, ["-c", "RaftCluster"]).await;

    // Every member holds alice and her policies.
    for member in &group.members {
        let addr = member.addr();
        eventually(&format!("alice's policies on {addr}"), || {
            let (admin, addr) = (admin.clone(), addr.clone());
            async move {
                admin
                    .get_acl(&addr, "User:alice")
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|acl| {
                        acl.policies
                            .is_some_and(|p| p[0].entries.as_ref().is_some_and(|e| e.len() == 2))
                    })
            }
        })
        .await;
    }
    let alice = producer(&ns, Some(ALICE));
    alice
        .send(Message::new(TOPIC, "before the kill"))
        .await
        .unwrap();

    group.member_mut(&master).unwrap().process.kill();
    let new_master = wait_for_master(&admin, "acl2-group", Some(&master), common::WAIT)
        .await
        .unwrap();
    // Alice's sends pass on the new master, a stranger's are refused.
    eventually("alice sends through the new master", || {
        let alice = &alice;
        async move {
            alice
                .send(Message::new(TOPIC, "after the kill"))
                .await
                .is_ok()
        }
    })
    .await;
    let bob = producer(&ns, Some(("bob", "bob-password")));
    assert_eq!(
        refusal(bob.send(Message::new(TOPIC, "bob")).await),
        "User:bob is not found."
    );
    // The new master takes a new user; the old master, restarted, receives it.
    mqadmin_ok(
        &[
            "createUser",
            "-n",
            &ns,
            "-b",
            &new_master,
            "-u",
            "bob",
            "-p",
            "bob-password",
        ],
        SUPER,
    )
    .await;
    group.member_mut(&master).unwrap().restart().unwrap();
    eventually("bob on the restarted old master", || {
        let (admin, master) = (admin.clone(), master.clone());
        async move { matches!(admin.get_user(&master, "bob").await, Ok(Some(_))) }
    })
    .await;
    // Bob has no policy yet.
    let remark = refusal(bob.send(Message::new(TOPIC, "bob")).await);
    assert!(remark.ends_with("no matched policies."), "{remark}");
    alice.shutdown().await;
    bob.shutdown().await;
    admin.shutdown();
}
