//! Deterministic simulation of a raft group in one thread: every choice (timings, faults,
//! message fates, proposals) comes from one seeded generator, so a seed replays exactly.

pub mod checker;
pub mod draw;
pub mod network;
pub mod seeds;

use raft::entry::{Entry, EntryKind};
use raft::{
    EntryPlace, Event, HardState, LogStorage, MemLog, Membership, MembershipChange, MembershipLog,
    Node, NodeId, Proposal, RaftConfig, Role, StorageError,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use checker::{Checker, Violation};
use network::{NetParams, Network};

/// Ticks of chaos (faults on), then at most this many ticks for the healed group to elect a
/// leader and commit.
const CHAOS_TICKS: u64 = 1500;
const LIVENESS_TICKS: u64 = 600;

struct SimNode {
    id: NodeId,
    node: Option<Node<MemLog>>,
    /// The disk of a crashed node.
    disk: Option<MemLog>,
    hard: HardState,
    /// The membership records as last persisted, and the peer list it was started with.
    membership: MembershipLog,
    restart_at: u64,
    incarnation: u64,
    applied: u64,
    commit_seen: u64,
    leader_terms_seen: Option<u64>,
    sync_pending: bool,
    /// A paused process (SIGSTOP, a long GC): no ticks, no messages, state kept.
    paused_until: u64,
    /// Started: a founder, or a node a membership change added (until then its slot holds
    /// an empty disk and nothing restarts it).
    joined: bool,
}

/// A proposal waiting for its commit, as a client would.
struct Pending {
    node: usize,
    term: u64,
    place: EntryPlace,
    body_crc: u32,
}

pub struct Sim {
    seed: u64,
    rng: SmallRng,
    now: u64,
    config: RaftConfig,
    members: Vec<NodeId>,
    /// Slots for nodes that membership changes add; a slot is used once.
    nodes: Vec<SimNode>,
    next_joiner: usize,
    /// Whether this seed changes the membership while it runs.
    changes: bool,
    /// Voters of each durably committed membership, by the index of the entry that set it
    /// (0: the founders).
    committed_voters: std::collections::BTreeMap<u64, Vec<NodeId>>,
    /// Voters of every membership any node ever appended (a power cut may take the entry
    /// back, but a leader may have counted a majority of it meanwhile).
    appended_voters: Vec<(u64, Vec<NodeId>)>,
    net: Network,
    checker: Checker,
    pending: Vec<Pending>,
    acked: u64,
    rotted: u64,
    repaired: u64,
    /// Share of crashes that are power cuts (unsynced writes lost) rather than kill -9.
    power_cut_chance: f64,
    /// Chance per tick that a pending fsync completes (slow disks make long windows).
    sync_chance: f64,
    verbose: bool,
}

/// What one seed did, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct SeedStats {
    pub committed: u64,
    pub acked: u64,
    pub leaders: u64,
    /// Entries that rotted on a disk, and repairs from a peer's copy.
    pub rotted: u64,
    pub repaired: u64,
}

