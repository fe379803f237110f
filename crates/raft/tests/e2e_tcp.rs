//! Three drivers over real TCP on 127.0.0.1: elect, replicate, hand leadership over, kill the
//! leader, elect again; nothing committed is lost and every node applies the same entries.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use raft::entry::EntryKind;
use raft::{
    ApplyEvent, DriverConfig, EntryPlace, MemHardStateStore, MemLog, NodeId, PeerSpec, Proposal,
    RaftDriver, RaftHandle, Role,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Bound on every wait; generous, since tests assert behaviour, not speed.
const WAIT: Duration = Duration::from_secs(20);

struct Member {
    id: NodeId,
    addr: String,
    handle: RaftHandle,
    apply: mpsc::Receiver<ApplyEvent>,
    task: tokio::task::JoinHandle<Result<(), raft::DriverError>>,
}

async fn start_group(size: u32, sync_flush: bool) -> Vec<Member> {
    start_group_with(size, sync_flush, |_, _| {}).await
}

/// A group whose members' configurations `adjust` may change before they start.
async fn start_group_with(
    size: u32,
    sync_flush: bool,
    adjust: impl Fn(NodeId, &mut DriverConfig),
) -> Vec<Member> {
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for i in 0..size {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.push(PeerSpec {
            id: NodeId(i),
            name: format!("n{i}"),
            addr: listener.local_addr().unwrap().to_string(),
        });
        listeners.push(listener);
    }
    let mut members = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = NodeId(i as u32);
        members.push(start_member(id, peers.clone(), listener, |config| {
            config.raft.sync_flush = sync_flush;
            adjust(id, config);
        }));
    }
    members
}

/// A member with an empty in-memory log on `listener`, its configuration changed by
/// `adjust` (sync_flush on by default).
fn start_member(
    id: NodeId,
    peers: Vec<PeerSpec>,
    listener: TcpListener,
    adjust: impl FnOnce(&mut DriverConfig),
) -> Member {
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = DriverConfig::new(id, peers, "e2e");
    config.raft.sync_flush = true;
    config.apply_from = Some(1);
    adjust(&mut config);
    let driver = RaftDriver::start(
        config,
        MemLog::with_segments(64 << 10),
        MemHardStateStore::default(),
        listener,
    )
    .unwrap();
    Member {
        id,
        addr,
        handle: driver.handle,
        apply: driver.apply.unwrap(),
        task: driver.task,
    }
}

