//! What answers a broker's transaction checks: a producer group's [`TransactionChecker`]
//! and the reply to CHECK_TRANSACTION_STATE (39), a one-way END_TRANSACTION with
//! `fromTransactionCheck` over the connection the check came on. Kept apart from the
//! producer, which the client instance's request handler (the caller here) must not import.

use std::sync::Arc;

use message::properties::keys;
use message::sysflag::message as sysflag;
use message::MessageView;
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::connection::ConnectionHandle;
use remoting::header::transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader,
};
use tracing::debug;

use crate::message::ReceivedMessage;

/// A local transaction's outcome (Java's `LocalTransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Deliver the message.
    Commit,
    /// Drop the message.
    Rollback,
    /// Not known yet: the broker asks again later.
    Unknown,
}

impl TransactionState {
    /// The END_TRANSACTION `commitOrRollback` value.
    pub(crate) fn code(self) -> i32 {
        match self {
            TransactionState::Commit => sysflag::TRANSACTION_COMMIT_TYPE,
            TransactionState::Rollback => sysflag::TRANSACTION_ROLLBACK_TYPE,
            TransactionState::Unknown => sysflag::TRANSACTION_NOT_TYPE,
        }
    }
}

/// Answers a broker's check of a half message whose transaction is still open (Java's
/// `TransactionListener.checkLocalTransaction`). Called on the client's runtime: it should
/// look the state up, not wait on slow work.
pub trait TransactionChecker: Send + Sync + 'static {
    fn check(&self, message: &ReceivedMessage) -> TransactionState;
}

impl<F> TransactionChecker for F
where
    F: Fn(&ReceivedMessage) -> TransactionState + Send + Sync + 'static,
{
    fn check(&self, message: &ReceivedMessage) -> TransactionState {
        self(message)
    }
}

/// CHECK_TRANSACTION_STATE (39) from a broker: the group's checker decides and the answer
/// goes back over the same connection as a one-way END_TRANSACTION with
/// `fromTransactionCheck`. A message of a group without a checker here is not answered.
pub(crate) fn answer_check(
    checker: Option<Arc<dyn TransactionChecker>>,
    conn: &ConnectionHandle,
    request: &RemotingCommand,
) {
    let header = match request.decode_header::<CheckTransactionStateRequestHeader>() {
        Ok(header) => header,
        Err(error) => return debug!(%error, "bad CHECK_TRANSACTION_STATE"),
    };
    let message = match MessageView::parse(&request.body) {
        Ok(view) => {
            ReceivedMessage::from_view(&view, header.broker_name.as_deref().unwrap_or_default())
        }
        Err(error) => return debug!(%error, "unreadable CHECK_TRANSACTION_STATE body"),
    };
    let message = match message {
        Ok(message) => message,
        Err(error) => return debug!(%error, "undecodable CHECK_TRANSACTION_STATE body"),
    };
    let group = message
        .property(keys::PGROUP)
        .unwrap_or_default()
        .to_owned();
    let Some(checker) = checker else {
        return debug!(%group, "check for a producer group without a checker here");
    };
    let conn = conn.clone();
    tokio::spawn(async move {
        let state = checker.check(&message);
        let msg_id = message
            .uniq_key()
            .map(str::to_owned)
            .or(header.msg_id.clone())
            .unwrap_or_default();
        debug!(%msg_id, ?state, "answering a transaction check");
        let end = EndTransactionRequestHeader {
            topic: Some(message.topic.clone()),
            producer_group: group,
            tran_state_table_offset: header.tran_state_table_offset,
            commit_log_offset: header.commit_log_offset,
            commit_or_rollback: state.code(),
            from_transaction_check: true,
            msg_id,
            transaction_id: header.transaction_id.clone(),
        };
        let command = RemotingCommand::request(request::END_TRANSACTION).with_header(&end);
        if let Err(error) = conn.invoke_oneway(command, CHECK_ANSWER_TIMEOUT).await {
            debug!(%error, "check answer not sent; the broker asks again");
        }
    });
}

/// How long sending one check answer may take.
const CHECK_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
