//! ACL 1.0 (`aclEnable=true`, `plain_acl.yml`) over real `mqnamesrv` and `mqbroker`
//! processes, with this project's client and `mqadmin` signing requests: allowed requests
//! pass; unsigned ones, a wrong secret, an unknown key, a forbidden topic, a forbidden
//! group and an admin request from a non-admin are refused with RocketMQ's code and text
//! and change nothing; the ACL admin sub-commands change the file, and a hand edit is
//! picked up while the broker runs.

mod common;

use std::path::Path;
use std::time::Duration;

use client::PullConsumer;
use client::{Admin, ClientError, ClientOptions, Message, MessageQueue, Producer, ProducerOptions};
use common::{eventually, tool, WAIT};
use tests::driver::Finished;
use tests::{Broker, NameServer};

const TOPIC: &str = "AclTopic";
const PRODUCER_AK: &str = "aclProducer";
const PRODUCER_SK: &str = "aclProducerSecret";
const ADMIN_AK: &str = "aclAdmin00";
const ADMIN_SK: &str = "aclAdminSecret";

const PLAIN_ACL: &str = r#"
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: aclProducer
    secretKey: aclProducerSecret
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - AclTopic=PUB|SUB
      - Forbidden=DENY
    groupPerms:
      - forbidden-group=DENY
  - accessKey: aclAdmin00
    secretKey: aclAdminSecret
    admin: true
"#;

/// An access key and its secret, or none (unsigned requests).
type Credentials<'a> = Option<(&'a str, &'a str)>;

struct Secured {
    namesrv: NameServer,
    broker: Broker,
    /// Last: fields drop in order, and the processes above must stop (and print their
    /// logs on a failure) before the directory holding those logs is removed.
    dir: tempfile::TempDir,
}

impl Secured {
    async fn start() -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("rocketmq-home");
        std::fs::create_dir_all(home.join("conf")).unwrap();
        std::fs::write(home.join("conf/plain_acl.yml"), PLAIN_ACL).unwrap();
        let namesrv = NameServer::start(dir.path()).unwrap();
        let broker = Broker::start(
            dir.path(),
            "broker-a",
            &namesrv.addr(),
            &[
                ("aclEnable", "true".to_owned()),
                ("rocketmqHome", home.display().to_string()),
                ("autoCreateTopicEnable", "false".to_owned()),
            ],
        )
        .unwrap();
        let secured = Secured {
            dir,
            namesrv,
            broker,
        };
        // The broker registers with the name server unsigned (name servers check no ACL).
        let admin = secured.admin(Some((ADMIN_AK, ADMIN_SK)));
        eventually("the broker registered", || {
            let admin = admin.clone();
            async move {
                admin
                    .cluster_info()
                    .await
                    .is_ok_and(|c| !c.broker_addr_table.is_empty())
            }
        })
        .await;
        admin.shutdown();
        secured
    }

    /// A secured broker with [`TOPIC`] created (by the admin account) and routed, and the
    /// admin's client.
    async fn with_topic() -> (Secured, Admin) {
        let secured = Secured::start().await;
        let admin = secured.admin(Some((ADMIN_AK, ADMIN_SK)));
        create_topic(&admin, &secured.broker.addr(), TOPIC)
            .await
            .unwrap();
        common::wait_for_topic_list(&secured.namesrv.addr(), TOPIC).await;
        (secured, admin)
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("rocketmq-home")
    }

    fn options(&self, credentials: Option<(&str, &str)>) -> ClientOptions {
        let options = common::client_options(&self.namesrv.addr());
        match credentials {
            Some((ak, sk)) => options.with_credentials(ak, sk),
            None => options,
        }
    }

    fn admin(&self, credentials: Option<(&str, &str)>) -> Admin {
        Admin::start(self.options(credentials)).unwrap()
    }

    fn producer(&self, credentials: Option<(&str, &str)>) -> Producer {
        let mut producer_options = ProducerOptions::new("acl-producer");
        producer_options.retry_times = 0;
        Producer::start(self.options(credentials), producer_options).unwrap()
    }
}

