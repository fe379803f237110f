//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), with long polling.
//!
//! Checks, in RocketMQ's order: header; role and broker permission; subscription group
//! (auto-created when allowed) and its consume permission; topic exists and is readable;
//! queue id; the subscription (from the request when it carries one, else the one the
//! group's heartbeat registered: Java push consumers send none; when the pull's version is
//! newer, the one the group's members report when asked); for a SQL92 subscription,
//! `enablePropertyFilter`.
//!
//! TAG subscriptions filter on the ConsumeQueue's tags code; SQL92 ones on each candidate
//! record's properties (compiled once, see [`crate::consumer_filter`]). Either way a pull
//! scans a bounded stretch of the queue, so a selective filter costs the consumer extra
//! round trips (PULL_RETRY_IMMEDIATELY), never the broker an unbounded read.
//!
//! The response body is the stored records exactly as the CommitLog holds them, back to
//! back. Every response, whatever its code, carries the four offsets clients read
//! (`suggestWhichBrokerId`, `nextBeginOffset`, `minOffset`, `maxOffset`).
//!
//! In a broker group, followers serve pulls too (they hold only committed messages, and
//! during an election they are all a consumer can reach) whatever `slaveReadEnable` says.
//! A follower may lag the master, so an offset beyond its end is "nothing new yet", never
//! PULL_OFFSET_MOVED (which would make the consumer jump); its answers suggest the master
//! (`suggestWhichBrokerId` 0) unless `slaveReadEnable` invites consumers to stay.
//!
//! Long polling: a pull with FLAG_SUSPEND that finds nothing new is parked on its queue
//! (see [`crate::long_poll`]) until a message arrives there or its suspend time (capped
//! below the clients' 30 s socket timeout) runs out. On each arrival it re-reads: a match
//! answers at once; arrivals its filter rejects move its read position on and it keeps
//! waiting while time remains.

use std::time::Duration;

use message::sysflag::pull as pull_flag;
use message::tag::{self, EXPRESSION_TYPE_SQL92};
use remoting::body::heartbeat::SubscriptionData;
use remoting::body::perm;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use store::{GetMessageResult, GetMessageStatus};
use tokio::time::Instant;

use super::consumer_calls;
use crate::consumer_filter::{ExpressionKind, FilterError, Subscription, SubscriptionFilter};
use crate::context::BrokerContext;
use crate::stats_items;

/// Clients wait 30 s for a suspended pull; answer well before.
pub const MAX_SUSPEND: Duration = Duration::from_secs(25);