impl Sim {
    pub fn new(seed: u64, verbose: bool) -> Sim {
        let mut rng = SmallRng::seed_from_u64(seed);
        let size = match rng.gen_range(0..10) {
            0 => 1,
            1..=6 => 3,
            _ => 5,
        };
        let sync_flush = rng.gen_bool(0.5);
        let mut config = draw::raft_config(
            &mut rng,
            seed,
            sync_flush,
            draw::Sizes {
                batch_bytes: 1000..=4000,
                max_entry_body_bytes: 1024,
            },
        );
        if size > 1 && rng.gen_bool(0.2) {
            config.preferred_leaders = vec![NodeId(rng.gen_range(0..size))];
        }
        let segment_bytes = rng.gen_bool(0.5).then(|| rng.gen_range(256..=2048));
        let members: Vec<NodeId> = (0..size).map(NodeId).collect();
        let changes = rng.gen_bool(0.5);
        let slots = size + if changes { 3 } else { 0 };
        let net = Network::new(
            slots as usize,
            NetParams {
                drop_per_mille: rng.gen_range(0..=100),
                dup_per_mille: rng.gen_range(0..=50),
                max_delay_ticks: rng.gen_range(1..=3),
                spike_per_mille: rng.gen_range(0..=30),
                spike_delay_ticks: 20,
            },
        );
        let nodes = (0..slots)
            .map(NodeId)
            .map(|id| {
                let log = match segment_bytes {
                    Some(bytes) => MemLog::with_segments(bytes),
                    None => MemLog::new(),
                };
                let mut node_config = config.clone();
                node_config.random_seed = seed ^ u64::from(id.0) << 32;
                let membership = MembershipLog::bootstrap(Membership::of_voters(&members));
                let founder = members.contains(&id);
                SimNode {
                    id,
                    // A joiner's disk waits for the membership change that adds it.
                    node: founder.then(|| {
                        Node::restore(
                            id,
                            membership.clone(),
                            node_config,
                            log.clone(),
                            HardState::default(),
                        )
                        .expect("valid simulation config")
                    }),
                    disk: (!founder).then_some(log),
                    membership,
                    hard: HardState::default(),
                    restart_at: 0,
                    incarnation: 0,
                    applied: 0,
                    commit_seen: 0,
                    leader_terms_seen: None,
                    sync_pending: false,
                    paused_until: 0,
                    joined: founder,
                }
            })
            .collect();
        Sim {
            seed,
            // Every mode meets power cuts: with sync_flush nothing acknowledged may be lost;
            // without, acknowledged entries may go, but nothing applied may ever change.
            power_cut_chance: if rng.gen_bool(0.8) { 0.5 } else { 0.0 },
            sync_chance: rng.gen_range(0.05..0.9),
            rng,
            now: 0,
            config,
            next_joiner: members.len(),
            committed_voters: [(0, members.clone())].into_iter().collect(),
            appended_voters: Vec::new(),
            members,
            nodes,
            changes,

            net,
            checker: Checker::default(),
            pending: Vec::new(),
            acked: 0,
            rotted: 0,
            repaired: 0,
            verbose,
        }
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.verbose {
            let line = format!("[seed {} t={}] {}", self.seed, self.now, what());
            eprintln!("{line}");
        }
    }

