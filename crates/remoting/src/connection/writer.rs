//! The write half of a connection: drains the outbound queue, many frames per syscall.
//!
//! Frames are encoded by whoever sends them (in parallel, on their own tasks) and queued
//! here as ready buffers. The writer takes everything queued at that moment and hands it to
//! one vectored write, so under load a single syscall carries hundreds of small frames,
//! while a lone frame is written at once (no waiting to fill a batch). Large bodies are
//! never copied: they go to the socket as their own buffers, one per body chunk.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use std::sync::Arc;

use burst::Burst;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::command::RemotingCommand;
use crate::frame::{EncodeError, RemotingCodec};

/// Bodies up to this size are copied next to their header, so a small frame is one buffer.
const INLINE_BODY_MAX_BYTES: usize = 4 * 1024;
/// Buffers per vectored write (Linux accepts up to 1024).
const BATCH_BUFFERS_MAX: usize = 512;
/// Bytes gathered per batch before writing.
const BATCH_BYTES_MAX: usize = 1024 * 1024;
/// How long frames still queued at close get to reach the socket.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Queue budgets are counted in units of this many bytes.
const BUDGET_UNIT_BYTES: usize = 1024;

/// Budget units for `bytes`: rounded up, at least one, at most the whole budget (so a
/// frame larger than the budget still goes out, alone).
pub(crate) fn budget_units(bytes: usize, budget_units_max: u32) -> u32 {
    let units = bytes.div_ceil(BUDGET_UNIT_BYTES).max(1);
    u32::try_from(units)
        .unwrap_or(u32::MAX)
        .min(budget_units_max)
}

/// A budget in bytes as a semaphore of units, and its size in units.
pub(crate) fn byte_budget(bytes: usize) -> (Arc<Semaphore>, u32) {
    let units = budget_units(bytes, u32::MAX).clamp(
        1,
        (Semaphore::MAX_PERMITS as u64).min(u64::from(u32::MAX)) as u32,
    );
    (Arc::new(Semaphore::new(units as usize)), units)
}

/// The sending side of a connection's write queue, bounded in frames and in bytes.
pub(crate) struct WriteQueue {
    frames: mpsc::Sender<QueuedFrame>,
    bytes: Arc<Semaphore>,
    bytes_units_max: u32,
}

/// The queue is closed: the connection is gone.
#[derive(Debug)]
pub(crate) struct QueueClosed;

/// A frame with the share of the byte budget it holds until written.
pub(crate) struct QueuedFrame {
    frame: OutboundFrame,
    budget: OwnedSemaphorePermit,
}

impl WriteQueue {
    pub(crate) fn new(frames_max: usize, bytes_max: usize) -> (Self, mpsc::Receiver<QueuedFrame>) {
        let (frames, receiver) = mpsc::channel(frames_max.max(1));
        let (bytes, bytes_units_max) = byte_budget(bytes_max);
        (
            WriteQueue {
                frames,
                bytes,
                bytes_units_max,
            },
            receiver,
        )
    }

    /// Queues `frame`, waiting while the queue is full (in frames or bytes).
    pub(crate) async fn push(&self, frame: OutboundFrame) -> Result<(), QueueClosed> {
        let units = budget_units(frame.len(), self.bytes_units_max);
        let budget = Arc::clone(&self.bytes)
            .acquire_many_owned(units)
            .await
            .map_err(|_| QueueClosed)?;
        self.frames
            .send(QueuedFrame { frame, budget })
            .await
            .map_err(|_| QueueClosed)
    }

    /// Wakes and fails every sender waiting for room; frames already queued stay queued.
    pub(crate) fn close(&self) {
        self.bytes.close();
    }
}

/// One encoded frame: length, type word and header (plus a small body), then the buffers
/// of a large body as they are.
pub(crate) struct OutboundFrame {
    head: Bytes,
    body: Vec<Bytes>,
    len: usize,
}

