//! Starting and stopping a broker: open the store and metadata, listen, run the background
//! work (name-server registration, offset persistence, client expiry, rate sampling,
//! delivery of delayed messages), and shut down in order.
//!
//! With `enableDLegerCommitLog=true` the broker joins its raft group instead of opening a
//! standalone store (see [`crate::group`]): it starts as a slave, the role manager makes
//! it master while it leads, and a stopping master hands leadership off first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::rpc::Instrumented;
use remoting::connection::RequestProcessor;
use remoting::server::{RemotingServer, ServerConfig};
use store::{StoreConfig, StoreError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::acl::guard::{AclGuard, RequestCheck};
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::context::{BrokerContext, Oversight};
use crate::group::{self, handoff, GroupError};
use crate::metadata::MetaError;
use crate::processor::{notify_if_enabled, BrokerProcessor};
use crate::registration::{self, NameServerRegistrar};
use crate::schedule;
use crate::store_facade::{MessageStore, ReplicatedFacade, StandaloneFacade};
use crate::transaction;

/// Consumer offsets are written out this often (RocketMQ: `flushConsumerOffsetInterval`).
pub const OFFSET_PERSIST_INTERVAL: Duration = Duration::from_secs(5);
/// How often silent clients are looked for (RocketMQ's ClientHousekeepingService).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);
const STATS_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Per-topic stats snapshots are taken every this many samples (RocketMQ: 10 s).
const STATS_ITEMS_EVERY: u64 = 10;
/// Requests in flight get this long to answer at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Room for a record's fixed fields, topic and added properties beyond its body.
const RECORD_OVERHEAD_MAX_BYTES: usize = 64 * 1024;
/// Room for a batch's per-message overhead beyond its body.
const BATCH_OVERHEAD_MAX_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the message store")]
    Store(#[from] StoreError),
    #[error("cannot load broker metadata")]
    Meta(#[from] MetaError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the store was interrupted: {0}")]
    Interrupted(String),
    #[error("cannot join the broker group")]
    Group(#[from] GroupError),
    #[error(transparent)]
    Metrics(#[from] metrics::endpoint::BindError),
    #[error("cannot load ACL (aclEnable=true)")]
    Acl(#[from] crate::acl::files::AclFileError),
    #[error(
        "aclEnable=true but neither rocketmqHome nor ROCKETMQ_HOME says where conf/plain_acl.yml is"
    )]
    AclHomeUnknown,
}

/// Metrics and ACL as the config asks for them.
fn oversight(config: &BrokerConfig) -> Result<Oversight, StartError> {
    let metrics = crate::instruments::BrokerMetrics::new(config.metrics_exporter.enabled());
    let acl = if config.acl_enable {
        let home = config
            .rocketmq_home
            .as_deref()
            .ok_or(StartError::AclHomeUnknown)?;
        let files = crate::acl::files::AclFiles::open(home)?;
        info!(home = %home.display(), "ACL enabled");
        Some(Arc::new(files))
    } else {
        None
    };
    Ok(Oversight { metrics, acl })
}

/// The store settings a broker config implies.
pub fn store_config(config: &BrokerConfig) -> StoreConfig {
    let max_body = config.max_message_size as usize;
    StoreConfig {
        // The broker limits bodies; the store limits whole records and batches of them.
        max_message_size: max_body + RECORD_OVERHEAD_MAX_BYTES,
        max_batch_bytes: (max_body + BATCH_OVERHEAD_MAX_BYTES).max(16 * 1024 * 1024),
        ..config.store.clone()
    }
}

/// A started broker. Call [`RunningBroker::shutdown`] to stop it in order; dropping it
/// stops it abruptly (the store still flushes when its last user goes).
pub struct RunningBroker {
    ctx: Arc<BrokerContext>,
    server: Option<RemotingServer>,
    /// RocketMQ's "VIP channel" on `listenPort - 2`: the same requests on a second port,
    /// which clients with `vipChannelEnabled` (and the dashboard) send to.
    fast_server: Option<RemotingServer>,
    registrar: Arc<NameServerRegistrar>,
    tasks: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

/// Starts a broker: opens (and recovers) the store and metadata under
/// `storePathRootDir`, listens on `bindAddress:listenPort` (port 0 picks a free one) and
/// registers with the name servers.
pub async fn start(config: BrokerConfig) -> Result<RunningBroker, StartError> {
    if config.enable_dledger_commit_log {
        return start_group_member(config).await;
    }
    let store_config = store_config(&config);
    let opened = tokio::task::spawn_blocking(move || store::StandaloneStore::open(store_config))
        .await
        .map_err(|e| StartError::Interrupted(e.to_string()))?;
    let (message_store, recovery) = opened?;
    info!(?recovery, "store recovered");
    let store: Arc<dyn MessageStore> = Arc::new(StandaloneFacade::new(Arc::new(message_store)));
    start_with_store(config, store).await
}

/// [`start`] over a store the caller opened (tests, or a replicated store).
pub async fn start_with_store(
    config: BrokerConfig,
    store: Arc<dyn MessageStore>,
) -> Result<RunningBroker, StartError> {
    let (listener, local_addr) = bind_client_port(&config).await?;
    let fast_listener = bind_fast_port(&config).await?;
    let grpc_listener = bind_grpc_port(&config).await;
    let metrics_listener = bind_metrics_port(&config).await?;
    let oversight = oversight(&config)?;
    let ctx = BrokerContext::new(config, local_addr.port(), store, oversight)?;
    serve(
        ctx,
        Listeners {
            client: listener,
            fast: fast_listener,
            grpc: grpc_listener,
            metrics: metrics_listener,
        },
        local_addr,
    )
}

/// A member of a raft group (DLedger mode): the client port first (so a bad port fails
/// before the raft node starts), then the group's store, metadata and role manager.
async fn start_group_member(mut config: BrokerConfig) -> Result<RunningBroker, StartError> {
    let (listener, local_addr) = bind_client_port(&config).await?;
    let fast_listener = bind_fast_port(&config).await?;
    let grpc_listener = bind_grpc_port(&config).await;
    let metrics_listener = bind_metrics_port(&config).await?;
    // With `listenPort=0` the address this member registers is only known now; the group
    // code compares it with the members the name servers list (to not copy from itself).
    config.listen_port = local_addr.port();
    let oversight = oversight(&config)?;
    let raft_observer = oversight
        .metrics
        .enabled()
        .then(|| Arc::new(oversight.metrics.raft.clone()) as Arc<dyn raft::DriverObserver>);
    let opened = group::open(&config, store_config(&config), raft_observer).await?;
    let member = opened.member;
    let store: Arc<dyn MessageStore> = Arc::new(ReplicatedFacade::new(Arc::clone(&member.store)));
    let ctx = BrokerContext::assemble(
        config,
        local_addr.port(),
        store,
        opened.tables,
        opened.registration_needed,
        Some(Arc::clone(&member)),
        oversight,
    )?;
    let mut running = serve(
        Arc::clone(&ctx),
        Listeners {
            client: listener,
            fast: fast_listener,
            grpc: grpc_listener,
            metrics: metrics_listener,
        },
        local_addr,
    )?;
    let role_manager = group::role_manager::RoleManager {
        role: Arc::clone(&ctx.role),
        registration_needed: Arc::clone(&ctx.registration_needed),
        slave_id: ctx.config.dledger_slave_id(),
        shutdown: ctx.shutdown.clone(),
    };
    running.tasks.push(tokio::spawn(group::role_manager::follow(
        role_manager,
        member.store.subscribe(),
        member.metadata.complete(),
    )));
    running
        .tasks
        .push(tokio::spawn(group::demotion::forward_after_demotion(
            Arc::clone(&ctx),
            Arc::clone(&running.registrar),
            member.store.subscribe(),
        )));
    running.tasks.push(tokio::spawn(
        Arc::clone(&member.writer).run(ctx.shutdown.clone()),
    ));
    if ctx.metrics.enabled() {
        running.tasks.push(tokio::spawn(
            ctx.metrics
                .raft
                .clone()
                .follow(member.store.raft().state(), ctx.shutdown.clone()),
        ));
    }
    Ok(running)
}

async fn bind_client_port(config: &BrokerConfig) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind = format!("{}:{}", config.bind_address, config.listen_port);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: bind.clone(),
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    Ok((listener, local_addr))
}

/// The fast ("VIP") port, `listenPort - 2` as RocketMQ's broker opens it; none when the
/// client port is picked by the system (`listenPort=0`), as clients could not derive it.
async fn bind_fast_port(config: &BrokerConfig) -> Result<Option<TcpListener>, StartError> {
    let Some(port) = config
        .listen_port
        .checked_sub(2)
        .filter(|_| config.listen_port > 2)
    else {
        return Ok(None);
    };
    let bind = format!("{}:{port}", config.bind_address);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: format!("{bind} (the VIP channel, listenPort - 2)"),
            source,
        })?;
    Ok(Some(listener))
}

/// The gRPC port for RocketMQ 5 clients (`grpcServerPort`), unless `enableGrpcServer=false`.
/// A port already taken (often by a RocketMQ proxy still running on 8081 beside the broker
/// it replaces) does not stop the broker: remoting clients are served, and the error says
/// gRPC is not.
async fn bind_grpc_port(config: &BrokerConfig) -> Option<TcpListener> {
    if !config.enable_grpc_server {
        return None;
    }
    let bind = format!("{}:{}", config.bind_address, config.grpc_server_port);
    match TcpListener::bind(&bind).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::error!(addr = %bind, error = %e,
                "cannot listen for gRPC (grpcServerPort): RocketMQ 5 clients are not served; remoting clients are");
            None
        }
    }
}

