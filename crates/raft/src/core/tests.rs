//! Behaviour of the core over a perfect in-memory network that tests can cut and heal.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::*;
use crate::message::{AppendResponse, AppendResult, VoteAnswer};
use crate::storage::MemLog;

fn test_config(sync_flush: bool) -> RaftConfig {
    RaftConfig {
        tick_ms: 1,
        heartbeat_interval_ms: 2,
        max_heartbeat_leak: 5,
        min_vote_interval_ms: 1,
        max_vote_interval_ms: 6,
        min_take_leadership_vote_interval_ms: 1,
        max_take_leadership_vote_interval_ms: 2,
        vote_round_timeout_ms: 4,
        append_timeout_ms: 10,
        transfer_timeout_ms: 20,
        preferred_leader_check_interval_ms: 5,
        sync_flush,
        random_seed: 7,
        ..RaftConfig::default()
    }
}

struct Cluster {
    nodes: Vec<Node<MemLog>>,
    blocked: HashSet<(NodeId, NodeId)>,
    queue: VecDeque<Message>,
    events: Vec<(NodeId, Event)>,
    /// Every message delivered, for assertions on what was said.
    log: Vec<Message>,
    drop_append_responses: bool,
    /// Drops followers' reports of a finished fsync (answers whose whole match is durable).
    drop_persisted_reports: bool,
}

impl Cluster {
    fn new(size: u32, config: RaftConfig) -> Cluster {
        let ids: Vec<NodeId> = (0..size).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                Node::new(
                    id,
                    &ids,
                    config.clone(),
                    MemLog::new(),
                    HardState::default(),
                )
                .unwrap()
            })
            .collect();
        Cluster {
            nodes,
            blocked: HashSet::new(),
            queue: VecDeque::new(),
            events: Vec::new(),
            log: Vec::new(),
            drop_append_responses: false,
            drop_persisted_reports: false,
        }
    }

    fn node(&mut self, id: u32) -> &mut Node<MemLog> {
        &mut self.nodes[id as usize]
    }

    fn isolate(&mut self, id: u32) {
        for other in 0..self.nodes.len() as u32 {
            self.blocked.insert((NodeId(id), NodeId(other)));
            self.blocked.insert((NodeId(other), NodeId(id)));
        }
    }

    fn heal(&mut self) {
        self.blocked.clear();
    }

    fn collect(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let ready = node.take_ready().unwrap();
        if ready.sync_needed {
            let last = node.last_index();
            let term = node.last_term().unwrap();
            node.storage_mut().sync().unwrap();
            node.on_persisted(last, term).unwrap();
        }
        let id = node.id();
        self.events
            .extend(ready.events.into_iter().map(|e| (id, e)));
        for m in ready.messages {
            let dropped = match m.payload {
                Payload::AppendResponse(AppendResponse {
                    result:
                        AppendResult::Success {
                            match_index,
                            persisted_index,
                        },
                    ..
                }) => {
                    self.drop_append_responses
                        || (self.drop_persisted_reports
                            && match_index > 0
                            && persisted_index == match_index)
                }
                Payload::AppendResponse(_) => self.drop_append_responses,
                _ => false,
            };
            if !dropped && !self.blocked.contains(&(m.from, m.to)) {
                self.queue.push_back(m);
            }
        }
        if ready.sync_needed {
            self.collect(i);
        }
    }

    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            self.collect(i);
        }
        for _ in 0..100_000 {
            let Some(m) = self.queue.pop_front() else {
                return;
            };
            let to = m.to.0 as usize;
            self.log.push(m.clone());
            self.nodes[to].step(m).unwrap();
            self.collect(to);
        }
        panic!("messages never settled");
    }

    fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for i in 0..self.nodes.len() {
                self.nodes[i].tick().unwrap();
            }
            self.pump();
        }
    }

    fn leaders(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id().0)
            .collect()
    }

    fn elect(&mut self) -> u32 {
        let all: Vec<u32> = (0..self.nodes.len() as u32).collect();
        self.elect_among(&all)
    }

    fn propose(&mut self, leader: u32, body: &'static [u8]) -> EntryPlace {
        let places = self
            .node(leader)
            .propose(vec![Proposal::new(1, Bytes::from_static(body))])
            .unwrap();
        places[0]
    }
}

#[test]
fn three_nodes_elect_one_leader_and_replicate() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let place = c.propose(leader, b"hello");
    c.run(5);
    for n in &c.nodes {
        assert!(n.commit_index() >= place.index, "node {} commit", n.id());
        let frames = n.storage().read(place.index, 1, 1 << 20).unwrap();
        let entry = crate::entry::Entry::decode(&frames[0]).unwrap();
        assert_eq!(&entry.body[..], b"hello");
        assert_eq!(entry.pos, place.pos);
    }
}

#[test]
fn group_of_one_commits_on_local_persistence() {
    let mut c = Cluster::new(1, test_config(true));
    assert_eq!(c.elect(), 0);
    let place = c.propose(0, b"solo");
    // Before the fsync is reported nothing new commits...
    assert!(c.nodes[0].commit_index() < place.index);
    // ...and the Ready asks for it.
    c.pump();
    assert_eq!(c.nodes[0].commit_index(), place.index);
    assert_eq!(c.nodes[0].apply_limit(), place.index);
}

