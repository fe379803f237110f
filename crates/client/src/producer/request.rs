//! Request-reply, as RocketMQ's `DefaultMQProducer.request` and
//! `MessageUtil.createReplyMessage`: the requester's message carries `CORRELATION_ID`,
//! `REPLY_TO_CLIENT` (this client's id) and `TTL`; a replier answers it with
//! [`Producer::reply`] to the cluster's `{cluster}_REPLY_TOPIC`; the broker pushes the reply
//! back over this client's connection (see [`crate::replies`]).

use std::time::Duration;

use bytes::Bytes;
use message::keys;
use message::topic::reply_topic;
use tokio::time::Instant;

use super::{Producer, SendResult};
use crate::error::{ClientError, Result};
use crate::message::{Message, ReceivedMessage};

/// `MSG_TYPE` of a reply; sends of such messages use SEND_REPLY_MESSAGE_V2.
pub(crate) const REPLY_MESSAGE_FLAG: &str = "reply";

impl Producer {
    /// Sends `message` as a request and waits up to `timeout` (sending included) for its
    /// reply. The reply comes from the broker the replier sent it to, so this client
    /// heartbeats to the brokers of `message`'s topic before sending, as Java's does.
    pub async fn request(
        &self,
        mut message: Message,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        self.check_open()?;
        let deadline = Instant::now() + timeout;
        let instance = &self.inner.instance;
        let correlation_id = instance.inner.uniq_ids.next_id();
        message
            .properties
            .insert(keys::CORRELATION_ID.to_owned(), correlation_id.clone());
        message.properties.insert(
            keys::REPLY_TO_CLIENT.to_owned(),
            instance.client_id().to_owned(),
        );
        message
            .properties
            .insert(keys::TTL.to_owned(), timeout.as_millis().to_string());
        if instance.cached_route(&message.topic).is_none() {
            instance.route(&message.topic).await?;
            instance.send_heartbeat_now().await;
        }
        let pending = &instance.inner.pending_replies;
        let reply = pending.register(&correlation_id)?;
        let topic = message.topic.clone();
        let outcome = async {
            tokio::time::timeout_at(deadline, self.send(message))
                .await
                .map_err(|_| timed_out(&topic, timeout))??;
            tokio::time::timeout_at(deadline, reply)
                .await
                .map_err(|_| timed_out(&topic, timeout))?
                .map_err(|_| ClientError::Shutdown)
        }
        .await;
        if outcome.is_err() {
            pending.forget(&correlation_id);
        }
        outcome
    }

    /// Answers `request` (a message received from a requester) with `body`: sent to the
    /// reply topic of the cluster that stored the request, which pushes it to the requester.
    /// The broker answers SYSTEM_ERROR when the requester is not connected to it any more.
    pub async fn reply(
        &self,
        request: &ReceivedMessage,
        body: impl Into<Bytes>,
    ) -> Result<SendResult> {
        let cluster = request.property(keys::CLUSTER).ok_or_else(|| {
            ClientError::InvalidMessage(
                "the request has no CLUSTER property: only a message a broker stored can be replied to"
                    .into(),
            )
        })?;
        let mut reply = Message::new(reply_topic(cluster), body);
        for key in [keys::CORRELATION_ID, keys::REPLY_TO_CLIENT, keys::TTL] {
            if let Some(value) = request.property(key) {
                reply.properties.insert(key.to_owned(), value.to_owned());
            }
        }
        reply
            .properties
            .insert(keys::MSG_TYPE.to_owned(), REPLY_MESSAGE_FLAG.to_owned());
        self.send(reply).await
    }
}

fn timed_out(topic: &str, timeout: Duration) -> ClientError {
    ClientError::Timeout {
        addr: format!("(waiting for the reply to a request to {topic})"),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}
