//! Acknowledging popped messages: ACK_MESSAGE (200051), BATCH_ACK_MESSAGE (200151), and
//! CHANGE_MESSAGE_INVISIBLETIME (200053), which gives a popped message a new invisible time
//! (a new checkpoint for it, stored in one put with the ack of the old one). Each is an
//! ack record in the revive topic, stored before the answer (see [`crate::pop`]). An ack
//! of a message whose checkpoint is gone (redelivered already) is answered SUCCESS, as
//! RocketMQ's broker answers it.
//!
//! A receipt of an orderly pop (`reviveQid` 999) names no checkpoint: its ack moves the
//! group's offset to the queue's first unacknowledged message and its change of invisible
//! time moves when the queue is freed ([`crate::pop::order`]).

use std::time::Duration;

use remoting::body::pop::BatchAckMessageRequestBody;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pop::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
};
use remoting::pop_receipt::{PopReceipt, RetryFlag, ORDER_REVIVE_QUEUE};

use super::{decode_header, Refusal};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::metadata::{MetadataOp, OffsetOp};
use crate::pop::order::{OrderAck, QueueKey};
use crate::pop::record::{CheckpointKey, PopRecord};
use crate::pop::REVIVE_QUEUE;
use crate::store_facade::RecordBatch;

/// Most checkpoints one batch ack may name.
const MAX_BATCH_ACKS: usize = 1024;
/// How long an orderly ack or change waits for a pop of its queue in progress.
const ORDER_LOCK_WAIT: Duration = Duration::from_secs(3);

pub async fn ack(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let header: AckMessageRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let acked = async {
        check_master(ctx)?;
        let receipt = receipt_of(&header.extra_info, header.offset)?;
        check_message(
            ctx,
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.offset,
            false,
        )?;
        if receipt.revive_qid == ORDER_REVIVE_QUEUE {
            let key = (
                header.consumer_group.clone(),
                header.topic.clone(),
                header.queue_id,
            );
            return ack_orderly(ctx, key, header.offset, receipt.pop_time).await;
        }
        let record = PopRecord::Ack {
            key: key_of(
                &header.consumer_group,
                &header.topic,
                header.queue_id,
                &receipt,
            ),
            offsets: vec![header.offset],
        };
        store(ctx, &[record], "ack").await
    };
    match acked.await {
        Ok(()) => RemotingCommand::success_to(request),
        Err(refusal) => refusal.into_response(request),
    }
}

pub async fn batch_ack(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match BatchAckMessageRequestBody::decode(&request.body) {
        Ok(body) if !body.acks.is_empty() => body,
        Ok(_) => return RemotingCommand::response_to(request, response::NO_MESSAGE),
        Err(e) => {
            return Refusal::new(
                response::INVALID_PARAMETER,
                format!("bad batch ack body: {e}"),
            )
            .into_response(request)
        }
    };
    if body.acks.len() > MAX_BATCH_ACKS {
        return Refusal::new(
            response::INVALID_PARAMETER,
            format!("a batch ack may name at most {MAX_BATCH_ACKS} checkpoints"),
        )
        .into_response(request);
    }
    if let Err(refusal) = check_master(ctx) {
        return refusal.into_response(request);
    }
    let mut records = Vec::with_capacity(body.acks.len());
    for ack in &body.acks {
        let Some(flag) = RetryFlag::parse(&ack.retry) else {
            return Refusal::new(
                response::INVALID_PARAMETER,
                format!("retry flag `{}` is not 0, 1 or 2", ack.retry),
            )
            .into_response(request);
        };
        let topic = match flag {
            RetryFlag::Normal => ack.topic.clone(),
            RetryFlag::RetryV1 => message::topic::pop_retry_topic(&ack.consumer_group, &ack.topic),
            RetryFlag::RetryV2 => {
                message::topic::pop_retry_topic_v2(&ack.consumer_group, &ack.topic)
            }
        };
        let Some(offsets) = ack.acked_offsets() else {
            return Refusal::new(
                response::INVALID_PARAMETER,
                "a batch ack's bit set is not valid",
            )
            .into_response(request);
        };
        // As RocketMQ: offsets outside the queue are passed over, not refused.
        let reader = ctx.store.reader();
        let (min, max) = (
            reader.min_offset(&topic, ack.queue_id),
            reader.max_offset(&topic, ack.queue_id),
        );
        let offsets: Vec<i64> = offsets
            .into_iter()
            .filter(|o| (min..=max).contains(o))
            .collect();
        if offsets.is_empty() || !ctx.topics.contains(&topic) {
            continue;
        }
        if ack.revive_queue_id == ORDER_REVIVE_QUEUE {
            let key = (ack.consumer_group.clone(), topic, ack.queue_id);
            for offset in offsets {
                if let Err(refusal) = ack_orderly(ctx, key.clone(), offset, ack.pop_time).await {
                    return refusal.into_response(request);
                }
            }
            continue;
        }
        records.push(PopRecord::Ack {
            key: CheckpointKey {
                group: ack.consumer_group.clone(),
                topic,
                queue_id: ack.queue_id,
                start_offset: ack.start_offset,
                pop_time: ack.pop_time,
            },
            offsets,
        });
    }
    if records.is_empty() {
        return RemotingCommand::success_to(request);
    }
    match store(ctx, &records, "ack").await {
        Ok(()) => RemotingCommand::success_to(request),
        Err(refusal) => refusal.into_response(request),
    }
}

