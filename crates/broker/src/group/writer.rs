//! The leader's one door for metadata changes: ops are proposed through the raft log, one
//! proposal at a time, each carrying every write that queued up meanwhile (a batch), so a
//! burst of topic creations or offset commits costs one round trip per batch, not per op.
//!
//! Offset commits carried by pulls are fire-and-forget: they are coalesced per queue (only
//! the newest offset matters) and go out with the next proposal. A caller of
//! [`MetadataWriter::write`] waits until its op is committed and applied on this node.
//!
//! One proposal in flight at a time keeps ops in the order they were written and means
//! that when the writer is idle, this node's tables hold every metadata op in the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use store::{ReplicatedError, ReplicatedStore};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::limits;
use crate::metadata::{MetaError, MetadataOp, OffsetOp};

/// Writes waiting for the next proposal; beyond it `write` fails fast.
const QUEUE_LEN: usize = 4096;
/// Ops in one proposal.
const MAX_OPS_PER_ENTRY: usize = 512;
/// Encoded bytes of one proposal (well under raft's entry limit).
const MAX_ENTRY_BYTES: usize = 512 * 1024;
/// How long a writer waits for its op beyond raft's own proposal timeout.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Write {
    op: MetadataOp,
    done: oneshot::Sender<Result<(), MetaError>>,
}

type QueueKey = (String, String, i32);

pub struct MetadataWriter {
    store: Arc<ReplicatedStore>,
    writes: mpsc::Sender<Write>,
    queue: Mutex<Option<mpsc::Receiver<Write>>>,
    /// (group, topic, queue id) → newest committed offset not yet proposed.
    pending_offsets: Mutex<HashMap<QueueKey, i64>>,
    offsets_waiting: Notify,
}

fn replication_error(e: ReplicatedError) -> MetaError {
    match e {
        ReplicatedError::NotLeader { leader } => MetaError::NotLeader(match leader {
            Some(leader) => format!("the leader is {leader}"),
            None => "no leader elected".into(),
        }),
        ReplicatedError::NotReady => MetaError::NotLeader("the leader is not ready yet".into()),
        ReplicatedError::Stopped => MetaError::NotLeader("the raft node stopped".into()),
        other => MetaError::Replication(other.to_string()),
    }
}

impl MetadataWriter {
    pub fn new(store: Arc<ReplicatedStore>) -> Arc<MetadataWriter> {
        let (writes, queue) = mpsc::channel(QUEUE_LEN);
        Arc::new(MetadataWriter {
            store,
            writes,
            queue: Mutex::new(Some(queue)),
            pending_offsets: Mutex::new(HashMap::new()),
            offsets_waiting: Notify::new(),
        })
    }

    /// Proposes `op` and waits until it is committed and applied here.
    pub async fn write(&self, op: MetadataOp) -> Result<(), MetaError> {
        if !self.store.status().writable {
            return Err(replication_error(not_writable(&self.store)));
        }
        let (done, result) = oneshot::channel();
        self.writes
            .try_send(Write { op, done })
            .map_err(|_| MetaError::Replication("too many metadata writes queued".into()))?;
        match tokio::time::timeout(WRITE_TIMEOUT, result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(MetaError::NotLeader("the broker is stopping".into())),
            Err(_) => Err(MetaError::Replication(
                "metadata write not committed in time".into(),
            )),
        }
    }

    /// Queues an offset commit for the next proposal, replacing an older one for the queue.
    pub fn commit_offset(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        {
            let mut pending = self.pending_offsets.lock();
            let key = (group.to_owned(), topic.to_owned(), queue_id);
            if pending.len() >= limits::MAX_OFFSET_KEYS && !pending.contains_key(&key) {
                warn!(%group, %topic, "too many offset commits pending; this one is dropped");
                return;
            }
            pending.insert(key, offset);
        }
        self.offsets_waiting.notify_one();
    }

    /// Proposes queued writes until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(mut queue) = self.queue.lock().take() else {
            return;
        };
        loop {
            let mut writes = Vec::new();
            tokio::select! {
                write = queue.recv() => match write {
                    Some(write) => writes.push(write),
                    None => return,
                },
                _ = self.offsets_waiting.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            while writes.len() < MAX_OPS_PER_ENTRY {
                match queue.try_recv() {
                    Ok(write) => writes.push(write),
                    Err(_) => break,
                }
            }
            let offsets: Vec<MetadataOp> = std::mem::take(&mut *self.pending_offsets.lock())
                .into_iter()
                .map(|((group, topic, queue_id), offset)| {
                    MetadataOp::Offset(OffsetOp::Commit {
                        group,
                        topic,
                        queue_id,
                        offset,
                    })
                })
                .collect();
            self.propose_writes(writes).await;
            self.propose_offsets(offsets).await;
        }
    }

    async fn propose_writes(&self, writes: Vec<Write>) {
        let mut chunk: Vec<Write> = Vec::new();
        let mut chunk_bytes = 0;
        for write in writes {
            let size = match write.op.encode() {
                Ok(bytes) => bytes.len(),
                Err(e) => {
                    let _ = write.done.send(Err(e));
                    continue;
                }
            };
            if !chunk.is_empty() && chunk_bytes + size > MAX_ENTRY_BYTES {
                self.propose_chunk(std::mem::take(&mut chunk)).await;
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push(write);
        }
        if !chunk.is_empty() {
            self.propose_chunk(chunk).await;
        }
    }

    async fn propose_chunk(&self, chunk: Vec<Write>) {
        let (ops, waiters): (Vec<MetadataOp>, Vec<_>) =
            chunk.into_iter().map(|w| (w.op, w.done)).unzip();
        let result = self.propose(ops).await;
        for waiter in waiters {
            let _ = waiter.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(match e {
                    MetaError::NotLeader(s) => MetaError::NotLeader(s.clone()),
                    other => MetaError::Replication(other.to_string()),
                }),
            });
        }
    }

    /// Offset commits are lost if this node is not (or no longer) the leader: consumers
    /// commit again to the next master.
    async fn propose_offsets(&self, offsets: Vec<MetadataOp>) {
        for chunk in offsets.chunks(MAX_OPS_PER_ENTRY) {
            if let Err(e) = self.propose(chunk.to_vec()).await {
                debug!(error = %e, commits = chunk.len(), "offset commits not replicated");
                return;
            }
        }
    }

    async fn propose(&self, ops: Vec<MetadataOp>) -> Result<(), MetaError> {
        if ops.is_empty() {
            return Ok(());
        }
        if !self.store.status().writable {
            return Err(replication_error(not_writable(&self.store)));
        }
        // Writes that are batches themselves (a topic deleted with its offsets) join the
        // entry's one flat batch: the applier refuses nested batches.
        let flat: Vec<MetadataOp> = ops
            .into_iter()
            .flat_map(|op| match op {
                MetadataOp::Batch(inner) => inner,
                op => vec![op],
            })
            .collect();
        let body = Bytes::from(MetadataOp::Batch(flat).encode()?);
        self.store
            .propose_metadata(body)
            .await
            .map(|_| ())
            .map_err(replication_error)
    }
}

fn not_writable(store: &ReplicatedStore) -> ReplicatedError {
    let status = store.status();
    if status.role == raft::Role::Leader {
        ReplicatedError::NotReady
    } else {
        ReplicatedError::NotLeader {
            leader: status.leader.filter(|l| *l != status.id),
        }
    }
}
