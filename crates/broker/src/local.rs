//! A whole local deployment in one process, data under one directory (`mqlocal`): a name
//! server and a 3-node broker group (DLedger mode, the ports and names of
//! `conf/dledger/`), or with [`LocalOptions::standalone`] a name server and one standalone
//! broker. [`broker_configs`] is the one place that decides the brokers' configs.

use std::path::PathBuf;
use std::time::Duration;

use namesrv::config::NamesrvConfig;
use namesrv::server::RunningNameServer;

use store::StoreConfig;

use crate::config::{BrokerConfig, DLedgerPeer};
use crate::runtime::{self, RunningBroker, StartError};

/// The group's names, as in `conf/dledger/`.
pub const GROUP_CLUSTER: &str = "RaftCluster";
pub const GROUP_NAME: &str = "RaftNode00";
/// Members of the local group.
pub const GROUP_SIZE: u16 = 3;

#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Address to bind and advertise (clients connect here).
    pub host: String,
    pub namesrv_port: u16,
    /// The standalone broker's port, or the first group member's (the others follow at
    /// steps of 10: 30911, 30921, 30931).
    pub broker_port: u16,
    /// The first member's raft port (the others follow: 40911, 40912, 40913).
    pub raft_port: u16,
    /// The first broker's gRPC port (RocketMQ 5 clients; the others follow: 8081, 8082,
    /// 8083).
    pub grpc_port: u16,
    /// One standalone broker instead of a group.
    pub standalone: bool,
    /// Each broker's store goes in a subdirectory.
    pub data_dir: PathBuf,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            host: "127.0.0.1".into(),
            namesrv_port: 9876,
            broker_port: 30911,
            raft_port: 40911,
            grpc_port: 8081,
            standalone: false,
            data_dir: PathBuf::from("data"),
        }
    }
}

/// The standalone broker's port when none is given (RocketMQ's default).
pub const STANDALONE_PORT: u16 = 10911;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot start the name server on port {port}")]
    NameServer {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start broker {name}")]
    Broker {
        name: String,
        #[source]
        source: StartError,
    },
    #[error("port {0} plus the group's offsets is beyond 65535")]
    PortRange(u16),
}

/// The brokers a local deployment runs, given where the name server listens.
pub fn broker_configs(
    options: &LocalOptions,
    namesrv_addr: &str,
) -> Result<Vec<BrokerConfig>, LocalError> {
    let base = |name: &str, cluster: &str, port: u16, grpc_port: u16, dir: PathBuf| BrokerConfig {
        broker_cluster_name: cluster.to_owned(),
        broker_name: name.to_owned(),
        broker_id: 0,
        listen_port: port,
        grpc_server_port: grpc_port,
        namesrv_addrs: vec![namesrv_addr.to_owned()],
        broker_ip1: options.host.clone(),
        bind_address: options.host.clone(),
        store: StoreConfig {
            // Smaller segments than RocketMQ's 1 GiB keep a laptop's disk use modest.
            mapped_file_size_commit_log: 128 * 1024 * 1024,
            ..StoreConfig::new(dir)
        },
        ..BrokerConfig::default()
    };
    if options.standalone {
        let name = "broker-a";
        return Ok(vec![base(
            name,
            "DefaultCluster",
            options.broker_port,
            options.grpc_port,
            options.data_dir.join(name),
        )]);
    }
    let peers: Vec<DLedgerPeer> = (0..GROUP_SIZE)
        .map(|i| {
            let port = options
                .raft_port
                .checked_add(i)
                .ok_or(LocalError::PortRange(options.raft_port))?;
            Ok(DLedgerPeer {
                id: format!("n{i}"),
                addr: format!("{}:{port}", options.host),
            })
        })
        .collect::<Result<_, LocalError>>()?;
    (0..GROUP_SIZE)
        .map(|i| {
            let id = format!("n{i}");
            let port = options
                .broker_port
                .checked_add(i * 10)
                .ok_or(LocalError::PortRange(options.broker_port))?;
            let grpc_port = options
                .grpc_port
                .checked_add(i)
                .ok_or(LocalError::PortRange(options.grpc_port))?;
            let dir = options.data_dir.join(GROUP_NAME).join(&id);
            Ok(BrokerConfig {
                enable_dledger_commit_log: true,
                dledger_group: GROUP_NAME.to_owned(),
                dledger_peers: peers.clone(),
                dledger_self_id: id,
                ..base(GROUP_NAME, GROUP_CLUSTER, port, grpc_port, dir)
            })
        })
        .collect()
}

