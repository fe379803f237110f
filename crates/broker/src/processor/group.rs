//! DLEDGER_METADATA (50000) and DLEDGER_LEADERSHIP_TRANSFER (51005): a broker group's raft
//! status (`mqadmin getBrokerGroup`) and moving its leadership (`mqadmin transferLeader`).
//! See [`crate::group::status`] for the bodies.

use remoting::code::response;
use remoting::command::RemotingCommand;
use tracing::info;

use super::{error, json_success};
use crate::context::BrokerContext;
use crate::group::status::{self, TRANSFEREE_FIELD};

const NOT_IN_GROUP: &str = "this broker is not in a broker group (enableDLegerCommitLog=false)";

pub async fn group_status(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(member) = ctx.group.as_deref() else {
        return error(request, response::SYSTEM_ERROR, NOT_IN_GROUP);
    };
    let identity = status::MemberIdentity {
        broker_name: &ctx.config.broker_name,
        broker_addr: &ctx.broker_addr,
        broker_id: ctx.role.broker_id(),
    };
    match status::group_status(identity, member).await {
        Some(body) => json_success(request, &body),
        None => error(
            request,
            response::SYSTEM_ERROR,
            "the raft node did not answer",
        ),
    }
}

pub async fn transfer_leadership(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> RemotingCommand {
    let Some(member) = ctx.group.as_deref() else {
        return error(request, response::SYSTEM_ERROR, NOT_IN_GROUP);
    };
    let Some(target) = request.ext_field(TRANSFEREE_FIELD) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("missing ext field {TRANSFEREE_FIELD}"),
        );
    };
    match status::transfer(member, target).await {
        Ok(leader) => {
            info!(%leader, "leadership transferred on request");
            RemotingCommand::success_to(request)
        }
        Err(refusal) => error(request, response::SYSTEM_ERROR, refusal.to_string()),
    }
}
