//! ACL 2.0's admin requests (`mqadmin createUser` ... `listAcl`): AUTH_CREATE_USER (3001)
//! to AUTH_LIST_ACL (3010), with RocketMQ 5.3's headers, bodies, codes and remarks. Changes
//! are made on the master and reach the group's other members through the raft log;
//! reads answer from any member. Only a super user creates, changes or deletes a super
//! user (a request without credentials counts as one, as in RocketMQ, since then
//! authentication is off).

use remoting::acl::ACCESS_KEY;
use remoting::body::auth::{encode_list, AclInfo, UserInfo};
use remoting::code::response;
use remoting::command::RemotingCommand;

use super::admin::require_master;
use super::{error, Refusal};
use crate::auth::admin as convert;
use crate::auth::model::{subject_of, subject_user, PolicyType, Resource, UserType};
use crate::context::BrokerContext;
use crate::metadata::auth::AuthOp;
use crate::metadata::MetadataOp;

fn header<'a>(request: &'a RemotingCommand, name: &str) -> Option<&'a str> {
    request
        .ext_field(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn caller_is_super(ctx: &BrokerContext, request: &RemotingCommand) -> bool {
    match request.ext_field(ACCESS_KEY) {
        None => true,
        Some(name) => ctx
            .auth
            .user(name)
            .is_some_and(|u| u.user_type == UserType::Super),
    }
}

async fn write(ctx: &BrokerContext, request: &RemotingCommand, op: AuthOp) -> RemotingCommand {
    if let Err(refusal) = require_master(ctx) {
        return refusal.into_response(request);
    }
    match ctx.write_metadata(MetadataOp::Auth(op)).await {
        Ok(()) => RemotingCommand::success_to(request),
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

/// The `username` header and the UserInfo body (none given reads as an empty one) of a
/// create or an update, or why they cannot be read.
fn user_request(request: &RemotingCommand) -> Result<(&str, UserInfo), Refusal> {
    let username = header(request, "username")
        .ok_or_else(|| Refusal::new(response::INVALID_PARAMETER, "The username is blank"))?;
    if request.body.is_empty() {
        return Ok((username, UserInfo::default()));
    }
    let info = UserInfo::decode(&request.body)
        .map_err(|e| Refusal::new(response::SYSTEM_ERROR, format!("bad user body: {e}")))?;
    Ok((username, info))
}

pub async fn create_user(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let (username, info) = match user_request(request) {
        Ok(parts) => parts,
        Err(refusal) => return refusal.into_response(request),
    };
    if convert::user_type(&info) == Some(UserType::Super) && !caller_is_super(ctx, request) {
        return error(
            request,
            response::SYSTEM_ERROR,
            "The super user can only be create by super user",
        );
    }
    let user = match convert::new_user(username, &info) {
        Ok(user) => user,
        Err(remark) => return error(request, response::NO_PERMISSION, remark),
    };
    if ctx.auth.user(username).is_some() {
        return error(request, response::NO_PERMISSION, "The user is existed");
    }
    tracing::info!(%username, user_type = %user.user_type, "ACL 2.0 user created");
    write(ctx, request, AuthOp::CreateUser(user)).await
}

pub async fn update_user(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    const SUPER_ONLY: &str = "The super user can only be update by super user";
    let (username, info) = match user_request(request) {
        Ok(parts) => parts,
        Err(refusal) => return refusal.into_response(request),
    };
    let by_super = caller_is_super(ctx, request);
    if convert::user_type(&info) == Some(UserType::Super) && !by_super {
        return error(request, response::SYSTEM_ERROR, SUPER_ONLY);
    }
    let Some(existing) = ctx.auth.user(username) else {
        return error(request, response::NO_PERMISSION, "The user is not exist");
    };
    if existing.user_type == UserType::Super && !by_super {
        return error(request, response::NO_PERMISSION, SUPER_ONLY);
    }
    let (password, user_type, user_status) = convert::user_changes(&info);
    tracing::info!(%username, password_changed = password.is_some(), ?user_type, ?user_status,
        "ACL 2.0 user updated");
    let op = AuthOp::UpdateUser {
        username: username.to_owned(),
        password,
        user_type,
        user_status,
    };
    write(ctx, request, op).await
}

pub async fn delete_user(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(username) = header(request, "username") else {
        return error(
            request,
            response::NO_PERMISSION,
            "username can not be blank",
        );
    };
    let Some(existing) = ctx.auth.user(username) else {
        return RemotingCommand::success_to(request);
    };
    if existing.user_type == UserType::Super && !caller_is_super(ctx, request) {
        return error(
            request,
            response::NO_PERMISSION,
            "The super user can only be update by super user",
        );
    }
    tracing::info!(%username, "ACL 2.0 user deleted");
    let op = AuthOp::DeleteUser {
        username: username.to_owned(),
    };
    write(ctx, request, op).await
}

pub fn get_user(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(username) = header(request, "username") else {
        return error(
            request,
            response::INVALID_PARAMETER,
            "The username is blank",
        );
    };
    let answer = RemotingCommand::success_to(request);
    match ctx.auth.user(username) {
        Some(user) => answer.with_body(convert::user_info(&user).encode()),
        None => answer,
    }
}

pub fn list_users(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let filter = header(request, "filter").unwrap_or("");
    let users: Vec<UserInfo> = ctx
        .auth
        .users()
        .iter()
        .filter(|u| u.username.contains(filter))
        .map(convert::user_info)
        .collect();
    let answer = RemotingCommand::success_to(request);
    if users.is_empty() {
        answer
    } else {
        answer.with_body(encode_list(&users))
    }
}

/// AUTH_CREATE_ACL and AUTH_UPDATE_ACL alike: the body's entries join the subject's ACL,
/// replacing those for the same resources.
pub async fn upsert_acl(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let info = if request.body.is_empty() {
        AclInfo::default()
    } else {
        match AclInfo::decode(&request.body) {
            Ok(info) => info,
            Err(e) => {
                return error(
                    request,
                    response::SYSTEM_ERROR,
                    format!("bad acl body: {e}"),
                )
            }
        }
    };
    if info.policies.as_ref().is_none_or(Vec::is_empty) {
        return error(
            request,
            response::SYSTEM_ERROR,
            "org.apache.rocketmq.auth.authorization.exception.AuthorizationException: The body of acl is null",
        );
    }
    let acl = match convert::acl(header(request, "subject"), &info) {
        Ok(acl) => acl,
        Err(remark) => return error(request, response::NO_PERMISSION, remark),
    };
    if subject_user(&acl.subject)
        .and_then(|u| ctx.auth.user(u))
        .is_none()
    {
        return error(
            request,
            response::NO_PERMISSION,
            format!("The subject of {} is not exist.", acl.subject),
        );
    }
    tracing::info!(subject = %acl.subject, "ACL 2.0 policies created or updated");
    write(ctx, request, AuthOp::UpsertAcl(acl)).await
}

/// The `subject` header's key (`User:<name>`) when it names a user that exists.
fn known_subject(ctx: &BrokerContext, request: &RemotingCommand) -> Result<String, Refusal> {
    let username = header(request, "subject")
        .and_then(subject_user)
        .ok_or_else(|| Refusal::new(response::NO_PERMISSION, "The subject is null."))?;
    if ctx.auth.user(username).is_none() {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            "The subject is not exist.",
        ));
    }
    Ok(subject_of(username))
}

pub async fn delete_acl(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let subject = match known_subject(ctx, request) {
        Ok(subject) => subject,
        Err(refusal) => return refusal.into_response(request),
    };
    if ctx.auth.acl(&subject).is_none() {
        return error(request, response::NO_PERMISSION, "The acl is not exist.");
    }
    let policy_type = header(request, "policyType")
        .and_then(PolicyType::parse)
        .unwrap_or(PolicyType::Custom);
    // RocketMQ reads a resource it cannot parse as none and deletes the whole ACL; a typo
    // should not do that.
    let resource = match header(request, "resource") {
        None => None,
        Some(text) => match Resource::parse(text) {
            Some(resource) => Some(resource),
            None => return error(request, response::NO_PERMISSION, "The resource is null."),
        },
    };
    tracing::info!(%subject, ?resource, "ACL 2.0 policies deleted");
    let op = AuthOp::DeleteAcl {
        subject,
        policy_type,
        resource,
    };
    write(ctx, request, op).await
}

pub fn get_acl(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let subject = match known_subject(ctx, request) {
        Ok(subject) => subject,
        Err(refusal) => return refusal.into_response(request),
    };
    let answer = RemotingCommand::success_to(request);
    match ctx.auth.acl(&subject) {
        Some(acl) => answer.with_body(convert::acl_info(&acl).encode()),
        None => answer,
    }
}

pub fn list_acls(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let subject_filter = header(request, "subjectFilter").unwrap_or("");
    let resource_filter = header(request, "resourceFilter").unwrap_or("");
    let acls: Vec<AclInfo> = ctx
        .auth
        .acls()
        .into_iter()
        .filter(|acl| acl.subject.contains(subject_filter))
        .filter_map(|mut acl| {
            for policy in &mut acl.policies {
                policy
                    .entries
                    .retain(|e| e.resource.to_string().contains(resource_filter));
            }
            acl.policies.retain(|p| !p.entries.is_empty());
            (!acl.policies.is_empty()).then(|| convert::acl_info(&acl))
        })
        .collect();
    let answer = RemotingCommand::success_to(request);
    if acls.is_empty() {
        answer
    } else {
        answer.with_body(encode_list(&acls))
    }
}
