//! HEART_BEAT (34), UNREGISTER_CLIENT (35), CHECK_CLIENT_CONFIG (46).
//!
//! A heartbeat registers the client's connection in each producer and consumer group it
//! names, records the consumers' subscriptions (pulls without a subscription use them),
//! and makes sure each consumer group's `%RETRY%<group>` topic exists so clients can find
//! a route for it. The response carries our version (479): the Java client remembers it
//! as the broker's version and gates features on it.

use message::tag::SubscriptionError;
use message::topic::retry_topic;
use message::{validate_group, TagFilter};
use remoting::body::{perm, CheckClientRequestBody, HeartbeatData};
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::ConnectionHandle;
use remoting::header::client::UnregisterClientRequestHeader;
use tracing::warn;

use super::{decode_header, error, notify_if_enabled};
use crate::client_groups::consumer::ConsumerRegistration;
use crate::client_groups::ClientChannel;
use crate::context::BrokerContext;

/// Groups one heartbeat may register; real clients name a handful. Each new consumer group
/// can create a retry topic, so a flood of groups in one request is cut short.
const MAX_GROUPS_PER_HEARTBEAT: usize = 1024;

pub async fn heartbeat(
    ctx: &BrokerContext,
    conn: &ConnectionHandle,
    request: &RemotingCommand,
) -> RemotingCommand {
    let data = match HeartbeatData::decode(&request.body) {
        Ok(data) => data,
        Err(e) => {
            return error(
                request,
                response::SYSTEM_ERROR,
                format!("bad heartbeat body: {e}"),
            )
        }
    };
    let channel = ClientChannel::new(conn, &data.client_id, request.language, request.version);
    if data.consumer_data_set.len() + data.producer_data_set.len() > MAX_GROUPS_PER_HEARTBEAT {
        warn!(client = %data.client_id, consumers = data.consumer_data_set.len(),
            producers = data.producer_data_set.len(),
            "heartbeat names too many groups; only the first {MAX_GROUPS_PER_HEARTBEAT} are registered");
    }
    let consumers = data
        .consumer_data_set
        .into_iter()
        .take(MAX_GROUPS_PER_HEARTBEAT);
    for consumer in consumers {
        let group = consumer.group_name;
        if let Err(e) = validate_group(&group) {
            warn!(client = %data.client_id, error = %e, "heartbeat names an invalid consumer group");
            continue;
        }
        ensure_retry_topic(ctx, &group).await;
        let registration = ConsumerRegistration {
            group: group.clone(),
            channel: channel.clone(),
            consume_type: consumer.consume_type,
            message_model: consumer.message_model,
            consume_from_where: consumer.consume_from_where,
            subscriptions: consumer.subscription_data_set,
        };
        match ctx.consumers.register(registration) {
            Ok(Some(change)) => notify_if_enabled(ctx, change),
            Ok(None) => {}
            Err(e) => {
                warn!(client = %data.client_id, %group, error = %e, "consumer not registered")
            }
        }
    }
    for producer in data
        .producer_data_set
        .into_iter()
        .take(MAX_GROUPS_PER_HEARTBEAT)
    {
        if validate_group(&producer.group_name).is_err() {
            continue;
        }
        if !ctx
            .producers
            .register(&producer.group_name, channel.clone())
        {
            warn!(client = %data.client_id, group = %producer.group_name, "producer not registered: limit reached");
        }
    }
    RemotingCommand::success_to(request)
}

/// The consumer group's config (auto-created when allowed) and its retry topic.
async fn ensure_retry_topic(ctx: &BrokerContext, group: &str) {
    // A group follower leaves it to the master, which the same consumers heartbeat to.
    if !ctx.can_write_metadata() {
        return;
    }
    let config = match ctx.group_or_create(group).await {
        Ok(Some(config)) => config,
        Ok(None) => return,
        Err(e) => {
            warn!(%group, error = %e, "subscription group not created");
            return;
        }
    };
    if config.retry_queue_nums <= 0 {
        return;
    }
    let topic = retry_topic(group);
    if let Err(e) = ctx
        .topic_or_create(&topic, config.retry_queue_nums, perm::READ_WRITE)
        .await
    {
        warn!(%topic, error = %e, "retry topic not created");
    }
}

pub fn unregister(
    ctx: &BrokerContext,
    conn: &ConnectionHandle,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: UnregisterClientRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Some(group) = header.producer_group.as_deref().filter(|g| !g.is_empty()) {
        ctx.producers.unregister(group, conn.id());
    }
    if let Some(group) = header.consumer_group.as_deref().filter(|g| !g.is_empty()) {
        if let Some(change) = ctx.consumers.unregister(group, conn) {
            notify_if_enabled(ctx, change);
        }
    }
    RemotingCommand::success_to(request)
}

/// Java consumers with a non-TAG subscription ask before starting; we filter by tag only.
pub fn check_client_config(request: &RemotingCommand) -> RemotingCommand {
    let body = match remoting::body::fastjson::decode::<CheckClientRequestBody>(&request.body) {
        Ok(body) => body,
        Err(e) => return error(request, response::SYSTEM_ERROR, format!("bad body: {e}")),
    };
    if let Some(subscription) = body.subscription_data {
        match TagFilter::parse_typed(
            &subscription.sub_string,
            Some(&subscription.expression_type),
        ) {
            Ok(_) => {}
            Err(e @ SubscriptionError::UnsupportedType(_)) => {
                return error(
                    request,
                    response::SYSTEM_ERROR,
                    format!("The broker does not support consumer to filter message by {e}"),
                )
            }
            Err(e) => return error(request, response::SUBSCRIPTION_PARSE_FAILED, e.to_string()),
        }
    }
    RemotingCommand::success_to(request)
}
