//! A topic's route as the name servers know it (every broker group serving it), for
//! requests a broker answers for the whole cluster (QUERY_ASSIGNMENT).

use std::time::Duration;

use remoting::body::route::TopicRouteData;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::namesrv::GetRouteInfoRequestHeader;
use tokio::sync::OnceCell;
use tracing::debug;

/// How long one name server may take to answer.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct RouteLookup {
    addrs: Vec<String>,
    /// How the lookups are signed (a name server may run ACL).
    client_config: ClientConfig,
    client: OnceCell<RemotingClient>,
}

impl RouteLookup {
    pub fn new(addrs: Vec<String>, client_config: ClientConfig) -> RouteLookup {
        RouteLookup {
            addrs,
            client_config,
            client: OnceCell::new(),
        }
    }

    /// The topic's route from the first name server that knows it; `None` when none does
    /// (or none answers).
    pub async fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let client = self
            .client
            .get_or_init(|| async { RemotingClient::new(self.client_config.clone()) })
            .await;
        for addr in &self.addrs {
            let lookup = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
                &GetRouteInfoRequestHeader {
                    topic: topic.to_owned(),
                    accept_standard_json_only: Some(true),
                },
            );
            match client.invoke(addr, lookup, LOOKUP_TIMEOUT).await {
                Ok(answer) if answer.code == response::SUCCESS => {
                    match TopicRouteData::decode(&answer.body) {
                        Ok(route) => return Some(route),
                        Err(e) => debug!(namesrv = %addr, %topic, error = %e, "route unreadable"),
                    }
                }
                Ok(answer) => {
                    debug!(namesrv = %addr, %topic, code = answer.code, "no route")
                }
                Err(e) => debug!(namesrv = %addr, %topic, error = %e, "route lookup failed"),
            }
        }
        None
    }
}
