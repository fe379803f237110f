//! Consumers.
//!
//! - [`pull`]: [`PullConsumer`] (explicit queues and offsets, long polling) and the pull
//!   exchange both consumers use.
//! - [`push`]: [`PushConsumer`]: a consumer-group member that rebalances queues with its
//!   group, prefetches with flow control, commits offsets, consumes concurrently or in
//!   order, and sends failed messages back for retry.
//! - [`pop`]: [`PopConsumer`]: RocketMQ 5's POP consumption (pop, ack, change invisible
//!   time); the broker keeps the group's progress.
//! - [`selector`]: what a subscription selects, tags or a SQL92 expression.
//! - [`allocate`]: how a group shares queues.
//! - `process_queue`: one assigned queue's prefetch buffer, commit point and lock.
//! - `offset_store`: consumer progress in memory, on the brokers, or in a local file.

// Shared with the broker, which assigns queues for consumers that ask it to.
pub use remoting::allocate;
pub(crate) mod offset_store;
pub mod pop;
pub(crate) mod process_queue;
pub mod pull;
pub mod push;
pub mod selector;

pub use allocate::AllocateStrategy;
pub use pop::{PopConsumer, PopRequest, PopResult, PoppedMessage};
pub use pull::{PullConsumer, PullResult, PullStatus};
pub use push::{ConsumeMode, ConsumeResult, MessageListener, PushConsumer, PushConsumerOptions};
pub use remoting::body::{ConsumeFromWhere, MessageModel};
pub use selector::Selector;
