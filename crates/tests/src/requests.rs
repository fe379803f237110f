//! Requests real RocketMQ clients send, built with the `remoting` crate, and small helpers to
//! read their answers; for tests that drive a name server or broker without a client
//! library.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use message::properties;
use message::sysflag::pull as pull_flag;
use remoting::body::TopicRouteData;
use remoting::client::RemotingClient;
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::admin::CreateTopicRequestHeader;
use remoting::header::client::ConsumerSendMsgBackRequestHeader;
use remoting::header::namesrv::GetRouteInfoRequestHeader;
use remoting::header::offset::{
    QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use remoting::header::pull::PullMessageRequestHeader;
use remoting::header::send::SendMessageRequestHeader;

/// An encoded properties string.
pub fn props(pairs: &[(&str, &str)]) -> String {
    properties::encode(pairs.iter().copied())
}

/// A producer's send header for one message to `topic`/`queue_id` (negative: broker picks).
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

/// SEND_MESSAGE (10) with long header keys.
pub fn send_v1(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    RemotingCommand::request(request::SEND_MESSAGE)
        .with_header(header)
        .with_body(body.to_vec())
}

/// SEND_MESSAGE_V2 (310) with abbreviated keys (a batch when `header.batch` is true, as
/// the C++ client sends batches).
pub fn send_v2(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    let mut command = RemotingCommand::request(request::SEND_MESSAGE_V2).with_body(body.to_vec());
    header.to_v2(&mut command.ext_fields);
    command
}

/// SEND_BATCH_MESSAGE (320) with abbreviated keys.
pub fn send_batch(header: &SendMessageRequestHeader, body: &[u8]) -> RemotingCommand {
    let mut command =
        RemotingCommand::request(request::SEND_BATCH_MESSAGE).with_body(body.to_vec());
    header.to_v2(&mut command.ext_fields);
    command
}

/// A pull header with the subscription in the request (as the C++ client sends it).
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

/// CONSUMER_SEND_MSG_BACK: `group` hands back the message at CommitLog `offset` for retry
/// (`delay_level` 0: the broker picks `3 + reconsumeTimes`; negative: dead-letter it).
pub fn send_back(
    offset: i64,
    group: &str,
    delay_level: i32,
    max_reconsume_times: i32,
) -> RemotingCommand {
    RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK).with_header(
        &ConsumerSendMsgBackRequestHeader {
            offset,
            group: group.into(),
            delay_level,
            origin_msg_id: None,
            origin_topic: None,
            unit_mode: false,
            max_reconsume_times: Some(max_reconsume_times),
        },
    )
}

/// UPDATE_AND_CREATE_TOPIC with read = write = `queues` and perm RW.
pub fn create_topic(topic: &str, queues: i32) -> RemotingCommand {
    RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC).with_header(
        &CreateTopicRequestHeader {
            topic: topic.into(),
            default_topic: "TBW102".into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: false,
            attributes: None,
            force: false,
        },
    )
}

/// An integer ext field of a response.
pub fn ext_i64(command: &RemotingCommand, key: &str) -> Result<i64> {
    command
        .ext_field(key)
        .with_context(|| format!("no `{key}` in {command:?}"))?
        .parse()
        .with_context(|| format!("`{key}` is not an integer"))
}

/// The name server's route for `topic`, if it has one.
pub async fn route(
    client: &RemotingClient,
    namesrv: &str,
    topic: &str,
) -> Result<Option<TopicRouteData>> {
    let request = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
        &GetRouteInfoRequestHeader {
            topic: topic.into(),
            accept_standard_json_only: Some(true),
        },
    );
    let response = client
        .invoke(namesrv, request, Duration::from_secs(5))
        .await?;
    if !response.is_success() {
        return Ok(None);
    }
    Ok(Some(TopicRouteData::decode(&response.body)?))
}

/// Waits (up to `timeout`) until the name server routes `topic` to `broker_addr` as master.
pub async fn wait_for_route(
    client: &RemotingClient,
    namesrv: &str,
    topic: &str,
    broker_addr: &str,
    timeout: Duration,
) -> Result<TopicRouteData> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(route)) = route(client, namesrv, topic).await {
            if route
                .broker_datas
                .iter()
                .any(|b| b.master_addr() == Some(broker_addr))
            {
                return Ok(route);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no route for {topic} to {broker_addr} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
