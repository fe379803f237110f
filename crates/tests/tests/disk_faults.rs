//! Disk faults under a real broker group, each member's store on its own [`PowerCutFs`]
//! (a filesystem that keeps only what was fsynced, and can fill up).
//!
//! Power loss of the whole group: while producers send (without retries) and a pull
//! consumer tails every queue, the test freezes all three members in one instant, cuts the
//! power of their three disks, starts them again, and does it again. Afterwards:
//! - the members serve again by themselves and hold the same queues, message for message;
//! - every message the consumer read before a cut is still at the queue offset it was read
//!   at (nothing a consumer saw is taken back or replaced);
//! - queues are dense, nothing is stored twice, nothing appears that was never sent;
//! - SYNC_FLUSH: every acknowledged send is there. ASYNC_FLUSH: acknowledged sends that no
//!   quorum had fsynced yet may be gone; how many is printed (the README's bound).
//!
//! A full disk under the master: it gives up with the cause and exits non-zero, the others
//! go on, and once space is freed it is started again and catches up; nothing acknowledged
//! is lost.
//!
//! Needs `/dev/fuse` and the right to mount (root, as in CI). `POWER_LOSS_CUTS` (default 2)
//! and `POWER_LOSS_SECONDS` (default 5, load between cuts) make a longer run:
//! `POWER_LOSS_CUTS=20 cargo test -p tests --test disk_faults -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::consumer::PullStatus;
use client::PullConsumer;
use common::WAIT;
use tests::checker::{check, lost, read_all, read_at, Load, Read, SendLog};
use tests::fault_group::{mount_disks, placements, FaultGroup};
use tests::group::{wait_caught_up, wait_for_master};
use tests::powercut_fs::{CutReport, PowerCutFs};
use tests::Watchdog;

const TOPIC: &str = "PowerLossTopic";
const QUEUES: i32 = 4;
const SENDERS: usize = 4;
/// A disk's fsync latency (this machine's own disk: about 0.7 ms), so a cut finds what
/// a real one would: committed entries not yet on disk.
const FSYNC_LATENCY: Duration = Duration::from_millis(2);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What the tailing consumer read, by (queue, offset).
type Consumed = Arc<Mutex<BTreeMap<(i32, i64), Read>>>;

