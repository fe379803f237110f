//! Registration rounds with the name servers, counted, so that a request whose change a
//! client acts on at once can answer after the name servers know it.

use std::time::Duration;

/// Counts registration rounds, so that a change a client acts on at once (a topic created:
/// RocketMQ's broker registers it before answering, and clients read the route right
/// after) can wait for a round that started after it.
#[derive(Debug, Default)]
pub struct RegistrationRounds {
    started: std::sync::atomic::AtomicU64,
    finished: tokio::sync::watch::Sender<u64>,
}

/// Taken once a change is applied: [`RoundTicket::wait`] returns once a round that started
/// after it, and so registered the change, is done. The taker asks for that round.
pub struct RoundTicket<'a> {
    rounds: &'a RegistrationRounds,
    started_before: u64,
}

impl RegistrationRounds {
    pub fn ticket(&self) -> RoundTicket<'_> {
        RoundTicket {
            rounds: self,
            started_before: self.started.load(std::sync::atomic::Ordering::Acquire),
        }
    }

    pub(crate) fn begin(&self) -> u64 {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1
    }

    pub(crate) fn end(&self, round: u64) {
        self.finished.send_if_modified(|done| {
            let newer = round > *done;
            if newer {
                *done = round;
            }
            newer
        });
    }
}

impl RoundTicket<'_> {
    /// Waits, at most `max`, for a round that started after the ticket was taken.
    pub async fn wait(self, max: Duration) {
        let mut done = self.rounds.finished.subscribe();
        let _ =
            tokio::time::timeout(max, done.wait_for(|round| *round > self.started_before)).await;
    }
}