pub async fn process(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header = match request.decode_header::<PullMessageRequestHeader>() {
        Ok(header) => header,
        Err(e) => {
            return with_offsets(
                RemotingCommand::error_to(request, response::SYSTEM_ERROR, e.to_string()),
                suggest_broker_id(ctx),
                0,
                0,
                0,
            )
        }
    };
    let filter = match check(ctx, &header).await {
        Ok(filter) => filter,
        Err((code, remark)) => {
            let (min, max) = queue_bounds(ctx, &header);
            return with_offsets(
                RemotingCommand::error_to(request, code, remark),
                suggest_broker_id(ctx),
                header.queue_offset,
                min,
                max,
            );
        }
    };
    let reset_to = ctx
        .offset_resets
        .take(&header.consumer_group, &header.topic, header.queue_id);
    // The first pull of a queue after a reset moves the consumer there, unless it already
    // reads from there: the reset notice reached it, and Java clients that are moved as
    // well drop the queue for 10 s and wait for a rebalance to take it again (up to 30 s
    // more). Either way the pull carries no commit: its offset predates the reset.
    if let Some(reset_to) = reset_to.filter(|to| *to != header.queue_offset) {
        let (min, max) = queue_bounds(ctx, &header);
        return with_offsets(
            RemotingCommand::error_to(request, response::PULL_OFFSET_MOVED, "reset offset"),
            suggest_broker_id(ctx),
            reset_to,
            min,
            max,
        );
    }
    if reset_to.is_none()
        && header.sys_flag & pull_flag::COMMIT_OFFSET != 0
        && header.commit_offset >= 0
        && ctx.role.is_master()
    {
        ctx.commit_offset_soon(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
    }
    read_or_wait(ctx, request, &header, &filter).await
}

type Refusal = (i32, String);

/// The broker id a consumer should pull from next: the master, unless this is a group
/// follower and `slaveReadEnable` lets consumers stay on it.
fn suggest_broker_id(ctx: &BrokerContext) -> i64 {
    if is_group_follower(ctx) && ctx.config.slave_read_enable {
        i64::try_from(ctx.role.broker_id()).unwrap_or(0)
    } else {
        0
    }
}

fn is_group_follower(ctx: &BrokerContext) -> bool {
    ctx.group.is_some() && !ctx.role.is_master()
}

async fn check(
    ctx: &BrokerContext,
    header: &PullMessageRequestHeader,
) -> Result<SubscriptionFilter, Refusal> {
    if !ctx.role.is_master() && !ctx.config.slave_read_enable && ctx.group.is_none() {
        return Err((
            response::NO_PERMISSION,
            "the broker is a slave and slaveReadEnable=false; pull from its master".into(),
        ));
    }
    if !ctx.is_readable() {
        return Err((
            response::NO_PERMISSION,
            format!(
                "the broker[{}] pulling message is forbidden",
                ctx.config.broker_ip1
            ),
        ));
    }
    let group = header.consumer_group.as_str();
    if let Err(e) = message::validate_group(group) {
        return Err((response::INVALID_PARAMETER, e.to_string()));
    }
    let group_config = match ctx.group_or_create(group).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            return Err((
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group [{group}] does not exist"),
            ))
        }
        Err(e) => return Err((response::SYSTEM_ERROR, e.to_string())),
    };
    if !group_config.consume_enable {
        return Err((
            response::NO_PERMISSION,
            format!("subscription group no permission, {group}"),
        ));
    }
    let topic = header.topic.as_str();
    let Some(topic_config) = ctx.topics.get(topic) else {
        return Err((
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please!"),
        ));
    };
    if !perm::is_readable(topic_config.perm) {
        return Err((
            response::NO_PERMISSION,
            format!("the topic[{topic}] pulling message is forbidden"),
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic_config.read_queue_nums {
        return Err((
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}]",
                header.queue_id, topic_config.read_queue_nums
            ),
        ));
    }
    let filter = if header.sys_flag & pull_flag::SUBSCRIPTION != 0 {
        let subscription = Subscription {
            group,
            topic,
            expression: header.subscription.as_deref().unwrap_or(""),
            expression_type: header.expression_type.as_deref(),
            version: header.sub_version,
        };
        ctx.filters.filter(subscription).map_err(|e| {
            (
                response::SUBSCRIPTION_PARSE_FAILED,
                format!("parse the consumer's subscription failed: {e}"),
            )
        })?
    } else {
        registered_filter(ctx, header).await?
    };
    if filter.is_sql92() && !ctx.config.enable_property_filter {
        return Err((
            response::SYSTEM_ERROR,
            format!(
                "The broker does not support consumer to filter message by {}; set enablePropertyFilter=true in broker.conf",
                EXPRESSION_TYPE_SQL92
            ),
        ));
    }
    Ok(filter)
}

/// The filter of the subscription the group's heartbeats registered. A SQL92 expression
/// that does not compile is RocketMQ's FILTER_DATA_NOT_EXIST (its broker keeps no filter
/// data for it); a bad TAG expression, SUBSCRIPTION_PARSE_FAILED.
async fn registered_filter(
    ctx: &BrokerContext,
    header: &PullMessageRequestHeader,
) -> Result<SubscriptionFilter, Refusal> {
    let group = header.consumer_group.as_str();
    let topic = header.topic.as_str();
    let Some(subscription) = ctx.consumers.subscription(group, topic) else {
        let remark = if ctx.consumers.group_exists(group) {
            format!("the consumer's subscription not exist, group: {group} topic: {topic}")
        } else {
            format!("the consumer's group info not exist, group: {group}")
        };
        return Err((response::SUBSCRIPTION_NOT_EXIST, remark));
    };
    let subscription =
        if subscription.sub_version < header.sub_version && !hides_nothing(&subscription, header) {
            let checked = consumer_calls::check_subscriptions(ctx, group).await;
            match checked
                .then(|| ctx.consumers.subscription(group, topic))
                .flatten()
                .filter(|latest| latest.sub_version >= header.sub_version)
            {
                Some(latest) => latest,
                None => {
                    return Err((
                        response::SUBSCRIPTION_NOT_LATEST,
                        format!(
                            "the consumer's subscription not latest, group: {group} topic: {topic}"
                        ),
                    ))
                }
            }
        } else {
            subscription
        };
    let registered = Subscription {
        group,
        topic,
        expression: &subscription.sub_string,
        expression_type: Some(&subscription.expression_type),
        version: subscription.sub_version,
    };
    ctx.filters.filter(registered).map_err(|e| match e {
        FilterError::Tag(_) => (
            response::SUBSCRIPTION_PARSE_FAILED,
            format!("parse the consumer's subscription failed: {e}"),
        ),
        FilterError::Sql92(_) | FilterError::UnknownType(_) => (
            response::FILTER_DATA_NOT_EXIST,
            format!(
                "the consumer's filter data does not exist, group: {group} topic: {topic}: the expression `{}` is refused: {e}",
                subscription.sub_string
            ),
        ),
    })
}