#[test]
fn sync_flush_leader_counts_itself_only_once_persisted() {
    let mut c = Cluster::new(3, test_config(true));
    let leader = c.elect();
    let node = c.node(leader);
    let place = node
        .propose(vec![Proposal::new(0, Bytes::from_static(b"x"))])
        .unwrap()[0];
    let ready = node.take_ready().unwrap();
    assert!(ready.sync_needed);
    let appends = ready
        .messages
        .iter()
        .filter(|m| matches!(m.payload, Payload::Append(_)))
        .count();
    assert_eq!(appends, 2, "sends to followers before its own fsync");
    // Followers acknowledge; without the leader's own fsync a quorum is still reached (2 of
    // 3), which is the point of writing in parallel.
    let acks: Vec<Message> = (0..3u32)
        .filter(|&i| i != leader)
        .map(|i| Message {
            from: NodeId(i),
            to: NodeId(leader),
            term: c.nodes[leader as usize].term(),
            payload: Payload::AppendResponse(AppendResponse {
                seq: u64::MAX,
                result: AppendResult::Success {
                    match_index: place.index,
                    persisted_index: place.index,
                },
            }),
        })
        .collect();
    let node = c.node(leader);
    node.step(acks[0].clone()).unwrap();
    assert!(
        node.commit_index() < place.index,
        "one follower is not a quorum"
    );
    node.step(acks[1].clone()).unwrap();
    assert_eq!(node.commit_index(), place.index);
    assert!(
        node.apply_limit() < place.index,
        "not applied before its own fsync"
    );
}

#[test]
fn a_leader_missing_fsync_reports_asks_again() {
    // Found by the group simulation: without sync_flush, a follower's report of a finished
    // fsync that was lost (or a follower restarted since it was last sent entries) left the
    // leader's durable commit index behind for good when nothing new was appended, and a
    // new leader never became writable.
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    c.drop_persisted_reports = true;
    let place = c.propose(leader, b"one");
    c.pump();
    assert!(c.node(leader).commit_index() >= place.index);
    assert!(c.node(leader).safe_index() < place.index);
    c.drop_persisted_reports = false;
    c.run(10);
    assert!(c.node(leader).safe_index() >= place.index);
}

#[test]
fn leader_steps_down_on_higher_term() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let term = c.nodes[leader as usize].term();
    let other = (leader + 1) % 3;
    c.node(leader)
        .step(Message {
            from: NodeId(other),
            to: NodeId(leader),
            term: term + 5,
            payload: Payload::HeartbeatResponse(crate::message::HeartbeatResponse::ExpiredTerm),
        })
        .unwrap();
    assert_eq!(c.nodes[leader as usize].role(), Role::Follower);
    assert_eq!(c.nodes[leader as usize].term(), term + 5);
    assert_eq!(
        c.node(leader)
            .take_ready()
            .unwrap()
            .hard_state
            .unwrap()
            .term,
        term + 5,
        "the new term is handed out for fsync"
    );
}

#[test]
fn check_quorum_leader_steps_down_and_refuses_writes() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    c.isolate(leader);
    let timeout = c.nodes[0].ticks.leader_timeout;
    c.run(timeout + 1);
    let old = &mut c.nodes[leader as usize];
    assert_ne!(old.role(), Role::Leader);
    assert!(matches!(
        old.propose(vec![Proposal::new(0, Bytes::new())]),
        Err(ProposeError::NotLeader { .. })
    ));
}

#[test]
fn pre_vote_keeps_a_rejoining_node_from_deposing_the_leader() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let term = c.nodes[leader as usize].term();
    let lonely = (leader + 1) % 3;
    for other in 0..3 {
        if other != lonely {
            c.blocked.insert((NodeId(lonely), NodeId(other)));
            c.blocked.insert((NodeId(other), NodeId(lonely)));
        }
    }
    c.run(200);
    assert_eq!(
        c.nodes[lonely as usize].term(),
        term,
        "pre-votes never raise the term"
    );
    assert_eq!(c.nodes[leader as usize].role(), Role::Leader);
    c.heal();
    c.run(50);
    assert_eq!(c.leaders(), vec![leader]);
    assert_eq!(c.nodes[leader as usize].term(), term);
    assert_eq!(c.nodes[lonely as usize].leader(), Some(NodeId(leader)));
}

#[test]
fn without_pre_vote_a_voter_behind_answers_term_not_ready_then_accepts() {
    let mut config = test_config(false);
    config.pre_vote = false;
    let mut c = Cluster::new(3, config);
    let leader = c.elect();
    // Every node moved to the leader's term through TermNotReady then Accept.
    let answers: Vec<VoteAnswer> = c
        .log
        .iter()
        .filter_map(|m| match &m.payload {
            Payload::VoteResponse(r) if !r.pre_vote => Some(r.answer),
            _ => None,
        })
        .collect();
    assert!(
        answers.contains(&VoteAnswer::RejectTermNotReady),
        "{answers:?}"
    );
    assert!(answers.contains(&VoteAnswer::Accept));
    assert!(c.nodes[leader as usize].term() >= 1);
}

fn log_with_terms(terms: &[u64]) -> MemLog {
    let mut log = MemLog::new();
    for (i, &term) in terms.iter().enumerate() {
        let entry = crate::entry::Entry {
            kind: crate::entry::EntryKind::Normal,
            index: i as u64 + 1,
            term,
            pos: log.end_pos(),
            channel: 0,
            body: Bytes::from_static(b"e"),
        };
        let mut buf = bytes::BytesMut::new();
        entry.encode(&mut buf);
        log.append(&[buf.freeze()]).unwrap();
    }
    log
}

