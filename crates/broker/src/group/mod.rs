//! A broker as a member of a raft group (DLedger mode, `enableDLegerCommitLog=true`): the
//! CommitLog is the raft log, the elected leader is the master.
//!
//! - [`open`]: from `dLegerPeers` / `dLegerSelfId` / `dLegerGroup` to a running
//!   `store::ReplicatedStore` with this broker's metadata applier, as a [`GroupMember`].
//! - [`metadata`]: [`GroupMetadata`], committed metadata ops applied on every member, and
//!   the checkpoint that says where a restart resumes; its `copy` fetches the tables from a
//!   peer after a log restart.
//! - [`writer`]: [`MetadataWriter`], the leader proposing metadata ops (batched).
//! - [`role_manager`]: the broker role follows the store: master (brokerId 0) while the store is writable, slave
//!   (brokerId = selfId digits + 1) otherwise, re-registering at every change.
//! - [`handoff`]: graceful hand-off of leadership before a master stops.
//! - [`demotion`]: a master that lost leadership forwards sends to the new one for a while.
//! - [`status`]: what `mqadmin getBrokerGroup` shows, and leadership transfer on request.
//! - [`membership`]: adding and removing members on request (`mqadmin addGroupMember`).

pub mod demotion;
pub mod handoff;
pub mod membership;
pub mod metadata;
pub mod role_manager;
pub mod status;
pub mod writer;

use std::sync::Arc;

use std::time::Duration;

