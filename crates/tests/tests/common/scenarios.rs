//! Client scenarios that must hold whatever serves the topics: each takes the name server's
//! address, creates its own topic on every master listed there, and is run against a
//! standalone broker (`client_standalone.rs`) and a 3-node broker group
//! (`client_group.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use client::consumer::{ConsumeMode, ConsumeResult};
use client::{
    Message, MessageQueue, Producer, ProducerOptions, PullConsumer, PushConsumer, ReceivedMessage,
};

use super::{client_options, create_topic, eventually, push_options, recorder, Seen, WAIT};

/// 200 messages under ten ordering keys, consumed orderly: each queue is delivered offset
/// by offset, and each key's messages in the order they were sent.
pub async fn ordered_messages_arrive_in_order_per_queue(namesrv: &str) {
    create_topic(namesrv, "OrderedTopic", 4).await;
    let producer = Producer::start(
        client_options(namesrv),
        ProducerOptions::new("ordered-producer"),
    )
    .unwrap();
    let mut queue_of_key: HashMap<String, i32> = HashMap::new();
    for i in 0..200 {
        let key = format!("order-{}", i % 10);
        let sent = producer
            .send_ordered(Message::new("OrderedTopic", format!("{key}:{i}")), &key)
            .await
            .unwrap();
        assert_eq!(
            *queue_of_key.entry(key).or_insert(sent.queue.queue_id),
            sent.queue.queue_id
        );
    }
    let seen = Seen::default();
    let mut options = push_options("ordered-group", "OrderedTopic");
    options.consume_mode = ConsumeMode::Orderly;
    options.consume_batch_max = 3;
    let consumer = PushConsumer::start(client_options(namesrv), options, recorder(&seen))
        .await
        .unwrap();
    eventually("all 200 ordered messages", || {
        let n = seen.lock().unwrap().len();
        async move { n >= 200 }
    })
    .await;
    assert_in_order_per_queue_and_key(&seen.lock().unwrap());
    consumer.shutdown().await;
    producer.shutdown().await;
}

/// Checks messages in arrival order whose bodies are `key:sequence`: each queue delivered
/// from offset 0 with no gap or repeat, and each key's sequence numbers rising.
pub fn assert_in_order_per_queue_and_key(messages: &[ReceivedMessage]) {
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<String, i32> = HashMap::new();
    for message in messages {
        let expected = next_offset.entry(message.queue.queue_id).or_insert(0);
        assert_eq!(
            message.queue_offset, *expected,
            "queue {} out of order",
            message.queue.queue_id
        );
        *expected += 1;
        let text = message.body_text();
        let (key, seq) = text.split_once(':').unwrap();
        let seq: i32 = seq.parse().unwrap();
        if let Some(previous) = last_seq.insert(key.to_owned(), seq) {
            assert!(previous < seq, "{key}: {previous} then {seq}");
        }
    }
}

fn assigned(consumers: &[PushConsumer], topic: &str) -> Vec<BTreeSet<MessageQueue>> {
    consumers
        .iter()
        .map(|c| {
            c.assigned_queues()
                .into_iter()
                .filter(|q| q.topic == topic)
                .collect()
        })
        .collect()
}

fn partitions_all(sets: &[BTreeSet<MessageQueue>], queues: usize) -> bool {
    let union: BTreeSet<&MessageQueue> = sets.iter().flatten().collect();
    sets.iter().map(BTreeSet::len).sum::<usize>() == queues && union.len() == queues
}

