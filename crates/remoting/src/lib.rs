//! The RocketMQ remoting protocol, as real RocketMQ clients and servers speak it.
//!
//! - [`code`]: request and response codes.
//! - [`frame`]: the TCP frame codec (length-prefixed; JSON or binary `ROCKETMQ` header).
//! - [`command`]: `RemotingCommand`, the unit every request and response travels in.
//! - [`header`]: typed request/response headers that convert to and from `extFields`.
//! - [`body`]: JSON bodies (routes, cluster info, heartbeats, topic configs, ...) with
//!   fastjson's quirks where clients depend on them.
//! - [`message`]: the stored-message record (the same bytes on disk and in pull
//!   responses), properties, message ids, batch bodies, topic-name rules, tag hashes.
//! - [`client`]: a request/response client with opaque correlation and timeouts.
//! - [`server`]: a server loop that hands each decoded command to a processor.

use std::collections::HashMap;

/// A command's `extFields`: every custom-header field flattened to a string.
pub type ExtFields = HashMap<String, String>;

pub mod body;
pub mod client;
pub mod code;
pub mod command;
pub mod frame;
pub mod header;
pub mod message;
pub mod server;
