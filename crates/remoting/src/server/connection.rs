//! A framed connection with opaque correlation: the machinery both the server and the
//! client run on every socket.
//!
//! Each connection has two tasks. The reader decodes frames; a response (flag bit 0) is
//! handed to whoever awaits its opaque, a request is given its own task that calls the
//! processor and queues the response. The writer (see `writer`) drains the queue
//! with coalesced writes. Either side of a connection may send requests, so the same code
//! serves server-initiated requests to clients (CHECK_TRANSACTION_STATE, ...) and a
//! client's requests to a server.
//!
//! Every queue is bounded: requests in flight per connection (when full, reading pauses,
//! which pushes back on the peer through TCP), frames waiting to be written, and pending
//! invocations awaiting a response.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::client::ClientError;
use crate::code::response;
use crate::command::{next_opaque, RemotingCommand, FLAG_ONEWAY, FLAG_RESPONSE};
use crate::frame::{DecodeError, RemotingCodec};

use super::processor::RequestProcessor;
use super::writer::{self, budget_units, byte_budget, OutboundFrame, WriteQueue};

/// Initial read buffer per connection; grows for larger frames.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Attempts to find an opaque not already pending before giving up.
const OPAQUE_ATTEMPTS_MAX: usize = 16;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Limits and timeouts of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub(crate) codec: RemotingCodec,
    pub(crate) max_in_flight_requests: usize,
    pub(crate) write_queue_frames: usize,
    pub(crate) write_queue_bytes: usize,
    pub(crate) max_in_flight_request_bytes: usize,
    pub(crate) max_pending_invocations: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_stall_timeout: Duration,
}

/// How an owner (server or client) stops its connections. Cancelling `abort` also
/// cancels `graceful` (it is its child).
#[derive(Debug, Clone)]
pub(crate) struct StopSignals {
    /// Stop reading, let requests in flight answer, then close.
    pub(crate) graceful: CancellationToken,
    /// Close now.
    pub(crate) abort: CancellationToken,
}

impl StopSignals {
    pub(crate) fn new() -> Self {
        let abort = CancellationToken::new();
        StopSignals {
            graceful: abort.child_token(),
            abort,
        }
    }
}

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
    max_pending: usize,
    closed: CancellationToken,
}

/// Invocations awaiting a response, by opaque. `closed` is set under the same lock that
/// registration takes, so no waiter can be added after the table was failed.
struct PendingTable {
    closed: bool,
    next_registration: u64,
    waiters: HashMap<i32, Waiter, BuildHasherDefault<OpaqueHasher>>,
}

/// Hashes the opaque of a pending invocation. Every invocation inserts and removes one
/// entry, so SipHash showed up in profiles; a multiplicative hash is enough because the
/// keys are ids this side hands out (`next_opaque`, sequential), never ones a peer
/// chooses: a peer's responses only look entries up.
#[derive(Default)]
struct OpaqueHasher(u64);

