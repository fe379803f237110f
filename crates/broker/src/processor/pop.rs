//! POP_MESSAGE (200050): hand out up to 32 messages of a topic — every queue when the
//! request names none — invisible to the group's other poppers for the request's invisible
//! time unless acknowledged. Per queue, under its pop lock: read from the group's offset,
//! store a checkpoint of the offsets handed out (see [`crate::pop`]), move the group's
//! offset past what was read, answer. The group's pop retry topic is looked at first in
//! `popFromRetryProbability` of a hundred pops, and after the topic when it had too little.
//! Nothing there: the request waits, up to its poll time, for an arrival.
//!
//! An orderly pop (`order=true`, a FIFO group) reads only the topic's queues, each from
//! the group's offset and only when the queue's last pop is acknowledged or timed out
//! ([`crate::pop::order`]); it stores no checkpoint and answers each message's earlier
//! deliveries in `orderCountInfo`.
//!
//! A lite pop (POP_LITE_MESSAGE, see [`super::lite`]) is an orderly pop of the LMQs its
//! client subscribed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use rand::Rng;
use remoting::body::topic::perm;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pop::{PopMessageRequestHeader, PopMessageResponseHeader};
use remoting::pop_receipt::{OrderCountInfo, PopOffsetInfo, ORDER_REVIVE_QUEUE};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

use super::{decode_header, Refusal};
use crate::clock::now_ms;
use crate::consumer_filter::{Subscription, SubscriptionFilter};
use crate::context::BrokerContext;
use crate::long_poll::{ParkedPull, ANY_QUEUE};
use crate::metadata::{MetadataOp, OffsetOp};
use crate::pop::record::{CheckpointKey, PopRecord};
use crate::pop::{MAX_POP_BATCH, REVIVE_QUEUE};

/// Longest a pop waits for messages, whatever its poll time.
const MAX_POLL: Duration = Duration::from_secs(30);
/// A request that reaches the broker this long after its poll time ended is answered at
/// once (RocketMQ's check against queued or clock-skewed requests).
const TOO_LATE_MS: i64 = 500;

/// What a checked request pops.
struct Plan {
    group: String,
    topic: String,
    retry_topic: String,
    queues: Queues,
    filter: SubscriptionFilter,
    max: usize,
    invisible_time: i64,
    /// New groups start at the queue's first message (initMode 0) or its end (1).
    from_first: bool,
    orderly: bool,
    /// The receive attempt (a retried receive names the same one).
    attempt_id: Option<String>,
}

/// The queues a pop reads, in turn from a random one.
enum Queues {
    /// Queues of the topic (and its retry topic, unless orderly).
    OfTopic(Vec<i32>),
    /// The LMQs a lite client subscribed (queue 0 of each), as its last pass found them.
    Lite(Vec<String>),
}

impl Queues {
    fn len(&self) -> usize {
        match self {
            Queues::OfTopic(ids) => ids.len(),
            Queues::Lite(lmqs) => lmqs.len(),
        }
    }

    fn at<'a>(&'a self, topic: &'a str, i: usize) -> (&'a str, i32) {
        match self {
            Queues::OfTopic(ids) => (topic, ids[i]),
            Queues::Lite(lmqs) => (&lmqs[i], 0),
        }
    }
}

/// The lite client a pop is for: it pops the LMQs the client subscribed, looked up again on
/// every pass, and waits to be woken by an arrival in one of them or a change of its set.
pub(super) struct LiteClient<'a> {
    pub(super) client_id: &'a str,
}

/// What wakes a waiting pop.
enum Wakers {
    /// Arrivals in the topic's queues or its retry topic.
    Queues(ParkedPull, ParkedPull),
    /// The lite client's wake-up.
    Lite(Arc<Notify>),
}

impl Wakers {
    /// A future that resolves at the next wake-up after this call: create it before a pass
    /// reads the queues.
    fn next(&self) -> impl std::future::Future<Output = ()> + '_ {
        let (first, second) = match self {
            Wakers::Queues(on_topic, on_retry) => (on_topic.notified(), Some(on_retry.notified())),
            Wakers::Lite(wake) => (wake.notified(), None),
        };
        async move {
            match second {
                Some(second) => {
                    tokio::select! {
                        _ = first => {}
                        _ = second => {}
                    }
                }
                None => first.await,
            }
        }
    }
}

/// What one pass over the queues found.
#[derive(Default)]
struct Popped {
    records: Vec<Bytes>,
    info: PopOffsetInfo,
    order_counts: OrderCountInfo,
    rest: i64,
    /// The earliest an orderly queue held back by its last pop may be popped again.
    held_until_ms: Option<i64>,
}

