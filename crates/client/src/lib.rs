//! A RocketMQ client: producers, pull and push consumers and an admin API over the
//! RocketMQ remoting protocol, for this project's brokers and any RocketMQ broker.
//!
//! - [`config`]: [`ClientOptions`]: name servers, client identity, timers.
//! - [`error`]: [`ClientError`], and which failures a producer retries.
//! - [`instance`]: [`ClientInstance`], the shared core (transport, route cache, broker
//!   addresses, heartbeats) that producers and consumers use.
//! - [`route`]: the queues a topic route offers to producers and consumers.
//! - [`message`]: [`Message`] to send, [`ReceivedMessage`] received, body compression.
//! - [`broker_api`]: typed broker requests shared by consumers and the admin API (offsets,
//!   consumer lists, queue locks, send-back).
//! - [`producer`]: [`Producer`]: sync, async, one-way, batch and ordered sends with retries.
//! - [`consumer`]: [`PullConsumer`] and [`PushConsumer`] (rebalancing, flow control,
//!   offsets, concurrent and ordered consumption, retries).
//! - [`display`]: timestamps and column widths as RocketMQ's tools print them.
//! - [`admin`]: [`Admin`]: topics, routes, clusters, broker stats, consumer progress,
//!   message lookup.
//!
//! The binaries `mqadmin` (RocketMQ's admin tool) and `mq` (produce, consume, bench) are
//! built on this library.

pub mod admin;
pub mod broker_api;
pub mod config;
pub mod consumer;
pub mod display;
pub mod error;
pub mod instance;
pub mod message;
pub mod producer;
pub mod route;

pub use admin::Admin;
pub use config::ClientOptions;
pub use consumer::{PullConsumer, PushConsumer, PushConsumerOptions};
pub use error::{ClientError, Result};
pub use instance::ClientInstance;
pub use message::{Message, ReceivedMessage};
pub use producer::{Producer, ProducerOptions, SendResult, SendStatus};
pub use remoting::body::MessageQueue;
