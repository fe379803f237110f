//! Queue assignment by the broker (RocketMQ 5): SET_MESSAGE_REQUEST_MODE (401) records
//! whether a group pops or pulls a topic (`mqadmin setConsumeMode`), GET_ALL_MESSAGE_
//! REQUEST_MODE (402) lists the modes, and QUERY_ASSIGNMENT (400) tells a consumer that
//! left rebalancing to the broker what to read: in POP mode every broker of the topic with
//! queue id -1 (pop every queue there) or, with a `popShareQueueNum` of N smaller than the
//! other consumers, its own share of the queues plus those of the N consumers after it; in
//! PULL mode its share of the queues, averaged over the group's consumers as the client's
//! own rebalance would.

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
    let (mode, pop_share) = if message::topic::is_retry_topic(&body.topic) {
        (MessageRequestMode::Pull, 0)
    } else {
        ctx.request_modes
            .get(&body.topic, &body.consumer_group)
            .map_or(
                (
                    ctx.config.default_message_request_mode,
                    ctx.config.default_pop_share_queue_num,
                ),
                |set| (set.mode, set.pop_share_queue_num),
            )
    };
    let route = match ctx.routes.route(&body.topic).await {
        Some(route) => route,
        None => own_route(ctx, &body.topic)?,
    };
    let broadcasting = body.message_model == Some(MessageModel::Broadcasting);
    let queues = readable_queues(&route, &body.topic);
    let assigned = |queues: Vec<MessageQueue>, mode| {
        queues
            .into_iter()
            .map(|queue| MessageQueueAssignment {
                attachments: None,
                message_queue: queue,
                mode,
            })
            .collect()
    };
    if broadcasting {
        return Some(assigned(queues, MessageRequestMode::Pull));
    }
    let strategy = match body.strategy_name.as_deref().unwrap_or("AVG") {
        "AVG" => Some(AllocateStrategy::Averagely),
        "AVG_BY_CIRCLE" => Some(AllocateStrategy::AveragelyByCircle),
        _ => None,
    };
    let consumers = ctx.consumers.consumer_ids(&body.consumer_group);
    if mode == MessageRequestMode::Pull {
        let mine = strategy?.allocate(&body.client_id, &queues, &consumers);
        return Some(assigned(mine, MessageRequestMode::Pull));
    }
    // A strategy this broker does not know cannot share the queues: the consumer pops them
    // all, which is still correct (RocketMQ's broker assigns it nothing).
    let shared = strategy
        .and_then(|strategy| pop_queues(strategy, &body.client_id, &queues, &consumers, pop_share));
    let mine = match shared {
        Some(mine) => mine,
        None => {
            let brokers = readable_brokers(&route);
            if brokers.is_empty() {
                return None;
            }
            brokers
                .iter()
                .map(|broker| MessageQueue::new(&body.topic, broker, -1))
                .collect()
        }
    };
    Some(assigned(mine, MessageRequestMode::Pop))
}

/// The queues a POP consumer pops, as RocketMQ's `allocate4Pop` shares them: `None` when
/// it pops every queue of every broker (a `share` of 0 or less, or at least as many as the
/// other consumers); else its own share of `queues` plus those of the `share` consumers
/// after it in the sorted list, or, when there are more consumers than queues, the one
/// queue at its place.
fn pop_queues(
    strategy: AllocateStrategy,
    client_id: &str,
    queues: &[MessageQueue],
    consumers: &[String],
    share: i32,
) -> Option<Vec<MessageQueue>> {
    let others = consumers.len().saturating_sub(1);
    let share = usize::try_from(share)
        .ok()
        .filter(|s| *s > 0 && *s < others)?;
    let Some(index) = consumers.iter().position(|c| c == client_id) else {
        return Some(Vec::new());
    };
    if queues.is_empty() {
        return Some(Vec::new());
    }
    if consumers.len() > queues.len() {
        return Some(vec![queues[index % queues.len()].clone()]);
    }
    let mut mine: Vec<MessageQueue> = (0..=share)
        .flat_map(|step| {
            let consumer = &consumers[(index + step) % consumers.len()];
            strategy.allocate(consumer, queues, consumers)
        })
        .collect();
    mine.sort();
    mine.dedup();
    Some(mine)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n).map(|i| MessageQueue::new("T", "b", i)).collect()
    }

    fn ids(queues: &[MessageQueue]) -> Vec<i32> {
        queues.iter().map(|q| q.queue_id).collect()
    }

    fn consumers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn a_pop_consumer_pops_its_share_and_its_followers_shares() {
        let all = queues(8);
        let four = consumers(4);
        let mine =
            |me: &str, share| pop_queues(AllocateStrategy::Averagely, me, &all, &four, share);
        // 8 queues over 4 consumers: two each; a share of 1 adds the next consumer's two,
        // wrapping round at the end of the sorted list.
        assert_eq!(mine("c0", 1).map(|q| ids(&q)), Some(vec![0, 1, 2, 3]));
        assert_eq!(mine("c3", 1).map(|q| ids(&q)), Some(vec![0, 1, 6, 7]));
        assert_eq!(mine("c1", 2).map(|q| ids(&q)), Some(vec![2, 3, 4, 5, 6, 7]));
        // A consumer the broker does not know gets nothing.
        assert_eq!(mine("stranger", 1), Some(Vec::new()));
    }

    #[test]
    fn a_share_of_zero_or_of_all_the_others_pops_every_queue() {
        let all = queues(8);
        let four = consumers(4);
        for share in [-1, 0, 3, 5] {
            assert_eq!(
                pop_queues(AllocateStrategy::Averagely, "c0", &all, &four, share),
                None,
                "share {share}"
            );
        }
    }

    #[test]
    fn with_more_consumers_than_queues_each_pops_the_queue_at_its_place() {
        let all = queues(2);
        let five = consumers(5);
        let mine = |me: &str| pop_queues(AllocateStrategy::Averagely, me, &all, &five, 1);
        assert_eq!(mine("c0").map(|q| ids(&q)), Some(vec![0]));
        assert_eq!(mine("c3").map(|q| ids(&q)), Some(vec![1]));
        assert_eq!(mine("c4").map(|q| ids(&q)), Some(vec![0]));
    }
}