pub struct LocalDeployment {
    pub namesrv: RunningNameServer,
    pub brokers: Vec<RunningBroker>,
}

impl LocalDeployment {
    pub fn namesrv_addr(&self) -> String {
        self.namesrv.local_addr().to_string()
    }

    /// The broker that is master now (the group's elected leader once it is writable).
    pub fn master(&self) -> Option<&RunningBroker> {
        self.brokers.iter().find(|b| b.context().role.is_master())
    }

    /// Waits (bounded) until a broker is master.
    pub async fn wait_for_master(&self, timeout: Duration) -> Option<&RunningBroker> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(master) = self.master() {
                return Some(master);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the brokers together (the whole group goes, so no leadership hand-off), then
    /// the name server.
    pub async fn shutdown(self) {
        futures::future::join_all(self.brokers.into_iter().map(|b| b.stop(false))).await;
        self.namesrv.shutdown().await;
    }
}

/// Starts the name server, then the brokers (a group's members together: each waits for
/// the others to elect a leader).
pub async fn start_local(options: &LocalOptions) -> Result<LocalDeployment, LocalError> {
    let namesrv_config = NamesrvConfig {
        listen_port: options.namesrv_port,
        // The local setup keeps everything under its data directory, not in $HOME.
        kv_config_path: options.data_dir.join("namesrv").join("kvConfig.json"),
        ..NamesrvConfig::default()
    };
    let namesrv = namesrv::server::start(namesrv_config, &options.host)
        .await
        .map_err(|source| LocalError::NameServer {
            port: options.namesrv_port,
            source,
        })?;
    let namesrv_addr = namesrv.local_addr().to_string();
    let configs = match broker_configs(options, &namesrv_addr) {
        Ok(configs) => configs,
        Err(e) => {
            namesrv.shutdown().await;
            return Err(e);
        }
    };
    let names: Vec<String> = configs
        .iter()
        .map(|c| {
            if c.enable_dledger_commit_log {
                format!("{} {}", c.broker_name, c.dledger_self_id)
            } else {
                c.broker_name.clone()
            }
        })
        .collect();
    let started = futures::future::join_all(configs.into_iter().map(runtime::start)).await;
    let mut brokers = Vec::new();
    let mut failure = None;
    for (name, result) in names.into_iter().zip(started) {
        match result {
            Ok(broker) => brokers.push(broker),
            Err(source) => {
                failure.get_or_insert(LocalError::Broker { name, source });
            }
        }
    }
    if let Some(failure) = failure {
        futures::future::join_all(brokers.into_iter().map(|b| b.stop(false))).await;
        namesrv.shutdown().await;
        return Err(failure);
    }
    Ok(LocalDeployment { namesrv, brokers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_conf_dledger_group() {
        let configs = broker_configs(&LocalOptions::default(), "127.0.0.1:9876").unwrap();
        assert_eq!(configs.len(), 3);
        let ports: Vec<u16> = configs.iter().map(|c| c.listen_port).collect();
        assert_eq!(ports, [30911, 30921, 30931]);
        let grpc: Vec<u16> = configs.iter().map(|c| c.grpc_server_port).collect();
        assert_eq!(grpc, [8081, 8082, 8083]);
        assert!(configs.iter().all(|c| c.enable_dledger_commit_log));
        assert_eq!(configs[2].dledger_self_id, "n2");
        assert_eq!(configs[0].dledger_peers[1].addr, "127.0.0.1:40912");
        assert_eq!(
            configs[1].store.store_path_root_dir,
            PathBuf::from("data/RaftNode00/n1")
        );
    }

    #[test]
    fn standalone_is_one_broker() {
        let options = LocalOptions {
            standalone: true,
            broker_port: STANDALONE_PORT,
            ..LocalOptions::default()
        };
        let configs = broker_configs(&options, "127.0.0.1:9876").unwrap();
        assert_eq!(configs.len(), 1);
        assert!(!configs[0].enable_dledger_commit_log);
        assert_eq!(configs[0].listen_port, 10911);
    }
}
