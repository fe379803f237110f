//! An in-process broker on 127.0.0.1 with a free port and a temporary store, and the
//! requests real clients send, built with the remoting crate.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use broker::config::BrokerConfig;
use broker::RunningBroker;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::offset::{
    QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use remoting::header::pull::PullMessageRequestHeader;
use remoting::header::send::SendMessageRequestHeader;
use remoting::message::properties;
use remoting::message::sysflag::pull as pull_flag;
use remoting::server::RequestProcessor;
use tempfile::TempDir;

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
        bind_address: "127.0.0.1".into(),
        broker_ip1: "127.0.0.1".into(),
        store_path_root_dir: dir.join("store"),
        mapped_file_size_commit_log: 16 * 1024 * 1024,
        max_message_size: 1024 * 1024,
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

pub fn props(pairs: &[(&str, &str)]) -> String {
    properties::encode(pairs.iter().copied())
}

pub fn send_header(topic: &str, queue_id: i32, properties: &str) -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(properties.into()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(false),
        max_reconsume_times: None,
        broker_name: None,
    }
}

/// SEND_MESSAGE (long keys).
pub fn send_v1(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    RemotingCommand::request(request::SEND_MESSAGE)
        .with_header(header)
        .with_body(body.to_vec())
}

/// SEND_MESSAGE_V2 (abbreviated keys), or a batch with `m=true` when `header.batch` says so.
pub fn send_v2(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    let mut command = RemotingCommand::request(request::SEND_MESSAGE_V2).with_body(body.to_vec());
    header.to_v2(&mut command.ext_fields);
    command
}

/// SEND_BATCH_MESSAGE (320) with V2 keys.
pub fn send_batch(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    let mut command =
        RemotingCommand::request(request::SEND_BATCH_MESSAGE).with_body(body.to_vec());
    header.to_v2(&mut command.ext_fields);
    command
}

pub fn pull_header(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
) -> PullMessageRequestHeader {
    PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: pull_flag::SUBSCRIPTION,
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        request_source: None,
        proxy_forward_client_id: None,
        broker_name: None,
    }
}

pub fn pull(header: &PullMessageRequestHeader) -> RemotingCommand {
    RemotingCommand::request(request::PULL_MESSAGE).with_header(header)
}

pub fn query_offset(group: &str, topic: &str, queue_id: i32) -> RemotingCommand {
    RemotingCommand::request(request::QUERY_CONSUMER_OFFSET).with_header(
        &QueryConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: topic.into(),
            queue_id,
            set_zero_if_not_found: None,
        },
    )
}

pub fn update_offset(group: &str, topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET).with_header(
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: topic.into(),
            queue_id,
            commit_offset: offset,
        },
    )
}

pub fn ext_i64(command: &RemotingCommand, key: &str) -> i64 {
    command
        .ext_field(key)
        .unwrap_or_else(|| panic!("no {key} in {command:?}"))
        .parse()
        .unwrap()
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
