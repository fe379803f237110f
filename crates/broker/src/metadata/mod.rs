//! The broker's metadata: topic configs, subscription groups and consumer offsets.
//!
//! - [`persist`]: atomic JSON files under `storePathRootDir/config/`.
//! - [`topic`]: topic configs (`topics.json`), system topics and auto-creation.
//! - [`subscription`]: consumer-group configs (`subscriptionGroup.json`).
//! - [`offset`]: committed consumer offsets (`consumerOffset.json`).
//!
//! Every change is an explicit operation (`TopicOp`, `SubscriptionOp`, `OffsetOp`) applied by
//! one `apply` path per manager. Processors first decide *what* should change (e.g. which
//! config an auto-created topic gets) and then apply the op, so the same ops can later be
//! proposed through raft and applied on commit on every node of a group, deterministically.

pub mod offset;
pub mod persist;
pub mod subscription;
pub mod topic;

use std::path::PathBuf;

pub use offset::{ConsumerOffsetManager, OffsetOp};
pub use subscription::{SubscriptionGroupManager, SubscriptionOp};
pub use topic::{TopicConfigManager, TopicOp};

/// Why a metadata change or load failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{what} limit of {limit} reached")]
    LimitReached { what: &'static str, limit: usize },
    #[error("{0}")]
    Invalid(String),
}