/// Serves one pop. `requester_gone` resolves when whoever asked can no longer take the
/// answer (its connection closed): a waiting pop then stops rather than take messages that
/// would only come back after their invisible time.
pub async fn process(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    requester_gone: impl std::future::Future<Output = ()>,
) -> RemotingCommand {
    let header: PopMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    serve(ctx, request, &header, None, requester_gone).await
}

/// Serves a pop of what `header` names, or, for a `lite` client, of its lite topics.
pub(super) async fn serve(
    ctx: &BrokerContext,
    request: &RemotingCommand,
    header: &PopMessageRequestHeader,
    lite: Option<LiteClient<'_>>,
    requester_gone: impl std::future::Future<Output = ()>,
) -> RemotingCommand {
    tokio::pin!(requester_gone);
    let arrived_ms = now_ms();
    let born_ms = born_ms(header.born_time, arrived_ms);
    if header.poll_time > 0 && arrived_ms - born_ms - header.poll_time > TOO_LATE_MS {
        return RemotingCommand::error_to(
            request,
            response::POLLING_TIMEOUT,
            format!(
                "the broker[{}] pop message is timeout too much",
                ctx.config.broker_ip1
            ),
        );
    }
    let mut plan = match check(ctx, header).await {
        Ok(plan) => plan,
        Err(refusal) => return refusal.into_response(request),
    };
    if lite.is_some() {
        plan.orderly = true;
        plan.queues = Queues::Lite(Vec::new());
    }
    let left_ms = header.poll_time.saturating_sub(arrived_ms - born_ms).max(0);
    let deadline = Instant::now() + Duration::from_millis(left_ms as u64).min(MAX_POLL);
    // Counted for POLLING_INFO once it waits, not on the way of every pop that finds messages.
    let mut _counted = None;
    let waits = match &lite {
        _ if header.poll_time <= 0 => None,
        Some(lite) => Some(Wakers::Lite(ctx.lite.attach(
            lite.client_id,
            &plan.group,
            &plan.topic,
            arrived_ms,
        ))),
        None => {
            let on_topic = ctx.long_poll.park(&plan.topic, ANY_QUEUE);
            let on_retry = ctx.long_poll.park(&plan.retry_topic, 0);
            match (on_topic, on_retry) {
                (Some(on_topic), Some(on_retry)) => Some(Wakers::Queues(on_topic, on_retry)),
                _ => {
                    return empty(request, &plan, response::POLLING_FULL, now_ms(), 0);
                }
            }
        }
    };
    // Bounded by the deadline: each pass either answers or waits for an arrival.
    loop {
        let arrival = waits.as_ref().map(Wakers::next);
        if let Some(lite) = &lite {
            plan.queues = Queues::Lite(ctx.lite.lmqs(lite.client_id, &plan.group, &plan.topic));
        }
        if requester_gone.as_mut().now_or_never().is_some() {
            // The consumer is gone: messages popped now would only come back after their
            // invisible time. The answer goes nowhere.
            return empty(request, &plan, response::POLLING_TIMEOUT, now_ms(), 0);
        }
        if !plan.orderly && !ctx.pop.has_room() {
            return empty(request, &plan, response::POLLING_FULL, now_ms(), 0);
        }
        let pop_time = now_ms();
        let popped = match pop_once(ctx, &plan, pop_time).await {
            Ok(popped) => popped,
            Err(refusal) => return refusal.into_response(request),
        };
        if !popped.records.is_empty() {
            return found(request, &plan, pop_time, popped);
        }
        let Some(arrival) = arrival else {
            return empty(
                request,
                &plan,
                response::POLLING_TIMEOUT,
                pop_time,
                popped.rest,
            );
        };
        if Instant::now() >= deadline || ctx.shutdown.is_cancelled() {
            return empty(
                request,
                &plan,
                response::POLLING_TIMEOUT,
                pop_time,
                popped.rest,
            );
        }
        let wake = wake_at(deadline, popped.held_until_ms);
        _counted.get_or_insert_with(|| {
            ctx.pop
                .waiting
                .enter(&plan.topic, &plan.group, header.queue_id)
        });
        tokio::select! {
            _ = arrival => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = ctx.shutdown.cancelled() => {}
            _ = requester_gone.as_mut() => {
                return empty(request, &plan, response::POLLING_TIMEOUT, now_ms(), 0);
            }
        }
    }
}

