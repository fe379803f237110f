//! ACL 1.0 on the gRPC port (with `aclEnable=true`), as RocketMQ 5.0-5.2's proxy checks it:
//! each call's signature (see `acl::grpc_auth`) and the topics (PUB to send, SUB to read,
//! any to look a route up) and consumer groups (SUB) it names, against the same accounts and
//! whitelists as the remoting ports. A refused call fails with PERMISSION_DENIED, as the
//! proxy fails it, and is not served.

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

/// Checks a call's credentials from `metadata` and its `needs`; `Ok` when ACL is off.
pub fn check(
    acl: Option<&AclFiles>,
    metadata: &MetadataMap,
    ip: IpAddr,
    needs: &[(String, u8)],
) -> Result<(), Status> {
    let Some(acl) = acl else {
        return Ok(());
    };
    let header = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
    let checked = GrpcCredentials::parse(header("authorization"), header("x-mq-date-time"))
        .and_then(|credentials| {
            let proves = |secret: &str| credentials.as_ref().is_some_and(|c| c.proves(secret));
            let presented = Presented {
                access_key: credentials.as_ref().map(|c| c.access_key.as_str()),
                proves: &proves,
                admin_only: false,
                code: GRPC_CODE,
            };
            acl.tables().check_presented(&presented, needs, ip)
        });
    checked.map_err(|AclRefusal(reason)| {
        tracing::warn!(peer = %ip, %reason, "gRPC call refused by ACL");
        Status::permission_denied(reason)
    })
}
