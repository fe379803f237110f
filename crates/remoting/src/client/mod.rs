//! The client: request/response calls to other servers (name servers, brokers, peers).
//!
//! One multiplexed connection per address, connected on first use and replaced after it
//! fails. Each connection runs on the machinery the server uses too ([`crate::connection`]):
//! requests are matched to responses by opaque, and requests the server sends us (e.g. a
//! broker's CHECK_TRANSACTION_STATE) go to an optional handler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::command::RemotingCommand;
use crate::connection::{
    self, duration_ms, CallError, ConnectionHandle, ConnectionSettings, DynProcessor, RejectAll,
    RequestProcessor, StopSignals,
};
use crate::frame::{RemotingCodec, DEFAULT_MAX_FRAME_LENGTH};

/// Limits and timeouts of a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Java's `connectTimeoutMillis` default is 3 s.
    pub connect_timeout: Duration,
    /// Largest frame accepted or sent, including the 4-byte length field.
    pub max_frame_length: usize,
    /// Requests awaiting a response per connection (Java's async limit is 65535).
    pub max_pending_requests_per_connection: usize,
    /// Frames waiting to be written per connection; when full, callers wait.
    pub write_queue_frames_per_connection: usize,
    /// Bytes waiting to be written per connection; when full, callers wait.
    pub write_queue_bytes_per_connection: usize,
    /// Requests from the server handled at once per connection.
    pub max_in_flight_requests_per_connection: usize,
    /// A connection whose peer accepts no bytes for this long is closed.
    pub write_stall_timeout: Duration,
    /// ACL 1.0 credentials: every request sent through [`RemotingClient::invoke`] and
    /// [`RemotingClient::invoke_oneway`] is signed with them (RocketMQ's
    /// `AclClientRPCHook`).
    pub credentials: Option<crate::acl::Credentials>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            max_pending_requests_per_connection: 65_535,
            write_queue_frames_per_connection: 4096,
            write_queue_bytes_per_connection: 64 * 1024 * 1024,
            max_in_flight_requests_per_connection: 256,
            write_stall_timeout: Duration::from_secs(30),
            credentials: None,
        }
    }
}

/// A client for calling servers by address (`"host:port"`). Cheap to clone; clones share
/// connections. Dropping the last clone closes its connections.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: ClientConfig,
    settings: ConnectionSettings,
    handler: Arc<DynProcessor>,
    /// One slot per address; the cell makes concurrent first callers share one connect.
    connections: Mutex<HashMap<String, Arc<OnceCell<ConnectionHandle>>>>,
    stop: StopSignals,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.stop.abort.cancel();
    }
}

impl RemotingClient {
    /// A client that answers requests from servers with REQUEST_CODE_NOT_SUPPORTED.
    pub fn new(config: ClientConfig) -> Self {
        RemotingClient::with_request_handler(config, Arc::new(RejectAll))
    }

    /// A client whose connections hand requests from servers (e.g.
    /// NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE) to `handler`.
    pub fn with_request_handler<P: RequestProcessor>(
        config: ClientConfig,
        handler: Arc<P>,
    ) -> Self {
        let settings = ConnectionSettings {
            codec: RemotingCodec::with_max_frame_length(config.max_frame_length),
            max_in_flight_requests: config.max_in_flight_requests_per_connection,
            write_queue_frames: config.write_queue_frames_per_connection,
            write_queue_bytes: config.write_queue_bytes_per_connection,
            // Requests from servers are small (callbacks); the frame limit bounds each.
            max_in_flight_request_bytes: config.max_frame_length,
            max_pending_invocations: config.max_pending_requests_per_connection,
            // The peer decides when our connection is idle; we keep ours while in use.
            idle_timeout: None,
            write_stall_timeout: config.write_stall_timeout,
            // A client reads from servers it chose: no shared budget, no frame deadline.
            partial_frame_budget: None,
            frame_read_timeout: None,
        };
        RemotingClient {
            inner: Arc::new(ClientInner {
                config,
                settings,
                handler: Arc::new(DynProcessor::new(handler)),
                connections: Mutex::new(HashMap::new()),
                stop: StopSignals::new(),
            }),
        }
    }

    fn sign(&self, request: &mut RemotingCommand) {
        if let Some(credentials) = &self.inner.config.credentials {
            credentials.sign(request);
        }
    }