/// The remark of a refusal, which must be RocketMQ's: SYSTEM_ERROR with an AclException.
fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    let error = match result {
        Err(ClientError::RetriesExhausted { last, .. }) => Err(*last),
        other => other,
    };
    match error {
        Err(ClientError::Broker { code, remark, .. }) => {
            assert_eq!(code, 1, "refusals are SYSTEM_ERROR: {remark}");
            assert!(
                remark.starts_with("org.apache.rocketmq.acl.common.AclException: "),
                "{remark}"
            );
            remark
        }
        other => panic!("expected an ACL refusal, got {other:?}"),
    }
}

/// Messages stored in `topic`, over its queues.
async fn stored(admin: &Admin, topic: &str) -> i64 {
    let stats = admin.topic_stats(topic).await.unwrap();
    stats.offset_table.values().map(|o| o.max_offset).sum()
}

/// Runs a driver's `produce` of 2 messages signed with the producer's secret, then with a
/// wrong one (`run` gets the secret): the first sends both, the second none. Returns both
/// runs, right then wrong.
async fn right_then_wrong_secret<F>(what: String, run: F) -> (Finished, Finished)
where
    F: Fn(&'static str) -> anyhow::Result<Finished> + Send + Sync + Clone + 'static,
{
    let mut runs = Vec::new();
    for secret in [PRODUCER_SK, "wrong-secret-key"] {
        let run = run.clone();
        let finished = tokio::task::spawn_blocking(move || run(secret))
            .await
            .unwrap()
            .unwrap();
        runs.push(finished);
    }
    let (Some(wrong), Some(right)) = (runs.pop(), runs.pop()) else {
        unreachable!("two runs were made");
    };
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
    (right, wrong)
}

async fn create_topic(admin: &Admin, broker_addr: &str, topic: &str) -> Result<(), ClientError> {
    let config = remoting::body::TopicConfig::new(topic, 2, 2, 6);
    admin.create_topic(broker_addr, &config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_pass_and_everything_else_is_refused() {
    let secured = Secured::start().await;
    let broker_addr = secured.broker.addr();

    // Creating a topic is an admin request: refused unsigned and for a non-admin, and the
    // refusals created nothing.
    let unsigned_admin = secured.admin(None);
    let remark = refusal(create_topic(&unsigned_admin, &broker_addr, TOPIC).await);
    assert!(remark.contains("No accessKey is configured"), "{remark}");
    let producer_admin = secured.admin(Some((PRODUCER_AK, PRODUCER_SK)));
    let remark = refusal(create_topic(&producer_admin, &broker_addr, TOPIC).await);
    assert!(
        remark.contains("Need admin permission for request code=17"),
        "{remark}"
    );
    let admin = secured.admin(Some((ADMIN_AK, ADMIN_SK)));
    let topics = admin.topic_list().await.unwrap();
    assert!(
        !topics.contains(TOPIC),
        "a refused creation created {TOPIC}"
    );
    create_topic(&admin, &broker_addr, TOPIC).await.unwrap();
    create_topic(&admin, &broker_addr, "Forbidden")
        .await
        .unwrap();
    common::wait_for_topic_list(&secured.namesrv.addr(), TOPIC).await;

    // Sends: allowed with the producer's key; every other way refused, nothing stored.
    let producer = secured.producer(Some((PRODUCER_AK, PRODUCER_SK)));
    let sent = producer.send(Message::new(TOPIC, "allowed")).await.unwrap();
    let cases: [(Credentials, &str, &str); 4] = [
        (None, TOPIC, "No accessKey is configured"),
        (
            Some((PRODUCER_AK, "not-the-secret")),
            TOPIC,
            "Check signature failed for accessKey=aclProducer",
        ),
        (
            Some(("nobody-at-all", "whatever-secret")),
            TOPIC,
            "No acl config for nobody-at-all",
        ),
        (
            Some((PRODUCER_AK, PRODUCER_SK)),
            "Forbidden",
            "No permission for topic:Forbidden",
        ),
    ];
    for (credentials, topic, expected) in cases {
        let refused_producer = secured.producer(credentials);
        let remark = refusal(refused_producer.send(Message::new(topic, "refused")).await);
        assert!(remark.contains(expected), "{expected} in {remark}");
        refused_producer.shutdown().await;
    }
    assert_eq!(
        stored(&admin, TOPIC).await,
        1,
        "only the allowed send was stored"
    );
    assert_eq!(stored(&admin, "Forbidden").await, 0);

    // Pulls: the producer's key may read AclTopic in any group but forbidden-group.
    let queue = MessageQueue::new(TOPIC, "broker-a", sent.queue.queue_id);
    let reader = PullConsumer::start(
        secured.options(Some((PRODUCER_AK, PRODUCER_SK))),
        "acl-reader",
    )
    .unwrap();
    let pulled = reader.pull(&queue, "*", 0, 32).await.unwrap();
    assert_eq!(pulled.messages.len(), 1);
    let banned = PullConsumer::start(
        secured.options(Some((PRODUCER_AK, PRODUCER_SK))),
        "forbidden-group",
    )
    .unwrap();
    let remark = refusal(banned.pull(&queue, "*", 0, 32).await);
    assert!(
        remark.contains("No permission for group:forbidden-group"),
        "{remark}"
    );

    reader.shutdown();
    banned.shutdown();
    producer.shutdown().await;
    for admin in [unsigned_admin, producer_admin, admin] {
        admin.shutdown();
    }
}

fn wait_for(path: &Path, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if check(&text) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_change_through_mqadmin_and_by_hand() {
    let secured = Secured::start().await;
    let broker_addr = secured.broker.addr();
    let namesrv = secured.namesrv.addr();
    let admin = secured.admin(Some((ADMIN_AK, ADMIN_SK)));
    create_topic(&admin, &broker_addr, TOPIC).await.unwrap();
    let signed = ["--access-key", ADMIN_AK, "--secret-key", ADMIN_SK];

    // A new account through mqadmin, then sending with it.
    let mut args = vec!["updateAclConfig", "-n", &namesrv, "-b", &broker_addr];
    args.extend([
        "-a",
        "teamAccount",
        "-s",
        "teamSecret",
        "-t",
        "AclTopic=PUB",
        "-u",
        "SUB",
    ]);
    args.extend(signed);
    let out = common::tool_ok("mqadmin", &args, None).await;
    assert!(out.contains("success"), "{out}");
    let file = secured.home().join("conf/plain_acl.yml");
    wait_for(&file, "the account in the file", |t| {
        t.contains("teamAccount")
    });
    let team = secured.producer(Some(("teamAccount", "teamSecret")));
    team.send(Message::new(TOPIC, "from the team"))
        .await
        .unwrap();

    // Without the admin's key the sub-command is refused and changes nothing.
    let unsigned = tool(
        "mqadmin",
        &[
            "deleteAclConfig",
            "-n",
            &namesrv,
            "-b",
            &broker_addr,
            "-a",
            "teamAccount",
        ],
        None,
    )
    .await;
    assert!(!unsigned.ok, "{}", unsigned.out);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("teamAccount"));

    // clusterAclConfigVersion shows the file's version, bumped by the update.
    let mut args = vec![
        "clusterAclConfigVersion",
        "-n",
        &namesrv,
        "-b",
        &broker_addr,
    ];
    args.extend(signed);
    let out = common::tool_ok("mqadmin", &args, None).await;
    assert!(
        out.contains("plain_acl.yml") && out.contains(" 1 "),
        "{out}"
    );

    let mut args = vec![
        "deleteAclConfig",
        "-n",
        &namesrv,
        "-b",
        &broker_addr,
        "-a",
        "teamAccount",
    ];
    args.extend(signed);
    common::tool_ok("mqadmin", &args, None).await;
    let remark = refusal(team.send(Message::new(TOPIC, "after deletion")).await);
    assert!(remark.contains("No acl config for teamAccount"), "{remark}");

    // A hand edit: whitelisting 127.0.0.1 lets an unsigned producer in within the
    // watcher's 5 seconds.
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen(
        "globalWhiteRemoteAddresses: []",
        "globalWhiteRemoteAddresses:\n  - 127.0.0.1",
        1,
    );
    assert_ne!(edited, text, "the file keeps RocketMQ's layout:\n{text}");
    std::fs::write(&file, edited).unwrap();
    let unsigned_producer = secured.producer(None);
    let deadline = tokio::time::Instant::now() + WAIT;
    while unsigned_producer
        .send(Message::new(TOPIC, "whitelisted"))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hand edit was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    unsigned_producer.shutdown().await;
    team.shutdown().await;
    admin.shutdown();
}

/// The C++ client (session credentials, which also sign its `OnsChannel` field) and the
/// Rust port (its `AclClientRPCHook`) sign as RocketMQ's broker expects: their sends and
/// pulls pass with the right secret and are refused with a wrong one or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_and_rust_clients_sign_as_rocketmq_expects() {
    use tests::{cpp_client, rust_client};
    let (secured, admin) = Secured::with_topic().await;
    let ns = secured.namesrv.addr();
    let producer_key = Some((PRODUCER_AK, PRODUCER_SK));
    let timeout = Duration::from_secs(60);
    let run = move |args: Vec<String>, credentials: Credentials<'static>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cpp_client::run_signed(&args, credentials, timeout)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let sent = run(args(&["produce", &ns, TOPIC, "3"]), producer_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.ops("sent").len(), 3, "{:?}", sent.lines);
    let pulled = run(
        args(&["pull", &ns, TOPIC, "acl-cpp-reader", "*"]),
        producer_key,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pulled.ops("pulled").len(), 3, "{:?}", pulled.lines);
    for (credentials, reason) in [
        (None, "No acl config for"),
        (
            Some((PRODUCER_AK, "wrong-secret")),
            "Check signature failed",
        ),
    ] {
        let refused = run(args(&["refused", &ns, TOPIC]), credentials)
            .await
            .unwrap()
            .unwrap();
        // The C++ client reports its own error after its retries ("No route info"); the
        // broker's log says why it refused.
        assert_eq!(
            refused.ops("refused").len(),
            1,
            "C++ client: {:?}",
            refused.lines
        );
        let log = secured.broker.process.log();
        assert!(
            log.contains(reason),
            "the broker refused for {reason}:\n{log}"
        );
    }

    let rust_args = |count: &str| {
        let owned: Vec<String> = ["produce", "-n", &ns, "-t", TOPIC, "-c", count]
            .iter()
            .map(|s| s.to_string())
            .collect();
        owned
    };
    let signed_args = rust_args("2");
    let signed = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = signed_args.iter().map(String::as_str).collect();
        rust_client::run_signed(&args, Some((PRODUCER_AK, PRODUCER_SK)), timeout)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(signed.succeeded(), "{}", signed.describe());
    assert_eq!(signed.output.ops("sent").len(), 2);
    let refused_args = rust_args("1");
    let refused = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = refused_args.iter().map(String::as_str).collect();
        rust_client::run_signed(
            &args,
            Some(("rust-unknown-key", "whatever-secret")),
            timeout,
        )
    })
    .await
    .unwrap()
    .unwrap();
    // The client reports "Broker operation failed"; the broker's log says why.
    assert!(!refused.succeeded(), "{}", refused.describe());
    let log = secured.broker.process.log();
    assert!(log.contains("No acl config for rust-unknown-key"), "{log}");
    assert!(refused.output.ops("sent").is_empty());

    let stored = stored(&admin, TOPIC).await;
    assert_eq!(stored, 5, "3 C++ and 2 Rust sends stored, nothing refused");
    admin.shutdown();
}

