//! ACL 1.0 (`aclEnable=true`): RocketMQ's plain access control, from `plain_acl.yml` (the
//! `access` crate, which the name server shares), and how RocketMQ 5 clients sign gRPC
//! calls ([`grpc_auth`]; the gRPC front checks them).

pub use access::{address, files, guard, perm, plain, resources, tables};

pub mod grpc_auth;
