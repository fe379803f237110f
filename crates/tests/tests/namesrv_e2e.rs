//! The real `mqnamesrv` with real `mqbroker`s: a broker registers with every configured name
//! server; routes answer in the key quoting each requester's version asks for; a broker that
//! dies leaves the routes at once (its connection closed); unknown topics and codes get
//! RocketMQ's answers. An operator wipes and adds back a broker's write permission; the
//! system topic list; the KV config outlives a restart, a corrupt one stops start-up, and
//! routes carry `orderTopicConf` only with `orderMessageEnable`.

use std::time::Duration;

use remoting::body::{perm, ClusterInfo, KvTable, TopicList};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::namesrv::GetRouteInfoRequestHeader;
use tests::requests::{create_topic, ext_i64, route, wait_for_route};
use tests::{eventually, Broker, NameServer};

const WAIT: Duration = Duration::from_secs(30);

fn route_request(topic: &str, version: i32) -> RemotingCommand {
    let mut command = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
        &GetRouteInfoRequestHeader {
            topic: topic.into(),
            accept_standard_json_only: None,
        },
    );
    command.version = version;
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_registers_with_every_name_server_and_leaves_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let first = NameServer::start(dir.path()).unwrap();
    let second = NameServer::start(dir.path()).unwrap();
    let both = format!("{};{}", first.addr(), second.addr());
    let mut broker = Broker::start(dir.path(), "broker-ns", &both, &[]).unwrap();
    let client = RemotingClient::new(ClientConfig::default());

    // TBW102 (the auto-create template) is routed to the broker by both name servers.
    for ns in [first.addr(), second.addr()] {
        wait_for_route(&client, &ns, "TBW102", &broker.addr(), WAIT)
            .await
            .unwrap();
        let response = client
            .invoke(
                &ns,
                RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let info = ClusterInfo::decode(&response.body).unwrap();
        assert!(info.cluster_addr_table["TestCluster"].contains("broker-ns"));
        let response = client
            .invoke(
                &ns,
                RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let list: TopicList = serde_json::from_slice(&response.body).unwrap();
        assert!(list.topic_list.contains("TBW102"));
    }

    // Old clients (the C++ client reports version 333) get fastjson's unquoted broker-id
    // keys; clients from 4.9.4 (401) on get standard JSON. Both parse back.
    let legacy = client
        .invoke(&first.addr(), route_request("TBW102", 333), WAIT)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&legacy.body).to_string();
    assert!(
        text.contains("{0:\""),
        "unquoted ids for version 333: {text}"
    );
    let standard = client
        .invoke(&first.addr(), route_request("TBW102", 401), WAIT)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&standard.body).to_string();
    assert!(
        text.contains("{\"0\":\""),
        "quoted ids for version 401: {text}"
    );
    serde_json::from_slice::<serde_json::Value>(&standard.body).expect("standard JSON");

    // An unknown topic and an unknown request code.
    let missing = client
        .invoke(&first.addr(), route_request("NoSuchTopic", 401), WAIT)
        .await
        .unwrap();
    assert_eq!(missing.code, response::TOPIC_NOT_EXIST);
    let unknown = client
        .invoke(&first.addr(), RemotingCommand::request(4242), WAIT)
        .await
        .unwrap();
    assert_eq!(unknown.code, response::REQUEST_CODE_NOT_SUPPORTED);

    // kill -9: no unregistration, but its connections close, and both name servers drop it
    // without waiting for the 120 s expiry.
    broker.process.kill();
    for ns in [first.addr(), second.addr()] {
        let gone = eventually(WAIT, Duration::from_millis(100), || {
            let route = futures_free_block_on(route(&client, &ns, "TBW102"));
            matches!(route, Ok(None)).then_some(())
        });
        assert!(gone.is_some(), "{ns} still routes to the killed broker");
    }
}

/// Runs a future to completion from a synchronous polling closure.
fn futures_free_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn request_with(code: i32, ext: &[(&str, &str)]) -> RemotingCommand {
    let mut command = RemotingCommand::request(code);
    for (key, value) in ext {
        command.ext_fields.insert((*key).into(), (*value).into());
    }
    command
}

/// The perm of the (one) broker's queues in `topic`'s route.
async fn route_perm(client: &RemotingClient, ns: &str, topic: &str) -> i32 {
    let route = route(client, ns, topic).await.unwrap().expect("a route");
    route.queue_datas[0].perm
}

