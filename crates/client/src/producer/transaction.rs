//! Transactional sends (Java's `TransactionMQProducer`): a message is sent as a half
//! message consumers cannot see, the local transaction runs, and the producer commits or
//! rolls it back with END_TRANSACTION. When that answer is lost or was UNKNOWN, the broker
//! asks the group later (CHECK_TRANSACTION_STATE) and the producer's [`TransactionChecker`]
//! answers from its own records.

use std::future::Future;
use std::sync::Arc;

use message::decode_offset_msg_id;
use message::properties::keys;
use message::sysflag::message as sysflag;
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::transaction::EndTransactionRequestHeader;
use tracing::{info, warn};

use super::{Producer, ProducerOptions, SendResult, SendStatus};
use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::message::Message;
pub use crate::transaction_check::{TransactionChecker, TransactionState};

/// What a transactional send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSendResult {
    /// Where the half message was stored.
    pub send: SendResult,
    /// What the local transaction decided (ROLLBACK when the half message was not stored
    /// cleanly, without running it).
    pub state: TransactionState,
}

/// A producer of transactional messages, with its group's checker. Cheap to clone.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
}

impl TransactionProducer {
    /// Starts a producer with its own client instance; `checker` answers the brokers'
    /// checks for the group.
    pub fn start(
        client: ClientOptions,
        options: ProducerOptions,
        checker: impl TransactionChecker,
    ) -> Result<Self> {
        let instance = ClientInstance::new(client)?;
        instance.register_transaction_checker(&options.group, Arc::new(checker));
        let producer = Producer::build(instance, options, true)?;
        Ok(TransactionProducer { producer })
    }

    /// The plain producer underneath (for ordinary sends of the same group).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Sends `message` as a half message, runs `execute` with where it was stored, and
    /// ends the transaction as `execute` decides (one way, as Java does: a lost end is
    /// resolved by the broker's check). A delay level is dropped, as Java drops it.
    pub async fn send_in_transaction<F, Fut>(
        &self,
        mut message: Message,
        execute: F,
    ) -> Result<TransactionSendResult>
    where
        F: FnOnce(SendResult) -> Fut,
        Fut: Future<Output = TransactionState>,
    {
        let group = self.producer.options().group.clone();
        message.properties.remove(keys::DELAY);
        message
            .properties
            .insert(keys::TRAN_MSG.to_owned(), "true".to_owned());
        message.properties.insert(keys::PGROUP.to_owned(), group);
        let mut outgoing = self.producer.prepare(message)?;
        outgoing.sys_flag |= sysflag::TRANSACTION_PREPARED_TYPE;
        let send = self.producer.send_with_retries(&outgoing).await?;
        let state = match send.status {
            SendStatus::SendOk => execute(send.clone()).await,
            other => {
                info!(status = other.as_str(), msg_id = %send.msg_id, "half message not stored cleanly; rolled back");
                TransactionState::Rollback
            }
        };
        if let Err(error) = self.end(&send, state).await {
            warn!(msg_id = %send.msg_id, ?state, %error, "END_TRANSACTION not sent; the broker will check");
        }
        Ok(TransactionSendResult { send, state })
    }

    async fn end(&self, send: &SendResult, state: TransactionState) -> Result<()> {
        let commit_log_offset = decode_offset_msg_id(&send.offset_msg_id)
            .map_err(|e| ClientError::InvalidArgument(format!("offset msgId: {e}")))?
            .commit_log_offset;
        let header = EndTransactionRequestHeader {
            topic: Some(send.queue.topic.clone()),
            producer_group: self.producer.options().group.clone(),
            tran_state_table_offset: send.queue_offset,
            commit_log_offset,
            commit_or_rollback: state.code(),
            from_transaction_check: false,
            msg_id: send.msg_id.clone(),
            transaction_id: send.transaction_id.clone(),
        };
        let addr = self.producer.broker_addr(&send.queue).await?;
        let command = RemotingCommand::request(request::END_TRANSACTION).with_header(&header);
        let timeout = self.producer.options().send_timeout;
        self.producer
            .instance()
            .invoke_oneway(&addr, command, timeout)
            .await
    }

    /// Stops answering checks and shuts the producer down.
    pub async fn shutdown(&self) {
        let instance = self.producer.instance();
        instance.unregister_transaction_checker(&self.producer.options().group);
        self.producer.shutdown().await;
    }
}
