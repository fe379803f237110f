//! The broker: RocketMQ's request processors over a message-store facade.
//!
//! - [`config`]: `broker.conf` keys, defaults and validation.
//! - [`runtime`]: [`start`] a broker, [`RunningBroker`], background work, shutdown.
//! - [`context`]: [`BrokerContext`], everything a processor can reach.
//! - [`processor`]: one module per request family (send, pull, offsets, heartbeats,
//!   admin, queries, locks), routed by [`processor::BrokerProcessor`].
//! - [`store_facade`]: the [`MessageStore`] trait between processors and storage, with
//!   [`StandaloneFacade`] (standalone) and [`store_facade::ReplicatedFacade`] (raft group)
//!   behind it; reads are the store's own `store::StoreReader`.
//! - [`metadata`]: topic configs, subscription groups and consumer offsets, each changed
//!   by explicit ops through one `apply` path and persisted under `config/`.
//! - [`client_groups`]: consumer and producer groups from heartbeats; orderly-consumption
//!   locks.
//! - [`consumer_filter`]: the filter a pull applies (TAG by tags code, SQL92 by the stored
//!   message's properties) and the cache of compiled SQL92 subscriptions.
//! - [`long_poll`]: pulls parked until a message arrives.
//! - [`schedule`]: delayed messages and delayed retries (`SCHEDULE_TOPIC_XXXX`, the
//!   delivery loop a master runs, its replicated progress).
//! - [`timer`]: RocketMQ 5 timer messages (`rmq_sys_wheel_timer`, the time wheel every
//!   member builds, the delivery a master runs, its replicated progress, recalls).
//! - [`transaction`]: transactional messages (half messages, END_TRANSACTION, the check
//!   service a master runs, its replicated progress).
//! - [`grpc`]: RocketMQ 5's gRPC protocol served by the broker itself (no proxy).
//! - [`pop`]: POP consumption (checkpoints and acks in the revive topic, the ledger of
//!   open checkpoints every member builds, redelivery by the master).
//! - [`route_lookup`]: topic routes from the name servers.
//! - [`registration`]: registering with the name servers.
//! - [`registration_rounds`]: counting registration rounds, for requests that answer once
//!   the name servers know their change.
//! - [`role`]: master or slave.
//! - [`group`]: membership of a raft group (DLedger mode): the replicated store, metadata
//!   replicated through the raft log, the role manager, graceful hand-off, group status.
//! - [`counters`]: message counters and rates.
//! - [`stats_items`]: per-topic and per-group traffic (VIEW_BROKER_STATS_DATA).
//! - [`instruments`]: Prometheus metrics under RocketMQ 5's names, and their endpoint.
//! - [`acl`]: ACL 1.0 (`aclEnable`, `plain_acl.yml`): the check in front of every request.
//! - [`auth`]: ACL 2.0 (`authenticationEnabled`, `authorizationEnabled`): users and
//!   policies, replicated with the metadata, checked in front of every request.
//! - [`record`]: stored records built from what clients send (send, send-back and the
//!   schedule service all build them).
//! - [`limits`]: bounds on the tables clients can grow.
//! - [`live_config`]: the settings UPDATE_BROKER_CONFIG changes while the broker runs.
//! - [`local`]: a name server and a broker in one process (`mqlocal`).
//! - [`clock`]: wall-clock milliseconds.
//!
//! Dependencies point one way: `context` wires everything together; `group` and
//! `metadata` never reach back into it (they are handed the parts they need).

pub mod acl;
pub mod auth;
pub mod client_groups;
pub mod clock;
pub mod config;
pub mod consumer_filter;
pub mod context;
pub mod counters;
pub mod group;
pub mod grpc;
pub mod instruments;
pub mod limits;
pub mod lite;
pub mod live_config;
pub mod local;
pub mod long_poll;
pub mod metadata;
pub mod pop;
pub mod processor;
pub mod record;
pub mod registration;
pub mod registration_rounds;
pub mod role;
pub mod route_lookup;
pub mod runtime;
pub mod schedule;
pub mod stats_items;
pub mod store_facade;
pub mod timer;
pub mod transaction;

pub use config::BrokerConfig;
pub use context::BrokerContext;
pub use runtime::{start, start_with_store, RunningBroker, StartError};
pub use store_facade::{MessageStore, StandaloneFacade};
