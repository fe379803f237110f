//! Request-reply over the real `mqbroker`, with the requests RocketMQ clients send: a
//! requester (a producer that heartbeats) sends a request message; a replier reads it and
//! answers with SEND_REPLY_MESSAGE(_V2) to `{cluster}_REPLY_TOPIC`; the broker pushes the
//! reply to the requester (PUSH_REPLY_MESSAGE_TO_CLIENT) and stores it. A requester that is
//! gone, or that never answers the push, costs the replier a SYSTEM_ERROR and nothing else.
//! In a broker group the master does the same and the stored reply reaches every member.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use client::consumer::{ConsumeFromWhere, ConsumeResult};
use client::{
    Admin, ClientOptions, Message, Producer, ProducerOptions, PushConsumer, PushConsumerOptions,
    ReceivedMessage,
};
use message::{decode_all, keys, MessageView};
use remoting::body::{HeartbeatData, ProducerData};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::reply::ReplyMessageRequestHeader;
use remoting::header::send::SendMessageRequestHeader;
use tests::group::{wait_for_master, BrokerGroup};
use tests::requests::*;
use tests::{Broker, NameServer};
use tokio::sync::mpsc;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CLUSTER: &str = "TestCluster";
const REPLY_TOPIC: &str = "TestCluster_REPLY_TOPIC";
/// The test group harness names its cluster RaftCluster.
const GROUP_REPLY_TOPIC: &str = "RaftCluster_REPLY_TOPIC";
const GROUP_WAIT: Duration = Duration::from_secs(60);

fn start(dir: &Path, extra: &[(&str, String)]) -> (NameServer, Broker) {
    let namesrv = NameServer::start(dir).unwrap();
    let mut settings = vec![("bindAddress", "127.0.0.1".to_string())];
    settings.extend(extra.iter().cloned());
    let broker = Broker::start(dir, "broker-reply", &namesrv.addr(), &settings).unwrap();
    (namesrv, broker)
}

async fn call(client: &RemotingClient, addr: &str, command: RemotingCommand) -> RemotingCommand {
    client.invoke(addr, command, CALL_TIMEOUT).await.unwrap()
}

/// What a requester's connection does with the broker's pushes: hand them to the test and
/// answer SUCCESS, or (a requester that hangs) never answer in time.
struct Requester {
    pushes: mpsc::Sender<RemotingCommand>,
    hang: bool,
}

impl RequestProcessor for Requester {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        if self.hang {
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        let answer = RemotingCommand::success_to(&request);
        // Bounded: a test that stops reading loses pushes, never blocks the connection.
        let _ = self.pushes.try_send(request);
        Some(answer)
    }
}

/// A requester connected to `addr` as client `client_id` of producer group `ReqGroup`.
async fn requester(
    addr: &str,
    client_id: &str,
    hang: bool,
) -> (RemotingClient, mpsc::Receiver<RemotingCommand>) {
    let (pushes, received) = mpsc::channel(16);
    let client = RemotingClient::with_request_handler(
        ClientConfig::default(),
        Arc::new(Requester { pushes, hang }),
    );
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![ProducerData {
            group_name: "ReqGroup".into(),
        }],
        ..HeartbeatData::default()
    };
    let beat = call(
        &client,
        addr,
        RemotingCommand::request(request::HEART_BEAT).with_body(data.encode()),
    )
    .await;
    assert_eq!(beat.code, response::SUCCESS);
    (client, received)
}

/// The request a requester sends (`request()` in RocketMQ's producers).
async fn send_request(client: &RemotingClient, addr: &str, client_id: &str, correlation: &str) {
    let properties = props(&[
        (keys::CORRELATION_ID, correlation),
        (keys::REPLY_TO_CLIENT, client_id),
        (keys::TTL, "3000"),
    ]);
    let sent = call(
        client,
        addr,
        send_v2(&send_header("ReqTopic", 0, &properties), b"ping"),
    )
    .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
}