/// The official Java clients (4.9.8 and 5.5.0) sign with their `AclClientRPCHook`: sends
/// pass with the right secret and are refused with a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_clients_sign_with_their_acl_hook() {
    use tests::java_client::{self, Version};
    java_client::check_built().unwrap();
    let (secured, admin) = Secured::with_topic().await;
    let ns = secured.namesrv.addr();
    let timeout = Duration::from_secs(90);
    let mut expected_stored = 0;
    for version in Version::ALL {
        let ns = ns.clone();
        let (right, wrong) = right_then_wrong_secret(version.release().to_owned(), move |secret| {
            let args = ["produce", "-n", ns.as_str(), "-t", TOPIC, "-c", "2"];
            java_client::run_signed(version, &args, (PRODUCER_AK, secret), timeout)
        })
        .await;
        assert!(right.succeeded(), "{}", right.describe());
        expected_stored += 2;
        let describe = wrong.describe();
        assert!(
            describe.contains("Check signature failed for accessKey=aclProducer"),
            "{} {describe}",
            version.release()
        );
    }
    let stored = stored(&admin, TOPIC).await;
    assert_eq!(stored, expected_stored);
    admin.shutdown();
}

/// The gRPC port checks the same accounts: Apache's RocketMQ 5 Java client signs its calls
/// with its credentials provider; without them, or with a wrong secret, its sends are
/// refused (PERMISSION_DENIED) and nothing is stored. The Python, Node.js, Rust and Go 5.x
/// clients likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_port_checks_the_same_accounts() {
    use tests::grpc_clients::GrpcClient;
    use tests::java_client;
    java_client::check_built().unwrap();
    let (secured, admin) = Secured::with_topic().await;
    let endpoints = secured.broker.grpc_addr().unwrap();
    let timeout = Duration::from_secs(90);
    let mut expected_stored = 0;
    for credentials in [
        Some((PRODUCER_AK, PRODUCER_SK)),
        Some((PRODUCER_AK, "wrong-secret-key")),
        None,
    ] {
        let endpoints = endpoints.clone();
        let run = tokio::task::spawn_blocking(move || {
            let args = [
                "produce",
                "--endpoints",
                endpoints.as_str(),
                "-t",
                TOPIC,
                "-c",
                "2",
            ];
            match credentials {
                Some(credentials) => java_client::run_grpc_signed(&args, credentials, timeout),
                None => java_client::run_grpc(&args, timeout),
            }
        })
        .await
        .unwrap()
        .unwrap();
        if credentials == Some((PRODUCER_AK, PRODUCER_SK)) {
            assert!(run.succeeded(), "{}", run.describe());
            assert_eq!(run.output.ops("sent").len(), 2, "{}", run.describe());
            expected_stored += 2;
        } else {
            assert!(run.output.ops("sent").is_empty(), "{}", run.describe());
        }
    }
    // The Python, Node.js, Rust and Go 5.x clients sign the same way.
    for client in GrpcClient::OTHERS {
        client.check_installed().unwrap();
        let endpoints = endpoints.clone();
        right_then_wrong_secret(client.to_string(), move |secret| {
            let args = [
                "produce",
                "--endpoints",
                endpoints.as_str(),
                "-t",
                TOPIC,
                "-c",
                "2",
            ];
            client.run_signed(&args, (PRODUCER_AK, secret), timeout)
        })
        .await;
        expected_stored += 2;
    }
    let log = secured.broker.process.log();
    assert!(log.contains("gRPC call refused by ACL"), "{log}");
    assert!(
        log.contains("Check signature failed for accessKey=aclProducer"),
        "{log}"
    );
    assert!(log.contains("No accessKey is configured"), "{log}");
    let stored = stored(&admin, TOPIC).await;
    assert_eq!(stored, expected_stored);
    admin.shutdown();
}

