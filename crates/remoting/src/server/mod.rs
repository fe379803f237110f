//! The server: accepts TCP connections and hands every request to a processor. Each
//! accepted socket runs on [`crate::connection`], the machinery the client uses too; the
//! server adds the accept loop, the connection limit and graceful shutdown.
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use remoting::command::RemotingCommand;
//! # use remoting::connection::{ConnectionHandle, RequestProcessor};
//! # use remoting::server::{RemotingServer, ServerConfig};
//! struct Echo;
//! impl RequestProcessor for Echo {
//!     async fn process(&self, _conn: &ConnectionHandle, request: RemotingCommand)
//!         -> Option<RemotingCommand> {
//!         Some(RemotingCommand::success_to(&request).with_body(request.body.clone()))
//!     }
//! }
//! # async fn run() -> std::io::Result<()> {
//! let server = RemotingServer::bind("127.0.0.1:0", ServerConfig::default(), Arc::new(Echo)).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::connection::{
    self, ConnectionSettings, PartialFrameBudget, RequestProcessor, StopSignals,
};
use crate::frame::{RemotingCodec, DEFAULT_MAX_FRAME_LENGTH};

/// After a failed `accept` (e.g. out of file descriptors), wait this long before retrying
/// rather than spinning.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// After the grace period, how long forced closing may take.
const FORCED_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Limits of a server. Every per-connection queue is bounded by one of these.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest frame accepted or sent, including the 4-byte length field.
    pub max_frame_length: usize,
    /// Connections beyond this are closed right after `accept`.
    pub max_connections: usize,
    /// Requests of one connection processed at once; when reached, reading pauses. Held
    /// long-polling pulls count, so this must exceed the queues a client polls at once.
    pub max_in_flight_requests_per_connection: usize,
    /// Bytes of requests processed at once per connection; when reached, reading pauses.
    pub max_in_flight_bytes_per_connection: usize,
    /// Frames waiting to be written per connection; when full, senders wait.
    pub write_queue_frames_per_connection: usize,
    /// Bytes waiting to be written per connection; when full, senders wait.
    pub write_queue_bytes_per_connection: usize,
    /// Server-initiated requests awaiting a client's response, per connection.
    pub max_pending_invocations_per_connection: usize,
    /// A connection that sends nothing for this long is closed (Java: 120 s). Clients
    /// heartbeat every 30 s.
    pub idle_timeout: Option<Duration>,
    /// A connection whose peer accepts no bytes for this long is closed.
    pub write_stall_timeout: Duration,
    /// Bytes all connections together may hold for frames still arriving; a connection
    /// that would go past it is closed (logged). Bounds what stalled half-frames cost.
    pub max_partial_frame_bytes: usize,
    /// A frame that began to arrive must be whole within this, or its connection is
    /// closed (a sender trickling bytes would otherwise hold its buffer forever).
    pub frame_read_timeout: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            max_connections: 10_000,
            max_in_flight_requests_per_connection: 4096,
            max_in_flight_bytes_per_connection: 64 * 1024 * 1024,
            write_queue_frames_per_connection: 4096,
            write_queue_bytes_per_connection: 64 * 1024 * 1024,
            max_pending_invocations_per_connection: 1024,
            idle_timeout: Some(Duration::from_secs(120)),
            write_stall_timeout: Duration::from_secs(30),
            max_partial_frame_bytes: 256 * 1024 * 1024,
            frame_read_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl ServerConfig {
    /// The defaults with the limits an operator set (`broker.conf`, `namesrv.conf`).
    pub fn with_limits(limits: &conf::ServerLimits) -> ServerConfig {
        ServerConfig {
            max_connections: limits.max_connections,
            max_partial_frame_bytes: limits.partial_frame_budget_bytes,
            frame_read_timeout: Some(limits.frame_read_timeout),
            idle_timeout: Some(limits.channel_max_idle),
            ..ServerConfig::default()
        }
    }

    fn connection_settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            codec: RemotingCodec::with_max_frame_length(self.max_frame_length),
            max_in_flight_requests: self.max_in_flight_requests_per_connection,
            write_queue_frames: self.write_queue_frames_per_connection,
            write_queue_bytes: self.write_queue_bytes_per_connection,
            max_in_flight_request_bytes: self.max_in_flight_bytes_per_connection,
            max_pending_invocations: self.max_pending_invocations_per_connection,
            idle_timeout: self.idle_timeout,
            write_stall_timeout: self.write_stall_timeout,
            partial_frame_budget: Some(PartialFrameBudget::new(self.max_partial_frame_bytes)),
            frame_read_timeout: self.frame_read_timeout,
        }
    }
}

