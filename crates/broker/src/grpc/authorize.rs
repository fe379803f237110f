//! ACL on the gRPC port. ACL 1.0 (`aclEnable=true`), as RocketMQ 5.0-5.2's proxy checks it:
//! each call's signature (see `acl::grpc_auth`) and the topics (PUB to send, SUB to read,
//! any to look a route up) and consumer groups (SUB) it names, against the same accounts and
//! whitelists as the remoting ports. ACL 2.0 (`authenticationEnabled`,
//! `authorizationEnabled`), as RocketMQ 5.3's proxy checks it: the same signature under the
//! user's password, and the same topics and groups against the user's policies. A refused
//! call fails with PERMISSION_DENIED and is not served.

use std::net::IpAddr;

use grpc::v2;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::convert::resource_name;
use crate::acl::files::AclFiles;
use crate::acl::grpc_auth::GrpcCredentials;
use crate::acl::perm::{ANY, PUB, SUB};
use crate::acl::resources::Needs;
use crate::acl::tables::{AclRefusal, Presented};
use crate::auth::gate::AuthGate;
use crate::auth::model::Action;
use crate::auth::needs::Need;

/// The request code the refusal message names for gRPC calls (they have none).
const GRPC_CODE: i32 = 0;

fn topic(resource: Option<&v2::Resource>, needed: u8) -> (String, u8) {
    (resource_name(resource), needed)
}

fn group(resource: Option<&v2::Resource>) -> (String, u8) {
    (message::topic::retry_topic(&resource_name(resource)), SUB)
}

pub fn send(request: &v2::SendMessageRequest) -> Needs {
    let mut topics: Vec<String> = request
        .messages
        .iter()
        .map(|m| resource_name(m.topic.as_ref()))
        .collect();
    topics.dedup();
    topics.into_iter().map(|t| (t, PUB)).collect()
}

pub fn receive(request: &v2::ReceiveMessageRequest) -> Needs {
    let queue_topic = request
        .message_queue
        .as_ref()
        .and_then(|q| q.topic.as_ref());
    vec![group(request.group.as_ref()), topic(queue_topic, SUB)]
}

/// Ack, change of invisible time, forward to the DLQ: the group and the topic, read.
pub fn consumed(group_of: Option<&v2::Resource>, topic_of: Option<&v2::Resource>) -> Needs {
    vec![group(group_of), topic(topic_of, SUB)]
}

/// Reading a topic's queues (their offsets): SUB on it.
pub fn read(topic_of: Option<&v2::Resource>) -> Needs {
    vec![topic(topic_of, SUB)]
}

pub fn route(request: &v2::QueryRouteRequest) -> Needs {
    vec![topic(request.topic.as_ref(), ANY)]
}

pub fn assignment(request: &v2::QueryAssignmentRequest) -> Needs {
    vec![
        group(request.group.as_ref()),
        topic(request.topic.as_ref(), SUB),
    ]
}

pub fn recall(request: &v2::RecallMessageRequest) -> Needs {
    vec![topic(request.topic.as_ref(), PUB)]
}

/// Ending a transaction publishes to its topic (RocketMQ's proxy checks PUB on it).
pub fn end_transaction(request: &v2::EndTransactionRequest) -> Needs {
    vec![topic(request.topic.as_ref(), PUB)]
}

/// A consumer's heartbeat or goodbye names its group.
pub fn of_group(group_of: Option<&v2::Resource>) -> Needs {
    group_of.map(|g| vec![group(Some(g))]).unwrap_or_default()
}

/// The topics a producer's settings publish to and a consumer's subscribe to, with its group.
pub fn settings(settings: &v2::Settings) -> Needs {
    match &settings.pub_sub {
        Some(v2::settings::PubSub::Publishing(publishing)) => publishing
            .topics
            .iter()
            .map(|t| topic(Some(t), PUB))
            .collect(),
        Some(v2::settings::PubSub::Subscription(subscription)) => {
            let mut needs = vec![group(subscription.group.as_ref())];
            needs.extend(
                subscription
                    .subscriptions
                    .iter()
                    .map(|entry| topic(entry.topic.as_ref(), SUB)),
            );
            needs
        }
        None => Vec::new(),
    }
}

/// The ACLs a call is checked against: ACL 1.0's files and ACL 2.0's users, either
/// possibly off.
#[derive(Clone, Copy)]
pub struct Guards<'a> {
    pub plain: Option<&'a AclFiles>,
    pub users: Option<&'a AuthGate>,
}

/// Checks a call's credentials from `metadata` and its `needs` (`rpc`: the request's full
/// protobuf name, which ACL 2.0's whitelists name); `Ok` when ACL is off.
pub fn check(
    guards: Guards<'_>,
    rpc: &str,
    metadata: &MetadataMap,
    ip: IpAddr,
    needs: &[(String, u8)],
) -> Result<(), Status> {
    if guards.plain.is_none() && guards.users.is_none() {
        return Ok(());
    }
    let header = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
    let credentials = GrpcCredentials::parse(header("authorization"), header("x-mq-date-time"))
        .map_err(|AclRefusal(reason)| refused(ip, reason))?;
    let proves = |secret: &str| credentials.as_ref().is_some_and(|c| c.proves(secret));
    let access_key = credentials.as_ref().map(|c| c.access_key.as_str());
    if let Some(acl) = guards.plain {
        let presented = Presented {
            access_key,
            proves: &proves,
            admin_only: false,
            code: GRPC_CODE,
        };
        acl.tables()
            .check_presented(&presented, needs, ip)
            .map_err(|AclRefusal(reason)| refused(ip, reason))?;
    }
    if let Some(users) = guards.users {
        let needs: Vec<Need> = needs
            .iter()
            .map(|(name, perm)| as_need(name, *perm))
            .collect();
        users
            .check_call(rpc, access_key, &proves, &needs, ip)
            .map_err(|refusal| refused(ip, refusal.0))?;
    }
    Ok(())
}

fn refused(ip: IpAddr, reason: String) -> Status {
    tracing::warn!(peer = %ip, %reason, "gRPC call refused by ACL");
    Status::permission_denied(reason)
}

/// An ACL 1.0 need as ACL 2.0 reads it: `%RETRY%<group>` is the group (Sub), a topic is
/// published to (Pub), read (Sub), or either (a route lookup: Pub or Sub).
fn as_need(resource: &str, perm: u8) -> Need {
    const PUB_ONLY: &[Action] = &[Action::Pub];
    const SUB_ONLY: &[Action] = &[Action::Sub];
    const PUB_OR_SUB: &[Action] = &[Action::Pub, Action::Sub];
    if resource.starts_with(message::topic::RETRY_GROUP_TOPIC_PREFIX) {
        return Need::group(resource, SUB_ONLY);
    }
    let actions = match perm {
        PUB => PUB_ONLY,
        SUB => SUB_ONLY,
        _ => PUB_OR_SUB,
    };
    Need::topic(resource, actions)
}

/// The full protobuf name of a request type (`apache.rocketmq.v2.SendMessageRequest`).
pub fn rpc_name<T>() -> String {
    let type_name = std::any::type_name::<T>();
    let short = type_name.rsplit("::").next().unwrap_or(type_name);
    format!("apache.rocketmq.v2.{short}")
}
