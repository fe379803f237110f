//! Hosts of their own for a group's members: Linux network namespaces joined by a bridge,
//! so a test can cut the links between two members (a partition, one way or both) while
//! the test itself, its clients and its name server, in the test's own namespace, still
//! reach every member.
//!
//! A cut is a blackhole route on the sending host: packets from it to the other host are
//! dropped, as a failed link or a firewall drops them. On a TCP connection that means the
//! sender's data and its acknowledgements of the other side's data are lost; the other
//! side's data still arrives (until its connection gives up for want of acknowledgements).
//!
//! Needs root and iproute2's `ip` (CI runs as root; the machine image has iproute2).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

/// One host: a network namespace and its address on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub namespace: String,
    pub ip: String,
}

/// The bridge, its hosts and the cuts in place; everything is removed when dropped.
pub struct Network {
    bridge: String,
    gateway: String,
    hosts: Vec<Host>,
}

/// Networks of this test process (each gets its own subnet and names).
static NETWORKS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("run `ip` (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn ip_in(namespace: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["netns", "exec", namespace, "ip"];
    full.extend_from_slice(args);
    ip(&full)
}

impl Network {
    /// Whether this machine lets the test make namespaces (root with iproute2).
    pub fn available() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        root && ip(&["netns", "list"]).is_ok()
    }

    /// `hosts` namespaces on a new bridge.
    pub fn create(hosts: usize) -> Result<Network> {
        // A subnet and names no other network of a concurrent test run is likely to hold;
        // leftovers of a killed run with the same names are removed first.
        let slot = (std::process::id() + NETWORKS.fetch_add(1, Ordering::Relaxed)) % 200 + 20;
        let bridge = format!("rmqbr{slot}");
        let _ = ip(&["link", "del", &bridge]);
        let gateway = format!("10.78.{slot}.254");
        let mut network = Network {
            bridge: bridge.clone(),
            gateway: gateway.clone(),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..hosts {
            let namespace = format!("rmq{slot}-{i}");
            let veth = format!("rmq{slot}v{i}");
            let _ = ip(&["netns", "del", &namespace]);
            ip(&["netns", "add", &namespace])?;
            let host = Host {
                namespace: namespace.clone(),
                ip: format!("10.78.{slot}.{}", i + 1),
            };
            network.hosts.push(host.clone());
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip_in(
                &namespace,
                &["addr", "add", &format!("{}/24", host.ip), "dev", "eth0"],
            )?;
            ip_in(&namespace, &["link", "set", "eth0", "up"])?;
            ip_in(&namespace, &["link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The test's own address on the bridge: where hosts reach its name server.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// Drops every packet from host `from` to host `to`.
    pub fn cut(&self, from: usize, to: usize) -> Result<()> {
        let target = format!("{}/32", self.hosts[to].ip);
        ip_in(
            &self.hosts[from].namespace,
            &["route", "add", "blackhole", &target],
        )
    }

    /// Undoes [`cut`](Self::cut); a link that was not cut is left as it is.
    pub fn heal(&self, from: usize, to: usize) {
        let target = format!("{}/32", self.hosts[to].ip);
        let _ = ip_in(
            &self.hosts[from].namespace,
            &["route", "del", "blackhole", &target],
        );
    }

    /// Every link whole again.
    pub fn heal_all(&self) {
        for from in 0..self.hosts.len() {
            for to in 0..self.hosts.len() {
                if from != to {
                    self.heal(from, to);
                }
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.namespace]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
