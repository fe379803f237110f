//! QueryRoute and QueryAssignment: a topic's queues on this broker, reached through the
//! endpoints the client itself used (so a client given every member of a broker group
//! keeps its address list across failovers), and what a push consumer receives from.

use std::sync::Arc;

use grpc::v2::{self, Code, MessageType, Permission};
use remoting::body::topic::perm;

use super::status;
use crate::context::BrokerContext;
use crate::metadata::attributes;

/// The endpoints to hand back: the ones the client used, else this broker's own.
pub fn endpoints(ctx: &BrokerContext, asked: Option<&v2::Endpoints>) -> v2::Endpoints {
    match asked.filter(|e| !e.addresses.is_empty()) {
        Some(asked) => asked.clone(),
        None => v2::Endpoints {
            scheme: v2::AddressScheme::IPv4 as i32,
            addresses: vec![v2::Address {
                host: ctx.config.broker_ip1.clone(),
                port: i32::from(ctx.grpc_port()),
            }],
        },
    }
}

fn broker(ctx: &BrokerContext, endpoints: v2::Endpoints) -> v2::Broker {
    v2::Broker {
        name: ctx.config.broker_name.clone(),
        id: 0,
        endpoints: Some(endpoints),
    }
}

fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

/// The message types a topic takes: its `message.type`, every type but LITE for MIXED; a
/// topic without the attribute takes those unless the broker checks types.
fn accepted_types(ctx: &BrokerContext, config: &remoting::body::TopicConfig) -> Vec<i32> {
    let all = [
        MessageType::Normal,
        MessageType::Fifo,
        MessageType::Delay,
        MessageType::Transaction,
    ];
    let declared = config.attributes.get("message.type").map(String::as_str);
    let kinds: Vec<MessageType> = match declared {
        None if !ctx.config.enable_topic_message_type_check => all.to_vec(),
        None => vec![MessageType::Normal],
        Some(_) => match attributes::message_type_of_topic(&config.attributes) {
            "FIFO" => vec![MessageType::Fifo],
            "DELAY" => vec![MessageType::Delay],
            "TRANSACTION" => vec![MessageType::Transaction],
            "LITE" => vec![MessageType::Lite],
            "MIXED" => all.to_vec(),
            _ => vec![MessageType::Normal],
        },
    };
    kinds.into_iter().map(|k| k as i32).collect()
}

/// The topic's config here, or, on a group member that has not applied the topic yet (the
/// master answered its creation first), the queues the name servers route to this broker:
/// RocketMQ's proxy reads routes from the name servers, which know a topic once its
/// creation is answered.
async fn known_topic(ctx: &BrokerContext, topic: &str) -> Option<Arc<remoting::body::TopicConfig>> {
    if let Some(config) = ctx.topics.get(topic) {
        return Some(config);
    }
    ctx.group.as_ref()?;
    let route = ctx.routes.route(topic).await?;
    let queues = route
        .queue_datas
        .iter()
        .find(|q| q.broker_name == ctx.config.broker_name)?;
    Some(Arc::new(remoting::body::TopicConfig {
        topic_name: topic.to_owned(),
        read_queue_nums: queues.read_queue_nums,
        write_queue_nums: queues.write_queue_nums,
        perm: queues.perm,
        topic_sys_flag: queues.topic_sys_flag,
        ..Default::default()
    }))
}

pub async fn query_route(
    ctx: &BrokerContext,
    request: &v2::QueryRouteRequest,
) -> v2::QueryRouteResponse {
    let topic = request
        .topic
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or("");
    if let Err(e) = message::validate_topic(topic) {
        return v2::QueryRouteResponse {
            status: status::of(Code::IllegalTopic, e.to_string()),
            message_queues: Vec::new(),
        };
    }
    let Some(config) = known_topic(ctx, topic).await else {
        return v2::QueryRouteResponse {
            status: status::of(
                Code::TopicNotFound,
                format!("No topic route info in name server for the topic: {topic}"),
            ),
            message_queues: Vec::new(),
        };
    };
    let broker = broker(ctx, endpoints(ctx, request.endpoints.as_ref()));
    let accepted = accepted_types(ctx, &config);
    let (read, write) = (
        config.read_queue_nums.max(0),
        config.write_queue_nums.max(0),
    );
    let readable = perm::is_readable(config.perm) && ctx.is_readable();
    let writeable = perm::is_writeable(config.perm);
    let permission_of = |id: i32| match (readable && id < read, writeable && id < write) {
        (true, true) => Permission::ReadWrite,
        (true, false) => Permission::Read,
        (false, true) => Permission::Write,
        (false, false) => Permission::None,
    };
    let message_queues = (0..read.max(write).max(1))
        .map(|id| v2::MessageQueue {
            topic: resource(topic),
            id,
            permission: permission_of(id) as i32,
            broker: Some(broker.clone()),
            accept_message_types: accepted.clone(),
        })
        .collect();
    v2::QueryRouteResponse {
        status: status::ok(),
        message_queues,
    }
}

/// A push consumer pops every queue of the topic here (queue id -1), as RocketMQ's proxy
/// assigns non-FIFO groups.
pub async fn query_assignment(
    ctx: &BrokerContext,
    request: &v2::QueryAssignmentRequest,
) -> v2::QueryAssignmentResponse {
    let topic = request
        .topic
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or("");
    let Some(config) = known_topic(ctx, topic).await else {
        return v2::QueryAssignmentResponse {
            status: status::of(Code::TopicNotFound, format!("topic {topic} not found")),
            assignments: Vec::new(),
        };
    };
    if !perm::is_readable(config.perm) || config.read_queue_nums <= 0 || !ctx.is_readable() {
        return v2::QueryAssignmentResponse {
            status: status::of(Code::Forbidden, "no readable queue"),
            assignments: Vec::new(),
        };
    }
    let broker = broker(ctx, endpoints(ctx, request.endpoints.as_ref()));
    v2::QueryAssignmentResponse {
        status: status::ok(),
        assignments: vec![v2::Assignment {
            message_queue: Some(v2::MessageQueue {
                topic: resource(topic),
                id: -1,
                permission: Permission::ReadWrite as i32,
                broker: Some(broker),
                accept_message_types: accepted_types(ctx, &config),
            }),
        }],
    }
}