/// A listening server. Dropping it closes everything at once; [`shutdown`](Self::shutdown)
/// closes gracefully.
pub struct RemotingServer {
    local_addr: SocketAddr,
    stop: StopSignals,
    /// One permit per connection slot; all permits back means every connection is done.
    connection_slots: Arc<Semaphore>,
    max_connections: u32,
    accept_task: Option<JoinHandle<()>>,
}

impl RemotingServer {
    /// Binds `addr` (port 0 picks a free port) and starts accepting.
    pub async fn bind<P: RequestProcessor>(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        processor: Arc<P>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_listener(listener, config, processor)
    }

    /// Starts accepting on an already bound listener. Needs a tokio runtime.
    pub fn from_listener<P: RequestProcessor>(
        listener: TcpListener,
        config: ServerConfig,
        processor: Arc<P>,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let max_connections = u32::try_from(config.max_connections)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let connection_slots = Arc::new(Semaphore::new(max_connections as usize));
        let stop = StopSignals::new();
        let accept_task = tokio::spawn(accept_loop(
            listener,
            config.connection_settings(),
            processor,
            Arc::clone(&connection_slots),
            stop.clone(),
        ));
        info!(%local_addr, "remoting server listening");
        Ok(RemotingServer {
            local_addr,
            stop,
            connection_slots,
            max_connections,
            accept_task: Some(accept_task),
        })
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        (self.max_connections as usize).saturating_sub(self.connection_slots.available_permits())
    }

    /// Stops accepting, stops reading requests, lets requests in flight answer for up to
    /// `grace`, then closes every connection.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.graceful.cancel();
        let all_slots = self.connection_slots.acquire_many(self.max_connections);
        if tokio::time::timeout(grace, all_slots).await.is_err() {
            warn!(local_addr = %self.local_addr, grace_ms = grace.as_millis() as u64,
                "requests still in flight after the grace period; closing connections");
            self.stop.abort.cancel();
            let all_slots = self.connection_slots.acquire_many(self.max_connections);
            let _ = tokio::time::timeout(FORCED_CLOSE_TIMEOUT, all_slots).await;
        }
        self.stop.abort.cancel();
        if let Some(accept_task) = self.accept_task.take() {
            let _ = tokio::time::timeout(FORCED_CLOSE_TIMEOUT, accept_task).await;
        }
        info!(local_addr = %self.local_addr, "remoting server stopped");
    }
}

impl Drop for RemotingServer {
    fn drop(&mut self) {
        self.stop.abort.cancel();
    }
}

async fn accept_loop<P: RequestProcessor>(
    listener: TcpListener,
    settings: ConnectionSettings,
    processor: Arc<P>,
    connection_slots: Arc<Semaphore>,
    stop: StopSignals,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.graceful.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed; retrying shortly");
                tokio::select! {
                    _ = stop.graceful.cancelled() => return,
                    _ = tokio::time::sleep(ACCEPT_RETRY_DELAY) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&connection_slots).try_acquire_owned() else {
            warn!(%peer, "connection limit reached; closing the new connection");
            continue;
        };
        match connection::spawn(
            stream,
            Arc::clone(&processor),
            &settings,
            stop.clone(),
            Some(slot),
        ) {
            Ok(conn) => debug!(conn = conn.id(), %peer, "accepted connection"),
            Err(error) => debug!(%peer, %error, "could not set up an accepted connection"),
        }
    }
}
