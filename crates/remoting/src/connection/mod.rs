//! A framed connection with opaque correlation: the machinery both the server and the
//! client run on every socket, so neither needs the other.
//!
//! Each connection has two tasks. The reader decodes frames; a response (flag bit 0) is
//! handed to whoever awaits its opaque, a request is given its own task that calls the
//! processor and queues the response. The writer drains the queue with coalesced writes.
//! Either side of a connection may send requests, so the same code serves
//! server-initiated requests to clients (CHECK_TRANSACTION_STATE, ...) and a client's
//! requests to a server.
//!
//! Every queue is bounded: requests in flight per connection (when full, reading pauses,
//! which pushes back on the peer through TCP), frames waiting to be written, and pending
//! invocations awaiting a response.
//!
//! - `handle`: [`ConnectionHandle`], what owners and processors hold to call the peer,
//!   send, close, or learn when the connection has closed.
//! - `pending`: invocations awaiting a response, by opaque.
//! - `reader`: the read loop, with back-pressure, the idle timeout and the frame read
//!   timeout.
//! - `decoder`: frames out of a small read buffer, with what a connection holds for a
//!   frame still arriving counted against a budget the server's connections share.
//! - `dispatch`: one decoded request to the processor, in its own task.
//! - `processor`: the [`RequestProcessor`] trait the broker, the name server and client
//!   handlers implement.
//! - `writer`: the bounded write queue and the coalescing write half.
//! - `error`: [`CallError`], why a call to a peer failed.
//! - `settings` and `shutdown`: the limits an owner gives each connection, and how it stops
//!   them.

mod decoder;
mod dispatch;
mod error;
mod handle;
mod pending;
mod processor;
mod reader;
mod settings;
mod shutdown;
mod writer;

use std::io;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

pub use decoder::PartialFrameBudget;
pub use error::CallError;
pub use handle::ConnectionHandle;
pub use processor::RequestProcessor;

pub(crate) use error::duration_ms;
pub(crate) use processor::{DynProcessor, RejectAll};
pub(crate) use settings::ConnectionSettings;
pub(crate) use shutdown::StopSignals;

use dispatch::guard_callback;
use reader::{log_close, Reader};
use writer::WriteQueue;

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
    let conn = ConnectionHandle::new(
        remote_addr,
        local_addr,
        settings.codec,
        queue,
        settings.max_pending_invocations,
    );

    let writer = {
        let conn = conn.clone();
        let stall_timeout = settings.write_stall_timeout;
        tokio::spawn(async move {
            let result = writer::run(
                write_half,
                queued_frames,
                conn.closed_token(),
                stall_timeout,
            )
            .await;
            if let Err(failure) = result {
                debug!(conn = conn.id(), peer = %conn.remote_addr(), %failure, "connection writer stopped");
            }
            conn.close();
        })
    };

    guard_callback(&conn, "connection_opened", || {
        processor.connection_opened(&conn)
    });
    let reader = Reader::new(
        conn.clone(),
        read_half,
        Arc::clone(&processor),
        settings,
        stop,
    );
    {
        let conn = conn.clone();
        tokio::spawn(async move {
            let reason = reader.run().await;
            log_close(&conn, &reason);
            // The writer ends promptly once the connection is closed (bounded flush).
            let _ = writer.await;
            guard_callback(&conn, "connection_closed", || {
                processor.connection_closed(&conn)
            });
            drop(guard);
        });
    }
    Ok(conn)
}
