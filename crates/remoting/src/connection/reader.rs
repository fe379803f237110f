//! The read half of a connection: decodes frames, hands a response to whoever awaits its
//! opaque and a request to the processor, and stops reading when too much is in flight so
//! that TCP flow control pushes back on the peer.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Semaphore;
use tokio_util::codec::FramedRead;
use tracing::{debug, warn};

use crate::frame::DecodeError;

use super::decoder::{ConnectionDecoder, READ_BUFFER_BYTES};
use super::dispatch::spawn_request;
use super::error::duration_ms;
use super::handle::ConnectionHandle;
use super::processor::RequestProcessor;
use super::settings::ConnectionSettings;
use super::shutdown::StopSignals;
use super::writer::{budget_units, byte_budget};

/// Why a connection's reader stopped.
#[derive(Debug)]
pub(super) enum CloseReason {
    PeerClosed,
    Malformed(DecodeError),
    ReadFailed(io::Error),
    Idle(Duration),
    /// A frame began to arrive and did not complete within the frame read timeout.
    SlowFrame(Duration),
    Shutdown,
    ClosedLocally,
}

pub(super) fn log_close(conn: &ConnectionHandle, reason: &CloseReason) {
    let (id, peer) = (conn.id(), conn.remote_addr());
    match reason {
        CloseReason::Malformed(error) => {
            warn!(conn = id, %peer, %error, "closing connection: malformed frame")
        }
        CloseReason::SlowFrame(timeout) => {
            warn!(conn = id, %peer, timeout_ms = duration_ms(*timeout),
                "closing connection: a frame did not arrive whole in time")
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

pub(super) struct Reader<P> {
    conn: ConnectionHandle,
    frames: FramedRead<OwnedReadHalf, ConnectionDecoder>,
    processor: Arc<P>,
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    /// Bytes of requests being processed, in budget units.
    in_flight_bytes: Arc<Semaphore>,
    in_flight_bytes_units: u32,
    idle_timeout: Option<Duration>,
    frame_read_timeout: Option<Duration>,
    stop: StopSignals,
}

impl<P: RequestProcessor> Reader<P> {
    pub(super) fn new(
        conn: ConnectionHandle,
        read_half: OwnedReadHalf,
        processor: Arc<P>,
        settings: &ConnectionSettings,
        stop: StopSignals,
    ) -> Self {
        let decoder = ConnectionDecoder::new(settings.codec, settings.partial_frame_budget.clone());
        let frames = FramedRead::with_capacity(read_half, decoder, READ_BUFFER_BYTES);
        let max_in_flight = u32::try_from(settings.max_in_flight_requests)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let (in_flight_bytes, in_flight_bytes_units) =
            byte_budget(settings.max_in_flight_request_bytes);
        Reader {
            conn,
            frames,
            processor,
            in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
            max_in_flight,
            in_flight_bytes,
            in_flight_bytes_units,
            idle_timeout: settings.idle_timeout,
            frame_read_timeout: settings.frame_read_timeout,
            stop,
        }
    }

    /// Reads until the connection closes or its owner stops it, then closes it and says
    /// why.
    pub(super) async fn run(mut self) -> CloseReason {
        let reason = self.read_until_stopped().await;
        if matches!(reason, CloseReason::Shutdown) {
            // Graceful: requests already read get to answer before the socket closes,
            // unless the owner aborts or the connection dies meanwhile.
            tokio::select! {
                _ = self.in_flight.acquire_many(self.max_in_flight) => {}
                _ = self.stop.abort.cancelled() => {}
                _ = self.conn.closed() => {}
            }
        }
        self.conn.close();
        reason
    }

    async fn read_until_stopped(&mut self) -> CloseReason {
        let closed = self.conn.closed_token().cancelled_owned();
        let graceful = self.stop.graceful.clone().cancelled_owned();
        tokio::pin!(closed, graceful);
        // Idleness and slow frames are checked once per period (the shorter of the two
        // timeouts) rather than with a timer re-armed for every frame on the hot path: a
        // connection that read nothing for the idle timeout is closed (it lives up to one
        // period longer), and so is one whose frame has been arriving for longer than the
        // frame read timeout.
        let period = match (self.idle_timeout, self.frame_read_timeout) {
            (Some(idle), Some(frame)) => Some(idle.min(frame)),
            (idle, frame) => idle.or(frame),
        };
        let mut idle_check = period
            .map(|period| tokio::time::interval_at(tokio::time::Instant::now() + period, period));
        let mut read_since_check = false;
        let mut idle_for = Duration::ZERO;
        loop {
            let frame = tokio::select! {
                biased;
                _ = &mut closed => return CloseReason::ClosedLocally,
                _ = &mut graceful => return CloseReason::Shutdown,
                _ = tick(&mut idle_check) => {
                    if let (Some(timeout), Some(since)) =
                        (self.frame_read_timeout, self.frames.decoder().partial_since())
                    {
                        if since.elapsed() >= timeout {
                            return CloseReason::SlowFrame(timeout);
                        }
                    }
                    // A request still being answered (a held pull) keeps it alive too.
                    let busy = self.in_flight.available_permits() < self.max_in_flight as usize;
                    if read_since_check || busy {
                        idle_for = Duration::ZERO;
                    } else {
                        idle_for += period.unwrap_or_default();
                        if let Some(idle_timeout) = self.idle_timeout {
                            if idle_for >= idle_timeout {
                                return CloseReason::Idle(idle_timeout);
                            }
                        }
                    }
                    if !read_since_check {
                        ConnectionDecoder::shrink_if_empty(self.frames.read_buffer_mut());
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
                self.conn.complete(command);
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
