//! Three ReplicatedStores in one process, talking raft over TCP on 127.0.0.1 (free ports):
//! replication, commit-only dispatch, divergent tails, restarts, wiped disks, retention with
//! a log restart, dense queue offsets across leader changes, SYNC_FLUSH, spaced fsyncs.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{body_of, small_config, Msg};
use message::MessageView;
use parking_lot::Mutex;
use raft::{parse_peers, DriverConfig, NodeId, PeerSpec};
use store::{
    AcceptAll, FlushDiskType, MetadataApplier, PutMessageResult, ReplicatedError, ReplicatedStore,
    StoreConfig,
};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

/// Records every metadata op it is given; reports what it holds as durably applied.
#[derive(Default)]
struct Recorder {
    ops: Mutex<Vec<(u64, Vec<u8>)>>,
    restarts: Mutex<Vec<u64>>,
}

impl MetadataApplier for Recorder {
    fn applied_index(&self) -> u64 {
        self.ops.lock().last().map_or(0, |(i, _)| *i)
    }

    fn apply(&self, index: u64, _channel: u32, body: &[u8]) {
        self.ops.lock().push((index, body.to_vec()));
    }

    fn log_restarted(&self, next_index: u64) {
        self.restarts.lock().push(next_index);
    }
}

/// Counts a node's fsyncs of its log.
#[derive(Debug, Default)]
struct SyncCounter(AtomicUsize);

impl raft::DriverObserver for SyncCounter {
    fn log_synced(&self, _elapsed: Duration) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn proposals_appended(&self, _entries: usize) {}
}

struct Node {
    dir: PathBuf,
    addr: SocketAddr,
    store: Option<ReplicatedStore>,
    metadata: Arc<Recorder>,
    syncs: Arc<SyncCounter>,
}

struct Cluster {
    _tmp: tempfile::TempDir,
    peers: Vec<PeerSpec>,
    nodes: Vec<Node>,
    flush: FlushDiskType,
    segment_len: u64,
    min_sync_interval: Duration,
}

fn config(dir: &std::path::Path, flush: FlushDiskType, segment_len: u64) -> StoreConfig {
    let mut c = small_config(dir);
    c.flush_disk_type = flush;
    c.mapped_file_size_commit_log = segment_len;
    c.file_reserved_time_hours = 0;
    c
}

async fn bind(addr: SocketAddr) -> TcpListener {
    // The previous incarnation's accept loop may take a moment to let the port go.
    for _ in 0..250 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again");
}

impl Cluster {
    async fn start(flush: FlushDiskType, segment_len: u64) -> Cluster {
        Cluster::start_spaced(flush, segment_len, Duration::ZERO).await
    }

    /// A cluster whose nodes start background fsyncs at least `min_sync_interval` apart.
    async fn start_spaced(
        flush: FlushDiskType,
        segment_len: u64,
        min_sync_interval: Duration,
    ) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let list: Vec<String> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| format!("n{i}-{}", l.local_addr().unwrap()))
            .collect();
        let peers = parse_peers(&list.join(";")).unwrap();
        let mut cluster = Cluster {
            peers,
            nodes: Vec::new(),
            flush,
            segment_len,
            min_sync_interval,
            _tmp: tmp,
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let node = Node {
                dir: cluster._tmp.path().join(format!("node{i}")),
                addr: listener.local_addr().unwrap(),
                store: None,
                metadata: Arc::new(Recorder::default()),
                syncs: Arc::default(),
            };
            cluster.nodes.push(node);
            cluster.open(i, listener);
        }
        cluster
    }

    fn open(&mut self, i: usize, listener: TcpListener) {
        let mut driver = DriverConfig::new(NodeId(i as u32), self.peers.clone(), "group");
        driver.propose_timeout_ms = 2000;
        driver.min_sync_interval = self.min_sync_interval;
        let node = &mut self.nodes[i];
        let observer: Arc<dyn raft::DriverObserver> = node.syncs.clone();
        driver.observer = Some(observer);
        let metadata: Arc<dyn MetadataApplier> = node.metadata.clone();
        let (store, _) = ReplicatedStore::open(
            config(&node.dir, self.flush, self.segment_len),
            driver,
            listener,
            Some(metadata),
        )
        .unwrap();
        node.store = Some(store);
    }

    async fn restart(&mut self, i: usize) {
        let listener = bind(self.nodes[i].addr).await;
        self.open(i, listener);
    }

    async fn stop(&mut self, i: usize) {
        if let Some(store) = self.nodes[i].store.take() {
            store.close().await;
        }
    }

    fn store(&self, i: usize) -> &ReplicatedStore {
        self.nodes[i].store.as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = (usize, &ReplicatedStore)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.store.as_ref().map(|s| (i, s)))
    }

    /// The running node that is a writable leader (bounded wait).
    async fn leader(&self) -> usize {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some((i, _)) = self.running().find(|(_, s)| s.status().writable) {
                    return i;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("no writable leader")
    }

    /// Waits until every running node dispatched `count` entries of a queue.
    async fn wait_queue(&self, topic: &str, queue_id: i32, count: i64) {
        for (i, s) in self.running() {
            tokio::time::timeout(WAIT, async {
                while s.reader().max_offset(topic, queue_id) < count {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "node {i} has {} of {count} entries in {topic}:{queue_id}",
                    s.reader().max_offset(topic, queue_id)
                )
            });
            assert_eq!(
                s.reader().max_offset(topic, queue_id),
                count,
                "node {i} has extra entries"
            );
        }
    }
}

