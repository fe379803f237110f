//! What the fault tests over one broker group share: a name server and a group placed as
//! the test asks (stores on power-cut filesystems, members on hosts of their own), a topic
//! made on its master and routed, and the clients that drive and watch it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use client::{Admin, ClientOptions, Producer, ProducerOptions};
use remoting::client::{ClientConfig, RemotingClient};

use crate::group::{wait_for_master, BrokerGroup, Placement};
use crate::netns::Network;
use crate::powercut_fs::PowerCutFs;
use crate::{requests, NameServer};

/// How long a fault test waits for a master, a route, a catch-up.
pub const WAIT: Duration = Duration::from_secs(60);

/// One power-cut filesystem per member, mounted at `dir/disk-n<i>`.
pub fn mount_disks(dir: &Path, members: usize) -> Result<Vec<PowerCutFs>> {
    (0..members)
        .map(|i| {
            let mountpoint: PathBuf = dir.join(format!("disk-n{i}"));
            std::fs::create_dir(&mountpoint)
                .with_context(|| format!("create {}", mountpoint.display()))?;
            PowerCutFs::mount(&mountpoint)
        })
        .collect()
}

/// Member `i` with its store on `disks[i]` (or in `dir` without disks) and on the `i`-th
/// host of `network` (or on 127.0.0.1 without one).
pub fn placements(
    dir: &Path,
    disks: &[PowerCutFs],
    network: Option<&Network>,
    members: usize,
) -> Vec<Placement> {
    (0..members)
        .map(|i| Placement {
            store_root: disks
                .get(i)
                .map_or_else(|| dir.to_path_buf(), |d| d.path().to_path_buf()),
            host: network.map(|n| n.hosts()[i].clone()),
            env: Vec::new(),
        })
        .collect()
}

/// A group serving `topic`, with the clients a fault test needs.
pub struct FaultGroup {
    pub group: BrokerGroup,
    pub namesrv: NameServer,
    /// Clients polling routes every second.
    pub options: ClientOptions,
    pub admin: Admin,
    pub raw: RemotingClient,
    /// The master when the topic was made.
    pub master: String,
}

impl FaultGroup {
    /// Starts a name server in `dir` and group `name` placed by `placements` (members on
    /// hosts of `network` reach the name server through its gateway), waits for a master,
    /// makes `topic` with `queues` queues and waits until the name server routes it.
    pub async fn start(
        dir: &Path,
        placements: &[Placement],
        network: Option<&Network>,
        name: &str,
        topic: &str,
        queues: i32,
        extra: &[(&str, String)],
    ) -> Result<FaultGroup> {
        let namesrv = NameServer::start(dir)?;
        let members_namesrv = match network {
            Some(network) => {
                let addr = namesrv.addr();
                let port = addr.rsplit(':').next().context("name server port")?;
                format!("{}:{port}", network.gateway())
            }
            None => namesrv.addr(),
        };
        let group = BrokerGroup::start_placed(dir, placements, name, &members_namesrv, extra)?;
        let mut options = ClientOptions::new(&namesrv.addr());
        options.poll_name_server_interval = Duration::from_secs(1);
        let admin = Admin::start(options.clone())?;
        let master = wait_for_master(&admin, name, None, WAIT).await?;
        admin
            .create_topic(&master, &Admin::topic_config(topic, queues, queues))
            .await?;
        let raw = RemotingClient::new(ClientConfig::default());
        requests::wait_for_route(&raw, &namesrv.addr(), topic, &master, WAIT).await?;
        Ok(FaultGroup {
            group,
            namesrv,
            options,
            admin,
            raw,
            master,
        })
    }

    /// A producer that sends every message once (no client retries), so the checker can
    /// tell exactly what was stored.
    pub fn producer_sending_once(&self, group: &str) -> Result<Producer> {
        let mut options = ProducerOptions::new(group);
        options.retry_times = 0;
        options.send_timeout = Duration::from_secs(3);
        Ok(Producer::start(self.options.clone(), options)?)
    }
}
