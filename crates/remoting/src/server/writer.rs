//! The write half of a connection: drains the outbound queue, many frames per syscall.
//!
//! Frames are encoded by whoever sends them (in parallel, on their own tasks) and queued
//! here as ready buffers. The writer takes everything queued at that moment and hands it to
//! one vectored write, so under load a single syscall carries hundreds of small frames,
//! while a lone frame is written at once (no waiting to fill a batch). Large bodies are
//! never copied: they go to the socket as their own buffer.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
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

/// One encoded frame: length, type word and header (plus a small body), then a large body.
pub(crate) struct OutboundFrame {
    head: Bytes,
    body: Bytes,
}

impl OutboundFrame {
    pub(crate) fn encode(
        codec: &RemotingCodec,
        command: &RemotingCommand,
    ) -> Result<Self, EncodeError> {
        let inline_body = command.body.len() <= INLINE_BODY_MAX_BYTES;
        let capacity =
            192 + command.ext_fields.len() * 48 + if inline_body { command.body.len() } else { 0 };
        let mut head = BytesMut::with_capacity(capacity);
        codec.encode_head(command, &mut head)?;
        let body = if inline_body {
            head.extend_from_slice(&command.body);
            Bytes::new()
        } else {
            command.body.clone()
        };
        Ok(OutboundFrame {
            head: head.freeze(),
            body,
        })
    }

    fn len(&self) -> usize {
        self.head.len() + self.body.len()
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
    mut queue: mpsc::Receiver<OutboundFrame>,
    closed: CancellationToken,
    stall_timeout: Duration,
) -> Result<(), WriteFailure> {
    let mut batch = VecDeque::with_capacity(BATCH_BUFFERS_MAX);
    loop {
        let first = tokio::select! {
            // Queued frames win over the close signal, so responses enqueued before a
            // graceful close still go out.
            biased;
            frame = queue.recv() => frame,
            _ = closed.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch_bytes = push(&mut batch, first);
        let mut yielded = false;
        while batch.len() + 2 <= BATCH_BUFFERS_MAX && batch_bytes < BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(frame) => batch_bytes += push(&mut batch, frame),
                Err(_) if !yielded => {
                    // The frame that woke us is usually the first of several: the reader
                    // just started a request task per frame of its last read. Letting
                    // the tasks that are ready run first gathers their frames into this
                    // batch (one syscall instead of one per frame) for the cost of one
                    // pass of the scheduler's queue.
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        write_batch(&mut sink, &mut batch, stall_timeout).await?;
    }

    // Closing: refuse new frames, flush the ones already queued (bounded by the queue's
    // capacity and a short timeout), then close our direction of the socket.
    queue.close();
    let flush = async {
        while let Ok(frame) = queue.try_recv() {
            push(&mut batch, frame);
            if batch.len() + 2 > BATCH_BUFFERS_MAX {
                write_batch(&mut sink, &mut batch, stall_timeout).await?;
            }
        }
        write_batch(&mut sink, &mut batch, stall_timeout).await?;
        sink.shutdown().await?;
        Ok::<(), WriteFailure>(())
    };
    match tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush).await {
        Ok(result) => result,
        Err(_) => Err(WriteFailure::Stalled(CLOSE_FLUSH_TIMEOUT)),
    }
}

fn push(batch: &mut VecDeque<Bytes>, frame: OutboundFrame) -> usize {
    let len = frame.len();
    batch.push_back(frame.head);
    if !frame.body.is_empty() {
        batch.push_back(frame.body);
    }
    len
}

async fn write_batch(
    sink: &mut OwnedWriteHalf,
    batch: &mut VecDeque<Bytes>,
    stall_timeout: Duration,
) -> Result<(), WriteFailure> {
    while !batch.is_empty() {
        let slices: Vec<IoSlice<'_>> = batch.iter().map(|buffer| IoSlice::new(buffer)).collect();
        let written = match tokio::time::timeout(stall_timeout, sink.write_vectored(&slices)).await
        {
            Ok(written) => written?,
            Err(_) => return Err(WriteFailure::Stalled(stall_timeout)),
        };
        if written == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero).into());
        }
        advance(batch, written);
    }
    Ok(())
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
        assert_eq!(frame.body, large.body);
        let mut joined = frame.head.to_vec();
        joined.extend_from_slice(&frame.body);
        assert_eq!(joined, codec.encode_to_bytes(&large).unwrap());
    }
}