/// Whether the registered subscription, though older than the pull's, lets through every
/// message the consumer can want. RocketMQ's broker refuses every pull whose subscription
/// version is newer than the registered one (the consumer may have changed its expression
/// and the heartbeat saying so is on its way). But the Java 5.x client also raises the
/// version on each rebalance, and the heartbeat carrying it can lose a race with the
/// client's own scheduled heartbeat (apache/rocketmq#3434): the consumer then idles until
/// its next heartbeat, 30 s later, which in a broker group (one heartbeat per member) is
/// what usually happens to a new consumer. A registered TAG `*` hides no message from a
/// newer TAG expression (clients filter tags again), so such a pull is served at once;
/// for any other, the members are asked for their subscriptions first.
fn hides_nothing(registered: &SubscriptionData, header: &PullMessageRequestHeader) -> bool {
    let is_tag = |kind: Option<&str>| matches!(ExpressionKind::of(kind), Ok(ExpressionKind::Tag));
    is_tag(Some(&registered.expression_type))
        && tag::subscribes_all(&registered.sub_string)
        && is_tag(header.expression_type.as_deref())
}

fn queue_bounds(ctx: &BrokerContext, header: &PullMessageRequestHeader) -> (i64, i64) {
    if ctx.topics.contains(&header.topic) && header.queue_id >= 0 {
        (
            ctx.store
                .reader()
                .min_offset(&header.topic, header.queue_id),
            ctx.store
                .reader()
                .max_offset(&header.topic, header.queue_id),
        )
    } else {
        (0, 0)
    }
}

/// A read's meaning for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Found,
    /// Nothing new yet (PULL_NOT_FOUND): may be parked.
    NothingNew,
    /// Entries were there but none matched (PULL_RETRY_IMMEDIATELY).
    NoneMatched,
    /// Answer with this code now.
    Answer(i32),
}

/// RocketMQ's mapping from store statuses to pull response codes.
fn verdict(status: GetMessageStatus, request_offset: i64) -> Verdict {
    match status {
        GetMessageStatus::Found => Verdict::Found,
        GetMessageStatus::NoMatchedMessage => Verdict::NoneMatched,
        GetMessageStatus::MessageWasRemoving => Verdict::Answer(response::PULL_RETRY_IMMEDIATELY),
        GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
            if request_offset != 0 {
                Verdict::Answer(response::PULL_OFFSET_MOVED)
            } else {
                Verdict::NothingNew
            }
        }
        GetMessageStatus::OffsetFoundNull | GetMessageStatus::OffsetOverflowOne => {
            Verdict::NothingNew
        }
        GetMessageStatus::OffsetOverflowBadly | GetMessageStatus::OffsetTooSmall => {
            Verdict::Answer(response::PULL_OFFSET_MOVED)
        }
    }
}

async fn read_or_wait(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    filter: &SubscriptionFilter,
) -> RemotingCommand {
    let suspend = header.sys_flag & pull_flag::SUSPEND != 0;
    let hold = if ctx.live.long_polling_enable() {
        Duration::from_millis(u64::try_from(header.suspend_timeout_millis).unwrap_or(0))
    } else {
        ctx.config.short_polling_time
    };
    let deadline = Instant::now() + hold.min(MAX_SUSPEND);
    let parked = if suspend {
        ctx.long_poll.park(&header.topic, header.queue_id)
    } else {
        None
    };
    let max_count = usize::try_from(header.max_msg_nums).unwrap_or(1).max(1);
    let max_bytes = header
        .max_msg_bytes
        .and_then(|b| usize::try_from(b).ok())
        .filter(|b| *b > 0);
    let mut offset = header.queue_offset;
    let mut first_read = true;
    let follower = is_group_follower(ctx);
    loop {
        // Registered before the read, so an arrival during the read is not missed.
        let arrival = parked.as_ref().map(|p| p.notified());
        let read = ctx.store.reader().get_messages(
            &header.topic,
            header.queue_id,
            offset,
            max_count,
            max_bytes,
            filter,
        );
        let mut verdict = verdict(read.status, offset);
        let mut read = read;
        if follower && verdict == Verdict::Answer(response::PULL_OFFSET_MOVED) {
            // This follower may be behind the master the consumer read from: wait for it to
            // catch up rather than send the consumer elsewhere in the queue.
            verdict = Verdict::NothingNew;
            read.next_begin_offset = offset;
        }
        let may_wait =
            parked.is_some() && Instant::now() < deadline && !ctx.shutdown.is_cancelled();
        match verdict {
            Verdict::Found => {
                count_get(ctx, &header.topic, &header.consumer_group, &read);
                return found(ctx, request, read);
            }
            Verdict::NothingNew if may_wait => {}
            // What arrived while parked was not for us and the read reached the end of
            // the queue: wait on from there. (If it stopped short of the end, the answer
            // below sends the client on to read the rest at once.)
            Verdict::NoneMatched
                if !first_read && may_wait && read.next_begin_offset >= read.max_offset =>
            {
                offset = read.next_begin_offset
            }
            Verdict::NothingNew if suspend && parked.is_none() && first_read => {
                return answer(
                    ctx,
                    RemotingCommand::error_to(
                        request,
                        response::SYSTEM_BUSY,
                        "too many suspended pulls; try again later",
                    ),
                    &read,
                )
            }
            Verdict::NothingNew => {
                return answer(
                    ctx,
                    RemotingCommand::response_to(request, response::PULL_NOT_FOUND),
                    &read,
                )
            }
            Verdict::NoneMatched => {
                return answer(
                    ctx,
                    RemotingCommand::response_to(request, response::PULL_RETRY_IMMEDIATELY),
                    &read,
                )
            }
            Verdict::Answer(code) => {
                return answer(ctx, RemotingCommand::response_to(request, code), &read)
            }
        }
        first_read = false;
        let Some(arrival) = arrival else {
            return answer(
                ctx,
                RemotingCommand::response_to(request, response::PULL_NOT_FOUND),
                &read,
            );
        };
        tokio::select! {
            _ = arrival => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = ctx.shutdown.cancelled() => {}
        }
    }
}

