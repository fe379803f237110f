//! The `client` against a 3-node broker group (DLedger mode) of real `mqbroker`
//! processes: the client scenarios a standalone broker passes (ordered messages, a
//! consumer group sharing and re-balancing queues, retries ending in the dead-letter
//! topic), and leader failovers: a producer keeps sending and no acknowledged send is lost;
//! a send waits out an election within its timeout; a consumer follows the new master; a
//! producer follows the master through two failovers in a row.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use client::{ClientOptions, Message, Producer, ProducerOptions, PullConsumer, PushConsumer};
use common::{
    client_options, create_topic, eventually, push_options, recorder, scenarios, Group, Seen, GROUP,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_messages_arrive_in_order_per_queue() {
    let group = Group::start().await;
    scenarios::ordered_messages_arrive_in_order_per_queue(&group.namesrv.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_shares_queues_and_rebalances_when_one_leaves() {
    let group = Group::start().await;
    scenarios::a_group_of_three_shares_queues_and_rebalances_when_one_leaves(&group.namesrv.addr())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_is_redelivered_then_dead_lettered() {
    let group = Group::start().await;
    scenarios::a_failed_message_is_redelivered_then_dead_lettered(&group.namesrv.addr()).await;
}

fn patient_producer(options: &ClientOptions, group: &str) -> Producer {
    let mut producer_options = ProducerOptions::new(group);
    // Long enough for an election; the attempts stay Java's default.
    producer_options.send_timeout = Duration::from_secs(30);
    Producer::start(options.clone(), producer_options).unwrap()
}

/// msg id -> body of every message in `topic`, every queue read from offset 0 through the
/// master.
async fn stored_messages(options: &ClientOptions, topic: &str) -> BTreeMap<String, String> {
    let reader = PullConsumer::start(options.clone(), &format!("{topic}-audit")).unwrap();
    let queues = tests::checker::read_all(&reader, topic).await.unwrap();
    reader.shutdown();
    queues
        .into_values()
        .flatten()
        .map(|read| (read.msg_id, read.body))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_keeps_sending_through_a_leader_failover_and_no_acknowledged_send_is_lost() {
    let mut group = Group::start().await;
    let mut options = client_options(&group.namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let leader = group.master.clone();
    create_topic(&group.namesrv.addr(), "FailoverTopic", 4).await;

    let mut producer_options = ProducerOptions::new("failover-producer");
    producer_options.send_timeout = Duration::from_secs(5);
    producer_options.retry_times = 4;
    let producer = Producer::start(options.clone(), producer_options).unwrap();
    // msg id -> body of every acknowledged send.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut failed = 0u32;
    let mut killed = false;
    let mut acked_after_kill = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut i = 0u64;
    while acked_after_kill < 200 {
        assert!(tokio::time::Instant::now() < deadline, "the producer did not recover: {acked_after_kill} acked after the kill, {failed} failed");
        let body = format!("m{i}");
        i += 1;
        match producer
            .send(Message::new("FailoverTopic", body.clone()))
            .await
        {
            Ok(result) => {
                acked.insert(result.msg_id, body);
                if killed {
                    acked_after_kill += 1;
                }
            }
            Err(_) => failed += 1,
        }
        if !killed && acked.len() == 200 {
            group.kill(&leader);
            killed = true;
        }
    }
    let new_leader = group.new_master(&leader).await;
    assert_ne!(new_leader, leader);

    // Every acknowledged message is readable from the new leader.
    let found = stored_messages(&options, "FailoverTopic").await;
    let lost: Vec<_> = acked.keys().filter(|id| !found.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends lost (of {}): {lost:?}",
        lost.len(),
        acked.len()
    );
    for (id, body) in &acked {
        assert_eq!(found.get(id), Some(body));
    }
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waits_out_an_election_within_its_timeout() {
    let mut group = Group::start().await;
    let options = client_options(&group.namesrv.addr());
    let leader = group.master.clone();
    create_topic(&group.namesrv.addr(), "ElectionTopic", 2).await;
    let producer = patient_producer(&options, "election-producer");
    producer
        .send(Message::new("ElectionTopic", "before"))
        .await
        .unwrap();

    // The leader dies; until the others elect one, the route names no master. The send
    // spends that time waiting for a master, not its three attempts.
    group.kill(&leader);
    let sent = producer
        .send(Message::new("ElectionTopic", "during"))
        .await
        .unwrap();
    assert_eq!(sent.queue.broker_name, GROUP);
    let new_leader = group.new_master(&leader).await;
    assert_eq!(
        producer.instance().master_addr(GROUP).as_deref(),
        Some(new_leader.as_str())
    );
    let reader = PullConsumer::start(options, "election-audit").unwrap();
    let pulled = reader
        .pull(&sent.queue, "*", sent.queue_offset, 1)
        .await
        .unwrap();
    assert_eq!(pulled.messages[0].body_text(), "during");
    reader.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_follows_the_master_through_a_failover() {
    let mut group = Group::start().await;
    let mut options = client_options(&group.namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let leader = group.master.clone();
    create_topic(&group.namesrv.addr(), "FollowTopic", 2).await;

    let seen = Seen::default();
    let consumer = PushConsumer::start(
        options.clone(),
        push_options("follow-group", "FollowTopic"),
        recorder(&seen),
    )
    .await
    .unwrap();
    let producer = patient_producer(&options, "follow-producer");
    producer
        .send(Message::new("FollowTopic", "before"))
        .await
        .unwrap();
    let received = |body: &'static str| {
        let seen = std::sync::Arc::clone(&seen);
        move || {
            let found = seen.lock().unwrap().iter().any(|m| m.body_text() == body);
            async move { found }
        }
    };
    eventually("the message sent before the failover", received("before")).await;

    group.kill(&leader);
    group.new_master(&leader).await;
    producer
        .send(Message::new("FollowTopic", "after"))
        .await
        .unwrap();
    // Redelivery of "before" is allowed (offsets committed to the old leader may not
    // have reached the new one); losing "after" is not.
    eventually("the message sent to the new master", received("after")).await;
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_follow_the_master_through_two_failovers() {
    let mut group = Group::start().await;
    let mut options = client_options(&group.namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let first = group.master.clone();
    create_topic(&group.namesrv.addr(), "TwiceTopic", 4).await;
    let producer = patient_producer(&options, "twice-producer");
    let mut acked = Vec::new();
    let send_twenty = |phase: &'static str| {
        let producer = producer.clone();
        async move {
            let mut sent = Vec::new();
            for i in 0..20 {
                let body = format!("{phase}{i}");
                let result = producer
                    .send(Message::new("TwiceTopic", body.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{body}: {e}"));
                sent.push((result.msg_id, body));
            }
            sent
        }
    };
    acked.extend(send_twenty("a").await);

    // First failover; the old leader comes back as a follower.
    let first_index = group.kill(&first);
    let second = group.new_master(&first).await;
    acked.extend(send_twenty("b").await);
    group.brokers.members[first_index].restart().unwrap();

    // Second failover: the producer follows again.
    group.kill(&second);
    let third = group.new_master(&second).await;
    acked.extend(send_twenty("c").await);
    assert_eq!(
        producer.instance().master_addr(GROUP).as_deref(),
        Some(third.as_str())
    );

    let found = stored_messages(&options, "TwiceTopic").await;
    for (id, body) in &acked {
        assert_eq!(found.get(id), Some(body), "acknowledged {body} lost");
    }
    producer.shutdown().await;
}
