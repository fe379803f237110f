//! HEART_BEAT (34), UNREGISTER_CLIENT (35), CHECK_CLIENT_CONFIG (46).
//!
//! SQL92 subscriptions a heartbeat reports are compiled at once (and cached for the pulls)
//! so a bad one is logged when it arrives; CHECK_CLIENT_CONFIG answers whether one can be
//! used here.
//!
//! A heartbeat registers the client's connection in each producer and consumer group it
//! names, records the consumers' subscriptions (pulls without a subscription use them),
//! and makes sure each consumer group's `%RETRY%<group>` topic exists so clients can find
//! a route for it. The response carries our version (479): the Java client remembers it
//! as the broker's version and gates features on it.

use message::topic::retry_topic;
use message::validate_group;
use remoting::body::{perm, CheckClientRequestBody, HeartbeatData, SubscriptionData};
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::ConnectionHandle;
use remoting::header::client::UnregisterClientRequestHeader;
use tracing::warn;

use super::{decode_header, error, notify_if_enabled};
use crate::client_groups::consumer::ConsumerRegistration;
use crate::client_groups::ClientChannel;
use crate::consumer_filter::{ExpressionKind, Subscription};
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
        precompile_sql92(
            ctx,
            &data.client_id,
            &group,
            &consumer.subscription_data_set,
        );
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

/// Java consumers with a non-TAG subscription ask every broker of the topic before they
/// start, and refuse to start on an error: SYSTEM_ERROR when SQL92 is off here
/// (`enablePropertyFilter`), SUBSCRIPTION_PARSE_FAILED with the reason when the expression
/// does not compile. The compiled expression is kept for the pulls that follow.
pub fn check_client_config(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match remoting::body::fastjson::decode::<CheckClientRequestBody>(&request.body) {
        Ok(body) => body,
        Err(e) => return error(request, response::SYSTEM_ERROR, format!("bad body: {e}")),
    };
    let Some(subscription) = body.subscription_data else {
        return RemotingCommand::success_to(request);
    };
    let kind = match ExpressionKind::of(Some(&subscription.expression_type)) {
        Ok(kind) => kind,
        Err(e) => return error(request, response::SUBSCRIPTION_PARSE_FAILED, e.to_string()),
    };
    if kind == ExpressionKind::Sql92 && !ctx.config.enable_property_filter {
        return error(
            request,
            response::SYSTEM_ERROR,
            format!(
                "The broker does not support consumer to filter message by {}; set enablePropertyFilter=true in broker.conf",
                subscription.expression_type
            ),
        );
    }
    let checked = Subscription {
        group: &body.group,
        topic: &subscription.topic,
        expression: &subscription.sub_string,
        expression_type: Some(&subscription.expression_type),
        version: subscription.sub_version,
    };
    match ctx.filters.filter(checked) {
        Ok(_) => RemotingCommand::success_to(request),
        Err(e) => error(request, response::SUBSCRIPTION_PARSE_FAILED, e.to_string()),
    }
}

/// Compiles a heartbeat's SQL92 subscriptions ahead of the pulls (which would otherwise
/// compile them) and logs those that cannot be used: the client learns of it from its pulls.
fn precompile_sql92(
    ctx: &BrokerContext,
    client: &str,
    group: &str,
    subscriptions: &[SubscriptionData],
) {
    if !ctx.config.enable_property_filter {
        return;
    }
    for subscription in subscriptions {
        if !matches!(
            ExpressionKind::of(Some(&subscription.expression_type)),
            Ok(ExpressionKind::Sql92)
        ) {
            continue;
        }
        let registered = Subscription {
            group,
            topic: &subscription.topic,
            expression: &subscription.sub_string,
            expression_type: Some(&subscription.expression_type),
            version: subscription.sub_version,
        };
        if let Err(e) = ctx.filters.sql92(registered) {
            warn!(%client, %group, topic = %subscription.topic, error = %e,
                "a consumer's SQL92 subscription does not compile; its pulls will be refused");
        }
    }
}
