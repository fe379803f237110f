//! The `client` producer through a leader failover of a 3-node broker group (DLedger
//! mode): it keeps sending, and no acknowledged send is lost.
//!
//! Ignored until `mqbroker` runs with `enableDLegerCommitLog=true` (it refuses that
//! configuration today). Run with `cargo test -p tests --test client_group -- --ignored`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use client::consumer::PullStatus;
use client::{Admin, ClientOptions, Message, Producer, ProducerOptions, PullConsumer};
use tests::{binary, free_port, wait_for_port, write_conf, NameServer, Process};

const GROUP: &str = "RaftNode00";
const WAIT: Duration = Duration::from_secs(60);

struct Member {
    id: String,
    port: u16,
    process: Process,
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
        let process = Process::spawn(
            &id,
            &binary("mqbroker"),
            &["-c", conf.to_str().unwrap()],
            dir.join(format!("{id}.log")),
        )
        .unwrap();
        members.push(Member { id, port, process });
    }
    for member in &mut members {
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
    members
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
#[ignore = "needs mqbroker with enableDLegerCommitLog=true (a replicated broker group)"]
async fn a_producer_keeps_sending_through_a_leader_failover_and_no_acknowledged_send_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut members = start_group(dir.path(), &namesrv.addr());
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let leader = wait_for_master(&admin, None).await;
    for member in &members {
        let addr = format!("127.0.0.1:{}", member.port);
        // Followers may refuse admin writes; the leader's answer is the one that counts.
        let created = admin
            .create_topic(&addr, &Admin::topic_config("FailoverTopic", 4, 4))
            .await;
        if addr == leader {
            created.unwrap();
        }
    }

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
                .find(|m| format!("127.0.0.1:{}", m.port) == leader)
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
