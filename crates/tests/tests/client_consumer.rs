//! `client` consumers against real `mqnamesrv` and `mqbroker` processes: tag filtering,
//! ordered consumption under the broker's queue locks with a failed batch redelivered in
//! place, and prefetch flow control while a listener is stuck.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::consumer::{ConsumeMode, ConsumeResult, PullStatus};
use client::{
    Admin, ClientInstance, Message, MessageQueue, Producer, ProducerOptions, PullConsumer,
    PushConsumer, ReceivedMessage,
};
use common::{bodies, eventually, push_options, recorder, scenarios, Cluster, Seen};

fn producer(cluster: &Cluster) -> Producer {
    Producer::start(cluster.options(), ProducerOptions::new("consumer-tests")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_subscriptions_filter_messages() {
    let cluster = Cluster::start().await;
    cluster.create_topic("Tagged", 1).await;
    let reader = PullConsumer::start(cluster.options(), "tag-reader").unwrap();
    let queue = MessageQueue::new("Tagged", "broker-a", 0);
    let empty = reader.pull(&queue, "*", 0, 10).await.unwrap();
    assert_eq!(empty.status, PullStatus::NoNewMsg);

    let producer = producer(&cluster);
    for tag in ["a", "b", "c"] {
        producer
            .send(Message::new("Tagged", tag).with_tag(tag))
            .await
            .unwrap();
    }
    producer
        .send(Message::new("Tagged", "untagged"))
        .await
        .unwrap();

    let pulled = reader.pull(&queue, "a || c", 0, 10).await.unwrap();
    let pulled_bodies: Vec<String> = pulled
        .messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(pulled_bodies, ["a", "c"]);
    assert_eq!(
        pulled.next_begin_offset, 4,
        "the filtered-out messages are skipped"
    );

    // A push consumer subscribed to one tag gets only that tag.
    let seen = Seen::default();
    let options = push_options("tag-group", "Tagged");
    let options = client::PushConsumerOptions {
        subscriptions: vec![("Tagged".to_owned(), "b".to_owned())],
        ..options
    };
    let consumer = PushConsumer::start(cluster.options(), options, recorder(&seen))
        .await
        .unwrap();
    producer
        .send(Message::new("Tagged", "b again").with_tag("b"))
        .await
        .unwrap();
    eventually("both b messages", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 2 }
    })
    .await;
    // Shutting down waits for deliveries in progress; a, c and the untagged message came
    // before "b again" in the queue.
    consumer.shutdown().await;
    let mut got = bodies(&seen);
    got.sort();
    assert_eq!(got, ["b", "b again"]);
    reader.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_consumption_holds_the_queue_locks_and_redelivers_a_failed_batch_in_place() {
    let cluster = Cluster::start().await;
    cluster.create_topic("Sequenced", 4).await;
    let producer = producer(&cluster);
    for i in 0..60 {
        let key = format!("k{}", i % 6);
        producer
            .send_ordered(Message::new("Sequenced", format!("{key}:{i}")), &key)
            .await
            .unwrap();
    }

    let seen = Seen::default();
    let failed_queue: Arc<Mutex<Option<i32>>> = Arc::default();
    let mut options = push_options("sequenced-group", "Sequenced");
    options.consume_mode = ConsumeMode::Orderly;
    let (log, failed) = (Arc::clone(&seen), Arc::clone(&failed_queue));
    let consumer = PushConsumer::start(
        cluster.options(),
        options,
        move |messages: Vec<ReceivedMessage>| {
            // Fail one batch once: the queue must be redelivered from that batch on,
            // before anything after it.
            let mut failed = failed.lock().unwrap();
            if failed.is_none() && messages.iter().any(|m| m.queue_offset == 3) {
                *failed = Some(messages[0].queue.queue_id);
                return std::future::ready(ConsumeResult::Retry);
            }
            log.lock().unwrap().extend(messages);
            std::future::ready(ConsumeResult::Success)
        },
    )
    .await
    .unwrap();
    eventually("all 60 consumed", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 60 }
    })
    .await;
    assert!(failed_queue.lock().unwrap().is_some(), "a batch was failed");
    scenarios::assert_in_order_per_queue_and_key(&seen.lock().unwrap());

    // While the member holds the broker's locks, another client cannot take them...
    let held: BTreeSet<MessageQueue> = consumer
        .assigned_queues()
        .into_iter()
        .filter(|q| q.topic == "Sequenced")
        .collect();
    assert_eq!(held.len(), 4);
    let mut intruder_options = cluster.options();
    intruder_options.instance_name = Some("intruder".to_owned());
    let intruder = ClientInstance::new(intruder_options).unwrap();
    let broker = cluster.broker().addr();
    let taken = intruder
        .lock_queues(&broker, "sequenced-group", held.clone())
        .await
        .unwrap();
    assert!(taken.is_empty(), "locks taken from their holder: {taken:?}");

    // ... and once it leaves, its locks are released.
    consumer.shutdown().await;
    let taken = intruder
        .lock_queues(&broker, "sequenced-group", held.clone())
        .await
        .unwrap();
    assert_eq!(taken, held, "locks released on shutdown");
    intruder.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_stops_at_the_queue_threshold_while_the_listener_is_stuck() {
    let cluster = Cluster::start().await;
    cluster.create_topic("Flow", 1).await;
    let producer = producer(&cluster);
    let batch: Vec<Message> = (0..100)
        .map(|i| Message::new("Flow", format!("{i}")))
        .collect();
    producer.send_batch(batch).await.unwrap();

    // The broker counts every message its pulls hand out; only this consumer pulls.
    let admin = Admin::start(cluster.options()).unwrap();
    let broker = cluster.broker().addr();
    let pulled_so_far = || {
        let (admin, broker) = (admin.clone(), broker.clone());
        async move {
            admin.broker_runtime_info(&broker).await.unwrap()["msgGetTotalTodayNow"]
                .parse::<u64>()
                .unwrap()
        }
    };
    assert_eq!(pulled_so_far().await, 0);

    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let mut options = push_options("flow-group", "Flow");
    options.pull_batch_size = 4;
    options.pull_threshold_for_queue = 8;
    options.consume_concurrency = 1;
    let (listener_gate, counter) = (Arc::clone(&gate), Arc::clone(&consumed));
    let consumer = PushConsumer::start(
        cluster.options(),
        options,
        move |messages: Vec<ReceivedMessage>| {
            let (gate, counter) = (Arc::clone(&listener_gate), Arc::clone(&counter));
            async move {
                gate.acquire().await.unwrap().forget();
                counter.fetch_add(messages.len(), Ordering::SeqCst);
                ConsumeResult::Success
            }
        },
    )
    .await
    .unwrap();
    eventually("the buffer to fill", || async {
        pulled_so_far().await >= 8
    })
    .await;
    // Give the pull loop time to overshoot if flow control did not hold it back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pulled = pulled_so_far().await;
    assert!(pulled < 8 + 4, "pulled {pulled} while nothing was consumed");
    assert_eq!(consumed.load(Ordering::SeqCst), 0);

    gate.add_permits(1000);
    eventually("everything consumed once released", || {
        let n = consumed.load(Ordering::SeqCst);
        async move { n == 100 }
    })
    .await;
    consumer.shutdown().await;
    let reader = PullConsumer::start(cluster.options(), "flow-group").unwrap();
    assert_eq!(
        reader
            .committed_offset(&MessageQueue::new("Flow", "broker-a", 0))
            .await
            .unwrap(),
        Some(100),
        "offsets committed on shutdown"
    );
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}