pub async fn change_invisible_time(
    ctx: &BrokerContext,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header: ChangeInvisibleTimeRequestHeader = match decode_header(request) {
        Ok(header) => header,
        Err(refusal) => return refusal.into_response(request),
    };
    let changed = async {
        check_master(ctx)?;
        if header.invisible_time < 0 {
            return Err(Refusal::new(
                response::INVALID_PARAMETER,
                format!(
                    "invisibleTime {} must not be negative",
                    header.invisible_time
                ),
            ));
        }
        let receipt = receipt_of(&header.extra_info, header.offset)?;
        check_message(
            ctx,
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.offset,
            true,
        )?;
        if receipt.revive_qid == ORDER_REVIVE_QUEUE {
            let key = (
                header.consumer_group.clone(),
                header.topic.clone(),
                header.queue_id,
            );
            return change_orderly(ctx, key, header.offset, &receipt, header.invisible_time).await;
        }
        let old = key_of(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            &receipt,
        );
        let (records, pop_time) =
            PopRecord::renewal(old, header.offset, header.invisible_time, now_ms());
        // One put: the message is never without a checkpoint, nor under two.
        store(ctx, &records, "change of invisible time").await?;
        Ok(ChangeInvisibleTimeResponseHeader {
            pop_time,
            invisible_time: header.invisible_time,
            revive_qid: REVIVE_QUEUE,
        })
    };
    match changed.await {
        Ok(renewed) => RemotingCommand::success_to(request).with_header(&renewed),
        Err(refusal) => refusal.into_response(request),
    }
}

/// Acknowledges a message of an orderly pop: the group's offset moves to the queue's first
/// unacknowledged message (through the raft log in a group), and a queue with nothing left
/// in flight wakes the pops waiting for it.
async fn ack_orderly(
    ctx: &BrokerContext,
    key: QueueKey,
    offset: i64,
    pop_time: i64,
) -> Result<(), Refusal> {
    let (group, topic, queue_id) = (&key.0, &key.1, key.2);
    let Some(_serial) = ctx
        .pop
        .queue_locks
        .lock(group, topic, queue_id, ORDER_LOCK_WAIT)
        .await
    else {
        return Err(busy(&key));
    };
    let committed = ctx.offsets.query(group, topic, queue_id).unwrap_or(-1);
    if offset < committed {
        return Ok(());
    }
    let outcome = ctx.pop.order.lock().ack(&key, offset, pop_time, committed);
    match outcome {
        OrderAck::Next(next) if next > committed => {
            let op = MetadataOp::Offset(OffsetOp::Commit {
                group: group.clone(),
                topic: topic.clone(),
                queue_id,
                offset: next,
            });
            ctx.write_metadata(op).await.map_err(|e| {
                Refusal::new(response::SYSTEM_ERROR, format!("ack not stored: {e}"))
            })?;
        }
        OrderAck::Next(_) | OrderAck::Stale => {}
        OrderAck::Unknown => {
            return Err(Refusal::new(
                response::MESSAGE_ILLEGAL,
                format!(
                    "offset is illegal, key:{group} {topic} {queue_id}, old:{committed}, commit:{offset}"
                ),
            ))
        }
    }
    let free = ctx
        .pop
        .order
        .lock()
        .blocked_until(&key, None, now_ms())
        .is_none();
    if free {
        ctx.long_poll.on_arrival(topic, queue_id);
        ctx.lite.on_arrival(topic);
    }
    Ok(())
}