#[test]
fn older_term_entry_does_not_commit_by_replica_count() {
    // Raft Figure 8: n0 and n1 hold [1@1, 2@2], n2 holds [1@1]. n0 wins term 3. Entry 2 is
    // on a majority, but it may commit only together with an entry of term 3.
    let config = test_config(false);
    let ids = [NodeId(0), NodeId(1), NodeId(2)];
    let logs = [vec![1, 2], vec![1, 2], vec![1]];
    let nodes = ids
        .iter()
        .zip(logs.iter())
        .map(|(&id, terms)| {
            let hs = HardState {
                term: 2,
                voted_for: None,
            };
            Node::new(id, &ids, config.clone(), log_with_terms(terms), hs).unwrap()
        })
        .collect();
    let mut c = Cluster {
        nodes,
        blocked: HashSet::new(),
        queue: VecDeque::new(),
        events: Vec::new(),
        log: Vec::new(),
        drop_append_responses: true,
        drop_persisted_reports: false,
    };
    // Only n0's clock runs, so only n0 campaigns.
    for _ in 0..100 {
        c.nodes[0].tick().unwrap();
        c.pump();
        if c.nodes[0].role() == Role::Leader {
            break;
        }
    }
    assert_eq!(c.nodes[0].role(), Role::Leader);
    let term = c.nodes[0].term();
    assert_eq!(c.nodes[0].commit_index(), 0);
    let ack = |from: u32, match_index: u64| Message {
        from: NodeId(from),
        to: NodeId(0),
        term,
        payload: Payload::AppendResponse(AppendResponse {
            seq: u64::MAX,
            result: AppendResult::Success {
                match_index,
                persisted_index: match_index,
            },
        }),
    };
    c.nodes[0].step(ack(1, 2)).unwrap();
    assert_eq!(
        c.nodes[0].commit_index(),
        0,
        "entry 2 of term 2 committed by count"
    );
    c.nodes[0].step(ack(1, 3)).unwrap();
    assert_eq!(
        c.nodes[0].commit_index(),
        3,
        "the term-3 no-op commits, and 2 with it"
    );
}

#[test]
fn divergent_follower_tail_is_truncated() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    c.propose(leader, b"base");
    c.run(5);
    c.isolate(leader);
    for _ in 0..20 {
        c.propose(leader, b"doomed");
    }
    c.run(2);
    let old_last = c.nodes[leader as usize].last_index();
    let timeout = c.nodes[0].ticks.leader_timeout;
    c.run(timeout * 3);
    let others: Vec<u32> = (0..3).filter(|&i| i != leader).collect();
    c.blocked.retain(|&(a, b)| a.0 == leader || b.0 == leader);
    let new_leader = loop {
        c.run(1);
        if let Some(&l) = c.leaders().iter().find(|&&l| l != leader) {
            break l;
        }
    };
    assert!(others.contains(&new_leader));
    c.propose(new_leader, b"winner");
    c.heal();
    c.run(30);
    let old = &c.nodes[leader as usize];
    assert_eq!(old.leader(), Some(NodeId(new_leader)));
    assert!(old.last_index() < old_last + 2);
    let winner_last = c.nodes[new_leader as usize].last_index();
    assert_eq!(old.last_index(), winner_last);
    for i in 1..=winner_last {
        assert_eq!(
            old.storage().term(i).unwrap(),
            c.nodes[new_leader as usize].storage().term(i).unwrap()
        );
    }
}

#[test]
fn follower_behind_the_leaders_first_entry_restarts_its_log() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let lagger = (leader + 1) % 3;
    c.isolate(lagger);
    for _ in 0..30 {
        c.propose(leader, b"while you were away");
    }
    c.run(5);
    let commit = c.nodes[leader as usize].commit_index();
    // Retention on the two up-to-date nodes deletes what the lagger still needs.
    for i in 0..3 {
        if i != lagger {
            c.nodes[i as usize].storage_mut().compact_to(commit - 5);
        }
    }
    c.heal();
    c.run(40);
    let lag = &c.nodes[lagger as usize];
    assert_eq!(lag.storage().first_index(), commit - 5);
    assert_eq!(lag.last_index(), c.nodes[leader as usize].last_index());
    assert!(c.events.iter().any(|(id, e)| id.0 == lagger
        && matches!(e, Event::LogRestarted { next_index, .. } if *next_index == commit - 5)));
}

#[test]
fn a_damaged_entry_the_leader_must_send_is_repaired_from_a_follower() {
    let mut c = Cluster::new(3, test_config(true));
    let leader = c.elect();
    let holder = (leader + 1) % 3;
    let lagger = (leader + 2) % 3;
    c.isolate(lagger);
    let place = c.propose(leader, b"rots on the leader");
    c.propose(leader, b"after it");
    c.run(5);
    assert!(c.nodes[holder as usize].commit_index() > place.index);
    assert!(c.node(leader).storage_mut().damage(place.index));
    c.heal();
    c.run(40);
    let read_body = |node: &Node<MemLog>| {
        let frames = node.storage().read(place.index, 1, 1 << 20).unwrap();
        crate::entry::Entry::decode(&frames[0]).unwrap().body
    };
    // The lagger got the entry, and the leader's copy is whole again.
    assert_eq!(
        &read_body(&c.nodes[lagger as usize])[..],
        b"rots on the leader"
    );
    assert_eq!(
        &read_body(&c.nodes[leader as usize])[..],
        b"rots on the leader"
    );
    assert_eq!(
        c.nodes[lagger as usize].last_index(),
        c.nodes[leader as usize].last_index()
    );
    assert_eq!(c.nodes[leader as usize].awaiting_repair(), None);
    assert!(c.events.iter().any(|(id, e)| id.0 == leader
        && matches!(e, Event::EntryRepaired { index, .. } if *index == place.index)));
    assert_eq!(c.leaders(), vec![leader], "a repair changes no leadership");
}

