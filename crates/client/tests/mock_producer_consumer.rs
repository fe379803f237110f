//! The client against an in-memory RocketMQ-protocol server (tests/support): producer
//! sends and retries, the pull consumer, and push consumers in a group.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use client::consumer::{ConsumeFromWhere, ConsumeMode, ConsumeResult, MessageModel, PullStatus};
use client::{
    ClientError, ClientOptions, Message, MessageQueue, Producer, ProducerOptions, PullConsumer,
    PushConsumer, PushConsumerOptions, ReceivedMessage,
};
use parking_lot::Mutex;
use support::{eventually, MiniCluster, BROKER_NAME};

fn client_options(addr: &str) -> ClientOptions {
    let mut options = ClientOptions::new(addr);
    options.heartbeat_interval = Duration::from_secs(1);
    options
}

fn producer(addr: &str) -> Producer {
    Producer::start(client_options(addr), ProducerOptions::new("test-producer")).unwrap()
}

fn push_options(group: &str, topic: &str) -> PushConsumerOptions {
    let mut options = PushConsumerOptions::new(group).subscribe(topic, "*");
    options.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    options.rebalance_interval = Duration::from_millis(500);
    options.persist_offset_interval = Duration::from_millis(200);
    options.long_poll = Duration::from_secs(2);
    options.pull_error_delay = Duration::from_millis(200);
    options.lock_interval = Duration::from_secs(1);
    options
}

type Seen = Arc<Mutex<Vec<ReceivedMessage>>>;

fn recorder(
    seen: &Seen,
) -> impl Fn(Vec<ReceivedMessage>) -> futures::future::Ready<ConsumeResult> + Send + Sync + 'static
{
    let seen = Arc::clone(seen);
    move |messages| {
        seen.lock().extend(messages);
        futures::future::ready(ConsumeResult::Success)
    }
}

#[tokio::test]
async fn sync_send_stores_the_message_with_its_properties() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("Orders", 4);
    let producer = producer(&cluster.addr());
    let result = producer
        .send(
            Message::new("Orders", "hello")
                .with_tag("created")
                .with_keys(["o-1"]),
        )
        .await
        .unwrap();
    assert_eq!(result.status, client::SendStatus::SendOk);
    assert_eq!(result.queue.topic, "Orders");
    assert_eq!(result.queue.broker_name, BROKER_NAME);
    assert_eq!(
        result.msg_id.len(),
        32,
        "a Java-style unique id: {}",
        result.msg_id
    );
    assert_eq!(result.offset_msg_id.len(), 32);
    assert_eq!(cluster.cluster.bodies("Orders"), ["hello"]);

    let consumer = PullConsumer::start(client_options(&cluster.addr()), "readers").unwrap();
    let pulled = consumer
        .pull(&result.queue, "created", result.queue_offset, 10)
        .await
        .unwrap();
    assert_eq!(pulled.status, PullStatus::Found);
    let message = &pulled.messages[0];
    assert_eq!(message.msg_id(), result.msg_id);
    assert_eq!(message.offset_msg_id, result.offset_msg_id);
    assert_eq!(message.keys(), Some("o-1"));
    assert_eq!(message.tag(), Some("created"));
    producer.shutdown().await;
}

#[tokio::test]
async fn large_bodies_are_compressed_and_inflated_on_receipt() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("Big", 1);
    let producer = producer(&cluster.addr());
    let body = "0123456789".repeat(2_000);
    let result = producer
        .send(Message::new("Big", body.clone()))
        .await
        .unwrap();
    let stored = cluster.cluster.bodies("Big");
    assert!(
        stored[0].len() < body.len(),
        "the broker keeps the compressed body"
    );
    let consumer = PullConsumer::start(client_options(&cluster.addr()), "readers").unwrap();
    let pulled = consumer.pull(&result.queue, "*", 0, 10).await.unwrap();
    assert_eq!(pulled.messages[0].body, body.as_bytes());
}

