//! `mqdashboard`: a web dashboard for operators, served by this project alone (no other
//! software, no CDN). It shows clusters and broker groups (members, roles, raft term and
//! lag), topics (queues, offsets, rates), consumer groups (lag per queue, online clients),
//! finds messages by id or key, charts throughput live, and makes a few changes (create a
//! topic, reset offsets, move leadership), with ACL on only for an admin account.
//!
//! - [`config`]: its settings, under RocketMQ Dashboard's keys.
//! - [`server`]: the page, its assets and the JSON API.
//! - [`views`]: what the pages show, gathered with the admin client.
//! - [`changes`]: what it changes, and who may.
//! - [`sessions`]: who is signed in.
//! - [`limits`]: failed sign-ins counted per address.

pub mod changes;
pub mod config;
pub mod error;
pub mod limits;
pub mod server;
pub mod sessions;
pub mod views;

pub use config::DashboardConfig;
pub use server::{bind, serve, ServeError};