/// Waits until every live member follows the same leader in the same term.
async fn wait_for_leader(members: &[&Member], not: Option<NodeId>) -> (NodeId, u64) {
    tokio::time::timeout(WAIT, async {
        loop {
            let states: Vec<_> = members.iter().map(|m| *m.handle.state().borrow()).collect();
            if let Some(leader) = states.iter().find(|s| s.role == Role::Leader) {
                let agreed = states
                    .iter()
                    .all(|s| s.term == leader.term && s.leader == Some(leader.id));
                if agreed && Some(leader.id) != not {
                    return (leader.id, leader.term);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a leader is elected")
}

fn patched(n: u64) -> Proposal {
    let mut body = vec![0u8; 64];
    body[16..24].copy_from_slice(&n.to_be_bytes());
    Proposal::with_patch(1, body, |place: EntryPlace, body: &mut [u8]| {
        body[..8].copy_from_slice(&place.body_pos().to_be_bytes());
        body[8..16].copy_from_slice(&place.index.to_be_bytes());
    })
}

async fn propose_all(handle: &RaftHandle, from: u64, count: u64) -> Vec<EntryPlace> {
    let futures: Vec<_> = (from..from + count)
        .map(|n| handle.propose(patched(n)).expect("queue has room"))
        .collect();
    let mut places = Vec::new();
    for f in futures {
        places.push(
            tokio::time::timeout(WAIT, f)
                .await
                .expect("commit in time")
                .expect("committed"),
        );
    }
    places
}

/// Reads applied entries until `places` are all seen; returns application entries by index.
async fn applied_until(member: &mut Member, last: u64) -> HashMap<u64, (u64, Bytes)> {
    let mut seen = HashMap::new();
    let mut next = 1;
    tokio::time::timeout(WAIT, async {
        while next <= last {
            match member.apply.recv().await.expect("apply stream open") {
                ApplyEvent::Entries(entries) => {
                    for e in entries {
                        assert_eq!(e.index, next, "{} applies in order", member.id);
                        next += 1;
                        if e.kind == EntryKind::Normal {
                            seen.insert(e.index, (e.pos, e.body));
                        }
                    }
                }
                ApplyEvent::LogRestarted { next_index, .. } => next = next_index,
            }
        }
    })
    .await
    .expect("entries applied in time");
    seen
}

fn check_entries(seen: &HashMap<u64, (u64, Bytes)>, places: &[EntryPlace]) {
    for place in places {
        let (pos, body) = seen.get(&place.index).expect("committed entry applied");
        assert_eq!(*pos, place.pos);
        assert_eq!(&body[..8], &place.body_pos().to_be_bytes());
        assert_eq!(&body[8..16], &place.index.to_be_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_survive_the_leader() {
    let mut members = start_group(3, true).await;
    let all: Vec<&Member> = members.iter().collect();
    let (leader, term) = wait_for_leader(&all, None).await;
    let leader_handle = members[leader.0 as usize].handle.clone();

    let mut places = propose_all(&leader_handle, 0, 200).await;
    let batch = leader_handle
        .propose_batch((200..264).map(patched).collect())
        .unwrap();
    places.extend(tokio::time::timeout(WAIT, batch).await.unwrap().unwrap());
    let last = places.last().unwrap().index;
    for m in members.iter_mut() {
        let seen = applied_until(m, last).await;
        check_entries(&seen, &places);
    }

    // Followers refuse proposals and name the leader.
    let follower = members.iter().find(|m| m.id != leader).unwrap();
    let refused = follower.handle.propose(patched(0)).unwrap().await;
    assert_eq!(
        refused,
        Err(raft::ProposalError::NotLeader {
            leader: Some(leader)
        })
    );

    // Graceful hand-off to a named node.
    let target = members
        .iter()
        .map(|m| m.id)
        .find(|&id| id != leader)
        .unwrap();
    tokio::time::timeout(WAIT, leader_handle.transfer_leadership(target))
        .await
        .unwrap()
        .unwrap();
    let all: Vec<&Member> = members.iter().collect();
    let (leader, term2) = wait_for_leader(&all, Some(leader)).await;
    assert_eq!(leader, target);
    assert!(term2 > term);
    let status = members[leader.0 as usize].handle.status().await.unwrap();
    assert_eq!(status.peers.len(), 2);

    // Kill the leader; the other two elect a new one and nothing committed is lost.
    let dead = members.remove(leader.0 as usize);
    dead.handle.shutdown();
    let _ = tokio::time::timeout(WAIT, dead.task).await.unwrap();
    let survivors: Vec<&Member> = members.iter().collect();
    let (new_leader, _) = wait_for_leader(&survivors, Some(leader)).await;
    let new_handle = members
        .iter()
        .find(|m| m.id == new_leader)
        .unwrap()
        .handle
        .clone();
    let more = propose_all(&new_handle, 1000, 50).await;
    places.extend(more);
    let last = places.last().unwrap().index;
    for m in members.iter_mut() {
        // Each survivor's stream continues; re-read from its own start is not possible, so
        // check the newly applied range plus that commit covers everything.
        let state = *m.handle.state().borrow();
        assert!(state.commit_index >= places[263].index);
        let seen = applied_after(m, last).await;
        check_entries(&seen, &places[264..]);
    }

    // The dead node comes back on its address with an empty disk: the others redial it and
    // it catches up from the leader, applying every committed entry in order.
    let listener = TcpListener::bind(&dead.addr).await.unwrap();
    let mut peers = Vec::new();
    for i in 0..3u32 {
        let addr = if NodeId(i) == dead.id {
            dead.addr.clone()
        } else {
            members
                .iter()
                .find(|m| m.id == NodeId(i))
                .unwrap()
                .addr
                .clone()
        };
        peers.push(PeerSpec {
            id: NodeId(i),
            name: format!("n{i}"),
            addr,
        });
    }
    let mut back = start_member(dead.id, peers, listener, |_| {});
    let seen = applied_until(&mut back, last).await;
    check_entries(&seen, &places);
    back.handle.shutdown();
    for m in &members {
        m.handle.shutdown();
    }
}

async fn applied_after(member: &mut Member, last: u64) -> HashMap<u64, (u64, Bytes)> {
    let mut seen = HashMap::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match member.apply.recv().await.expect("apply stream open") {
                ApplyEvent::Entries(entries) => {
                    let mut done = false;
                    for e in entries {
                        done |= e.index >= last;
                        if e.kind == EntryKind::Normal {
                            seen.insert(e.index, (e.pos, e.body));
                        }
                    }
                    if done {
                        return;
                    }
                }
                ApplyEvent::LogRestarted { .. } => {}
            }
        }
    })
    .await
    .expect("entries applied in time");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_one_commits_alone() {
    let mut members = start_group(1, true).await;
    let all: Vec<&Member> = members.iter().collect();
    let (leader, _) = wait_for_leader(&all, None).await;
    assert_eq!(leader, NodeId(0));
    let places = propose_all(&members[0].handle, 0, 10).await;
    let seen = applied_until(&mut members[0], places.last().unwrap().index).await;
    check_entries(&seen, &places);
    members[0].handle.shutdown();
}

/// A leader stopped with an entry appended but not committed must not tell its proposer
/// the entry was refused: a follower may hold it and commit it under the next leader, so
/// whoever sends it again elsewhere would store it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_pending_when_the_leader_stops_is_reported_as_possibly_committed() {
    let members = start_group(3, true).await;
    let all: Vec<&Member> = members.iter().collect();
    let (leader, _) = wait_for_leader(&all, None).await;
    for follower in members.iter().filter(|m| m.id != leader) {
        follower.handle.shutdown();
    }
    let leader = &members[leader.0 as usize];
    let before = leader.handle.state().borrow().last_index;
    let pending = leader.handle.propose(patched(0)).expect("queue has room");
    // Appended (the driver took it) but without a quorum it cannot commit.
    tokio::time::timeout(WAIT, async {
        while leader.handle.state().borrow().last_index <= before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the leader appends the entry");
    leader.handle.shutdown();
    let outcome = tokio::time::timeout(WAIT, pending).await.expect("answered");
    assert_eq!(outcome, Err(raft::ProposalError::StoppedBeforeCommit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_garbage_on_the_raft_port_change_nothing() {
    use tokio::io::AsyncWriteExt;
    let members = start_group(3, false).await;
    let all: Vec<&Member> = members.iter().collect();
    let (leader, term) = wait_for_leader(&all, None).await;
    let handle = members[leader.0 as usize].handle.clone();
    for m in &members {
        // A hello from another group, then a well-formed frame of garbage.
        let mut hello = bytes::BytesMut::new();
        raft::codec::encode_hello(
            &raft::codec::Hello {
                group: "other".into(),
                from: NodeId(1),
                settings: String::new(),
                proof: None,
            },
            &mut hello,
        );
        let mut wire = (hello.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&hello);
        wire.extend_from_slice(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        let mut s = tokio::net::TcpStream::connect(&m.addr).await.unwrap();
        let _ = s.write_all(&wire).await;
        // A frame claiming to be 4 GiB long.
        let mut s = tokio::net::TcpStream::connect(&m.addr).await.unwrap();
        let _ = s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0]).await;
    }
    let places = propose_all(&handle, 0, 20).await;
    assert_eq!(places.len(), 20);
    let state = *handle.state().borrow();
    assert_eq!(state.term, term);
    assert_eq!(state.leader, Some(leader));
    for m in &members {
        m.handle.shutdown();
    }
}

/// A member whose log segment size differs from the others' would place entries at other
/// positions: the others refuse it, and it neither joins nor disturbs their quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_configured_differently_is_refused() {
    let members = start_group_with(3, false, |id, config| {
        let segment = if id == NodeId(2) { 2048 } else { 1024 };
        config.shared_settings = format!("mappedFileSizeCommitLog={segment}");
    })
    .await;
    let pair: Vec<&Member> = members[..2].iter().collect();
    let (leader, _) = wait_for_leader(&pair, None).await;
    let places = propose_all(&members[leader.0 as usize].handle, 0, 20).await;
    assert_eq!(places.len(), 20);
    // Long enough for a follower to catch up many times over, had it been let in.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let odd = *members[2].handle.state().borrow();
    assert_eq!(odd.last_index, 0, "the odd member received entries");
    assert_eq!(odd.commit_index, 0);
    assert_ne!(odd.leader, Some(leader));
    let state = *members[leader.0 as usize].handle.state().borrow();
    assert_eq!(
        state.role,
        Role::Leader,
        "the odd member disturbed the quorum"
    );
    for m in &members {
        m.handle.shutdown();
    }
}

/// With `dLegerSecret`, a member that cannot prove the group's secret is refused like a
/// stranger: it receives nothing and disturbs nothing. A connection that says nothing, or
/// announces a first frame larger than a hello, is closed before it can hold more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_the_link_secret_is_refused_and_silent_connections_are_cut() {
    use raft::transport::LinkSecret;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let members = start_group_with(3, false, |id, config| {
        let secret = if id == NodeId(2) {
            "another-secret"
        } else {
            "the-group-secret"
        };
        config.transport.link_secret = Some(LinkSecret::new(secret));
        config.transport.hello_timeout = Duration::from_millis(500);
    })
    .await;
    let pair: Vec<&Member> = members[..2].iter().collect();
    let (leader, _) = wait_for_leader(&pair, None).await;
    let places = propose_all(&members[leader.0 as usize].handle, 0, 20).await;
    assert_eq!(places.len(), 20);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let odd = *members[2].handle.state().borrow();
    assert_eq!(
        odd.last_index, 0,
        "the member without the secret received entries"
    );
    assert_ne!(odd.leader, Some(leader));
    let state = *members[leader.0 as usize].handle.state().borrow();
    assert_eq!(
        state.role,
        Role::Leader,
        "the odd member disturbed the quorum"
    );

    // Silent, and oversized before any hello: both closed, within bounded time.
    let leader_addr = &members[leader.0 as usize].addr;
    let mut silent = tokio::net::TcpStream::connect(leader_addr).await.unwrap();
    let mut oversized = tokio::net::TcpStream::connect(leader_addr).await.unwrap();
    oversized
        .write_all(&(8u32 << 20).to_be_bytes())
        .await
        .unwrap();
    for (what, stream) in [("silent", &mut silent), ("oversized", &mut oversized)] {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the {what} connection was not closed: {read:?}"
        );
    }
    for m in &members {
        m.handle.shutdown();
    }
}

/// Waits until `member` sees `want` hold for its membership.
async fn wait_for_membership(member: &Member, want: impl Fn(&raft::Membership) -> bool) {
    let mut watch = member.handle.membership();
    tokio::time::timeout(WAIT, async {
        loop {
            if want(&watch.borrow_and_update()) {
                return;
            }
            watch.changed().await.expect("driver running");
        }
    })
    .await
    .expect("membership changes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_under_load_catches_up_and_replaces_a_removed_one() {
    let mut members = start_group(3, true).await;
    let all: Vec<&Member> = members.iter().collect();
    let (leader, _) = wait_for_leader(&all, None).await;
    let leader_handle = members[leader.0 as usize].handle.clone();
    let mut places = propose_all(&leader_handle, 0, 300).await;

    // The new member starts the way an operator starts it: the group's peers and itself.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let new_addr = listener.local_addr().unwrap().to_string();
    let mut peers: Vec<PeerSpec> = members
        .iter()
        .map(|m| PeerSpec {
            id: m.id,
            name: m.id.to_string(),
            addr: m.addr.clone(),
        })
        .collect();
    peers.push(PeerSpec {
        id: NodeId(3),
        name: "n3".into(),
        addr: new_addr.clone(),
    });
    members.push(start_member(NodeId(3), peers, listener, |_| {}));

    // Added while proposals keep coming.
    let load = {
        let handle = leader_handle.clone();
        tokio::spawn(async move { propose_all(&handle, 300, 400).await })
    };
    let added = leader_handle
        .change_membership(raft::MembershipChange::Add {
            id: NodeId(3),
            addr: new_addr,
        })
        .await
        .expect("the addition commits");
    places.extend(load.await.unwrap());
    assert!(added.index > 1);
    wait_for_membership(&members[3], |m| m.is_voter(NodeId(3))).await;
    wait_for_membership(&members[leader.0 as usize], |m| m.voter_count() == 4).await;
    let last = places.iter().map(|p| p.index).max().unwrap();
    let seen = applied_until(&mut members[3], last).await;
    check_entries(&seen, &places);

    // A second change waits for nothing now; remove a follower and stop it.
    let removed = members
        .iter()
        .map(|m| m.id)
        .find(|&id| id != leader && id != NodeId(3))
        .unwrap();
    // The promotion may not be durably committed yet: the removal waits for it.
    let removal = async {
        loop {
            match leader_handle
                .change_membership(raft::MembershipChange::Remove(removed))
                .await
            {
                Err(raft::ProposalError::ChangeInProgress) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                outcome => return outcome,
            }
        }
    };
    tokio::time::timeout(WAIT, removal)
        .await
        .expect("the removal is accepted in time")
        .expect("the removal commits");
    assert_eq!(
        leader_handle
            .change_membership(raft::MembershipChange::Remove(leader))
            .await,
        Err(raft::ProposalError::MembershipRefused(
            "the leader cannot remove itself; transfer leadership first".into()
        ))
    );
    members[removed.0 as usize].handle.shutdown();
    // Voters now: the leader, the new member and one more. Stop that one too: the leader and
    // the new member are a majority of three, so commits go on only because n3 counts.
    let third = members
        .iter()
        .map(|m| m.id)
        .find(|&id| id != leader && id != NodeId(3) && id != removed)
        .unwrap();
    let status = leader_handle.status().await.unwrap();
    assert_eq!(
        status.membership.voter_count(),
        3,
        "{:?}",
        status.membership
    );
    members[third.0 as usize].handle.shutdown();
    let more = propose_all(&leader_handle, 700, 50).await;
    let seen = applied_after(&mut members[3], more.last().unwrap().index).await;
    check_entries(&seen, &more);
}
