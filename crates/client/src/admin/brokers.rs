//! Brokers' settings: their running config read and changed, the members of a cluster,
//! and the name servers' write permission of a broker.

use remoting::body::route::MASTER_ID;
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::namesrv::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};

use super::Admin;
use crate::error::{ClientError, Result};

/// A broker group of a cluster: its master, if one is registered, and its other members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMembers {
    pub broker_name: String,
    pub master: Option<String>,
    pub slaves: Vec<String>,
}

impl Admin {
    /// A broker's running config (GET_BROKER_CONFIG, 26): its `key=value` lines in the
    /// broker's order.
    pub async fn broker_config(&self, addr: &str) -> Result<Vec<(String, String)>> {
        let request = RemotingCommand::request(request::GET_BROKER_CONFIG);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        let text = String::from_utf8(response.body.to_vec())
            .map_err(|err| ClientError::malformed(addr, err))?;
        Ok(parse_properties(&text))
    }

    /// Changes settings of a running broker (UPDATE_BROKER_CONFIG, 25, with the body
    /// `key=value\n` per setting, as Java's `Properties` are sent).
    pub async fn update_broker_config(&self, addr: &str, settings: &[(&str, &str)]) -> Result<()> {
        if settings.is_empty() {
            return Err(ClientError::InvalidArgument("no setting to change".into()));
        }
        let mut body = String::new();
        for (key, value) in settings {
            let key = key.trim();
            if key.is_empty() || key.contains(['=', '\n']) || value.contains('\n') {
                return Err(ClientError::InvalidArgument(format!(
                    "`{key}={value}` is not a key=value setting"
                )));
            }
            body.push_str(key);
            body.push('=');
            body.push_str(value.trim());
            body.push('\n');
        }
        let request =
            RemotingCommand::request(request::UPDATE_BROKER_CONFIG).with_body(body.into_bytes());
        self.instance
            .invoke_ok(addr, request, self.timeout())
            .await
            .map(drop)
    }

    /// The broker groups of `cluster` with their master and other members, by name.
    pub async fn cluster_members(&self, cluster: &str) -> Result<Vec<BrokerMembers>> {
        let info = self.cluster_info().await?;
        let names = info.cluster_addr_table.get(cluster).ok_or_else(|| {
            ClientError::NotFound(format!(
                "cluster `{cluster}` is unknown to the name servers"
            ))
        })?;
        let mut members = Vec::new();
        for name in names {
            let Some(broker) = info.broker_addr_table.get(name) else {
                continue;
            };
            members.push(BrokerMembers {
                broker_name: name.clone(),
                master: broker.broker_addrs.get(&MASTER_ID).cloned(),
                slaves: broker
                    .broker_addrs
                    .iter()
                    .filter(|(id, _)| **id != MASTER_ID)
                    .map(|(_, addr)| addr.clone())
                    .collect(),
            });
        }
        members.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        Ok(members)
    }

    /// The name servers this admin client talks to.
    pub fn namesrv_addrs(&self) -> &[String] {
        &self.instance.options().namesrv_addrs
    }

    /// Asks name server `namesrv` to take the write permission from every queue broker
    /// `broker_name` serves (WIPE_WRITE_PERM_OF_BROKER, 205); returns how many topics
    /// changed there.
    pub async fn wipe_write_perm(&self, namesrv: &str, broker_name: &str) -> Result<i32> {
        let header = WipeWritePermOfBrokerRequestHeader {
            broker_name: broker_name.to_owned(),
        };
        let request =
            RemotingCommand::request(request::WIPE_WRITE_PERM_OF_BROKER).with_header(&header);
        let response = self
            .instance
            .invoke_ok(namesrv, request, self.timeout())
            .await?;
        response
            .decode_header::<WipeWritePermOfBrokerResponseHeader>()
            .map(|h| h.wipe_topic_count)
            .map_err(|err| ClientError::malformed(namesrv, err))
    }

    /// Asks name server `namesrv` to make every queue broker `broker_name` serves readable
    /// and writable again (ADD_WRITE_PERM_OF_BROKER, 327); returns how many topics changed.
    pub async fn add_write_perm(&self, namesrv: &str, broker_name: &str) -> Result<i32> {
        let header = AddWritePermOfBrokerRequestHeader {
            broker_name: broker_name.to_owned(),
        };
        let request =
            RemotingCommand::request(request::ADD_WRITE_PERM_OF_BROKER).with_header(&header);
        let response = self
            .instance
            .invoke_ok(namesrv, request, self.timeout())
            .await?;
        response
            .decode_header::<AddWritePermOfBrokerResponseHeader>()
            .map(|h| h.add_topic_count)
            .map_err(|err| ClientError::malformed(namesrv, err))
    }
}

/// `key=value` lines as Java's `Properties` reads the broker's answer: blank and comment
/// lines skipped, the first `=` (or `:`) separates, surrounding blanks trimmed.
fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .map(|line| match line.find(['=', ':']) {
            Some(at) => (
                line[..at].trim().to_owned(),
                line[at + 1..].trim().to_owned(),
            ),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_config_lines_read_like_java_properties() {
        let parsed =
            parse_properties("brokerName=broker-a\n\n# note\nnamesrvAddr = a:1;b:2\nempty=\n");
        assert_eq!(
            parsed,
            [
                ("brokerName".to_owned(), "broker-a".to_owned()),
                ("namesrvAddr".to_owned(), "a:1;b:2".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
    }
}
