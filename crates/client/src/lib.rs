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
//! - [`producer`]: [`Producer`]: sync, async, one-way, batch and ordered sends with retries;
//!   request-reply ([`Producer::request`], [`Producer::reply`]).
//! - [`replies`]: requests waiting for the replies brokers push.
//!   [`TransactionProducer`]: transactional sends and answers to the brokers' checks.
//! - [`consumer`]: [`PullConsumer`] and [`PushConsumer`] (rebalancing, flow control,
//!   offsets, concurrent and ordered consumption, retries).
//! - [`transaction_check`]: [`TransactionChecker`] and the answer to a broker's transaction
//!   check.
//! - [`display`]: timestamps and column widths as RocketMQ's tools print them.
//! - [`admin`]: [`Admin`]: topics, routes, clusters, broker stats, consumer progress,
//!   message lookup.
//!
//! The binaries `mqadmin` (RocketMQ's admin tool) and `mq` (produce, consume, bench) are
//! built on this library.
//!
//! ```no_run
//! use client::consumer::ConsumeResult;
//! use client::{ClientOptions, Message, Producer, ProducerOptions, PushConsumer, PushConsumerOptions};
//!
//! # async fn run() -> client::Result<()> {
//! let cluster = ClientOptions::new("127.0.0.1:9876");
//! let producer = Producer::start(cluster.clone(), ProducerOptions::new("orders-producer"))?;
//! producer.send(Message::new("Orders", "created").with_tag("new")).await?;
//!
//! let consumer = PushConsumer::start(
//!     cluster,
//!     PushConsumerOptions::new("billing").subscribe("Orders", "new"),
//!     |messages: Vec<client::ReceivedMessage>| async move {
//!         println!("{} message(s)", messages.len());
//!         ConsumeResult::Success
//!     },
//! )
//! .await?;
//! consumer.shutdown().await;
//! producer.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Every call returns [`Result`] with a [`ClientError`]: a broker's refusal carries its
//! response code ([`ClientError::Broker`]), and [`ClientError::is_retryable`] says whether
//! RocketMQ's producer would try again elsewhere.

pub mod admin;
pub mod broker_api;
pub mod config;
pub mod consumer;
pub mod display;
pub mod error;
pub mod instance;
pub mod message;
pub mod producer;
pub mod replies;
pub mod route;
pub mod transaction_check;

pub use self::message::{Message, ReceivedMessage};
pub use admin::Admin;
pub use config::{ClientOptions, CredentialArgs};
pub use consumer::{PullConsumer, PushConsumer, PushConsumerOptions};
pub use error::{ClientError, Result};
pub use instance::ClientInstance;
pub use producer::transaction::{
    TransactionChecker, TransactionProducer, TransactionSendResult, TransactionState,
};
pub use producer::{Producer, ProducerOptions, SendResult, SendStatus};
pub use remoting::body::MessageQueue;
