//! Deterministic simulation of a whole broker group over the real store: each member is a
//! raft node over its real CommitLog files ([`store::raft_log::RaftLog`]) and the real
//! recovery, queue-offset stamping, dispatch and readiness code
//! ([`store::replica::ReplicaCore`]), all driven from one thread by one seeded generator
//! over a seeded network (loss, duplication, delay, partitions), with kill -9, SIGSTOP,
//! power cuts of one member or the whole group (unsynced writes lost, the last ones torn,
//! see `group_sim/disk.rs`), disks that fail (ENOSPC, EIO) in the middle of an append,
//! truncation, reset or fsync (`group_sim/faulty.rs`), bits flipping in old entries on a
//! member's disk (found by whoever reads them, repaired from another member's copy) and
//! leadership transfers.
//!
//! After every step: no (queue, offset) ever names two messages, across members and over
//! time; a member's queues never shrink while it runs; a put that failed is never
//! visible. At the end of a seed (faults healed, a probe put applied everywhere): every
//! member holds the same dense queues, everything ever visible is still there, and every
//! acknowledged put is where its acknowledgement said — always with SYNC_FLUSH; with
//! ASYNC_FLUSH unless a power cut took it, which is counted and reported.
//!
//! `GROUP_SIM_SEEDS=<n>` sets how many seeds run (default below, spread over all cores);
//! `GROUP_SIM_FIRST_SEED=<n>` starts elsewhere; `GROUP_SIM_SEED=<n>` replays one seed with
//! a trace (`-- --nocapture`). A failing seed is printed and reproduces exactly.