/// The Prometheus endpoint's port, with `metricsExporterType=PROM`. Unlike gRPC's, a taken
/// port stops start-up: the operator asked for metrics and would otherwise scrape nothing.
async fn bind_metrics_port(
    config: &BrokerConfig,
) -> Result<Option<TcpListener>, metrics::endpoint::BindError> {
    if !config.metrics_exporter.enabled() {
        return Ok(None);
    }
    metrics::endpoint::bind(&config.metrics_exporter, &config.broker_ip1)
        .await
        .map(Some)
}

/// Every port a broker serves on.
struct Listeners {
    client: TcpListener,
    fast: Option<TcpListener>,
    grpc: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

fn serve(
    ctx: Arc<BrokerContext>,
    listeners: Listeners,
    local_addr: SocketAddr,
) -> Result<RunningBroker, StartError> {
    let processor = Arc::new(BrokerProcessor::new(Arc::clone(&ctx)));
    let latency = ctx.metrics.enabled().then(|| ctx.metrics.rpc.clone());
    let (client, fast) = (listeners.client, listeners.fast);
    // Metrics time every request, refused ones too; ACL stands in front of the processors.
    let mut checks: Vec<Arc<dyn RequestCheck>> = Vec::new();
    if let Some(plain) = &ctx.acl {
        checks.push(Arc::clone(plain) as Arc<dyn RequestCheck>);
    }
    if let Some(users) = &ctx.auth_gate {
        checks.push(Arc::clone(users) as Arc<dyn RequestCheck>);
    }
    let guarded = !checks.is_empty();
    let guard = || AclGuard::new(Arc::clone(&processor), checks.clone());
    let (server, fast_server) = match (guarded, latency) {
        (true, Some(latency)) => {
            let timed = Arc::new(Instrumented::new(Arc::new(guard()), latency));
            client_servers(&ctx, client, fast, timed, local_addr)?
        }
        (true, None) => client_servers(&ctx, client, fast, Arc::new(guard()), local_addr)?,
        (false, Some(latency)) => {
            let timed = Arc::new(Instrumented::new(Arc::clone(&processor), latency));
            client_servers(&ctx, client, fast, timed, local_addr)?
        }
        (false, None) => client_servers(&ctx, client, fast, Arc::clone(&processor), local_addr)?,
    };
    let registrar = Arc::new(NameServerRegistrar::new(
        ctx.config.namesrv_addrs.clone(),
        ctx.config.inner_client_config(),
    ));
    let mut tasks = vec![
        tokio::spawn(registration::run(Arc::clone(&ctx), Arc::clone(&registrar))),
        tokio::spawn(persist_offsets_periodically(Arc::clone(&ctx))),
        tokio::spawn(expire_clients_periodically(Arc::clone(&ctx))),
        tokio::spawn(sample_stats_periodically(Arc::clone(&ctx))),
        tokio::spawn(schedule::service::run(Arc::clone(&ctx))),
        tokio::spawn(crate::timer::service::run(Arc::clone(&ctx))),
        tokio::spawn(transaction::check::run(Arc::clone(&ctx))),
        tokio::spawn(crate::pop::revive::run(Arc::clone(&ctx))),
        tokio::spawn(crate::auth::bootstrap::run(Arc::clone(&ctx))),
    ];
    if let Some(acl) = &ctx.acl {
        tasks.push(tokio::spawn(Arc::clone(acl).watch(ctx.shutdown.clone())));
    }
    if let Some(metrics_listener) = listeners.metrics {
        let scrape = Arc::new(crate::instruments::scrape::BrokerScrape {
            ctx: Arc::clone(&ctx),
        });
        tasks.push(metrics::endpoint::serve(
            metrics_listener,
            scrape,
            ctx.shutdown.clone(),
        ));
    }
    if let Some(grpc_listener) = listeners.grpc {
        if let Ok(addr) = grpc_listener.local_addr() {
            ctx.grpc_port
                .store(addr.port(), std::sync::atomic::Ordering::Relaxed);
        }
        tasks.push(crate::grpc::serve(Arc::clone(&ctx), grpc_listener));
    }
    info!(broker = %ctx.config.broker_name, addr = %ctx.broker_addr, %local_addr,
        cluster = %ctx.config.broker_cluster_name, namesrv = ?ctx.config.namesrv_addrs,
        "The broker boot success.");
    Ok(RunningBroker {
        ctx,
        server: Some(server),
        fast_server,
        registrar,
        tasks,
        local_addr,
    })
}

/// The client port and the VIP channel, both answered by `processor`.
fn client_servers<P: RequestProcessor>(
    ctx: &BrokerContext,
    listener: TcpListener,
    fast_listener: Option<TcpListener>,
    processor: Arc<P>,
    local_addr: SocketAddr,
) -> Result<(RemotingServer, Option<RemotingServer>), StartError> {
    let server = RemotingServer::from_listener(
        listener,
        ServerConfig::with_limits(&ctx.config.server_limits),
        Arc::clone(&processor),
    )
    .map_err(|source| StartError::Bind {
        addr: local_addr.to_string(),
        source,
    })?;
    let fast_server = match fast_listener {
        Some(fast) => Some(
            RemotingServer::from_listener(
                fast,
                ServerConfig::with_limits(&ctx.config.server_limits),
                processor,
            )
            .map_err(|source| StartError::Bind {
                addr: "the VIP channel".into(),
                source,
            })?,
        ),
        None => None,
    };
    Ok((server, fast_server))
}

impl RunningBroker {
    /// The address the client port is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `brokerIP1:port`, as registered with name servers.
    pub fn broker_addr(&self) -> &str {
        &self.ctx.broker_addr
    }

