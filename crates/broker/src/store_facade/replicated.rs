//! A broker's store in a raft group (`store::ReplicatedStore`, DLedger mode) behind the
//! facade. Puts go through the raft leader and complete once committed; reads only see
//! committed, dispatched messages. Raft's outcomes map to the codes RocketMQ brokers answer
//! in DLedger mode: not the leader / not ready → SERVICE_NOT_AVAILABLE (producers retry on
//! the new master), leader pending full → SYSTEM_BUSY, quorum not reached in time →
//! SYSTEM_ERROR.
//!
//! Wiring a broker to it (role changes from `ReplicaStatus`, metadata ops through
//! `propose_metadata` and a `MetadataApplier`) is the raft group's broker work; this adapter
//! is the message path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use futures::future::BoxFuture;
use store::{ReplicatedError, ReplicatedStore, StoreReader};

use super::{put_outcome, MessageStore, PutError, PutOutcome, RecordBatch, StoreOpError};

pub struct ReplicatedFacade {
    store: Arc<ReplicatedStore>,
}

impl ReplicatedFacade {
    pub fn new(store: Arc<ReplicatedStore>) -> Self {
        ReplicatedFacade { store }
    }

    pub fn inner(&self) -> &ReplicatedStore {
        &self.store
    }
}

impl From<ReplicatedError> for PutError {
    fn from(error: ReplicatedError) -> Self {
        let text = error.to_string();
        match error {
            ReplicatedError::NotLeader { .. }
            | ReplicatedError::NotReady
            | ReplicatedError::Stopped => PutError::ServiceNotAvailable(text),
            ReplicatedError::Busy(_) => PutError::SystemBusy(text),
            ReplicatedError::Store(e) => PutError::from(e),
            ReplicatedError::OutcomeUnknown(_) => PutError::OutcomeUnknown(text),
            ReplicatedError::Raft(_)
            | ReplicatedError::HardState(_)
            | ReplicatedError::MembershipRefused(_) => PutError::SystemError(text),
        }
    }
}

impl MessageStore for ReplicatedFacade {
    fn reader(&self) -> &StoreReader {
        self.store.reader()
    }

    fn message_after_put(
        &self,
        phys_offset: i64,
        max_wait: Duration,
    ) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(self.store.message_after_put(phys_offset, max_wait))
    }

    fn put(&self, batch: RecordBatch) -> BoxFuture<'_, Result<PutOutcome, PutError>> {
        Box::pin(async move {
            let records = batch.records();
            Ok(put_outcome(self.store.put_messages(&records).await?))
        })
    }

    /// Queues of a deleted topic stay until retention removes their segments: dropping them
    /// would have to happen on every node at the same log position (a metadata op).
    fn delete_topic(&self, _topic: &str) -> Result<(), StoreOpError> {
        Ok(())
    }

    fn runtime_info(&self) -> BTreeMap<String, String> {
        let status = self.store.status();
        BTreeMap::from([
            ("dLegerRole".to_owned(), format!("{:?}", status.role)),
            ("dLegerTerm".to_owned(), status.term.to_string()),
            (
                "dLegerCommitIndex".to_owned(),
                status.commit_index.to_string(),
            ),
            (
                "dLegerAppliedIndex".to_owned(),
                status.applied_index.to_string(),
            ),
            ("dLegerWritable".to_owned(), status.writable.to_string()),
            (
                "commitLogMaxOffset".to_owned(),
                self.store.commit_log().write_pos().to_string(),
            ),
        ])
    }

    fn flush(&self) -> Result<(), StoreOpError> {
        self.store.flush().map_err(|e| StoreOpError(e.to_string()))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.store.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::code::response;

    #[test]
    fn raft_outcomes_map_to_the_codes_producers_retry_on() {
        let code = |e: ReplicatedError| PutError::from(e).response_code();
        assert_eq!(
            code(ReplicatedError::NotLeader { leader: None }),
            response::SERVICE_NOT_AVAILABLE
        );
        assert_eq!(
            code(ReplicatedError::NotReady),
            response::SERVICE_NOT_AVAILABLE
        );
        assert_eq!(
            code(ReplicatedError::Busy("full".into())),
            response::SYSTEM_BUSY
        );
        assert_eq!(
            code(ReplicatedError::OutcomeUnknown("timeout".into())),
            response::SYSTEM_ERROR
        );
        assert_eq!(
            code(ReplicatedError::Store(store::StoreError::BadRecord(
                "x".into()
            ))),
            response::MESSAGE_ILLEGAL
        );
    }
}
