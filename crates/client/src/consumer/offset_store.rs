//! Consumer progress: kept in memory as consumption advances, and persisted periodically
//! and on shutdown — on the brokers for clustering, locally for broadcasting (where each
//! member has its own progress).

use std::collections::HashMap;
use std::path::PathBuf;

use parking_lot::Mutex;
use remoting::body::MessageQueue;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::broker_api::StoredOffset;
use crate::consumer::pull::master_addr;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;

pub(crate) enum Backend {
    /// The brokers store the group's offsets (clustering).
    Broker { instance: ClientInstance },
    /// This process stores its own offsets, in a file when a path is given.
    Local { file: Option<PathBuf> },
}

pub(crate) struct OffsetStore {
    group: String,
    backend: Backend,
    table: Mutex<HashMap<MessageQueue, i64>>,
}

#[derive(Serialize, Deserialize)]
struct LocalEntry {
    topic: String,
    broker_name: String,
    queue_id: i32,
    offset: i64,
}

impl OffsetStore {
    pub(crate) fn new(group: &str, backend: Backend) -> Self {
        let store = OffsetStore {
            group: group.to_owned(),
            backend,
            table: Mutex::new(HashMap::new()),
        };
        store.load_local_file();
        store
    }

    fn load_local_file(&self) {
        let Backend::Local { file: Some(path) } = &self.backend else {
            return;
        };
        let Ok(text) = std::fs::read(path) else {
            return;
        };
        match serde_json::from_slice::<Vec<LocalEntry>>(&text) {
            Ok(entries) => {
                let mut table = self.table.lock();
                for entry in entries {
                    table.insert(
                        MessageQueue::new(&entry.topic, &entry.broker_name, entry.queue_id),
                        entry.offset,
                    );
                }
            }
            Err(error) => warn!(path = %path.display(), %error, "ignoring unreadable offsets file"),
        }
    }

    /// Records progress. With `increase_only`, an older offset never replaces a newer one
    /// (concurrent consumers finish out of order).
    pub(crate) fn update(&self, queue: &MessageQueue, offset: i64, increase_only: bool) {
        let mut table = self.table.lock();
        let entry = table.entry(queue.clone()).or_insert(offset);
        if !increase_only || offset > *entry {
            *entry = offset;
        }
    }

    pub(crate) fn in_memory(&self, queue: &MessageQueue) -> Option<i64> {
        self.table.lock().get(queue).copied()
    }

    /// The stored offset of a newly assigned queue.
    pub(crate) async fn fetch(&self, queue: &MessageQueue) -> Result<StoredOffset> {
        match &self.backend {
            Backend::Broker { instance } => {
                let addr = master_addr(instance, queue).await?;
                let stored = instance
                    .query_consumer_offset(&addr, &self.group, queue)
                    .await?;
                if let StoredOffset::Found(offset) = stored {
                    self.update(queue, offset, false);
                }
                Ok(stored)
            }
            Backend::Local { .. } => Ok(match self.in_memory(queue) {
                Some(offset) => StoredOffset::Found(offset),
                None => StoredOffset::NotFound,
            }),
        }
    }

    /// Persists one queue's offset (e.g. when it is taken away by a rebalance).
    pub(crate) async fn persist(&self, queue: &MessageQueue) -> Result<()> {
        let Some(offset) = self.in_memory(queue) else {
            return Ok(());
        };
        match &self.backend {
            Backend::Broker { instance } => {
                let addr = master_addr(instance, queue).await?;
                instance
                    .update_consumer_offset(&addr, &self.group, queue, offset)
                    .await
            }
            Backend::Local { .. } => self.write_local_file(),
        }
    }

    /// Persists the offsets of `queues`; failures are logged and the rest go on.
    pub(crate) async fn persist_all(&self, queues: &[MessageQueue]) {
        match &self.backend {
            Backend::Broker { .. } => {
                for queue in queues {
                    if let Err(error) = self.persist(queue).await {
                        debug!(?queue, %error, "persisting a consumer offset failed");
                    }
                }
            }
            Backend::Local { .. } => {
                if let Err(error) = self.write_local_file() {
                    warn!(%error, "persisting local consumer offsets failed");
                }
            }
        }
    }

    pub(crate) fn forget(&self, queue: &MessageQueue) {
        if matches!(self.backend, Backend::Broker { .. }) {
            self.table.lock().remove(queue);
        }
    }

    fn write_local_file(&self) -> Result<()> {
        let Backend::Local { file: Some(path) } = &self.backend else {
            return Ok(());
        };
        let entries: Vec<LocalEntry> = self
            .table
            .lock()
            .iter()
            .map(|(queue, offset)| LocalEntry {
                topic: queue.topic.clone(),
                broker_name: queue.broker_name.clone(),
                queue_id: queue.queue_id,
                offset: *offset,
            })
            .collect();
        let io_error = |error: std::io::Error| {
            ClientError::InvalidArgument(format!("offsets file {}: {error}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        let bytes = serde_json::to_vec(&entries)
            .map_err(|err| ClientError::InvalidArgument(format!("offsets: {err}")))?;
        // Write then rename, so a crash never leaves a torn file.
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, bytes).map_err(io_error)?;
        std::fs::rename(&temp, path).map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_offsets_only_move_forward_and_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("client-offsets-{}", std::process::id()));
        let path = dir.join("group.json");
        let queue = MessageQueue::new("T", "b", 1);
        {
            let store = OffsetStore::new(
                "g",
                Backend::Local {
                    file: Some(path.clone()),
                },
            );
            assert_eq!(store.fetch(&queue).await.unwrap(), StoredOffset::NotFound);
            store.update(&queue, 10, true);
            store.update(&queue, 7, true);
            assert_eq!(store.in_memory(&queue), Some(10));
            store.update(&queue, 7, false);
            assert_eq!(store.in_memory(&queue), Some(7));
            store.persist_all(std::slice::from_ref(&queue)).await;
        }
        let reopened = OffsetStore::new("g", Backend::Local { file: Some(path) });
        assert_eq!(
            reopened.fetch(&queue).await.unwrap(),
            StoredOffset::Found(7)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
