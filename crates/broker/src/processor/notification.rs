//! NOTIFICATION (200054): whether a pop of the group would find a message — in one queue
//! of a topic, every queue when the request names none, or the group's pop retry topic —
//! waiting up to the request's poll time for one to arrive; the answer is SUCCESS with
//! `hasMsg` either way. An orderly request (`order=true`) counts no queue whose last
//! orderly pop is still in flight, and no retry topic (orderly groups have none).
//!
//! POLLING_INFO (200055): how many pops of the group wait for messages on a topic-queue.

use std::time::Duration;

use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pop::{
    NotificationRequestHeader, NotificationResponseHeader, PollingInfoRequestHeader,
    PollingInfoResponseHeader,
};
use tokio::time::Instant;

use super::pop::{born_ms, readable_queues, wake_at};
use super::{decode_header, Refusal};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::long_poll::ANY_QUEUE;

/// Longest a notification waits, whatever its poll time.
const MAX_POLL: Duration = Duration::from_secs(30);

/// What one notification asks about.
struct Watch {
    group: String,
    topic: String,
    retry_topic: String,
    queue_ids: Vec<i32>,
    orderly: bool,
    attempt_id: Option<String>,
}

/// Serves one notification; `requester_gone` resolves when its connection closed (the
/// wait then ends: the answer would go nowhere).
pub async fn notification(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    requester_gone: impl std::future::Future<Output = ()>,
) -> RemotingCommand {
    tokio::pin!(requester_gone);
    let header: NotificationRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let arrived_ms = now_ms();
    let born_ms = born_ms(header.born_time, arrived_ms);
    let watch = match check(ctx, &header).await {
        Ok(watch) => watch,
        Err(refusal) => return refusal.into_response(request),
    };
    let left_ms = (born_ms + header.poll_time - arrived_ms).max(0);
    let deadline = Instant::now() + Duration::from_millis(left_ms as u64).min(MAX_POLL);
    let waits = if left_ms > 0 {
        let on_topic = ctx.long_poll.park(&watch.topic, ANY_QUEUE);
        let on_retry = ctx.long_poll.park(&watch.retry_topic, 0);
        match (on_topic, on_retry) {
            (Some(on_topic), Some(on_retry)) => Some((on_topic, on_retry)),
            // Too many waits already: answer at once, saying so.
            _ => return answer(request, has_message(ctx, &watch).0, true),
        }
    } else {
        None
    };
    // Bounded by the deadline: each pass answers or waits for an arrival.
    loop {
        let arrivals = waits
            .as_ref()
            .map(|(on_topic, on_retry)| (on_topic.notified(), on_retry.notified()));
        let (found, held_until_ms) = has_message(ctx, &watch);
        if found {
            return answer(request, true, false);
        }
        let Some((on_topic, on_retry)) = arrivals else {
            return answer(request, false, false);
        };
        if Instant::now() >= deadline || ctx.shutdown.is_cancelled() {
            return answer(request, false, false);
        }
        let wake = wake_at(deadline, held_until_ms);
        tokio::select! {
            _ = on_topic => {}
            _ = on_retry => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = ctx.shutdown.cancelled() => {}
            _ = requester_gone.as_mut() => return answer(request, false, false),
        }
    }
}

/// Serves POLLING_INFO.
pub async fn polling_info(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: PollingInfoRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    if let Err(refusal) = broker_readable(ctx) {
        return refusal.into_response(request);
    }
    let (group, topic) = (header.consumer_group.as_str(), header.topic.as_str());
    if let Err(refusal) = readable_queues(
        ctx,
        group,
        topic,
        header.queue_id,
        response::INVALID_PARAMETER,
    )
    .await
    {
        return refusal.into_response(request);
    }
    let waiting = ctx.pop.waiting.count(topic, group, header.queue_id);
    RemotingCommand::success_to(request).with_header(&PollingInfoResponseHeader {
        polling_num: i32::try_from(waiting).unwrap_or(i32::MAX),
    })
}

fn broker_readable(ctx: &BrokerContext) -> Result<(), Refusal> {
    if ctx.is_readable() {
        return Ok(());
    }
    Err(Refusal::new(
        response::NO_PERMISSION,
        format!(
            "the broker[{}] peeking message is forbidden",
            ctx.config.broker_ip1
        ),
    ))
}

async fn check(ctx: &BrokerContext, header: &NotificationRequestHeader) -> Result<Watch, Refusal> {
    broker_readable(ctx)?;
    let (group, topic) = (header.consumer_group.as_str(), header.topic.as_str());
    // RocketMQ answers a queue id past the read queues with SYSTEM_ERROR here.
    let queue_ids =
        readable_queues(ctx, group, topic, header.queue_id, response::SYSTEM_ERROR).await?;
    Ok(Watch {
        group: group.to_owned(),
        topic: topic.to_owned(),
        retry_topic: message::topic::pop_retry_topic(group, topic),
        queue_ids,
        orderly: header.order == Some(true),
        attempt_id: header.attempt_id.clone().filter(|id| !id.is_empty()),
    })
}

/// Whether a queue watched (or the retry topic) holds a message past the group's offset,
/// and, if not, when the first orderly queue held back by its last pop frees itself.
fn has_message(ctx: &BrokerContext, watch: &Watch) -> (bool, Option<i64>) {
    let reader = ctx.store.reader();
    let backlog = |topic: &str, queue_id: i32| {
        let (min, max) = (
            reader.min_offset(topic, queue_id),
            reader.max_offset(topic, queue_id),
        );
        let offset = ctx
            .offsets
            .query(&watch.group, topic, queue_id)
            .unwrap_or(min)
            .clamp(min, max);
        max > offset
    };
    if !watch.orderly && ctx.topics.contains(&watch.retry_topic) && backlog(&watch.retry_topic, 0) {
        return (true, None);
    }
    let now = now_ms();
    let mut held_until: Option<i64> = None;
    for &queue_id in &watch.queue_ids {
        if watch.orderly {
            let key = (watch.group.clone(), watch.topic.clone(), queue_id);
            let blocked =
                ctx.pop
                    .order
                    .lock()
                    .blocked_until(&key, watch.attempt_id.as_deref(), now);
            if let Some(until) = blocked {
                held_until = Some(held_until.map_or(until, |t| t.min(until)));
                continue;
            }
        }
        if backlog(&watch.topic, queue_id) {
            return (true, None);
        }
    }
    (false, held_until)
}

fn answer(request: &RemotingCommand, has_msg: bool, polling_full: bool) -> RemotingCommand {
    RemotingCommand::success_to(request).with_header(&NotificationResponseHeader {
        has_msg,
        polling_full: Some(polling_full),
    })
}