    /// Runs the seed to the end: chaos, heal, then progress within a bound.
    pub fn run(mut self) -> Result<SeedStats, Violation> {
        let summary = format!(
            "{} nodes, sync_flush={}, power cuts={}, pre_vote={}, check_quorum={}, preferred={:?}",
            self.members.len(),
            self.config.sync_flush,
            self.power_cut_chance,
            self.config.pre_vote,
            self.config.check_quorum,
            self.config.preferred_leaders
        );
        self.note(|| summary.clone());
        for _ in 0..CHAOS_TICKS {
            self.chaos();
            self.maybe_propose()?;
            self.step_time()?;
        }
        self.heal()?;
        let mut probe: Option<(usize, EntryPlace)> = None;
        for _ in 0..LIVENESS_TICKS {
            self.step_time()?;
            if let Some((at, place)) = probe {
                let members = self.voters_of(at);
                let everyone = members
                    .iter()
                    .all(|&m| self.nodes[m].applied >= place.index);
                let same_term = members.iter().all(|&m| {
                    self.nodes[m]
                        .node
                        .as_ref()
                        .is_some_and(|node| node.term() == place.term)
                });
                if everyone && same_term {
                    return Ok(SeedStats {
                        committed: self.checker.committed_len(),
                        acked: self.acked,
                        leaders: self.checker.leader_count(),
                        rotted: self.rotted,
                        repaired: self.repaired,
                    });
                }
                let leader_lost = self.nodes.iter().all(|n| {
                    n.node
                        .as_ref()
                        .is_none_or(|node| node.role() != Role::Leader || node.term() != place.term)
                });
                if leader_lost {
                    probe = None;
                }
            } else if let Some(i) = self.current_leader() {
                if let Some(place) = self.propose_at(i, 1)?.first().copied() {
                    self.note(|| format!("liveness probe at {} index {}", i, place.index));
                    probe = Some((i, place));
                }
            }
        }
        Err(format!(
            "liveness: no leader committed a new entry on all nodes within {LIVENESS_TICKS} ticks after healing ({})",
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|n| match &n.node {
                Some(node) => format!(
                    "{}:{:?}@{} leader={:?} commit={} first={} last={} applied={} peers={:?}",
                    n.id,
                    node.role(),
                    node.term(),
                    node.leader(),
                    node.commit_index(),
                    node.storage().first_index(),
                    node.last_index(),
                    n.applied,
                    node.status().peers
                ),
                None => format!("{}:down", n.id),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A leader every member of its membership follows.
    fn current_leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.node.as_ref().is_some_and(|node| {
                node.role() == Role::Leader
                    && node.membership().members().iter().all(|m| {
                        self.nodes[m.id.0 as usize].node.as_ref().is_some_and(|o| {
                            o.term() == node.term() && o.leader() == Some(node.id())
                        })
                    })
            })
        })
    }

    /// The voters of node `i`'s membership (all nodes when it is down). A learner still
    /// catching up is not waited for: it has no say in progress.
    fn voters_of(&self, i: usize) -> Vec<usize> {
        match self.nodes[i].node.as_ref() {
            Some(node) => node.membership().voters().map(|id| id.0 as usize).collect(),
            None => (0..self.nodes.len()).collect(),
        }
    }

    /// The leader adds the next unused node or removes another member, as an operator would
    /// with mqadmin: the added node starts with the group's peer list and itself.
    fn change_membership(&mut self) {
        let Some(l) = self.nodes.iter().position(|n| {
            n.paused_until <= self.now
                && n.node
                    .as_ref()
                    .is_some_and(|node| node.role() == Role::Leader)
        }) else {
            return;
        };
        let Some(leader) = self.nodes[l].node.as_ref() else {
            return;
        };
        let membership = leader.membership().clone();
        let leader_id = leader.id();
        let slots = self.nodes.len();
        let others: Vec<NodeId> = membership
            .members()
            .iter()
            .map(|m| m.id)
            .filter(|&id| id != leader_id)
            .collect();
        let add = self.next_joiner < slots && (others.is_empty() || self.rng.gen_bool(0.5));
        let Some(leader) = self.nodes[l].node.as_mut() else {
            return;
        };
        if add {
            let j = self.next_joiner;
            let id = NodeId(j as u32);
            let change = MembershipChange::Add {
                id,
                addr: format!("sim:{}", 1000 + id.0),
            };
            let result = leader.propose_membership(change);
            self.note(|| format!("{l} proposes adding {id}: {result:?}"));
            if result.is_ok() {
                self.next_joiner += 1;
                let mut peers: Vec<NodeId> = membership.members().iter().map(|m| m.id).collect();
                peers.push(id);
                let sn = &mut self.nodes[j];
                sn.membership = MembershipLog::bootstrap(Membership::of_voters(&peers));
                sn.joined = true;
                sn.restart_at = self.now;
            }
        } else if !others.is_empty() {
            let victim = others[self.rng.gen_range(0..others.len())];
            let result = leader.propose_membership(MembershipChange::Remove(victim));
            self.note(|| format!("{l} proposes removing {victim}: {result:?}"));
        }
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.note(|| "heal: restart all, reconnect, no more loss".to_string());
        self.net.heal();
        self.net.faults = false;
        for i in 0..self.nodes.len() {
            self.nodes[i].paused_until = 0;
            if self.nodes[i].joined && self.nodes[i].node.is_none() {
                self.restart(i)?;
            }
        }
        Ok(())
    }

    fn chaos(&mut self) {
        let size = self.nodes.len();
        let roll = self.rng.gen_range(0..1000);
        match roll {
            0..=3 => {
                let i = self.rng.gen_range(0..size);
                if self.nodes[i].node.is_some() {
                    self.crash(i);
                }
            }
            37..=40 => {
                let i = self.rng.gen_range(0..size);
                let ticks = self.rng.gen_range(5..60);
                self.nodes[i].paused_until = self.now + ticks;
                self.note(|| format!("pause {i} for {ticks} ticks"));
            }
            997..=999 => {
                // Everyone at once (a power failure of the whole group when the crashes are
                // power cuts): with sync_flush nothing committed may be lost, and in no mode
                // may anything applied change.
                for i in 0..size {
                    self.crash(i);
                }
            }
            4..=11 if size > 1 => {
                let what = self.net.random_partition(&mut self.rng, size);
                self.note(|| what);
            }
            12..=13 if size > 1 => {
                let what = self.net.random_one_way_cut(&mut self.rng, size);
                self.note(|| what);
            }
            14..=29 => {
                self.net.heal();
                self.note(|| "network healed".to_string());
            }
            30..=32 => {
                let i = self.rng.gen_range(0..size);
                let target = NodeId(self.rng.gen_range(0..size as u32));
                if let Some(node) = self.nodes[i].node.as_mut() {
                    let result = node.transfer_leadership(target);
                    if node.role() == Role::Leader {
                        self.note(|| format!("transfer {i} -> {target}: {result:?}"));
                    }
                }
            }
            41..=44 if self.changes => self.change_membership(),
            // Without sync_flush a committed entry may survive a power cut on one member
            // only, and membership changes may remove the members holding the other copies
            // (new members start at the leader's first entry): a rot then is data loss no
            // repair can undo.
            45..=47 if self.config.sync_flush && !self.changes => self.rot(),
            33..=36 => {
                let i = self.rng.gen_range(0..size);
                let keep = self.rng.gen_range(0..20);
                let applied = self.nodes[i].applied;
                // Retention never removes the last intact copies of a rotted entry.
                let rotted = self.lowest_rotted();
                if let Some(node) = self.nodes[i].node.as_mut() {
                    let upto = node.apply_limit().min(applied).min(rotted);
                    if upto > keep {
                        node.storage_mut().compact_to(upto - keep);
                        let first = upto - keep;
                        self.note(|| format!("{i} compacts to {first}"));
                    }
                }
            }
            _ => {}
        }
        for i in 0..size {
            if self.nodes[i].joined
                && self.nodes[i].node.is_none()
                && self.now >= self.nodes[i].restart_at
            {
                if let Err(e) = self.restart(i) {
                    // Restart cannot fail with a valid config; surface it like a violation.
                    panic!("restart failed: {e}");
                }
            }
        }
    }

    /// A bit flips in an entry of a node's disk that other members hold intact: one that
    /// node made durable and knows committed (what old segments hold).
    fn rot(&mut self) {
        let i = self.rng.gen_range(0..self.nodes.len());
        let Some(node) = self.nodes[i].node.as_ref() else {
            return;
        };
        // Not below any member's first entry: a member behind the leader's first entry
        // restarts its log there and would never hold a copy again.
        let first = self
            .nodes
            .iter()
            .filter_map(|sn| Self::log_of(sn).map(|log| log.first_index()))
            .max()
            .unwrap_or(1);
        let last = node.safe_index().min(node.storage().durable_last_index());
        if first > last {
            return;
        }
        let index = self.rng.gen_range(first..=last);
        let Ok(Some(term)) = node.storage().term(index) else {
            return;
        };
        // Only members are asked for a copy.
        let members: Vec<usize> = node
            .membership()
            .members()
            .iter()
            .map(|m| m.id.0 as usize)
            .collect();
        let intact_elsewhere = members
            .iter()
            .any(|&j| j != i && Self::holds_intact(&self.nodes[j], index, term));
        let rotted_elsewhere = self
            .nodes
            .iter()
            .any(|other| Self::log_of(other).is_some_and(|log| log.damaged().any(|d| d == index)));
        if !intact_elsewhere || rotted_elsewhere {
            return;
        }
        if let Some(node) = self.nodes[i].node.as_mut() {
            if node.storage_mut().damage(index) {
                self.rotted += 1;
                self.note(|| format!("entry {index} rots on {i}"));
            }
        }
    }

    fn log_of(sn: &SimNode) -> Option<&MemLog> {
        sn.node.as_ref().map(|n| n.storage()).or(sn.disk.as_ref())
    }

    fn holds_intact(sn: &SimNode, index: u64, term: u64) -> bool {
        Self::log_of(sn).is_some_and(|log| {
            index >= log.first_index()
                && log.term(index).ok().flatten() == Some(term)
                && !log.damaged().any(|d| d == index)
        })
    }

    /// The lowest entry rotted on any node and not repaired yet (`u64::MAX`: none).
    fn lowest_rotted(&self) -> u64 {
        self.nodes
            .iter()
            .filter_map(|sn| Self::log_of(sn).and_then(|log| log.damaged().next()))
            .min()
            .unwrap_or(u64::MAX)
    }

    fn crash(&mut self, i: usize) {
        let Some(node) = self.nodes[i].node.take() else {
            return;
        };
        let mut disk = node.into_storage();
        let power = self.rng.gen_bool(self.power_cut_chance);
        if power {
            disk.crash();
        }
        let down_for = self.rng.gen_range(5..80);
        self.nodes[i].restart_at = self.now + down_for;
        self.nodes[i].disk = Some(disk);
        self.nodes[i].sync_pending = false;
        self.note(|| format!("crash {i} (power cut: {power}) for {down_for} ticks"));
    }

    fn restart(&mut self, i: usize) -> Result<(), Violation> {
        let Some(disk) = self.nodes[i].disk.take() else {
            return Ok(());
        };
        self.nodes[i].incarnation += 1;
        let mut config = self.config.clone();
        config.random_seed =
            self.seed ^ u64::from(self.nodes[i].id.0) << 32 ^ self.nodes[i].incarnation << 48;
        let node = Node::restore(
            self.nodes[i].id,
            self.nodes[i].membership.clone(),
            config,
            disk,
            self.nodes[i].hard,
        )
        .map_err(|e| format!("restart of {i} failed: {e}"))?;
        let sn = &mut self.nodes[i];
        sn.commit_seen = node.safe_index();
        // The application resumes from what the log still holds; a real broker would rebuild
        // its state from the log, replaying from the start.
        sn.applied = node
            .safe_index()
            .min(sn.applied)
            .max(node.storage().first_index() - 1);
        sn.node = Some(node);
        self.note(|| format!("restart {i}"));
        self.after_step(i)
    }

    fn maybe_propose(&mut self) -> Result<(), Violation> {
        if !self.rng.gen_bool(0.3) {
            return Ok(());
        }
        let i = match self.nodes.iter().position(|n| {
            n.node
                .as_ref()
                .is_some_and(|node| node.role() == Role::Leader)
        }) {
            Some(leader) if self.rng.gen_bool(0.9) => leader,
            _ => self.rng.gen_range(0..self.nodes.len()),
        };
        let count = self.rng.gen_range(1..=3);
        self.propose_at(i, count)?;
        Ok(())
    }

    fn propose_at(&mut self, i: usize, count: usize) -> Result<Vec<EntryPlace>, Violation> {
        if self.nodes[i].paused_until > self.now {
            return Ok(Vec::new());
        }
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(Vec::new());
        };
        let proposals: Vec<Proposal> = (0..count)
            .map(|_| {
                let len = self.rng.gen_range(16..=120);
                let fill: u8 = self.rng.gen();
                Proposal::with_patch(7, vec![fill; len], |place: EntryPlace, body: &mut [u8]| {
                    // As a broker writes a message's physical offset into it.
                    body[..8].copy_from_slice(&place.body_pos().to_be_bytes());
                    body[8..16].copy_from_slice(&place.index.to_be_bytes());
                })
            })
            .collect();
        let places = match node.propose(proposals) {
            Ok(places) => places,
            Err(_) => return Ok(Vec::new()),
        };
        for place in &places {
            let frame = node
                .storage()
                .read(place.index, 1, 1 << 20)
                .map_err(|e| format!("read back {}: {e}", place.index))?;
            let entry = Entry::decode(&frame[0]).map_err(|e| format!("decode: {e}"))?;
            self.pending.push(Pending {
                node: i,
                term: place.term,
                place: *place,
                body_crc: crc32c::crc32c(&entry.body),
            });
        }
        self.after_step(i)?;
        Ok(places)
    }

