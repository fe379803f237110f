//! The read side's decoder: the frame codec, plus what one connection holds for a frame
//! still arriving — counted against a budget every connection of a server shares — and
//! since when that frame has been arriving (for the slow-sender timeout). The read buffer
//! starts small and goes back to small once a large frame has been taken out of it, so an
//! idle connection holds a few KiB, not the largest frame it ever received.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::command::RemotingCommand;
use crate::frame::{DecodeError, RemotingCodec};

/// Read buffer a connection starts with and returns to: heartbeats and pulls fit; a
/// larger frame reserves the room it needs once its length is read.
pub(super) const READ_BUFFER_BYTES: usize = 1024;
/// An empty read buffer larger than this is given back after a frame.
const SHRINK_ABOVE_BYTES: usize = 16 * 1024;

/// Bytes held for partially received frames, over all connections of a server.
#[derive(Debug)]
pub struct PartialFrameBudget {
    limit: usize,
    held: AtomicUsize,
}

impl PartialFrameBudget {
    pub fn new(limit: usize) -> Arc<PartialFrameBudget> {
        Arc::new(PartialFrameBudget {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: usize) -> bool {
        let before = self.held.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }
}

pub(super) struct ConnectionDecoder {
    codec: RemotingCodec,
    budget: Option<Arc<PartialFrameBudget>>,
    /// What this connection counts against the budget now.
    held: usize,
    partial_since: Option<Instant>,
}

impl ConnectionDecoder {
    pub(super) fn new(codec: RemotingCodec, budget: Option<Arc<PartialFrameBudget>>) -> Self {
        ConnectionDecoder {
            codec,
            budget,
            held: 0,
            partial_since: None,
        }
    }

    /// Gives back a read buffer that grew, if it holds nothing (called when the
    /// connection has been quiet for a while).
    pub(super) fn shrink_if_empty(buffer: &mut BytesMut) {
        if buffer.is_empty() && buffer.capacity() > READ_BUFFER_BYTES {
            *buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
        }
    }

    /// When the frame now arriving began to arrive; `None` between frames.
    pub(super) fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }

    fn account(&mut self, now_held: usize) -> Result<(), DecodeError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if now_held > self.held {
            if !budget.take(now_held - self.held) {
                return Err(DecodeError::PartialFramesOverBudget {
                    budget: budget.limit,
                });
            }
        } else {
            budget.give(self.held - now_held);
        }
        self.held = now_held;
        Ok(())
    }
}

impl Decoder for ConnectionDecoder {
    type Item = RemotingCommand;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
        let decoded = self.codec.decode(src)?;
        if src.is_empty() {
            if src.capacity() > SHRINK_ABOVE_BYTES {
                *src = BytesMut::with_capacity(READ_BUFFER_BYTES);
            }
            self.partial_since = None;
        } else if decoded.is_some() {
            // The rest is the start of the next frame (FramedRead calls again at once).
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(Instant::now());
        }
        let partial = if src.is_empty() { 0 } else { src.capacity() };
        self.account(partial)?;
        Ok(decoded)
    }
}

impl Drop for ConnectionDecoder {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// The first bytes of a frame announcing `len` bytes.
    fn frame_start(len: u32) -> BytesMut {
        let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
        buf.put_u32(len);
        buf.put_u32(64);
        buf.put_slice(b"{\"code\":");
        buf
    }

    #[test]
    fn partial_frames_count_against_the_shared_budget_and_are_refused_past_it() {
        let budget = PartialFrameBudget::new(600 * 1024);
        let mut first = ConnectionDecoder::new(RemotingCodec::new(), Some(Arc::clone(&budget)));
        let mut second = ConnectionDecoder::new(RemotingCodec::new(), Some(Arc::clone(&budget)));
        let mut third = ConnectionDecoder::new(RemotingCodec::new(), Some(Arc::clone(&budget)));
        let (mut a, mut b, mut c) = (
            frame_start(8 << 20),
            frame_start(8 << 20),
            frame_start(8 << 20),
        );
        assert!(first.decode(&mut a).unwrap().is_none());
        assert!(first.partial_since().is_some());
        assert!(second.decode(&mut b).unwrap().is_none());
        let held = budget.held();
        assert!(held > 0 && held <= 600 * 1024, "{held}");
        assert!(matches!(
            third.decode(&mut c),
            Err(DecodeError::PartialFramesOverBudget { .. })
        ));
        drop(first);
        drop(third);
        assert_eq!(budget.held(), b.capacity());
        drop(second);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_buffer_that_grew_for_a_large_frame_shrinks_once_it_is_decoded() {
        let codec = RemotingCodec::new();
        let command = RemotingCommand::request(10).with_body(vec![7u8; 1 << 20]);
        let mut buf = BytesMut::new();
        let encoded = codec.encode_to_bytes(&command).unwrap();
        buf.extend_from_slice(&encoded);
        let mut decoder = ConnectionDecoder::new(codec, Some(PartialFrameBudget::new(64 << 20)));
        let decoded = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(decoded.body.len(), 1 << 20);
        assert!(buf.capacity() <= READ_BUFFER_BYTES, "{}", buf.capacity());
        assert_eq!(decoder.partial_since(), None);
        assert_eq!(decoder.held, 0);
    }
}
