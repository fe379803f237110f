//! A nemesis over a real 3-node broker group: for a while, a seeded random schedule of
//! faults (kill -9 of any member or of the leader and a restart later, SIGSTOP and SIGCONT,
//! a crash of the whole group, a member's disk losing power, filling up or turning slow, a
//! member's wall clock stepping up to ten minutes forward or back and then back again)
//! while producers send without retries and a push consumer group consumes. Each member's
//! store sits on its own [`PowerCutFs`] (a filesystem that keeps only what was fsynced);
//! the test restarts a member that exited (as a supervisor would: a member whose disk
//! fails exits with status 1). Then a total-queue check: every acknowledged send at the queue offset
//! its answer named, no offset holding two bodies, no hole, nothing stored twice; and the
//! consumer group received every acknowledged message.
//!
//! `NEMESIS_SECONDS` (default 45) sets the length; a failing run prints its seed, and
//! `NEMESIS_SEED=<n>` replays the same schedule (timings still depend on the machine).
//! Long run: `NEMESIS_SECONDS=900 cargo test -p tests --test nemesis -- --nocapture`.
//! Each member also runs on a host of its own (a network namespace, [`Network`]), so the
//! links between members can be cut: one way, a member isolated from the others, or two
//! members cut apart with the third still seeing both.
//! Each member also runs on a clock of its own ([`Clocks`], libfaketime), so its wall clock
//! can step while the monotonic clock runs on, as an NTP step does.
//! Without `/dev/fuse` the stores stay on the test's disk and the disk faults are left out;
//! without network namespaces (not root, no iproute2) the members share 127.0.0.1 and the
//! partitions are left out; without libfaketime the clocks do not step.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{PullConsumer, PushConsumer};
use common::{push_options, recorder, Seen, WAIT};
use remoting::code::response;
use tests::checker::{check, read_all, Load};
use tests::clocks::Clocks;
use tests::fault_group::{mount_disks, placements, FaultGroup};
use tests::group::{member_status, wait_applied, wait_for_master};
use tests::netns::Network;
use tests::powercut_fs::PowerCutFs;
use tests::requests::{send_header, send_v2};
use tests::{run_mqadmin, Watchdog};

const TOPIC: &str = "NemesisTopic";
const QUEUES: i32 = 4;
const SENDERS: usize = 4;