    /// Delivers due messages, ticks every node, runs pending fsyncs, advances the clock.
    fn step_time(&mut self) -> Result<(), Violation> {
        let mut delivered = 0;
        while let Some(msg) = self.net.pop_due(self.now) {
            delivered += 1;
            if delivered > 100_000 {
                return Err("network never drains".to_string());
            }
            let to = msg.to.0 as usize;
            if let Some(until) = self.nodes.get(to).map(|n| n.paused_until) {
                if until > self.now {
                    self.net.hold(&mut self.rng, until, msg);
                    continue;
                }
            }
            if self.verbose && std::env::var("RAFT_SIM_MESSAGES").is_ok() {
                let line = format!(
                    "{} -> {} t{}: {:?}",
                    msg.from,
                    msg.to,
                    msg.term,
                    brief(&msg.payload)
                );
                self.note(|| line);
            }
            let Some(node) = self.nodes.get_mut(to).and_then(|n| n.node.as_mut()) else {
                continue;
            };
            node.step(msg).map_err(|e| format!("step failed: {e}"))?;
            self.after_step(to)?;
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused_until > self.now {
                continue;
            }
            if let Some(node) = self.nodes[i].node.as_mut() {
                node.tick().map_err(|e| format!("tick failed: {e}"))?;
                self.after_step(i)?;
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].sync_pending
                && self.nodes[i].paused_until <= self.now
                && self.rng.gen_bool(self.sync_chance)
            {
                self.sync(i)?;
            }
        }
        self.now += 1;
        Ok(())
    }