/// When the client sent a long-polling request (its `bornTime`; the broker's arrival time
/// when it sent none).
pub(super) fn born_ms(born_time: i64, arrived_ms: i64) -> i64 {
    if born_time > 0 {
        born_time
    } else {
        arrived_ms
    }
}

/// When a long-polling wait wakes at the latest: its deadline, or earlier when an orderly
/// queue it found held frees itself (its invisible time runs out, with no arrival to wake
/// the wait).
pub(super) fn wake_at(deadline: Instant, held_until_ms: Option<i64>) -> Instant {
    held_until_ms.map_or(deadline, |at| {
        let after = Duration::from_millis((at - now_ms()).max(1) as u64);
        deadline.min(Instant::now() + after)
    })
}

async fn check(ctx: &BrokerContext, header: &PopMessageRequestHeader) -> Result<Plan, Refusal> {
    let ip = &ctx.config.broker_ip1;
    if !ctx.role.is_master() {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!("the broker[{ip}] is not the master of its group; pop from the master"),
        ));
    }
    if !ctx.is_readable() {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!("the broker[{ip}] pop message is forbidden"),
        ));
    }
    if header.max_msg_nums > MAX_POP_BATCH {
        return Err(Refusal::new(
            response::INVALID_PARAMETER,
            format!("the broker[{ip}] pop message's num is greater than {MAX_POP_BATCH}"),
        ));
    }
    if header.max_msg_nums < 1 {
        return Err(Refusal::new(
            response::INVALID_PARAMETER,
            format!("maxMsgNums {} must be at least 1", header.max_msg_nums),
        ));
    }
    if header.invisible_time <= 0 {
        return Err(Refusal::new(
            response::INVALID_PARAMETER,
            format!("invisibleTime {} must be positive", header.invisible_time),
        ));
    }
    let group = header.consumer_group.as_str();
    let topic = header.topic.as_str();
    let queue_ids = readable_queues(
        ctx,
        group,
        topic,
        header.queue_id,
        response::INVALID_PARAMETER,
    )
    .await?;
    let filter = ctx
        .filters
        .filter(Subscription {
            group,
            topic,
            expression: header.exp.as_deref().unwrap_or("*"),
            expression_type: header.exp_type.as_deref(),
            version: 0,
        })
        .map_err(|e| {
            Refusal::new(
                response::SUBSCRIPTION_PARSE_FAILED,
                format!("parse the consumer's subscription failed: {e}"),
            )
        })?;
    if filter.is_sql92() && !ctx.config.enable_property_filter {
        return Err(Refusal::new(
            response::SYSTEM_ERROR,
            "The broker does not support consumer to filter message by SQL92; set enablePropertyFilter=true in broker.conf",
        ));
    }
    Ok(Plan {
        group: group.to_owned(),
        topic: topic.to_owned(),
        retry_topic: message::topic::pop_retry_topic(group, topic),
        queues: Queues::OfTopic(queue_ids),
        filter,
        max: header.max_msg_nums as usize,
        invisible_time: header.invisible_time,
        from_first: header.init_mode == 0,
        orderly: header.order == Some(true),
        attempt_id: header.attempt_id.clone().filter(|id| !id.is_empty()),
    })
}

/// The queues of `topic` a request of `group` names (every readable one for a negative
/// `queue_id`), once the topic exists and is readable and the group exists (created when
/// the broker auto-creates groups) and may consume; a queue id past the topic's read
/// queues is answered with `bad_queue_code` (POP_MESSAGE and NOTIFICATION differ there).
pub(super) async fn readable_queues(
    ctx: &BrokerContext,
    group: &str,
    topic: &str,
    queue_id: i32,
    bad_queue_code: i32,
) -> Result<Vec<i32>, Refusal> {
    message::validate_group(group)
        .map_err(|e| Refusal::new(response::INVALID_PARAMETER, e.to_string()))?;
    let Some(topic_config) = ctx.topics.queue_owner(topic) else {
        return Err(Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please!"),
        ));
    };
    if !perm::is_readable(topic_config.perm) {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!("the topic[{topic}] peeking message is forbidden"),
        ));
    }
    let queue_ids: Vec<i32> = if queue_id < 0 {
        (0..topic_config.read_queue_nums).collect()
    } else if queue_id < topic_config.read_queue_nums {
        vec![queue_id]
    } else {
        return Err(Refusal::new(
            bad_queue_code,
            format!(
                "queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}] consumer:[{group}]",
                topic_config.read_queue_nums
            ),
        ));
    };
    let group_config = match ctx.group_or_create(group).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            return Err(Refusal::new(
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group [{group}] does not exist"),
            ))
        }
        Err(e) => return Err(Refusal::new(response::SYSTEM_ERROR, e.to_string())),
    };
    if !group_config.consume_enable {
        return Err(Refusal::new(
            response::NO_PERMISSION,
            format!("subscription group no permission, {group}"),
        ));
    }
    Ok(queue_ids)
}

