//! The production topology for riding out a leader failure without the application seeing
//! it: a topic spread over two broker groups. An unmodified client (the project's producer
//! with its default retries) keeps every send succeeding through a kill -9 of one group's
//! leader, its retries landing on the other group; nothing acknowledged is lost.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use client::{Admin, ClientOptions, Producer, ProducerOptions, PullConsumer};
use remoting::client::{ClientConfig, RemotingClient};
use tests::checker::{read_queue, Load};
use tests::group::{wait_for_master, BrokerGroup};
use tests::{requests, NameServer};

const WAIT: Duration = Duration::from_secs(60);
const TOPIC: &str = "SpreadTopic";
const QUEUES: i32 = 4;

/// Every body stored in any queue of the topic on any broker (queue ids repeat across
/// brokers, so not by queue id).
async fn stored_bodies(consumer: &PullConsumer) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    for queue in consumer.queues(TOPIC).await.unwrap() {
        let reads = read_queue(consumer, &queue).await.unwrap();
        bodies.extend(reads.into_iter().map(|read| read.body));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_kill_in_one_of_two_groups_fails_no_send_the_application_sees() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut first = BrokerGroup::start(dir.path(), "SpreadA", &namesrv.addr(), &[]).unwrap();
    let _second = BrokerGroup::start(dir.path(), "SpreadB", &namesrv.addr(), &[]).unwrap();
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let raw = RemotingClient::new(ClientConfig::default());
    let mut masters = Vec::new();
    for name in ["SpreadA", "SpreadB"] {
        let master = wait_for_master(&admin, name, None, WAIT).await.unwrap();
        admin
            .create_topic(&master, &Admin::topic_config(TOPIC, QUEUES, QUEUES))
            .await
            .unwrap();
        requests::wait_for_route(&raw, &namesrv.addr(), TOPIC, &master, WAIT)
            .await
            .unwrap();
        masters.push(master);
    }
    // The defaults an application runs with: two retries, broker fault avoidance.
    let producer =
        Producer::start(options.clone(), ProducerOptions::new("spread-producer")).unwrap();
    let load = Load::start(&producer, TOPIC, 4);
    load.wait_acked(300, WAIT).await.unwrap();

    first.member_mut(&masters[0]).unwrap().process.kill();
    let killed_at = Instant::now();
    let acked_at_kill = load.acked();
    load.wait_acked(acked_at_kill + 300, WAIT).await.unwrap();
    let through_other_group = killed_at.elapsed();
    let new_master = wait_for_master(&admin, "SpreadA", Some(&masters[0]), WAIT)
        .await
        .unwrap();
    let both_serve_again = killed_at.elapsed();
    load.wait_acked(load.acked() + 300, WAIT).await.unwrap();
    let log = load.stop().await;
    eprintln!(
        "two groups, leader of one killed: {} acknowledged, {} failed sends seen by the \
         application {:?}; 300 sends acknowledged through the other group {:.2} s after the \
         kill; {new_master} master of the first group again after {:.2} s",
        log.acked.len(),
        log.unknown.len(),
        log.errors,
        through_other_group.as_secs_f64(),
        both_serve_again.as_secs_f64(),
    );
    assert!(
        log.unknown.is_empty(),
        "the application saw failed sends: {:?}",
        log.errors
    );

    let consumer = PullConsumer::start(options, "spread-checker").unwrap();
    let stored = stored_bodies(&consumer).await;
    consumer.shutdown();
    let lost: Vec<&str> = log
        .acked
        .iter()
        .map(|a| a.body.as_str())
        .filter(|b| !stored.contains(*b))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends lost: {lost:?}",
        lost.len()
    );
    producer.shutdown().await;
}
