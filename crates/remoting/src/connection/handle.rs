//! `ConnectionHandle`: what owners and processors hold of a live connection, to call the
//! peer, send to it, close it or learn when it has closed. The reader and writer tasks
//! share the same state through it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::code::response;
use crate::command::{RemotingCommand, FLAG_ONEWAY, FLAG_RESPONSE};
use crate::frame::RemotingCodec;

use super::error::{duration_ms, CallError};
use super::pending::PendingTable;
use super::writer::{OutboundFrame, WriteQueue};

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// One live (or closed) connection, cheap to clone. Processors receive it with every
/// request; the broker keeps it to call the client back or to learn when it goes away.
#[derive(Clone)]
pub struct ConnectionHandle {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    codec: RemotingCodec,
    queue: WriteQueue,
    pending: Mutex<PendingTable>,
    closed: CancellationToken,
}

impl ConnectionHandle {
    /// The state of a connection just established, with a fresh id. Invocations beyond
    /// `max_pending` (at least one) awaiting a response are refused.
    pub(super) fn new(
        remote_addr: SocketAddr,
        local_addr: SocketAddr,
        codec: RemotingCodec,
        queue: WriteQueue,
        max_pending: usize,
    ) -> Self {
        ConnectionHandle {
            shared: Arc::new(Shared {
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                remote_addr,
                local_addr,
                codec,
                queue,
                pending: Mutex::new(PendingTable::new(max_pending.max(1))),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Process-unique id of this connection.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.shared.remote_addr
    }

    /// Our side's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Sends `request` to the peer and waits for the response with the same opaque.
    ///
    /// Fails with `Timeout` when no response arrives in time (the response, if it comes
    /// later, is dropped), `ConnectionClosed` as soon as the connection closes,
    /// `TooManyPending` when the connection's limit of outstanding invocations is reached.
    /// The request's one-way and response flags are cleared; if its opaque is already
    /// awaited on this connection it gets a fresh one.
    pub async fn invoke(
        &self,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, CallError> {
        request.flag &= !(FLAG_RESPONSE | FLAG_ONEWAY);
        let (reply, response) = oneshot::channel();
        let registration = self.shared.register(&mut request, reply)?;
        let frame = OutboundFrame::encode(&self.shared.codec, &request)?;
        let exchange = async {
            self.shared
                .queue
                .push(frame)
                .await
                .map_err(|_| CallError::ConnectionClosed)?;
            response.await.map_err(|_| CallError::ConnectionClosed)
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                timeout_ms: duration_ms(timeout),
            }),
        };
        drop(registration);
        result
    }

    /// Sends `request` marked one-way; the peer sends no response. `timeout` bounds the
    /// wait for room in the write queue.
    pub async fn invoke_oneway(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), CallError> {
        self.send(request.into_oneway(), timeout).await
    }

    /// Queues any command as it is (e.g. a response produced outside `process`).
    pub async fn send(&self, command: RemotingCommand, timeout: Duration) -> Result<(), CallError> {
        if self.is_closed() {
            return Err(CallError::ConnectionClosed);
        }
        let frame = OutboundFrame::encode(&self.shared.codec, &command)?;
        match tokio::time::timeout(timeout, self.shared.queue.push(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(CallError::ConnectionClosed),
            Err(_) => Err(CallError::Timeout {
                timeout_ms: duration_ms(timeout),
            }),
        }
    }

    /// Whether the connection has closed (or is closing).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Resolves once the connection has closed.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }

    /// Closes the connection: pending invocations fail, queued frames get a short time to
    /// be flushed, the socket is closed.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Number of invocations awaiting a response on this connection.
    pub fn pending_invocations(&self) -> usize {
        self.shared.table().len()
    }

    /// The token cancelled when the connection closes, for the reader and writer tasks to
    /// select on.
    pub(super) fn closed_token(&self) -> CancellationToken {
        self.shared.closed.clone()
    }

    /// Hands a response to its waiter; a response nobody awaits (timed out, or a peer's
    /// reply to a one-way request) is dropped, as Java does.
    pub(super) fn complete(&self, response: RemotingCommand) {
        let waiter = self.shared.table().take(response.opaque);
        match waiter {
            Some(reply) => {
                // The caller may have just timed out; then nobody wants it.
                let _ = reply.send(response);
            }
            None => debug!(
                conn = self.shared.id,
                opaque = response.opaque,
                code = response.code,
                "dropping a response nobody awaits"
            ),
        }
    }

    /// Queues a response, replacing it with a SYSTEM_ERROR if it cannot be encoded (e.g.
    /// too large), so the requester is not left waiting. Waits for room in the write
    /// queue; the writer's stall timeout bounds that wait.
    pub(super) async fn send_response(&self, response: RemotingCommand) {
        let frame = match OutboundFrame::encode(&self.shared.codec, &response) {
            Ok(frame) => frame,
            Err(error) => {
                warn!(conn = self.id(), peer = %self.remote_addr(), code = response.code, %error,
                    "response cannot be encoded; answering SYSTEM_ERROR instead");
                let fallback = RemotingCommand {
                    code: response::SYSTEM_ERROR,
                    opaque: response.opaque,
                    flag: FLAG_RESPONSE,
                    remark: Some(format!("response cannot be encoded: {error}")),
                    ..RemotingCommand::default()
                };
                match OutboundFrame::encode(&self.shared.codec, &fallback) {
                    Ok(frame) => frame,
                    Err(_) => return,
                }
            }
        };
        if self.shared.queue.push(frame).await.is_err() {
            debug!(
                conn = self.id(),
                "connection closed before a response could be sent"
            );
        }
    }
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, PendingTable> {
        // The table stays consistent even if a holder panicked: every update is one call.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(
        self: &Arc<Self>,
        request: &mut RemotingCommand,
        reply: oneshot::Sender<RemotingCommand>,
    ) -> Result<Registration, CallError> {
        let registration = self.table().register(request, reply)?;
        Ok(Registration {
            shared: Arc::clone(self),
            opaque: request.opaque,
            registration,
        })
    }

    fn close(&self) {
        let failed = self.table().close();
        // Dropping the reply senders wakes every waiter with ConnectionClosed.
        drop(failed);
        self.queue.close();
        self.closed.cancel();
    }
}

/// Removes a pending invocation when its caller stops waiting (answered, timed out or
/// cancelled), so abandoned entries never accumulate.
struct Registration {
    shared: Arc<Shared>,
    opaque: i32,
    registration: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.table().forget(self.opaque, self.registration);
    }
}

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("id", &self.shared.id)
            .field("remote_addr", &self.shared.remote_addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Handles are equal when they refer to the same connection.
impl PartialEq for ConnectionHandle {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl Eq for ConnectionHandle {}

impl Hash for ConnectionHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state);
    }
}
