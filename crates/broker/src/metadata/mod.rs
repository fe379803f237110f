//! The broker's metadata: topic configs, subscription groups and consumer offsets.
//!
//! - [`persist`]: atomic JSON files under `storePathRootDir/config/`.
//! - [`topic`]: topic configs (`topics.json`), system topics and auto-creation.
//! - [`subscription`]: consumer-group configs (`subscriptionGroup.json`).
//! - [`offset`]: committed consumer offsets (`consumerOffset.json`).
//!
//! Every change is an explicit operation (`TopicOp`, `SubscriptionOp`, `OffsetOp`) applied by
//! one `apply` path per manager. Processors first decide *what* should change (e.g. which
//! config an auto-created topic gets) and then apply the op, so the same ops can be proposed
//! through raft and applied on commit on every node of a group, deterministically:
//! [`MetadataOp`] is the envelope with its wire encoding, and
//! [`crate::BrokerContext::apply_metadata`] applies one.

pub mod offset;
pub mod persist;
pub mod subscription;
pub mod topic;

use std::path::PathBuf;

pub use offset::{ConsumerOffsetManager, OffsetOp};
pub use subscription::{SubscriptionGroupManager, SubscriptionOp};
pub use topic::{TopicConfigManager, TopicOp};

/// Any metadata change, as one value that can travel (e.g. as a raft entry body).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MetadataOp {
    Topic(TopicOp),
    Subscription(SubscriptionOp),
    Offset(OffsetOp),
}

impl MetadataOp {
    /// JSON: readable in logs and dumps, and ops are small and rare next to messages.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<MetadataOp, MetaError> {
        serde_json::from_slice(bytes)
            .map_err(|e| MetaError::Invalid(format!("bad metadata op: {e}")))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::body::{SubscriptionGroupConfig, TopicConfig};

    #[test]
    fn ops_survive_their_wire_encoding() {
        let ops = [
            MetadataOp::Topic(TopicOp::Create(TopicConfig::new("T", 4, 4, 6))),
            MetadataOp::Topic(TopicOp::Delete { topic: "T".into() }),
            MetadataOp::Subscription(SubscriptionOp::Upsert(SubscriptionGroupConfig::new("G"))),
            MetadataOp::Offset(OffsetOp::Commit {
                group: "G".into(),
                topic: "T".into(),
                queue_id: 3,
                offset: 42,
            }),
        ];
        for op in ops {
            assert_eq!(MetadataOp::decode(&op.encode()).unwrap(), op);
        }
        assert!(MetadataOp::decode(b"{\"Nope\":1}").is_err());
    }
}
