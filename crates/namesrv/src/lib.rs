//! The name server: where brokers register and clients find topic routes.
//!
//! - [`properties`]: RocketMQ's `key=value` config files (shared with the broker).
//! - [`registry`]: the route registry and its rules (registration, expiry, role swaps).

pub mod properties;
pub mod registry;