#[test]
fn only_an_intact_copy_of_the_same_entry_repairs_a_damaged_one() {
    let mut c = Cluster::new(3, test_config(true));
    let leader = c.elect();
    let place = c.propose(leader, b"original");
    c.run(5);
    let damaged = (leader + 1) % 3;
    assert!(c.node(damaged).storage_mut().damage(place.index));
    c.node(damaged).on_damaged_entry(place.index);
    let intact = c.nodes[leader as usize]
        .storage()
        .read(place.index, 1, 1 << 20)
        .unwrap()
        .remove(0);
    let entry = crate::entry::Entry::decode(&intact).unwrap();
    let forge = |term: u64, body: &'static [u8]| {
        let mut buf = bytes::BytesMut::new();
        crate::entry::Entry {
            term,
            body: Bytes::from_static(body),
            ..entry.clone()
        }
        .encode(&mut buf);
        buf.freeze()
    };
    let mut flipped = intact.to_vec();
    if let Some(last) = flipped.last_mut() {
        *last ^= 1;
    }
    let offers = [
        forge(entry.term + 1, b"original"),
        Bytes::from(flipped),
        forge(entry.term, b"other"),
    ];
    let offers = offers.into_iter().chain([intact.clone()]);
    for (n, frame) in offers.enumerate() {
        let term = c.nodes[damaged as usize].term();
        c.node(damaged)
            .step(Message {
                from: NodeId(leader),
                to: NodeId(damaged),
                term,
                payload: Payload::EntryCopy {
                    index: place.index,
                    frame,
                },
            })
            .unwrap();
        let repaired = c.nodes[damaged as usize].awaiting_repair().is_none();
        // Another term, a flipped bit, another body: refused; the intact copy: taken.
        assert_eq!(repaired, n == 3, "offer {n}");
    }
    let frames = c.nodes[damaged as usize]
        .storage()
        .read(place.index, 1, 1 << 20)
        .unwrap();
    assert_eq!(frames[0], intact);
}

#[test]
fn placement_patch_sees_final_index_and_position() {
    let config = test_config(false);
    let ids = [NodeId(0)];
    let mut node = Node::new(
        NodeId(0),
        &ids,
        config,
        MemLog::with_segments(256),
        HardState::default(),
    )
    .unwrap();
    for _ in 0..5 {
        node.tick().unwrap();
    }
    assert_eq!(node.role(), Role::Leader);
    let proposals = (0..6)
        .map(|_| {
            Proposal::with_patch(3, vec![0u8; 60], |place: EntryPlace, body: &mut [u8]| {
                body[..8].copy_from_slice(&place.body_pos().to_be_bytes());
                body[8..16].copy_from_slice(&place.index.to_be_bytes());
            })
        })
        .collect();
    let places = node.propose(proposals).unwrap();
    for place in &places {
        let frame = &node.storage().read(place.index, 1, 1 << 20).unwrap()[0];
        let entry = crate::entry::Entry::decode(frame).unwrap();
        assert_eq!(entry.pos, place.pos);
        assert_eq!(&entry.body[..8], &place.body_pos().to_be_bytes());
        assert_eq!(&entry.body[8..16], &place.index.to_be_bytes());
        assert!(
            entry.pos / 256 == (entry.pos + entry.size() as u64 - 1) / 256,
            "entry at {} straddles a segment",
            entry.pos
        );
    }
}

#[test]
fn transfer_to_a_named_node() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let target = (leader + 2) % 3;
    c.propose(leader, b"before");
    c.run(3);
    c.node(leader).transfer_leadership(NodeId(target)).unwrap();
    assert!(matches!(
        c.node(leader).propose(vec![Proposal::new(0, Bytes::new())]),
        Err(ProposeError::Transferring)
    ));
    c.run(20);
    assert_eq!(c.leaders(), vec![target]);
    assert!(c.events.iter().any(
        |(id, e)| id.0 == leader && matches!(e, Event::TransferFinished { result: Ok(()), .. })
    ));
}

#[test]
fn transfer_refusals() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let follower = (leader + 1) % 3;
    assert_eq!(
        c.node(follower).transfer_leadership(NodeId(leader)),
        Err(TransferError::NotLeader)
    );
    assert_eq!(
        c.node(leader).transfer_leadership(NodeId(9)),
        Err(TransferError::UnknownPeer(NodeId(9)))
    );
}

#[test]
fn preferred_leader_takes_over_when_healthy() {
    let mut config = test_config(false);
    config.preferred_leaders = vec![NodeId(2)];
    let mut c = Cluster::new(3, config);
    c.elect();
    c.run(60);
    assert_eq!(c.leaders(), vec![2]);
}

#[test]
fn statuses_report_per_peer_progress() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let place = c.propose(leader, b"x");
    c.run(3);
    let status = c.nodes[leader as usize].status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.peers.len(), 2);
    for peer in &status.peers {
        assert_eq!(peer.match_index, place.index);
        assert_eq!(peer.state, ReplicaState::Append);
    }
}

#[test]
fn corrupt_frames_are_rejected() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let follower = (leader + 1) % 3;
    let term = c.nodes[leader as usize].term();
    let last = c.nodes[follower as usize].last_index();
    let frame = c.nodes[leader as usize]
        .storage()
        .read(last, 1, 1 << 20)
        .unwrap()[0]
        .clone();
    let mut bad = frame.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0xFF;
    let node = c.node(follower);
    node.step(Message {
        from: NodeId(leader),
        to: NodeId(follower),
        term,
        payload: Payload::Append(crate::message::Append {
            base_membership: None,
            seq: 99,
            prev_index: last - 1,
            prev_term: Some(term),
            commit_index: 0,
            safe_index: 0,
            restart: false,
            entries: vec![Bytes::from(bad)],
        }),
    })
    .unwrap();
    let ready = node.take_ready().unwrap();
    assert!(ready.messages.iter().any(|m| matches!(
        m.payload,
        Payload::AppendResponse(AppendResponse {
            result: AppendResult::Rejected(crate::message::RejectReason::CorruptEntry),
            ..
        })
    )));
}