/// Tails every queue from the master until `stop`, recording each message it is given.
/// A queue offset it has read and finds illegal later is a message taken back: recorded.
fn tail(
    consumer: Arc<PullConsumer>,
    consumed: Consumed,
    problems: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut queues = Vec::new();
        // Bounded by the test's own deadline through `stop`.
        while queues.is_empty() && !stop.load(Ordering::Relaxed) {
            match consumer.queues(TOPIC).await {
                Ok(found) => queues = found,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let mut offsets = vec![0i64; queues.len()];
        while !stop.load(Ordering::Relaxed) {
            let mut idle = true;
            for (queue, offset) in queues.iter().zip(offsets.iter_mut()) {
                let Ok(result) = consumer.pull(queue, "*", *offset, 32).await else {
                    continue;
                };
                match result.status {
                    PullStatus::Found => {
                        idle = false;
                        let mut consumed = consumed.lock().unwrap();
                        for message in &result.messages {
                            consumed.insert(
                                (queue.queue_id, message.queue_offset),
                                Read {
                                    queue_offset: message.queue_offset,
                                    msg_id: message.msg_id().to_owned(),
                                    body: message.body_text().into_owned(),
                                },
                            );
                        }
                        *offset = result.next_begin_offset;
                    }
                    PullStatus::OffsetIllegal => problems.lock().unwrap().push(format!(
                        "queue {}: offset {} the consumer had reached became illegal",
                        queue.queue_id, *offset
                    )),
                    PullStatus::NoMatchedMsg => *offset = result.next_begin_offset,
                    PullStatus::NoNewMsg => {}
                }
            }
            if idle {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
}

/// Group `name` with member `i`'s store on `disks[i]`, serving [`TOPIC`].
async fn group_on(
    dir: &std::path::Path,
    disks: &[PowerCutFs],
    name: &str,
    extra: &[(&str, String)],
) -> FaultGroup {
    let placed = placements(dir, disks, None, disks.len());
    FaultGroup::start(dir, &placed, None, name, TOPIC, QUEUES, extra)
        .await
        .unwrap()
}

struct Outcome {
    log: SendLog,
    /// Acknowledged sends not found where their send result said, after every cut.
    lost: Vec<String>,
    cuts: Vec<CutReport>,
    /// Seconds from starting the members again to a registered master, per cut.
    recoveries: Vec<f64>,
    consumed: usize,
}

async fn whole_group_power_cuts(flush: &str) -> Option<Outcome> {
    if !PowerCutFs::available() {
        eprintln!("SKIPPED: no /dev/fuse on this machine");
        return None;
    }
    let cuts = env_u64("POWER_LOSS_CUTS").unwrap_or(2);
    let seconds = env_u64("POWER_LOSS_SECONDS").unwrap_or(5);
    let _watchdog = Watchdog::start(Duration::from_secs(300 + cuts * (seconds + 120)));
    let dir = tempfile::tempdir().unwrap();
    let mut disks = mount_disks(dir.path(), 3).unwrap();
    for disk in &disks {
        disk.set_fsync_latency(FSYNC_LATENCY);
    }
    let name = "PowerLoss";
    let flush_mode = [("flushDiskType", flush.to_owned())];
    let setup = group_on(dir.path(), &disks, name, &flush_mode).await;
    let producer = setup.producer_sending_once("power-loss-producer").unwrap();
    let FaultGroup {
        mut group,
        namesrv: _namesrv,
        options,
        admin,
        raw,
        ..
    } = setup;
    let load = Load::start(&producer, TOPIC, SENDERS);
    let consumed: Consumed = Arc::default();
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tailer = Arc::new(PullConsumer::start(options.clone(), "power-loss-tail").unwrap());
    let tailing = tail(
        Arc::clone(&tailer),
        Arc::clone(&consumed),
        Arc::clone(&problems),
        Arc::clone(&stop),
    );

    let mut reports = Vec::new();
    let mut recoveries = Vec::new();
    for cut in 0..cuts {
        load.wait_acked(load.acked() + 200, WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        // One instant for the whole group: every member frozen within microseconds, then
        // its disk, so no member fsyncs what the others already lost.
        for member in &group.members {
            member.process.pause();
        }
        let mut report = CutReport::default();
        for disk in &disks {
            let one = disk.cut_power();
            report.pages_lost += one.pages_lost;
            report.files_shortened += one.files_shortened;
        }
        for member in &mut group.members {
            member.process.kill();
        }
        for disk in &mut disks {
            report.pages_lost += disk.restore_power().unwrap();
        }
        eprintln!(
            "power cut {cut} ({flush}): {} acknowledged so far, {report:?}",
            load.acked()
        );
        reports.push(report);
        let started = Instant::now();
        for member in &mut group.members {
            member.restart().unwrap();
        }
        wait_for_master(&admin, name, None, WAIT).await.unwrap();
        recoveries.push(started.elapsed().as_secs_f64());
    }
    load.wait_acked(load.acked() + 200, WAIT).await.unwrap();
    let log = load.stop().await;
    stop.store(true, Ordering::Relaxed);
    tailing.await.unwrap();
    tailer.shutdown();

    let checker = PullConsumer::start(options.clone(), "power-loss-checker").unwrap();
    let queues = read_all(&checker, TOPIC).await.unwrap();
    checker.shutdown();

    // Every member converges on the master's queues.
    for member in &group.members {
        wait_caught_up(&raw, &admin, name, &member.addr(), TOPIC, &queues)
            .await
            .unwrap_or_else(|e| panic!("member {} did not catch up: {e:#}", member.id));
    }

    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "{problems:#?}");
    let consumed = consumed.lock().unwrap().clone();
    for ((queue_id, offset), read) in &consumed {
        assert_eq!(
            read_at(&queues, *queue_id, *offset),
            Some(read),
            "queue {queue_id} offset {offset}: the consumer read {} before a cut",
            read.body
        );
    }

    let lost = lost(&log, &queues);
    // The rest of the check holds for both modes once lost sends count as unknown outcomes.
    let mut surviving = log.clone();
    surviving.acked.retain(|a| !lost.contains(&a.body));
    surviving.unknown.extend(lost.iter().cloned());
    let report = check(&surviving, &queues).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("power loss ({flush}): {report:?}");

    assert!(
        reports.iter().any(|r| r.pages_lost > 0),
        "the cuts threw nothing away: the stores were not on the power-cut filesystem"
    );
    producer.shutdown().await;
    drop(group);
    Some(Outcome {
        log,
        lost,
        cuts: reports,
        recoveries,
        consumed: consumed.len(),
    })
}

fn print(flush: &str, outcome: &Outcome) {
    eprintln!(
        "power loss ({flush}): {} cuts, {} acknowledged, {} of them lost, {} messages read by \
         the tailing consumer and none changed; pages thrown away per cut {:?}; master again after \
         {:?} s",
        outcome.cuts.len(),
        outcome.log.acked.len(),
        outcome.lost.len(),
        outcome.consumed,
        outcome
            .cuts
            .iter()
            .map(|c| c.pages_lost)
            .collect::<Vec<_>>(),
        outcome
            .recoveries
            .iter()
            .map(|s| (s * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_flush_loses_nothing_acknowledged_when_the_whole_group_loses_power() {
    let Some(outcome) = whole_group_power_cuts("SYNC_FLUSH").await else {
        return;
    };
    print("SYNC_FLUSH", &outcome);
    assert!(
        outcome.lost.is_empty(),
        "SYNC_FLUSH lost {} acknowledged sends, e.g. {:?}",
        outcome.lost.len(),
        outcome.lost.iter().take(5).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_flush_loses_no_consumed_message_when_the_whole_group_loses_power() {
    let Some(outcome) = whole_group_power_cuts("ASYNC_FLUSH").await else {
        return;
    };
    print("ASYNC_FLUSH", &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_whose_disk_fills_up_exits_and_catches_up_once_space_is_freed() {
    if !PowerCutFs::available() {
        eprintln!("SKIPPED: no /dev/fuse on this machine");
        return;
    }
    let _watchdog = Watchdog::start(Duration::from_secs(600));
    let dir = tempfile::tempdir().unwrap();
    let disks = mount_disks(dir.path(), 3).unwrap();
    let name = "DiskFull";
    let setup = group_on(dir.path(), &disks, name, &[]).await;
    let producer = setup.producer_sending_once("disk-full-producer").unwrap();
    let FaultGroup {
        mut group,
        namesrv: _namesrv,
        options,
        admin,
        raw,
        master,
    } = setup;
    let load = Load::start(&producer, TOPIC, SENDERS);
    load.wait_acked(500, WAIT).await.unwrap();

    let full = group.index_of(&master).unwrap();
    disks[full].set_full(true);
    // It runs on in the blocks it holds until it needs new ones: a segment, a queue file,
    // a checkpoint. The load keeps it writing.
    let exit = group.members[full].process.wait_exit(WAIT);
    let output = group.members[full].process.log();
    let exit = exit.unwrap_or_else(|| panic!("the master on a full disk kept running: {output}"));
    assert!(!exit.success(), "it must exit non-zero: {exit:?}");
    assert!(
        output.contains("can no longer follow its group") && output.contains("No space left"),
        "it must say why: {output}"
    );
    let next = wait_for_master(&admin, name, Some(&master), WAIT)
        .await
        .unwrap();
    let acked_before = load.acked();
    load.wait_acked(acked_before + 500, WAIT).await.unwrap();
    eprintln!("disk full: {master} exited ({exit}); {next} took over");

    disks[full].set_full(false);
    group.members[full].restart().unwrap();
    load.wait_acked(load.acked() + 500, WAIT).await.unwrap();
    let log = load.stop().await;
    let checker = PullConsumer::start(options.clone(), "disk-full-checker").unwrap();
    let queues = read_all(&checker, TOPIC).await.unwrap();
    checker.shutdown();
    let report = check(&log, &queues).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("disk full: {report:?}");
    wait_caught_up(&raw, &admin, name, &master, TOPIC, &queues)
        .await
        .unwrap_or_else(|e| panic!("the member that was full did not catch up: {e:#}"));
    producer.shutdown().await;
    drop(group);
}
