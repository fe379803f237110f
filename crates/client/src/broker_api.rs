//! Typed broker requests used by more than one part of the client: queue offsets,
//! consumer offsets, consumer lists, queue locks, send-back and unregistering.
//!
//! Each call takes the broker address; choosing it (master, suggested member) is the
//! caller's business.

use std::collections::BTreeSet;
use std::time::Duration;

use remoting::body::{ConsumerListBody, LockBatchRequestBody, LockBatchResponseBody, MessageQueue};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::client::{
    ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};
use remoting::header::offset::{
    BoundaryType, GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};

use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;

/// A consumer offset lookup's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredOffset {
    /// The group's committed offset.
    Found(i64),
    /// The broker has no offset for the group on that queue (QUERY_NOT_FOUND).
    NotFound,
}

impl ClientInstance {
    /// The next offset to be written in `queue` (GET_MAX_OFFSET).
    pub async fn max_offset(&self, addr: &str, queue: &MessageQueue) -> Result<i64> {
        let header = GetMaxOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            committed: true,
        };
        self.offset_call(
            addr,
            RemotingCommand::request(request::GET_MAX_OFFSET).with_header(&header),
        )
        .await
    }

    /// The smallest offset still stored in `queue` (GET_MIN_OFFSET).
    pub async fn min_offset(&self, addr: &str, queue: &MessageQueue) -> Result<i64> {
        let header = GetMinOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
        };
        self.offset_call(
            addr,
            RemotingCommand::request(request::GET_MIN_OFFSET).with_header(&header),
        )
        .await
    }

    /// The first offset in `queue` stored at or after `timestamp_ms`
    /// (SEARCH_OFFSET_BY_TIMESTAMP).
    pub async fn search_offset(
        &self,
        addr: &str,
        queue: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64> {
        let header = SearchOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            timestamp: timestamp_ms,
            boundary_type: BoundaryType::Lower,
        };
        self.offset_call(
            addr,
            RemotingCommand::request(request::SEARCH_OFFSET_BY_TIMESTAMP).with_header(&header),
        )
        .await
    }

    async fn offset_call(&self, addr: &str, request: RemotingCommand) -> Result<i64> {
        let response = self
            .invoke_ok(addr, request, self.options().request_timeout)
            .await?;
        response
            .decode_header::<OffsetResponseHeader>()
            .map(|header| header.offset)
            .map_err(|err| ClientError::malformed(addr, err))
    }

    /// The group's committed offset on `queue`. Asks the broker not to invent 0 for a
    /// group it has never seen, so the consumer's consume-from-where decides.
    pub async fn query_consumer_offset(
        &self,
        addr: &str,
        group: &str,
        queue: &MessageQueue,
    ) -> Result<StoredOffset> {
        let header = QueryConsumerOffsetRequestHeader {
            consumer_group: group.to_owned(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            set_zero_if_not_found: Some(false),
        };
        let request = RemotingCommand::request(request::QUERY_CONSUMER_OFFSET).with_header(&header);
        let response = self
            .invoke(addr, request, self.options().request_timeout)
            .await?;
        match response.code {
            response::SUCCESS => response
                .decode_header::<QueryConsumerOffsetResponseHeader>()
                .map(|header| StoredOffset::Found(header.offset))
                .map_err(|err| ClientError::malformed(addr, err)),
            response::QUERY_NOT_FOUND => Ok(StoredOffset::NotFound),
            _ => Err(crate::instance::broker_error(addr, &response)),
        }
    }

    /// Commits the group's offset on `queue`.
    pub async fn update_consumer_offset(
        &self,
        addr: &str,
        group: &str,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        let header = UpdateConsumerOffsetRequestHeader {
            consumer_group: group.to_owned(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            commit_offset: offset,
        };
        let request =
            RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET).with_header(&header);
        self.invoke_ok(addr, request, self.options().request_timeout)
            .await
            .map(drop)
    }

    /// The client ids of `group`'s members as the broker knows them.
    pub async fn consumer_ids(&self, addr: &str, group: &str) -> Result<Vec<String>> {
        let header = GetConsumerListByGroupRequestHeader {
            consumer_group: group.to_owned(),
        };
        let request =
            RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP).with_header(&header);
        let response = self
            .invoke_ok(addr, request, self.options().request_timeout)
            .await?;
        if response.body.is_empty() {
            return Err(ClientError::malformed(addr, "consumer list without a body"));
        }
        ConsumerListBody::decode(&response.body)
            .map(|body| body.consumer_id_list)
            .map_err(|err| ClientError::malformed(addr, err))
    }

    /// Locks `queues` for this client in `group`; returns the ones now held.
    pub async fn lock_queues(
        &self,
        addr: &str,
        group: &str,
        queues: BTreeSet<MessageQueue>,
    ) -> Result<BTreeSet<MessageQueue>> {
        let body = LockBatchRequestBody {
            consumer_group: group.to_owned(),
            client_id: self.client_id().to_owned(),
            only_this_broker: false,
            mq_set: queues,
        };
        let request = RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(body.encode());
        let response = self
            .invoke_ok(addr, request, self.options().request_timeout)
            .await?;
        if response.body.is_empty() {
            return Ok(BTreeSet::new());
        }
        LockBatchResponseBody::decode(&response.body)
            .map(|body| body.lock_ok_mq_set)
            .map_err(|err| ClientError::malformed(addr, err))
    }

    /// Releases this client's locks on `queues`.
    pub async fn unlock_queues(
        &self,
        addr: &str,
        group: &str,
        queues: BTreeSet<MessageQueue>,
    ) -> Result<()> {
        let body = LockBatchRequestBody {
            consumer_group: group.to_owned(),
            client_id: self.client_id().to_owned(),
            only_this_broker: false,
            mq_set: queues,
        };
        let request = RemotingCommand::request(request::UNLOCK_BATCH_MQ).with_body(body.encode());
        self.invoke_ok(addr, request, self.options().request_timeout)
            .await
            .map(drop)
    }

    /// Returns a message the consumer failed on (CONSUMER_SEND_MSG_BACK): the broker
    /// stores it in `%RETRY%group` for later redelivery, or in `%DLQ%group` once it has
    /// been retried `max_reconsume_times` times. `delay_level` 0 lets the broker pick
    /// (3 + reconsume times); a negative level sends it straight to the DLQ.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_back(
        &self,
        addr: &str,
        group: &str,
        commit_log_offset: i64,
        delay_level: i32,
        origin_msg_id: &str,
        origin_topic: &str,
        max_reconsume_times: i32,
    ) -> Result<()> {
        let header = ConsumerSendMsgBackRequestHeader {
            offset: commit_log_offset,
            group: group.to_owned(),
            delay_level,
            origin_msg_id: Some(origin_msg_id.to_owned()),
            origin_topic: Some(origin_topic.to_owned()),
            unit_mode: false,
            max_reconsume_times: Some(max_reconsume_times),
        };
        let request =
            RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK).with_header(&header);
        self.invoke_ok(addr, request, self.options().request_timeout)
            .await
            .map(drop)
    }

    /// Tells `addr` this client left `consumer_group` / `producer_group`, so the group's
    /// other members rebalance at once instead of after the broker's expiry.
    pub async fn unregister_client(
        &self,
        addr: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
        timeout: Duration,
    ) -> Result<()> {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id().to_owned(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        let request = RemotingCommand::request(request::UNREGISTER_CLIENT).with_header(&header);
        self.invoke_ok(addr, request, timeout).await.map(drop)
    }
}
