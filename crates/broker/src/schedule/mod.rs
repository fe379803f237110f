//! Scheduled (delayed) messages and delayed retries, as RocketMQ's schedule service does
//! them.
//!
//! A message whose `DELAY` property names a level (or a message sent back for retry) is
//! stored under [`SCHEDULE_TOPIC`], queue `level - 1`, with its real topic and queue id in
//! `REAL_TOPIC` / `REAL_QID`; the store stamps each such queue entry with its deliver time.
//! On a master, the schedule service reads each level's queue in order and, once an
//! entry's time has come, stores the message again under its real topic and queue.
//!
//! - [`divert`]: moving a message into the schedule topic at send time and back out at
//!   delivery time (the property rewrites).
//! - [`progress`]: how far each level's queue was delivered, kept in the consumer-offset
//!   table under [`PROGRESS_GROUP`] so it persists and replicates like consumer offsets.
//! - [`service`]: the delivery loop ([`service::run`]).

pub mod divert;
pub mod progress;
pub mod service;

pub use progress::PROGRESS_GROUP;

/// The topic delayed messages wait in (a system topic: clients may not send to it).
pub use message::topic::SCHEDULE_TOPIC;
