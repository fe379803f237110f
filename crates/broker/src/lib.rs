//! The broker: request processors over the message store.
//!
//! - [`config`]: `broker.conf` keys, defaults and validation.

pub mod config;