#[test]
fn a_vote_is_handed_out_for_fsync_with_its_answer() {
    // The driver persists `hard_state` before sending any message of the same Ready, so the
    // vote is durable before the candidate can count it.
    let mut c = Cluster::new(3, test_config(false));
    let voter = c.node(1);
    voter
        .step(Message {
            from: NodeId(0),
            to: NodeId(1),
            term: 1,
            payload: Payload::VoteRequest(crate::message::VoteRequest {
                pre_vote: false,
                take_leadership: false,
                last_index: 0,
                last_term: 0,
            }),
        })
        .unwrap();
    let ready = voter.take_ready().unwrap();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            voted_for: None
        }),
        "a higher term is adopted and persisted before answering TermNotReady"
    );
    assert!(matches!(
        ready.messages[0].payload,
        Payload::VoteResponse(crate::message::VoteResponse {
            answer: VoteAnswer::RejectTermNotReady,
            ..
        })
    ));
    voter
        .step(Message {
            from: NodeId(0),
            to: NodeId(1),
            term: 1,
            payload: Payload::VoteRequest(crate::message::VoteRequest {
                pre_vote: false,
                take_leadership: false,
                last_index: 0,
                last_term: 0,
            }),
        })
        .unwrap();
    let ready = voter.take_ready().unwrap();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            voted_for: Some(NodeId(0))
        })
    );
    assert!(matches!(
        ready.messages[0].payload,
        Payload::VoteResponse(crate::message::VoteResponse {
            answer: VoteAnswer::Accept,
            ..
        })
    ));
}

#[test]
fn pre_votes_change_no_state() {
    let mut c = Cluster::new(3, test_config(false));
    let voter = c.node(1);
    voter
        .step(Message {
            from: NodeId(0),
            to: NodeId(1),
            term: 5,
            payload: Payload::VoteRequest(crate::message::VoteRequest {
                pre_vote: true,
                take_leadership: false,
                last_index: 0,
                last_term: 0,
            }),
        })
        .unwrap();
    let ready = voter.take_ready().unwrap();
    assert_eq!(ready.hard_state, None);
    assert_eq!(voter.term(), 0);
    assert!(matches!(
        ready.messages[0].payload,
        Payload::VoteResponse(crate::message::VoteResponse {
            answer: VoteAnswer::Accept,
            pre_vote: true,
            ..
        })
    ));
}

#[test]
fn hostile_messages_never_panic_or_stop_the_node() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let victim = (leader + 1) % 3;
    let wild = |rng: &mut rand::rngs::SmallRng| -> u64 {
        match rng.gen_range(0..4) {
            0 => rng.gen(),
            1 => u64::MAX - rng.gen_range(0..3),
            _ => rng.gen_range(0..20),
        }
    };
    for _ in 0..3000 {
        let term = wild(&mut rng);
        let prev_index = wild(&mut rng);
        let entry = crate::entry::Entry {
            kind: crate::entry::EntryKind::Normal,
            // Half of the frames continue `prev_index`, so they get past the first checks.
            index: if rng.gen_bool(0.5) {
                prev_index.wrapping_add(1)
            } else {
                wild(&mut rng)
            },
            term: if rng.gen_bool(0.5) {
                term
            } else {
                wild(&mut rng)
            },
            pos: wild(&mut rng),
            channel: 0,
            body: Bytes::from(vec![7u8; rng.gen_range(0..100)]),
        };
        let mut buf = bytes::BytesMut::new();
        entry.encode(&mut buf);
        let payload = match rng.gen_range(0..4) {
            0 => Payload::Append(crate::message::Append {
                base_membership: None,
                seq: wild(&mut rng),
                prev_index,
                prev_term: Some(wild(&mut rng)),
                commit_index: wild(&mut rng),
                safe_index: wild(&mut rng),
                restart: rng.gen(),
                entries: vec![buf.freeze()],
            }),
            1 => Payload::AppendResponse(AppendResponse {
                seq: wild(&mut rng),
                result: AppendResult::Inconsistent {
                    hint_index: wild(&mut rng),
                    hint_term: wild(&mut rng),
                    last_index: wild(&mut rng),
                },
            }),
            2 => Payload::VoteRequest(crate::message::VoteRequest {
                pre_vote: rng.gen(),
                take_leadership: rng.gen(),
                last_index: wild(&mut rng),
                last_term: wild(&mut rng),
            }),
            _ => Payload::Heartbeat(crate::message::Heartbeat {
                commit_index: wild(&mut rng),
                safe_index: wild(&mut rng),
            }),
        };
        let to = if rng.gen_bool(0.5) { victim } else { leader };
        let from = (to + 1 + rng.gen_range(0..2)) % 3;
        let node = c.node(to);
        node.step(Message {
            from: NodeId(from),
            to: NodeId(to),
            term,
            payload,
        })
        .expect("hostile input is answered, not fatal");
        let _ = node.tick();
        node.take_ready().expect("ready");
    }
}

/// A member rebuilt on an empty disk voted, in a term the others never reached, for a leader
/// that died: the survivor with the log pre-votes for that very term and is refused ("already
/// voted"). It must learn the voter's term from the refusal and go past it, not pre-vote for
/// the same term forever (seen with real processes: no master for minutes).
#[test]
fn a_pre_vote_refused_for_an_older_vote_moves_past_the_voters_term() {
    let mut c = Cluster::new(3, test_config(false));
    let dead = c.elect();
    c.propose(dead, b"kept");
    c.run(20);
    let term = c.nodes[dead as usize].term();
    let wiped = (dead + 1) % 3;
    let survivor = (dead + 2) % 3;
    let ids: Vec<NodeId> = (0..3).map(NodeId).collect();
    c.nodes[wiped as usize] = Node::new(
        NodeId(wiped),
        &ids,
        test_config(false),
        MemLog::new(),
        HardState {
            term: term + 1,
            voted_for: Some(NodeId(dead)),
        },
    )
    .unwrap();
    c.isolate(dead);
    c.run(500);
    assert_eq!(
        c.leaders(),
        vec![survivor],
        "the member with the log must lead (terms: survivor {}, wiped {})",
        c.nodes[survivor as usize].term(),
        c.nodes[wiped as usize].term()
    );
    assert!(c.nodes[survivor as usize].term() > term + 1);
}

