//! A seeded network: per-message delay (so messages reorder), loss, duplication, and links
//! that partitions cut.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use raft::Message;
use rand::rngs::SmallRng;
use rand::Rng;

pub struct NetParams {
    pub drop_per_mille: u32,
    pub dup_per_mille: u32,
    pub max_delay_ticks: u64,
    pub spike_per_mille: u32,
    pub spike_delay_ticks: u64,
}

struct InFlight {
    at: u64,
    seq: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub struct Network {
    pub params: NetParams,
    /// `cut[a][b]`: messages from a to b are lost.
    cut: Vec<Vec<bool>>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Faults are switched off after the chaos phase.
    pub faults: bool,
}

impl Network {
    pub fn new(nodes: usize, params: NetParams) -> Network {
        Network {
            params,
            cut: vec![vec![false; nodes]; nodes],
            queue: BinaryHeap::new(),
            seq: 0,
            faults: true,
        }
    }

    pub fn send(&mut self, rng: &mut SmallRng, now: u64, msg: Message) {
        let (from, to) = (msg.from.0 as usize, msg.to.0 as usize);
        if self
            .cut
            .get(from)
            .and_then(|row| row.get(to))
            .copied()
            .unwrap_or(true)
        {
            return;
        }
        if self.faults && rng.gen_range(0..1000) < self.params.drop_per_mille {
            return;
        }
        let copies = if self.faults && rng.gen_range(0..1000) < self.params.dup_per_mille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = rng.gen_range(1..=self.params.max_delay_ticks);
            if self.faults && rng.gen_range(0..1000) < self.params.spike_per_mille {
                delay += rng.gen_range(0..=self.params.spike_delay_ticks);
            }
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: now + delay,
                seq: rng.gen(),
                msg: msg.clone(),
            }));
        }
    }

    /// Delivers `msg` at `at` regardless of faults (a paused node's backlog).
    pub fn hold(&mut self, rng: &mut SmallRng, at: u64, msg: Message) {
        self.queue.push(Reverse(InFlight {
            at,
            seq: rng.gen(),
            msg,
        }));
    }

    /// The next message due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Message> {
        if self.queue.peek().is_some_and(|Reverse(m)| m.at <= now) {
            self.queue.pop().map(|Reverse(m)| m.msg)
        } else {
            None
        }
    }

    pub fn partition(&mut self, side: &[bool]) {
        for (a, row) in self.cut.iter_mut().enumerate() {
            for (b, cut) in row.iter_mut().enumerate() {
                *cut = side[a] != side[b];
            }
        }
    }

    /// Cuts only the link from `a` to `b` (asymmetric partitions).
    pub fn cut_one_way(&mut self, a: usize, b: usize) {
        if let Some(cell) = self.cut.get_mut(a).and_then(|row| row.get_mut(b)) {
            *cell = true;
        }
    }

    pub fn heal(&mut self) {
        for row in &mut self.cut {
            row.iter_mut().for_each(|c| *c = false);
        }
    }

    /// Splits the first `size` nodes at random into two sides; says what it cut.
    pub fn random_partition(&mut self, rng: &mut SmallRng, size: usize) -> String {
        let side: Vec<bool> = (0..size).map(|_| rng.gen_bool(0.5)).collect();
        self.partition(&side);
        format!("partition: {}", self.describe_cuts())
    }

    /// Cuts one random link among the first `size` nodes, one way; says which.
    pub fn random_one_way_cut(&mut self, rng: &mut SmallRng, size: usize) -> String {
        let a = rng.gen_range(0..size);
        let b = rng.gen_range(0..size);
        self.cut_one_way(a, b);
        format!("cut {a}->{b}")
    }

    pub fn describe_cuts(&self) -> String {
        let mut out = String::new();
        for (a, row) in self.cut.iter().enumerate() {
            for (b, &cut) in row.iter().enumerate() {
                if cut {
                    out.push_str(&format!("{a}->{b} "));
                }
            }
        }
        out
    }
}