    fn sync(&mut self, i: usize) -> Result<(), Violation> {
        self.nodes[i].sync_pending = false;
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        let index = node.last_index();
        let term = node.last_term().map_err(|e| e.to_string())?;
        node.storage_mut().sync().map_err(|e| e.to_string())?;
        node.on_persisted(index, term).map_err(|e| e.to_string())?;
        self.after_step(i)
    }

    /// Handles a node's Ready and checks every property.
    fn after_step(&mut self, i: usize) -> Result<(), Violation> {
        let now = self.now;
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        let ready = node.take_ready().map_err(|e| format!("take_ready: {e}"))?;
        if let Some(hs) = ready.hard_state {
            if hs.term < self.nodes[i].hard.term {
                return Err(format!(
                    "{i}: term went back from {} to {}",
                    self.nodes[i].hard.term, hs.term
                ));
            }
            self.nodes[i].hard = hs;
        }
        if let Some(membership) = ready.membership {
            let (index, current) = (membership.current_index(), membership.current().clone());
            self.note(|| format!("{i} membership from {index}: {current:?}"));
            for record in membership.records() {
                let seen = (record.index, record.membership.voters().collect::<Vec<_>>());
                if !self.appended_voters.contains(&seen) {
                    self.appended_voters.push(seen);
                }
            }
            self.nodes[i].membership = membership;
        }
        let persisted_term = self.nodes[i].hard.term;
        let node = self.nodes[i].node.as_mut().expect("checked above");
        if node.term() > persisted_term {
            return Err(format!(
                "{i}: acts in term {} before persisting it",
                node.term()
            ));
        }
        for msg in ready.messages {
            let pre_vote =
                matches!(msg.payload, raft::message::Payload::VoteRequest(r) if r.pre_vote);
            if !pre_vote && msg.term > self.nodes[i].hard.term {
                // Vote answers may carry the voter's last entry term, never more.
                return Err(format!(
                    "{i}: sends term {} above its persisted term",
                    msg.term
                ));
            }
            self.net.send(&mut self.rng, now, msg);
        }
        if ready.sync_needed {
            self.nodes[i].sync_pending = true;
        }
        for event in &ready.events {
            match event {
                Event::LogRestarted { next_index, .. } => {
                    let sn = &mut self.nodes[i];
                    sn.applied = sn.applied.max(next_index - 1);
                }
                Event::RoleChanged { role, term, leader } => {
                    let (role, term, leader) = (*role, *term, *leader);
                    self.note(|| format!("{i} is {role:?} in term {term}, leader {leader:?}"));
                }
                Event::TransferFinished { target, result } => {
                    let (target, result) = (*target, result.clone());
                    self.note(|| format!("{i} transfer to {target}: {result:?}"));
                }
                Event::ReplicationRejected { peer, reason } => {
                    return Err(format!("{i}: {peer} rejected an append: {reason:?}"));
                }
                Event::EntryDamaged { index } => {
                    let index = *index;
                    self.note(|| format!("{i} asks for a copy of damaged entry {index}"));
                }
                Event::EntryRepaired { index, from } => {
                    let (index, from) = (*index, *from);
                    self.repaired += 1;
                    self.note(|| format!("{i} repaired entry {index} from {from}"));
                }
            }
        }
        if ready.sync_needed && self.rng.gen_bool(self.sync_chance / 2.0) {
            return self.sync(i);
        }
        self.check(i)
    }