/// Polls until `topic`'s route shows `perm`; fails after [`WAIT`].
async fn wait_for_perm(client: &RemotingClient, ns: &str, topic: &str, perm: i32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if matches!(route(client, ns, topic).await, Ok(Some(r)) if r.queue_datas[0].perm == perm) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} never showed perm {perm}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_wipes_and_adds_back_a_brokers_write_permission() {
    let dir = tempfile::tempdir().unwrap();
    let ns = NameServer::start(dir.path()).unwrap();
    // Re-registers every second, so the test sees registrations of an unchanged table.
    let period = [("registerNameServerPeriod", "1000".to_owned())];
    let broker = Broker::start(dir.path(), "broker-wipe", &ns.addr(), &period).unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    let t = Duration::from_secs(5);
    let created = client
        .invoke(&broker.addr(), create_topic("Drain", 4), t)
        .await
        .unwrap();
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    wait_for_route(&client, &ns.addr(), "Drain", &broker.addr(), WAIT)
        .await
        .unwrap();

    // The system topic list: the cluster and broker names, and the broker to ask for more.
    let resp = client
        .invoke(
            &ns.addr(),
            RemotingCommand::request(request::GET_SYSTEM_TOPIC_LIST_FROM_NS),
            t,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    let list: TopicList = serde_json::from_slice(&resp.body).unwrap();
    let names: Vec<&str> = list.topic_list.iter().map(String::as_str).collect();
    assert_eq!(names, ["TestCluster", "broker-wipe"]);
    assert_eq!(list.broker_addr, Some(broker.addr()));

    // As many topics as the broker serves.
    let resp = client
        .invoke(
            &ns.addr(),
            request_with(
                request::GET_TOPICS_BY_CLUSTER,
                &[("cluster", "TestCluster")],
            ),
            t,
        )
        .await
        .unwrap();
    let served = serde_json::from_slice::<TopicList>(&resp.body)
        .unwrap()
        .topic_list
        .len() as i64;
    assert!(served > 1, "the broker's system topics and Drain");

    let wipe = || {
        request_with(
            request::WIPE_WRITE_PERM_OF_BROKER,
            &[("brokerName", "broker-wipe")],
        )
    };
    let add = || {
        request_with(
            request::ADD_WRITE_PERM_OF_BROKER,
            &[("brokerName", "broker-wipe")],
        )
    };
    let resp = client.invoke(&ns.addr(), wipe(), t).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(ext_i64(&resp, "wipeTopicCount").unwrap(), served);
    assert_eq!(route_perm(&client, &ns.addr(), "Drain").await, perm::READ);

    // The broker's periodic registrations (an unchanged topic table) keep it wiped.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(route_perm(&client, &ns.addr(), "Drain").await, perm::READ);

    let resp = client.invoke(&ns.addr(), add(), t).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(ext_i64(&resp, "addTopicCount").unwrap(), served);
    assert_eq!(
        route_perm(&client, &ns.addr(), "Drain").await,
        perm::READ_WRITE
    );

    // Wiped again, then a topic changes on the broker: its new table is the truth again,
    // as in RocketMQ (wipeWritePerm is for a broker about to be stopped).
    client.invoke(&ns.addr(), wipe(), t).await.unwrap();
    assert_eq!(route_perm(&client, &ns.addr(), "Drain").await, perm::READ);
    let created = client
        .invoke(&broker.addr(), create_topic("Another", 2), t)
        .await
        .unwrap();
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    wait_for_perm(&client, &ns.addr(), "Drain", perm::READ_WRITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_config_outlives_a_restart_and_order_conf_needs_order_message_enable() {
    let dir = tempfile::tempdir().unwrap();
    let mut namesrv = NameServer::start(dir.path()).unwrap();
    let ns = namesrv.addr();
    let period = [("registerNameServerPeriod", "1000".to_owned())];
    let broker = Broker::start(dir.path(), "broker-kv", &ns, &period).unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    let t = Duration::from_secs(5);

    let put = |namespace: &str, key: &str, value: &str| {
        request_with(
            request::PUT_KV_CONFIG,
            &[("namespace", namespace), ("key", key), ("value", value)],
        )
    };
    for request in [
        put("ORDER_TOPIC_CONFIG", "TBW102", "broker-kv:8"),
        put("Settings", "a", "1"),
        put("Settings", "b", "2"),
        request_with(
            request::DELETE_KV_CONFIG,
            &[("namespace", "Settings"), ("key", "b")],
        ),
    ] {
        let resp = client.invoke(&ns, request, t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }
    // Off by default: the route leaves orderTopicConf out.
    let routed = wait_for_route(&client, &ns, "TBW102", &broker.addr(), WAIT)
        .await
        .unwrap();
    assert_eq!(routed.order_topic_conf, None);

    // Restarted on the same port and KV file, with orderMessageEnable: the entries were
    // kept on disk, and the broker's next registration brings the route back with the
    // order conf.
    namesrv
        .restart_with(dir.path(), &[("orderMessageEnable", "true".to_owned())])
        .unwrap();
    let routed = wait_for_route(&client, &ns, "TBW102", &broker.addr(), WAIT)
        .await
        .unwrap();
    assert_eq!(routed.order_topic_conf.as_deref(), Some("broker-kv:8"));
    let get_a = request_with(
        request::GET_KV_CONFIG,
        &[("namespace", "Settings"), ("key", "a")],
    );
    let resp = client.invoke(&ns, get_a, t).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(resp.ext_field("value"), Some("1"));
    let list = request_with(
        request::GET_KVLIST_BY_NAMESPACE,
        &[("namespace", "Settings")],
    );
    let resp = client.invoke(&ns, list, t).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let table = KvTable::decode(&resp.body).unwrap().table;
    assert_eq!(table.len(), 1, "{table:?}");
    // RocketMQ's file layout.
    let kv_path = NameServer::kv_config_path(dir.path(), namesrv.port);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(kv_path).unwrap()).unwrap();
    assert_eq!(file["configTable"]["Settings"]["a"], "1");

    // A kvConfig.json that is not JSON stops start-up, naming the file.
    let corrupt = dir.path().join("corrupt-kvConfig.json");
    std::fs::write(&corrupt, "{\"configTable\":").unwrap();
    let failed = NameServer::start_with(
        dir.path(),
        &[("kvConfigPath", corrupt.display().to_string())],
    );
    let Err(e) = failed else {
        panic!("mqnamesrv started with a corrupt KV config");
    };
    let message = format!("{e:#}");
    assert!(message.contains("exited during start-up"), "{message}");
    assert!(message.contains("corrupt-kvConfig.json"), "{message}");
}