fn record(topic: &str, queue_id: i32, i: usize, len: usize) -> Vec<u8> {
    let body = body_of(i, len);
    let key = format!("key-{i}");
    let mut msg = Msg::new(topic, queue_id, &body);
    msg.keys = Some(&key);
    msg.encode()
}

/// Puts `count` messages one batch of `batch` at a time through node `leader`.
async fn put(
    store: &ReplicatedStore,
    topic: &str,
    queue_id: i32,
    from: usize,
    count: usize,
    len: usize,
) -> Vec<PutMessageResult> {
    let mut out = Vec::new();
    for chunk_start in (from..from + count).step_by(8) {
        let records: Vec<Vec<u8>> = (chunk_start..(chunk_start + 8).min(from + count))
            .map(|i| record(topic, queue_id, i, len))
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let result = store.put_messages(&refs).await.unwrap();
        out.extend(result.messages);
    }
    out
}

/// Every record of a queue as this node serves it: (queue offset, physical offset, bytes).
fn queue_records(store: &ReplicatedStore, topic: &str, queue_id: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = store.reader().min_offset(topic, queue_id);
    for _ in 0..10_000 {
        let r = store
            .reader()
            .get_messages(topic, queue_id, offset, 32, None, &AcceptAll);
        if r.messages.is_empty() && r.next_begin_offset <= offset {
            break;
        }
        for (m, o) in r.messages.iter().zip(&r.queue_offsets) {
            out.push((*o, m.clone()));
        }
        offset = r.next_begin_offset;
    }
    out
}

/// The queue on node `a` and node `b` agree on every offset both retain, byte for byte,
/// and each record sits at the physical offset it names on both nodes.
fn assert_same_queue(c: &Cluster, a: usize, b: usize, topic: &str, queue_id: i32) -> usize {
    let ra = queue_records(c.store(a), topic, queue_id);
    let rb = queue_records(c.store(b), topic, queue_id);
    let from = c
        .store(a)
        .reader()
        .min_offset(topic, queue_id)
        .max(c.store(b).reader().min_offset(topic, queue_id));
    let ra: Vec<_> = ra.into_iter().filter(|(o, _)| *o >= from).collect();
    let rb: Vec<_> = rb.into_iter().filter(|(o, _)| *o >= from).collect();
    assert_eq!(
        ra.len(),
        rb.len(),
        "nodes {a} and {b} differ in {topic}:{queue_id}"
    );
    for ((oa, ma), (ob, mb)) in ra.iter().zip(&rb) {
        assert_eq!(oa, ob);
        assert_eq!(ma, mb, "record at queue offset {oa} differs");
        let view = MessageView::parse(ma).unwrap();
        assert_eq!(view.queue_offset(), *oa);
        let phys = view.physical_offset();
        assert_eq!(c.store(a).reader().message_at(phys).as_ref(), Some(ma));
        assert_eq!(c.store(b).reader().message_at(phys).as_ref(), Some(ma));
    }
    ra.len()
}

