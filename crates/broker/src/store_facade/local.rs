//! The standalone store (`store::MessageStore`) behind the facade.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use store::{
    ArrivalListener, Boundary, GetMessageResult, PutStatus, QueryMessageResult, TagsCodeFilter,
};

use super::{
    first_phys_offset, likely_in_memory, one_record, store_time_at, GetRequest, MessageStore,
    PutError, PutOutcome, PutOutcomeStatus, RecordBatch, StoreOpError,
};

pub struct LocalStore {
    store: Arc<store::MessageStore>,
}

impl LocalStore {
    pub fn new(store: Arc<store::MessageStore>) -> Self {
        LocalStore { store }
    }

    pub fn inner(&self) -> &store::MessageStore {
        &self.store
    }
}

impl MessageStore for LocalStore {
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
        self.store.earliest_message_time_in_store()
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

    fn delete_topic(&self, topic: &str) -> Result<(), StoreOpError> {
        self.store
            .delete_topic(topic)
            .map_err(|e| StoreOpError(e.to_string()))
    }

    fn queue_offsets(&self, topic: &str) -> BTreeMap<i32, (i64, i64)> {
        self.store.topic_queue_offsets(topic)
    }

    fn runtime_info(&self) -> BTreeMap<String, String> {
        self.store.runtime_info()
    }

    fn set_arrival_listener(&self, listener: ArrivalListener) {
        self.store.set_arrival_listener(listener);
    }

    fn flush(&self) -> Result<(), StoreOpError> {
        self.store.flush().map_err(|e| StoreOpError(e.to_string()))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            // Joins the store's threads after a final flush: blocking work.
            let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        })
    }
}
