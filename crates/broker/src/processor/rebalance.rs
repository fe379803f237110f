//! LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): queue locks for orderly consumers.
//!
//! Only queues of this broker's topics can be locked (a client cannot fill the table with
//! made-up queues); the answer lists the queues the client holds (`lockOKMQSet`).

use std::collections::BTreeSet;
use std::time::Instant;

use remoting::body::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue};
use remoting::code::response;
use remoting::command::RemotingCommand;

use super::Refusal;
use crate::context::BrokerContext;

fn decode(request: &RemotingCommand) -> Result<LockBatchRequestBody, Refusal> {
    LockBatchRequestBody::decode(&request.body).map_err(|e| {
        Refusal::new(
            response::SYSTEM_ERROR,
            format!("bad lock request body: {e}"),
        )
    })
}

/// The requested queues that exist on this broker.
fn known_queues(ctx: &BrokerContext, requested: BTreeSet<MessageQueue>) -> BTreeSet<MessageQueue> {
    requested
        .into_iter()
        .filter(|mq| {
            ctx.topics.get(&mq.topic).is_some_and(|topic| {
                mq.queue_id >= 0 && mq.queue_id < topic.read_queue_nums.max(topic.write_queue_nums)
            })
        })
        .collect()
}

pub fn lock(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match decode(request) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(request),
    };
    let queues = known_queues(ctx, body.mq_set);
    let locked = ctx.locks.try_lock_batch(
        &body.consumer_group,
        &queues,
        &body.client_id,
        Instant::now(),
    );
    RemotingCommand::success_to(request).with_body(
        LockBatchResponseBody {
            lock_ok_mq_set: locked,
        }
        .encode(),
    )
}

pub fn unlock(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let body = match decode(request) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(request),
    };
    ctx.locks
        .unlock_batch(&body.consumer_group, &body.mq_set, &body.client_id);
    RemotingCommand::success_to(request)
}
