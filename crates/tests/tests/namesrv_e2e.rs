//! The real `mqnamesrv` with real `mqbroker`s: a broker registers with every configured name
//! server; routes answer in the key quoting each requester's version asks for; a broker that
//! dies leaves the routes at once (its connection closed); unknown topics and codes get
//! RocketMQ's answers.

use std::time::Duration;

use remoting::body::{ClusterInfo, TopicList};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::namesrv::GetRouteInfoRequestHeader;
use tests::requests::{route, wait_for_route};
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