/// Per-group and broker-wide traffic (the runtime info's get rate, VIEW_BROKER_STATS_DATA,
/// consume stats' rate, the Prometheus counters) of messages a pull or a pop hands out.
pub(crate) fn count_get(ctx: &BrokerContext, topic: &str, group: &str, read: &GetMessageResult) {
    ctx.stats.add_get(read.messages.len() as u64);
    ctx.metrics.messages_got(
        topic,
        group,
        read.messages.len() as u64,
        read.buffer_total_size as u64,
    );
    let items = &ctx.stats_items;
    let key = stats_items::group_key(topic, group);
    let messages = read.messages.len() as u64;
    items.add(stats_items::GROUP_GET_NUMS, &key, messages);
    items.add(
        stats_items::GROUP_GET_SIZE,
        &key,
        read.buffer_total_size as u64,
    );
    items.add(
        stats_items::BROKER_GET_NUMS,
        &ctx.config.broker_cluster_name,
        messages,
    );
}

fn found(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    mut read: GetMessageResult,
) -> RemotingCommand {
    // The records go out as the writer's own buffers, still shared with the mapped
    // CommitLog: a pull of many messages is not copied into one body first.
    let records = std::mem::take(&mut read.messages);
    answer(ctx, RemotingCommand::success_to(request), &read).with_body_chunks(records)
}

fn answer(
    ctx: &BrokerContext,
    response: RemotingCommand,
    read: &GetMessageResult,
) -> RemotingCommand {
    with_offsets(
        response,
        suggest_broker_id(ctx),
        read.next_begin_offset,
        read.min_offset,
        read.max_offset,
    )
}

fn with_offsets(
    response: RemotingCommand,
    suggest_which_broker_id: i64,
    next: i64,
    min: i64,
    max: i64,
) -> RemotingCommand {
    response.with_header(&PullMessageResponseHeader {
        suggest_which_broker_id,
        next_begin_offset: next,
        min_offset: min,
        max_offset: max,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_statuses_map_to_rocketmq_pull_codes() {
        use GetMessageStatus::*;
        assert_eq!(verdict(Found, 3), Verdict::Found);
        assert_eq!(verdict(NoMatchedMessage, 3), Verdict::NoneMatched);
        assert_eq!(verdict(NoMessageInQueue, 0), Verdict::NothingNew);
        assert_eq!(
            verdict(NoMessageInQueue, 5),
            Verdict::Answer(response::PULL_OFFSET_MOVED)
        );
        assert_eq!(
            verdict(NoMatchedLogicQueue, 5),
            Verdict::Answer(response::PULL_OFFSET_MOVED)
        );
        assert_eq!(verdict(OffsetOverflowOne, 5), Verdict::NothingNew);
        assert_eq!(
            verdict(OffsetOverflowBadly, 9),
            Verdict::Answer(response::PULL_OFFSET_MOVED)
        );
        assert_eq!(
            verdict(OffsetTooSmall, 0),
            Verdict::Answer(response::PULL_OFFSET_MOVED)
        );
        assert_eq!(
            verdict(MessageWasRemoving, 0),
            Verdict::Answer(response::PULL_RETRY_IMMEDIATELY)
        );
    }
}
