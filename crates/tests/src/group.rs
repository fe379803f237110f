//! A broker group of real `mqbroker` processes in DLedger mode (`enableDLegerCommitLog`),
//! every client and raft port a free 127.0.0.1 port, small CommitLog segments, data in the
//! test's own directory; and the waits fault tests need (a master registered, a member
//! caught up).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use client::Admin;
use remoting::client::RemotingClient;
use remoting::code::request;
use remoting::command::RemotingCommand;

use crate::checker::{read_member, Read};
use crate::Process;
use crate::{
    binary, free_broker_port, free_port, retry_on_port_clash, unique_suffix, wait_started_on,
    write_conf,
};

/// Segments small enough that tests cross segment boundaries (and retention has files to
/// remove) without writing much.
pub const TEST_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Where one member runs: the filesystem its store is on, its own host (a network
/// namespace of [`crate::netns::Network`]) or the test's 127.0.0.1, and what its process's
/// environment adds (a clock of its own: [`crate::clocks::Clocks::env`]).
#[derive(Debug, Clone)]
pub struct Placement {
    pub store_root: PathBuf,
    pub host: Option<crate::netns::Host>,
    pub env: Vec<(String, String)>,
}

/// One `mqbroker` of a group.
pub struct GroupMember {
    /// `n0`, `n1`, ...
    pub id: String,
    pub port: u16,
    pub raft_port: u16,
    pub conf: PathBuf,
    pub store_dir: PathBuf,
    pub process: Process,
    dir: PathBuf,
    /// The address it listens on: 127.0.0.1, or its own host's.
    host: String,
    /// Its own network namespace, when it has a host of its own.
    namespace: Option<String>,
    /// Added to its process's environment at every start.
    env: Vec<(String, String)>,
}

impl GroupMember {
    /// The client address (`brokerIP1:listenPort`), as registered with the name server.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Where RocketMQ 5 clients reach it over gRPC.
    pub fn grpc_addr(&self) -> anyhow::Result<String> {
        let port = crate::port_in(&self.conf, "grpcServerPort")?;
        Ok(format!("{}:{port}", self.host))
    }

    /// Where Prometheus scrapes it (served only with `metricsExporterType=PROM`).
    pub fn metrics_addr(&self) -> anyhow::Result<String> {
        let port = crate::port_in(&self.conf, "metricsPromExporterPort")?;
        Ok(format!("{}:{port}", self.host))
    }

    fn spawn(
        dir: &Path,
        id: &str,
        conf: &Path,
        namespace: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Process> {
        Process::spawn_in(
            id,
            &binary("mqbroker"),
            &["-c", conf.to_str().context("utf-8 path")?],
            // A fresh log per start: a restart keeps the killed run's log to read.
            dir.join(format!("{id}-{}.log", unique_suffix())),
            namespace,
            env,
        )
    }

    /// Starts the member again on its config and data (after a kill or a stop) and waits
    /// until it listens.
    pub fn restart(&mut self) -> Result<()> {
        self.process.kill();
        self.process = GroupMember::spawn(
            &self.dir,
            &self.id,
            &self.conf,
            self.namespace.as_deref(),
            &self.env,
        )?;
        wait_started_on(&mut self.process, &self.host, self.port)
    }

    /// Whether any of the member's CommitLog segment files holds `needle` (the raft log:
    /// truncated entries are zeroed, so bytes a member no longer holds are not found).
    pub fn commit_log_contains(&self, needle: &[u8]) -> Result<bool> {
        let Ok(entries) = std::fs::read_dir(&self.store_dir) else {
            return Ok(false);
        };
        for entry in entries {
            let raft_dir = entry?.path();
            let is_raft_dir = raft_dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dledger-"));
            if is_raft_dir && dir_contains(&raft_dir.join("data").join("data"), needle, 0)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Flips one byte of the first occurrence of `needle` in the member's CommitLog
    /// segments (a bit rot under a stopped member); whether it was found.
    pub fn corrupt_commit_log(&self, needle: &[u8]) -> Result<bool> {
        let Ok(entries) = std::fs::read_dir(&self.store_dir) else {
            return Ok(false);
        };
        for entry in entries {
            let data = entry?.path().join("data").join("data");
            let Ok(segments) = std::fs::read_dir(&data) else {
                continue;
            };
            for segment in segments {
                let path = segment?.path();
                let mut bytes = std::fs::read(&path)?;
                if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                    bytes[at] ^= 0x20;
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("write {}", path.display()))?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Kills the member, deletes its whole store (CommitLog, queues, metadata, raft term and
    /// vote) and starts it again: a node with a replaced disk.
    pub fn wipe_and_restart(&mut self) -> Result<()> {
        self.process.kill();
        if self.store_dir.exists() {
            std::fs::remove_dir_all(&self.store_dir)
                .with_context(|| format!("wipe {}", self.store_dir.display()))?;
        }
        self.restart()
    }
}

/// Runs `mqadmin` with `args`; its standard output when it succeeds.
fn mqadmin(args: &[&str]) -> Result<String> {
    let (ok, stdout, stderr) = crate::run_mqadmin(args);
    if !ok {
        bail!("mqadmin {args:?} failed: {stdout}{stderr}");
    }
    Ok(stdout)
}

/// A running group.
pub struct BrokerGroup {
    /// `brokerName` and `dLegerGroup`.
    pub name: String,
    pub members: Vec<GroupMember>,
}

impl BrokerGroup {
    /// Three members registering with `namesrv` as broker `name`; `extra` config entries are
    /// appended to every member's file (later keys win).
    pub fn start(
        dir: &Path,
        name: &str,
        namesrv: &str,
        extra: &[(&str, String)],
    ) -> Result<BrokerGroup> {
        Self::start_sized(dir, name, namesrv, 3, extra)
    }

    pub fn start_sized(
        dir: &Path,
        name: &str,
        namesrv: &str,
        size: usize,
        extra: &[(&str, String)],
    ) -> Result<BrokerGroup> {
        let placement = Placement {
            store_root: dir.to_path_buf(),
            host: None,
            env: Vec::new(),
        };
        Self::start_placed(dir, &vec![placement; size], name, namesrv, extra)
    }

    /// One member per placement (configs and logs in `dir`); `namesrv` as the members
    /// reach it (from hosts of their own, the network's gateway).
    pub fn start_placed(
        dir: &Path,
        placements: &[Placement],
        name: &str,
        namesrv: &str,
        extra: &[(&str, String)],
    ) -> Result<BrokerGroup> {
        let host_of = |i: usize| {
            placements[i]
                .host
                .as_ref()
                .map_or_else(|| "127.0.0.1".to_owned(), |h| h.ip.clone())
        };
        retry_on_port_clash(|| {
            let raft_ports: Vec<u16> = placements.iter().map(|_| free_port()).collect();
            let peers = raft_ports
                .iter()
                .enumerate()
                .map(|(i, port)| format!("n{i}-{}:{port}", host_of(i)))
                .collect::<Vec<_>>()
                .join(";");
            let mut members = Vec::new();
            for (i, raft_port) in raft_ports.iter().enumerate() {
                let id = format!("n{i}");
                let port = free_broker_port();
                let conf = dir.join(format!("{name}-{id}.conf"));
                let store_dir = placements[i].store_root.join(format!("{name}-{id}"));
                let host = host_of(i);
                let namespace = placements[i].host.as_ref().map(|h| h.namespace.clone());
                let mut entries = vec![
                    ("brokerClusterName", "RaftCluster".to_owned()),
                    ("brokerName", name.to_owned()),
                    ("listenPort", port.to_string()),
                    ("grpcServerPort", free_port().to_string()),
                    ("metricsPromExporterPort", free_port().to_string()),
                    ("namesrvAddr", namesrv.to_owned()),
                    ("brokerIP1", host.clone()),
                    ("bindAddress", host.clone()),
                    ("storePathRootDir", store_dir.display().to_string()),
                    ("enableDLegerCommitLog", "true".to_owned()),
                    ("dLegerGroup", name.to_owned()),
                    ("dLegerPeers", peers.clone()),
                    ("dLegerSelfId", id.clone()),
                    ("mapedFileSizeCommitLog", TEST_SEGMENT_BYTES.to_string()),
                    // A segment must hold the largest message.
                    ("maxMessageSize", (1024 * 1024).to_string()),
                    // Test clients poll routes every second or so, not every 30 s.
                    ("masterShutdownForwardMs", "2000".to_owned()),
                ];
                entries.extend(crate::TEST_STORE_SETTINGS.map(|(k, v)| (k, v.to_string())));
                entries.extend(extra.iter().cloned());
                write_conf(&conf, &entries)?;
                let env = placements[i].env.clone();
                let process = GroupMember::spawn(dir, &id, &conf, namespace.as_deref(), &env)?;
                members.push(GroupMember {
                    id,
                    port,
                    raft_port: *raft_port,
                    conf,
                    store_dir,
                    process,
                    dir: dir.to_path_buf(),
                    host,
                    namespace,
                    env,
                });
            }
            for member in &mut members {
                wait_started_on(&mut member.process, &member.host, member.port)?;
            }
            Ok(BrokerGroup {
                name: name.to_owned(),
                members,
            })
        })
    }

    /// A rolling restart as operators run one: each member in turn stopped with SIGTERM (a
    /// master first hands off and forwards for its `masterShutdownForwardMs`), started
    /// again, and given `settle` before the next one goes. Returns how long it all took.
    pub fn rolling_restart(
        &mut self,
        stop_timeout: Duration,
        settle: Duration,
    ) -> Result<Duration> {
        let started = std::time::Instant::now();
        for member in &mut self.members {
            if !member.process.terminate(stop_timeout) {
                bail!(
                    "{} did not stop on SIGTERM within {stop_timeout:?}",
                    member.id
                );
            }
            member.restart()?;
            std::thread::sleep(settle);
        }
        Ok(started.elapsed())
    }

    /// Starts one more member, `n<k>` on 127.0.0.1, configured the way an operator adds one
    /// to a running group: the first member's settings, its own ports and store, and
    /// `dLegerPeers` naming the group's members and itself. The group counts it only once
    /// `mqadmin addGroupMember` adds it. Returns its index in `members`.
    pub fn start_joiner(&mut self, dir: &Path) -> Result<usize> {
        let first = self.members.first().context("a group has members")?;
        let text = std::fs::read_to_string(&first.conf)
            .with_context(|| format!("read {}", first.conf.display()))?;
        let k = self.members.len();
        let id = format!("n{k}");
        let raft_port = free_port();
        let port = free_broker_port();
        let store_dir = dir.join(format!("{}-{id}", self.name));
        let conf = dir.join(format!("{}-{id}.conf", self.name));
        let mut entries: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = match key {
                "listenPort" => port.to_string(),
                "grpcServerPort" | "metricsPromExporterPort" => free_port().to_string(),
                "storePathRootDir" => store_dir.display().to_string(),
                "dLegerSelfId" => id.clone(),
                "dLegerPeers" => format!("{value};{id}-127.0.0.1:{raft_port}"),
                _ => value.to_owned(),
            };
            entries.push((key.to_owned(), value));
        }
        let entries: Vec<(&str, String)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        write_conf(&conf, &entries)?;
        let mut process = GroupMember::spawn(dir, &id, &conf, None, &[])?;
        wait_started_on(&mut process, "127.0.0.1", port)?;
        self.members.push(GroupMember {
            id,
            port,
            raft_port,
            conf,
            store_dir,
            process,
            dir: dir.to_path_buf(),
            host: "127.0.0.1".to_owned(),
            namespace: None,
            env: Vec::new(),
        });
        Ok(k)
    }

    /// Replaces the member at client address `master` while the group runs, the way an
    /// operator does it with `mqadmin` (name server `namesrv`): a new member started and
    /// added, waited for until it votes, then `master` removed (leadership moves off it
    /// first) and stopped with SIGTERM. Returns the new member's index.
    pub fn replace_member_online(
        &mut self,
        dir: &Path,
        namesrv: &str,
        master: &str,
    ) -> Result<usize> {
        let leaving = self.index_of(master).context("the master is no member")?;
        let joiner = self.start_joiner(dir)?;
        let node = self.members[joiner].id.clone();
        let raft_addr = format!("127.0.0.1:{}", self.members[joiner].raft_port);
        let name = self.name.clone();
        mqadmin(&[
            "addGroupMember",
            "-n",
            namesrv,
            "-b",
            &name,
            "-i",
            &node,
            "-a",
            &raft_addr,
        ])?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let rows = mqadmin(&["getBrokerGroup", "-n", namesrv, "-b", &name, "--json"])?;
            let rows: Vec<serde_json::Value> = serde_json::from_str(&rows)
                .with_context(|| format!("getBrokerGroup --json printed {rows}"))?;
            let votes = |id: &str| rows.iter().any(|r| r["nodeId"] == id && r["voter"] == true);
            if votes(&node) {
                break;
            }
            if std::time::Instant::now() >= deadline {
                bail!("{node} did not become a voter within 60 s: {rows:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let leaving_node = self.members[leaving].id.clone();
        mqadmin(&[
            "removeGroupMember",
            "-n",
            namesrv,
            "-b",
            &name,
            "-i",
            &leaving_node,
        ])?;
        if !self.members[leaving]
            .process
            .terminate(Duration::from_secs(60))
        {
            bail!("{leaving_node} did not stop on SIGTERM after its removal");
        }
        Ok(joiner)
    }

    /// The member whose client address is `addr`.
    pub fn index_of(&self, addr: &str) -> Option<usize> {
        self.members.iter().position(|m| m.addr() == addr)
    }

    pub fn member_mut(&mut self, addr: &str) -> Option<&mut GroupMember> {
        self.members.iter_mut().find(|m| m.addr() == addr)
    }
}

/// The master the name servers list for broker `name`, if any.
pub async fn master_of(admin: &Admin, name: &str) -> Option<String> {
    let info = admin.cluster_info().await.ok()?;
    info.broker_addr_table
        .get(name)?
        .master_addr()
        .map(str::to_owned)
}

/// Waits (bounded) until the name servers list a master for `name` other than `not`.
pub async fn wait_for_master(
    admin: &Admin,
    name: &str,
    not: Option<&str>,
    timeout: Duration,
) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(addr) = master_of(admin, name).await {
            if Some(addr.as_str()) != not {
                return Ok(addr);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no (new) master of {name} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the member at `addr` applied group `name`'s commit index as its
/// master reports it, then fails unless each of the member's queues of `topic` holds
/// exactly what `queues` (read through a consumer) holds.
pub async fn wait_caught_up(
    raw: &RemotingClient,
    admin: &Admin,
    name: &str,
    addr: &str,
    topic: &str,
    queues: &BTreeMap<i32, Vec<Read>>,
) -> Result<()> {
    let master = wait_for_master(admin, name, None, CATCH_UP_WAIT).await?;
    let status = member_status(raw, &master).await?;
    let commit = status["commitIndex"]
        .as_u64()
        .with_context(|| format!("no commitIndex in {status}"))?;
    wait_applied(raw, addr, commit, CATCH_UP_WAIT).await?;
    for (queue_id, expected) in queues {
        let held = read_member(raw, addr, topic, *queue_id).await?;
        if held.len() != expected.len() {
            bail!(
                "{addr} queue {queue_id} holds {} messages, the consumer read {}",
                held.len(),
                expected.len()
            );
        }
        if &held != expected {
            bail!("{addr} queue {queue_id} differs");
        }
    }
    Ok(())
}

/// How long [`wait_caught_up`] waits for a master and for the member.
const CATCH_UP_WAIT: Duration = Duration::from_secs(60);

/// A member's own raft status (DLEDGER_METADATA), as JSON.
pub async fn member_status(client: &RemotingClient, addr: &str) -> Result<serde_json::Value> {
    let response = client
        .invoke(
            addr,
            RemotingCommand::request(request::DLEDGER_METADATA),
            Duration::from_secs(5),
        )
        .await?;
    if !response.is_success() {
        bail!("{addr} answered {}: {:?}", response.code, response.remark);
    }
    Ok(serde_json::from_slice(&response.body)?)
}

/// Waits (bounded) until the member at `addr` has applied at least `index`.
pub async fn wait_applied(
    client: &RemotingClient,
    addr: &str,
    index: u64,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(status) = member_status(client, addr).await {
            if status["appliedIndex"].as_u64().is_some_and(|a| a >= index) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{addr} did not apply index {index} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a file under `dir` (a few levels deep) holds `needle`.
fn dir_contains(dir: &Path, needle: &[u8], depth: usize) -> Result<bool> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if depth < 4 && dir_contains(&path, needle, depth + 1)? {
                return Ok(true);
            }
        } else {
            let bytes = std::fs::read(&path)?;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
