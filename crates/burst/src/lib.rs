//! Small pieces of work that come in a stream, gathered into fewer, larger ones.
//!
//! Under load a raft driver is woken by every proposal, a peer's writer by every message
//! the driver queues and a connection's writer by every response, so each would run once
//! per piece: one append, one send to the kernel and one wake-up of the peer per message.
//! Work that starts soon after the previous piece is part of such a stream; yielding once
//! first lets the tasks that are ready to add to it do so. A quiet stream, such as one
//! producer sending one message at a time, never waits.

use std::time::Duration;

use tokio::time::Instant;

/// Pieces closer together than this are a stream. Under load at 64 producers more than
/// half a peer's writes started within 25 us of the one before; one producer's messages
/// are 200 us or more apart.
pub const STREAM_GAP: Duration = Duration::from_micros(50);

/// When the last piece of one stream of work started.
#[derive(Debug, Default)]
pub struct Burst {
    last: Option<Instant>,
}

impl Burst {
    /// Marks a piece of work starting. When the previous one started less than
    /// [`STREAM_GAP`] ago, first yields once to the tasks ready to add to it and returns
    /// true: the caller gathers again what arrived meanwhile.
    pub async fn yield_within_stream(&mut self) -> bool {
        let within = self.last.is_some_and(|at| at.elapsed() < STREAM_GAP);
        if within {
            tokio::task::yield_now().await;
        }
        self.last = Some(Instant::now());
        within
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_work_soon_after_the_last_piece_waits() {
        let mut burst = Burst::default();
        assert!(!burst.yield_within_stream().await, "the first piece waited");
        assert!(
            burst.yield_within_stream().await,
            "a piece right after did not"
        );
        tokio::time::advance(STREAM_GAP).await;
        assert!(
            !burst.yield_within_stream().await,
            "a piece after a pause waited"
        );
        tokio::time::advance(STREAM_GAP / 2).await;
        assert!(
            burst.yield_within_stream().await,
            "a piece within the gap did not"
        );
    }
}
