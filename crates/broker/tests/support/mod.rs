//! An in-process broker on 127.0.0.1 with a free port and a temporary store; the requests
//! real clients send come from the end-to-end harness (`tests::requests`), re-exported here.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use broker::config::BrokerConfig;
use broker::RunningBroker;
use remoting::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, MessageModel, ProducerData,
    SubscriptionData,
};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::connection::RequestProcessor;
use tempfile::TempDir;
use tests::requests;
// Each test binary uses part of them.
#[allow(unused_imports)]
pub use tests::requests::{
    create_topic, props, pull, pull_header, query_offset, send_batch, send_header, send_v1,
    send_v2, update_offset,
};

/// Bounds every wait in these tests.
pub const TEST_WAIT: Duration = Duration::from_secs(20);

pub struct TestBroker {
    pub running: Option<RunningBroker>,
    pub dir: TempDir,
    pub config: BrokerConfig,
    pub client: RemotingClient,
}

pub fn test_config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        broker_cluster_name: "TestCluster".into(),
        broker_name: "broker-t".into(),
        listen_port: 0,
        grpc_server_port: 0,
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        max_message_size: 1024 * 1024,
        store: store::StoreConfig {
            mapped_file_size_commit_log: 16 * 1024 * 1024,
            // A test's data must not depend on how full the host's disk is.
            disk_space_warning_level_ratio: 1.0,
            disk_space_clean_forcibly_ratio: 1.0,
            // Files reserve their blocks when created: at the defaults one broker holds
            // about 700 MB of index and queue files, and tests running at once could fill
            // a CI machine's disk.
            max_hash_slot_num: 16 * 1024,
            max_index_num: 64 * 1024,
            consume_queue_entries_per_file: 16 * 1024,
            entry_index_slots_per_file: 64 * 1024,
            ..store::StoreConfig::new(dir.join("store"))
        },
        ..BrokerConfig::default()
    }
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let running = broker::start(config.clone()).await.unwrap();
        TestBroker {
            running: Some(running),
            dir,
            config,
            client: RemotingClient::new(ClientConfig::default()),
        }
    }

    pub fn running(&self) -> &RunningBroker {
        self.running.as_ref().unwrap()
    }

    pub fn addr(&self) -> String {
        self.running().local_addr().to_string()
    }

    pub fn ctx(&self) -> &Arc<broker::BrokerContext> {
        self.running().context()
    }

    pub async fn call(&self, command: RemotingCommand) -> RemotingCommand {
        self.client
            .invoke(&self.addr(), command, TEST_WAIT)
            .await
            .unwrap()
    }

    /// Graceful stop and start again on the same store (on a new port).
    pub async fn restart(&mut self) {
        self.running.take().unwrap().shutdown().await;
        self.client.shutdown();
        self.client = RemotingClient::new(ClientConfig::default());
        self.running = Some(broker::start(self.config.clone()).await.unwrap());
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// A second client connection to the broker, answering requests the broker sends it.
pub fn client_with_handler<P: RequestProcessor>(handler: Arc<P>) -> RemotingClient {
    RemotingClient::with_request_handler(ClientConfig::default(), handler)
}

/// An integer ext field of a response; the test fails when it is missing or not a number.
pub fn ext_i64(command: &RemotingCommand, key: &str) -> i64 {
    requests::ext_i64(command, key).unwrap()
}

/// Sends one message with a tag to a queue and returns the response.
pub async fn send_tagged(
    broker: &TestBroker,
    topic: &str,
    queue_id: i32,
    tag: &str,
    body: &[u8],
) -> RemotingCommand {
    let header = send_header(topic, queue_id, &props(&[("TAGS", tag)]));
    broker.call(send_v2(&header, body)).await
}

/// A Java consumer's heartbeat: client `client_id` in `group`, subscribed to all of `topic`
/// (and producer group PG).
pub fn consumer_heartbeat(client_id: &str, group: &str, topic: &str) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![ProducerData {
            group_name: "PG".into(),
        }],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            subscription_data_set: vec![SubscriptionData::tag(topic, "*", 1).unwrap()],
            unit_mode: false,
        }],
        ..HeartbeatData::default()
    };
    RemotingCommand::request(request::HEART_BEAT).with_body(data.encode())
}

/// A consumer's heartbeat registering the TAG `expression` at `sub_version` for `topic`.
pub fn tag_heartbeat(
    client_id: &str,
    group: &str,
    topic: &str,
    expression: &str,
    sub_version: i64,
) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: client_id.into(),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            subscription_data_set: vec![
                SubscriptionData::tag(topic, expression, sub_version).unwrap()
            ],
            unit_mode: false,
        }],
        ..HeartbeatData::default()
    };
    RemotingCommand::request(request::HEART_BEAT).with_body(data.encode())
}