/// The replier's answer to `request`, as RocketMQ's `MessageUtil.createReplyMessage` makes
/// it: to the request's cluster's reply topic, with its correlation id and requester.
fn reply_to(request: &MessageView<'_>, body: &[u8], v2: bool) -> RemotingCommand {
    let cluster = request
        .property(keys::CLUSTER)
        .expect("the broker adds CLUSTER");
    let properties = props(&[
        (keys::CLUSTER, cluster),
        (
            keys::CORRELATION_ID,
            request.property(keys::CORRELATION_ID).unwrap_or_default(),
        ),
        (
            keys::REPLY_TO_CLIENT,
            request.property(keys::REPLY_TO_CLIENT).unwrap_or_default(),
        ),
        (keys::TTL, request.property(keys::TTL).unwrap_or_default()),
        (keys::MSG_TYPE, "reply"),
    ]);
    let header: SendMessageRequestHeader =
        send_header(&format!("{cluster}_REPLY_TOPIC"), -1, &properties);
    let mut command = if v2 {
        send_v2(&header, body)
    } else {
        send_v1(&header, body)
    };
    command.code = if v2 {
        request::SEND_REPLY_MESSAGE_V2
    } else {
        request::SEND_REPLY_MESSAGE
    };
    command
}

/// The request messages in ReqTopic, pulled as a replier's consumer would.
async fn requests(client: &RemotingClient, addr: &str) -> Vec<Vec<u8>> {
    let pulled = call(
        client,
        addr,
        pull(&pull_header("Replier", "ReqTopic", 0, 0)),
    )
    .await;
    assert_eq!(pulled.code, response::SUCCESS);
    decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(|m| m.as_bytes().to_vec())
        .collect()
}

async fn next_push(received: &mut mpsc::Receiver<RemotingCommand>) -> RemotingCommand {
    tokio::time::timeout(CALL_TIMEOUT, received.recv())
        .await
        .expect("a push within the time limit")
        .expect("the requester is still there")
}

#[tokio::test]
async fn a_reply_is_pushed_to_its_requester_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, broker) = start(dir.path(), &[]);
    let addr = broker.addr();
    let raw = RemotingClient::new(ClientConfig::default());
    // The reply topic exists from start-up: repliers find its route before anyone sends.
    wait_for_route(&raw, &namesrv.addr(), REPLY_TOPIC, &addr, CALL_TIMEOUT)
        .await
        .unwrap();

    let (requester_client, mut pushes) = requester(&addr, "requester@1", false).await;
    send_request(&requester_client, &addr, "requester@1", "corr-1").await;
    send_request(&requester_client, &addr, "requester@1", "corr-2").await;
    let stored_requests = requests(&raw, &addr).await;
    assert_eq!(stored_requests.len(), 2);
    for (record, v2) in stored_requests.iter().zip([true, false]) {
        let request = MessageView::parse(record).unwrap();
        assert_eq!(request.property(keys::CLUSTER), Some(CLUSTER));
        let correlation = request.property(keys::CORRELATION_ID).unwrap().to_owned();
        let body = format!("pong {correlation}");
        let replied = call(&raw, &addr, reply_to(&request, body.as_bytes(), v2)).await;
        assert_eq!(replied.code, response::SUCCESS, "{:?}", replied.remark);
        let msg_id = replied.ext_field("msgId").unwrap().to_owned();
        assert_ne!(msg_id, "0", "stored: the answer names where");

        let push = next_push(&mut pushes).await;
        assert_eq!(push.code, request::PUSH_REPLY_MESSAGE_TO_CLIENT);
        assert_eq!(push.body.as_ref(), body.as_bytes());
        let header: ReplyMessageRequestHeader = push.decode_header().unwrap();
        assert_eq!(header.topic, REPLY_TOPIC);
        assert_eq!(header.store_host, addr);
        assert!(header.born_host.starts_with("127.0.0.1:"));
        assert!(header.store_timestamp > 0);
        let pushed_props = message::properties::decode(header.properties.as_deref().unwrap());
        assert_eq!(pushed_props.get(keys::CORRELATION_ID), Some(&correlation));
        assert_eq!(
            pushed_props.get(keys::MSG_TYPE).map(String::as_str),
            Some("reply")
        );
        assert!(pushed_props.contains_key(keys::PUSH_REPLY_TIME));
    }
    // Both replies are stored in the reply topic too.
    let stored = call(&raw, &addr, pull(&pull_header("Audit", REPLY_TOPIC, 0, 0))).await;
    assert_eq!(stored.code, response::SUCCESS);
    let bodies: Vec<Vec<u8>> = decode_all(&stored.body)
        .unwrap()
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, [b"pong corr-1".to_vec(), b"pong corr-2".to_vec()]);
}