    pub fn context(&self) -> &Arc<BrokerContext> {
        &self.ctx
    }

    /// Resolves, with the reason, once this group member can no longer follow its group
    /// (a storage error stopped its raft node or its apply loop: EIO, ENOSPC, a checksum
    /// failure in an old segment). It would otherwise serve frozen queues as a slave; its
    /// owner should stop it (leaving the routes) and exit non-zero so that a supervisor
    /// restarts it once the cause is gone. Never resolves for a standalone broker.
    pub async fn failed(&self) -> String {
        if let Some(member) = &self.ctx.group {
            let mut failure = member.store.failure();
            // Bounded by the store's life: `changed` fails once nothing can report any more.
            loop {
                if let Some(reason) = failure.borrow_and_update().clone() {
                    return reason;
                }
                if failure.changed().await.is_err() {
                    break;
                }
            }
        }
        std::future::pending().await
    }

    /// Graceful stop: a group master first hands leadership to a follower and waits
    /// (bounded) until the name servers list the new master; then parked pulls answer, the
    /// port stops accepting and requests in flight finish, consumer offsets are written,
    /// the store is flushed, and the name servers are told the broker is gone.
    pub async fn shutdown(self) {
        self.stop(true).await
    }

    /// [`RunningBroker::shutdown`]; without `hand_off` a group master stops as it is (when
    /// the whole group stops together, handing off is wasted time).
    pub async fn stop(mut self, hand_off: bool) {
        info!(broker = %self.ctx.config.broker_name, "broker shutting down");
        if let Some(member) = self.ctx.group.clone().filter(|_| hand_off) {
            let linger = self.ctx.config.master_shutdown_forward;
            // A member demoted a moment ago (a transfer, its removal from the group) may
            // still be named master in clients' routes: it forwards for the rest of its
            // window. A master hands off first and forwards for the whole window.
            let demoted_at = self.ctx.handoff.demoted_within(linger);
            self.ctx.handoff.begin();
            let forward_for = match demoted_at {
                Some(at) => Some(linger.saturating_sub(at.elapsed())),
                None => handoff::hand_off(&member, handoff::HANDOFF_TIMEOUT)
                    .await
                    .map(|_| linger),
            };
            if let Some(forward_for) = forward_for {
                let new_master = self
                    .registrar
                    .wait_for_other_master(&self.ctx, handoff::HANDOFF_TIMEOUT)
                    .await;
                if let Some(new_master) = new_master {
                    info!(%new_master, linger_ms = forward_for.as_millis() as u64,
                        "forwarding sends to the new master while clients' routes refresh");
                    self.ctx.handoff.forward_to(new_master);
                    tokio::time::sleep(forward_for).await;
                }
            }
            self.ctx.handoff.end();
        }
        self.ctx.shutdown.cancel();
        let stopping = self
            .server
            .take()
            .into_iter()
            .chain(self.fast_server.take())
            .map(|server| server.shutdown(SHUTDOWN_GRACE));
        futures::future::join_all(stopping).await;
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = persist_metadata(&self.ctx) {
            warn!(error = %e, "consumer offsets not persisted at shutdown");
        }
        self.ctx.store.shutdown().await;
        self.registrar.unregister_all(&self.ctx).await;
        info!(broker = %self.ctx.config.broker_name, "broker stopped");
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Writes consumer offsets; a group member also records which raft index they include.
fn persist_metadata(ctx: &BrokerContext) -> Result<(), MetaError> {
    match &ctx.group {
        Some(member) => member.metadata.persist(),
        None => ctx.offsets.persist().map(|_| ()),
    }
}

async fn persist_offsets_periodically(ctx: Arc<BrokerContext>) {
    let mut tick = tokio::time::interval(OFFSET_PERSIST_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        let ctx = Arc::clone(&ctx);
        let persisted = tokio::task::spawn_blocking(move || persist_metadata(&ctx)).await;
        match persisted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "consumer offsets not persisted"),
            Err(e) => warn!(error = %e, "consumer offset persistence interrupted"),
        }
    }
}

/// Drops clients silent for `channelExpiredTimeout` and closes their connections.
async fn expire_clients_periodically(ctx: Arc<BrokerContext>) {
    let interval = HOUSEKEEPING_INTERVAL.min(ctx.config.channel_expired_timeout);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        let now = Instant::now();
        let timeout = ctx.config.channel_expired_timeout;
        let (expired_consumers, changes) = ctx.consumers.expire(now, timeout);
        let expired_producers = ctx.producers.expire(now, timeout);
        for channel in expired_consumers.iter().chain(expired_producers.iter()) {
            warn!(client = %channel.client_id, addr = %channel.conn.remote_addr(),
                "client sent no heartbeat for {timeout:?}; closing its connection");
            channel.conn.close();
        }
        for change in changes {
            notify_if_enabled(&ctx, change);
        }
    }
}

async fn sample_stats_periodically(ctx: Arc<BrokerContext>) {
    let mut tick = tokio::time::interval(STATS_SAMPLE_INTERVAL);
    let mut samples_taken: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        ctx.stats.sample(Instant::now(), now_ms());
        samples_taken += 1;
        if samples_taken.is_multiple_of(STATS_ITEMS_EVERY) {
            ctx.stats_items.sample(now_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_gets_the_brokers_delay_levels() {
        // Standalone and group members both open their store with `store_config`: the
        // store stamps schedule entries with deliver times from these levels.
        let config = BrokerConfig {
            store: StoreConfig {
                message_delay_level: "2s 7m".parse().unwrap(),
                ..StoreConfig::default()
            },
            ..BrokerConfig::default()
        };
        assert_eq!(
            store_config(&config).message_delay_level.to_string(),
            "2s 7m"
        );
    }
}