    fn check(&mut self, i: usize) -> Result<(), Violation> {
        let sn = &mut self.nodes[i];
        let Some(node) = sn.node.as_mut() else {
            return Ok(());
        };
        let id = node.id();
        if let Some(from) = node.storage_mut().take_changed_from() {
            self.checker.written(id, node.storage(), from)?;
        }
        // What is durably committed never goes back; without sync_flush the commit index
        // itself may, after a quorum lost power (what it covered was never applied).
        let safe = node.safe_index();
        if self.config.sync_flush && node.commit_index() != safe {
            return Err(format!(
                "{id}: with sync_flush the durable commit {safe} differs from commit {}",
                node.commit_index()
            ));
        }
        if safe < sn.commit_seen {
            return Err(format!(
                "{id}: durable commit went back from {} to {safe}",
                sn.commit_seen
            ));
        }
        sn.commit_seen = safe;
        self.checker
            .committed(id, node.term(), node.storage(), safe)?;
        for record in node.membership_log().records() {
            if record.index == 0
                || record.index > safe
                || record.index < node.storage().first_index()
            {
                continue;
            }
            let voters: Vec<NodeId> = record.membership.voters().collect();
            let known = self
                .committed_voters
                .entry(record.index)
                .or_insert_with(|| voters.clone());
            if *known != voters {
                return Err(format!(
                    "{id}: committed membership at {} has voters {voters:?}, elsewhere {known:?}",
                    record.index
                ));
            }
        }
        if node.role() == Role::Leader {
            let term = node.term();
            self.checker.leader(term, id)?;
            if sn.leader_terms_seen != Some(term) {
                sn.leader_terms_seen = Some(term);
                self.checker.leader_complete(id, term, node.storage())?;
            }
        }
        // Apply what may be applied, checking it against the committed record.
        let limit = node.apply_limit();
        let mut guard = 0;
        while sn.applied < limit {
            guard += 1;
            if guard > 10_000 {
                return Err("apply loop does not advance".to_string());
            }
            let from = sn.applied + 1;
            let frames = match node.storage().read(from, 64, 1 << 20) {
                Ok(frames) => frames,
                // Applying waits for the repair, as the driver does.
                Err(StorageError::DamagedEntry { index, .. }) => {
                    node.on_damaged_entry(index);
                    break;
                }
                Err(e) => return Err(format!("{id}: apply read at {from}: {e}")),
            };
            if frames.is_empty() {
                return Err(format!(
                    "{id}: nothing to apply at {from} below limit {limit}"
                ));
            }
            for frame in frames {
                let entry =
                    Entry::decode(&frame).map_err(|e| format!("{id}: apply decode: {e}"))?;
                if entry.index > limit {
                    break;
                }
                if entry.index != sn.applied + 1 {
                    return Err(format!(
                        "{id}: applied {} after {}",
                        entry.index, sn.applied
                    ));
                }
                let recorded = self.checker.committed_at(entry.index);
                let mine = checker::EntryFacts {
                    term: entry.term,
                    pos: entry.pos,
                    body_crc: crc32c::crc32c(&entry.body),
                };
                if recorded.is_some() && recorded != Some(mine) {
                    return Err(format!(
                        "{id}: applied {} as {mine:?}, committed as {recorded:?}",
                        entry.index
                    ));
                }
                // What any node handed to its application is what every node ever hands.
                self.checker.applied(id, entry.index, mine)?;
                if entry.kind == EntryKind::Normal {
                    let body_pos = (entry.pos + 48).to_be_bytes();
                    let index = entry.index.to_be_bytes();
                    if entry.body.len() < 16
                        || entry.body[..8] != body_pos
                        || entry.body[8..16] != index
                    {
                        return Err(format!(
                            "{id}: entry {} lacks its placement patch",
                            entry.index
                        ));
                    }
                }
                sn.applied = entry.index;
            }
        }
        // Client acknowledgements: a proposal is acknowledged when its leader commits it in
        // the same term; from then on it must stay committed as proposed.
        let mut k = 0;
        while k < self.pending.len() {
            let p = &self.pending[k];
            let done = match self.nodes[p.node].node.as_ref() {
                Some(node) if node.term() == p.term && node.role() == Role::Leader => {
                    node.commit_index() >= p.place.index
                }
                _ => {
                    // Leadership lost: the outcome is unknown to the client; forget it.
                    self.pending.swap_remove(k);
                    continue;
                }
            };
            if done {
                let p = self.pending.swap_remove(k);
                let recorded = self.checker.committed_at(p.place.index);
                if recorded.is_some_and(|r| {
                    r.term != p.term || r.body_crc != p.body_crc || r.pos != p.place.pos
                }) {
                    return Err(format!(
                        "acknowledged proposal {:?} is committed as {recorded:?}",
                        p.place
                    ));
                }
                self.acked += 1;
            } else {
                k += 1;
            }
        }
        let logs = self.nodes.iter().filter_map(|n| {
            n.node
                .as_ref()
                .map(|node| node.storage())
                .or(n.disk.as_ref())
                .map(|log| (n.id, log))
        });
        // An entry is committed by a majority of the voters in force at it or of its leader's
        // membership (one change apart: either may be the one that counted).
        // The leader that committed it counted a majority of the membership in force at the
        // entry or of a newer one its log held: any membership recorded after the committed
        // one (one change apart, any majorities of the two overlap).
        let last = self.checker.committed_len();
        let (since, committed) = self
            .committed_voters
            .range(..=last)
            .next_back()
            .map(|(index, voters)| (*index, voters.clone()))
            .unwrap_or_default();
        let mut voter_sets = vec![committed];
        voter_sets.extend(
            self.appended_voters
                .iter()
                .filter(|(index, _)| *index > since)
                .map(|(_, voters)| voters.clone()),
        );
        self.checker.durable_on_quorum(logs, &voter_sets)?;
        Ok(())
    }
}

fn brief(payload: &raft::message::Payload) -> String {
    match payload {
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
    }
}
