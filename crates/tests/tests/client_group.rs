//! The `client` through leader failovers of a 3-node broker group (DLedger mode): a
//! producer keeps sending and no acknowledged send is lost; a send waits out an election
//! within its timeout; a consumer follows the new master; a producer follows the master
//! through two failovers in a row.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::consumer::PullStatus;
use client::{
    Admin, ClientOptions, Message, Producer, ProducerOptions, PullConsumer, PushConsumer,
};
use common::{eventually, push_options, recorder, Seen};
use tests::{binary, free_port, wait_for_port, write_conf, NameServer, Process};

const GROUP: &str = "RaftNode00";
const WAIT: Duration = Duration::from_secs(60);

struct Member {
    id: String,
    port: u16,
    conf: PathBuf,
    process: Process,
}

impl Member {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(dir: &Path, id: &str, conf: &Path) -> Process {
        Process::spawn(
            id,
            &binary("mqbroker"),
            &["-c", conf.to_str().unwrap()],
            // A fresh log per start: a restart keeps the killed run's log to read.
            dir.join(format!(
                "{id}-{}.log",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            )),
        )
        .unwrap()
    }

    /// Starts the member again on its config and data (after a kill), and waits until it
    /// listens.
    fn restart(&mut self, dir: &Path) {
        self.process.kill();
        self.process = Member::spawn(dir, &self.id, &self.conf);
        wait_listening(self);
    }
}

fn wait_listening(member: &mut Member) {
    let deadline = std::time::Instant::now() + WAIT;
    while wait_for_port(member.port, Duration::from_millis(200)).is_err() {
        assert!(
            member.process.is_running(),
            "{} exited:\n{}",
            member.id,
            member.process.log()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} does not listen",
            member.id
        );
    }
}

