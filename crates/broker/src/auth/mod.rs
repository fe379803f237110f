//! ACL 2.0 (RocketMQ 5.3: `authenticationEnabled`, `authorizationEnabled`): users and their
//! policies, kept in the broker's metadata ([`crate::metadata::auth`]) so that a broker
//! group's members share them through the raft log.
//!
//! - [`model`]: users, resources, actions, policies, as RocketMQ spells them.
//! - [`config`]: the broker.conf keys.
//! - [`bootstrap`]: the super users broker.conf names, created when missing.
//! - [`needs`]: the resources and actions a remoting request needs.
//! - [`gate`]: the check of one request (authentication, then authorization).
//! - [`admin`]: the auth admin requests' bodies read into checked changes, with
//!   RocketMQ's refusals.
//!
//! ACL 1.0 ([`crate::acl`]) is separate and may run beside it.

pub mod admin;
pub mod bootstrap;
pub mod config;
pub mod gate;
pub mod model;
pub mod needs;