/// Committed frames are byte-identical on every running node, from the highest first index
/// to the lowest applied index.
fn assert_same_frames(c: &Cluster) {
    let nodes: Vec<_> = c.running().collect();
    let from = nodes
        .iter()
        .map(|(_, s)| s.commit_log().first_index())
        .max()
        .unwrap();
    let to = nodes
        .iter()
        .map(|(_, s)| s.status().applied_index)
        .min()
        .unwrap();
    if to < from {
        return;
    }
    let count = (to - from + 1) as usize;
    let reference = nodes[0]
        .1
        .commit_log()
        .read_frames(from, count, usize::MAX)
        .unwrap();
    assert_eq!(reference.len(), count);
    for (i, s) in &nodes[1..] {
        let frames = s.commit_log().read_frames(from, count, usize::MAX).unwrap();
        assert!(frames == reference, "node {i}'s committed frames differ");
    }
}

fn assert_dense(results: &[PutMessageResult], first: i64) {
    for (k, r) in results.iter().enumerate() {
        assert_eq!(
            r.queue_offset,
            first + k as i64,
            "queue offsets must be dense"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_puts_reach_every_node_identically() {
    let c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    for (i, s) in c.running() {
        if i != l {
            assert!(matches!(
                s.put_messages(&[&record("T", 0, 0, 10)]).await,
                Err(ReplicatedError::NotLeader { .. })
            ));
        }
    }
    let a = put(c.store(l), "T", 0, 0, 120, 300).await;
    let b = put(c.store(l), "T", 1, 0, 40, 2000).await;
    let u = put(c.store(l), "U", 0, 0, 30, 100).await;
    assert_dense(&a, 0);
    assert_dense(&b, 0);
    assert_dense(&u, 0);
    let index = c
        .store(l)
        .propose_metadata(Bytes::from_static(b"create topic U"))
        .await
        .unwrap();
    c.wait_queue("T", 0, 120).await;
    c.wait_queue("T", 1, 40).await;
    c.wait_queue("U", 0, 30).await;
    for other in (0..3).filter(|&i| i != l) {
        assert_eq!(assert_same_queue(&c, l, other, "T", 0), 120);
        assert_eq!(assert_same_queue(&c, l, other, "T", 1), 40);
        assert_eq!(assert_same_queue(&c, l, other, "U", 0), 30);
        // The key index is built from committed entries on followers too.
        let found = c
            .store(other)
            .reader()
            .query_by_key("T", "key-7", 4, 0, i64::MAX);
        assert!(!found.messages.is_empty(), "node {other} cannot find key-7");
    }
    for node in &c.nodes {
        tokio::time::timeout(WAIT, async {
            while node.metadata.ops.lock().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(
            *node.metadata.ops.lock(),
            vec![(index, b"create topic U".to_vec())]
        );
    }
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uncommitted_entries_are_never_dispatched_and_are_cut_on_rejoin() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let old = c.leader().await;
    put(c.store(old), "T", 0, 0, 20, 200).await;
    c.wait_queue("T", 0, 20).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    for &f in &followers {
        c.stop(f).await;
    }
    // Alone, the old leader still appends for a moment, but nothing commits.
    let mut appended = false;
    for i in 0..20 {
        match c
            .store(old)
            .put_messages(&[&record("T", 0, 100 + i, 200)])
            .await
        {
            Err(ReplicatedError::OutcomeUnknown(_)) => appended = true,
            Err(ReplicatedError::NotLeader { .. }) | Err(ReplicatedError::NotReady) => break,
            other => panic!("a put without a quorum must not succeed: {other:?}"),
        }
    }
    assert!(appended, "the isolated leader appended nothing");
    let s = c.store(old);
    assert!(s.commit_log().last_index() > s.status().applied_index);
    assert_eq!(
        s.reader().max_offset("T", 0),
        20,
        "uncommitted entries were dispatched"
    );
    assert_eq!(queue_records(s, "T", 0).len(), 20);
    c.stop(old).await;

    for &f in &followers {
        c.restart(f).await;
    }
    let new = c.leader().await;
    assert_ne!(new, old);
    let more = put(c.store(new), "T", 0, 20, 15, 200).await;
    assert_dense(&more, 20);
    c.restart(old).await;
    c.wait_queue("T", 0, 35).await;
    for &f in &followers {
        assert_eq!(assert_same_queue(&c, old, f, "T", 0), 35);
    }
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_node_catches_up_and_dispatches_once() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    let f = (l + 1) % 3;
    put(c.store(l), "T", 0, 0, 50, 500).await;
    c.store(l)
        .propose_metadata(Bytes::from_static(b"op-1"))
        .await
        .unwrap();
    c.wait_queue("T", 0, 50).await;
    c.stop(f).await;
    put(c.store(l), "T", 0, 50, 50, 500).await;
    c.store(l)
        .propose_metadata(Bytes::from_static(b"op-2"))
        .await
        .unwrap();
    c.restart(f).await;
    c.wait_queue("T", 0, 100).await;
    assert_eq!(assert_same_queue(&c, l, f, "T", 0), 100);
    // Once more, with nothing new: the queue neither loses nor repeats an entry.
    c.stop(f).await;
    c.restart(f).await;
    let s = c.store(f);
    tokio::time::timeout(WAIT, async {
        while s.status().applied_index < c.store(l).status().commit_index {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(s.reader().max_offset("T", 0), 100);
    assert_eq!(assert_same_queue(&c, l, f, "T", 0), 100);
    let ops: Vec<Vec<u8>> = c.nodes[f]
        .metadata
        .ops
        .lock()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        ops,
        vec![b"op-1".to_vec(), b"op-2".to_vec()],
        "each op exactly once"
    );
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiped_node_is_rebuilt_from_the_leader() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    let f = (l + 2) % 3;
    put(c.store(l), "T", 0, 0, 60, 700).await;
    c.wait_queue("T", 0, 60).await;
    c.stop(f).await;
    std::fs::remove_dir_all(&c.nodes[f].dir).unwrap();
    c.nodes[f].metadata = Arc::new(Recorder::default());
    c.restart(f).await;
    put(c.store(l), "T", 0, 60, 10, 700).await;
    c.wait_queue("T", 0, 70).await;
    assert_eq!(
        c.store(f).commit_log().first_index(),
        1,
        "re-replicated from the start"
    );
    assert_eq!(assert_same_queue(&c, l, f, "T", 0), 70);
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_behind_retention_is_reset_and_its_queues_go_on() {
    // 16 KiB segments hold 14 records of 1 KiB.
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 16 * 1024).await;
    let l = c.leader().await;
    let f = (l + 1) % 3;
    let other = (l + 2) % 3;
    put(c.store(l), "T", 0, 0, 40, 1000).await;
    c.wait_queue("T", 0, 40).await;
    c.stop(f).await;
    let f_last = 41u64; // its log ends around here; the leader must drop past it
    put(c.store(l), "T", 0, 40, 100, 1000).await;
    // Retention on the running nodes; segments go at their next commits.
    let mut n = 140;
    for _ in 0..100 {
        for i in [l, other] {
            c.store(i).clean_expired_files_now().unwrap();
        }
        put(c.store(l), "T", 0, n, 1, 1000).await;
        n += 1;
        if c.store(l).commit_log().first_index() > f_last + 20
            && c.store(other).commit_log().first_index() > f_last + 20
        {
            break;
        }
    }
    let first = c.store(l).commit_log().first_index();
    assert!(first > f_last + 20, "retention did not move the log start");
    assert!(c.store(l).removed_segments() > 0);
    assert!(
        c.store(l).reader().min_offset("T", 0) > 0,
        "queue files below the log start stay"
    );

    c.restart(f).await;
    put(c.store(l), "T", 0, n, 5, 1000).await;
    let total = (n + 5) as i64;
    c.wait_queue("T", 0, total).await;
    let s = c.store(f);
    assert!(
        s.commit_log().first_index() > f_last,
        "the node was not reset"
    );
    assert!(!c.nodes[f].metadata.restarts.lock().is_empty());
    let shared = assert_same_queue(&c, l, f, "T", 0);
    assert!(shared > 0);
    assert_eq!(s.reader().max_offset("T", 0), total);
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_offsets_stay_dense_across_a_leader_change() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let first = c.leader().await;
    let a0 = put(c.store(first), "T", 0, 0, 30, 200).await;
    let a1 = put(c.store(first), "T", 1, 0, 10, 200).await;
    assert_dense(&a0, 0);
    assert_dense(&a1, 0);
    c.stop(first).await;
    let second = c.leader().await;
    let b0 = put(c.store(second), "T", 0, 30, 30, 200).await;
    let b1 = put(c.store(second), "T", 1, 10, 5, 200).await;
    assert_dense(&b0, 30);
    assert_dense(&b1, 10);
    c.restart(first).await;
    c.wait_queue("T", 0, 60).await;
    c.wait_queue("T", 1, 15).await;
    for i in (0..3).filter(|&i| i != second) {
        assert_eq!(assert_same_queue(&c, second, i, "T", 0), 60);
        assert_eq!(assert_same_queue(&c, second, i, "T", 1), 15);
    }
    assert_same_frames(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_flush_puts_are_fsynced_on_a_quorum() {
    let c = Cluster::start(FlushDiskType::SyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    let results = put(c.store(l), "T", 0, 0, 40, 500).await;
    assert_dense(&results, 0);
    let last = results.last().unwrap();
    let end = (last.phys_offset + i64::from(last.size)) as u64;
    let durable = c
        .running()
        .filter(|(_, s)| s.commit_log().durable().pos >= end)
        .count();
    assert!(
        durable >= 2,
        "only {durable} nodes fsynced an acknowledged put"
    );
    c.wait_queue("T", 0, 40).await;
    for other in (0..3).filter(|&i| i != l) {
        assert_eq!(assert_same_queue(&c, l, other, "T", 0), 40);
    }
}

/// Watchers of a member's standing (role manager, demotion, metrics) wake when the leader,
/// term, role or readiness changes, not with every committed batch: puts move commit and
/// applied index, readable at once, without waking them. A leader change still wakes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standing_watchers_wake_on_leadership_not_on_every_batch() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    put(c.store(l), "T", 0, 0, 8, 100).await;
    c.wait_queue("T", 0, 8).await;
    let mut watchers: Vec<_> = c
        .running()
        .map(|(i, s)| {
            let mut status = s.subscribe();
            let mut raft = s.raft().state();
            let before = (
                status.borrow_and_update().applied_index,
                raft.borrow_and_update().commit_index,
            );
            (i, status, raft, before)
        })
        .collect();
    put(c.store(l), "T", 0, 8, 120, 100).await;
    c.wait_queue("T", 0, 128).await;
    for (i, status, raft, (applied, commit)) in &watchers {
        assert!(
            status.borrow().applied_index > *applied,
            "node {i} applied nothing new"
        );
        assert!(
            raft.borrow().commit_index > *commit,
            "node {i} committed nothing new"
        );
        assert!(
            !status.has_changed().unwrap(),
            "node {i} woke its status watchers for puts"
        );
        assert!(
            !raft.has_changed().unwrap(),
            "node {i} woke its raft state watchers for puts"
        );
    }
    c.stop(l).await;
    for (i, status, raft, _) in watchers.iter_mut().filter(|(i, ..)| *i != l) {
        tokio::time::timeout(WAIT, raft.changed())
            .await
            .unwrap_or_else(|_| panic!("node {i} saw no leader change"))
            .unwrap();
        tokio::time::timeout(WAIT, status.changed())
            .await
            .unwrap_or_else(|_| panic!("node {i} reported no change of standing"))
            .unwrap();
    }
}

/// With ASYNC_FLUSH nobody waits on a member's fsync to be acknowledged, so fsyncs may be
/// spaced out (the broker's `dLegerFlushIntervalMs`): under a steady stream of puts no
/// node starts two fsyncs closer than the interval, and every put still becomes visible
/// everywhere (a held-back fsync does start).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_flush_fsyncs_are_spaced_and_everything_becomes_visible() {
    let interval = Duration::from_millis(100);
    let c = Cluster::start_spaced(FlushDiskType::AsyncFlush, 64 * 1024, interval).await;
    let l = c.leader().await;
    let before: Vec<usize> = c
        .nodes
        .iter()
        .map(|n| n.syncs.0.load(Ordering::Relaxed))
        .collect();
    let started = std::time::Instant::now();
    for round in 0..20 {
        let results = put(c.store(l), "T", 0, round * 2, 2, 200).await;
        assert_dense(&results, (round * 2) as i64);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    c.wait_queue("T", 0, 40).await;
    let elapsed = started.elapsed();
    // One fsync may have started just before `started`; then one per interval at most.
    let most = (elapsed.as_millis() / interval.as_millis()) as usize + 2;
    for (i, node) in c.nodes.iter().enumerate() {
        let syncs = node.syncs.0.load(Ordering::Relaxed) - before[i];
        assert!(
            syncs <= most,
            "node {i} fsynced {syncs} times in {elapsed:?}, at most {most} expected"
        );
    }
}

/// Appends the leading records of a batch to node `i`'s stopped log, as a leader that
/// crashed part-way through replicating it leaves them: in the log's last term, queue
/// offsets from `first_offset`, without the batch's last record.
fn append_unfinished_batch(c: &Cluster, i: usize, first_offset: i64, count: usize) {
    let cfg = config(&c.nodes[i].dir, c.flush, c.segment_len);
    let accept = |_: &raft::entry::EntryHeader,
                  _: &[u8]|
     -> Result<(), store::commit_log::InvalidBody> { Ok(()) };
    let (log, _) = store::commit_log::CommitLog::open(
        store::commit_log::CommitLogConfig {
            dir: c.nodes[i].dir.join(format!("dledger-n{i}")).join("data"),
            segment_len: cfg.mapped_file_size_commit_log,
            index_slots_per_file: cfg.entry_index_slots_per_file,
            max_body_len: cfg.max_message_size,
            max_batch_bytes: 4 << 20,
            write_through_file: true,
            warm_ahead: true,
        },
        &accept,
    )
    .unwrap();
    assert!(log.last_index() > 20, "not the member's log");
    let term = log.term_at(log.last_index()).unwrap();
    let mut batch = log.begin_append().unwrap();
    for k in 0..count {
        let rec = record("T", 0, 1000 + k, 200);
        batch
            .append_with(
                raft::entry::EntryKind::Normal,
                term,
                store::dispatch::CHANNEL_MESSAGE_BATCH_PART,
                rec.len(),
                |placement, out| {
                    out.copy_from_slice(&rec);
                    message::record::patch_queue_offset(out, first_offset + k as i64).unwrap();
                    message::record::patch_physical_offset(out, placement.body_pos() as i64)
                        .unwrap();
                    Ok(())
                },
            )
            .unwrap();
    }
    batch.commit().unwrap();
    log.flush().unwrap();
}

/// A leader that crashed after replicating part of a batch to a majority: the new leader
/// commits those entries with its first entry, but no member dispatches them (the sender
/// was never told the batch was stored), and the queue goes on densely after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_replicated_part_way_is_never_dispatched() {
    let mut c = Cluster::start(FlushDiskType::AsyncFlush, 64 * 1024).await;
    let l = c.leader().await;
    put(c.store(l), "T", 0, 0, 20, 200).await;
    c.wait_queue("T", 0, 20).await;
    for i in 0..3 {
        c.stop(i).await;
    }
    let majority = [l, (l + 1) % 3];
    for &i in &majority {
        append_unfinished_batch(&c, i, 20, 3);
    }
    for i in 0..3 {
        c.restart(i).await;
    }
    let new = c.leader().await;
    assert!(
        majority.contains(&new),
        "only a member holding the entries can lead"
    );
    // The new leader's first entry committed the parts: every member applied past them.
    let parts_end = c.store(new).commit_log().last_index();
    tokio::time::timeout(WAIT, async {
        while c
            .running()
            .any(|(_, s)| s.status().applied_index < parts_end)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("members did not apply the new leader's first entry");
    for (i, s) in c.running() {
        assert_eq!(
            s.reader().max_offset("T", 0),
            20,
            "node {i} dispatched records of an unfinished batch"
        );
    }
    let more = put(c.store(new), "T", 0, 20, 8, 200).await;
    assert_dense(&more, 20);
    c.wait_queue("T", 0, 28).await;
    let others: Vec<usize> = (0..3).filter(|&i| i != new).collect();
    for &o in &others {
        assert_eq!(assert_same_queue(&c, new, o, "T", 0), 28);
    }
    let records = queue_records(c.store(new), "T", 0);
    let view = MessageView::parse(&records[20].1).unwrap();
    assert_eq!(view.body(), body_of(20, 200).as_slice());
    assert_same_frames(&c);
}