impl OutboundFrame {
    pub(crate) fn encode(
        codec: &RemotingCodec,
        command: &RemotingCommand,
    ) -> Result<Self, EncodeError> {
        let body_len = command.body_len();
        let inline_body = body_len <= INLINE_BODY_MAX_BYTES;
        let capacity = 192 + command.ext_fields.len() * 48 + if inline_body { body_len } else { 0 };
        let mut head = BytesMut::with_capacity(capacity);
        codec.encode_head(command, &mut head)?;
        let len = head.len() + body_len;
        let mut body = Vec::new();
        if inline_body {
            head.extend_from_slice(&command.body);
            for chunk in &command.body_chunks {
                head.extend_from_slice(chunk);
            }
        } else {
            body.reserve_exact(1 + command.body_chunks.len());
            body.extend(
                std::iter::once(&command.body)
                    .chain(&command.body_chunks)
                    .filter(|buffer| !buffer.is_empty())
                    .cloned(),
            );
        }
        Ok(OutboundFrame {
            head: head.freeze(),
            body,
            len,
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Why the writer stopped before the connection was closed from elsewhere.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteFailure {
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
    #[error("peer accepted no bytes for {0:?}")]
    Stalled(Duration),
}

/// Writes queued frames until `closed` fires (then flushes what is already queued) or a
/// write fails or makes no progress within `stall_timeout`.
pub(crate) async fn run(
    mut sink: OwnedWriteHalf,
    mut queue: mpsc::Receiver<QueuedFrame>,
    closed: CancellationToken,
    stall_timeout: Duration,
) -> Result<(), WriteFailure> {
    let mut batch = Batch::default();
    let mut writes = Burst::default();
    loop {
        let first = tokio::select! {
            // Queued frames win over the close signal, so responses enqueued before a
            // graceful close still go out.
            biased;
            frame = queue.recv() => frame,
            _ = closed.cancelled() => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        batch.gather(&mut queue);
        // Under load the frame that woke us is the first of several: the reader just
        // started a request task per frame of its last read. Letting the tasks that are
        // ready run first gathers their frames into this write (one syscall, one wake-up of
        // the peer, instead of one per frame). A lone request's answer goes at once.
        if batch.has_room() && writes.yield_within_stream().await {
            batch.gather(&mut queue);
        }
        batch.write(&mut sink, stall_timeout).await?;
    }

    // Closing: refuse new frames, flush the ones already queued (bounded by the queue's
    // capacity and a short timeout), then close our direction of the socket.
    queue.close();
    let flush = async {
        while let Ok(frame) = queue.try_recv() {
            batch.push(frame);
            if !batch.has_room() {
                batch.write(&mut sink, stall_timeout).await?;
            }
        }
        batch.write(&mut sink, stall_timeout).await?;
        sink.shutdown().await?;
        Ok::<(), WriteFailure>(())
    };
    match tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush).await {
        Ok(result) => result,
        Err(_) => Err(WriteFailure::Stalled(CLOSE_FLUSH_TIMEOUT)),
    }
}

/// Frames gathered for one vectored write, with their share of the byte budget, which is
/// returned once they are written.
#[derive(Default)]
struct Batch {
    buffers: VecDeque<Bytes>,
    bytes: usize,
    budgets: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    /// Adds the frames already queued, as far as the batch has room.
    fn gather(&mut self, queue: &mut mpsc::Receiver<QueuedFrame>) {
        while self.has_room() {
            match queue.try_recv() {
                Ok(frame) => self.push(frame),
                Err(_) => break,
            }
        }
    }

    fn push(&mut self, queued: QueuedFrame) {
        let QueuedFrame { frame, budget } = queued;
        self.bytes += frame.len();
        self.buffers.push_back(frame.head);
        self.buffers.extend(frame.body);
        self.budgets.push(budget);
    }

    /// Whether another frame fits. A frame of many buffers may take the batch past
    /// `BATCH_BUFFERS_MAX`; `write` then hands the socket at most that many at a time.
    fn has_room(&self) -> bool {
        self.buffers.len() + 2 <= BATCH_BUFFERS_MAX && self.bytes < BATCH_BYTES_MAX
    }

    async fn write(
        &mut self,
        sink: &mut OwnedWriteHalf,
        stall_timeout: Duration,
    ) -> Result<(), WriteFailure> {
        while !self.buffers.is_empty() {
            // Linux refuses more than 1024 buffers per call (IOV_MAX).
            let slices: Vec<IoSlice<'_>> = self
                .buffers
                .iter()
                .take(BATCH_BUFFERS_MAX)
                .map(|buffer| IoSlice::new(buffer))
                .collect();
            let written =
                match tokio::time::timeout(stall_timeout, sink.write_vectored(&slices)).await {
                    Ok(written) => written?,
                    Err(_) => return Err(WriteFailure::Stalled(stall_timeout)),
                };
            if written == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            advance(&mut self.buffers, written);
        }
        self.bytes = 0;
        self.budgets.clear();
        Ok(())
    }
}

/// Drops fully written buffers and trims a partly written one.
fn advance(batch: &mut VecDeque<Bytes>, mut written: usize) {
    while written > 0 {
        let Some(front) = batch.front_mut() else {
            return;
        };
        if written >= front.len() {
            written -= front.len();
            batch.pop_front();
        } else {
            front.advance(written);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_units_round_up_and_cap_at_the_budget() {
        assert_eq!(budget_units(0, 64), 1);
        assert_eq!(budget_units(1, 64), 1);
        assert_eq!(budget_units(1024, 64), 1);
        assert_eq!(budget_units(1025, 64), 2);
        assert_eq!(budget_units(16 * 1024 * 1024, 64), 64);
        assert_eq!(byte_budget(64 * 1024).1, 64);
        assert_eq!(byte_budget(0).1, 1);
    }

    #[test]
    fn advance_trims_partial_writes() {
        let mut batch: VecDeque<Bytes> = [&b"abc"[..], b"defg", b"hi"]
            .into_iter()
            .map(Bytes::from_static)
            .collect();
        advance(&mut batch, 5);
        assert_eq!(
            batch,
            [Bytes::from_static(b"fg"), Bytes::from_static(b"hi")]
        );
        advance(&mut batch, 2);
        assert_eq!(batch, [Bytes::from_static(b"hi")]);
        advance(&mut batch, 2);
        assert!(batch.is_empty());
    }

    #[test]
    fn small_bodies_are_inlined_and_large_ones_kept_apart() {
        let codec = RemotingCodec::new();
        let small = RemotingCommand::request(10).with_body(vec![7u8; 100]);
        let frame = OutboundFrame::encode(&codec, &small).unwrap();
        assert!(frame.body.is_empty());
        assert_eq!(frame.head, codec.encode_to_bytes(&small).unwrap());

        let large = RemotingCommand::request(10).with_body(vec![7u8; INLINE_BODY_MAX_BYTES + 1]);
        let frame = OutboundFrame::encode(&codec, &large).unwrap();
        assert_eq!(frame.body, std::slice::from_ref(&large.body));
        let mut joined = frame.head.to_vec();
        joined.extend_from_slice(&frame.body[0]);
        assert_eq!(joined, codec.encode_to_bytes(&large).unwrap());
    }

    #[test]
    fn body_chunks_go_out_as_their_own_buffers_after_the_body() {
        let codec = RemotingCodec::new();
        let chunks: Vec<Bytes> = (0..3u8)
            .map(|i| Bytes::from(vec![i; INLINE_BODY_MAX_BYTES / 2]))
            .collect();
        let command = RemotingCommand::request(11).with_body_chunks(chunks.clone());
        assert_eq!(command.body_len(), 3 * (INLINE_BODY_MAX_BYTES / 2));
        let frame = OutboundFrame::encode(&codec, &command).unwrap();
        assert_eq!(frame.body, chunks);
        let mut joined = frame.head.to_vec();
        for chunk in &frame.body {
            joined.extend_from_slice(chunk);
        }
        let whole = codec.encode_to_bytes(&command).unwrap();
        assert_eq!(joined, whole);
        assert_eq!(frame.len(), whole.len());

        // Small chunked bodies are copied next to the header, like small bodies.
        let small = RemotingCommand::request(11)
            .with_body(&b"ab"[..])
            .with_body_chunks(vec![Bytes::from_static(b"cd"), Bytes::from_static(b"e")]);
        let frame = OutboundFrame::encode(&codec, &small).unwrap();
        assert!(frame.body.is_empty());
        assert!(frame.head.ends_with(b"cde"));
        assert_eq!(frame.head, codec.encode_to_bytes(&small).unwrap());
    }
}
