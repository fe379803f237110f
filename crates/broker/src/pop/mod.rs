//! POP consumption (RocketMQ 5): a consumer takes messages from any queue of a topic
//! without owning queues; each is invisible to other poppers of its group for an
//! *invisible time* unless acknowledged, then handed out again through the group's pop
//! retry topic (`%RETRY%<group>_<topic>`) with its delivery count raised.
//!
//! The state lives in the CommitLog, in the revive topic `rmq_sys_REVIVE_LOG_<cluster>`
//! ([`record`]): a pop stores a checkpoint of what it handed out before it answers and moves
//! the group's offset past it; an ack stores an ack record; redelivery stores the retry
//! copies together with a *revived* marker in one put. In a broker group these are
//! replicated like any message, so every member builds the same [`ledger`] of open
//! checkpoints and a new master carries on: an acknowledged message is not redelivered
//! beyond at-least-once, an unacknowledged one is never lost.
//!
//! - [`record`]: the checkpoint, ack and revived records.
//! - [`ledger`]: open checkpoints as read from the revive topic.
//! - [`revive`]: the loop that reads the revive topic (every member) and redelivers what
//!   ran out of time (the master).
//! - [`queue_locks`]: one pop at a time per group and queue.
//! - [`order`]: orderly pops (FIFO groups), which store no checkpoint: a queue is held
//!   until its last pop is acknowledged or times out.
//! - [`waiting`]: pops waiting for messages, by topic, group and queue.
//!
//! The requests are served by `processor::pop` (POP_MESSAGE), `processor::pop_ack` (ACK,
//! BATCH_ACK, CHANGE_INVISIBLETIME), `processor::notification` (NOTIFICATION, POLLING_INFO)
//! and `processor::assignment` (QUERY_ASSIGNMENT and the request modes).

pub mod ledger;
pub mod order;
pub mod queue_locks;
pub mod record;
pub mod revive;
pub mod waiting;

use std::time::Duration;

use parking_lot::Mutex;

use ledger::Ledger;
use order::OrderLedger;
use queue_locks::QueueLocks;

/// The revive topic's queue holding every record (receipts name it as `reviveQid`).
pub const REVIVE_QUEUE: i32 = 0;
/// The group whose offset on the revive queue records where reading must start again.
pub const REVIVE_GROUP: &str = "CID_RMQ_SYS_REVIVE_GROUP";
/// Most messages one pop may ask for (RocketMQ's limit).
pub const MAX_POP_BATCH: i32 = 32;

/// POP settings from broker.conf (see [`crate::config::BrokerConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct PopSettings {
    pub from_retry_probability: u32,
    pub revive_interval: Duration,
    pub max_open_checkpoints: usize,
}

/// What pops, acks and the revive loop share.
pub struct PopState {
    pub revive_topic: String,
    pub settings: PopSettings,
    pub ledger: Mutex<Ledger>,
    pub order: Mutex<OrderLedger>,
    pub queue_locks: QueueLocks,
    pub waiting: waiting::WaitingPops,
}

impl PopState {
    pub fn new(config: &crate::config::BrokerConfig) -> PopState {
        PopState {
            revive_topic: message::topic::revive_topic(&config.broker_cluster_name),
            settings: PopSettings {
                from_retry_probability: config.pop_from_retry_probability,
                revive_interval: config.revive_interval,
                max_open_checkpoints: config.pop_ck_max_buffer_size,
            },
            ledger: Mutex::new(Ledger::default()),
            order: Mutex::new(OrderLedger::new(crate::limits::MAX_ORDERLY_QUEUES)),
            queue_locks: QueueLocks::new(crate::limits::MAX_LOCK_ENTRIES),
            waiting: waiting::WaitingPops::default(),
        }
    }

    /// Whether a pop may open another checkpoint.
    pub fn has_room(&self) -> bool {
        self.ledger.lock().open_count() < self.settings.max_open_checkpoints
    }
}