/// One pass over the retry topic and the topic's queues.
async fn pop_once(ctx: &BrokerContext, plan: &Plan, pop_time: i64) -> Result<Popped, Refusal> {
    let mut popped = Popped::default();
    let (retry_first, start) = {
        let mut rng = rand::thread_rng();
        (
            rng.gen_range(0..100) < ctx.pop.settings.from_retry_probability,
            rng.gen_range(0..plan.queues.len().max(1)),
        )
    };
    // An orderly group's messages never go to a retry topic: they are popped again.
    let has_retry = !plan.orderly && ctx.topics.contains(&plan.retry_topic);
    if retry_first && has_retry {
        pop_queue(ctx, plan, &plan.retry_topic, 0, pop_time, &mut popped).await?;
    }
    let count = plan.queues.len();
    for i in 0..count {
        let (topic, queue_id) = plan.queues.at(&plan.topic, (start + i) % count);
        pop_queue(ctx, plan, topic, queue_id, pop_time, &mut popped).await?;
    }
    if !retry_first && has_retry {
        pop_queue(ctx, plan, &plan.retry_topic, 0, pop_time, &mut popped).await?;
    }
    Ok(popped)
}

/// Pops from one queue what `popped` still has room for; with no room (or the queue busy
/// with another pop of the group) only counts its backlog.
async fn pop_queue(
    ctx: &BrokerContext,
    plan: &Plan,
    topic: &str,
    queue_id: i32,
    pop_time: i64,
    popped: &mut Popped,
) -> Result<(), Refusal> {
    let reader = ctx.store.reader();
    let (min, max) = (
        reader.min_offset(topic, queue_id),
        reader.max_offset(topic, queue_id),
    );
    let want = plan.max.saturating_sub(popped.records.len());
    let committed = ctx.offsets.query(&plan.group, topic, queue_id);
    let backlog = |offset: i64| (max - offset.clamp(min, max)).max(0);
    if want == 0 {
        popped.rest += backlog(committed.unwrap_or(min));
        return Ok(());
    }
    let Some(_serial) = ctx.pop.queue_locks.try_lock(&plan.group, topic, queue_id) else {
        popped.rest += backlog(committed.unwrap_or(min));
        return Ok(());
    };
    // Only an orderly pop has a queue key to build (not every pop of the hot path).
    let order_key = plan
        .orderly
        .then(|| (plan.group.clone(), topic.to_owned(), queue_id));
    if let Some(key) = &order_key {
        if held_back(ctx, plan, key, pop_time, popped) {
            return Ok(());
        }
    }
    // Read again under the lock: another pop may have moved it.
    let committed = ctx.offsets.query(&plan.group, topic, queue_id);
    let offset = match committed {
        Some(offset) => offset.clamp(min, max),
        None => start_of_new_group(ctx, plan, topic, queue_id, min, max),
    };
    if offset >= max {
        return Ok(());
    }
    let read = reader.get_messages(topic, queue_id, offset, want, None, &plan.filter);
    let next = read.next_begin_offset.clamp(offset, max);
    popped.rest += (max - next).max(0);
    if read.messages.is_empty() {
        if next > offset {
            // Nothing matched the filter up to `next`: the group is past it.
            commit(ctx, plan, topic, queue_id, next).await;
        }
        return Ok(());
    }
    if let Some(order_key) = order_key {
        let counts = ctx.pop.order.lock().record(
            order_key,
            plan.attempt_id.clone(),
            pop_time,
            plan.invisible_time,
            &read.queue_offsets,
        );
        popped
            .order_counts
            .add(topic, queue_id, &read.queue_offsets, &counts);
        if committed != Some(offset) {
            // Where a new group starts (or where retention moved it) is remembered: acks
            // move the offset on from there.
            commit(ctx, plan, topic, queue_id, offset).await;
        }
    } else {
        store_checkpoint(
            ctx,
            plan,
            topic,
            queue_id,
            offset,
            pop_time,
            &read.queue_offsets,
        )
        .await?;
        commit(ctx, plan, topic, queue_id, next).await;
    }
    popped
        .info
        .add(topic, queue_id, offset, &read.queue_offsets);
    // A lite topic counts as its parent: one series per parent, not per lite topic.
    let counted = match plan.queues {
        Queues::Lite(_) => &plan.topic,
        Queues::OfTopic(_) => topic,
    };
    super::pull::count_get(ctx, counted, &plan.group, &read);
    popped.records.extend(read.messages);
    Ok(())
}

