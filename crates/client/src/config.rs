//! Options shared by everything that talks to a cluster: name servers, identity, timers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use remoting::client::ClientConfig;

use crate::error::{ClientError, Result};

/// How a client finds and talks to a cluster. The defaults are RocketMQ's.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Name server addresses (`host:port`); tried in turn until one answers.
    pub namesrv_addrs: Vec<String>,
    /// Part of the client id (`ip@instance`). Consumers of one group in one process need
    /// distinct instances; the default (`pid#nanos`) is distinct per client.
    pub instance_name: Option<String>,
    /// The address reported in the client id. Detected from the route to the first name
    /// server when unset.
    pub client_ip: Option<IpAddr>,
    /// Budget for one ordinary request (Java's `sendMsgTimeout` and admin calls: 3 s).
    pub request_timeout: Duration,
    /// How often routes of the topics in use are refreshed (Java: 30 s).
    pub poll_name_server_interval: Duration,
    /// How often every broker hears from this client (Java: 30 s; brokers expire clients
    /// after 120 s of silence).
    pub heartbeat_interval: Duration,
    /// A forced route refresh (after a failed send) happens at most this often per topic.
    pub min_route_refresh_interval: Duration,
    /// Transport limits.
    pub remoting: ClientConfig,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            namesrv_addrs: Vec::new(),
            instance_name: None,
            client_ip: None,
            request_timeout: Duration::from_secs(3),
            poll_name_server_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(30),
            min_route_refresh_interval: Duration::from_millis(200),
            remoting: ClientConfig::default(),
        }
    }
}

impl ClientOptions {
    /// Options for the name servers in `addrs`, RocketMQ style: `host:port;host:port`.
    pub fn new(addrs: &str) -> Self {
        ClientOptions {
            namesrv_addrs: parse_namesrv_addrs(addrs),
            ..ClientOptions::default()
        }
    }

    /// Signs every request with these ACL 1.0 credentials (RocketMQ's `AclClientRPCHook`).
    pub fn with_credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        self.remoting.credentials = Some(remoting::acl::Credentials::new(access_key, secret_key));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.namesrv_addrs.is_empty() {
            return Err(ClientError::InvalidArgument(
                "no name server address configured".into(),
            ));
        }
        for (name, value) in [
            ("request_timeout", self.request_timeout),
            ("poll_name_server_interval", self.poll_name_server_interval),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            if value.is_zero() {
                return Err(ClientError::InvalidArgument(format!("{name} must be > 0")));
            }
        }
        Ok(())
    }

    /// The client id brokers know this client by: `ip@instance`, like Java's.
    pub(crate) fn client_id(&self) -> String {
        let ip = self
            .client_ip
            .unwrap_or_else(|| detect_local_ip(self.namesrv_addrs.first().map(String::as_str)));
        let instance = self.instance_name.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}#{nanos}", std::process::id())
        });
        format!("{ip}@{instance}")
    }

    /// The address reported for this client (for unique message ids).
    pub(crate) fn local_ip(&self) -> IpAddr {
        self.client_ip
            .unwrap_or_else(|| detect_local_ip(self.namesrv_addrs.first().map(String::as_str)))
    }
}

/// Splits `a:1;b:2` (also tolerating commas and spaces) into addresses.
pub fn parse_namesrv_addrs(addrs: &str) -> Vec<String> {
    addrs
        .split([';', ',', ' '])
        .map(str::trim)
        .filter(|addr| !addr.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The local address the OS would use to reach `peer`: a UDP "connect" picks a route
/// without sending anything. Falls back to 127.0.0.1.
fn detect_local_ip(peer: Option<&str>) -> IpAddr {
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Some(peer) = peer.and_then(|p| p.parse::<SocketAddr>().ok()) else {
        return fallback;
    };
    let bind: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(bind)
        .and_then(|socket| {
            socket.connect(peer)?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rocketmq_address_lists() {
        assert_eq!(
            parse_namesrv_addrs("127.0.0.1:9876; 10.0.0.2:9876;"),
            ["127.0.0.1:9876", "10.0.0.2:9876"]
        );
        assert!(parse_namesrv_addrs(" ; ").is_empty());
    }

    #[test]
    fn client_ids_are_ip_at_instance_and_distinct_by_default() {
        let options = ClientOptions::new("127.0.0.1:9876");
        let first = options.client_id();
        assert!(first.starts_with("127.0.0.1@"), "{first}");
        std::thread::sleep(Duration::from_millis(1));
        assert_ne!(first, options.client_id());
        let named = ClientOptions {
            instance_name: Some("orders".into()),
            ..options
        };
        assert_eq!(named.client_id(), "127.0.0.1@orders");
    }

    #[test]
    fn validation_rejects_missing_name_servers() {
        assert!(ClientOptions::default().validate().is_err());
        assert!(ClientOptions::new("127.0.0.1:1").validate().is_ok());
    }
}

/// The ACL 1.0 credentials `mq` and `mqadmin` take (`--access-key` / `--secret-key`, or
/// `ROCKETMQ_ACCESS_KEY` / `ROCKETMQ_SECRET_KEY`), else `accessKey` / `secretKey` of
/// `$ROCKETMQ_HOME/conf/tools.yml` (where RocketMQ's mqadmin reads them). The fields'
/// names differ from the sub-commands' own `accessKey` (the account `updateAclConfig`
/// edits): clap tells arguments apart by them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CredentialArgs {
    /// ACL access key this tool signs its requests with
    #[arg(long = "access-key", env = "ROCKETMQ_ACCESS_KEY", global = true)]
    pub auth_access_key: Option<String>,
    /// ACL secret key this tool signs its requests with
    #[arg(
        long = "secret-key",
        env = "ROCKETMQ_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub auth_secret_key: Option<String>,
}

impl CredentialArgs {
    /// `options` signing with the credentials given, if any.
    pub fn apply(&self, options: ClientOptions) -> Result<ClientOptions> {
        let (access_key, secret_key) = match (&self.auth_access_key, &self.auth_secret_key) {
            (Some(ak), Some(sk)) => (ak.clone(), sk.clone()),
            (None, None) => match tools_yml_credentials() {
                Some(found) => found,
                None => return Ok(options),
            },
            _ => {
                return Err(ClientError::InvalidArgument(
                    "give both --access-key and --secret-key (or neither)".into(),
                ))
            }
        };
        Ok(options.with_credentials(&access_key, &secret_key))
    }
}

fn tools_yml_credentials() -> Option<(String, String)> {
    let home = std::env::var_os("ROCKETMQ_HOME")?;
    let path = std::path::Path::new(&home).join("conf").join("tools.yml");
    let text = std::fs::read_to_string(path).ok()?;
    let doc = yaml_rust2::YamlLoader::load_from_str(&text)
        .ok()?
        .into_iter()
        .next()?;
    let value = |key: &str| match &doc[key] {
        yaml_rust2::Yaml::String(s) => Some(s.clone()),
        yaml_rust2::Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    };
    Some((value("accessKey")?, value("secretKey")?))
}
