//! The broker's gRPC service (RocketMQ 5's `MessagingService`) called the way a client
//! would, with requests no well-behaved client sends: the answer is the status RocketMQ's
//! proxy gives, and the broker serves the next call as before.

mod support;

use std::collections::BTreeMap;

use grpc::v2::messaging_service_client::MessagingServiceClient;
use grpc::v2::{self, Code};
use support::{create_topic, TestBroker};
use tonic::transport::Channel;
use tonic::Request;

async fn client(broker: &TestBroker) -> MessagingServiceClient<Channel> {
    let addr = format!("http://127.0.0.1:{}", broker.ctx().grpc_port());
    MessagingServiceClient::connect(addr).await.unwrap()
}

/// A request as a client with this id sends it.
fn from_client<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-mq-client-id", "grpc-test-client".parse().unwrap());
    request
}

fn topic(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

fn code_of(status: Option<v2::Status>) -> Code {
    Code::try_from(status.map_or(0, |s| s.code)).unwrap_or(Code::Unspecified)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_ended_with_ids_the_broker_never_handed_out_are_refused() {
    let broker = TestBroker::start_with(|c| c.grpc_server_port = 0).await;
    let created = broker.call(create_topic("GrpcBad", 1)).await;
    assert_eq!(created.code, remoting::code::response::SUCCESS);
    let mut client = client(&broker).await;
    for transaction_id in ["", "not-a-transaction", "7F00.-1.0", "7F00.99999999.0"] {
        let ended = client
            .end_transaction(from_client(v2::EndTransactionRequest {
                topic: topic("GrpcBad"),
                message_id: "7F00".into(),
                transaction_id: transaction_id.into(),
                resolution: v2::TransactionResolution::Commit as i32,
                source: v2::TransactionSource::SourceClient as i32,
                trace_context: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        let code = code_of(ended.status.clone());
        if transaction_id == "7F00.99999999.0" {
            // Well formed, but no half message there: the broker's refusal.
            assert_ne!(code, Code::Ok, "{ended:?}");
            assert_ne!(code, Code::InvalidTransactionId, "{ended:?}");
        } else {
            assert_eq!(
                code,
                Code::InvalidTransactionId,
                "{transaction_id}: {ended:?}"
            );
        }
    }
    let without_id = client
        .end_transaction(Request::new(v2::EndTransactionRequest {
            topic: topic("GrpcBad"),
            transaction_id: "7F00.1.0".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(without_id.status), Code::ClientIdRequired);
    let bad_topic = client
        .end_transaction(from_client(v2::EndTransactionRequest {
            topic: topic("bad topic!"),
            transaction_id: "7F00.1.0".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(bad_topic.status), Code::IllegalTopic);

    // Still serving.
    let route = client
        .query_route(from_client(v2::QueryRouteRequest {
            topic: topic("GrpcBad"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(route.status.clone()), Code::Ok, "{route:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_tls_files_leave_the_port_serving_plaintext() {
    let broker = TestBroker::start_with(|c| {
        c.grpc_server_port = 0;
        c.tls_test_mode_enable = false;
        c.tls_cert_path = Some("/nonexistent/rocketmq.crt".into());
        c.tls_key_path = Some("/nonexistent/rocketmq.key".into());
    })
    .await;
    let created = broker.call(create_topic("GrpcPlain", 1)).await;
    assert_eq!(created.code, remoting::code::response::SUCCESS);
    // A client starting a TLS handshake meets a plaintext server and fails; the port goes
    // on serving the others.
    let port = broker.ctx().grpc_port();
    let mut tls_hello = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut tls_hello,
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
    )
    .await
    .unwrap();
    let mut client = client(&broker).await;
    let route = client
        .query_route(from_client(v2::QueryRouteRequest {
            topic: topic("GrpcPlain"),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(route.status.clone()), Code::Ok, "{route:?}");
}

fn queue(topic_name: &str, id: i32) -> Option<v2::MessageQueue> {
    Some(v2::MessageQueue {
        topic: topic(topic_name),
        id,
        ..Default::default()
    })
}

/// A 5.x pull consumer's offset calls: GetOffset before any commit is OFFSET_NOT_FOUND;
/// UpdateOffset commits what GetOffset then answers (and what a remoting consumer of the
/// group reads); QueryOffset gives a queue's first and next offsets and the first stored
/// at or after a time; a queue of no topic, an unknown topic and a TIMESTAMP query
/// without its time are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_committed_read_and_queried() {
    let broker = TestBroker::start_with(|c| c.grpc_server_port = 0).await;
    let created = broker.call(create_topic("GrpcOffsets", 2)).await;
    assert_eq!(created.code, remoting::code::response::SUCCESS);
    let before_ms = broker::clock::now_ms();
    for i in 0..5 {
        let body = format!("m{i}");
        let sent = support::send_tagged(&broker, "GrpcOffsets", 1, "t", body.as_bytes()).await;
        assert_eq!(
            sent.code,
            remoting::code::response::SUCCESS,
            "{:?}",
            sent.remark
        );
    }
    let mut client = client(&broker).await;
    let group = topic("grpc-offset-group");

    let none = client
        .get_offset(from_client(v2::GetOffsetRequest {
            group: group.clone(),
            message_queue: queue("GrpcOffsets", 1),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(none.status), Code::OffsetNotFound);

    let updated = client
        .update_offset(from_client(v2::UpdateOffsetRequest {
            group: group.clone(),
            message_queue: queue("GrpcOffsets", 1),
            offset: 3,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(updated.status), Code::Ok);
    let got = client
        .get_offset(from_client(v2::GetOffsetRequest {
            group: group.clone(),
            message_queue: queue("GrpcOffsets", 1),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((code_of(got.status), got.offset), (Code::Ok, 3));
    assert_eq!(
        broker
            .ctx()
            .offsets
            .query("grpc-offset-group", "GrpcOffsets", 1),
        Some(3)
    );

    let query = |policy: v2::QueryOffsetPolicy, timestamp: Option<prost_types::Timestamp>| {
        v2::QueryOffsetRequest {
            message_queue: queue("GrpcOffsets", 1),
            query_offset_policy: policy as i32,
            timestamp,
        }
    };
    let ask = |request: v2::QueryOffsetRequest| {
        let mut client = client.clone();
        async move {
            let answer = client
                .query_offset(from_client(request))
                .await
                .unwrap()
                .into_inner();
            (code_of(answer.status), answer.offset)
        }
    };
    assert_eq!(
        ask(query(v2::QueryOffsetPolicy::Beginning, None)).await,
        (Code::Ok, 0)
    );
    assert_eq!(
        ask(query(v2::QueryOffsetPolicy::End, None)).await,
        (Code::Ok, 5)
    );
    let before = prost_types::Timestamp {
        seconds: before_ms / 1000 - 1,
        nanos: 0,
    };
    assert_eq!(
        ask(query(v2::QueryOffsetPolicy::Timestamp, Some(before))).await,
        (Code::Ok, 0)
    );
    assert_eq!(
        ask(query(v2::QueryOffsetPolicy::Timestamp, None)).await.0,
        Code::BadRequest
    );
    let mut unknown = query(v2::QueryOffsetPolicy::End, None);
    unknown.message_queue = queue("NoSuchTopic", 0);
    assert_eq!(ask(unknown).await.0, Code::TopicNotFound);
    let mut no_queue = query(v2::QueryOffsetPolicy::End, None);
    no_queue.message_queue = None;
    assert_eq!(ask(no_queue).await.0, Code::BadRequest);
}

/// Pulls one call of a PullMessage stream: its status, messages and next offset, in the
/// order the stream gave them.
async fn pull(
    client: &mut MessagingServiceClient<Channel>,
    request: v2::PullMessageRequest,
) -> (Code, Vec<v2::Message>, Option<i64>) {
    use futures::StreamExt;
    use v2::pull_message_response::Content;
    let mut stream = client
        .pull_message(from_client(request))
        .await
        .unwrap()
        .into_inner();
    let (mut code, mut messages, mut next) = (None, Vec::new(), None);
    while let Some(answer) = stream.next().await {
        match answer.unwrap().content {
            Some(Content::Status(status)) => {
                assert!(
                    code.is_none() && messages.is_empty(),
                    "the status comes first"
                );
                code = Some(code_of(Some(status)));
            }
            Some(Content::Message(message)) => messages.push(message),
            Some(Content::NextOffset(offset)) => next = Some(offset),
            None => panic!("an empty answer"),
        }
    }
    (code.expect("a status"), messages, next)
}

/// A 5.x pull consumer's PullMessage: a queue read from an offset through a tag filter,
/// no receipt handle on what it reads (no POP), the next offset last; an offset past the
/// queue is ILLEGAL_OFFSET, and a pull of no queue or of an unknown topic is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_read_a_queue_from_an_offset_through_a_filter() {
    let broker = TestBroker::start_with(|c| c.grpc_server_port = 0).await;
    let created = broker.call(create_topic("GrpcPull", 1)).await;
    assert_eq!(created.code, remoting::code::response::SUCCESS);
    for i in 0..6 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let body = format!("m{i}");
        let sent = support::send_tagged(&broker, "GrpcPull", 0, tag, body.as_bytes()).await;
        assert_eq!(sent.code, remoting::code::response::SUCCESS);
    }
    let mut client = client(&broker).await;
    let request = |offset: i64, expression: &str| v2::PullMessageRequest {
        group: topic("grpc-pull-group"),
        message_queue: queue("GrpcPull", 0),
        offset,
        batch_size: 32,
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: expression.to_owned(),
        }),
        long_polling_timeout: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
    };

    let (code, messages, next) = pull(&mut client, request(1, "even")).await;
    assert_eq!(code, Code::Ok);
    let bodies: Vec<&[u8]> = messages.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, [&b"m2"[..], b"m4"]);
    for message in &messages {
        let system = message.system_properties.as_ref().unwrap();
        assert_eq!(system.tag.as_deref(), Some("even"));
        assert_eq!(system.receipt_handle, None);
        assert_eq!(message.topic, topic("GrpcPull"));
    }
    assert_eq!(next, Some(6));

    let (code, messages, next) = pull(&mut client, request(100, "*")).await;
    assert_eq!((code, messages.len()), (Code::IllegalOffset, 0));
    assert!(next.is_some(), "an offset to go on from");

    let mut no_queue = request(0, "*");
    no_queue.message_queue = None;
    assert_eq!(pull(&mut client, no_queue).await.0, Code::BadRequest);
    let mut unknown = request(0, "*");
    unknown.message_queue = queue("NoSuchTopic", 0);
    assert_eq!(pull(&mut client, unknown).await.0, Code::TopicNotFound);
}

/// A receive of a group's messages, and its status: the whole stream of one call.
async fn receive(
    client: &mut MessagingServiceClient<Channel>,
    group: &str,
    topic_name: &str,
) -> (Code, Vec<v2::Message>) {
    use futures::StreamExt;
    use v2::receive_message_response::Content;
    let request = v2::ReceiveMessageRequest {
        group: topic(group),
        message_queue: queue(topic_name, -1),
        batch_size: 32,
        invisible_duration: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
        long_polling_timeout: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    };
    let mut stream = client
        .receive_message(from_client(request))
        .await
        .unwrap()
        .into_inner();
    let (mut code, mut messages) = (None, Vec::new());
    while let Some(answer) = stream.next().await {
        match answer.unwrap().content {
            Some(Content::Status(status)) => code = Some(code_of(Some(status))),
            Some(Content::Message(message)) => messages.push(message),
            Some(_) => {}
            None => panic!("an empty answer"),
        }
    }
    (code.expect("a status"), messages)
}

/// A SyncLiteSubscription of `group`'s lite topics under `parent`; its status code.
async fn sync_lite(
    mut client: MessagingServiceClient<Channel>,
    action: v2::LiteSubscriptionAction,
    group: &str,
    parent: String,
    lite_topics: Vec<String>,
) -> Code {
    let request = v2::SyncLiteSubscriptionRequest {
        action: action as i32,
        topic: topic(&parent),
        group: topic(group),
        lite_topic_set: lite_topics,
        ..Default::default()
    };
    let answer = client
        .sync_lite_subscription(from_client(request))
        .await
        .unwrap()
        .into_inner();
    code_of(answer.status)
}

/// The subscription settings the broker answers a LitePushConsumer of `group` bound to
/// `parent` with, over Telemetry (the client's settings stay registered after the stream).
async fn lite_consumer_settings(
    client: &mut MessagingServiceClient<Channel>,
    group: &str,
    parent: &str,
) -> v2::Subscription {
    let settings = v2::Settings {
        client_type: Some(v2::ClientType::LitePushConsumer as i32),
        pub_sub: Some(v2::settings::PubSub::Subscription(v2::Subscription {
            group: topic(group),
            subscriptions: vec![v2::SubscriptionEntry {
                topic: topic(parent),
                expression: None,
            }],
            ..Default::default()
        })),
        ..Default::default()
    };
    let command = v2::TelemetryCommand {
        status: None,
        command: Some(v2::telemetry_command::Command::Settings(settings)),
    };
    let mut answers = client
        .telemetry(from_client(futures::stream::iter([command])))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("settings back");
    let Some(v2::telemetry_command::Command::Settings(settled)) = answer.command else {
        panic!("no settings in {answer:?}");
    };
    let Some(v2::settings::PubSub::Subscription(subscription)) = settled.pub_sub else {
        panic!("no subscription in the settings");
    };
    subscription
}

fn body_text(message: &v2::Message) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

/// RocketMQ 5.5's lite topics, as a LitePushConsumer uses them: its settings carry the
/// subscription quota and the longest lite topic name; messages sent to lite topics of a
/// `message.type=LITE` parent reach the client only for the lite topics it subscribed, in
/// the order sent, as messages of the parent with their lite topic; a lite topic's next
/// messages wait until its last ones are acknowledged; messages given back come again, in
/// order, their delivery attempt raised. Bad lite topic
/// names, lite messages to other topics and lite topics past the broker's quota are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_topics_reach_their_subscribers_in_order() {
    use remoting::header::admin::CreateTopicRequestHeader;
    let broker = TestBroker::start_with(|c| {
        c.grpc_server_port = 0;
        c.max_lmq_consume_queue_num = 3;
    })
    .await;
    let create = |name: &str, attributes: Option<&str>| {
        remoting::command::RemotingCommand::request(
            remoting::code::request::UPDATE_AND_CREATE_TOPIC,
        )
        .with_header(&CreateTopicRequestHeader {
            topic: name.into(),
            default_topic: "TBW102".into(),
            read_queue_nums: 2,
            write_queue_nums: 2,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: false,
            attributes: attributes.map(str::to_owned),
            force: false,
        })
    };
    let created = broker
        .call(create("LiteParent", Some("+message.type=LITE")))
        .await;
    assert_eq!(
        created.code,
        remoting::code::response::SUCCESS,
        "{created:?}"
    );
    let created = broker.call(create("PlainTopic", None)).await;
    assert_eq!(created.code, remoting::code::response::SUCCESS);
    let mut client = client(&broker).await;

    // The consumer's settings, over Telemetry.
    let subscription = lite_consumer_settings(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(subscription.lite_subscription_quota, Some(2000));
    assert_eq!(subscription.max_lite_topic_size, Some(64));

    let sender = client.clone();
    let send = |parent: &str, lite: &str, body: &str| {
        let message = v2::Message {
            topic: topic(parent),
            system_properties: Some(v2::SystemProperties {
                message_id: format!("id-{body}"),
                message_type: v2::MessageType::Lite as i32,
                lite_topic: Some(lite.to_owned()),
                ..Default::default()
            }),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        let mut client = sender.clone();
        async move {
            let sent = client
                .send_message(from_client(v2::SendMessageRequest {
                    messages: vec![message],
                }))
                .await
                .unwrap()
                .into_inner();
            code_of(sent.status)
        }
    };
    for (lite, body) in [
        ("a", "a0"),
        ("b", "b0"),
        ("a", "a1"),
        ("c", "c0"),
        ("b", "b1"),
        ("a", "a2"),
    ] {
        assert_eq!(send("LiteParent", lite, body).await, Code::Ok, "{body}");
    }
    assert_eq!(
        send("LiteParent", "bad$name", "x").await,
        Code::IllegalLiteTopic
    );
    assert_eq!(send("PlainTopic", "a", "x").await, Code::BadRequest);
    assert_eq!(
        send("LiteParent", "d", "d0").await,
        Code::LiteTopicQuotaExceeded,
        "a fourth lite topic, past maxLmqConsumeQueueNum"
    );

    let syncer = client.clone();
    let sync = |action: v2::LiteSubscriptionAction, parent: &str, lites: &[&str]| {
        let lites = lites.iter().map(|l| l.to_string()).collect();
        sync_lite(
            syncer.clone(),
            action,
            "lite-group",
            parent.to_owned(),
            lites,
        )
    };
    use v2::LiteSubscriptionAction::{PartialAdd, PartialRemove};
    assert_eq!(sync(PartialAdd, "LiteParent", &["a", "b"]).await, Code::Ok);
    assert_eq!(
        sync(PartialAdd, "LiteParent", &["no way"]).await,
        Code::IllegalLiteTopic
    );
    assert_eq!(
        sync(PartialAdd, "PlainTopic", &["a"]).await,
        Code::BadRequest
    );

    // Subscribed a and b: every message of theirs, in order per lite topic, none of c.
    let (code, messages) = receive(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(code, Code::Ok);
    let mut by_lite: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in &messages {
        assert_eq!(message.topic, topic("LiteParent"));
        let system = message.system_properties.as_ref().unwrap();
        assert_eq!(system.message_type, v2::MessageType::Lite as i32);
        assert_eq!(system.delivery_attempt, Some(1));
        by_lite
            .entry(system.lite_topic.clone().unwrap())
            .or_default()
            .push(body_text(message));
    }
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "a".to_owned(),
            vec!["a0".to_owned(), "a1".into(), "a2".into()],
        ),
        ("b".to_owned(), vec!["b0".to_owned(), "b1".into()]),
    ]
    .into();
    assert_eq!(by_lite, expected);
    let handle = |body: &str| {
        messages
            .iter()
            .find(|m| body_text(m) == body)
            .and_then(|m| m.system_properties.as_ref()?.receipt_handle.clone())
            .unwrap()
    };

    // a's messages acknowledged (the handle names the lite topic: the entry need not); a
    // new message of a comes while b's wait; then b's are given back.
    let entries = ["a0", "a1", "a2"]
        .iter()
        .map(|body| v2::AckMessageEntry {
            message_id: format!("id-{body}"),
            receipt_handle: handle(body),
            lite_topic: None,
        })
        .collect();
    let acked = client
        .ack_message(from_client(v2::AckMessageRequest {
            group: topic("lite-group"),
            topic: topic("LiteParent"),
            entries,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(acked.status.clone()), Code::Ok, "{acked:?}");
    assert_eq!(send("LiteParent", "a", "a3").await, Code::Ok);
    let (code, messages) = receive(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(code, Code::Ok);
    let bodies: Vec<String> = messages.iter().map(body_text).collect();
    assert_eq!(bodies, ["a3"], "b is held by its unacknowledged messages");

    for body in ["b0", "b1"] {
        let changed = client
            .change_invisible_duration(from_client(v2::ChangeInvisibleDurationRequest {
                group: topic("lite-group"),
                topic: topic("LiteParent"),
                receipt_handle: handle(body),
                invisible_duration: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 0,
                }),
                message_id: format!("id-{body}"),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code_of(changed.status.clone()), Code::Ok, "{changed:?}");
    }
    let (code, messages) = receive(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(code, Code::Ok);
    let again: Vec<(String, Option<i32>)> = messages
        .iter()
        .map(|m| {
            let attempt = m
                .system_properties
                .as_ref()
                .and_then(|s| s.delivery_attempt);
            (body_text(m), attempt)
        })
        .collect();
    assert_eq!(
        again,
        [("b0".to_owned(), Some(2)), ("b1".to_owned(), Some(2))],
        "b given back: its messages again, in order"
    );

    // Unsubscribed from b: a later message of b is not delivered; c's stay where they are.
    assert_eq!(
        sync(PartialRemove, "LiteParent", &["a", "b"]).await,
        Code::Ok
    );
    assert_eq!(sync(PartialAdd, "LiteParent", &["c"]).await, Code::Ok);
    let (code, messages) = receive(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(code, Code::Ok);
    let bodies: Vec<String> = messages.iter().map(body_text).collect();
    assert_eq!(
        bodies,
        ["c0"],
        "the backlog of a lite topic subscribed late"
    );

    // Subscribed again from its first message (Node.js's and Java's offset option): a's
    // acknowledged messages come again.
    let mut again = v2::SyncLiteSubscriptionRequest {
        action: PartialAdd as i32,
        topic: topic("LiteParent"),
        group: topic("lite-group"),
        lite_topic_set: vec!["a".into()],
        ..Default::default()
    };
    again.offset_option = Some(v2::OffsetOption {
        offset_type: Some(v2::offset_option::OffsetType::Policy(
            v2::offset_option::Policy::Min as i32,
        )),
    });
    let answer = client
        .sync_lite_subscription(from_client(again))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code_of(answer.status), Code::Ok);
    let (code, messages) = receive(&mut client, "lite-group", "LiteParent").await;
    assert_eq!(code, Code::Ok);
    let bodies: Vec<String> = messages.iter().map(body_text).collect();
    assert_eq!(
        bodies,
        ["a0", "a1", "a2", "a3"],
        "a reset to its first message"
    );
}

/// The remoting requests a group's followers hand lite calls to the master with, as no
/// client would send them: RocketMQ's codes, and the broker serves the next call as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lite_requests_are_refused() {
    use remoting::body::lite::{
        LiteSubscriptionAction, LiteSubscriptionCtlRequestBody, LiteSubscriptionDto,
    };
    use remoting::code::{request as code, response};
    use remoting::command::RemotingCommand;
    use remoting::header::pop::PopLiteMessageRequestHeader;
    let broker = TestBroker::start_with(|c| c.grpc_server_port = 0).await;
    let created = broker.call(create_topic("NotLite", 1)).await;
    assert_eq!(created.code, response::SUCCESS);
    let ctl = |body: Vec<u8>| RemotingCommand::request(code::LITE_SUBSCRIPTION_CTL).with_body(body);
    let change = |topic: &str, lite: &str| {
        LiteSubscriptionCtlRequestBody {
            subscription_set: vec![LiteSubscriptionDto {
                action: LiteSubscriptionAction::PartialAdd,
                client_id: "c1".into(),
                group: "g".into(),
                topic: topic.into(),
                lite_topic_set: vec![lite.into()],
                version: 0,
                offset_option: None,
            }],
        }
        .encode()
    };
    let refused = [
        (ctl(b"not json".to_vec()), response::INVALID_PARAMETER),
        (
            ctl(b"{\"subscriptionSet\":[{}]}".to_vec()),
            response::INVALID_PARAMETER,
        ),
        (ctl(change("NoSuchTopic", "a")), response::TOPIC_NOT_EXIST),
        (ctl(change("NotLite", "a")), response::INVALID_PARAMETER),
        (ctl(change("NotLite", "a b")), response::INVALID_PARAMETER),
    ];
    for (request, expected) in refused {
        let answer = broker.call(request).await;
        assert_eq!(answer.code, expected, "{answer:?}");
    }
    let pop = |topic: &str| {
        RemotingCommand::request(code::POP_LITE_MESSAGE).with_header(&PopLiteMessageRequestHeader {
            client_id: "c1".into(),
            consumer_group: "g".into(),
            topic: topic.into(),
            max_msg_num: 32,
            invisible_time: 30_000,
            poll_time: 0,
            born_time: 0,
            attempt_id: None,
        })
    };
    assert_eq!(
        broker.call(pop("NotLite")).await.code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        broker.call(pop("NoSuchTopic")).await.code,
        response::TOPIC_NOT_EXIST
    );
    let no_client = RemotingCommand::request(code::POP_LITE_MESSAGE);
    assert_ne!(broker.call(no_client).await.code, response::SUCCESS);
    let sent = support::send_tagged(&broker, "NotLite", 0, "t", b"still served").await;
    assert_eq!(sent.code, response::SUCCESS);
}

/// RocketMQ 5.5's lite group attributes, set as its tools send them: `lite.bind.topic`
/// binds a group to one parent (a subscription of another is refused) and
/// `lite.sub.client.quota` is the quota its clients get in their settings, enforced (with
/// RocketMQ's margin of 300) when a client's set is larger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lite_groups_attributes_bind_it_and_set_its_quota() {
    use remoting::body::SubscriptionGroupConfig;
    use remoting::code::{request as code, response};
    use remoting::command::RemotingCommand;
    let broker = TestBroker::start_with(|c| c.grpc_server_port = 0).await;
    for parent in ["BoundParent", "OtherParent"] {
        let create = create_topic(parent, 1).with_ext_field("attributes", "+message.type=LITE");
        assert_eq!(broker.call(create).await.code, response::SUCCESS);
    }
    let mut config = SubscriptionGroupConfig::new("bound-group");
    config.attributes = [
        ("+lite.bind.topic", "BoundParent"),
        ("+lite.sub.client.quota", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let create = |config: &SubscriptionGroupConfig| {
        RemotingCommand::request(code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
            .with_body(remoting::body::fastjson::encode(config))
    };
    assert_eq!(broker.call(create(&config)).await.code, response::SUCCESS);
    let stored = broker.ctx().groups.get("bound-group").unwrap();
    assert_eq!(
        stored.attributes.get("lite.bind.topic").map(String::as_str),
        Some("BoundParent")
    );
    let mut bad = config.clone();
    bad.attributes = [("+lite.sub.client.quota".to_owned(), "lots".to_owned())].into();
    assert_eq!(
        broker.call(create(&bad)).await.code,
        response::INVALID_PARAMETER
    );

    let mut client = client(&broker).await;
    let subscription = lite_consumer_settings(&mut client, "bound-group", "BoundParent").await;
    assert_eq!(subscription.lite_subscription_quota, Some(1));

    let sync = |parent: &str, lites: Vec<String>| {
        let complete = v2::LiteSubscriptionAction::CompleteAdd;
        sync_lite(
            client.clone(),
            complete,
            "bound-group",
            parent.to_owned(),
            lites,
        )
    };
    assert_eq!(sync("BoundParent", vec!["a".into()]).await, Code::Ok);
    assert_eq!(
        sync("OtherParent", vec!["a".into()]).await,
        Code::BadRequest
    );
    let past_quota: Vec<String> = (0..302).map(|i| format!("t{i}")).collect();
    assert_eq!(
        sync("BoundParent", past_quota).await,
        Code::LiteSubscriptionQuotaExceeded
    );
}
