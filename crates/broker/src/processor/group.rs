//! DLEDGER_METADATA (50000) and DLEDGER_LEADERSHIP_TRANSFER (51005): a broker group's raft
//! status (`mqadmin getBrokerGroup`) and moving its leadership (`mqadmin transferLeader`).
//! See [`crate::group::status`] for the bodies. DLEDGER_ADD_MEMBER (51100) and
//! DLEDGER_REMOVE_MEMBER (51101): membership changes (`mqadmin addGroupMember` /
//! `removeGroupMember`), see [`crate::group::membership`].

use remoting::code::response;
use remoting::command::RemotingCommand;
use tracing::info;

use super::{error, json_success};
use crate::context::BrokerContext;
use crate::group::membership::{self, NODE_ID_FIELD, RAFT_ADDR_FIELD};
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

pub async fn add_member(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(member) = ctx.group.as_deref() else {
        return error(request, response::SYSTEM_ERROR, NOT_IN_GROUP);
    };
    let (Some(node), Some(raft_addr)) = (
        request.ext_field(NODE_ID_FIELD),
        request.ext_field(RAFT_ADDR_FIELD),
    ) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("ext fields {NODE_ID_FIELD} and {RAFT_ADDR_FIELD} are required"),
        );
    };
    answer(request, membership::add(member, node, raft_addr).await)
}

pub async fn remove_member(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(member) = ctx.group.as_deref() else {
        return error(request, response::SYSTEM_ERROR, NOT_IN_GROUP);
    };
    let Some(node) = request.ext_field(NODE_ID_FIELD) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!("missing ext field {NODE_ID_FIELD}"),
        );
    };
    answer(request, membership::remove(member, node).await)
}

fn answer(
    request: &RemotingCommand,
    outcome: Result<String, membership::MembershipRefusal>,
) -> RemotingCommand {
    match outcome {
        Ok(done) => {
            info!(%done, "membership changed on request");
            let mut response = RemotingCommand::success_to(request);
            response.remark = Some(done);
            response
        }
        Err(refusal) => error(request, response::SYSTEM_ERROR, refusal.to_string()),
    }
}
