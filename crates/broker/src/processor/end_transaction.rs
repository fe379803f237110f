//! END_TRANSACTION (37): a producer commits or rolls back a half message, after its local
//! transaction or answering a check (`fromTransactionCheck`).
//!
//! Checks, in RocketMQ's order: the broker is the master; the half message is found at
//! `commitLogOffset`, is in the half queue at `tranStateTableOffset`, and belongs to
//! `producerGroup`. UNKNOWN (0) leaves the transaction open for the check service. An end
//! for a transaction already ended changes nothing (a late answer to an older check, or a
//! producer's own end racing a check answer), so a commit reaches consumers once.

use message::properties::keys;
use message::sysflag::message as sysflag;
use message::MessageView;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::transaction::EndTransactionRequestHeader;
use std::time::Duration;
use tracing::{debug, info, warn};

use super::{decode_header, Refusal};
use crate::context::BrokerContext;
use crate::transaction::end::{self, Outcome};
use crate::transaction::state::ClaimError;
use crate::transaction::{bridge, mastership, record_at, TRANS_HALF_TOPIC};

/// How long an end waits for the table (a new master loading it) or for another writer of
/// the same transaction (a check copying it) before answering SYSTEM_BUSY.
const CLAIM_WAIT: Duration = Duration::from_secs(3);

pub async fn process(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match end_transaction(ctx, request).await {
        Ok(Some(remark)) => RemotingCommand::success_to(request).with_remark(remark),
        Ok(None) => RemotingCommand::success_to(request),
        Err(refusal) => refusal.into_response(request),
    }
}

async fn end_transaction(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> Result<Option<String>, Refusal> {
    if !ctx.role.is_master() {
        return Err(Refusal::new(
            response::SLAVE_NOT_AVAILABLE,
            "message store is slave mode, so end transaction is forbidden",
        ));
    }
    let header: EndTransactionRequestHeader = decode_header(request)?;
    let outcome = match header.commit_or_rollback {
        sysflag::TRANSACTION_COMMIT_TYPE => Outcome::Commit,
        sysflag::TRANSACTION_ROLLBACK_TYPE => Outcome::Rollback,
        sysflag::TRANSACTION_NOT_TYPE => {
            debug!(msg_id = %header.msg_id, from_check = header.from_transaction_check,
                "transaction state unknown; left for the check service");
            return Ok(Some("transaction state unknown; it will be checked".into()));
        }
        other => {
            return Err(Refusal::new(
                response::SYSTEM_ERROR,
                format!(
                    "commitOrRollback {other} is neither commit (8), rollback (12) nor unknown (0)"
                ),
            ))
        }
    };
    let record = record_at(ctx, header.commit_log_offset)
        .await
        .ok_or_else(|| {
            Refusal::new(
                response::SYSTEM_ERROR,
                "find prepared transaction message failed",
            )
        })?;
    let half = MessageView::parse(&record).map_err(|e| {
        Refusal::new(
            response::SYSTEM_ERROR,
            format!("the prepared transaction message is unreadable: {e}"),
        )
    })?;
    check_half(&half, &header)?;
    let origin = bridge::origin_of(&half, half.queue_offset());
    let claim = match ctx
        .transactions
        .claim(|| mastership(ctx), origin, CLAIM_WAIT)
        .await
    {
        Ok(claim) => claim,
        Err(ClaimError::Finished) => {
            info!(msg_id = %header.msg_id, ?outcome, from_check = header.from_transaction_check,
                "transaction already ended; this end changes nothing");
            return Ok(Some("the transaction has already ended".into()));
        }
        Err(e) => return Err(Refusal::new(response::SYSTEM_BUSY, e.to_string())),
    };
    end::finish(ctx, claim, &half, outcome).await.map_err(|e| {
        warn!(msg_id = %header.msg_id, error = %e, "transaction not ended");
        let code = match &e {
            end::EndError::Put(put) => put.response_code(),
            end::EndError::Bridge(crate::transaction::bridge::BridgeError::Timer(
                crate::timer::request::TimerRefusal::Illegal { .. },
            )) => response::MESSAGE_ILLEGAL,
            _ => response::SYSTEM_ERROR,
        };
        Refusal::new(code, e.to_string())
    })?;
    debug!(msg_id = %header.msg_id, ?outcome, from_check = header.from_transaction_check,
        "transaction ended");
    Ok(None)
}

/// RocketMQ's `checkPrepareMessage`: the record is a half message of this producer group
/// at the queue offset the producer was told.
fn check_half(half: &MessageView<'_>, header: &EndTransactionRequestHeader) -> Result<(), Refusal> {
    let wrong = |what: &str| Refusal::new(response::SYSTEM_ERROR, what.to_owned());
    if half.topic() != TRANS_HALF_TOPIC {
        return Err(wrong(
            "the message at commitLogOffset is not a half message",
        ));
    }
    if half.property(keys::PGROUP) != Some(header.producer_group.as_str()) {
        return Err(wrong("the producer group wrong"));
    }
    if half.queue_offset() != header.tran_state_table_offset {
        return Err(wrong("the transaction state table offset wrong"));
    }
    if half.physical_offset() != header.commit_log_offset {
        return Err(wrong("the commit log offset wrong"));
    }
    Ok(())
}
