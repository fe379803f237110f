//! Acknowledging popped messages: ACK_MESSAGE (200051), BATCH_ACK_MESSAGE (200151), and
//! CHANGE_MESSAGE_INVISIBLETIME (200053), which gives a popped message a new invisible time
//! (a new checkpoint for it, stored in one put with the ack of the old one). Each is an
//! ack record in the revive topic, stored before the answer (see [`crate::pop`]). An ack
//! of a message whose checkpoint is gone (redelivered already) is answered SUCCESS, as
//! RocketMQ's broker answers it.

use remoting::body::pop::BatchAckMessageRequestBody;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::header::pop::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
};
use remoting::pop_receipt::{PopReceipt, RetryFlag};

use super::{decode_header, Refusal};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::pop::record::{CheckpointKey, PopRecord};
use crate::pop::REVIVE_QUEUE;
use crate::store_facade::RecordBatch;

/// Most checkpoints one batch ack may name.
const MAX_BATCH_ACKS: usize = 1024;

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
        let record = PopRecord::Ack {
            key: key_of(
                &header.consumer_group,
                &header.topic,
                header.queue_id,
                &receipt,
            ),
            offsets: vec![header.offset],
        };
        store(ctx, &[record]).await
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
    match store(ctx, &records).await {
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
        let old = key_of(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            &receipt,
        );
        let (records, pop_time) =
            PopRecord::renewal(old, header.offset, header.invisible_time, now_ms());
        // One put: the message is never without a checkpoint, nor under two.
        store(ctx, &records).await?;
        Ok(pop_time)
    };
    match changed.await {
        Ok(pop_time) => {
            RemotingCommand::success_to(request).with_header(&ChangeInvisibleTimeResponseHeader {
                pop_time,
                invisible_time: header.invisible_time,
                revive_qid: REVIVE_QUEUE,
            })
        }
        Err(refusal) => refusal.into_response(request),
    }
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
    let Some(config) = ctx.topics.get(topic) else {
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

async fn store(ctx: &BrokerContext, records: &[PopRecord]) -> Result<(), Refusal> {
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
    ctx.store
        .put(batch)
        .await
        .map(|_| ())
        .map_err(|e| Refusal::new(e.response_code(), format!("ack not stored: {e}")))
}
