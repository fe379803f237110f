//! The `client` producer against real `mqnamesrv` and `mqbroker` processes: what a send
//! reports, which messages are refused before sending, which broker refusals are retried
//! (on another broker when there is one) and which are not, a killed broker, and async
//! and one-way sends.

mod common;

use std::time::Duration;

use client::consumer::PullStatus;
use client::{
    Admin, ClientError, ClientOptions, Message, Producer, ProducerOptions, PullConsumer, SendStatus,
};
use common::{assert_consecutive, body_texts, eventually, Cluster};
use remoting::code::response;

fn producer(options: ClientOptions) -> Producer {
    Producer::start(options, ProducerOptions::new("producer-tests")).unwrap()
}

/// Client options whose cached routes stay as they are for the whole test: only a failed
/// send refreshes them. Tests use this to have a producer still believe in a broker that
/// has changed or died.
fn options_with_stale_routes(cluster: &Cluster) -> ClientOptions {
    let mut options = cluster.options();
    options.poll_name_server_interval = Duration::from_secs(600);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reports_where_the_message_is_stored_with_its_properties() {
    let cluster = Cluster::start().await;
    cluster.create_topic("Orders", 4).await;
    let producer = producer(cluster.options());
    let sent = producer
        .send(
            Message::new("Orders", "hello")
                .with_tag("created")
                .with_keys(["o-1"])
                .with_property("region", "eu"),
        )
        .await
        .unwrap();
    assert_eq!(sent.status, SendStatus::SendOk);
    assert_eq!(sent.queue.topic, "Orders");
    assert_eq!(sent.queue.broker_name, "broker-a");
    assert_eq!(
        sent.msg_id.len(),
        32,
        "a Java-style unique id: {}",
        sent.msg_id
    );
    assert_eq!(sent.offset_msg_id.len(), 32, "{}", sent.offset_msg_id);

    let reader = PullConsumer::start(cluster.options(), "readers").unwrap();
    let pulled = reader
        .pull(&sent.queue, "created", sent.queue_offset, 10)
        .await
        .unwrap();
    assert_eq!(pulled.status, PullStatus::Found);
    let message = &pulled.messages[0];
    assert_eq!(message.body_text(), "hello");
    assert_eq!(message.msg_id(), sent.msg_id);
    assert_eq!(message.offset_msg_id, sent.offset_msg_id);
    assert_eq!(message.queue_offset, sent.queue_offset);
    assert_eq!(message.keys(), Some("o-1"));
    assert_eq!(message.tag(), Some("created"));
    assert_eq!(message.property("region"), Some("eu"));

    // A batch: one queue, consecutive offsets, and the ids the send reported.
    let batch: Vec<Message> = (0..5)
        .map(|i| Message::new("Orders", format!("m{i}")))
        .collect();
    let sent = producer.send_batch(batch).await.unwrap();
    assert_eq!(sent.msg_id.split(',').count(), 5, "{}", sent.msg_id);
    let pulled = reader
        .pull(&sent.queue, "*", sent.queue_offset, 32)
        .await
        .unwrap();
    assert_eq!(body_texts(&pulled.messages), ["m0", "m1", "m2", "m3", "m4"]);
    assert_consecutive(&pulled.messages, sent.queue_offset, 5);
    let ids: Vec<&str> = pulled.messages.iter().map(|m| m.msg_id()).collect();
    assert_eq!(ids.join(","), sent.msg_id);
    reader.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_and_batches_are_refused_before_sending() {
    let cluster = Cluster::start().await;
    let producer = producer(cluster.options());
    let refusals = [
        producer.send(Message::new("NeverSent", "")).await,
        producer.send(Message::new("no spaces", "x")).await,
        producer
            .send_batch(vec![
                Message::new("NeverSent", "a"),
                Message::new("OtherTopic", "b"),
            ])
            .await,
        producer.send_batch(Vec::new()).await,
    ];
    for refusal in refusals {
        let error = refusal.unwrap_err();
        assert!(matches!(error, ClientError::InvalidMessage(_)), "{error}");
    }
    // Had any of them reached the broker, it would have auto-created the topic.
    let admin = Admin::start(cluster.options()).unwrap();
    let topics = admin.topic_list().await.unwrap();
    assert!(
        !topics.contains("NeverSent") && !topics.contains("OtherTopic"),
        "{topics:?}"
    );
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_by_one_broker_is_retried_on_another() {
    let cluster = Cluster::start_with(&[("broker-a", &[]), ("broker-b", &[])]).await;
    cluster.create_topic("Shared", 4).await;
    let producer = producer(options_with_stale_routes(&cluster));
    producer
        .send(Message::new("Shared", "warm-up"))
        .await
        .unwrap();

    // broker-a stops taking writes to the topic (perm 4: read only); it answers
    // NO_PERMISSION, which RocketMQ's producer retries elsewhere.
    let admin = Admin::start(cluster.options()).unwrap();
    let mut read_only = Admin::topic_config("Shared", 4, 4);
    read_only.perm = remoting::body::perm::READ;
    admin
        .create_topic(&cluster.brokers[0].addr(), &read_only)
        .await
        .unwrap();
    let route = producer.instance().route("Shared").await.unwrap();
    let believed_writable_on_a = route
        .publish_queues
        .iter()
        .filter(|q| q.broker_name == "broker-a")
        .count();
    assert_eq!(believed_writable_on_a, 4, "the producer's route is stale");

    // Round robin over eight queues, four on each broker: five sends in a row pick
    // broker-a at least once, and each such send must go on to broker-b.
    for i in 0..8 {
        let sent = producer
            .send(Message::new("Shared", format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(sent.queue.broker_name, "broker-b", "send {i}");
    }

    // Pinned to a broker-a queue there is nowhere else to go: the attempts run out.
    let a_queue = client::MessageQueue::new("Shared", "broker-a", 0);
    let error = producer
        .send_to_queue(Message::new("Shared", "pinned"), &a_queue)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::RetriesExhausted { attempts: 3, .. }),
        "{error}"
    );
    assert_eq!(error.response_code(), Some(response::NO_PERMISSION));
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_without_retries() {
    let small = [("maxMessageSize", "1024".to_owned())];
    let cluster = Cluster::start_with(&[("broker-a", &small), ("broker-b", &small)]).await;
    cluster.create_topic("Small", 2).await;
    let mut options = ProducerOptions::new("producer-tests");
    // Within the client's own limit and left uncompressed, so only the broker objects.
    options.compress_over_bytes = usize::MAX;
    let producer = Producer::start(cluster.options(), options).unwrap();
    producer.send(Message::new("Small", "fits")).await.unwrap();

    let error = producer
        .send(Message::new("Small", "x".repeat(2048)))
        .await
        .unwrap_err();
    // MESSAGE_ILLEGAL would be refused by any broker: the first answer is the result.
    assert!(
        matches!(
            error,
            ClientError::Broker {
                code: response::MESSAGE_ILLEGAL,
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert_eq!(cluster.stored("Small").await, 1);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_fail_over_from_a_killed_broker_and_fail_once_every_broker_is_gone() {
    let mut cluster = Cluster::start_with(&[("broker-a", &[]), ("broker-b", &[])]).await;
    cluster.create_topic("Failover", 4).await;
    let producer = producer(options_with_stale_routes(&cluster));
    producer
        .send(Message::new("Failover", "warm-up"))
        .await
        .unwrap();

    cluster.brokers[0].process.kill();
    let route = producer.instance().route("Failover").await.unwrap();
    assert!(
        route
            .publish_queues
            .iter()
            .any(|q| q.broker_name == "broker-a"),
        "the producer's route still names the killed broker"
    );
    for i in 0..8 {
        let sent = producer
            .send(Message::new("Failover", format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(sent.queue.broker_name, "broker-b", "send {i}");
    }

    cluster.brokers[1].process.kill();
    let error = producer
        .send(Message::new("Failover", "nowhere to go"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::RetriesExhausted { attempts: 3, .. }),
        "{error}"
    );
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_create_an_unknown_topic_fails_at_once() {
    let cluster =
        Cluster::start_with(&[("broker-a", &[("autoCreateTopicEnable", "false".to_owned())])])
            .await;
    cluster.create_topic("Known", 1).await;
    let producer = producer(cluster.options());
    producer.send(Message::new("Known", "x")).await.unwrap();
    let error = producer
        .send(Message::new("Nowhere", "x"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NoRoute { .. }), "{error}");
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_one_way_sends_are_all_stored() {
    let cluster = Cluster::start().await;
    cluster.create_topic("Async", 4).await;
    let producer = producer(cluster.options());
    let mut pending = Vec::new();
    for i in 0..200 {
        pending.push(
            producer
                .send_async(Message::new("Async", format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let mut offsets = std::collections::BTreeSet::new();
    for handle in pending {
        let sent = tokio::time::timeout(common::WAIT, handle)
            .await
            .unwrap()
            .unwrap();
        assert!(offsets.insert((sent.queue.queue_id, sent.queue_offset)));
    }
    assert_eq!(cluster.stored("Async").await, 200);

    producer
        .send_oneway(Message::new("Async", "one way"))
        .await
        .unwrap();
    eventually("the one-way message stored", || async {
        cluster.stored("Async").await == 201
    })
    .await;
    producer.shutdown().await;
}
