//! The standalone store (`store::StandaloneStore`) behind the facade.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use store::{StandaloneStore, StoreReader};

use super::{put_outcome, MessageStore, PutError, PutOutcome, RecordBatch, StoreOpError};

pub struct StandaloneFacade {
    store: Arc<StandaloneStore>,
}

impl StandaloneFacade {
    pub fn new(store: Arc<StandaloneStore>) -> Self {
        StandaloneFacade { store }
    }

    pub fn inner(&self) -> &StandaloneStore {
        &self.store
    }
}

impl MessageStore for StandaloneFacade {
    fn reader(&self) -> &StoreReader {
        self.store.reader()
    }

    fn put(&self, batch: RecordBatch) -> BoxFuture<'_, Result<PutOutcome, PutError>> {
        Box::pin(async move {
            let records = batch.records();
            Ok(put_outcome(self.store.put_messages(&records).await?))
        })
    }

    fn delete_topic(&self, topic: &str) -> Result<(), StoreOpError> {
        self.store
            .delete_topic(topic)
            .map_err(|e| StoreOpError(e.to_string()))
    }

    fn runtime_info(&self) -> BTreeMap<String, String> {
        self.store.runtime_info()
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