/// The official Go client signs with its credentials: sends pass with the right secret and
/// are refused with a wrong one, storing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_client_signs_with_its_credentials() {
    use tests::go_client;
    go_client::check_built().unwrap();
    let (secured, admin) = Secured::with_topic().await;
    let ns = secured.namesrv.addr();
    let timeout = Duration::from_secs(90);
    let (right, _) = right_then_wrong_secret("Go client".to_owned(), move |secret| {
        let args = ["produce", "-n", ns.as_str(), "-t", TOPIC, "-c", "2"];
        go_client::run_signed(&args, (PRODUCER_AK, secret), timeout)
    })
    .await;
    assert!(right.succeeded(), "{}", right.describe());
    let log = secured.broker.process.log();
    assert!(
        log.contains("Check signature failed for accessKey=aclProducer"),
        "{log}"
    );
    assert_eq!(stored(&admin, TOPIC).await, 2);
    admin.shutdown();
}

/// The name server checks the same files when its own config says `aclEnable=true`: a
/// broker registers signed with an admin account (its `innerClientAuthenticationCredentials`;
/// one signing with a non-admin account is refused and never routed), a route lookup needs a
/// known account's signature, and a change of the name server's (a broker's write
/// permission) needs an admin. The Java and Go clients sign their lookups too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_server_checks_the_same_accounts() {
    use tests::{go_client, java_client};
    java_client::check_built().unwrap();
    go_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("rocketmq-home");
    std::fs::create_dir_all(home.join("conf")).unwrap();
    std::fs::write(home.join("conf/plain_acl.yml"), PLAIN_ACL).unwrap();
    let acl_on = [
        ("aclEnable", "true".to_owned()),
        ("rocketmqHome", home.display().to_string()),
    ];
    let namesrv = NameServer::start_with(dir.path(), &acl_on).unwrap();
    let ns = namesrv.addr();
    let signed_as =
        |key: &str, secret: &str| format!(r#"{{"accessKey":"{key}","secretKey":"{secret}"}}"#);
    let broker_conf = |key: &str, secret: &str| {
        let mut conf = acl_on.to_vec();
        conf.push(("autoCreateTopicEnable", "false".to_owned()));
        conf.push((
            "innerClientAuthenticationCredentials",
            signed_as(key, secret),
        ));
        conf
    };
    let broker = Broker::start(
        dir.path(),
        "broker-a",
        &ns,
        &broker_conf(ADMIN_AK, ADMIN_SK),
    )
    .unwrap();
    let intruder = Broker::start(
        dir.path(),
        "broker-intruder",
        &ns,
        &broker_conf(PRODUCER_AK, PRODUCER_SK),
    )
    .unwrap();
    let options = |credentials: Credentials<'_>| {
        let options = common::client_options(&ns);
        match credentials {
            Some((ak, sk)) => options.with_credentials(ak, sk),
            None => options,
        }
    };
    let admin = Admin::start(options(Some((ADMIN_AK, ADMIN_SK)))).unwrap();
    eventually("broker-a registered, signed as an admin", || {
        let admin = admin.clone();
        async move {
            admin
                .cluster_info()
                .await
                .is_ok_and(|c| c.broker_addr_table.contains_key("broker-a"))
        }
    })
    .await;
    create_topic(&admin, &broker.addr(), TOPIC).await.unwrap();
    eventually("the topic routed", || {
        let admin = admin.clone();
        async move { admin.topic_list().await.is_ok_and(|t| t.contains(TOPIC)) }
    })
    .await;
    eventually("the intruder's registration refused", || {
        let log = namesrv.process.log();
        async move { log.contains("Need admin permission for request code=103") }
    })
    .await;
    let clusters = admin.cluster_info().await.unwrap();
    assert!(
        !clusters.broker_addr_table.contains_key("broker-intruder"),
        "{clusters:?}"
    );

    // Lookups: unsigned refused, signed by a known account answered.
    let unsigned = Admin::start(options(None)).unwrap();
    let remark = refusal(unsigned.cluster_info().await);
    assert!(remark.contains("No accessKey is configured"), "{remark}");
    let producer = Producer::start(options(Some((PRODUCER_AK, PRODUCER_SK))), {
        let mut producer_options = ProducerOptions::new("acl-producer");
        producer_options.retry_times = 0;
        producer_options
    })
    .unwrap();
    producer
        .send(Message::new(TOPIC, "through a checked name server"))
        .await
        .unwrap();

    // The name server's changes need an admin.
    let as_producer = Admin::start(options(Some((PRODUCER_AK, PRODUCER_SK)))).unwrap();
    let remark = refusal(as_producer.wipe_write_perm(&ns, "broker-a").await);
    assert!(
        remark.contains("Need admin permission for request code=205"),
        "{remark}"
    );
    assert!(admin.add_write_perm(&ns, "broker-a").await.unwrap() > 0);

    // The official clients sign their lookups: their sends pass.
    let timeout = Duration::from_secs(90);
    let java_ns = ns.clone();
    let java = tokio::task::spawn_blocking(move || {
        let args = ["produce", "-n", java_ns.as_str(), "-t", TOPIC, "-c", "2"];
        java_client::run_signed(
            java_client::Version::ALL[0],
            &args,
            (PRODUCER_AK, PRODUCER_SK),
            timeout,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(java.output.ops("sent").len(), 2, "{}", java.describe());
    let go_ns = ns.clone();
    let go = tokio::task::spawn_blocking(move || {
        let args = ["produce", "-n", go_ns.as_str(), "-t", TOPIC, "-c", "2"];
        go_client::run_signed(&args, (PRODUCER_AK, PRODUCER_SK), timeout)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(go.output.ops("sent").len(), 2, "{}", go.describe());
    assert_eq!(stored(&admin, TOPIC).await, 5);
    producer.shutdown().await;
    for admin in [unsigned, as_producer, admin] {
        admin.shutdown();
    }
    drop(intruder);
}