/// A small deterministic generator (splitmix64): the schedule replays from its seed.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillAny,
    KillLeader,
    Pause,
    CrashGroup,
    /// The member's disk loses power: frozen, unsynced data gone, started again.
    PowerCut,
    /// The member's disk is full for a while.
    DiskFull,
    /// Every fsync of the member takes 20-200 ms for a while.
    SlowDisk,
    /// Packets from the member to one other member are dropped for a while.
    CutOneWay,
    /// The member can neither reach nor be reached by the others for a while.
    Isolate,
    /// The two other members cannot reach each other; the member still reaches both.
    Bridge,
    /// The member's wall clock steps forward or back for a while, then back to the time.
    ClockStep,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_faults_lose_nothing_acknowledged() {
    let seed = env_u64("NEMESIS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let seconds = env_u64("NEMESIS_SECONDS").unwrap_or(45);
    eprintln!("nemesis: seed {seed}, {seconds} s (replay with NEMESIS_SEED={seed})");
    let mut schedule = Schedule(seed);

    let _watchdog = Watchdog::start(Duration::from_secs(seconds + 600));

    let dir = tempfile::tempdir().unwrap();
    let network = if Network::available() {
        Network::create(3)
            .map_err(|e| eprintln!("nemesis: no network namespaces ({e:#}): no partitions"))
            .ok()
    } else {
        eprintln!("nemesis: not root or no iproute2: members share 127.0.0.1, no partitions");
        None
    };
    let mut disks = if PowerCutFs::available() {
        mount_disks(dir.path(), 3).unwrap()
    } else {
        eprintln!("nemesis: no /dev/fuse: stores on the test's disk, no disk faults");
        Vec::new()
    };
    let clocks = if Clocks::available() {
        Some(Clocks::create(dir.path(), 3).unwrap())
    } else {
        eprintln!("nemesis: no libfaketime (apt-get install faketime): no clock steps");
        None
    };
    let mut placed = placements(dir.path(), &disks, network.as_ref(), 3);
    if let Some(clocks) = &clocks {
        for (i, placement) in placed.iter_mut().enumerate() {
            placement.env = clocks.env(i);
        }
    }
    let setup = FaultGroup::start(
        dir.path(),
        &placed,
        network.as_ref(),
        "Nemesis",
        TOPIC,
        QUEUES,
        &[],
    )
    .await
    .unwrap();

    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = PushConsumer::start(
        setup.options.clone(),
        push_options("nemesis-consumers", TOPIC),
        recorder(&seen),
    )
    .await
    .unwrap();
    // Every body is sent once, so the check can be exact.
    let producer = setup.producer_sending_once("nemesis-producer").unwrap();
    let FaultGroup {
        mut group,
        namesrv: _namesrv,
        options,
        admin,
        ..
    } = setup;
    let load = Load::start(&producer, TOPIC, SENDERS);
    load.wait_acked(200, WAIT).await.unwrap();

    let mut faults = vec![
        Fault::KillAny,
        Fault::KillLeader,
        Fault::Pause,
        Fault::KillAny,
        Fault::Pause,
        Fault::CrashGroup,
    ];
    if !disks.is_empty() {
        faults.extend([Fault::PowerCut, Fault::DiskFull, Fault::SlowDisk]);
    }
    if network.is_some() {
        faults.extend([
            Fault::CutOneWay,
            Fault::Isolate,
            Fault::Bridge,
            Fault::Isolate,
        ]);
    }
    if clocks.is_some() {
        faults.push(Fault::ClockStep);
    }
    let mut exits = 0;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut applied = Vec::new();
    // Bounded by the deadline: every round sleeps at least a second.
    while Instant::now() < until {
        tokio::time::sleep(schedule.millis(1000, 3000)).await;
        let fault = faults[schedule.below(faults.len() as u64) as usize];
        let target = match fault {
            Fault::KillLeader => wait_for_master(&admin, "Nemesis", None, WAIT)
                .await
                .ok()
                .and_then(|addr| group.index_of(&addr))
                .unwrap_or(0),
            _ => schedule.below(group.members.len() as u64) as usize,
        };
        let hold = schedule.millis(300, 4000);
        // Up to ten minutes either way.
        let step_s = schedule.below(1201) as i64 - 600;
        match fault {
            Fault::ClockStep => applied.push(format!(
                "{fault:?} n{target} {step_s:+}s {}ms",
                hold.as_millis()
            )),
            _ => applied.push(format!("{fault:?} n{target} {}ms", hold.as_millis())),
        }
        match fault {
            Fault::KillAny | Fault::KillLeader => {
                group.members[target].process.kill();
                tokio::time::sleep(hold).await;
                group.members[target].restart().unwrap();
            }
            Fault::Pause => {
                group.members[target].process.pause();
                tokio::time::sleep(hold).await;
                group.members[target].process.resume();
            }
            Fault::CrashGroup => {
                for member in &mut group.members {
                    member.process.kill();
                }
                tokio::time::sleep(hold).await;
                for member in &mut group.members {
                    member.restart().unwrap();
                }
            }
            Fault::PowerCut => {
                let member = &mut group.members[target];
                member.process.pause();
                disks[target].cut_power();
                member.process.kill();
                disks[target].restore_power().unwrap();
                tokio::time::sleep(hold).await;
                member.restart().unwrap();
            }
            Fault::DiskFull => {
                disks[target].set_full(true);
                tokio::time::sleep(hold).await;
                disks[target].set_full(false);
            }
            Fault::SlowDisk => {
                disks[target].set_fsync_latency(schedule.millis(20, 200));
                tokio::time::sleep(hold).await;
                disks[target].set_fsync_latency(Duration::ZERO);
            }
            Fault::CutOneWay | Fault::Isolate | Fault::Bridge => {
                let network = network.as_ref().unwrap();
                let one = (target + 1) % 3;
                let other = (target + 2) % 3;
                let links = match fault {
                    Fault::CutOneWay => vec![(target, one)],
                    Fault::Isolate => vec![
                        (target, one),
                        (one, target),
                        (target, other),
                        (other, target),
                    ],
                    _ => vec![(one, other), (other, one)],
                };
                for (from, to) in &links {
                    network.cut(*from, *to).unwrap();
                }
                tokio::time::sleep(hold).await;
                network.heal_all();
            }
            Fault::ClockStep => {
                let clocks = clocks.as_ref().unwrap();
                clocks.set_offset(target, step_s).unwrap();
                // The member reads its clock file once a second: hold the step at least that.
                tokio::time::sleep(hold.max(Duration::from_millis(1500))).await;
                clocks.set_offset(target, 0).unwrap();
            }
        }
        // The supervisor's part: a member that gave up (a disk error) is started again.
        for member in &mut group.members {
            if let Some(status) = member.process.wait_exit(Duration::ZERO) {
                exits += 1;
                applied.push(format!("{} exited ({status}), restarted", member.id));
                member.restart().unwrap();
            }
        }
    }
    eprintln!("nemesis: faults {applied:?}; members that exited by themselves: {exits}");
    // The group serves again; the load goes on a little before it stops.
    wait_for_master(&admin, "Nemesis", None, WAIT)
        .await
        .unwrap();
    load.wait_acked(load.acked() + 100, WAIT).await.unwrap();
    let log = load.stop().await;

    let checker = PullConsumer::start(options.clone(), "nemesis-checker").unwrap();
    let queues = read_all(&checker, TOPIC).await.unwrap();
    checker.shutdown();
    let report =
        check(&log, &queues).unwrap_or_else(|e| panic!("seed {seed}, faults {applied:?}: {e:#}"));
    eprintln!(
        "nemesis: {report:?}; send errors {:?}",
        log.errors.iter().take(8).collect::<Vec<_>>()
    );

    let acked: BTreeSet<&str> = log.acked.iter().map(|a| a.body.as_str()).collect();
    let deadline = Instant::now() + WAIT;
    let missing = loop {
        let received: BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.body_text().into_owned())
            .collect();
        let missing: Vec<&str> = acked
            .iter()
            .filter(|b| !received.contains(**b))
            .copied()
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "seed {seed}: the consumer group never received {} acknowledged messages, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    consumer.shutdown().await;
    producer.shutdown().await;
}

/// Directed partitions over members on hosts of their own: the master cut off from both
/// others both ways, then (after healing) the next master unable to send to the others
/// though still hearing them. Each time another member must become master and take sends,
/// and the cut-off one must rejoin and hold the same queues; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_master_is_replaced_and_rejoins_with_nothing_lost() {
    let _watchdog = Watchdog::start(Duration::from_secs(600));
    let dir = tempfile::tempdir().unwrap();
    let name = "Partitioned";
    let Some((network, setup)) = partitionable_group(dir.path(), name, &[]).await else {
        return;
    };
    let producer = setup.producer_sending_once("partition-producer").unwrap();
    let FaultGroup {
        group,
        namesrv: _namesrv,
        options,
        admin,
        raw,
        mut master,
    } = setup;
    let load = Load::start(&producer, TOPIC, SENDERS);
    load.wait_acked(300, WAIT).await.unwrap();

    for one_way in [false, true] {
        let cut_off = group.index_of(&master).unwrap();
        let started = Instant::now();
        for other in (0..3).filter(|i| *i != cut_off) {
            network.cut(cut_off, other).unwrap();
            if !one_way {
                network.cut(other, cut_off).unwrap();
            }
        }
        let next = wait_for_master(&admin, name, Some(&master), WAIT)
            .await
            .unwrap_or_else(|e| panic!("no other master while {master} is cut off: {e:#}"));
        let acked = load.acked();
        load.wait_acked(acked + 300, WAIT).await.unwrap();
        eprintln!(
            "partition (one way: {one_way}): {master} cut off, {next} master after {:.2} s",
            started.elapsed().as_secs_f64()
        );
        network.heal_all();
        let status = requests_status(&raw, &next).await;
        wait_applied(&raw, &master, status, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{master} did not rejoin: {e:#}"));
        master = next;
    }
    let log = load.stop().await;
    let checker = PullConsumer::start(options.clone(), "partition-checker").unwrap();
    let queues = read_all(&checker, TOPIC).await.unwrap();
    checker.shutdown();
    let report = check(&log, &queues).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("partitions: {report:?}");
    producer.shutdown().await;
}

/// A group serving [`TOPIC`] whose members each run on a host of their own, so the links
/// between them can be cut; `None` (the test skipped, saying why) without network
/// namespaces.
async fn partitionable_group(
    dir: &std::path::Path,
    name: &str,
    extra: &[(&str, String)],
) -> Option<(Network, FaultGroup)> {
    if !Network::available() {
        eprintln!("SKIPPED: network namespaces need root and iproute2");
        return None;
    }
    let network = Network::create(3).unwrap();
    let placed = placements(dir, &[], Some(&network), 3);
    let setup = FaultGroup::start(dir, &placed, Some(&network), name, TOPIC, QUEUES, extra)
        .await
        .unwrap();
    Some((network, setup))
}

/// The commit index the member at `addr` reports.
async fn requests_status(raw: &remoting::client::RemotingClient, addr: &str) -> u64 {
    let status = member_status(raw, addr).await.unwrap();
    status["commitIndex"].as_u64().unwrap()
}

/// A master demoted by a leadership transfer forwards the sends that still reach it to the
/// new master. When the new master's answer is lost (here its packets to the old master
/// are dropped for longer than the forward waits), the send may be stored there: the old
/// master must answer that the outcome is unknown, and never send it again, itself or
/// through the new master, which would store it twice under one acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_send_whose_answer_is_lost_is_never_stored_twice() {
    let _watchdog = Watchdog::start(Duration::from_secs(300));
    let dir = tempfile::tempdir().unwrap();
    let name = "LostAnswer";
    // The demoted master forwards for the whole test.
    let forward_for = [("masterShutdownForwardMs", "60000".to_owned())];
    let Some((network, setup)) = partitionable_group(dir.path(), name, &forward_for).await else {
        return;
    };
    let old = setup.group.index_of(&setup.master).unwrap();
    let new = (old + 1) % 3;
    let (ok, out, err) = run_mqadmin(&[
        "transferLeader",
        "-n",
        &setup.namesrv.addr(),
        "-b",
        name,
        "-i",
        &setup.group.members[new].id,
    ]);
    assert!(ok, "{out}{err}");
    let new_master = wait_for_master(&setup.admin, name, Some(&setup.master), WAIT)
        .await
        .unwrap();
    assert_eq!(new_master, setup.group.members[new].addr());

    let send = |body: &'static str| {
        let raw = setup.raw.clone();
        let old_master = setup.master.clone();
        async move {
            let request = send_v2(&send_header(TOPIC, 0, ""), body.as_bytes());
            raw.invoke(&old_master, request, Duration::from_secs(30))
                .await
                .unwrap()
        }
    };
    // Until it learns where the new master is, the old one refuses (storing nothing).
    let mut forwarding = false;
    for _ in 0..100 {
        let answer = send("probe").await;
        if answer.code == response::SUCCESS {
            forwarding = true;
            break;
        }
        assert_eq!(answer.code, response::SERVICE_NOT_AVAILABLE, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forwarding, "the demoted master never forwarded a send");

    network.cut(new, old).unwrap();
    let lost = tokio::spawn(send("answer-lost"));
    // The new master stays master throughout (the third member still hears it). Healed
    // just after the forward's 5 s are up: the forward went unanswered, and whatever the
    // old master sends next gets through.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    network.heal_all();
    let answer = lost.await.unwrap();
    eprintln!(
        "a forward whose answer was lost: code {} ({:?})",
        answer.code, answer.remark
    );

    // Whatever the new master committed until now is readable once it applied it.
    let committed = requests_status(&setup.raw, &new_master).await;
    wait_applied(&setup.raw, &new_master, committed, WAIT)
        .await
        .unwrap();
    let checker = PullConsumer::start(setup.options.clone(), "lost-answer-checker").unwrap();
    let queues = read_all(&checker, TOPIC).await.unwrap();
    let stored = queues
        .values()
        .flatten()
        .filter(|read| read.body == "answer-lost")
        .count();
    checker.shutdown();
    assert!(stored <= 1, "the send is stored {stored} times");
    if answer.code == response::SUCCESS {
        assert_eq!(stored, 1, "an acknowledged send is missing");
    }
}