#[tokio::test]
async fn retryable_failures_are_retried_and_others_are_not() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("T", 2);
    let producer = producer(&cluster.addr());
    cluster.cluster.fail_next_sends(&[14, 2]);
    producer
        .send(Message::new("T", "third time lucky"))
        .await
        .unwrap();
    assert_eq!(cluster.cluster.bodies("T").len(), 1);

    cluster.cluster.fail_next_sends(&[13]);
    let error = producer
        .send(Message::new("T", "illegal"))
        .await
        .unwrap_err();
    assert_eq!(error.response_code(), Some(13));
    assert!(matches!(error, ClientError::Broker { .. }), "{error}");

    cluster.cluster.fail_next_sends(&[14, 14, 14]);
    let error = producer.send(Message::new("T", "never")).await.unwrap_err();
    assert!(
        matches!(error, ClientError::RetriesExhausted { attempts: 3, .. }),
        "{error}"
    );
    assert_eq!(cluster.cluster.bodies("T").len(), 1);
}

#[tokio::test]
async fn unknown_topics_go_through_the_auto_create_template() {
    let cluster = MiniCluster::start().await;
    let producer = producer(&cluster.addr());
    let result = producer.send(Message::new("Fresh", "x")).await.unwrap();
    assert!(
        result.queue.queue_id < 4,
        "default_topic_queue_nums caps the template queues"
    );
    assert_eq!(cluster.cluster.bodies("Fresh"), ["x"]);
}

#[tokio::test]
async fn invalid_messages_are_refused_before_sending() {
    let cluster = MiniCluster::start().await;
    let producer = producer(&cluster.addr());
    let error = producer.send(Message::new("T", "")).await.unwrap_err();
    assert!(matches!(error, ClientError::InvalidMessage(_)), "{error}");
    let error = producer
        .send(Message::new("no spaces", "x"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidMessage(_)), "{error}");
}

#[tokio::test]
async fn batches_land_in_one_queue_with_consecutive_offsets() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("B", 4);
    let producer = producer(&cluster.addr());
    let batch: Vec<Message> = (0..5).map(|i| Message::new("B", format!("m{i}"))).collect();
    let result = producer.send_batch(batch).await.unwrap();
    assert_eq!(result.msg_id.split(',').count(), 5);
    assert_eq!(cluster.cluster.queue_len("B", result.queue.queue_id), 5);
    let consumer = PullConsumer::start(client_options(&cluster.addr()), "r").unwrap();
    let pulled = consumer.pull(&result.queue, "*", 0, 32).await.unwrap();
    let bodies: Vec<_> = pulled
        .messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    let offsets: Vec<_> = pulled.messages.iter().map(|m| m.queue_offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    let ids: Vec<_> = pulled
        .messages
        .iter()
        .map(|m| m.msg_id().to_owned())
        .collect();
    assert_eq!(ids.join(","), result.msg_id);

    let mixed = vec![Message::new("B", "a"), Message::new("C", "b")];
    assert!(producer.send_batch(mixed).await.is_err());
    assert!(producer.send_batch(vec![]).await.is_err());
}

#[tokio::test]
async fn ordered_sends_keep_a_key_on_one_queue() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("O", 8);
    let producer = producer(&cluster.addr());
    let mut queue_of_key: HashMap<String, i32> = HashMap::new();
    for i in 0..40 {
        let key = format!("order-{}", i % 5);
        let result = producer
            .send_ordered(Message::new("O", format!("{key}:{i}")), &key)
            .await
            .unwrap();
        let queue = *queue_of_key.entry(key).or_insert(result.queue.queue_id);
        assert_eq!(queue, result.queue.queue_id);
    }
}