    /// Sends `request` to `addr` and waits for its response. `timeout` covers connecting
    /// (if needed) and the exchange.
    pub async fn invoke(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, CallError> {
        self.sign(&mut request);
        let started = Instant::now();
        let conn = self.connect_within(addr, timeout).await?;
        conn.invoke(request, timeout.saturating_sub(started.elapsed()))
            .await
            .map_err(|error| report_whole_timeout(error, timeout))
    }

    /// Sends `request` to `addr` as one-way (no response). `timeout` covers connecting and
    /// waiting for room in the write queue.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), CallError> {
        self.sign(&mut request);
        let started = Instant::now();
        let conn = self.connect_within(addr, timeout).await?;
        conn.invoke_oneway(request, timeout.saturating_sub(started.elapsed()))
            .await
            .map_err(|error| report_whole_timeout(error, timeout))
    }

    /// The connection to `addr`, connecting if there is none or it has closed.
    pub async fn connection(&self, addr: &str) -> Result<ConnectionHandle, CallError> {
        self.connect_within(addr, self.inner.config.connect_timeout)
            .await
    }

    /// Closes the connection to `addr`, if any; the next call reconnects.
    pub fn close(&self, addr: &str) {
        let slot = self.inner.connections().remove(addr);
        if let Some(conn) = slot.as_ref().and_then(|slot| slot.get()) {
            conn.close();
        }
    }

    /// Closes every connection and fails later calls with `Shutdown`.
    pub fn shutdown(&self) {
        self.inner.stop.abort.cancel();
        let slots: Vec<_> = self
            .inner
            .connections()
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for conn in slots.iter().filter_map(|slot| slot.get()) {
            conn.close();
        }
    }

    async fn connect_within(
        &self,
        addr: &str,
        limit: Duration,
    ) -> Result<ConnectionHandle, CallError> {
        if self.inner.stop.abort.is_cancelled() {
            return Err(CallError::Shutdown);
        }
        let slot = self.inner.slot(addr);
        let limit = limit.min(self.inner.config.connect_timeout);
        let connect = slot.get_or_try_init(|| self.inner.connect(addr));
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(conn)) => Ok(conn.clone()),
            Ok(Err(error)) => {
                self.inner.forget(addr, &slot);
                Err(error)
            }
            Err(_) => Err(CallError::ConnectTimeout {
                addr: addr.to_owned(),
                timeout_ms: duration_ms(limit),
            }),
        }
    }
}

/// A timeout names the caller's budget, not what was left of it after connecting.
fn report_whole_timeout(error: CallError, timeout: Duration) -> CallError {
    match error {
        CallError::Timeout { .. } => CallError::Timeout {
            timeout_ms: duration_ms(timeout),
        },
        other => other,
    }
}

impl ClientInner {
    fn connections(&self) -> MutexGuard<'_, HashMap<String, Arc<OnceCell<ConnectionHandle>>>> {
        // Every update of the map is a single call, so a poisoned map is still consistent.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot for `addr`, replacing one whose connection has closed.
    fn slot(&self, addr: &str) -> Arc<OnceCell<ConnectionHandle>> {
        let mut connections = self.connections();
        if let Some(slot) = connections.get(addr) {
            if !slot.get().is_some_and(ConnectionHandle::is_closed) {
                return Arc::clone(slot);
            }
        }
        let slot = Arc::new(OnceCell::new());
        connections.insert(addr.to_owned(), Arc::clone(&slot));
        slot
    }

    /// Drops a slot whose connect failed, unless it was already replaced.
    fn forget(&self, addr: &str, slot: &Arc<OnceCell<ConnectionHandle>>) {
        let mut connections = self.connections();
        if connections
            .get(addr)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            connections.remove(addr);
        }
    }

    async fn connect(&self, addr: &str) -> Result<ConnectionHandle, CallError> {
        let timeout = self.config.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(CallError::ConnectFailed {
                    addr: addr.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(CallError::ConnectTimeout {
                    addr: addr.to_owned(),
                    timeout_ms: duration_ms(timeout),
                })
            }
        };
        connection::spawn(
            stream,
            Arc::clone(&self.handler),
            &self.settings,
            self.stop.clone(),
            None,
        )
        .map_err(|source| CallError::ConnectFailed {
            addr: addr.to_owned(),
            source,
        })
    }
}
