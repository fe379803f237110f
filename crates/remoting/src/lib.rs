//! The RocketMQ remoting protocol, as real RocketMQ clients and servers speak it. The
//! stored message those commands carry is the `message` crate's.
//!
//! - [`code`]: request and response codes.
//! - [`frame`]: the TCP frame codec (length-prefixed; JSON or binary `ROCKETMQ` header).
//! - [`command`]: `RemotingCommand`, the unit every request and response travels in.
//! - [`ext_fields`]: [`ExtFields`], a command's custom-header fields as strings.
//! - [`header`]: typed request/response headers that convert to and from `extFields`.
//! - [`allocate`]: how a consumer group shares a topic's queues (RocketMQ's strategies).
//! - [`pop_receipt`]: the receipt handles of popped messages and the offset lists they are
//!   built from (POP consumption).
//! - [`recall_handle`]: the handles that name a waiting timer message (RECALL_MESSAGE).
//! - [`acl`]: ACL 1.0 request signatures (signing and checking).
//! - [`body`]: JSON bodies (routes, cluster info, heartbeats, topic configs, ...) with
//!   fastjson's quirks where clients depend on them.
//! - [`connection`]: one TCP connection, whichever side opened it: frame reading with
//!   back-pressure, the bounded write queue, responses matched to callers by opaque,
//!   requests handed to a [`RequestProcessor`](connection::RequestProcessor).
//! - [`client`]: a request/response client with timeouts, one connection per address.
//! - [`server`]: a server loop that accepts connections and stops them gracefully.

pub use ext_fields::ExtFields;

pub mod acl;
pub mod allocate;
pub mod body;
pub mod client;
pub mod code;
pub mod command;
pub mod connection;
pub mod ext_fields;
pub mod frame;
pub mod header;
pub mod pop_receipt;
pub mod recall_handle;
pub mod server;