#[tokio::test]
async fn async_and_oneway_sends() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("A", 4);
    let producer = producer(&cluster.addr());
    let mut handles = Vec::new();
    for i in 0..200 {
        handles.push(
            producer
                .send_async(Message::new("A", format!("{i}")))
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    producer
        .send_oneway(Message::new("A", "oneway"))
        .await
        .unwrap();
    eventually("the one-way message", || {
        cluster.cluster.bodies("A").len() == 201
    })
    .await;
}

#[tokio::test]
async fn long_polling_answers_when_a_message_arrives() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("L", 1);
    let consumer = PullConsumer::start(client_options(&cluster.addr()), "poller").unwrap();
    let queue = MessageQueue::new("L", BROKER_NAME, 0);
    let empty = consumer.pull(&queue, "*", 0, 10).await.unwrap();
    assert_eq!(empty.status, PullStatus::NoNewMsg);
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move {
            consumer
                .pull_blocking(&queue, "*", 0, 10, Duration::from_secs(20))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    producer(&cluster.addr())
        .send(Message::new("L", "wake"))
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(result.status, PullStatus::Found);
    assert_eq!(result.messages[0].body_text(), "wake");
    assert_eq!(result.next_begin_offset, 1);
}

#[tokio::test]
async fn tag_subscriptions_filter_messages() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("F", 1);
    let producer = producer(&cluster.addr());
    for tag in ["a", "b", "c"] {
        producer
            .send(Message::new("F", tag).with_tag(tag))
            .await
            .unwrap();
    }
    producer.send(Message::new("F", "untagged")).await.unwrap();
    let consumer = PullConsumer::start(client_options(&cluster.addr()), "f").unwrap();
    let queue = MessageQueue::new("F", BROKER_NAME, 0);
    let pulled = consumer.pull(&queue, "a || c", 0, 10).await.unwrap();
    let bodies: Vec<_> = pulled
        .messages
        .iter()
        .map(|m| m.body_text().into_owned())
        .collect();
    assert_eq!(bodies, ["a", "c"]);
    assert_eq!(pulled.next_begin_offset, 4);
}

