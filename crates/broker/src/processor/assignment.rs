//! Queue assignment by the broker (RocketMQ 5): SET_MESSAGE_REQUEST_MODE (401) records
//! whether a group pops or pulls a topic (`mqadmin setConsumeMode`), GET_ALL_MESSAGE_
//! REQUEST_MODE (402) lists the modes, and QUERY_ASSIGNMENT (400) tells a consumer that
//! left rebalancing to the broker what to read: in POP mode every broker of the topic with
//! queue id -1 (pop every queue there), in PULL mode its share of the queues, averaged
//! over the group's consumers as the client's own rebalance would.

use remoting::allocate::AllocateStrategy;
use remoting::body::heartbeat::MessageModel;
use remoting::body::pop::{
    MessageQueueAssignment, MessageRequestMode, QueryAssignmentRequestBody,
    QueryAssignmentResponseBody, SetMessageRequestModeRequestBody,
};
use remoting::body::queue::MessageQueue;
use remoting::body::route::TopicRouteData;
use remoting::body::topic::perm;
use remoting::code::response;
use remoting::command::RemotingCommand;
use tracing::info;

use super::error;
use crate::context::BrokerContext;
use crate::metadata::{MetadataOp, RequestModeOp};

pub async fn set_mode(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match SetMessageRequestModeRequestBody::decode(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                request,
                response::INVALID_PARAMETER,
                format!("bad request mode body: {e}"),
            )
        }
    };
    if message::topic::is_retry_topic(&body.topic) {
        return error(
            request,
            response::NO_PERMISSION,
            "retry topic is not allowed to set mode",
        );
    }
    if !ctx.topics.contains(&body.topic) {
        return error(
            request,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist", body.topic),
        );
    }
    if ctx.groups.get(&body.consumer_group).is_none() {
        return error(
            request,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            "subscription group does not exist",
        );
    }
    let (topic, group, mode) = (body.topic.clone(), body.consumer_group.clone(), body.mode);
    match ctx
        .write_metadata(MetadataOp::RequestMode(RequestModeOp::Set(body)))
        .await
    {
        Ok(()) => {
            info!(%topic, %group, mode = mode.java_name(), "message request mode set");
            RemotingCommand::success_to(request)
        }
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

pub fn all_modes(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match ctx.request_modes.encode() {
        Ok(body) => RemotingCommand::success_to(request).with_body(body),
        Err(e) => error(request, response::SYSTEM_ERROR, e.to_string()),
    }
}

pub async fn query(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match QueryAssignmentRequestBody::decode(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                request,
                response::INVALID_PARAMETER,
                format!("bad assignment query: {e}"),
            )
        }
    };
    let assignments = assign(ctx, &body).await;
    RemotingCommand::success_to(request).with_body(
        QueryAssignmentResponseBody {
            message_queue_assignments: assignments,
        }
        .encode(),
    )
}

/// `None` (the client skips the round) when the topic has no route or the strategy is one
/// the broker does not know.
async fn assign(
    ctx: &BrokerContext,
    body: &QueryAssignmentRequestBody,
) -> Option<Vec<MessageQueueAssignment>> {
    let mode = if message::topic::is_retry_topic(&body.topic) {
        MessageRequestMode::Pull
    } else {
        ctx.request_modes
            .get(&body.topic, &body.consumer_group)
            .map_or(ctx.config.default_message_request_mode, |set| set.mode)
    };
    let route = match ctx.routes.route(&body.topic).await {
        Some(route) => route,
        None => own_route(ctx, &body.topic)?,
    };
    let broadcasting = body.message_model == Some(MessageModel::Broadcasting);
    if mode == MessageRequestMode::Pop && !broadcasting {
        let brokers = readable_brokers(&route);
        if brokers.is_empty() {
            return None;
        }
        return Some(
            brokers
                .into_iter()
                .map(|broker| MessageQueueAssignment {
                    attachments: None,
                    message_queue: MessageQueue::new(&body.topic, &broker, -1),
                    mode: MessageRequestMode::Pop,
                })
                .collect(),
        );
    }
    let queues = readable_queues(&route, &body.topic);
    let mine = if broadcasting {
        queues
    } else {
        let consumers = ctx.consumers.consumer_ids(&body.consumer_group);
        let strategy = match body.strategy_name.as_deref().unwrap_or("AVG") {
            "AVG" => AllocateStrategy::Averagely,
            "AVG_BY_CIRCLE" => AllocateStrategy::AveragelyByCircle,
            _ => return None,
        };
        strategy.allocate(&body.client_id, &queues, &consumers)
    };
    Some(
        mine.into_iter()
            .map(|queue| MessageQueueAssignment {
                attachments: None,
                message_queue: queue,
                mode: MessageRequestMode::Pull,
            })
            .collect(),
    )
}

/// This broker alone, when no name server answers: better than no assignment at all.
fn own_route(ctx: &BrokerContext, topic: &str) -> Option<TopicRouteData> {
    let config = ctx.topics.get(topic)?;
    let mut route = TopicRouteData::default();
    route.queue_datas.push(remoting::body::route::QueueData {
        broker_name: ctx.config.broker_name.clone(),
        read_queue_nums: config.read_queue_nums,
        write_queue_nums: config.write_queue_nums,
        perm: config.perm,
        topic_sys_flag: config.topic_sys_flag,
    });
    Some(route)
}

fn readable_brokers(route: &TopicRouteData) -> Vec<String> {
    let mut brokers: Vec<String> = route
        .queue_datas
        .iter()
        .filter(|q| perm::is_readable(q.perm) && q.read_queue_nums > 0)
        .map(|q| q.broker_name.clone())
        .collect();
    brokers.sort();
    brokers.dedup();
    brokers
}

fn readable_queues(route: &TopicRouteData, topic: &str) -> Vec<MessageQueue> {
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| perm::is_readable(q.perm))
        .flat_map(|q| (0..q.read_queue_nums).map(|id| MessageQueue::new(topic, &q.broker_name, id)))
        .collect();
    queues.sort_by(|a, b| (&a.broker_name, a.queue_id).cmp(&(&b.broker_name, b.queue_id)));
    queues
}
