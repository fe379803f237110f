//! The peer copy: after a log restart, this member's tables are fetched from another
//! member found through the name servers (see the parent module for why this is safe),
//! and empty queues continue from the group's offsets.
//!
//! Fetching (the remoting requests) and installing ([`GroupMetadata::install_copy`]) are
//! apart, so the group simulation can hand a member another member's tables read in
//! process ([`GroupMetadata::local_copy`]) and drive the very install a broker runs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use remoting::body::auth;
use remoting::body::{
    ClusterInfo, SubscriptionGroupConfig, SubscriptionGroupWrapper, TopicConfig,
    TopicConfigSerializeWrapper, TopicStatsTable,
};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::admin::GetTopicStatsInfoRequestHeader;
use tracing::{error, info, warn};

use super::GroupMetadata;
use crate::group::status::GroupStatusBody;

const COPY_RETRY: Duration = Duration::from_secs(1);
const COPY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a copy waits for this member to apply as far as its source had.
const CATCH_UP_POLL: Duration = Duration::from_millis(50);
const CATCH_UP_POLLS: usize = 200;

/// Why one copy attempt failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no name servers to find other members through")]
    NoNameServers,
    #[error("no other member is registered")]
    NoMember,
    #[error("{addr}: {reason}")]
    From {
        addr: String,
        reason: Box<CopyError>,
    },
    #[error("request failed: {0}")]
    Call(String),
    #[error("code {code}: {remark:?}")]
    Refused { code: i32, remark: Option<String> },
    #[error("unreadable answer: {0}")]
    Decode(String),
    #[error(
        "the copy (through index {copied_through}) is older than ops dropped here \
         (through {dropped_through})"
    )]
    Stale {
        copied_through: u64,
        dropped_through: u64,
    },
    #[error(
        "the source had applied through index {copied_through} only; this member's log \
         restarted after {needed_through}"
    )]
    Behind {
        copied_through: u64,
        needed_through: u64,
    },
    #[error(transparent)]
    Install(#[from] crate::metadata::MetaError),
    #[error("the store is not open yet")]
    StoreNotOpen,
    #[error("this member has not applied index {0} yet")]
    NotCaughtUp(u64),
    #[error("its own tables are incomplete (it owes a copy itself)")]
    SourceIncomplete,
    #[error("its tables changed while they were read (applied index {before} -> {after})")]
    SourceMoved { before: u64, after: u64 },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Another member's tables, read for a copy.
#[derive(Debug, Clone)]
pub struct MetadataCopy {
    /// The source had applied every op up to here before its tables were read, and held
    /// back none: the tables hold all of them.
    pub copied_through: u64,
    pub topics: Vec<TopicConfig>,
    pub groups: Vec<SubscriptionGroupConfig>,
    /// As GET_ALL_CONSUMER_OFFSET answers them.
    pub offsets: Vec<u8>,
    /// As GET_ALL_MESSAGE_REQUEST_MODE answers them.
    pub request_modes: Vec<u8>,
    pub users: Vec<crate::auth::model::User>,
    pub acls: Vec<crate::auth::model::Acl>,
}

/// Where a member finds the others to copy metadata from.
#[derive(Debug, Clone)]
pub struct CopySource {
    pub namesrv_addrs: Vec<String>,
    pub broker_name: String,
    /// This member's client address (skipped).
    pub own_addr: String,
    /// How this member's requests are signed.
    pub client_config: ClientConfig,
}

impl GroupMetadata {
    /// Fetches a copy in the background until one is installed. Without name servers to
    /// find members through (no [`CopySource`]), whoever owns this member installs one.
    pub(super) fn start_copy(&self) {
        if self.source.is_none() {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            error!("no runtime to copy metadata on");
            return;
        };
        runtime.spawn(async move {
            let weak = Arc::downgrade(&me);
            drop(me);
            // Bounded by the member's life: the task ends once the metadata is dropped.
            loop {
                let Some(me) = weak.upgrade() else { return };
                if me.held.lock().is_none() {
                    return;
                }
                match me.copy_once().await {
                    Ok(from) => {
                        info!(%from, "metadata copied from another member");
                        return;
                    }
                    Err(reason) => warn!(%reason, "metadata copy failed; retrying"),
                }
                drop(me);
                tokio::time::sleep(COPY_RETRY).await;
            }
        });
    }

    /// One attempt: find a member, read its applied index and tables, install them.
    async fn copy_once(&self) -> Result<String, CopyError> {
        let source = self.source.as_ref().ok_or(CopyError::NoNameServers)?;
        let client = RemotingClient::new(source.client_config.clone());
        let result = self.copy_from_any(&client, source).await;
        client.shutdown();
        result
    }

    async fn copy_from_any(
        &self,
        client: &RemotingClient,
        source: &CopySource,
    ) -> Result<String, CopyError> {
        let mut members = Vec::new();
        for namesrv in &source.namesrv_addrs {
            let request = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
            if let Ok(response) = client.invoke(namesrv, request, COPY_TIMEOUT).await {
                if let Ok(info) = ClusterInfo::decode(&response.body) {
                    if let Some(broker) = info.broker_addr_table.get(&source.broker_name) {
                        members.extend(broker.broker_addrs.values().cloned());
                    }
                }
            }
        }
        members.sort();
        members.dedup();
        let mut last_error = CopyError::NoMember;
        for addr in members.iter().filter(|a| **a != source.own_addr) {
            match self.copy_from(client, addr).await {
                Ok(()) => return Ok(addr.clone()),
                Err(e) => {
                    last_error = CopyError::From {
                        addr: addr.clone(),
                        reason: Box::new(e),
                    }
                }
            }
        }
        Err(last_error)
    }

    async fn copy_from(&self, client: &RemotingClient, addr: &str) -> Result<(), CopyError> {
        let call = |code: i32| {
            let request = RemotingCommand::request(code);
            async move {
                let response = client
                    .invoke(addr, request, COPY_TIMEOUT)
                    .await
                    .map_err(|e| CopyError::Call(e.to_string()))?;
                if response.is_success() {
                    Ok(response)
                } else {
                    Err(CopyError::Refused {
                        code: response.code,
                        remark: response.remark,
                    })
                }
            }
        };
        // Queue offsets before the applied index (they reflect no record past it), the
        // tables after it (they hold every op up to it).
        let floors = self.queue_floors(client, addr).await?;
        let status = |body: bytes::Bytes| {
            serde_json::from_slice::<GroupStatusBody>(&body)
                .map_err(|e| CopyError::Decode(e.to_string()))
        };
        let before = status(call(request::DLEDGER_METADATA).await?.body)?;
        let copied_through = before.applied_index;
        self.raise_empty_queues(&floors, copied_through).await?;
        let topics =
            TopicConfigSerializeWrapper::decode(&call(request::GET_ALL_TOPIC_CONFIG).await?.body)
                .map_err(|e| CopyError::Decode(e.to_string()))?;
        let groups: SubscriptionGroupWrapper = remoting::body::fastjson::decode(
            &call(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG).await?.body,
        )
        .map_err(|e| CopyError::Decode(e.to_string()))?;
        let offsets = call(request::GET_ALL_CONSUMER_OFFSET).await?.body;
        let request_modes = call(request::GET_ALL_MESSAGE_REQUEST_MODE).await?.body;
        let users = auth::decode_list::<auth::UserInfo>(&call(request::AUTH_LIST_USER).await?.body)
            .map_err(|e| CopyError::Decode(e.to_string()))?;
        let acls = auth::decode_list::<auth::AclInfo>(&call(request::AUTH_LIST_ACL).await?.body)
            .map_err(|e| CopyError::Decode(e.to_string()))?;
        let (users, acls) = copied_auth(&users, &acls)?;
        let after = status(call(request::DLEDGER_METADATA).await?.body)?;
        usable_copy(&before, &after)?;
        self.install_copy(MetadataCopy {
            copied_through,
            topics: topics.topic_config_table.into_values().collect(),
            groups: groups.subscription_group_table.into_values().collect(),
            offsets: offsets.to_vec(),
            request_modes: request_modes.to_vec(),
            users,
            acls,
        })
    }

    /// Whether this member still owes a copy (its log restarted past ops it never saw).
    pub fn copy_owed(&self) -> bool {
        self.held.lock().is_some()
    }

    /// This member's own tables as a copy for another member, as its GET_ALL_* requests
    /// would serve them, `applied_through` being what its store reports applied (every op
    /// up to it was handed to this applier); refused while it owes a copy itself.
    pub fn local_copy(&self, applied_through: u64) -> Result<MetadataCopy, CopyError> {
        if self.copy_owed() {
            return Err(CopyError::SourceIncomplete);
        }
        // The applied index before the tables: they hold every op up to it (and perhaps
        // later ones, which the copy's holder applying again does no harm).
        let copied_through = self.applied().max(applied_through);
        let tables = &self.tables;
        Ok(MetadataCopy {
            copied_through,
            topics: tables
                .topics
                .wrapper()
                .topic_config_table
                .into_values()
                .collect(),
            groups: tables
                .groups
                .wrapper()
                .subscription_group_table
                .into_values()
                .collect(),
            offsets: tables.offsets.encode()?,
            request_modes: tables.request_modes.encode()?,
            users: tables.auth.users(),
            acls: tables.auth.acls(),
        })
    }

    /// Installs another member's tables in place of this member's, then applies the ops
    /// held back since the log restart that the copy does not hold yet. Refused (fetch
    /// another) when the source had not applied as far as this member's log restart — its
    /// tables miss ops this member will never be sent — or when older than ops that had to
    /// be dropped here for lack of room.
    pub fn install_copy(&self, copy: MetadataCopy) -> Result<(), CopyError> {
        let copied_through = copy.copied_through;
        let mut held = self.held.lock();
        let Some(pending) = held.as_mut() else {
            return Ok(());
        };
        if copied_through < pending.needed_through {
            return Err(CopyError::Behind {
                copied_through,
                needed_through: pending.needed_through,
            });
        }
        if pending.dropped_through > copied_through {
            return Err(CopyError::Stale {
                copied_through,
                dropped_through: pending.dropped_through,
            });
        }
        let tables = &self.tables;
        tables.topics.replace_all(copy.topics)?;
        tables.groups.replace_all(copy.groups)?;
        tables.offsets.replace_all_encoded(&copy.offsets)?;
        tables
            .request_modes
            .replace_all_encoded(&copy.request_modes)?;
        tables.auth.replace_all(copy.users, copy.acls)?;
        let mut applied = copied_through;
        for (index, op) in pending.ops.drain(..) {
            if index > copied_through {
                self.apply_op(index, op);
                applied = applied.max(index);
            }
        }
        *held = None;
        self.applied.fetch_max(applied, Ordering::AcqRel);
        drop(held);
        self.complete.send_replace(true);
        self.registration_needed.notify_one();
        if let Err(e) = self.persist() {
            warn!(error = %e, "metadata checkpoint not written after the copy");
        }
        Ok(())
    }

    /// Every queue's next offset on the member at `addr`.
    async fn queue_floors(
        &self,
        client: &RemotingClient,
        addr: &str,
    ) -> Result<Vec<(String, i32, i64)>, CopyError> {
        let request = RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG);
        let response = client
            .invoke(addr, request, COPY_TIMEOUT)
            .await
            .map_err(|e| CopyError::Call(e.to_string()))?;
        if !response.is_success() {
            return Err(CopyError::Refused {
                code: response.code,
                remark: response.remark,
            });
        }
        let topics = TopicConfigSerializeWrapper::decode(&response.body)
            .map_err(|e| CopyError::Decode(e.to_string()))?;
        let mut floors = Vec::new();
        // Bounded by the source's topic table.
        for topic in topics.topic_config_table.keys() {
            let request = RemotingCommand::request(request::GET_TOPIC_STATS_INFO).with_header(
                &GetTopicStatsInfoRequestHeader {
                    topic: topic.clone(),
                },
            );
            let response = client
                .invoke(addr, request, COPY_TIMEOUT)
                .await
                .map_err(|e| CopyError::Call(e.to_string()))?;
            if !response.is_success() {
                // A topic deleted meanwhile has nothing to carry over.
                continue;
            }
            let stats = TopicStatsTable::decode(&response.body)
                .map_err(|e| CopyError::Decode(e.to_string()))?;
            for (queue, offsets) in stats.offset_table {
                if offsets.max_offset > 0 {
                    floors.push((queue.topic, queue.queue_id, offsets.max_offset));
                }
            }
        }
        Ok(floors)
    }

    /// Moves this member's empty queues to `floors` once it has applied `as_of_index`
    /// (waiting a little for that; the copy is retried otherwise).
    async fn raise_empty_queues(
        &self,
        floors: &[(String, i32, i64)],
        as_of_index: u64,
    ) -> Result<(), CopyError> {
        let store = self
            .store
            .get()
            .and_then(Weak::upgrade)
            .ok_or(CopyError::StoreNotOpen)?;
        // Bounded: CATCH_UP_POLLS polls.
        for _ in 0..CATCH_UP_POLLS {
            match store.raise_empty_queues(floors, as_of_index) {
                Ok(Some(raised)) => {
                    if raised > 0 {
                        info!(
                            raised,
                            "queues that retain nothing continue from the group's offsets"
                        );
                    }
                    return Ok(());
                }
                Ok(None) => tokio::time::sleep(CATCH_UP_POLL).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CopyError::NotCaughtUp(as_of_index))
    }
}

/// Whether tables read between the status `before` and the status `after` are a copy
/// complete through `before.applied_index`: the source held every op it applied for the
/// whole read (a member that itself owes a copy holds back ops, and a log restart
/// meanwhile would have emptied its tables).
/// The users and ACLs another member listed, checked as a change through the admin
/// requests would be.
fn copied_auth(
    users: &[auth::UserInfo],
    acls: &[auth::AclInfo],
) -> Result<(Vec<crate::auth::model::User>, Vec<crate::auth::model::Acl>), CopyError> {
    use crate::auth::admin;
    let users = users
        .iter()
        .map(|info| {
            let name = info.username.as_deref().unwrap_or_default();
            admin::new_user(name, info).map_err(CopyError::Decode)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let acls = acls
        .iter()
        .map(|info| admin::acl(None, info).map_err(CopyError::Decode))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((users, acls))
}

fn usable_copy(before: &GroupStatusBody, after: &GroupStatusBody) -> Result<(), CopyError> {
    if !before.metadata_complete || !after.metadata_complete {
        return Err(CopyError::SourceIncomplete);
    }
    if after.first_index > before.applied_index + 1 || after.applied_index < before.applied_index {
        return Err(CopyError::SourceMoved {
            before: before.applied_index,
            after: after.applied_index,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(applied_index: u64, first_index: u64, metadata_complete: bool) -> GroupStatusBody {
        GroupStatusBody {
            group: "g".into(),
            broker_name: "g".into(),
            broker_addr: "127.0.0.1:1".into(),
            broker_id: 2,
            self_id: "n1".into(),
            role: "FOLLOWER".into(),
            term: 3,
            leader_id: Some("n0".into()),
            writable: false,
            first_index,
            last_index: applied_index,
            commit_index: applied_index,
            applied_index,
            metadata_complete,
            stopped_reason: None,
            voter: true,
            membership_index: 0,
            removed: false,
            peers: Vec::new(),
        }
    }

    #[test]
    fn a_member_that_owes_a_copy_is_no_source() {
        let complete = status(100, 1, true);
        assert!(usable_copy(&complete, &status(120, 1, true)).is_ok());
        assert!(matches!(
            usable_copy(&status(100, 1, false), &status(120, 1, false)),
            Err(CopyError::SourceIncomplete)
        ));
        // Became incomplete while its tables were read (its own log restarted).
        assert!(matches!(
            usable_copy(&complete, &status(130, 1, false)),
            Err(CopyError::SourceIncomplete)
        ));
        // Restarted its log past the index the copy claims and is complete again already.
        assert!(matches!(
            usable_copy(&complete, &status(300, 250, true)),
            Err(CopyError::SourceMoved { .. })
        ));
    }

    #[test]
    fn a_status_without_the_field_counts_as_incomplete() {
        let mut json = serde_json::to_value(status(5, 1, true)).unwrap();
        json.as_object_mut().unwrap().remove("metadataComplete");
        let parsed: GroupStatusBody = serde_json::from_value(json).unwrap();
        assert!(!parsed.metadata_complete);
    }
}