#[path = "../../store/tests/common/mod.rs"]
mod common;
#[path = "group_sim/disk.rs"]
mod disk;
#[path = "../../raft/tests/sim/draw.rs"]
mod draw;
#[path = "group_sim/faulty.rs"]
mod faulty;
#[path = "../../raft/tests/sim/network.rs"]
mod network;
#[path = "../../raft/tests/sim/seeds.rs"]
mod seeds;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use disk::DurableImage;
use faulty::{DiskFault, FaultyLog};
use message::MessageView;
use network::{NetParams, Network};
use raft::entry::Entry;
use raft::{
    ApplyEvent, Event, HardState, LogStorage, Membership, MembershipChange, MembershipLog, Node,
    NodeId, RaftConfig, RaftState, Role,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store::replica::{ReplicaCore, Stamps};
use store::{AcceptAll, Environment, FlushDiskType, ManualClock, ManualDiskUsage, ReplicaStatus};

const DEFAULT_SEEDS: u64 = 10_000;
const CHAOS_TICKS: u64 = 500;
const LIVENESS_TICKS: u64 = 1_000;
const TOPICS: [&str; 2] = ["SimA", "SimB"];
const QUEUES: i32 = 2;
/// Simulated milliseconds start here (store timestamps must look real).
const EPOCH_MS: i64 = 1_760_000_000_000;

type Violation = String;
/// (topic index, queue id, queue offset)
type Slot = (usize, i32, i64);

struct Up {
    node: Node<FaultyLog>,
    core: ReplicaCore,
    status: ReplicaStatus,
    stable_reported: u64,
    /// Truncations and resets of the log seen so far (each is durable when it returns).
    log_cuts: u64,
}

struct Member {
    id: NodeId,
    root: PathBuf,
    up: Option<Up>,
    durable: DurableImage,
    hard: HardState,
    membership: MembershipLog,
    restart_at: u64,
    incarnation: u64,
    paused_until: u64,
    sync_pending: bool,
    /// Per queue, how far this member's ConsumeQueue was checked since it (re)started.
    checked: BTreeMap<(usize, i32), i64>,
    /// Started: a founder, or a member a membership change added (until then its slot
    /// holds an empty directory and nothing starts it).
    joined: bool,
}

/// A put waiting for its outcome, as the broker's send processor waits.
struct PendingPut {
    member: usize,
    term: u64,
    last_index: u64,
    stamps: Stamps,
    ids: Vec<u64>,
    topic: usize,
    queue: i32,
    records: Vec<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct SeedStats {
    acked: u64,
    visible: u64,
    power_cuts: u64,
    /// Appends, truncations, resets and fsyncs a failing disk refused.
    disk_faults: u64,
    /// Acknowledged ASYNC_FLUSH puts a power cut took back.
    async_lost: u64,
    /// Entries whose bytes rotted on a member's disk, and repairs from a peer's copy.
    rotted: u64,
    repaired: u64,
}

struct Sim {
    seed: u64,
    rng: SmallRng,
    now: u64,
    raft: RaftConfig,
    sync_flush: bool,
    members: Vec<Member>,
    net: Network,
    clock: Arc<ManualClock>,
    _tmp: tempfile::TempDir,
    pending: Vec<PendingPut>,
    next_id: u64,
    /// What any member ever served at each queue slot.
    visible: BTreeMap<Slot, u64>,
    /// Where each served message was.
    served_at: BTreeMap<u64, Slot>,
    /// Acknowledged puts: message id to the slot its acknowledgement named.
    acked: BTreeMap<u64, Slot>,
    /// Messages whose put answered failure: never to be served.
    failed: BTreeSet<u64>,
    power_cut_chance: f64,
    sync_chance: f64,
    flush_chance: f64,
    torn: f64,
    power_cuts: u64,
    disk_faults: u64,
    /// Whether this seed adds and removes members while it runs.
    changes: bool,
    /// (member, entry index) of every rot so far.
    rotted: BTreeSet<(usize, u64)>,
    repaired: u64,
    /// The next slot a membership change adds.
    next_joiner: usize,
    verbose: bool,
}

fn body_id(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body.get(4..12)?).ok()?;
    body.starts_with(b"sim-").then(|| text.parse().ok())?
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Result<Sim, Violation> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let size = match rng.gen_range(0..10) {
            0 => 1,
            1..=7 => 3,
            _ => 5,
        };
        let sync_flush = rng.gen_bool(0.5);
        let raft = draw::raft_config(
            &mut rng,
            seed,
            sync_flush,
            draw::Sizes {
                batch_bytes: 2000..=8000,
                max_entry_body_bytes: 4096,
            },
        );
        let tmp = tempfile::Builder::new()
            .prefix("group-sim-")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .map_err(|e| format!("temp dir: {e}"))?;
        let ids: Vec<NodeId> = (0..size).map(NodeId).collect();
        let changes = rng.gen_bool(0.5);
        let slots = size + if changes { 2 } else { 0 };
        let members = (0..slots)
            .map(NodeId)
            .map(|id| Member {
                id,
                root: tmp.path().join(format!("m{}", id.0)),
                up: None,
                durable: DurableImage::default(),
                hard: HardState::default(),
                membership: MembershipLog::bootstrap(Membership::of_voters(&ids)),
                restart_at: 0,
                incarnation: 0,
                paused_until: 0,
                sync_pending: false,
                checked: BTreeMap::new(),
                joined: id.0 < size,
            })
            .collect();
        let net = Network::new(
            slots as usize,
            NetParams {
                drop_per_mille: rng.gen_range(0..=80),
                dup_per_mille: rng.gen_range(0..=40),
                max_delay_ticks: rng.gen_range(1..=3),
                spike_per_mille: rng.gen_range(0..=20),
                spike_delay_ticks: 20,
            },
        );
        let mut sim = Sim {
            seed,
            power_cut_chance: if rng.gen_bool(0.8) { 0.5 } else { 0.0 },
            sync_chance: rng.gen_range(0.05..0.9),
            flush_chance: rng.gen_range(0.005..0.05),
            torn: if rng.gen_bool(0.5) {
                0.0
            } else {
                rng.gen_range(0.1..0.6)
            },
            rng,
            now: 0,
            raft,
            sync_flush,
            members,
            net,
            clock: ManualClock::new(EPOCH_MS, 12),
            _tmp: tmp,
            pending: Vec::new(),
            next_id: 0,
            visible: BTreeMap::new(),
            served_at: BTreeMap::new(),
            acked: BTreeMap::new(),
            failed: BTreeSet::new(),
            power_cuts: 0,
            disk_faults: 0,
            changes,
            rotted: BTreeSet::new(),
            repaired: 0,
            next_joiner: size as usize,
            verbose,
        };
        for i in 0..size as usize {
            sim.start(i)?;
        }
        Ok(sim)
    }

    fn note(&self, what: impl FnOnce() -> String) {
        if self.verbose {
            eprintln!("[seed {} t={}] {}", self.seed, self.now, what());
        }
    }

    fn store_config(&self, i: usize) -> store::StoreConfig {
        let mut c = common::small_config(&self.members[i].root);
        c.mapped_file_size_commit_log = 32 * 1024;
        c.max_message_size = 2048;
        c.flush_disk_type = if self.sync_flush {
            FlushDiskType::SyncFlush
        } else {
            FlushDiskType::AsyncFlush
        };
        c
    }

    /// Opens member `i`'s files (recovery) and starts its raft node.
    fn start(&mut self, i: usize) -> Result<(), Violation> {
        let config = self.store_config(i);
        let env = Environment {
            clock: Arc::clone(&self.clock) as Arc<dyn store::Clock>,
            disk: ManualDiskUsage::new(0.1),
        };
        let id = self.members[i].id;
        let (core, recovery) = ReplicaCore::open(config, id, None, env)
            .map_err(|e| format!("{id}: recovery failed: {e}"))?;
        if self.verbose {
            let reader = core.reader();
            let queues: Vec<i64> = (0..TOPICS.len())
                .flat_map(|t| (0..QUEUES).map(move |q| (t, q)))
                .map(|(t, q)| reader.max_offset(TOPICS[t], q))
                .collect();
            self.note(|| format!("{id} recovered {recovery:?}, queues {queues:?}"));
        }
        // Opening flushes what recovery kept.
        let root = self.members[i].root.clone();
        self.members[i]
            .durable
            .synced(&root)
            .map_err(|e| format!("{id}: reading files: {e}"))?;
        let member = &mut self.members[i];
        member.incarnation += 1;
        let mut raft = self.raft.clone();
        raft.random_seed = self.seed ^ u64::from(id.0) << 32 ^ member.incarnation << 48;
        let node = Node::restore(
            id,
            member.membership.clone(),
            raft,
            FaultyLog::new(core.raft_log()),
            member.hard,
        )
        .map_err(|e| format!("{id}: raft restore failed: {e}"))?;
        let mut core = core;
        let status = core.refresh(&RaftState::of(&node));
        member.up = Some(Up {
            log_cuts: node.log_cuts(),
            node,
            core,
            status,
            stable_reported: 0,
        });
        member.checked.clear();
        member.sync_pending = false;
        self.note(|| format!("start {id}"));
        self.after_step(i)
    }

    fn run(mut self) -> Result<SeedStats, Violation> {
        let summary = format!(
            "{} members, sync_flush={}, power cuts={}, torn={:.2}, pre_vote={}, check_quorum={}",
            self.members.len(),
            self.sync_flush,
            self.power_cut_chance,
            self.torn,
            self.raft.pre_vote,
            self.raft.check_quorum
        );
        self.note(|| summary);
        for _ in 0..CHAOS_TICKS {
            self.chaos()?;
            self.maybe_put()?;
            self.step_time()?;
        }
        self.heal()?;
        let mut probe: Option<(usize, u64, u64)> = None;
        for _ in 0..LIVENESS_TICKS {
            self.step_time()?;
            match probe {
                Some((at, term, index)) => {
                    let in_force = self.voters_of(at);
                    let everyone = in_force.iter().all(|&m| {
                        self.members[m]
                            .up
                            .as_ref()
                            .is_some_and(|up| up.core.next_apply_index() > index)
                    });
                    // Every member also read every message back (rotted ones repaired).
                    let read_all = in_force.iter().all(|&m| self.read_everything(m));
                    if everyone && read_all {
                        return self.final_check(&in_force);
                    }
                    let still = self.members[at]
                        .up
                        .as_ref()
                        .is_some_and(|up| up.node.role() == Role::Leader && up.node.term() == term);
                    if !still {
                        probe = None;
                    }
                }
                None => {
                    if let Some(i) = self.writable_leader() {
                        if let Some((term, index)) = self.put_at(i)? {
                            probe = Some((i, term, index));
                        }
                    }
                }
            }
        }
        Err(format!(
            "liveness: no put applied on every member within {LIVENESS_TICKS} ticks after healing ({})",
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        self.members
            .iter()
            .map(|m| match &m.up {
                Some(up) => format!(
                    "{}:{:?}@{} writable={} commit={} safe={} last={} applied={} {:?}",
                    m.id,
                    up.node.role(),
                    up.node.term(),
                    up.status.writable,
                    up.node.commit_index(),
                    up.node.safe_index(),
                    up.node.last_index(),
                    up.core.next_apply_index() - 1,
                    up.node.status()
                ),
                None => format!("{}:down", m.id),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The voters of member `i`'s membership (every joined member when it is down).
    fn voters_of(&self, i: usize) -> Vec<usize> {
        match self.members[i].up.as_ref() {
            Some(up) => up
                .node
                .membership()
                .voters()
                .map(|id| id.0 as usize)
                .collect(),
            None => (0..self.members.len())
                .filter(|&m| self.members[m].joined)
                .collect(),
        }
    }

    /// The leader adds the next unused slot or removes another member, as an operator would
    /// with mqadmin: the added member starts with the group's members and itself as peers.
    fn change_membership(&mut self) -> Result<(), Violation> {
        let Some(l) = self.members.iter().position(|m| {
            m.paused_until <= self.now
                && m.up
                    .as_ref()
                    .is_some_and(|up| up.node.role() == Role::Leader)
        }) else {
            return Ok(());
        };
        let Some(up) = self.members[l].up.as_ref() else {
            return Ok(());
        };
        let peers: Vec<NodeId> = up
            .node
            .membership()
            .members()
            .iter()
            .map(|m| m.id)
            .collect();
        let leader_id = up.node.id();
        let others: Vec<NodeId> = peers
            .iter()
            .copied()
            .filter(|&id| id != leader_id)
            .collect();
        let add =
            self.next_joiner < self.members.len() && (others.is_empty() || self.rng.gen_bool(0.5));
        let change = if add {
            let id = NodeId(self.next_joiner as u32);
            MembershipChange::Add {
                id,
                addr: format!("sim:{}", id.0),
            }
        } else if let Some(&victim) = others.get(self.rng.gen_range(0..others.len().max(1))) {
            MembershipChange::Remove(victim)
        } else {
            return Ok(());
        };
        let Some(up) = self.members[l].up.as_mut() else {
            return Ok(());
        };
        let result = up.node.propose_membership(change.clone());
        let tripped = up.node.storage().tripped();
        self.note(|| format!("{l} proposes {change:?}: {result:?}"));
        if self.proposal_failed_disk(l, result.is_ok(), tripped)? {
            return Ok(());
        }
        if add && result.is_ok() {
            let j = self.next_joiner;
            self.next_joiner += 1;
            let mut with_joiner = peers;
            with_joiner.push(NodeId(j as u32));
            let joiner = &mut self.members[j];
            joiner.membership = MembershipLog::bootstrap(Membership::of_voters(&with_joiner));
            joiner.joined = true;
            joiner.restart_at = self.now;
        }
        Ok(())
    }

    /// After a proposal on member `i`: whether the disk failed under it (the member then
    /// stops). A refused proposal is otherwise normal (not leader, busy, a change pending).
    fn proposal_failed_disk(
        &mut self,
        i: usize,
        accepted: bool,
        tripped: Option<DiskFault>,
    ) -> Result<bool, Violation> {
        match (tripped, accepted) {
            (None, _) => Ok(false),
            (Some(fault), false) => {
                self.disk_failed(i, fault, "proposal")?;
                Ok(true)
            }
            (Some(fault), true) => Err(format!(
                "{}: a proposal was taken after its disk failed ({fault:?})",
                self.members[i].id
            )),
        }
    }

    fn writable_leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            m.paused_until <= self.now
                && m.up
                    .as_ref()
                    .is_some_and(|up| up.status.writable && up.node.role() == Role::Leader)
        })
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.note(|| "heal: restart all, reconnect, no more loss or disk faults".to_string());
        self.net.heal();
        self.net.faults = false;
        for i in 0..self.members.len() {
            self.members[i].paused_until = 0;
            if let Some(up) = self.members[i].up.as_mut() {
                up.node.storage_mut().disarm();
            }
            if self.members[i].joined && self.members[i].up.is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    fn chaos(&mut self) -> Result<(), Violation> {
        let size = self.members.len();
        match self.rng.gen_range(0..1000) {
            0..=4 => {
                let i = self.rng.gen_range(0..size);
                self.crash(i)?;
            }
            5..=9 => {
                let i = self.rng.gen_range(0..size);
                let ticks = self.rng.gen_range(5..60);
                self.members[i].paused_until = self.now + ticks;
                self.note(|| format!("pause {i} for {ticks} ticks"));
            }
            10..=17 if size > 1 => {
                let what = self.net.random_partition(&mut self.rng, size);
                self.note(|| what);
            }
            18..=19 if size > 1 => {
                let what = self.net.random_one_way_cut(&mut self.rng, size);
                self.note(|| what);
            }
            20..=35 => {
                self.net.heal();
                self.note(|| "network healed".to_string());
            }
            36..=38 => {
                let i = self.rng.gen_range(0..size);
                let target = NodeId(self.rng.gen_range(0..size as u32));
                if let Some(up) = self.members[i].up.as_mut() {
                    let _ = up.node.transfer_leadership(target);
                }
            }
            39..=41 if self.changes => self.change_membership()?,
            // Only where other members keep a copy for sure: with SYNC_FLUSH (no power cut
            // takes back a committed entry) and a fixed membership.
            46..=48 if self.sync_flush && !self.changes => self.rot()?,
            42..=45 => {
                let i = self.rng.gen_range(0..size);
                let fault = if self.rng.gen_bool(0.5) {
                    DiskFault::NoSpace
                } else {
                    DiskFault::Eio
                };
                if let Some(up) = self.members[i].up.as_mut() {
                    up.node.storage_mut().arm(fault);
                    self.note(|| format!("disk of {i} fails next: {fault:?}"));
                }
            }
            999 => {
                // The whole group at once: with power cuts, a power failure of the room.
                for i in 0..size {
                    self.crash(i)?;
                }
            }
            _ => {}
        }
        for i in 0..size {
            let member = &self.members[i];
            if member.joined && member.up.is_none() && self.now >= member.restart_at {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// A bit flips in an old entry on a running member's disk: one it applied, below its
    /// log's checkpoint, that another member holds too and that never rotted elsewhere.
    fn rot(&mut self) -> Result<(), Violation> {
        if self.members.iter().any(|m| m.joined && m.up.is_none()) {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.members.len());
        let Some(up) = self.members[i].up.as_ref() else {
            return Ok(());
        };
        let status = up.node.status();
        let last = status
            .commit_index
            .min(status.persisted_index)
            .min(up.core.next_apply_index().saturating_sub(1));
        if last < status.first_index {
            return Ok(());
        }
        let index = self.rng.gen_range(status.first_index..=last);
        let Ok(Some(term)) = up.node.storage().term(index) else {
            return Ok(());
        };
        let held_elsewhere = self.members.iter().enumerate().any(|(j, m)| {
            j != i
                && m.up
                    .as_ref()
                    .is_some_and(|o| o.node.storage().term(index).ok().flatten() == Some(term))
        });
        if !held_elsewhere || self.rotted.iter().any(|(_, r)| *r == index) {
            return Ok(());
        }
        let log = up.node.storage().inner().commit_log();
        let Some(loc) = log.location(index) else {
            return Ok(());
        };
        // Old segments: recovery takes a bad frame past the checkpoint for a torn end.
        if loc.end() > log.checkpointed_pos() {
            return Ok(());
        }
        let segment_start = loc.pos - loc.pos % log.segment_len();
        let path = log
            .dir()
            .join("data")
            .join(store::segment::file_name(segment_start));
        // Mostly in the body, sometimes in the header.
        let within = self.rng.gen_range(0..u64::from(loc.size));
        let at = loc.pos - segment_start + within;
        let mask = 1u8 << self.rng.gen_range(0..8);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("rot {}: {e}", path.display()))?;
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, at)
            .and_then(|()| {
                byte[0] ^= mask;
                std::os::unix::fs::FileExt::write_all_at(&file, &byte, at)
            })
            .map_err(|e| format!("rot {}: {e}", path.display()))?;
        let member = &mut self.members[i];
        member.durable.rot(&path, at as usize, mask);
        // Readers come back to every message, as consumers catching up would.
        member.checked.clear();
        self.rotted.insert((i, index));
        self.note(|| format!("entry {index} rots on {i} (byte {within} of its frame)"));
        Ok(())
    }

    /// Kills member `i` (or, when it is already down after a kill -9, leaves it down), and
    /// maybe cuts its power too: then its page cache is gone as well.
    fn crash(&mut self, i: usize) -> Result<(), Violation> {
        self.crash_with(i, false)
    }

    /// [`Sim::crash`], with the power cut certain when `power_cut`.
    fn crash_with(&mut self, i: usize, power_cut: bool) -> Result<(), Violation> {
        if !self.members[i].joined {
            return Ok(());
        }
        // Dropping the member's objects is a kill -9: the files keep what it wrote.
        let was_up = self.members[i].up.take().is_some();
        let power = power_cut || self.rng.gen_bool(self.power_cut_chance);
        if !was_up && !power {
            return Ok(());
        }
        if power {
            self.power_cuts += 1;
            let root = self.members[i].root.clone();
            let lost = self.members[i]
                .durable
                .power_cut(&root, &mut self.rng, self.torn)
                .map_err(|e| format!("power cut: {e}"))?;
            self.note(|| format!("power cut {i}: {lost} pages lost"));
        }
        let down_for = self.rng.gen_range(5..80);
        let member = &mut self.members[i];
        member.restart_at = member.restart_at.max(self.now + down_for);
        member.sync_pending = false;
        self.note(|| format!("crash {i} (power cut: {power}) for {down_for} ticks"));
        Ok(())
    }

    /// Judges what member `i`'s node did with an operation: a disk fault it ran into stops
    /// the member as its broker would stop (`None`); any other error, or a disk fault the
    /// node went on past, is a violation.
    fn after_op<T>(
        &mut self,
        i: usize,
        what: &str,
        result: Result<T, impl std::fmt::Display>,
    ) -> Result<Option<T>, Violation> {
        let tripped = self.members[i]
            .up
            .as_ref()
            .and_then(|up| up.node.storage().tripped());
        match (result, tripped) {
            (Ok(value), None) => Ok(Some(value)),
            (Err(e), Some(fault)) => {
                self.disk_failed(i, fault, &e.to_string())?;
                Ok(None)
            }
            (Ok(_), Some(fault)) => Err(format!(
                "{}: {what} went on after its disk failed ({fault:?})",
                self.members[i].id
            )),
            (Err(e), None) => Err(format!("{}: {what} failed: {e}", self.members[i].id)),
        }
    }

    /// Member `i`'s disk refused a write or an fsync: its raft node stopped, so its broker
    /// exits and is restarted. After a failed fsync the page cache is no longer trusted.
    fn disk_failed(&mut self, i: usize, fault: DiskFault, error: &str) -> Result<(), Violation> {
        self.disk_faults += 1;
        self.note(|| format!("disk of {i} failed ({fault:?}): {error}"));
        self.crash_with(i, fault == DiskFault::Eio)
    }

    fn maybe_put(&mut self) -> Result<(), Violation> {
        if !self.rng.gen_bool(0.3) {
            return Ok(());
        }
        if let Some(i) = self.writable_leader() {
            self.put_at(i)?;
        }
        Ok(())
    }

    /// Puts one to three messages (a batch) to one queue through member `i`, as the send
    /// processor does; returns the term and last index when the raft node took them.
    fn put_at(&mut self, i: usize) -> Result<Option<(u64, u64)>, Violation> {
        let count = self.rng.gen_range(1..=3);
        let topic = self.rng.gen_range(0..TOPICS.len());
        let queue = self.rng.gen_range(0..QUEUES);
        let mut ids = Vec::new();
        let mut records = Vec::new();
        for _ in 0..count {
            let id = self.next_id;
            self.next_id += 1;
            let mut body = format!("sim-{id:08}-").into_bytes();
            body.resize(self.rng.gen_range(16..=300), b'x');
            records.push(common::record(TOPICS[topic], queue, &body));
            ids.push(id);
        }
        let now_ms = store::Clock::now_ms(&*self.clock);
        let Some(up) = self.members[i].up.as_mut() else {
            return Ok(None);
        };
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let (proposals, stamps) = up
            .core
            .stamp(&refs, now_ms)
            .map_err(|e| format!("stamping valid records failed: {e}"))?;
        let proposed = up.node.propose(proposals);
        let tripped = up.node.storage().tripped();
        let accepted = proposed.is_ok();
        let Ok(places) = proposed else {
            // Refused whole (busy, not leader, the disk failed): nothing was written.
            for id in ids {
                self.failed.insert(id);
            }
            self.proposal_failed_disk(i, accepted, tripped)?;
            return Ok(None);
        };
        if self.proposal_failed_disk(i, accepted, tripped)? {
            return Ok(None);
        }
        let Some(last) = places.last().copied() else {
            return Ok(None);
        };
        self.pending.push(PendingPut {
            member: i,
            term: last.term,
            last_index: last.index,
            stamps,
            ids,
            topic,
            queue,
            records,
        });
        self.after_step(i)?;
        Ok(Some((last.term, last.index)))
    }

    fn step_time(&mut self) -> Result<(), Violation> {
        let mut delivered = 0;
        while let Some(msg) = self.net.pop_due(self.now) {
            delivered += 1;
            if delivered > 100_000 {
                return Err("network never drains".to_string());
            }
            let to = msg.to.0 as usize;
            let until = self.members.get(to).map_or(0, |m| m.paused_until);
            if until > self.now {
                self.net.hold(&mut self.rng, until, msg);
                continue;
            }
            if self.verbose && std::env::var("GROUP_SIM_MESSAGES").is_ok() {
                let line = match &msg.payload {
                    raft::message::Payload::Append(a) => format!(
                        "Append seq={} prev={}@{:?} commit={} restart={} entries={}",
                        a.seq,
                        a.prev_index,
                        a.prev_term,
                        a.commit_index,
                        a.restart,
                        a.entries.len()
                    ),
                    other => format!("{other:?}"),
                };
                let (from, to, term) = (msg.from, msg.to, msg.term);
                self.note(|| format!("{from} -> {to} t{term}: {line}"));
            }
            let Some(up) = self.members.get_mut(to).and_then(|m| m.up.as_mut()) else {
                continue;
            };
            let result = up.node.step(msg);
            if self.after_op(to, "step", result)?.is_some() {
                self.after_step(to)?;
            }
        }
        for i in 0..self.members.len() {
            if self.members[i].paused_until > self.now {
                continue;
            }
            if let Some(up) = self.members[i].up.as_mut() {
                let result = up.node.tick();
                if self.after_op(i, "tick", result)?.is_some() {
                    self.after_step(i)?;
                }
            }
        }
        for i in 0..self.members.len() {
            if self.members[i].paused_until > self.now || self.members[i].up.is_none() {
                continue;
            }
            if self.members[i].sync_pending && self.rng.gen_bool(self.sync_chance) {
                self.sync(i)?;
            }
            if self.rng.gen_bool(self.flush_chance) {
                self.flush(i)?;
            }
        }
        self.now += 1;
        self.clock.set_ms(EPOCH_MS + self.now as i64);
        Ok(())
    }

    /// The raft log's fsync completes.
    fn sync(&mut self, i: usize) -> Result<(), Violation> {
        let member = &mut self.members[i];
        member.sync_pending = false;
        let Some(up) = member.up.as_mut() else {
            return Ok(());
        };
        let index = up.node.last_index();
        let term = up.node.last_term().map_err(|e| e.to_string())?;
        let result = up.node.storage_mut().sync();
        if self.after_op(i, "log fsync", result)?.is_none() {
            return Ok(());
        }
        let member = &mut self.members[i];
        let Some(up) = member.up.as_mut() else {
            return Ok(());
        };
        let log_dir = up.node.storage().inner().commit_log().dir().to_path_buf();
        member
            .durable
            .synced(&log_dir)
            .map_err(|e| format!("reading files: {e}"))?;
        up.node
            .on_persisted(index, term)
            .map_err(|e| e.to_string())?;
        self.after_step(i)
    }

    /// The store's flush-and-checkpoint step, as its background threads run it.
    fn flush(&mut self, i: usize) -> Result<(), Violation> {
        let member = &mut self.members[i];
        let Some(up) = member.up.as_ref() else {
            return Ok(());
        };
        up.core
            .flush()
            .map_err(|e| format!("{}: flush: {e}", member.id))?;
        let root = member.root.clone();
        member
            .durable
            .synced(&root)
            .map_err(|e| format!("reading files: {e}"))
    }

    /// Handles member `i`'s Ready as the raft driver does, applies what may be applied as
    /// the apply loop does, then checks what the member serves.
    fn after_step(&mut self, i: usize) -> Result<(), Violation> {
        let now = self.now;
        let member = &mut self.members[i];
        let id = member.id;
        let Some(up) = member.up.as_mut() else {
            return Ok(());
        };
        let ready = up
            .node
            .take_ready()
            .map_err(|e| format!("{id}: take_ready: {e}"))?;
        if let Some(hs) = ready.hard_state {
            member.hard = hs;
        }
        if let Some(membership) = ready.membership {
            member.membership = membership;
        }
        for msg in ready.messages {
            self.net.send(&mut self.rng, now, msg);
        }
        if ready.sync_needed {
            member.sync_pending = true;
        }
        if up.node.log_cuts() != up.log_cuts {
            up.log_cuts = up.node.log_cuts();
            // A cut writes the log's checkpoint and fsyncs the entry index and the segment
            // it ends in before it returns.
            let log = up.node.storage().inner().commit_log();
            let dir = log.dir().to_path_buf();
            let end = log.write_pos();
            let segment = dir
                .join("data")
                .join(store::segment::file_name(end - end % log.segment_len()));
            for synced in [dir.join("checkpoint"), dir.join("index"), segment] {
                member
                    .durable
                    .synced(&synced)
                    .map_err(|e| format!("reading files: {e}"))?;
            }
        }
        for event in ready.events {
            if let Event::EntryRepaired { index, from } = event {
                self.repaired += 1;
                if !self.rotted.contains(&(i, index)) {
                    return Err(format!("{id}: repaired entry {index}, which never rotted"));
                }
                // The repair fdatasyncs the segment it wrote into.
                let log = up.node.storage().inner().commit_log();
                if let Some(loc) = log.location(index) {
                    let segment = log.dir().join("data").join(store::segment::file_name(
                        loc.pos - loc.pos % log.segment_len(),
                    ));
                    member
                        .durable
                        .synced(&segment)
                        .map_err(|e| format!("reading files: {e}"))?;
                }
                if self.verbose {
                    eprintln!(
                        "[seed {} t={now}] {id} repaired entry {index} from {from}",
                        self.seed
                    );
                }
            }
            if let Event::LogRestarted {
                next_index,
                next_pos,
            } = event
            {
                if up.core.next_apply_index() < next_index {
                    up.core
                        .apply(ApplyEvent::LogRestarted {
                            next_index,
                            next_pos,
                        })
                        .map_err(|e| format!("{id}: log restart: {e}"))?;
                }
            }
        }
        apply_committed(up).map_err(|e| format!("{id}: {e}"))?;
        up.status = up.core.refresh(&RaftState::of(&up.node));
        self.settle_puts()?;
        self.check_queues(i)
    }

    /// Answers the puts whose outcome is known, as `ReplicatedStore::put_messages` does.
    fn settle_puts(&mut self) -> Result<(), Violation> {
        let mut k = 0;
        while k < self.pending.len() {
            let p = &self.pending[k];
            let state = self.members[p.member].up.as_ref().map(|up| {
                (
                    up.node.role() == Role::Leader && up.node.term() == p.term,
                    up.node.commit_index() >= p.last_index,
                    up.core.next_apply_index() > p.last_index,
                )
            });
            match state {
                Some((true, true, applied)) if applied || !self.sync_flush => {}
                Some((true, _, _)) => {
                    k += 1;
                    continue;
                }
                // Leadership or the process lost: the producer learns nothing.
                _ => {
                    self.pending.swap_remove(k);
                    continue;
                }
            }
            let p = self.pending.swap_remove(k);
            let refs: Vec<&[u8]> = p.records.iter().map(Vec::as_slice).collect();
            match p.stamps.results(&refs) {
                Ok(results) => {
                    for (id, result) in p.ids.iter().zip(results) {
                        self.acked
                            .insert(*id, (p.topic, p.queue, result.queue_offset));
                    }
                }
                Err(_) => self.failed.extend(p.ids.iter().copied()),
            }
        }
        Ok(())
    }

    /// Reads what member `i` newly serves and holds it against everything ever served.
    fn check_queues(&mut self, i: usize) -> Result<(), Violation> {
        let member = &mut self.members[i];
        let Some(up) = member.up.as_ref() else {
            return Ok(());
        };
        let reader = up.core.reader();
        for (topic, name) in TOPICS.iter().enumerate() {
            for queue in 0..QUEUES {
                let checked = member.checked.entry((topic, queue)).or_insert(0);
                let max = reader.max_offset(name, queue);
                if max < *checked {
                    return Err(format!(
                        "{}: {}:{queue} shrank from {} to {max} while running",
                        member.id, name, *checked
                    ));
                }
                // Bounded: each round reads at least one entry or stops.
                while *checked < max {
                    let got = reader.get_messages(name, queue, *checked, 32, None, &AcceptAll);
                    let rotted_here = self.rotted.iter().any(|(m, _)| *m == i);
                    if got.messages.is_empty()
                        && got.status == store::GetMessageStatus::MessageWasRemoving
                        && rotted_here
                    {
                        // A rotted message, reported for repair: read again later.
                        break;
                    }
                    if got.messages.is_empty() {
                        return Err(format!(
                            "{}: {}:{queue} offset {} below max {max} reads nothing ({:?})",
                            member.id, name, *checked, got.status
                        ));
                    }
                    for (record, offset) in got.messages.iter().zip(&got.queue_offsets) {
                        if *offset != *checked {
                            return Err(format!(
                                "{}: {}:{queue} hole: expected offset {}, read {offset}",
                                member.id, name, *checked
                            ));
                        }
                        let view = MessageView::parse(record)
                            .map_err(|e| format!("{}: unreadable record: {e}", member.id))?;
                        let Some(id) = body_id(view.body()) else {
                            return Err(format!("{}: a record of no put", member.id));
                        };
                        let slot = (topic, queue, *offset);
                        if view.queue_offset() != *offset
                            || view.topic() != *name
                            || view.queue_id() != queue
                        {
                            return Err(format!(
                                "{}: message {id} at {slot:?} says {}:{}@{}",
                                member.id,
                                view.topic(),
                                view.queue_id(),
                                view.queue_offset()
                            ));
                        }
                        if self.failed.contains(&id) {
                            return Err(format!(
                                "{}: message {id} of a failed put is served at {slot:?}",
                                member.id
                            ));
                        }
                        let before = *self.visible.entry(slot).or_insert(id);
                        if before != id {
                            return Err(format!(
                                "{}: {slot:?} serves message {id}; it served {before} before",
                                member.id
                            ));
                        }
                        let at = *self.served_at.entry(id).or_insert(slot);
                        if at != slot {
                            return Err(format!(
                                "{}: message {id} served at {slot:?} and at {at:?}",
                                member.id
                            ));
                        }
                        *checked += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every member in force serves the same dense queues holding everything ever served,
    /// and every acknowledged put. (A removed member was checked while it ran.)
    /// Whether member `m`'s checks read every queue to its end.
    fn read_everything(&self, m: usize) -> bool {
        let member = &self.members[m];
        let Some(up) = member.up.as_ref() else {
            return false;
        };
        let reader = up.core.reader();
        TOPICS.iter().enumerate().all(|(topic, name)| {
            (0..QUEUES).all(|queue| {
                member.checked.get(&(topic, queue)).copied().unwrap_or(0)
                    == reader.max_offset(name, queue)
            })
        })
    }

    fn final_check(self, in_force: &[usize]) -> Result<SeedStats, Violation> {
        let mut stats = SeedStats {
            acked: self.acked.len() as u64,
            visible: self.visible.len() as u64,
            power_cuts: self.power_cuts,
            disk_faults: self.disk_faults,
            async_lost: 0,
            rotted: self.rotted.len() as u64,
            repaired: self.repaired,
        };
        for member in in_force.iter().map(|&m| &self.members[m]) {
            let Some(up) = member.up.as_ref() else {
                return Err(format!("{}: down at the end", member.id));
            };
            let reader = up.core.reader();
            for (topic, name) in TOPICS.iter().enumerate() {
                for queue in 0..QUEUES {
                    let max = reader.max_offset(name, queue);
                    let checked = member.checked.get(&(topic, queue)).copied().unwrap_or(0);
                    if checked != max {
                        return Err(format!(
                            "{}: {}:{queue} checked to {checked} of {max}",
                            member.id, name
                        ));
                    }
                    let served = self
                        .visible
                        .range((topic, queue, 0)..(topic, queue, i64::MAX))
                        .count() as i64;
                    if served != max {
                        return Err(format!(
                            "{}: {}:{queue} holds {max} messages; the group served {served}",
                            member.id, name
                        ));
                    }
                }
            }
        }
        for (id, slot) in &self.acked {
            if self.visible.get(slot) != Some(id) {
                if self.sync_flush || self.power_cuts == 0 {
                    return Err(format!(
                        "acknowledged message {id} at {slot:?} is gone (there: {:?})",
                        self.visible.get(slot)
                    ));
                }
                stats.async_lost += 1;
            }
        }
        Ok(stats)
    }
}

/// Hands the member's store what raft lets it apply, in batches, as the driver does.
fn apply_committed(up: &mut Up) -> Result<(), String> {
    let limit = up.node.apply_limit();
    // Bounded: each round applies at least one entry or stops.
    for _ in 0..100_000 {
        let next = up.core.next_apply_index();
        if next > limit {
            break;
        }
        let frames = match up.node.storage().read(next, 16, 1 << 20) {
            Ok(frames) => frames,
            // Applying waits for the repair, as the driver does.
            Err(raft::StorageError::DamagedEntry { index, .. }) => {
                up.node.on_damaged_entry(index);
                break;
            }
            Err(e) => return Err(format!("apply read at {next}: {e}")),
        };
        let entries = frames
            .iter()
            .map(Entry::decode_stored)
            .filter(|e| e.as_ref().map_or(true, |e| e.index <= limit))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("apply decode at {next}: {e}"))?;
        if entries.first().map(|e| e.index) != Some(next) {
            return Err(format!("nothing to apply at {next} below limit {limit}"));
        }
        up.core
            .apply(ApplyEvent::Entries(entries))
            .map_err(|e| format!("apply: {e}"))?;
    }
    if limit > up.stable_reported {
        up.stable_reported = limit;
        up.node.storage_mut().committed(limit);
    }
    Ok(())
}

fn run_seed(seed: u64, verbose: bool) -> Result<SeedStats, String> {
    seeds::catching(|| Sim::new(seed, verbose)?.run())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn simulated_groups_over_the_real_store_lose_nothing_acknowledged() {
    if let Some(seed) = env_u64("GROUP_SIM_SEED") {
        match run_seed(seed, true) {
            Ok(stats) => eprintln!("seed {seed} passed: {stats:?}"),
            Err(e) => panic!(
                "seed {seed} failed: {e}\nreplay: GROUP_SIM_SEED={seed} cargo test -p broker --test group_sim -- --nocapture"
            ),
        }
        return;
    }
    let seeds = env_u64("GROUP_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("GROUP_SIM_FIRST_SEED").unwrap_or(0);
    let started = std::time::Instant::now();
    let (totals, failures) = seeds::run_seeds(
        first,
        seeds,
        |seed| run_seed(seed, false),
        |t: &mut SeedStats, stats| {
            t.acked += stats.acked;
            t.visible += stats.visible;
            t.power_cuts += stats.power_cuts;
            t.disk_faults += stats.disk_faults;
            t.async_lost += stats.async_lost;
            t.rotted += stats.rotted;
            t.repaired += stats.repaired;
        },
    );
    eprintln!(
        "{seeds} seeds from {first} in {:.1?}: {totals:?}",
        started.elapsed()
    );
    if let Some((seed, e)) = failures.first() {
        panic!(
            "{} of {seeds} seeds failed; first: seed {seed}: {e}\nreplay: GROUP_SIM_SEED={seed} cargo test -p broker --test group_sim -- --nocapture",
            failures.len()
        );
    }
}
