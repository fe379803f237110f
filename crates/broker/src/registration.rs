//! Registration with the name servers: this broker's address, id and topic configs, sent
//! to every configured name server in parallel at start, every `registerNameServerPeriod`
//! (30 s), and at once after a topic change; UNREGISTER_BROKER at shutdown.
//!
//! A name server drops a broker that stays silent for `heartbeatTimeoutMillis` (sent with
//! each registration) or whose connection closes, so the connection is kept open between
//! registrations.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::join_all;
use message::body_crc;
use remoting::body::{ClusterInfo, RegisterBrokerBody};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::namesrv::{RegisterBrokerRequestHeader, UnRegisterBrokerRequestHeader};
use tracing::{debug, info, warn};

use crate::context::BrokerContext;

/// How long one name server may take to answer a registration.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(6);
/// Name servers keep a broker this long without hearing from it: four missed periods.
const HEARTBEAT_TIMEOUT_MS: i64 = 120_000;
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

pub struct NameServerRegistrar {
    client: RemotingClient,
    addrs: Vec<String>,
}

impl NameServerRegistrar {
    /// `client_config`: how registrations are signed (a name server may run ACL, and take
    /// registrations only from an admin account).
    pub fn new(addrs: Vec<String>, client_config: ClientConfig) -> Self {
        NameServerRegistrar {
            client: RemotingClient::new(client_config),
            addrs,
        }
    }

    /// The address RocketMQ's HA service would listen on (`listenPort + 1`); name servers
    /// hand it to slaves.
    fn ha_server_addr(ctx: &BrokerContext) -> String {
        format!(
            "{}:{}",
            ctx.config.broker_ip1,
            ctx.store_host.port().saturating_add(1)
        )
    }