#[tokio::test]
async fn a_gone_or_hung_requester_gets_nothing_and_nothing_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &[]);
    let addr = broker.addr();
    let raw = RemotingClient::new(ClientConfig::default());

    let (gone, _gone_pushes) = requester(&addr, "requester@gone", false).await;
    send_request(&gone, &addr, "requester@gone", "corr-gone").await;
    let (hung, _hung_pushes) = requester(&addr, "requester@hung", true).await;
    send_request(&hung, &addr, "requester@hung", "corr-hung").await;
    gone.shutdown();
    drop(gone);
    let stored = requests(&raw, &addr).await;
    let gone_request = MessageView::parse(&stored[0]).unwrap();
    let hung_request = MessageView::parse(&stored[1]).unwrap();

    // The broker notices the closed connection; until then it may still try the old one.
    let mut refused = None;
    for _ in 0..100 {
        let replied = call(&raw, &addr, reply_to(&gone_request, b"late", true)).await;
        if replied.code == response::SYSTEM_ERROR
            && replied
                .remark
                .as_deref()
                .unwrap_or("")
                .contains("not found")
        {
            refused = Some(replied);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("a reply to a requester that is gone is refused");
    assert!(refused.remark.unwrap().contains("requester@gone"));

    // A requester that never answers the push: the replier hears so within the push's
    // time limit, not its own.
    let started = std::time::Instant::now();
    let replied = call(&raw, &addr, reply_to(&hung_request, b"slow", true)).await;
    assert_eq!(replied.code, response::SYSTEM_ERROR);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A reply naming no requester.
    let mut anonymous = reply_to(&hung_request, b"anon", true);
    let properties = props(&[(keys::CLUSTER, CLUSTER), (keys::MSG_TYPE, "reply")]);
    send_header(REPLY_TOPIC, -1, &properties).to_v2(&mut anonymous.ext_fields);
    let replied = call(&raw, &addr, anonymous).await;
    assert_eq!(replied.code, response::SYSTEM_ERROR);
    assert!(replied.remark.unwrap().contains(keys::REPLY_TO_CLIENT));

    // The broker carries on: a live requester gets its reply.
    let (live, mut pushes) = requester(&addr, "requester@live", false).await;
    send_request(&live, &addr, "requester@live", "corr-live").await;
    let stored = requests(&raw, &addr).await;
    let live_request = MessageView::parse(&stored[2]).unwrap();
    let replied = call(&raw, &addr, reply_to(&live_request, b"fine", true)).await;
    assert_eq!(replied.code, response::SUCCESS, "{:?}", replied.remark);
    assert_eq!(next_push(&mut pushes).await.body.as_ref(), b"fine");
}

#[tokio::test]
async fn replies_are_only_pushed_when_storing_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(
        dir.path(),
        &[("storeReplyMessageEnable", "false".to_owned())],
    );
    let addr = broker.addr();
    let raw = RemotingClient::new(ClientConfig::default());
    let (client, mut pushes) = requester(&addr, "requester@nostore", false).await;
    send_request(&client, &addr, "requester@nostore", "corr").await;
    let stored = requests(&raw, &addr).await;
    let request = MessageView::parse(&stored[0]).unwrap();
    let replied = call(&raw, &addr, reply_to(&request, b"unstored", true)).await;
    assert_eq!(replied.code, response::SUCCESS);
    assert_eq!(replied.ext_field("msgId"), Some("0"));
    assert_eq!(next_push(&mut pushes).await.body.as_ref(), b"unstored");
    let pulled = call(&raw, &addr, pull(&pull_header("Audit", REPLY_TOPIC, 0, 0))).await;
    assert_ne!(pulled.code, response::SUCCESS, "nothing stored");
}

