//! A whole local deployment in one process: a name server and a broker, with data under
//! one directory (`mqlocal`). The deployment is described by [`LocalOptions`]; today it is
//! one standalone broker, and [`broker_configs`] is the one place that decides the brokers'
//! configs, so a replicated group means changing it, not the callers.

use std::path::PathBuf;

use namesrv::config::NamesrvConfig;
use namesrv::server::RunningNameServer;

use crate::config::BrokerConfig;
use crate::runtime::{self, RunningBroker, StartError};

#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Address to bind and advertise (clients connect here).
    pub host: String,
    pub namesrv_port: u16,
    pub broker_port: u16,
    /// Each broker's store goes in a subdirectory.
    pub data_dir: PathBuf,
    pub cluster_name: String,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            host: "127.0.0.1".into(),
            namesrv_port: 9876,
            broker_port: 10911,
            data_dir: PathBuf::from("data"),
            cluster_name: "DefaultCluster".into(),
        }
    }
}

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
}

/// The brokers a local deployment runs, given where the name server listens.
pub fn broker_configs(options: &LocalOptions, namesrv_addr: &str) -> Vec<BrokerConfig> {
    let name = "broker-a".to_owned();
    vec![BrokerConfig {
        broker_cluster_name: options.cluster_name.clone(),
        broker_name: name.clone(),
        broker_id: 0,
        listen_port: options.broker_port,
        namesrv_addrs: vec![namesrv_addr.to_owned()],
        broker_ip1: options.host.clone(),
        bind_address: options.host.clone(),
        store_path_root_dir: options.data_dir.join(&name),
        // Smaller segments than RocketMQ's 1 GiB keep a laptop's disk use modest.
        mapped_file_size_commit_log: 128 * 1024 * 1024,
        ..BrokerConfig::default()
    }]
}

pub struct LocalDeployment {
    pub namesrv: RunningNameServer,
    pub brokers: Vec<RunningBroker>,
}

impl LocalDeployment {
    pub fn namesrv_addr(&self) -> String {
        self.namesrv.local_addr().to_string()
    }

    /// Stops the brokers (in order), then the name server.
    pub async fn shutdown(self) {
        for broker in self.brokers {
            broker.shutdown().await;
        }
        self.namesrv.shutdown().await;
    }
}

/// Starts the name server, then the brokers.
pub async fn start_local(options: &LocalOptions) -> Result<LocalDeployment, LocalError> {
    let namesrv_config = NamesrvConfig {
        listen_port: options.namesrv_port,
        ..NamesrvConfig::default()
    };
    let namesrv = namesrv::server::start(namesrv_config, &options.host)
        .await
        .map_err(|source| LocalError::NameServer {
            port: options.namesrv_port,
            source,
        })?;
    let namesrv_addr = namesrv.local_addr().to_string();
    let mut brokers = Vec::new();
    for config in broker_configs(options, &namesrv_addr) {
        let name = config.broker_name.clone();
        match runtime::start(config).await {
            Ok(broker) => brokers.push(broker),
            Err(source) => {
                for started in brokers {
                    started.shutdown().await;
                }
                namesrv.shutdown().await;
                return Err(LocalError::Broker { name, source });
            }
        }
    }
    Ok(LocalDeployment { namesrv, brokers })
}
