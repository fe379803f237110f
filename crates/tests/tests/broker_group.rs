//! Fault tests of a 3-node broker group (DLedger mode) of real `mqbroker` processes under
//! load from the `client` crate's producer: kill -9 the leader, freeze it (SIGSTOP), kill a
//! follower, wipe a follower's disk, stop the leader gracefully (SIGTERM), and an entry a
//! deposed leader never committed. After each, a consumer reading every queue from offset 0
//! must find every acknowledged send exactly at the queue offset its send result reported,
//! queues dense, nothing unexpected (see `tests::checker`), and members that were down
//! must catch up to hold the same queues as the leader.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use client::{Admin, ClientOptions, Producer, ProducerOptions, PullConsumer};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::response;
use tests::checker::{check, read_all, read_member, Acked, Load, Read, Report, SendLog};
use tests::fault_group::{placements, FaultGroup};
use tests::group::{member_status, wait_applied, wait_caught_up, wait_for_master, BrokerGroup};
use tests::requests::{self, send_header, send_v2};
use tests::{run_mqadmin, NameServer};

const WAIT: Duration = Duration::from_secs(60);

/// Whether `process` logs `line` within [`WAIT`] (the members are other processes, so
/// blocking this thread while polling holds nothing up).
/// Waits (bounded) for `line` in the process's log; fails the test with `why` and the log.
fn assert_logged(process: &tests::Process, line: &str, why: &str) {
    let found = tests::eventually(WAIT, Duration::from_millis(100), || {
        process.log().contains(line).then_some(())
    });
    assert!(found.is_some(), "{why}: {}", process.log());
}

const QUEUES: i32 = 4;
const SENDERS: usize = 4;

struct Setup {
    namesrv: NameServer,
    group_name: String,
    admin: Admin,
    options: ClientOptions,
    raw: RemotingClient,
    master: String,
    /// Last: fields drop in order, and the processes above must stop (and print their
    /// logs on a failure) before the directory holding those logs is removed.
    _dir: tempfile::TempDir,
}

impl Setup {
    /// A name server, a group with a registered master, and `topic` with four queues.
    async fn start(name: &str, topic: &str) -> (Setup, BrokerGroup) {
        Self::start_with(name, topic, &[], Duration::from_secs(1)).await
    }

    /// [`Setup::start`] with extra broker settings and clients polling routes every `poll`.
    async fn start_with(
        name: &str,
        topic: &str,
        extra: &[(&str, String)],
        poll: Duration,
    ) -> (Setup, BrokerGroup) {
        let dir = tempfile::tempdir().unwrap();
        let placed = placements(dir.path(), &[], None, 3);
        let FaultGroup {
            group,
            namesrv,
            mut options,
            admin,
            raw,
            master,
        } = FaultGroup::start(dir.path(), &placed, None, name, topic, QUEUES, extra)
            .await
            .unwrap();
        options.poll_name_server_interval = poll;
        let setup = Setup {
            _dir: dir,
            namesrv,
            group_name: name.to_owned(),
            admin,
            options,
            raw,
            master,
        };
        (setup, group)
    }

    /// A producer that sends each body once (no client retries) so outcomes are exact.
    fn producer(&self, group: &str) -> Producer {
        let mut options = ProducerOptions::new(group);
        options.retry_times = 0;
        options.send_timeout = Duration::from_secs(5);
        Producer::start(self.options.clone(), options).unwrap()
    }

    async fn new_master(&self, not: &str) -> String {
        wait_for_master(&self.admin, &self.group_name, Some(not), WAIT)
            .await
            .unwrap()
    }

    /// Reads every queue through a consumer and checks it against `log`.
    async fn check(&self, topic: &str, log: &SendLog) -> (Report, BTreeMap<i32, Vec<Read>>) {
        let consumer = PullConsumer::start(self.options.clone(), "checker").unwrap();
        let queues = read_all(&consumer, topic).await.unwrap();
        consumer.shutdown();
        let report = check(log, &queues).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(report.acked > 0, "nothing was acknowledged: {report:?}");
        (report, queues)
    }