use raft::{DriverConfig, FileHardStateStore, HardState, HardStateStore, NodeId};
use remoting::body::ClusterInfo;
use remoting::client::RemotingClient;
use remoting::code::request;
use remoting::command::RemotingCommand;
use store::{MetadataApplier, ReplicatedError, ReplicatedStore, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use metadata::GroupMetadata;
pub use writer::MetadataWriter;

use crate::config::BrokerConfig;
use crate::metadata::persist::config_dir;
use crate::metadata::{MetaError, MetadataTables};

/// Why a group member cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("bad broker group settings: {0}")]
    Config(String),
    #[error("cannot listen for raft peers on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load broker metadata")]
    Meta(#[from] MetaError),
    #[error("cannot open the replicated store")]
    Store(#[from] ReplicatedError),
    #[error("opening the store was interrupted: {0}")]
    Interrupted(String),
}

/// This broker's part in its group.
pub struct GroupMember {
    pub store: Arc<ReplicatedStore>,
    pub writer: Arc<MetadataWriter>,
    pub metadata: Arc<GroupMetadata>,
    pub self_id: NodeId,
    /// `dLegerGroup` (defaults to `brokerName`).
    pub group_name: String,
}

/// What [`open`] hands to the broker runtime.
pub struct OpenedGroup {
    pub member: Arc<GroupMember>,
    pub tables: MetadataTables,
    pub registration_needed: Arc<Notify>,
}

/// `dLegerPeers` as the raft crate reads it.
pub fn peer_list(config: &BrokerConfig) -> String {
    config
        .dledger_peers
        .iter()
        .map(|p| format!("{}-{}", p.id, p.addr))
        .collect::<Vec<_>>()
        .join(";")
}

/// The raft settings a broker config implies.
pub fn driver_config(config: &BrokerConfig) -> Result<DriverConfig, GroupError> {
    let (id, peers) = raft::parse_group(&peer_list(config), &config.dledger_self_id)
        .map_err(|e| GroupError::Config(e.to_string()))?;
    let group_name = if config.dledger_group.is_empty() {
        config.broker_name.clone()
    } else {
        config.dledger_group.clone()
    };
    let mut driver = DriverConfig::new(id, peers, group_name);
    driver.transport.link_secret = config.dledger_secret.clone();
    if config.store.flush_disk_type == store::FlushDiskType::AsyncFlush {
        // Nobody waits on these fsyncs to acknowledge: spaced out, each covers many
        // entries, and a page is written back once rather than once per entry on it.
        driver.min_sync_interval = config.dledger_flush_interval;
    }
    if let Some(preferred) = &config.preferred_leader_id {
        let preferred: NodeId = preferred
            .parse()
            .map_err(|e: raft::peers::PeerParseError| GroupError::Config(e.to_string()))?;
        driver.raft.preferred_leaders = vec![preferred];
    }
    Ok(driver)
}

/// Opens the metadata tables and the replicated store, and starts the raft node on this
/// member's `dLegerPeers` port (bound on `bindAddress`).
/// `observer` hears of the raft node's fsyncs and appends (metrics).
pub async fn open(
    config: &BrokerConfig,
    store_config: StoreConfig,
    observer: Option<Arc<dyn raft::DriverObserver>>,
) -> Result<OpenedGroup, GroupError> {
    let mut driver = driver_config(config)?;
    driver.observer = observer;
    let self_id = driver.id;
    let peers = driver.peers.clone();
    let group_name = driver.group.clone();
    let self_peer = peers
        .iter()
        .find(|p| p.id == self_id)
        .ok_or_else(|| GroupError::Config(format!("{self_id} is not in dLegerPeers")))?;
    let port = self_peer
        .addr
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .ok_or_else(|| GroupError::Config(format!("bad peer address {}", self_peer.addr)))?;
    let bind = format!("{}:{port}", config.bind_address);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|source| GroupError::Bind {
            addr: bind.clone(),
            source,
        })?;

    seed_term_if_state_lost(config, self_id).await;
    let tables = MetadataTables::open(config)?;
    let registration_needed = Arc::new(Notify::new());
    let source = metadata::CopySource {
        namesrv_addrs: config.namesrv_addrs.clone(),
        broker_name: config.broker_name.clone(),
        own_addr: config.broker_addr(),
        client_config: config.inner_client_config(),
    };
    let metadata = GroupMetadata::open(
        &config_dir(&config.store.store_path_root_dir),
        tables.clone(),
        Arc::clone(&registration_needed),
        Some(source),
    )?;
    let applier: Arc<dyn MetadataApplier> = metadata.clone();
    // Recovery reads and rewrites files: blocking work. The store spawns its tasks on the
    // runtime, which the blocking pool's threads can reach.
    let opened = tokio::task::spawn_blocking(move || {
        ReplicatedStore::open(store_config, driver, listener, Some(applier))
    })
    .await
    .map_err(|e| GroupError::Interrupted(e.to_string()))?;
    let (store, recovery) = opened?;
    info!(group = %group_name, id = %self_id, raft = %bind, ?recovery, "broker group member opened");
    let store = Arc::new(store);
    metadata.attach_store(&store);
    let member = Arc::new(GroupMember {
        writer: MetadataWriter::new(Arc::clone(&store)),
        store,
        metadata,
        self_id,
        group_name,
    });
    Ok(OpenedGroup {
        member,
        tables,
        registration_needed,
    })
}

/// The raft directory of this member (where the store keeps its term and vote).
fn raft_dir(config: &BrokerConfig, self_id: NodeId) -> std::path::PathBuf {
    config
        .store
        .store_path_root_dir
        .join(format!("dledger-{self_id}"))
}

const HARD_STATE_FILE: &str = "raft-hard-state";
const SEED_TIMEOUT: Duration = Duration::from_secs(2);

/// A member whose term and vote file is missing (a replaced disk, a wiped directory) may
/// have voted in the group's current term before it lost the file; voting again in that
/// term could elect a second leader for it. It may also have acknowledged entries that a
/// commit counted on and that it no longer holds; its vote for a candidate missing them
/// could elect a leader that drops them. Before its raft node starts, it asks the other
/// members (found through the name servers) for their terms and commit indexes, records
/// "voted for myself" in the highest term, and withholds its vote and candidacy until its
/// log reaches the highest commit index (a leader brings it there): it then grants no vote
/// in any term it may already have voted in, except one an election was running at the
/// very moment the disk was lost (a remaining, documented hazard). A brand-new group finds
/// no members with a term and starts as usual; so does a member that reaches no one
/// (logged).
async fn seed_term_if_state_lost(config: &BrokerConfig, self_id: NodeId) {
    let dir = raft_dir(config, self_id);
    if dir.join(HARD_STATE_FILE).exists() {
        return;
    }
    let reported = highest_member_state(config).await;
    match reported {
        Some(MemberState { term, commit_index }) if term > 0 => {
            let saved = FileHardStateStore::open(&dir).and_then(|mut store| {
                store.save_vote_floor(commit_index)?;
                store.save(&HardState {
                    term,
                    voted_for: Some(self_id),
                })
            });
            match saved {
                Ok(()) => warn!(
                    term,
                    commit_index,
                    "no raft term/vote file: this member may have lost its disk; it will not \
                     vote in term {term} or earlier, nor at all until its log reaches entry \
                     {commit_index}"
                ),
                Err(e) => warn!(error = %e, "cannot record the group's term for a wiped member"),
            }
        }
        Some(_) => info!("no raft term/vote file and no member has a term yet: a new group"),
        None => warn!(
            "no raft term/vote file and no other member answered: if this member lost its \
             disk it could vote twice in the group's current term"
        ),
    }
}

/// The highest term and commit index the other members of a group report.
#[derive(Debug, Clone, Copy, Default)]
struct MemberState {
    term: u64,
    commit_index: u64,
}

/// The highest term and commit index the other members of this broker's group report, as
/// listed by the name servers; `None` when no name server or member answered.
async fn highest_member_state(config: &BrokerConfig) -> Option<MemberState> {
    let client = RemotingClient::new(config.inner_client_config());
    let own_addr = config.broker_addr();
    let mut members = Vec::new();
    let mut namesrv_answered = false;
    for namesrv in &config.namesrv_addrs {
        let request = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
        let Ok(response) = client.invoke(namesrv, request, SEED_TIMEOUT).await else {
            continue;
        };
        if let Ok(info) = ClusterInfo::decode(&response.body) {
            namesrv_answered = true;
            if let Some(broker) = info.broker_addr_table.get(&config.broker_name) {
                members.extend(broker.broker_addrs.values().cloned());
            }
        }
    }
    members.sort();
    members.dedup();
    let mut highest = None;
    for addr in members.iter().filter(|a| **a != own_addr) {
        let request = RemotingCommand::request(request::DLEDGER_METADATA);
        let Ok(response) = client.invoke(addr, request, SEED_TIMEOUT).await else {
            continue;
        };
        if let Ok(status) = serde_json::from_slice::<status::GroupStatusBody>(&response.body) {
            let seen: MemberState = highest.unwrap_or_default();
            highest = Some(MemberState {
                term: seen.term.max(status.term),
                commit_index: seen.commit_index.max(status.commit_index),
            });
        }
    }
    client.shutdown();
    if highest.is_none() && namesrv_answered && members.iter().all(|a| *a == own_addr) {
        // The name servers know no other member: nothing to have voted for yet.
        return Some(MemberState::default());
    }
    highest
}
