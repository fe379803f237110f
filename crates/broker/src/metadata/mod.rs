//! The broker's metadata: topic configs, subscription groups and consumer offsets.
//!
//! - [`persist`]: atomic JSON files under `storePathRootDir/config/`.
//! - [`attributes`]: topic attributes (5.x `message.type`, ...) and their alterations.
//! - [`topic`]: topic configs (`topics.json`), system topics and auto-creation.
//! - [`subscription`]: consumer-group configs (`subscriptionGroup.json`).
//! - [`offset`]: committed consumer offsets (`consumerOffset.json`).
//! - [`request_mode`]: PULL or POP per topic and group (`messageRequestMode.json`).
//! - [`auth`]: ACL 2.0's users and ACLs (`auth.json`).
//! - the lite topic subscriptions ([`crate::lite`]), in memory only.
//!
//! Every change is an explicit operation (`TopicOp`, `SubscriptionOp`, `OffsetOp`) applied by
//! one `apply` path per manager. Processors first decide *what* should change (e.g. which
//! config an auto-created topic gets) and then apply the op, so the same ops can be proposed
//! through raft and applied on commit on every node of a group, deterministically:
//! [`MetadataOp`] is the envelope with its wire encoding, and
//! [`crate::BrokerContext::apply_metadata`] applies one. Processors never apply ops
//! themselves: they call [`crate::BrokerContext::write_metadata`], which applies at once on a
//! standalone broker and goes through the raft log in a group (see [`crate::group`]).

pub mod attributes;
pub mod auth;
pub mod offset;
pub mod persist;
pub mod request_mode;
pub mod subscription;
pub mod topic;

use std::path::PathBuf;
use std::sync::Arc;

pub use auth::{AuthOp, AuthTable};
pub use offset::{ConsumerOffsetManager, OffsetOp};
pub use request_mode::{RequestModeManager, RequestModeOp};
pub use subscription::{SubscriptionGroupManager, SubscriptionOp};
pub use topic::{TopicConfigManager, TopicOp};

use crate::config::BrokerConfig;
use crate::limits;
use crate::lite::{LiteOp, LiteSubscriptions};
use topic::TopicDefaults;

/// The three tables, opened from `storePathRootDir/config`. Cheap to clone (shared).
#[derive(Clone)]
pub struct MetadataTables {
    pub topics: Arc<TopicConfigManager>,
    pub groups: Arc<SubscriptionGroupManager>,
    pub offsets: Arc<ConsumerOffsetManager>,
    pub request_modes: Arc<RequestModeManager>,
    pub auth: Arc<AuthTable>,
    pub lite: Arc<LiteSubscriptions>,
}

impl MetadataTables {
    pub fn open(config: &BrokerConfig) -> Result<MetadataTables, MetaError> {
        let dir = persist::config_dir(&config.store.store_path_root_dir);
        let defaults = TopicDefaults {
            cluster_name: config.broker_cluster_name.clone(),
            broker_name: config.broker_name.clone(),
            auto_create_topic_enable: config.auto_create_topic_enable,
            default_topic_queue_nums: config.default_topic_queue_nums,
        };
        Ok(MetadataTables {
            topics: Arc::new(TopicConfigManager::open(
                &dir,
                &defaults,
                limits::MAX_TOPICS,
            )?),
            groups: Arc::new(SubscriptionGroupManager::open(
                &dir,
                limits::MAX_SUBSCRIPTION_GROUPS,
            )?),
            offsets: Arc::new(ConsumerOffsetManager::open(&dir, limits::MAX_OFFSET_KEYS)?),
            request_modes: Arc::new(RequestModeManager::open(&dir, limits::MAX_REQUEST_MODES)?),
            auth: Arc::new(AuthTable::open(
                &dir,
                limits::MAX_AUTH_USERS,
                limits::MAX_POLICY_ENTRIES_PER_SUBJECT,
            )?),
            lite: Arc::new(LiteSubscriptions::default()),
        })
    }

    /// The one apply path of every op. Returns whether the topic table changed (name
    /// servers must hear about it). The ops of a batch are applied independently: one that
    /// fails (a table limit) does not stop the others; the first error is returned.
    pub fn apply(&self, op: MetadataOp) -> Result<bool, MetaError> {
        match op {
            MetadataOp::Topic(op) => self.topics.apply(op).map(|applied| applied.changed),
            MetadataOp::Subscription(op) => self.groups.apply(op).map(|_| false),
            MetadataOp::Offset(op) => self.offsets.apply(op).map(|()| false),
            MetadataOp::RequestMode(op) => self.request_modes.apply(op).map(|()| false),
            MetadataOp::Auth(op) => self.auth.apply(op).map(|()| false),
            MetadataOp::Lite(op) => self
                .lite
                .apply(
                    &op.change,
                    self.groups.lite_client_quota(&op.change.group),
                    op.at_ms,
                )
                .map(|_| false)
                .map_err(|refusal| MetaError::LimitReached {
                    what: "lite subscriptions",
                    limit: refusal.limit(),
                }),
            MetadataOp::Batch(ops) => {
                let mut topics_changed = false;
                let mut first_error = None;
                for op in ops {
                    // Batches are flat: a nested batch is refused rather than recursed into.
                    let result = match op {
                        MetadataOp::Batch(_) => {
                            Err(MetaError::Invalid("nested metadata batch".into()))
                        }
                        op => self.apply(op),
                    };
                    match result {
                        Ok(changed) => topics_changed |= changed,
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match first_error {
                    Some(e) if !topics_changed => Err(e),
                    Some(e) => {
                        tracing::warn!(error = %e, "part of a metadata batch was refused");
                        Ok(true)
                    }
                    None => Ok(topics_changed),
                }
            }
        }
    }
}

/// Any metadata change, as one value that can travel (e.g. as a raft entry body).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MetadataOp {
    Topic(TopicOp),
    Subscription(SubscriptionOp),
    Offset(OffsetOp),
    RequestMode(RequestModeOp),
    Auth(AuthOp),
    Lite(LiteOp),
    /// Several ops applied in order as one (what a group's leader proposes as one raft
    /// entry: coalesced offset commits, or the writes that queued up behind one proposal).
    Batch(Vec<MetadataOp>),
}

impl MetadataOp {
    /// JSON: readable in logs and dumps, and ops are small and rare next to messages.
    pub fn encode(&self) -> Result<Vec<u8>, MetaError> {
        serde_json::to_vec(self)
            .map_err(|e| MetaError::Invalid(format!("metadata op cannot be encoded: {e}")))
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
    /// A broker group member that is not the writable leader cannot change metadata; the
    /// master can (clients retry there).
    #[error("not the master of the broker group: {0}")]
    NotLeader(String),
    /// Proposed to the group but not known to be committed (timeout, leadership lost).
    #[error("metadata change not replicated: {0}")]
    Replication(String),
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
            MetadataOp::Batch(vec![MetadataOp::Offset(OffsetOp::RemoveGroup {
                group: "G".into(),
            })]),
        ];
        for op in ops {
            assert_eq!(MetadataOp::decode(&op.encode().unwrap()).unwrap(), op);
        }
        assert!(MetadataOp::decode(b"{\"Nope\":1}").is_err());
    }
}