    fn register_request(ctx: &BrokerContext) -> RemotingCommand {
        let mut topics = ctx.topics.wrapper();
        // A broker not taking reads or writes (brokerPermission) says so in every route, as
        // RocketMQ's broker registers its topics with the broker's permission then.
        let broker_perm = ctx.live.broker_permission() as i32;
        if !ctx.live.is_writeable() || !ctx.live.is_readable() {
            for config in topics.topic_config_table.values_mut() {
                config.perm = broker_perm;
            }
        }
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: topics,
            filter_server_list: Vec::new(),
        }
        .encode();
        RemotingCommand::request(request::REGISTER_BROKER)
            .with_header(&RegisterBrokerRequestHeader {
                broker_name: ctx.config.broker_name.clone(),
                broker_addr: ctx.broker_addr.clone(),
                cluster_name: ctx.config.broker_cluster_name.clone(),
                ha_server_addr: Self::ha_server_addr(ctx),
                broker_id: i64::try_from(ctx.role.broker_id()).unwrap_or(0),
                heartbeat_timeout_millis: Some(HEARTBEAT_TIMEOUT_MS),
                enable_acting_master: Some(false),
                compressed: false,
                body_crc32: body_crc(&body),
                zone_name: None,
                raft_term: ctx
                    .group
                    .as_ref()
                    .and_then(|g| i64::try_from(g.store.status().term).ok()),
            })
            .with_body(body)
    }

    /// Registers with every name server at once; returns how many accepted.
    pub async fn register_all(&self, ctx: &BrokerContext) -> usize {
        if self.addrs.is_empty() {
            return 0;
        }
        let request = Self::register_request(ctx);
        let attempts = self.addrs.iter().map(|addr| {
            let mut request = request.clone();
            request.opaque = remoting::command::next_opaque();
            async move {
                match self.client.invoke(addr, request, REGISTER_TIMEOUT).await {
                    Ok(response) if response.is_success() => {
                        debug!(namesrv = %addr, "registered with name server");
                        true
                    }
                    Ok(response) => {
                        warn!(namesrv = %addr, code = response.code, remark = ?response.remark,
                            "name server refused the registration");
                        false
                    }
                    Err(e) => {
                        warn!(namesrv = %addr, error = %e, "registration with name server failed");
                        false
                    }
                }
            }
        });
        join_all(attempts)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count()
    }

    /// Waits (bounded) until some name server lists a master for this broker's name other
    /// than this broker: a group master that handed off leadership stops only then.
    pub async fn wait_for_other_master(
        &self,
        ctx: &BrokerContext,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for addr in &self.addrs {
                let request = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
                let Ok(response) = self.client.invoke(addr, request, REGISTER_TIMEOUT).await else {
                    continue;
                };
                let master = ClusterInfo::decode(&response.body).ok().and_then(|info| {
                    info.broker_addr_table
                        .get(&ctx.config.broker_name)
                        .and_then(|b| b.master_addr().map(str::to_owned))
                });
                if let Some(master) = master.filter(|m| *m != ctx.broker_addr) {
                    debug!(namesrv = %addr, %master, "name server lists the new master");
                    return Some(master);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        warn!("no name server listed a new master in time");
        None
    }

    /// Tells every name server this broker is going away.
    pub async fn unregister_all(&self, ctx: &BrokerContext) {
        self.withdraw(ctx).await;
        self.client.shutdown();
    }

    /// Takes this broker out of every name server's routes, for now.
    async fn withdraw(&self, ctx: &BrokerContext) {
        let attempts = self.addrs.iter().map(|addr| {
            let request = RemotingCommand::request(request::UNREGISTER_BROKER).with_header(
                &UnRegisterBrokerRequestHeader {
                    broker_name: ctx.config.broker_name.clone(),
                    broker_addr: ctx.broker_addr.clone(),
                    cluster_name: ctx.config.broker_cluster_name.clone(),
                    broker_id: i64::try_from(ctx.role.broker_id()).unwrap_or(0),
                },
            );
            async move {
                match self.client.invoke(addr, request, UNREGISTER_TIMEOUT).await {
                    Ok(_) => info!(namesrv = %addr, "unregistered from name server"),
                    Err(e) => warn!(namesrv = %addr, error = %e, "unregistering failed"),
                }
            }
        });
        join_all(attempts).await;
    }
}

/// A wait that overran its deadline by more than this means the process was frozen
/// (SIGSTOP, a VM pause) or starved.
const FROZEN_SLACK: Duration = Duration::from_secs(1);
/// How long a group master that was frozen lets raft find out whether it still leads
/// before it registers as master again (a deposed leader learns it within one heartbeat).
const SETTLE_AFTER_FREEZE: Duration = Duration::from_secs(1);

/// Registers now, then every period and after each topic or role change, until shutdown.
pub async fn run(ctx: Arc<BrokerContext>, registrar: Arc<NameServerRegistrar>) {
    let period = ctx.config.register_name_server_period;
    let mut overslept = Duration::ZERO;
    let mut withdrawn = false;
    loop {
        // A member the group removed must not be routed to: it would serve what it had as
        // a slave for ever. It registers again once it is a member again.
        if ctx.group.as_ref().is_some_and(|g| g.store.status().removed) {
            if !withdrawn {
                registrar.withdraw(&ctx).await;
                withdrawn = true;
            }
            tokio::select! {
                _ = ctx.registration_needed.notified() => continue,
                _ = ctx.shutdown.cancelled() => return,
            }
        }
        withdrawn = false;
        // A master frozen past its registration time wakes up believing it still leads; if
        // the group elected another master meanwhile, registering now would take the name
        // servers' master entry back from it. Let raft catch up, then look at the role again.
        if ctx.group.is_some() && ctx.role.is_master() && overslept > FROZEN_SLACK {
            overslept = Duration::ZERO;
            tokio::select! {
                _ = tokio::time::sleep(SETTLE_AFTER_FREEZE) => continue,
                _ = ctx.shutdown.cancelled() => return,
            }
        }
        let round = ctx.registration_rounds.begin();
        let accepted = registrar.register_all(&ctx).await;
        ctx.registration_rounds.end(round);
        debug!(
            accepted,
            of = registrar.addrs.len(),
            "registration round done"
        );
        let deadline = Instant::now() + period;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = ctx.registration_needed.notified() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        overslept = Instant::now().saturating_duration_since(deadline);
    }
}
