//! Lite topics on the master (RocketMQ 5.5, see [`crate::lite`]): LITE_SUBSCRIPTION_CTL
//! (200071) changes which lite topics a client consumes (a metadata op, replicated in a
//! group), POP_LITE_MESSAGE (200070) pops them: an orderly pop of each subscribed LMQ,
//! answered as POP_MESSAGE answers.

use remoting::body::lite::{
    policy, LiteSubscriptionAction, LiteSubscriptionCtlRequestBody, OffsetOption, OffsetOptionType,
};
use remoting::body::SubscriptionGroupConfig;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pop::{PopLiteMessageRequestHeader, PopMessageRequestHeader};

use super::pop::{self, LiteClient};
use super::{decode_header, Refusal};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::lite::LiteOp;
use crate::metadata::{attributes, MetaError, MetadataOp, OffsetOp};

pub async fn pop(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    requester_gone: impl std::future::Future<Output = ()>,
) -> RemotingCommand {
    let header: PopLiteMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Err(refusal) = check_parent(ctx, &header.topic) {
        return refusal.into_response(request);
    }
    if let Some(group) = ctx.groups.get(&header.consumer_group) {
        if let Err(refusal) = check_binding(&group, &header.topic) {
            return refusal.into_response(request);
        }
    }
    let popped = PopMessageRequestHeader {
        consumer_group: header.consumer_group,
        topic: header.topic,
        queue_id: -1,
        max_msg_nums: header.max_msg_num,
        invisible_time: header.invisible_time,
        poll_time: header.poll_time,
        born_time: header.born_time,
        init_mode: 1,
        exp_type: None,
        exp: None,
        order: Some(true),
        attempt_id: header.attempt_id,
        broker_name: None,
    };
    let client = LiteClient {
        client_id: &header.client_id,
    };
    pop::serve(ctx, request, &popped, Some(client), requester_gone).await
}

pub async fn subscription_ctl(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    match apply(ctx, request).await {
        Ok(()) => RemotingCommand::success_to(request),
        Err(refusal) => refusal.into_response(request),
    }
}

async fn apply(ctx: &BrokerContext, request: &RemotingCommand) -> Result<(), Refusal> {
    if !ctx.role.is_master() {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] is not the master of its group; subscribe at the master",
                ctx.config.broker_ip1
            ),
        ));
    }
    let body = LiteSubscriptionCtlRequestBody::decode(&request.body).map_err(|e| {
        Refusal::new(
            response::INVALID_PARAMETER,
            format!("the lite subscription body cannot be read: {e}"),
        )
    })?;
    for change in &body.subscription_set {
        message::validate_group(&change.group)
            .map_err(|e| Refusal::new(response::INVALID_PARAMETER, e.to_string()))?;
        check_parent(ctx, &change.topic)?;
        for lite_topic in &change.lite_topic_set {
            message::topic::validate_lite_topic(lite_topic)
                .map_err(|e| Refusal::new(response::INVALID_PARAMETER, e.to_string()))?;
        }
        if change.action != LiteSubscriptionAction::CompleteRemove {
            match ctx.group_or_create(&change.group).await {
                Ok(Some(group)) if group.consume_enable => check_binding(&group, &change.topic)?,
                Ok(Some(_)) => {
                    return Err(Refusal::new(
                        response::NO_PERMISSION,
                        format!("subscription group no permission, {}", change.group),
                    ))
                }
                Ok(None) => {
                    return Err(Refusal::new(
                        response::SUBSCRIPTION_GROUP_NOT_EXIST,
                        format!("subscription group [{}] does not exist", change.group),
                    ))
                }
                Err(e) => return Err(Refusal::new(response::SYSTEM_ERROR, e.to_string())),
            }
        }
        let op = MetadataOp::Lite(LiteOp {
            change: change.clone(),
            at_ms: now_ms(),
        });
        ctx.write_metadata(op).await.map_err(|e| {
            let code = match e {
                MetaError::LimitReached { .. } => response::LITE_SUBSCRIPTION_QUOTA_EXCEEDED,
                _ => response::SYSTEM_ERROR,
            };
            Refusal::new(code, e.to_string())
        })?;
        if let Some(option) = change
            .offset_option
            .filter(|_| change.action == LiteSubscriptionAction::PartialAdd)
        {
            for lite_topic in &change.lite_topic_set {
                let lmq = message::topic::lmq_name(&change.topic, lite_topic);
                reset_offset(ctx, &change.group, &lmq, option).await?;
            }
        }
    }
    Ok(())
}

/// A group bound to a parent topic (`lite.bind.topic`) consumes the lite topics of that
/// one only. An unbound group may consume any LITE parent: RocketMQ requires the binding,
/// this broker lets groups the clients auto-create consume as well.
fn check_binding(group: &SubscriptionGroupConfig, topic: &str) -> Result<(), Refusal> {
    match attributes::lite_bind_topic(&group.attributes) {
        Some(bound) if bound != topic => Err(Refusal::new(
            response::INVALID_PARAMETER,
            format!(
                "group {} is bound to topic {bound} (lite.bind.topic), not {topic}",
                group.group_name
            ),
        )),
        _ => Ok(()),
    }
}

/// Lite topics belong to a `LITE` parent topic.
fn check_parent(ctx: &BrokerContext, topic: &str) -> Result<(), Refusal> {
    let Some(config) = ctx.topics.get(topic) else {
        return Err(Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please!"),
        ));
    };
    let kind = attributes::message_type_of_topic(&config.attributes);
    if kind != "LITE" {
        return Err(Refusal::new(
            response::INVALID_PARAMETER,
            format!("topic[{topic}] is a {kind} topic; lite topics need message.type=LITE"),
        ));
    }
    Ok(())
}

/// Where a newly subscribed lite topic is consumed from, as the client asked (RocketMQ's
/// `resetOffset`): its start, its end, an offset, or N before the group's offset; a time
/// and LAST keep the group's offset.
async fn reset_offset(
    ctx: &BrokerContext,
    group: &str,
    lmq: &str,
    option: OffsetOption,
) -> Result<(), Refusal> {
    let reader = ctx.store.reader();
    let (min, max) = (reader.min_offset(lmq, 0), reader.max_offset(lmq, 0));
    let current = ctx.offsets.query(group, lmq, 0);
    let target = match option.kind {
        OffsetOptionType::Policy if option.value == policy::MIN => Some(min),
        OffsetOptionType::Policy if option.value == policy::MAX => Some(max),
        OffsetOptionType::Offset => Some(option.value.clamp(min, max)),
        OffsetOptionType::TailN => current.map(|at| at.saturating_sub(option.value).max(min)),
        OffsetOptionType::Policy | OffsetOptionType::Timestamp => None,
    };
    let Some(offset) = target.filter(|t| Some(*t) != current) else {
        return Ok(());
    };
    let op = MetadataOp::Offset(OffsetOp::Commit {
        group: group.to_owned(),
        topic: lmq.to_owned(),
        queue_id: 0,
        offset,
    });
    ctx.write_metadata(op)
        .await
        .map_err(|e| Refusal::new(response::SYSTEM_ERROR, format!("offset not reset: {e}")))?;
    ctx.pop
        .order
        .lock()
        .forget(&(group.to_owned(), lmq.to_owned(), 0));
    Ok(())
}