#[tokio::test]
async fn in_a_broker_group_the_master_pushes_and_every_member_keeps_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let name = "reply-group";
    let group = BrokerGroup::start(dir.path(), name, &namesrv.addr(), &[]).unwrap();
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options).unwrap();
    let master = wait_for_master(&admin, name, None, GROUP_WAIT)
        .await
        .unwrap();
    admin
        .create_topic(&master, &Admin::topic_config("ReqTopic", 1, 1))
        .await
        .unwrap();
    let raw = RemotingClient::new(ClientConfig::default());
    wait_for_route(
        &raw,
        &namesrv.addr(),
        GROUP_REPLY_TOPIC,
        &master,
        GROUP_WAIT,
    )
    .await
    .unwrap();

    let (client, mut pushes) = requester(&master, "requester@group", false).await;
    send_request(&client, &master, "requester@group", "corr-group").await;
    let stored = requests(&raw, &master).await;
    let request = MessageView::parse(&stored[0]).unwrap();
    assert_eq!(request.property(keys::CLUSTER), Some("RaftCluster"));
    let replied = call(&raw, &master, reply_to(&request, b"group pong", true)).await;
    assert_eq!(replied.code, response::SUCCESS, "{:?}", replied.remark);
    assert_eq!(next_push(&mut pushes).await.body.as_ref(), b"group pong");

    // Stored through the raft log: every member serves it.
    for member in &group.members {
        let addr = member.addr();
        let deadline = tokio::time::Instant::now() + GROUP_WAIT;
        loop {
            let pulled = call(
                &raw,
                &addr,
                pull(&pull_header("Audit", GROUP_REPLY_TOPIC, 0, 0)),
            )
            .await;
            if pulled.code == response::SUCCESS {
                let bodies: Vec<Vec<u8>> = decode_all(&pulled.body)
                    .unwrap()
                    .iter()
                    .map(|m| m.body().to_vec())
                    .collect();
                assert_eq!(bodies, [b"group pong".to_vec()], "{addr}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} never had the reply"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// This project's own client: `Producer::request` answered by a push consumer through
/// `Producer::reply`; a request nobody answers times out.
#[tokio::test]
async fn the_client_library_requests_and_replies() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, broker) = start(dir.path(), &[]);
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    for topic in ["LibRequests", "LibUnanswered"] {
        admin
            .create_topic(&broker.addr(), &Admin::topic_config(topic, 2, 2))
            .await
            .unwrap();
    }
    let raw = RemotingClient::new(ClientConfig::default());
    wait_for_route(
        &raw,
        &namesrv.addr(),
        "LibRequests",
        &broker.addr(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap();

    let replier =
        Arc::new(Producer::start(options.clone(), ProducerOptions::new("LibReplier")).unwrap());
    let mut consumer_options = PushConsumerOptions::new("LibReplier").subscribe("LibRequests", "*");
    consumer_options.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    let answering = Arc::clone(&replier);
    let consumer = PushConsumer::start(
        options.clone(),
        consumer_options,
        move |messages: Vec<ReceivedMessage>| {
            let replier = Arc::clone(&answering);
            async move {
                for message in &messages {
                    let body = format!("re: {}", message.body_text());
                    if let Err(error) = replier.reply(message, body).await {
                        eprintln!("reply failed: {error}");
                        return ConsumeResult::Retry;
                    }
                }
                ConsumeResult::Success
            }
        },
    )
    .await
    .unwrap();

    let requester = Producer::start(options.clone(), ProducerOptions::new("LibRequester")).unwrap();
    for i in 0..3 {
        let reply = requester
            .request(
                Message::new("LibRequests", format!("question {i}")),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        assert_eq!(reply.body_text(), format!("re: question {i}"));
        assert_eq!(reply.topic, REPLY_TOPIC);
        assert!(reply.property(keys::CORRELATION_ID).is_some());
    }

    let started = std::time::Instant::now();
    let unanswered = requester
        .request(
            Message::new("LibUnanswered", "anyone?"),
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(unanswered, Err(client::ClientError::Timeout { .. })),
        "{unanswered:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    consumer.shutdown().await;
    replier.shutdown().await;
    requester.shutdown().await;
}
