//! A broker group's followers answer gRPC too: what only the master may do (sends, pops,
//! acks) is handed to it over the remoting protocol and its answer passed back, so a 5.x
//! client given every member's endpoint keeps working whichever member it reaches and
//! through a failover, without waiting for a route refresh.

use std::future::Future;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::response;
use remoting::command::RemotingCommand;
use tokio::sync::OnceCell;
use tracing::debug;

use crate::context::BrokerContext;

/// How long a looked-up master address is trusted.
const MASTER_CACHE: Duration = Duration::from_secs(1);
/// Added to what the request itself may take (a pop's long polling).
const FORWARD_MARGIN: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct MasterRelay {
    client: OnceCell<RemotingClient>,
    master: Mutex<Option<(String, Instant)>>,
}

impl MasterRelay {
    /// Runs `command` here on a master or a standalone broker (`local`), else on the
    /// group's master. `takes` is how long the command may take there.
    pub async fn run<F, Fut>(
        &self,
        ctx: &BrokerContext,
        command: RemotingCommand,
        takes: Duration,
        local: F,
    ) -> RemotingCommand
    where
        F: FnOnce(RemotingCommand) -> Fut,
        Fut: Future<Output = RemotingCommand>,
    {
        if ctx.group.is_none() || ctx.role.is_master() {
            return local(command).await;
        }
        let Some(master) = self.master(ctx).await else {
            return RemotingCommand::error_to(
                &command,
                response::SERVICE_NOT_AVAILABLE,
                "the broker group has no master now; try again",
            );
        };
        let client = self
            .client
            .get_or_init(|| async { RemotingClient::new(ClientConfig::default()) })
            .await;
        let mut forwarded = command.clone();
        forwarded.opaque = remoting::command::next_opaque();
        match client
            .invoke(&master, forwarded, takes + FORWARD_MARGIN)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                debug!(%master, error = %e, "forwarding to the master failed");
                *self.master.lock() = None;
                RemotingCommand::error_to(
                    &command,
                    response::SERVICE_NOT_AVAILABLE,
                    format!("the master {master} did not answer: {e}"),
                )
            }
        }
    }

    /// The group's master as the name servers list it (this broker registers under its
    /// own name as a topic, so that topic's route names it).
    async fn master(&self, ctx: &BrokerContext) -> Option<String> {
        if let Some((addr, at)) = self.master.lock().clone() {
            if at.elapsed() < MASTER_CACHE {
                return Some(addr);
            }
        }
        let route = ctx.routes.route(&ctx.config.broker_name).await?;
        let master = route
            .broker_datas
            .iter()
            .find(|b| b.broker_name == ctx.config.broker_name)?
            .master_addr()?
            .to_owned();
        if master == ctx.broker_addr {
            return None;
        }
        *self.master.lock() = Some((master.clone(), Instant::now()));
        Some(master)
    }
}