// ---- membership changes ----

use crate::membership::MembershipChange;

/// Founders `0..founders` run as a group; the slots above them hold nodes started the way an
/// operator starts a new member (the group's peer list plus itself), cut off until added.
fn cluster_with_spares(founders: u32, spares: u32, config: RaftConfig) -> Cluster {
    let mut c = Cluster::new(founders, config.clone());
    let ids: Vec<NodeId> = (0..founders).map(NodeId).collect();
    for spare in founders..founders + spares {
        let mut peers = ids.clone();
        peers.push(NodeId(spare));
        c.nodes.push(
            Node::new(
                NodeId(spare),
                &peers,
                config.clone(),
                MemLog::new(),
                HardState::default(),
            )
            .unwrap(),
        );
        c.isolate(spare);
    }
    c
}

impl Cluster {
    /// Runs until one of `among` leads and the others of `among` follow it.
    fn elect_among(&mut self, among: &[u32]) -> u32 {
        for _ in 0..500 {
            self.run(1);
            let leaders: Vec<u32> = self
                .leaders()
                .into_iter()
                .filter(|l| among.contains(l))
                .collect();
            if let [leader] = leaders[..] {
                let term = self.nodes[leader as usize].term();
                if among.iter().all(|&i| {
                    let n = &self.nodes[i as usize];
                    n.leader() == Some(NodeId(leader)) && n.term() == term
                }) {
                    return leader;
                }
            }
        }
        panic!("no leader among {among:?}");
    }

    fn change(
        &mut self,
        leader: u32,
        change: MembershipChange,
    ) -> Result<EntryPlace, ProposeError> {
        self.node(leader).propose_membership(change)
    }
}

#[test]
fn an_added_member_learns_the_log_then_counts_towards_the_quorum() {
    let mut c = cluster_with_spares(3, 1, test_config(false));
    let leader = c.elect_among(&[0, 1, 2]);
    for _ in 0..20 {
        c.propose(leader, b"before the new member");
    }
    c.run(5);
    let add = c
        .change(
            leader,
            MembershipChange::Add {
                id: NodeId(3),
                addr: "127.0.0.1:40914".into(),
            },
        )
        .unwrap();
    // While the learner is unreachable the group commits as before: it does not count.
    let while_away = c.propose(leader, b"while the learner is away");
    c.run(10);
    assert!(c.nodes[leader as usize].commit_index() >= while_away.index);
    assert!(!c.nodes[leader as usize].membership().is_voter(NodeId(3)));

    c.heal();
    c.run(60);
    let learner = &c.nodes[3];
    assert_eq!(learner.last_index(), c.nodes[leader as usize].last_index());
    assert!(learner.membership_log().current_index() > add.index);
    for node in &c.nodes {
        assert!(
            node.membership().is_voter(NodeId(3)),
            "{} sees {:?}",
            node.id(),
            node.membership()
        );
        assert_eq!(node.membership().voter_count(), 4);
    }
    // Four voters: the leader and the new member alone (two of four) commit nothing.
    let others: Vec<u32> = (0..3).filter(|&i| i != leader).collect();
    for &o in &others {
        c.isolate(o);
    }
    c.blocked.remove(&(NodeId(leader), NodeId(3)));
    c.blocked.remove(&(NodeId(3), NodeId(leader)));
    let commit = c.nodes[leader as usize].commit_index();
    let stuck = c.propose(leader, b"two of four");
    c.run(3);
    assert!(c.nodes[leader as usize].commit_index() < stuck.index);
    assert_eq!(c.nodes[leader as usize].commit_index(), commit);
    // A third voter back is a majority again.
    c.blocked
        .retain(|&(a, b)| a.0 != others[0] && b.0 != others[0]);
    c.run(10);
    assert!(c.nodes[leader as usize].commit_index() >= stuck.index);
}

#[test]
fn one_change_at_a_time_and_never_the_leader_itself() {
    let mut c = cluster_with_spares(3, 1, test_config(true));
    let leader = c.elect_among(&[0, 1, 2]);
    c.run(5);
    assert!(matches!(
        c.change(leader, MembershipChange::Remove(NodeId(leader))),
        Err(ProposeError::RemovingLeader)
    ));
    let other = (leader + 1) % 3;
    c.change(leader, MembershipChange::Remove(NodeId(other)))
        .unwrap();
    // The removal is in force on the leader at once, but not durably committed yet.
    assert!(!c.nodes[leader as usize]
        .membership()
        .contains(NodeId(other)));
    assert!(matches!(
        c.change(leader, MembershipChange::Remove(NodeId((leader + 2) % 3))),
        Err(ProposeError::ChangeInProgress { .. })
    ));
    c.run(10);
    assert!(matches!(
        c.change(leader, MembershipChange::Remove(NodeId(other))),
        Err(ProposeError::Membership(crate::MembershipError::NotMember(
            _
        )))
    ));
    // Two voters left: both are needed.
    let last = (leader + 2) % 3;
    c.isolate(last);
    let stuck = c.propose(leader, b"needs both");
    c.run(5);
    assert!(c.nodes[leader as usize].commit_index() < stuck.index);
    // The removed member no longer counts: with the other voter back the entry commits
    // while the removed one stays cut off.
    c.heal();
    c.isolate(other);
    c.run(10);
    assert!(c.nodes[leader as usize].commit_index() >= stuck.index);
}

