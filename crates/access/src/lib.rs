//! ACL 1.0 (`aclEnable=true`): RocketMQ's plain access control, from `plain_acl.yml`, for
//! the broker's client ports and the name server alike.
//!
//! - [`plain`]: one file's accounts, whitelists and version, read and written in
//!   RocketMQ's layout.
//! - [`perm`]: DENY / PUB / SUB and their check.
//! - [`address`]: whitelist address patterns.
//! - [`resources`]: the topics and groups a request needs permission for.
//! - [`tables`]: every loaded account and whitelist, and the check of one request.
//! - [`files`]: where the files live, their reload, and the admin requests' writes.
//! - [`guard`]: the check in front of every request of a port, by whichever access
//!   controls a server runs.
//!
//! Signatures are made and checked by `remoting::acl`, which the clients share.

pub mod address;
pub mod files;
pub mod guard;
pub mod perm;
pub mod plain;
pub mod resources;
pub mod tables;