/// Gives a message of an orderly pop a new invisible time: its queue is held until then.
/// The receipt keeps its pop time (it still names the same pop).
async fn change_orderly(
    ctx: &BrokerContext,
    key: QueueKey,
    offset: i64,
    receipt: &PopReceipt,
    invisible_time: i64,
) -> Result<ChangeInvisibleTimeResponseHeader, Refusal> {
    let Some(_serial) = ctx
        .pop
        .queue_locks
        .lock(&key.0, &key.1, key.2, ORDER_LOCK_WAIT)
        .await
    else {
        return Err(busy(&key));
    };
    let visible_at = now_ms().saturating_add(invisible_time);
    let committed = ctx.offsets.query(&key.0, &key.1, key.2).unwrap_or(-1);
    // Consumed already, or a pop this master did not make: nothing holds the queue for it.
    if offset >= committed {
        ctx.pop
            .order
            .lock()
            .change_visibility(&key, offset, receipt.pop_time, visible_at);
    }
    Ok(ChangeInvisibleTimeResponseHeader {
        pop_time: receipt.pop_time,
        invisible_time: visible_at - receipt.pop_time,
        revive_qid: ORDER_REVIVE_QUEUE,
    })
}

fn busy(key: &QueueKey) -> Refusal {
    Refusal::new(
        response::SYSTEM_ERROR,
        format!(
            "queue {}@{} of group {} is busy with a pop; try again",
            key.1, key.2, key.0
        ),
    )
}

fn check_master(ctx: &BrokerContext) -> Result<(), Refusal> {
    if ctx.role.is_master() && ctx.is_writeable() {
        Ok(())
    } else {
        Err(Refusal::new(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] is not a writable master; acknowledge at the master",
                ctx.config.broker_ip1
            ),
        ))
    }
}

fn receipt_of(extra_info: &str, offset: i64) -> Result<PopReceipt, Refusal> {
    PopReceipt::parse(extra_info, offset)
        .map_err(|remark| Refusal::new(response::INVALID_PARAMETER, remark))
}

/// The acknowledged message must be in its queue, with RocketMQ's codes and remarks. A
/// change of invisible time needs the message itself (`offset < max`); an ack may name the
/// queue's end.
fn check_message(
    ctx: &BrokerContext,
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    needs_message: bool,
) -> Result<(), Refusal> {
    let Some(config) = ctx.topics.queue_owner(topic) else {
        return Err(Refusal::new(
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please!"),
        ));
    };
    if queue_id < 0 || queue_id >= config.read_queue_nums {
        return Err(Refusal::new(
            response::MESSAGE_ILLEGAL,
            format!(
                "queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}] consumer:[{group}]",
                config.read_queue_nums
            ),
        ));
    }
    let reader = ctx.store.reader();
    let (min, max) = (
        reader.min_offset(topic, queue_id),
        reader.max_offset(topic, queue_id),
    );
    let beyond = if needs_message {
        offset >= max
    } else {
        offset > max
    };
    if offset < min || beyond {
        return Err(Refusal::new(
            response::NO_MESSAGE,
            format!(
                "offset is illegal, key:{topic}@{queue_id}, commit:{offset}, store:{min}~{max}"
            ),
        ));
    }
    Ok(())
}

fn key_of(group: &str, topic: &str, queue_id: i32, receipt: &PopReceipt) -> CheckpointKey {
    CheckpointKey {
        group: group.to_owned(),
        topic: topic.to_owned(),
        queue_id,
        start_offset: receipt.checkpoint_offset,
        pop_time: receipt.pop_time,
    }
}

/// Stores POP records in the revive topic in one put; `what` names them in a refusal.
pub(super) async fn store(
    ctx: &BrokerContext,
    records: &[PopRecord],
    what: &str,
) -> Result<(), Refusal> {
    let mut batch = RecordBatch::with_capacity(256 * records.len(), records.len());
    for record in records {
        record
            .append(
                &mut batch,
                &ctx.pop.revive_topic,
                REVIVE_QUEUE,
                ctx.store_host,
            )
            .map_err(|e| Refusal::new(response::SYSTEM_ERROR, e.to_string()))?;
    }
    let stored = ctx.store.put(batch).await;
    for (key, kind) in records.iter().filter_map(PopRecord::revive_message_type) {
        ctx.metrics
            .pop_revive_put(&key.group, &key.topic, kind, stored.is_ok());
    }
    stored
        .map(|_| ())
        .map_err(|e| Refusal::new(e.response_code(), format!("{what} not stored: {e}")))
}
