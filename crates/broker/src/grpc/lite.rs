//! SyncLiteSubscription: the lite topics a lite consumer (push or simple) consumes, handed
//! to the master's registry ([`crate::lite`]) as LITE_SUBSCRIPTION_CTL, and dropped there
//! when the client terminates.

use grpc::v2::{self, offset_option::OffsetType, Code};
use remoting::body::lite::{
    policy, LiteSubscriptionAction, LiteSubscriptionCtlRequestBody, LiteSubscriptionDto,
    OffsetOption, OffsetOptionType,
};
use remoting::code::request as code;
use remoting::command::RemotingCommand;

use super::convert::resource_name;
use super::relay::MasterRelay;
use super::status;
use crate::context::BrokerContext;
use crate::processor::lite;

/// How long a change may take on the master.
const QUICK: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn sync(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    client_id: String,
    request: v2::SyncLiteSubscriptionRequest,
) -> v2::SyncLiteSubscriptionResponse {
    let status = match change_of(client_id, request) {
        Ok(change) => relay_change(ctx, relay, change).await,
        Err(refusal) => refusal,
    };
    v2::SyncLiteSubscriptionResponse { status }
}

/// Drops every lite topic of a terminating client.
pub async fn unsubscribe_all(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    client_id: String,
    group: String,
    topic: String,
) -> Option<v2::Status> {
    let change = LiteSubscriptionDto {
        action: LiteSubscriptionAction::CompleteRemove,
        client_id,
        group,
        topic,
        lite_topic_set: Vec::new(),
        version: 0,
        offset_option: None,
    };
    relay_change(ctx, relay, change).await
}

fn change_of(
    client_id: String,
    request: v2::SyncLiteSubscriptionRequest,
) -> Result<LiteSubscriptionDto, Option<v2::Status>> {
    let topic = resource_name(request.topic.as_ref());
    message::validate_topic(&topic).map_err(|e| status::of(Code::IllegalTopic, e.to_string()))?;
    let group = resource_name(request.group.as_ref());
    message::validate_group(&group)
        .map_err(|e| status::of(Code::IllegalConsumerGroup, e.to_string()))?;
    for lite_topic in &request.lite_topic_set {
        message::topic::validate_lite_topic(lite_topic)
            .map_err(|e| status::of(Code::IllegalLiteTopic, e.to_string()))?;
    }
    let action = match v2::LiteSubscriptionAction::try_from(request.action) {
        Ok(v2::LiteSubscriptionAction::PartialAdd) => LiteSubscriptionAction::PartialAdd,
        Ok(v2::LiteSubscriptionAction::PartialRemove) => LiteSubscriptionAction::PartialRemove,
        Ok(v2::LiteSubscriptionAction::CompleteAdd) => LiteSubscriptionAction::CompleteAdd,
        Ok(v2::LiteSubscriptionAction::CompleteRemove) => LiteSubscriptionAction::CompleteRemove,
        Err(_) => {
            return Err(status::of(
                Code::BadRequest,
                format!("unknown lite subscription action {}", request.action),
            ))
        }
    };
    let offset_option = request
        .offset_option
        .and_then(|option| option.offset_type)
        .map(|offset| match offset {
            OffsetType::Policy(value) => OffsetOption {
                kind: OffsetOptionType::Policy,
                value: match v2::offset_option::Policy::try_from(value) {
                    Ok(v2::offset_option::Policy::Min) => policy::MIN,
                    Ok(v2::offset_option::Policy::Max) => policy::MAX,
                    _ => policy::LAST,
                },
            },
            OffsetType::Offset(value) => OffsetOption {
                kind: OffsetOptionType::Offset,
                value,
            },
            OffsetType::TailN(value) => OffsetOption {
                kind: OffsetOptionType::TailN,
                value,
            },
            OffsetType::Timestamp(value) => OffsetOption {
                kind: OffsetOptionType::Timestamp,
                value,
            },
        });
    Ok(LiteSubscriptionDto {
        action,
        client_id,
        group,
        topic,
        lite_topic_set: request.lite_topic_set,
        version: request.version.unwrap_or(0),
        offset_option,
    })
}

async fn relay_change(
    ctx: &BrokerContext,
    relay: &MasterRelay,
    change: LiteSubscriptionDto,
) -> Option<v2::Status> {
    let body = LiteSubscriptionCtlRequestBody {
        subscription_set: vec![change],
    };
    let command = RemotingCommand::request(code::LITE_SUBSCRIPTION_CTL).with_body(body.encode());
    let answer = relay
        .run(ctx, command, QUICK, |command| async move {
            lite::subscription_ctl(ctx, &command).await
        })
        .await;
    status::of_remoting(answer.code, answer.remark.as_deref())
}
