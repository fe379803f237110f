//! Reading a topic's messages the way RocketMQ's tools do: pulls by queue and offset under
//! the tools' own consumer group, which commits nothing and joins no group.

use remoting::body::MessageQueue;

use super::Admin;
use crate::consumer::pull::{master_addr, PullResult, PullSpec, PullStatus, Puller};
use crate::consumer::Selector;
use crate::error::Result;
use crate::message::ReceivedMessage;

/// The group RocketMQ's tools pull under (`MixAll.TOOLS_CONSUMER_GROUP`).
pub const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";

impl Admin {
    /// The readable queues of `topic`, fresh from the name servers.
    pub async fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        Ok(self
            .instance
            .refresh_route(topic)
            .await?
            .subscribe_queues
            .clone())
    }

    /// The smallest offset still stored in `queue`.
    pub async fn queue_min_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = master_addr(&self.instance, queue).await?;
        self.instance.min_offset(&addr, queue).await
    }

    /// The offset the next message written to `queue` gets.
    pub async fn queue_max_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = master_addr(&self.instance, queue).await?;
        self.instance.max_offset(&addr, queue).await
    }

    /// The first offset of `queue` stored at or after `timestamp_ms`.
    pub async fn queue_search_offset(
        &self,
        queue: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64> {
        let addr = master_addr(&self.instance, queue).await?;
        self.instance
            .search_offset(&addr, queue, timestamp_ms)
            .await
    }

    /// Pulls up to `max_nums` messages of `queue` from `offset` that match `expression`
    /// (`*` or tags joined by `||`), without waiting for new ones.
    pub async fn pull(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult> {
        let filter = Selector::tag(expression)?;
        if self.instance.master_addr(&queue.broker_name).is_none() {
            self.instance.refresh_route(&queue.topic).await?;
        }
        Puller::new(self.instance.clone())
            .pull(PullSpec {
                group: TOOLS_CONSUMER_GROUP,
                queue,
                filter: &filter,
                sub_version: crate::producer::now_ms(),
                offset,
                max_nums,
                commit_offset: None,
                suspend: None,
            })
            .await
    }

    /// The message at `offset` of `queue`, if there is one.
    pub async fn message_at(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<Option<ReceivedMessage>> {
        let result = self.pull(queue, "*", offset, 1).await?;
        Ok(match result.status {
            PullStatus::Found => result
                .messages
                .into_iter()
                .find(|m| m.queue_offset == offset),
            _ => None,
        })
    }
}