fn start_group(dir: &Path, namesrv: &str) -> Vec<Member> {
    let raft_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peers = raft_ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("n{i}-127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut members = Vec::new();
    for i in 0..3 {
        let id = format!("n{i}");
        let port = free_port();
        let conf = dir.join(format!("{id}.conf"));
        write_conf(
            &conf,
            &[
                ("brokerClusterName", "RaftCluster".to_owned()),
                ("brokerName", GROUP.to_owned()),
                ("listenPort", port.to_string()),
                ("namesrvAddr", namesrv.to_owned()),
                ("brokerIP1", "127.0.0.1".to_owned()),
                ("storePathRootDir", dir.join(&id).display().to_string()),
                ("enableDLegerCommitLog", "true".to_owned()),
                ("dLegerGroup", GROUP.to_owned()),
                ("dLegerPeers", peers.clone()),
                ("dLegerSelfId", id.clone()),
                ("mapedFileSizeCommitLog", (64 * 1024 * 1024).to_string()),
            ],
        )
        .unwrap();
        let process = Member::spawn(dir, &id, &conf);
        members.push(Member {
            id,
            port,
            conf,
            process,
        });
    }
    for member in &mut members {
        wait_listening(member);
    }
    members
}

/// Creates `topic` on every member; the leader's answer is the one that counts (followers
/// may refuse admin writes).
async fn create_topic(admin: &Admin, members: &[Member], leader: &str, topic: &str, queues: i32) {
    for member in members {
        let created = admin
            .create_topic(&member.addr(), &Admin::topic_config(topic, queues, queues))
            .await;
        if member.addr() == leader {
            created.unwrap();
        }
    }
}

fn patient_producer(options: &ClientOptions, group: &str) -> Producer {
    let mut producer_options = ProducerOptions::new(group);
    // Long enough for an election; the attempts stay Java's default.
    producer_options.send_timeout = Duration::from_secs(30);
    Producer::start(options.clone(), producer_options).unwrap()
}

/// The group's master address as the name server has it.
async fn master(admin: &Admin) -> Option<String> {
    let info = admin.cluster_info().await.ok()?;
    info.broker_addr_table
        .get(GROUP)?
        .master_addr()
        .map(str::to_owned)
}

async fn wait_for_master(admin: &Admin, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(addr) = master(admin).await {
            if Some(addr.as_str()) != not {
                return addr;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no (new) master elected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_keeps_sending_through_a_leader_failover_and_no_acknowledged_send_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut members = start_group(dir.path(), &namesrv.addr());
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let leader = wait_for_master(&admin, None).await;
    create_topic(&admin, &members, &leader, "FailoverTopic", 4).await;

    let mut producer_options = ProducerOptions::new("failover-producer");
    producer_options.send_timeout = Duration::from_secs(5);
    producer_options.retry_times = 4;
    let producer = Producer::start(options.clone(), producer_options).unwrap();
    // msg id -> body of every acknowledged send.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut failed = 0u32;
    let mut killed = None;
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
                if killed.is_some() {
                    acked_after_kill += 1;
                }
            }
            Err(_) => failed += 1,
        }
        if killed.is_none() && acked.len() == 200 {
            let victim = members
                .iter_mut()
                .find(|m| m.addr() == leader)
                .expect("the leader is a member");
            victim.process.kill();
            killed = Some(victim.id.clone());
        }
    }
    let new_leader = wait_for_master(&admin, Some(&leader)).await;
    assert_ne!(new_leader, leader);

    // Every acknowledged message is readable from the new leader.
    let reader = PullConsumer::start(options, "failover-audit").unwrap();
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for queue in reader.queues("FailoverTopic").await.unwrap() {
        let mut offset = 0;
        loop {
            let result = reader.pull(&queue, "*", offset, 32).await.unwrap();
            for message in &result.messages {
                found.insert(
                    message.msg_id().to_owned(),
                    message.body_text().into_owned(),
                );
            }
            offset = result.next_begin_offset;
            if result.status == PullStatus::NoNewMsg {
                break;
            }
        }
    }
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
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut members = start_group(dir.path(), &namesrv.addr());
    let options = ClientOptions::new(&namesrv.addr());
    let admin = Admin::start(options.clone()).unwrap();
    let leader = wait_for_master(&admin, None).await;
    create_topic(&admin, &members, &leader, "ElectionTopic", 2).await;
    let producer = patient_producer(&options, "election-producer");
    producer
        .send(Message::new("ElectionTopic", "before"))
        .await
        .unwrap();

    // The leader dies; until the others elect one, the route names no master. The send
    // spends that time waiting for a master, not its three attempts.
    members
        .iter_mut()
        .find(|m| m.addr() == leader)
        .unwrap()
        .process
        .kill();
    let sent = producer
        .send(Message::new("ElectionTopic", "during"))
        .await
        .unwrap();
    assert_eq!(sent.queue.broker_name, GROUP);
    let new_leader = wait_for_master(&admin, Some(&leader)).await;
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
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_follows_the_master_through_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut members = start_group(dir.path(), &namesrv.addr());
    let mut options = ClientOptions::new(&namesrv.addr());
    options.heartbeat_interval = Duration::from_secs(2);
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let leader = wait_for_master(&admin, None).await;
    create_topic(&admin, &members, &leader, "FollowTopic", 2).await;

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

    members
        .iter_mut()
        .find(|m| m.addr() == leader)
        .unwrap()
        .process
        .kill();
    wait_for_master(&admin, Some(&leader)).await;
    producer
        .send(Message::new("FollowTopic", "after"))
        .await
        .unwrap();
    // Redelivery of "before" is allowed (offsets committed to the old leader may not
    // have reached the new one); losing "after" is not.
    eventually("the message sent to the new master", received("after")).await;
    consumer.shutdown().await;
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_follow_the_master_through_two_failovers() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut members = start_group(dir.path(), &namesrv.addr());
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let first = wait_for_master(&admin, None).await;
    create_topic(&admin, &members, &first, "TwiceTopic", 4).await;
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
    let index_of =
        |members: &[Member], addr: &str| members.iter().position(|m| m.addr() == addr).unwrap();
    let first_index = index_of(&members, &first);
    members[first_index].process.kill();
    let second = wait_for_master(&admin, Some(&first)).await;
    acked.extend(send_twenty("b").await);
    members[first_index].restart(dir.path());

    // Second failover: the producer follows again.
    let second_index = index_of(&members, &second);
    members[second_index].process.kill();
    let third = wait_for_master(&admin, Some(&second)).await;
    acked.extend(send_twenty("c").await);
    assert_eq!(
        producer.instance().master_addr(GROUP).as_deref(),
        Some(third.as_str())
    );

    let reader = PullConsumer::start(options, "twice-audit").unwrap();
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for queue in reader.queues("TwiceTopic").await.unwrap() {
        let mut offset = 0;
        loop {
            let result = reader.pull(&queue, "*", offset, 32).await.unwrap();
            for message in &result.messages {
                found.insert(
                    message.msg_id().to_owned(),
                    message.body_text().into_owned(),
                );
            }
            offset = result.next_begin_offset;
            if result.status == PullStatus::NoNewMsg {
                break;
            }
        }
    }
    for (id, body) in &acked {
        assert_eq!(found.get(id), Some(body), "acknowledged {body} lost");
    }
    reader.shutdown();
    admin.shutdown();
    producer.shutdown().await;
}