/// Three members of one consumer group split eight queues, no queue consumed by two of
/// them and no message delivered twice; when one leaves, the other two take over all
/// eight queues and consume everything sent after.
pub async fn a_group_of_three_shares_queues_and_rebalances_when_one_leaves(namesrv: &str) {
    create_topic(namesrv, "SharedTopic", 8).await;
    let seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let mut consumers = Vec::new();
    for s in &seen {
        let consumer = PushConsumer::start(
            client_options(namesrv),
            push_options("shared-group", "SharedTopic"),
            recorder(s),
        )
        .await
        .unwrap();
        consumers.push(consumer);
    }
    eventually("three members splitting eight queues", || {
        let sets = assigned(&consumers, "SharedTopic");
        async move { partitions_all(&sets, 8) && sets.iter().all(|s| s.len() >= 2) }
    })
    .await;

    let producer = Producer::start(
        client_options(namesrv),
        ProducerOptions::new("shared-producer"),
    )
    .unwrap();
    for i in 0..120 {
        producer
            .send(Message::new("SharedTopic", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("120 consumed", || {
        let n: usize = seen.iter().map(|s| s.lock().unwrap().len()).sum();
        async move { n >= 120 }
    })
    .await;
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    let mut bodies = BTreeSet::new();
    for (member, s) in seen.iter().enumerate() {
        for message in s.lock().unwrap().iter() {
            let first = *owner.entry(message.queue.queue_id).or_insert(member);
            assert_eq!(
                first, member,
                "queue {} consumed by two members",
                message.queue.queue_id
            );
            assert!(
                bodies.insert(message.body_text().into_owned()),
                "delivered twice"
            );
        }
    }
    assert_eq!(bodies.len(), 120);

    let leaving = consumers.pop().unwrap();
    leaving.shutdown().await;
    eventually("two members splitting eight queues", || {
        let sets = assigned(&consumers, "SharedTopic");
        async move { partitions_all(&sets, 8) }
    })
    .await;
    for i in 120..180 {
        producer
            .send(Message::new("SharedTopic", format!("{i}")))
            .await
            .unwrap();
    }
    eventually("the remaining members consume all new messages", || {
        let got: BTreeSet<String> = seen[..2].iter().flat_map(super::bodies).collect();
        async move { (120..180).all(|i| got.contains(&i.to_string())) }
    })
    .await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
    producer.shutdown().await;
}

/// A listener that always fails: the message comes back through the group's retry topic
/// until its retries are used up, then lands once in `%DLQ%<group>` and is not delivered
/// again.
pub async fn a_failed_message_is_redelivered_then_dead_lettered(namesrv: &str) {
    create_topic(namesrv, "PoisonTopic", 1).await;
    let deliveries = Seen::default();
    let mut options = push_options("poison-group", "PoisonTopic");
    options.max_reconsume_times = Some(2);
    let log = Arc::clone(&deliveries);
    let consumer = PushConsumer::start(
        client_options(namesrv),
        options,
        move |messages: Vec<ReceivedMessage>| {
            log.lock().unwrap().extend(messages);
            std::future::ready(ConsumeResult::Retry)
        },
    )
    .await
    .unwrap();
    let producer = Producer::start(
        client_options(namesrv),
        ProducerOptions::new("poison-producer"),
    )
    .unwrap();
    let sent = producer
        .send(Message::new("PoisonTopic", "poison").with_keys(["poison-1"]))
        .await
        .unwrap();
    eventually("three deliveries (the first and two retries)", || {
        let n = deliveries.lock().unwrap().len();
        async move { n >= 3 }
    })
    .await;

    let reader = PullConsumer::start(client_options(namesrv), "dlq-reader").unwrap();
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while dead.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the dead-letter queue"
        );
        if let Ok(queues) = reader.queues("%DLQ%poison-group").await {
            for queue in queues {
                if let Ok(result) = reader.pull(&queue, "*", 0, 32).await {
                    dead.extend(result.messages);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body_text(), "poison");
    assert_eq!(dead[0].uniq_key(), Some(sent.msg_id.as_str()));
    let seen = deliveries.lock().unwrap().clone();
    assert!(seen
        .iter()
        .all(|m| m.topic == "PoisonTopic" && m.msg_id() == sent.msg_id));
    let retries: Vec<i32> = seen.iter().map(|m| m.reconsume_times).collect();
    assert_eq!(&retries[..3], &[0, 1, 2], "{retries:?}");
    let queues: Vec<&str> = seen.iter().map(|m| m.queue.topic.as_str()).collect();
    assert_eq!(
        queues,
        ["PoisonTopic", "%RETRY%poison-group", "%RETRY%poison-group"],
        "redeliveries come through the group's retry topic"
    );
    assert_eq!(
        seen.len(),
        3,
        "no delivery after the message was dead-lettered"
    );
    reader.shutdown();
    consumer.shutdown().await;
    producer.shutdown().await;
}