    /// Waits until the member at `addr` applied the leader's commit index, then holds each
    /// of its queues against what the consumer read.
    async fn assert_caught_up(&self, addr: &str, topic: &str, queues: &BTreeMap<i32, Vec<Read>>) {
        wait_caught_up(
            &self.raw,
            &self.admin,
            &self.group_name,
            addr,
            topic,
            queues,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// Load → fault → the group recovers and load goes on → the check.
async fn acked_after(load: &Load, more: usize) {
    let target = load.acked() + more;
    load.wait_acked(target, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_leader_mid_stream_loses_no_acknowledged_send_and_it_catches_up() {
    let (setup, mut group) = Setup::start("KillLeader", "KillTopic").await;
    let producer = setup.producer("kill-producer");
    let load = Load::start(&producer, "KillTopic", SENDERS);
    acked_after(&load, 300).await;

    group.member_mut(&setup.master).unwrap().process.kill();
    let new_master = setup.new_master(&setup.master).await;
    acked_after(&load, 300).await;
    let log = load.stop().await;
    let (report, queues) = setup.check("KillTopic", &log).await;
    eprintln!("kill -9 leader: {report:?}");

    let killed = group.member_mut(&setup.master).unwrap();
    killed.restart().unwrap();
    setup
        .assert_caught_up(&setup.master, "KillTopic", &queues)
        .await;
    assert_ne!(new_master, setup.master);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_leader_is_replaced_and_after_sigcont_steps_down_and_forwards_sends() {
    let (setup, group) = Setup::start("FrozenLeader", "FrozenTopic").await;
    let producer = setup.producer("frozen-producer");
    let load = Load::start(&producer, "FrozenTopic", SENDERS);
    acked_after(&load, 300).await;

    let old = setup.master.clone();
    let frozen = group.index_of(&old).unwrap();
    group.members[frozen].process.pause();
    let new_master = setup.new_master(&old).await;
    acked_after(&load, 300).await;
    group.members[frozen].process.resume();

    // Back from the freeze it learns of the new term and follows; it never takes a write.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = member_status(&setup.raw, &old).await;
        if status.is_ok_and(|s| s["role"] == "FOLLOWER") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old leader did not step down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A producer whose route still names the old master is not refused: the deposed
    // master forwards its send to the new one (it may refuse for the moment it takes to
    // notice its demotion; such a refusal stores nothing and is retried).
    const STALE_ID: &str = "7F00000100002A9F0000000000000001";
    let properties = format!("UNIQ_KEY\u{1}{STALE_ID}\u{2}");
    let mut forwarded = None;
    for _ in 0..50 {
        let answer = setup
            .raw
            .invoke(
                &old,
                send_v2(&send_header("FrozenTopic", 0, &properties), b"stale"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        if answer.code == response::SUCCESS {
            forwarded = Some(answer);
            break;
        }
        assert_eq!(answer.code, response::SERVICE_NOT_AVAILABLE, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let forwarded = forwarded.expect("the deposed master forwards sends to the new one");
    let field = |name: &str| forwarded.ext_field(name).unwrap_or_default().to_string();
    let stale = Acked {
        queue_id: field("queueId").parse().unwrap(),
        queue_offset: field("queueOffset").parse().unwrap(),
        msg_id: STALE_ID.to_string(),
        body: "stale".to_string(),
    };
    acked_after(&load, 100).await;
    // The name server still routes to the new master, not back to the old one.
    assert_eq!(
        tests::group::master_of(&setup.admin, &group.name)
            .await
            .as_deref(),
        Some(new_master.as_str())
    );
    let mut log = load.stop().await;
    // The forwarded send is where its answer said, once: stored by the new master.
    log.acked.push(stale);
    let (report, queues) = setup.check("FrozenTopic", &log).await;
    eprintln!("SIGSTOP leader: {report:?}");
    setup.assert_caught_up(&old, "FrozenTopic", &queues).await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_follower_catches_up_and_a_wiped_follower_is_rebuilt() {
    let (setup, mut group) = Setup::start("FollowerFaults", "FollowerTopic").await;
    let producer = setup.producer("follower-producer");
    let load = Load::start(&producer, "FollowerTopic", SENDERS);
    acked_after(&load, 300).await;

    // A follower dies: the master keeps its quorum, writes go on without an election.
    let followers: Vec<String> = group
        .members
        .iter()
        .map(|m| m.addr())
        .filter(|a| *a != setup.master)
        .collect();
    group.member_mut(&followers[0]).unwrap().process.kill();
    acked_after(&load, 300).await;
    group.member_mut(&followers[0]).unwrap().restart().unwrap();
    acked_after(&load, 300).await;

    // Another follower loses its disk and is rebuilt from the leader.
    let wiped = group.member_mut(&followers[1]).unwrap();
    wiped.wipe_and_restart().unwrap();
    // It lost its term and vote: it learned the group's term and will not vote in it, nor
    // at all until its log holds what the others had committed. (It says so after its
    // client port is up, which is all the restart waits for.)
    let warned = tests::eventually(Duration::from_secs(20), Duration::from_millis(50), || {
        let log = wiped.process.log();
        (log.contains("may have lost its disk") && log.contains("until its log reaches entry"))
            .then_some(())
    });
    assert!(warned.is_some(), "{}", wiped.process.log());
    acked_after(&load, 300).await;
    let log = load.stop().await;
    let (report, queues) = setup.check("FollowerTopic", &log).await;
    eprintln!("follower faults: {report:?}");
    for follower in &followers {
        setup
            .assert_caught_up(follower, "FollowerTopic", &queues)
            .await;
    }
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_a_deposed_leader_never_committed_is_never_visible_and_is_gone_after_it_rejoins() {
    let (setup, mut group) = Setup::start("Deposed", "DeposedTopic").await;
    let producer = setup.producer("deposed-producer");
    let load = Load::start(&producer, "DeposedTopic", 2);
    acked_after(&load, 100).await;
    let mut log = load.stop().await;

    // Cut the leader off from both followers (they die: a stopped process would still
    // take the leader's bytes into its socket buffers and append them when resumed), then
    // write to it: the entry lands in its log but cannot reach a quorum, so the send is
    // not acknowledged.
    let leader = setup.master.clone();
    let followers: Vec<usize> = (0..group.members.len())
        .filter(|&i| group.members[i].addr() != leader)
        .collect();
    for &i in &followers {
        group.members[i].process.kill();
    }
    let orphan = "never-committed";
    let sent = setup
        .raw
        .invoke(
            &leader,
            send_v2(&send_header("DeposedTopic", 0, ""), orphan.as_bytes()),
            Duration::from_secs(8),
        )
        .await;
    if let Ok(answer) = &sent {
        assert_ne!(
            answer.code,
            response::SUCCESS,
            "a send without a quorum was acknowledged"
        );
    }
    log.unknown.insert(orphan.to_owned());

    // The isolated leader dies; the followers come back and elect one of themselves.
    group.member_mut(&leader).unwrap().process.kill();
    assert!(
        group
            .member_mut(&leader)
            .unwrap()
            .commit_log_contains(orphan.as_bytes())
            .unwrap(),
        "the isolated leader should hold the uncommitted entry in its log"
    );
    for &i in &followers {
        group.members[i].restart().unwrap();
    }
    let new_master = setup.new_master(&leader).await;
    let load = Load::start(&producer, "DeposedTopic", 2);
    acked_after(&load, 100).await;
    let later = load.stop().await;
    log.acked.extend(later.acked);
    log.unknown.extend(later.unknown);

    let (report, queues) = setup.check("DeposedTopic", &log).await;
    eprintln!("deposed leader: {report:?}");
    let visible = |queues: &BTreeMap<i32, Vec<Read>>| {
        queues.values().flatten().any(|read| read.body == orphan)
    };
    assert!(!visible(&queues), "the uncommitted entry became visible");

    // The old leader rejoins: its uncommitted tail is replaced by the group's log.
    group.member_mut(&leader).unwrap().restart().unwrap();
    setup
        .assert_caught_up(&leader, "DeposedTopic", &queues)
        .await;
    let mut on_old_leader = BTreeMap::new();
    for queue_id in 0..QUEUES {
        on_old_leader.insert(
            queue_id,
            read_member(&setup.raw, &leader, "DeposedTopic", queue_id)
                .await
                .unwrap(),
        );
    }
    assert!(!visible(&on_old_leader));
    assert!(
        !group
            .member_mut(&leader)
            .unwrap()
            .commit_log_contains(orphan.as_bytes())
            .unwrap(),
        "the uncommitted entry is still in the old leader's log after it rejoined"
    );
    let consumer = PullConsumer::start(setup.options.clone(), "checker-again").unwrap();
    assert!(!visible(
        &read_all(&consumer, "DeposedTopic").await.unwrap()
    ));
    consumer.shutdown();
    assert_ne!(new_master, leader);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_on_the_master_hands_leadership_off_before_it_stops() {
    let (setup, mut group) = Setup::start("Handoff", "HandoffTopic").await;
    let producer = setup.producer("handoff-producer");
    let load = Load::start(&producer, "HandoffTopic", SENDERS);
    acked_after(&load, 300).await;
    let failed_before = load.failed();

    let stopped = group
        .member_mut(&setup.master)
        .unwrap()
        .process
        .terminate(Duration::from_secs(20));
    assert!(stopped, "the master did not stop on SIGTERM");
    let new_master = setup.new_master(&setup.master).await;
    acked_after(&load, 300).await;
    let failed_during = load.failed() - failed_before;
    let log = load.stop().await;
    let (report, queues) = setup.check("HandoffTopic", &log).await;
    eprintln!(
        "SIGTERM hand-off: {failed_during} sends failed during the hand-off; {report:?}; {:#?}",
        log.errors
    );
    assert_ne!(new_master, setup.master);

    let stopped_member = group.member_mut(&setup.master).unwrap();
    stopped_member.restart().unwrap();
    setup
        .assert_caught_up(&setup.master, "HandoffTopic", &queues)
        .await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mqadmin_shows_the_group_and_moves_its_leadership() -> Result<()> {
    let (setup, group) = Setup::start("AdminGroup", "AdminTopic").await;
    let ns = setup.namesrv.addr();
    let run = run_mqadmin;
    // Every member registers (followers as slaves); wait until all three are listed.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let members = setup.admin.broker_group("AdminGroup").await?;
        if members.len() == 3 && members.iter().all(|m| m.raft.is_some()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, out, err) = run(&["getBrokerGroup", "-n", &ns, "-b", "AdminGroup"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("LEADER").count(), 1, "{out}");
    assert_eq!(out.matches("FOLLOWER").count(), 2, "{out}");
    assert_eq!(out.matches("MASTER").count(), 1, "{out}");

    let leader = setup.master.clone();
    let target = group.members.iter().find(|m| m.addr() != leader).unwrap();
    let (ok, out, err) = run(&[
        "transferLeader",
        "-n",
        &ns,
        "-b",
        "AdminGroup",
        "-i",
        &target.id,
    ]);
    assert!(ok, "{out}{err}");
    let new_master = setup.new_master(&leader).await;
    assert_eq!(new_master, target.addr());

    let (ok, out, err) = run(&["getBrokerGroup", "-n", &ns, "-b", "AdminGroup", "--json"]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out)?;
    let leader_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["raftRole"] == "LEADER")
        .unwrap();
    assert_eq!(leader_row["nodeId"], target.id.as_str());
    assert_eq!(leader_row["brokerId"], 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mqadmin_adds_a_member_under_load_and_removes_the_leader_losing_nothing() {
    let topic = "MembershipTopic";
    let (setup, mut group) = Setup::start("MemberGroup", topic).await;
    let ns = setup.namesrv.addr();
    let producer = setup.producer("membership-producer");
    let load = Load::start(&producer, topic, SENDERS);
    acked_after(&load, 300).await;

    // A fourth broker joins while sends go on.
    let joiner = group.start_joiner(setup._dir.path()).unwrap();
    let raft_addr = format!("127.0.0.1:{}", group.members[joiner].raft_port);
    let (ok, out, err) = run_mqadmin(&[
        "addGroupMember",
        "-n",
        &ns,
        "-b",
        "MemberGroup",
        "-i",
        "n3",
        "-a",
        &raft_addr,
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("learner"), "{out}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let members = setup.admin.broker_group("MemberGroup").await.unwrap();
        let voters = members
            .iter()
            .filter(|m| m.raft.as_ref().is_some_and(|r| r.voter))
            .count();
        if members.len() == 4 && voters == 4 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, out, err) = run_mqadmin(&["getBrokerGroup", "-n", &ns, "-b", "MemberGroup"]);
    assert!(ok && !out.contains("LEARNER"), "{out}{err}");
    acked_after(&load, 300).await;

    // The leader leaves: mqadmin moves leadership off it first, then removes it.
    let old_master = setup.admin.broker_group("MemberGroup").await.unwrap();
    let leader = old_master
        .iter()
        .find(|m| m.raft.as_ref().is_some_and(|r| r.role == "LEADER"))
        .expect("a leader")
        .clone();
    let leader_node = leader.raft.as_ref().unwrap().node_id.clone();
    let (ok, out, err) = run_mqadmin(&[
        "removeGroupMember",
        "-n",
        &ns,
        "-b",
        "MemberGroup",
        "-i",
        &leader_node,
    ]);
    assert!(ok, "{out}{err}");
    // The removed member is told (it never receives the entry removing it) and leaves the
    // routes by itself, still running.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (ok, out, err) = run_mqadmin(&["getBrokerGroup", "-n", &ns, "-b", "MemberGroup"]);
        if ok && !out.contains(&leader.addr) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the removed member is still routed to: {out}{err}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let removed = group.index_of(&leader.addr).unwrap();
    assert!(group.members[removed].process.is_running());
    assert!(group.members[removed]
        .process
        .terminate(Duration::from_secs(20)));
    setup.new_master(&leader.addr).await;
    acked_after(&load, 300).await;

    // Three voters left, the new member among them: with one more founder killed, the
    // survivor and the new member are the majority that keeps acknowledging sends.
    let master = wait_for_master(&setup.admin, "MemberGroup", None, WAIT)
        .await
        .unwrap();
    let victim = group
        .members
        .iter()
        .position(|m| m.id != "n3" && m.id != leader_node && m.addr() != master)
        .expect("a founder that is neither removed nor master");
    group.members[victim].process.kill();
    acked_after(&load, 300).await;
    let log = load.stop().await;
    let (report, queues) = setup.check(topic, &log).await;
    assert!(report.acked >= 1200, "{report:?}");
    let joiner_addr = group.members[joiner].addr();
    setup.assert_caught_up(&joiner_addr, topic, &queues).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_consumer_offsets_survive_a_leader_failover() {
    let (setup, mut group) = Setup::start("Offsets", "OffsetTopic").await;
    let consumer = PullConsumer::start(setup.options.clone(), "offset-group").unwrap();
    let queues = consumer.queues("OffsetTopic").await.unwrap();
    for (i, queue) in queues.iter().enumerate() {
        consumer.commit_offset(queue, 40 + i as i64).await.unwrap();
    }
    group.member_mut(&setup.master).unwrap().process.kill();
    setup.new_master(&setup.master).await;
    for (i, queue) in queues.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // The client may still hold the old route for a moment.
            if let Ok(committed) = consumer.committed_offset(queue).await {
                assert_eq!(committed, Some(40 + i as i64), "queue {}", queue.queue_id);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer from the new master"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    consumer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_flush_group_killed_all_at_once_restarts_with_every_acknowledged_send() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NameServer::start(dir.path()).unwrap();
    let mut group = BrokerGroup::start(
        dir.path(),
        "AllDown",
        &namesrv.addr(),
        &[("flushDiskType", "SYNC_FLUSH".to_owned())],
    )
    .unwrap();
    let mut options = ClientOptions::new(&namesrv.addr());
    options.poll_name_server_interval = Duration::from_secs(1);
    let admin = Admin::start(options.clone()).unwrap();
    let master = wait_for_master(&admin, "AllDown", None, WAIT)
        .await
        .unwrap();
    admin
        .create_topic(
            &master,
            &Admin::topic_config("AllDownTopic", QUEUES, QUEUES),
        )
        .await
        .unwrap();
    let raw = RemotingClient::new(ClientConfig::default());
    requests::wait_for_route(&raw, &namesrv.addr(), "AllDownTopic", &master, WAIT)
        .await
        .unwrap();
    let mut producer_options = ProducerOptions::new("alldown-producer");
    producer_options.retry_times = 0;
    let producer = Producer::start(options.clone(), producer_options).unwrap();
    let load = Load::start(&producer, "AllDownTopic", SENDERS);
    load.wait_acked(300, WAIT).await.unwrap();
    for member in &mut group.members {
        member.process.kill();
    }
    let log = load.stop().await;
    for member in &mut group.members {
        member.restart().unwrap();
    }
    wait_for_master(&admin, "AllDown", None, WAIT)
        .await
        .unwrap();
    let consumer = PullConsumer::start(options, "alldown-checker").unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let report = loop {
        // Until the new master registered its routes the read may come up short.
        let queues = read_all(&consumer, "AllDownTopic").await;
        match queues.map(|q| check(&log, &q)) {
            Ok(Ok(report)) => break report,
            Ok(Err(e)) | Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("{e:#}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    eprintln!("whole group killed (SYNC_FLUSH): {report:?}");
    assert!(report.acked >= 300);
    consumer.shutdown();
    producer.shutdown().await;
}

/// Bit rot in an old segment of the leader: reading the damaged entry back to rebuild a
/// wiped member, it asks the other members for an intact copy, waits (running) until one
/// answers, writes the copy over the damaged bytes and goes on; the wiped member is rebuilt
/// and nothing acknowledged is lost. (A storage error no peer can mend, a full disk, makes a member exit for its
/// supervisor: `disk_faults`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotten_entry_is_repaired_from_a_peer_while_the_master_rebuilds_a_member() {
    let metrics = [("metricsExporterType", "PROM".to_owned())];
    let (setup, mut group) =
        Setup::start_with("StorageError", "RotTopic", &metrics, Duration::from_secs(1)).await;
    let producer = setup.producer("rot-producer");
    let load = Load::start(&producer, "RotTopic", SENDERS);
    acked_after(&load, 300).await;
    let log = load.stop().await;
    let status = member_status(&setup.raw, &setup.master).await.unwrap();
    let commit = status["commitIndex"].as_u64().unwrap();
    for member in &group.members {
        wait_applied(&setup.raw, &member.addr(), commit, WAIT)
            .await
            .unwrap();
    }
    // Stopped cleanly, so the rot below lies before every checkpoint and is found only
    // when the entry is read again. The member that will lead stops last: whatever the
    // others commit while they stop one by one (a new leader's first entry, when the master
    // stops first) is then in its log too, as it must be for a member elected with only
    // the wiped member's vote.
    let (rotten, wiped, holder) = (0, 1, 2);
    for member in [holder, wiped, rotten] {
        let member = &mut group.members[member];
        assert!(member.process.terminate(WAIT), "{} did not stop", member.id);
    }
    let needle = log.acked[0].body.as_bytes();
    assert!(group.members[rotten].corrupt_commit_log(needle).unwrap());
    assert!(!group.members[rotten].commit_log_contains(needle).unwrap());
    let wiped_dir = group.members[wiped].store_dir.clone();
    std::fs::remove_dir_all(&wiped_dir).unwrap();
    // Only the rotten member has a log to lead with; leading, it must read its old
    // segments to rebuild the wiped one, and only the member started later holds a copy.
    group.members[rotten].restart().unwrap();
    group.members[wiped].restart().unwrap();
    // It cannot commit (the wiped member cannot get past the damaged entry) until the
    // holder answers: no master meanwhile, and no exit either.
    assert_logged(
        &group.members[rotten].process,
        "asking the other members for an intact copy",
        "the damaged entry was never noticed",
    );
    group.members[holder].restart().unwrap();

    let member = &mut group.members[rotten];
    let repaired = tests::eventually(WAIT, Duration::from_millis(100), || {
        assert!(
            member.process.is_running(),
            "the rotten member exited: {}",
            member.process.log()
        );
        member.commit_log_contains(needle).unwrap().then_some(())
    });
    assert!(
        repaired.is_some(),
        "the damaged entry was not repaired: {}",
        member.process.log()
    );
    // The repaired entry reaches the file just before the driver logs the repair.
    assert_logged(
        &group.members[rotten].process,
        "damaged entry repaired from a peer's copy",
        "it must say what it did",
    );
    let counted = tests::scrape::scrape(&group.members[rotten].metrics_addr().unwrap()).unwrap();
    assert_eq!(
        counted.value("rocketmq_raft_entries_damaged_total", &[]),
        1.0
    );
    assert_eq!(
        counted.value("rocketmq_raft_entries_repaired_total", &[]),
        1.0
    );
    wait_for_master(&setup.admin, &setup.group_name, None, WAIT)
        .await
        .unwrap();
    let (report, queues) = setup.check("RotTopic", &log).await;
    eprintln!("after repairing a rotten entry: {report:?}");
    setup
        .assert_caught_up(&group.members[wiped].addr(), "RotTopic", &queues)
        .await;
    producer.shutdown().await;
}

/// A rolling restart (each member in turn: SIGTERM, start again, catch up) that no producer
/// notices: a stopping master hands off and keeps forwarding sends for longer than the
/// clients take to refresh their routes (scaled down here: routes polled every 3 s, a 6 s
/// forward; RocketMQ's clients poll every 30 s, the default forward is 35 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_every_member_fails_no_send() {
    let poll = Duration::from_secs(3);
    let extra = [("masterShutdownForwardMs", "6000".to_owned())];
    let (setup, mut group) = Setup::start_with("Rolling", "RollingTopic", &extra, poll).await;
    let producer = setup.producer("rolling-producer");
    let load = Load::start(&producer, "RollingTopic", SENDERS);
    acked_after(&load, 300).await;
    for i in 0..group.members.len() {
        let addr = group.members[i].addr();
        let member = &mut group.members[i];
        assert!(
            member.process.terminate(WAIT),
            "{} did not stop on SIGTERM",
            member.id
        );
        member.restart().unwrap();
        acked_after(&load, 200).await;
        let master = setup.new_master("").await;
        let status = member_status(&setup.raw, &master).await.unwrap();
        let commit = status["commitIndex"].as_u64().unwrap();
        wait_applied(&setup.raw, &addr, commit, WAIT).await.unwrap();
    }
    acked_after(&load, 300).await;
    let log = load.stop().await;
    let (report, _) = setup.check("RollingTopic", &log).await;
    eprintln!(
        "rolling restart: {} failed sends {:?}; {report:?}",
        log.unknown.len(),
        log.errors
    );
    assert!(
        log.unknown.is_empty(),
        "the producer saw failed sends: {:?}",
        log.errors
    );
    producer.shutdown().await;
}
