//! The broker's gRPC service (RocketMQ 5's `MessagingService`) called the way a client
//! would, with requests no well-behaved client sends: the answer is the status RocketMQ's
//! proxy gives, and the broker serves the next call as before.

mod support;

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