#[test]
fn a_removed_member_is_told_and_stops_campaigning() {
    let mut c = Cluster::new(3, test_config(true));
    let leader = c.elect();
    let gone = (leader + 1) % 3;
    let removal = c
        .change(leader, MembershipChange::Remove(NodeId(gone)))
        .unwrap();
    c.run(1);
    // The leader stops replicating to it at once: it never gets the entry removing it.
    assert!(c.nodes[gone as usize].last_index() < removal.index);
    assert!(!c.nodes[gone as usize].removed());
    c.run(200);
    let told = &c.nodes[gone as usize];
    assert!(told.removed(), "{} still thinks it is a member", told.id());
    assert!(told.status().removed);
    assert!(told.role() != Role::Leader);
    assert!(c
        .nodes
        .iter()
        .all(|n| n.id() == NodeId(gone) || !n.removed()));
    // Told once, it asks for no more votes.
    c.log.clear();
    c.run(200);
    assert!(
        !c.log
            .iter()
            .any(|m| m.from == NodeId(gone) && matches!(m.payload, Payload::VoteRequest(_))),
        "a removed member kept campaigning"
    );
    // The two left keep their leader.
    assert_eq!(c.leaders(), vec![leader]);
}

#[test]
fn a_member_added_back_is_a_member_again() {
    let mut c = Cluster::new(3, test_config(true));
    let leader = c.elect();
    let gone = (leader + 1) % 3;
    c.change(leader, MembershipChange::Remove(NodeId(gone)))
        .unwrap();
    c.run(200);
    assert!(c.nodes[gone as usize].removed());
    let leader = c.leaders()[0];
    c.change(
        leader,
        MembershipChange::Add {
            id: NodeId(gone),
            addr: "127.0.0.1:40914".into(),
        },
    )
    .unwrap();
    c.run(200);
    let back = &c.nodes[gone as usize];
    assert!(!back.removed(), "{:?}", back.membership());
    assert!(back.membership().is_voter(NodeId(gone)));
}

#[test]
fn a_follower_restarted_past_a_change_gets_the_membership_in_force() {
    let mut c = cluster_with_spares(3, 1, test_config(false));
    let leader = c.elect_among(&[0, 1, 2]);
    let lagger = (leader + 1) % 3;
    c.isolate(lagger);
    c.run(2);
    c.change(
        leader,
        MembershipChange::Add {
            id: NodeId(3),
            addr: "127.0.0.1:40914".into(),
        },
    )
    .unwrap();
    for _ in 0..30 {
        c.propose(leader, b"while you were away");
    }
    c.run(5);
    let commit = c.nodes[leader as usize].commit_index();
    for i in 0..3 {
        if i != lagger {
            c.nodes[i as usize].storage_mut().compact_to(commit - 5);
        }
    }
    // The lagger comes back; the new member stays away (it stays a learner).
    c.blocked
        .retain(|&(a, b)| (a.0 != lagger && b.0 != lagger) || a.0 == 3 || b.0 == 3);
    c.run(40);
    let lag = &c.nodes[lagger as usize];
    assert_eq!(lag.storage().first_index(), commit - 5);
    assert!(
        lag.membership().contains(NodeId(3)),
        "{:?}",
        lag.membership()
    );
    assert_eq!(lag.membership(), c.nodes[leader as usize].membership());
}