fn queues_of(consumers: &[PushConsumer]) -> Vec<BTreeSet<MessageQueue>> {
    consumers
        .iter()
        .map(|c| {
            c.assigned_queues()
                .into_iter()
                .filter(|q| q.topic == "G")
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_group_of_three_shares_all_queues_and_rebalances_when_one_leaves() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("G", 8);
    let addr = cluster.addr();
    let seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let mut consumers = Vec::new();
    for s in &seen {
        consumers.push(
            PushConsumer::start(
                client_options(&addr),
                push_options("group-g", "G"),
                recorder(s),
            )
            .await
            .unwrap(),
        );
    }
    eventually("three members sharing eight queues", || {
        let sets = queues_of(&consumers);
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<_> = sets.iter().flatten().cloned().collect();
        total == 8 && union.len() == 8 && sets.iter().all(|s| !s.is_empty())
    })
    .await;

    let producer = producer(&addr);
    for i in 0..80 {
        producer
            .send(Message::new("G", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("all 80 consumed", || {
        seen.iter().map(|s| s.lock().len()).sum::<usize>() >= 80
    })
    .await;
    // No queue consumed by two members, no message twice.
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    let mut bodies = BTreeSet::new();
    for (member, s) in seen.iter().enumerate() {
        for message in s.lock().iter() {
            assert_eq!(
                *owner.entry(message.queue.queue_id).or_insert(member),
                member
            );
            assert!(
                bodies.insert(message.body_text().into_owned()),
                "duplicate delivery"
            );
        }
    }
    assert_eq!(bodies.len(), 80);

    let leaving = consumers.remove(2);
    leaving.shutdown().await;
    eventually("two members sharing eight queues", || {
        let sets = queues_of(&consumers);
        let union: BTreeSet<_> = sets.iter().flatten().cloned().collect();
        sets.iter().map(BTreeSet::len).sum::<usize>() == 8 && union.len() == 8
    })
    .await;
    for s in &seen {
        s.lock().clear();
    }
    for i in 80..120 {
        producer
            .send(Message::new("G", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("the remaining members consume everything new", || {
        let got: BTreeSet<String> = seen[..2]
            .iter()
            .flat_map(|s| {
                s.lock()
                    .iter()
                    .map(|m| m.body_text().into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        (80..120).all(|i| got.contains(&i.to_string()))
    })
    .await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
    // Offsets were committed on shutdown.
    let committed: i64 = (0..8)
        .map(|q| {
            cluster
                .cluster
                .committed_offset("group-g", "G", q)
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(committed, 120);
}

#[tokio::test]
async fn failed_messages_are_redelivered_then_dead_lettered() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("R", 1);
    let addr = cluster.addr();
    let deliveries: Seen = Seen::default();
    let mut options = push_options("group-r", "R");
    options.max_reconsume_times = Some(2);
    options.retry_delay_level = 1;
    let log = Arc::clone(&deliveries);
    let consumer = PushConsumer::start(
        client_options(&addr),
        options,
        move |messages: Vec<ReceivedMessage>| {
            log.lock().extend(messages);
            futures::future::ready(ConsumeResult::Retry)
        },
    )
    .await
    .unwrap();
    producer(&addr)
        .send(Message::new("R", "poison").with_keys(["p-1"]))
        .await
        .unwrap();
    eventually("three deliveries", || deliveries.lock().len() >= 3).await;
    eventually("the dead-letter queue", || {
        cluster.cluster.bodies("%DLQ%group-r") == ["poison"]
    })
    .await;
    let seen = deliveries.lock().clone();
    assert!(seen
        .iter()
        .all(|m| m.topic == "R" && m.body_text() == "poison"));
    let reconsumes: Vec<i32> = seen.iter().take(3).map(|m| m.reconsume_times).collect();
    assert_eq!(reconsumes, [0, 1, 2]);
    assert_eq!(seen[1].queue.topic, "%RETRY%group-r");
    consumer.shutdown().await;
}

#[tokio::test]
async fn ordered_consumption_sees_each_queue_in_order_under_a_lock() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("S", 4);
    let addr = cluster.addr();
    let producer = producer(&addr);
    for i in 0..60 {
        let key = format!("k{}", i % 6);
        producer
            .send_ordered(Message::new("S", format!("{key}:{i}")), &key)
            .await
            .unwrap();
    }
    let seen: Seen = Seen::default();
    let mut options = push_options("group-s", "S");
    options.consume_mode = ConsumeMode::Orderly;
    let log = Arc::clone(&seen);
    let failed_once = Arc::new(Mutex::new(false));
    let consumer = PushConsumer::start(
        client_options(&addr),
        options,
        move |messages: Vec<ReceivedMessage>| {
            // Fail one batch once: ordered retry must redeliver it before anything after it.
            let mut failed = failed_once.lock();
            if !*failed && messages[0].queue_offset == 3 {
                *failed = true;
                return futures::future::ready(ConsumeResult::Retry);
            }
            log.lock().extend(messages);
            futures::future::ready(ConsumeResult::Success)
        },
    )
    .await
    .unwrap();
    eventually("all 60", || seen.lock().len() >= 60).await;
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<String, i32> = HashMap::new();
    for message in seen.lock().iter() {
        let previous = last_offset.insert(message.queue.queue_id, message.queue_offset);
        assert!(
            previous.is_none_or(|p| p + 1 == message.queue_offset),
            "queue order broken"
        );
        let text = message.body_text();
        let (key, seq) = text.split_once(':').unwrap();
        let seq: i32 = seq.parse().unwrap();
        assert!(
            last_seq.insert(key.to_owned(), seq).is_none_or(|p| p < seq),
            "key order broken"
        );
    }
    for queue in consumer.assigned_queues() {
        if queue.topic == "S" {
            assert_eq!(
                cluster.cluster.lock_owner("group-s", &queue).as_deref(),
                Some(consumer.client_id())
            );
        }
    }
    consumer.shutdown().await;
    let queue = MessageQueue::new("S", BROKER_NAME, 0);
    assert_eq!(
        cluster.cluster.lock_owner("group-s", &queue),
        None,
        "locks released on shutdown"
    );
}

#[tokio::test]
async fn broadcasting_members_each_get_everything() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("BC", 2);
    let addr = cluster.addr();
    let seen: Vec<Seen> = (0..2).map(|_| Seen::default()).collect();
    let mut consumers = Vec::new();
    for s in &seen {
        let mut options = push_options("group-bc", "BC");
        options.message_model = MessageModel::Broadcasting;
        consumers.push(
            PushConsumer::start(client_options(&addr), options, recorder(s))
                .await
                .unwrap(),
        );
    }
    let producer = producer(&addr);
    for i in 0..10 {
        producer
            .send(Message::new("BC", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("both members see all ten", || {
        seen.iter().all(|s| s.lock().len() >= 10)
    })
    .await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
}

#[tokio::test]
async fn consume_from_last_offset_skips_history_and_committed_offsets_resume() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("H", 1);
    let addr = cluster.addr();
    let producer = producer(&addr);
    producer.send(Message::new("H", "old")).await.unwrap();
    let seen: Seen = Seen::default();
    let mut options = push_options("group-h", "H");
    options.consume_from_where = ConsumeFromWhere::ConsumeFromLastOffset;
    let consumer = PushConsumer::start(client_options(&addr), options.clone(), recorder(&seen))
        .await
        .unwrap();
    eventually("assignment", || {
        consumer.assigned_queues().iter().any(|q| q.topic == "H")
    })
    .await;
    producer.send(Message::new("H", "new")).await.unwrap();
    eventually("the new message", || seen.lock().len() == 1).await;
    assert_eq!(seen.lock()[0].body_text(), "new");
    consumer.shutdown().await;

    producer
        .send(Message::new("H", "while away"))
        .await
        .unwrap();
    let again: Seen = Seen::default();
    let consumer = PushConsumer::start(client_options(&addr), options, recorder(&again))
        .await
        .unwrap();
    eventually("resumed after the committed offset", || {
        again.lock().len() == 1
    })
    .await;
    assert_eq!(again.lock()[0].body_text(), "while away");
    consumer.shutdown().await;
}

#[tokio::test]
async fn sends_follow_the_master_through_a_failover() {
    // `a` is the name server and the first master; `b` takes over.
    let a = MiniCluster::start().await;
    let b = MiniCluster::start().await;
    a.cluster.create_topic("F", 4);
    b.cluster.create_topic("F", 4);
    let producer = producer(&a.addr());
    for i in 0..20 {
        producer
            .send(Message::new("F", format!("a{i}")))
            .await
            .unwrap();
    }
    // The old master now refuses writes like a follower, and routes name the new one.
    a.cluster.fail_over_to(Some(b.addr()), Some(14));
    for i in 0..20 {
        producer
            .send(Message::new("F", format!("b{i}")))
            .await
            .unwrap();
    }
    assert_eq!(a.cluster.bodies("F").len(), 20);
    assert_eq!(b.cluster.bodies("F").len(), 20);

    // The new master dies (connections refused); routes point back to a recovered `a`.
    let b_addr = b.addr();
    drop(b);
    a.cluster.fail_over_to(None, None);
    for i in 0..20 {
        producer
            .send(Message::new("F", format!("c{i}")))
            .await
            .unwrap();
    }
    assert_eq!(a.cluster.bodies("F").len(), 40);
    assert_eq!(producer.instance().master_addr(BROKER_NAME), Some(a.addr()));
    assert_ne!(a.addr(), b_addr);
}

#[tokio::test]
async fn a_send_waits_out_an_election_within_its_timeout() {
    let a = MiniCluster::start().await;
    let b = MiniCluster::start().await;
    a.cluster.create_topic("E", 2);
    b.cluster.create_topic("E", 2);
    let producer = producer(&a.addr());
    producer.send(Message::new("E", "before")).await.unwrap();
    // The master steps down; for two route lookups nobody is master; then `b` is.
    a.cluster.fail_over_to(Some(b.addr()), Some(14));
    a.cluster.hide_master_for_routes(2);
    let sent = producer.send(Message::new("E", "during")).await.unwrap();
    assert_eq!(b.cluster.bodies("E"), ["during"]);
    assert_eq!(sent.queue.broker_name, BROKER_NAME);

    // A topic nobody knows (and no auto-create template) fails at once, without retries.
    let lonely = MiniCluster::start().await;
    lonely.cluster.remove_template();
    let error = self::producer(&lonely.addr())
        .send(Message::new("Nowhere", "x"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NoRoute { .. }), "{error}");
}

#[tokio::test]
async fn consumers_follow_the_master_through_a_failover() {
    let a = MiniCluster::start().await;
    let b = MiniCluster::start().await;
    a.cluster.create_topic("CF", 1);
    b.cluster.create_topic("CF", 1);
    let seen: Seen = Seen::default();
    let consumer = PushConsumer::start(
        client_options(&a.addr()),
        push_options("group-cf", "CF"),
        recorder(&seen),
    )
    .await
    .unwrap();
    let producer = producer(&a.addr());
    producer.send(Message::new("CF", "before")).await.unwrap();
    // A replicated group: the new master holds the same log.
    self::producer(&b.addr())
        .send(Message::new("CF", "before"))
        .await
        .unwrap();
    eventually("the first message", || seen.lock().len() == 1).await;
    a.cluster.fail_over_to(Some(b.addr()), Some(14));
    // The member heartbeats the new master once it learns of it (B must know the group
    // before it can list members); then it pulls from there.
    producer.send(Message::new("CF", "after")).await.unwrap();
    eventually("the message on the new master", || seen.lock().len() == 2).await;
    assert_eq!(seen.lock()[1].body_text(), "after");
    consumer.shutdown().await;
}

#[tokio::test]
async fn prefetch_stops_at_the_queue_threshold_while_the_listener_is_stuck() {
    let cluster = MiniCluster::start().await;
    cluster.cluster.create_topic("Flow", 1);
    let producer = producer(&cluster.addr());
    let batch: Vec<Message> = (0..100)
        .map(|i| Message::new("Flow", format!("{i}")))
        .collect();
    producer.send_batch(batch).await.unwrap();

    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let consumed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut options = push_options("group-flow", "Flow");
    options.pull_batch_size = 4;
    options.pull_threshold_for_queue = 8;
    options.consume_concurrency = 1;
    let (listener_gate, counter) = (Arc::clone(&gate), Arc::clone(&consumed));
    let consumer = PushConsumer::start(
        client_options(&cluster.addr()),
        options,
        move |messages: Vec<ReceivedMessage>| {
            let (gate, counter) = (Arc::clone(&listener_gate), Arc::clone(&counter));
            async move {
                gate.acquire().await.unwrap().forget();
                counter.fetch_add(messages.len(), std::sync::atomic::Ordering::SeqCst);
                ConsumeResult::Success
            }
        },
    )
    .await
    .unwrap();
    eventually("the buffer to fill", || {
        cluster.cluster.pulled_messages() >= 8
    })
    .await;
    // Give the pull loop time to overshoot if flow control did not hold it back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pulled = cluster.cluster.pulled_messages();
    assert!(pulled < 8 + 4, "pulled {pulled} while nothing was consumed");
    assert_eq!(consumed.load(std::sync::atomic::Ordering::SeqCst), 0);

    gate.add_permits(1000);
    eventually("everything consumed once released", || {
        consumed.load(std::sync::atomic::Ordering::SeqCst) == 100
    })
    .await;
    consumer.shutdown().await;
    assert_eq!(
        cluster.cluster.committed_offset("group-flow", "Flow", 0),
        Some(100)
    );
}
