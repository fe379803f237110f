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

use bytes::Bytes;
use futures::future::BoxFuture;
use store::{
    ArrivalListener, Boundary, GetMessageResult, PutStatus, QueryMessageResult, ReplicatedError,
    ReplicatedStore, TagsCodeFilter,
};

use super::{
    first_phys_offset, likely_in_memory, one_record, store_time_at, GetRequest, MessageStore,
    PutError, PutOutcome, PutOutcomeStatus, RecordBatch, StoreOpError,
};

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
            ReplicatedError::OutcomeUnknown(_)
            | ReplicatedError::Raft(_)
            | ReplicatedError::HardState(_) => PutError::SystemError(text),
        }
    }
}

impl MessageStore for ReplicatedFacade {
    fn put(&self, batch: RecordBatch) -> BoxFuture<'_, Result<PutOutcome, PutError>> {
        Box::pin(async move {
            let records = batch.records();
            let result = self.store.put_messages(&records).await?;
            let status = match result.status {
                PutStatus::PutOk => PutOutcomeStatus::Ok,
                PutStatus::FlushDiskTimeout => PutOutcomeStatus::FlushDiskTimeout,
            };
            Ok(PutOutcome {
                status,
                messages: result.messages,
            })
        })
    }

    fn get(&self, request: &GetRequest<'_>, filter: &dyn TagsCodeFilter) -> GetMessageResult {
        self.store.get_messages(
            request.topic,
            request.queue_id,
            request.offset,
            request.max_count,
            request.max_bytes,
            filter,
        )
    }

    fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.store.max_offset(topic, queue_id)
    }

    fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.store.min_offset(topic, queue_id)
    }

    fn offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64 {
        self.store
            .offset_by_timestamp(topic, queue_id, timestamp_ms, boundary)
    }

    fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        self.store.earliest_message_time(topic, queue_id)
    }

    fn message_store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        store_time_at(one_record(self, topic, queue_id, offset))
    }

    fn earliest_message_time_in_store(&self) -> Option<i64> {
        None
    }

    fn message_at(&self, phys_offset: i64) -> Option<Bytes> {
        self.store.message_at(phys_offset)
    }

    fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> QueryMessageResult {
        self.store
            .query_by_key(topic, key, max_count, begin_ms, end_ms)
    }

    fn is_in_memory(&self, topic: &str, queue_id: i32, offset: i64) -> bool {
        let Some(phys_offset) = first_phys_offset(&one_record(self, topic, queue_id, offset))
        else {
            return false;
        };
        let log_end = self.store.commit_log().write_pos();
        likely_in_memory(log_end.saturating_sub(u64::try_from(phys_offset).unwrap_or(0)))
    }

    /// Queues of a deleted topic stay until retention removes their segments: dropping them
    /// would have to happen on every node at the same log position (a metadata op).
    fn delete_topic(&self, _topic: &str) -> Result<(), StoreOpError> {
        Ok(())
    }

    fn queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)> {
        self.store.topic_queue_offsets(topic)
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

    fn set_arrival_listener(&self, listener: ArrivalListener) {
        self.store.set_arrival_listener(listener);
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