impl Hasher for OpaqueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i32(&mut self, value: i32) {
        // Fibonacci hashing spreads sequential ids over the low bits (the bucket) and the
        // top bits (hashbrown's tag) alike.
        self.0 = u64::from(value as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Waiter {
    registration: u64,
    reply: oneshot::Sender<RemotingCommand>,
}

impl ConnectionHandle {
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
    ) -> Result<RemotingCommand, ClientError> {
        request.flag &= !(FLAG_RESPONSE | FLAG_ONEWAY);
        let (reply, response) = oneshot::channel();
        let registration = self.shared.register(&mut request, reply)?;
        let frame = OutboundFrame::encode(&self.shared.codec, &request)?;
        let exchange = async {
            self.shared
                .queue
                .push(frame)
                .await
                .map_err(|_| ClientError::ConnectionClosed)?;
            response.await.map_err(|_| ClientError::ConnectionClosed)
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
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
    ) -> Result<(), ClientError> {
        self.send(request.into_oneway(), timeout).await
    }

    /// Queues any command as it is (e.g. a response produced outside `process`).
    pub async fn send(
        &self,
        command: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        if self.is_closed() {
            return Err(ClientError::ConnectionClosed);
        }
        let frame = OutboundFrame::encode(&self.shared.codec, &command)?;
        match tokio::time::timeout(timeout, self.shared.queue.push(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ClientError::ConnectionClosed),
            Err(_) => Err(ClientError::Timeout {
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
        self.shared.table().waiters.len()
    }

    /// Queues a response, replacing it with a SYSTEM_ERROR if it cannot be encoded (e.g.
    /// too large), so the requester is not left waiting. Waits for room in the write
    /// queue; the writer's stall timeout bounds that wait.
    async fn send_response(&self, response: RemotingCommand) {
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
    ) -> Result<Registration, ClientError> {
        let mut table = self.table();
        if table.closed {
            return Err(ClientError::ConnectionClosed);
        }
        if table.waiters.len() >= self.max_pending {
            return Err(ClientError::TooManyPending {
                limit: self.max_pending,
            });
        }
        // A caller may reuse a request (a retry) while the first attempt is still awaited.
        let mut attempts = 0;
        while table.waiters.contains_key(&request.opaque) {
            attempts += 1;
            if attempts > OPAQUE_ATTEMPTS_MAX {
                return Err(ClientError::TooManyPending {
                    limit: self.max_pending,
                });
            }
            request.opaque = next_opaque();
        }
        table.next_registration += 1;
        let registration = table.next_registration;
        table.waiters.insert(
            request.opaque,
            Waiter {
                registration,
                reply,
            },
        );
        Ok(Registration {
            shared: Arc::clone(self),
            opaque: request.opaque,
            registration,
        })
    }

    /// Hands a response to its waiter; a response nobody awaits (timed out, or a peer's
    /// reply to a one-way request) is dropped, as Java does.
    fn complete(&self, response: RemotingCommand) {
        let waiter = self.table().waiters.remove(&response.opaque);
        match waiter {
            Some(waiter) => {
                // The caller may have just timed out; then nobody wants it.
                let _ = waiter.reply.send(response);
            }
            None => debug!(
                conn = self.id,
                opaque = response.opaque,
                code = response.code,
                "dropping a response nobody awaits"
            ),
        }
    }

    fn close(&self) {
        let failed = {
            let mut table = self.table();
            table.closed = true;
            std::mem::take(&mut table.waiters)
        };
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
        let mut table = self.shared.table();
        if table
            .waiters
            .get(&self.opaque)
            .is_some_and(|waiter| waiter.registration == self.registration)
        {
            table.waiters.remove(&self.opaque);
        }
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

/// Why a connection's reader stopped.
#[derive(Debug)]
enum CloseReason {
    PeerClosed,
    Malformed(DecodeError),
    ReadFailed(io::Error),
    Idle(Duration),
    Shutdown,
    ClosedLocally,
}

/// Starts the reader and writer tasks of an established connection. `guard` is held
/// until both have finished (the server's connection-count permit).
pub(crate) fn spawn<P: RequestProcessor>(
    stream: TcpStream,
    processor: Arc<P>,
    settings: &ConnectionSettings,
    stop: StopSignals,
    guard: Option<OwnedSemaphorePermit>,
) -> io::Result<ConnectionHandle> {
    let remote_addr = stream.peer_addr()?;
    let local_addr = stream.local_addr()?;
    // The writer coalesces frames itself; Nagle would only add latency.
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    let (queue, queued_frames) =
        WriteQueue::new(settings.write_queue_frames, settings.write_queue_bytes);
    let conn = ConnectionHandle {
        shared: Arc::new(Shared {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            remote_addr,
            local_addr,
            codec: settings.codec,
            queue,
            pending: Mutex::new(PendingTable {
                closed: false,
                next_registration: 0,
                waiters: HashMap::default(),
            }),
            max_pending: settings.max_pending_invocations.max(1),
            closed: CancellationToken::new(),
        }),
    };

    let writer = {
        let conn = conn.clone();
        let stall_timeout = settings.write_stall_timeout;
        tokio::spawn(async move {
            let result = writer::run(
                write_half,
                queued_frames,
                conn.shared.closed.clone(),
                stall_timeout,
            )
            .await;
            if let Err(failure) = result {
                debug!(conn = conn.id(), peer = %conn.remote_addr(), %failure, "connection writer stopped");
            }
            conn.shared.close();
        })
    };

    guard_callback(&conn, "connection_opened", || {
        processor.connection_opened(&conn)
    });
    let frames = FramedRead::with_capacity(read_half, settings.codec, READ_BUFFER_BYTES);
    let max_in_flight = u32::try_from(settings.max_in_flight_requests)
        .unwrap_or(u32::MAX)
        .clamp(1, Semaphore::MAX_PERMITS as u32);
    let (in_flight_bytes, in_flight_bytes_units) =
        byte_budget(settings.max_in_flight_request_bytes);
    let reader = Reader {
        conn: conn.clone(),
        frames,
        processor,
        in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
        max_in_flight,
        in_flight_bytes,
        in_flight_bytes_units,
        idle_timeout: settings.idle_timeout,
        stop,
    };
    tokio::spawn(async move {
        let conn = reader.conn.clone();
        let processor = Arc::clone(&reader.processor);
        let reason = reader.run().await;
        log_close(&conn, &reason);
        // The writer ends promptly once the connection is closed (bounded flush).
        let _ = writer.await;
        guard_callback(&conn, "connection_closed", || {
            processor.connection_closed(&conn)
        });
        drop(guard);
    });
    Ok(conn)
}

/// Runs a processor callback, containing a panic: `connection_opened` runs on the accept
/// loop, which must survive whatever a processor does.
fn guard_callback(conn: &ConnectionHandle, name: &'static str, callback: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(callback)) {
        let message = panic_message(panic.as_ref());
        error!(conn = conn.id(), peer = %conn.remote_addr(), callback = name, %message,
            "processor callback panicked");
    }
}

fn log_close(conn: &ConnectionHandle, reason: &CloseReason) {
    let (id, peer) = (conn.id(), conn.remote_addr());
    match reason {
        CloseReason::Malformed(error) => {
            warn!(conn = id, %peer, %error, "closing connection: malformed frame")
        }
        CloseReason::Idle(idle) => {
            debug!(conn = id, %peer, idle_ms = duration_ms(*idle), "closing idle connection")
        }
        CloseReason::ReadFailed(error) => {
            debug!(conn = id, %peer, %error, "connection read failed")
        }
        CloseReason::PeerClosed => debug!(conn = id, %peer, "peer closed the connection"),
        CloseReason::Shutdown => debug!(conn = id, %peer, "connection closed by shutdown"),
        CloseReason::ClosedLocally => debug!(conn = id, %peer, "connection closed"),
    }
}

struct Reader<P> {
    conn: ConnectionHandle,
    frames: FramedRead<OwnedReadHalf, RemotingCodec>,
    processor: Arc<P>,
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    /// Bytes of requests being processed, in budget units.
    in_flight_bytes: Arc<Semaphore>,
    in_flight_bytes_units: u32,
    idle_timeout: Option<Duration>,
    stop: StopSignals,
}

impl<P: RequestProcessor> Reader<P> {
    async fn run(mut self) -> CloseReason {
        let reason = self.read_until_stopped().await;
        if matches!(reason, CloseReason::Shutdown) {
            // Graceful: requests already read get to answer before the socket closes,
            // unless the owner aborts or the connection dies meanwhile.
            tokio::select! {
                _ = self.in_flight.acquire_many(self.max_in_flight) => {}
                _ = self.stop.abort.cancelled() => {}
                _ = self.conn.shared.closed.cancelled() => {}
            }
        }
        self.conn.shared.close();
        reason
    }

    async fn read_until_stopped(&mut self) -> CloseReason {
        let closed = self.conn.shared.closed.clone().cancelled_owned();
        let graceful = self.stop.graceful.clone().cancelled_owned();
        tokio::pin!(closed, graceful);
        // Idleness is checked once per period: a connection that read nothing during a
        // whole period is closed, so an idle one lives between one and two periods. This
        // avoids re-arming a timer for every frame on the hot path.
        let mut idle_check = self
            .idle_timeout
            .map(|period| tokio::time::interval_at(tokio::time::Instant::now() + period, period));
        let mut read_since_check = false;
        loop {
            let frame = tokio::select! {
                biased;
                _ = &mut closed => return CloseReason::ClosedLocally,
                _ = &mut graceful => return CloseReason::Shutdown,
                _ = tick(&mut idle_check) => {
                    // A request still being answered (a held pull) keeps it alive too.
                    let busy = self.in_flight.available_permits() < self.max_in_flight as usize;
                    if !read_since_check && !busy {
                        return CloseReason::Idle(self.idle_timeout.unwrap_or_default());
                    }
                    read_since_check = false;
                    continue;
                }
                frame = self.frames.next() => frame,
            };
            read_since_check = true;
            let command = match frame {
                None => return CloseReason::PeerClosed,
                Some(Err(DecodeError::Io(error))) => return CloseReason::ReadFailed(error),
                Some(Err(error)) => return CloseReason::Malformed(error),
                Some(Ok(command)) => command,
            };
            if command.is_response() {
                self.conn.shared.complete(command);
                continue;
            }
            // Back-pressure: with the in-flight limit (count or bytes) reached, stop
            // reading until requests finish; the peer's sends then block on TCP flow
            // control.
            let units = budget_units(command.body.len(), self.in_flight_bytes_units);
            let permits = async {
                let count = Arc::clone(&self.in_flight).acquire_owned().await?;
                let bytes = Arc::clone(&self.in_flight_bytes)
                    .acquire_many_owned(units)
                    .await?;
                Ok::<_, tokio::sync::AcquireError>((count, bytes))
            };
            let permits = tokio::select! {
                biased;
                _ = &mut closed => return CloseReason::ClosedLocally,
                _ = &mut graceful => return CloseReason::Shutdown,
                permits = permits => match permits {
                    Ok(permits) => permits,
                    Err(_) => return CloseReason::ClosedLocally,
                },
            };
            spawn_request(
                self.conn.clone(),
                Arc::clone(&self.processor),
                command,
                permits,
            );
        }
    }
}

/// Waits for the next idle check, or forever when there is no idle timeout.
async fn tick(idle_check: &mut Option<tokio::time::Interval>) {
    match idle_check {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs one request in its own task, so slow requests do not hold up the connection.
fn spawn_request<P: RequestProcessor>(
    conn: ConnectionHandle,
    processor: Arc<P>,
    request: RemotingCommand,
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    tokio::spawn(async move {
        let oneway = request.is_oneway();
        let (code, opaque) = (request.code, request.opaque);
        // The call itself sits inside the guarded future, so a panic before the
        // processor's first await is caught too.
        let outcome = AssertUnwindSafe(async { processor.process(&conn, request).await })
            .catch_unwind()
            .await;
        let response = match outcome {
            Ok(response) => response,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                error!(conn = conn.id(), peer = %conn.remote_addr(), code, %message,
                    "request processor panicked");
                Some(RemotingCommand {
                    code: response::SYSTEM_ERROR,
                    remark: Some(format!("request processor panicked: {message}")),
                    ..RemotingCommand::default()
                })
            }
        };
        if let Some(mut response) = response.filter(|_| !oneway) {
            response.opaque = opaque;
            response.flag = (response.flag | FLAG_RESPONSE) & !FLAG_ONEWAY;
            conn.send_response(response).await;
        }
        // The permit is released only once the response is queued, so a graceful close
        // that waits for all permits also sees every response in the write queue.
        drop(permits);
    });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