#[test]
fn a_follower_answers_appends_taken_together_with_one_acknowledgement() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let follower = (0..3u32).find(|&i| i != leader).unwrap();
    let (appends, last) = two_appends(&mut c, leader, follower);
    let last_seq = match &appends[1].payload {
        Payload::Append(a) => a.seq,
        _ => unreachable!(),
    };
    let node = c.node(follower);
    for append in appends {
        node.step(append).unwrap();
    }
    // One answer, for the later append, is all the leader needs: with its own copy the
    // follower's makes a quorum.
    let ack = one_answer_commits(&mut c, follower, leader, last);
    match ack.payload {
        Payload::AppendResponse(AppendResponse {
            seq,
            result: AppendResult::Success { match_index, .. },
        }) => {
            assert_eq!(seq, last_seq);
            assert_eq!(match_index, last.index);
        }
        ref other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn coalescing_keeps_failures_and_other_peers_answers() {
    let ok = |m: u64| AppendResult::Success {
        match_index: m,
        persisted_index: 0,
    };
    let behind = AppendResult::Inconsistent {
        hint_index: 1,
        hint_term: 1,
        last_index: 1,
    };
    let mut c = Cluster::new(3, test_config(false));
    let node = c.node(0);
    for (to, seq, result) in [
        (1, 1, ok(5)),
        (2, 1, ok(5)),
        (1, 2, ok(7)),
        (1, 3, behind),
        (1, 4, ok(9)),
        (2, 2, ok(8)),
    ] {
        node.reply_append(NodeId(to), seq, result);
    }
    let seen: Vec<(u32, u64)> = std::mem::take(&mut node.out.messages)
        .iter()
        .map(|m| match m.payload {
            Payload::AppendResponse(r) => (m.to.0, r.seq),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(seen, vec![(1, 2), (2, 2), (1, 3), (1, 4)]);
}

/// Two rounds of proposals on `leader`, and the appends each sent to `follower`.
fn two_appends(c: &mut Cluster, leader: u32, follower: u32) -> (Vec<Message>, EntryPlace) {
    let mut appends = Vec::new();
    let mut last = None;
    for body in [&b"first"[..], b"second"] {
        let node = c.node(leader);
        last = Some(
            node.propose(vec![Proposal::new(1, Bytes::from_static(body))])
                .unwrap()[0],
        );
        let ready = node.take_ready().unwrap();
        appends.extend(
            ready
                .messages
                .into_iter()
                .filter(|m| m.to == NodeId(follower) && matches!(m.payload, Payload::Append(_))),
        );
    }
    assert_eq!(appends.len(), 2, "one append per proposal round");
    (appends, last.unwrap())
}

/// The answers to appends in `follower`'s next Ready: exactly one, stepped into `leader`,
/// where it commits through `last`. Returns it.
fn one_answer_commits(c: &mut Cluster, follower: u32, leader: u32, last: EntryPlace) -> Message {
    let mut acks: Vec<Message> = c
        .node(follower)
        .take_ready()
        .unwrap()
        .messages
        .into_iter()
        .filter(|m| matches!(m.payload, Payload::AppendResponse(_)))
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    let ack = acks.remove(0);
    let node = c.node(leader);
    node.step(ack.clone()).unwrap();
    assert_eq!(node.commit_index(), last.index);
    ack
}

#[test]
fn appends_that_continue_one_another_are_stepped_as_one() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let follower = (0..3u32).find(|&i| i != leader).unwrap();
    let (appends, last) = two_appends(&mut c, leader, follower);
    let [first, second]: [Message; 2] = appends.try_into().unwrap();
    let second_seq = match &second.payload {
        Payload::Append(a) => a.seq,
        _ => unreachable!(),
    };
    let mut merged = first;
    assert!(
        merged.absorb(second).is_none(),
        "the second continues the first"
    );
    match &merged.payload {
        Payload::Append(a) => {
            assert_eq!(a.entries.len(), 2);
            assert_eq!(a.seq, second_seq);
        }
        _ => unreachable!(),
    }
    let node = c.node(follower);
    node.step(merged).unwrap();
    assert_eq!(node.last_index(), last.index);
    let frames = node.storage().read(last.index, 1, 1 << 20).unwrap();
    let entry = crate::entry::Entry::decode(&frames[0]).unwrap();
    assert_eq!(&entry.body[..], b"second");
    one_answer_commits(&mut c, follower, leader, last);
}

#[test]
fn appends_are_merged_only_when_one_continues_the_other() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let follower = (0..3u32).find(|&i| i != leader).unwrap();
    let (appends, _) = two_appends(&mut c, leader, follower);
    let [first, second]: [Message; 2] = appends.try_into().unwrap();
    let edit = |m: &Message, change: &dyn Fn(&mut Message)| {
        let mut m = m.clone();
        change(&mut m);
        m
    };
    let with_append = |change: &'static dyn Fn(&mut crate::message::Append)| {
        move |m: &mut Message| {
            if let Payload::Append(a) = &mut m.payload {
                change(a);
            }
        }
    };
    let refused = [
        // Out of order: the earlier one does not continue the later one.
        (second.clone(), first.clone()),
        // A gap between them.
        (
            first.clone(),
            edit(&second, &with_append(&|a| a.prev_index += 1)),
        ),
        // Another term at the joint.
        (
            first.clone(),
            edit(
                &second,
                &with_append(&|a| a.prev_term = a.prev_term.map(|t| t + 1)),
            ),
        ),
        // A restart starts the log over.
        (
            first.clone(),
            edit(&second, &with_append(&|a| a.restart = true)),
        ),
        // From another sender, or in another term.
        (first.clone(), edit(&second, &|m| m.from = NodeId(7))),
        (first.clone(), edit(&second, &|m| m.term += 1)),
    ];
    for (held, next) in refused {
        let mut merged = held.clone();
        let back = merged.absorb(next.clone());
        assert_eq!(back, Some(next), "merged {held:?}");
        assert_eq!(merged, held, "left as it was");
    }
}

/// A member that lost its disk comes back with an empty log. Entries it acknowledged were
/// committed with it; if it voted for the member that missed them, that member would lead
/// without them. Below its vote floor (the commit index the others reported) it neither
/// votes nor campaigns; once a leader has brought its log there, it votes again.
#[test]
fn a_member_that_lost_its_log_withholds_its_vote_until_it_holds_the_commits_again() {
    let mut c = Cluster::new(3, test_config(false));
    let leader = c.elect();
    let others: Vec<u32> = (0..3).filter(|&n| n != leader).collect();
    let (stale, wiped) = (others[0], others[1]);
    c.isolate(stale);
    let place = c.propose(leader, b"committed without the stale member");
    c.run(5);
    assert!(c.node(leader).commit_index() >= place.index);
    assert!(c.node(stale).last_index() < place.index);

    // The wiped member restarts empty, its term seeded as the broker seeds it.
    let term = c.node(leader).term();
    let ids: Vec<NodeId> = (0..3).map(NodeId).collect();
    let mut fresh = Node::new(
        NodeId(wiped),
        &ids,
        test_config(false),
        MemLog::new(),
        HardState {
            term,
            voted_for: Some(NodeId(wiped)),
        },
    )
    .unwrap();
    fresh.withhold_votes_below(place.index);
    c.nodes[wiped as usize] = fresh;
    // The leader is gone; the stale member and the wiped one are left.
    c.heal();
    c.isolate(leader);
    c.run(200);
    assert!(
        c.leaders().iter().all(|&n| n == leader),
        "a leader was elected without the committed entry: {:?}",
        c.leaders()
    );

    // The leader comes back: it is elected (or still leads) and brings the wiped member's
    // log to the floor, after which the group elects as usual.
    c.heal();
    c.run(200);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    assert!(c.node(wiped).last_index() >= place.index);
    for n in &c.nodes {
        let frames = n.storage().read(place.index, 1, 1 << 20).unwrap();
        let entry = crate::entry::Entry::decode(&frames[0]).unwrap();
        assert_eq!(&entry.body[..], b"committed without the stale member");
    }
}
