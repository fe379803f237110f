//! Requests waiting for their replies (request-reply; Java's `RequestFutureHolder`).
//!
//! [`crate::Producer::request`] registers the request's correlation id here before sending
//! it; a broker's PUSH_REPLY_MESSAGE_TO_CLIENT hands the reply to the waiter with that id.
//! A reply nobody waits for (its request timed out) is dropped. The table is bounded: a
//! requester over the bound is refused rather than allowed to grow it.

use std::collections::HashMap;

use message::keys;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::debug;

use crate::error::{ClientError, Result};
use crate::message::ReceivedMessage;

/// Requests of one client instance waiting at once.
pub const MAX_PENDING_REQUESTS: usize = 10_000;

#[derive(Default)]
pub(crate) struct PendingReplies {
    waiting: Mutex<HashMap<String, oneshot::Sender<ReceivedMessage>>>,
}

impl PendingReplies {
    /// Waits for the reply with `correlation_id`; pair with [`PendingReplies::forget`]
    /// when giving up.
    pub(crate) fn register(
        &self,
        correlation_id: &str,
    ) -> Result<oneshot::Receiver<ReceivedMessage>> {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= MAX_PENDING_REQUESTS {
            return Err(ClientError::TooManyRequests {
                limit: MAX_PENDING_REQUESTS,
            });
        }
        let (sender, receiver) = oneshot::channel();
        waiting.insert(correlation_id.to_owned(), sender);
        Ok(receiver)
    }

    pub(crate) fn forget(&self, correlation_id: &str) {
        self.waiting.lock().remove(correlation_id);
    }

    /// Hands a pushed reply to its waiter; false when none waits for it.
    pub(crate) fn deliver(&self, reply: ReceivedMessage) -> bool {
        let Some(id) = reply.property(keys::CORRELATION_ID).map(str::to_owned) else {
            debug!("a pushed reply carries no CORRELATION_ID");
            return false;
        };
        let Some(waiter) = self.waiting.lock().remove(&id) else {
            debug!(correlation_id = %id, "a reply arrived for no waiting request");
            return false;
        };
        waiter.send(reply).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use remoting::body::MessageQueue;

    fn reply(id: &str) -> ReceivedMessage {
        ReceivedMessage {
            topic: "C_REPLY_TOPIC".into(),
            queue: MessageQueue::new("C_REPLY_TOPIC", "", 0),
            queue_offset: 0,
            commit_log_offset: 0,
            body: Bytes::from_static(b"r"),
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 0,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp_ms: 0,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            properties: [(keys::CORRELATION_ID.to_owned(), id.to_owned())].into(),
            offset_msg_id: String::new(),
        }
    }

    #[test]
    fn a_reply_reaches_its_waiter_once() {
        let pending = PendingReplies::default();
        let mut receiver = pending.register("a").unwrap();
        assert!(!pending.deliver(reply("b")), "no waiter for b");
        assert!(pending.deliver(reply("a")));
        assert_eq!(receiver.try_recv().unwrap().body.as_ref(), b"r");
        assert!(!pending.deliver(reply("a")), "delivered once");
        let _gone = pending.register("c").unwrap();
        pending.forget("c");
        assert!(!pending.deliver(reply("c")));
    }
}