/// Whether an orderly queue must be left alone: its last pop is still in flight (noted in
/// `popped` for the wait), or the table of orderly queues is full.
fn held_back(
    ctx: &BrokerContext,
    plan: &Plan,
    key: &crate::pop::order::QueueKey,
    pop_time: i64,
    popped: &mut Popped,
) -> bool {
    let mut order = ctx.pop.order.lock();
    if let Some(until) = order.blocked_until(key, plan.attempt_id.as_deref(), pop_time) {
        popped.held_until_ms = Some(popped.held_until_ms.map_or(until, |t| t.min(until)));
        return true;
    }
    if !order.has_room_for(key, pop_time) {
        warn!(group = %plan.group, topic = %key.1, queue_id = key.2,
            "orderly pop table full; queue skipped");
        return true;
    }
    false
}

/// Stores the checkpoint of a pop before anything is handed out: whatever happens next,
/// the messages come back if they are not acknowledged.
async fn store_checkpoint(
    ctx: &BrokerContext,
    plan: &Plan,
    topic: &str,
    queue_id: i32,
    start_offset: i64,
    pop_time: i64,
    offsets: &[i64],
) -> Result<(), Refusal> {
    let checkpoint = PopRecord::Checkpoint {
        key: CheckpointKey {
            group: plan.group.clone(),
            topic: topic.to_owned(),
            queue_id,
            start_offset,
            pop_time,
        },
        invisible_time: plan.invisible_time,
        offsets: offsets.to_vec(),
    };
    super::pop_ack::store(ctx, &[checkpoint], "pop checkpoint").await
}

/// Where a group with no offset on the queue starts: its first message (initMode 0, and
/// always in a retry topic); otherwise the end, unless the queue is young enough that its
/// first message is still in memory (RocketMQ's rule, so a consumer that starts with a new
/// topic sees its first messages).
fn start_of_new_group(
    ctx: &BrokerContext,
    plan: &Plan,
    topic: &str,
    queue_id: i32,
    min: i64,
    max: i64,
) -> i64 {
    if plan.from_first || message::topic::is_retry_topic(topic) {
        return min;
    }
    if min == 0 && ctx.store.reader().is_in_memory(topic, queue_id, 0) {
        0
    } else {
        max
    }
}

/// Moves the group's offset (awaited: the next pop of the queue must read past it).
async fn commit(ctx: &BrokerContext, plan: &Plan, topic: &str, queue_id: i32, offset: i64) {
    let op = MetadataOp::Offset(OffsetOp::Commit {
        group: plan.group.clone(),
        topic: topic.to_owned(),
        queue_id,
        offset,
    });
    if let Err(e) = ctx.write_metadata(op).await {
        // The checkpoint is stored: a pop that reads these messages again hands out copies,
        // never loses them.
        warn!(group = %plan.group, %topic, queue_id, offset, error = %e,
            "pop offset not committed");
    }
}

fn found(request: &RemotingCommand, plan: &Plan, pop_time: i64, popped: Popped) -> RemotingCommand {
    let header = PopMessageResponseHeader {
        pop_time,
        invisible_time: plan.invisible_time,
        revive_qid: if plan.orderly {
            ORDER_REVIVE_QUEUE
        } else {
            REVIVE_QUEUE
        },
        rest_num: popped.rest,
        start_offset_info: Some(popped.info.start_offset_info().to_owned()),
        msg_offset_info: Some(popped.info.msg_offset_info().to_owned()),
        order_count_info: plan
            .orderly
            .then(|| popped.order_counts.as_str().to_owned()),
    };
    let mut response = RemotingCommand::success_to(request).with_header(&header);
    response.remark = Some("FOUND".into());
    response.with_body_chunks(popped.records)
}

fn empty(
    request: &RemotingCommand,
    plan: &Plan,
    code: i32,
    pop_time: i64,
    rest: i64,
) -> RemotingCommand {
    RemotingCommand::error_to(request, code, "NO_MESSAGE_IN_QUEUE").with_header(
        &PopMessageResponseHeader {
            pop_time,
            invisible_time: plan.invisible_time,
            revive_qid: REVIVE_QUEUE,
            rest_num: rest,
            start_offset_info: None,
            msg_offset_info: None,
            order_count_info: None,
        },
    )
}
