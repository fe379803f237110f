//! Leadership transfer to a named node, and DLedger's preferred leaders.
//!
//! The leader stops accepting writes, waits until the target holds its whole log, then tells
//! it to campaign at once (`TakeLeadership`). The target skips the pre-vote and its vote
//! requests carry a flag that lets voters ignore the leader lease; the old leader steps down
//! when it sees the higher term. A transfer that does not complete within
//! `transfer_timeout_ms` is abandoned and writes resume.

use super::{Event, LeaderTransfer, Node, RaftError, RoleState, TransferError, TransferWatch};
use crate::message::Payload;
use crate::storage::LogStorage;
use crate::NodeId;

impl<S: LogStorage> Node<S> {
    /// Starts handing leadership to `target`. The result arrives as
    /// [`Event::TransferFinished`]; proposals are refused meanwhile.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        let last = self.storage.last_index();
        let RoleState::Leader(ls) = &mut self.role else {
            return Err(TransferError::NotLeader);
        };
        if target == self.id {
            return Ok(());
        }
        if !self.membership.current().is_voter(target) {
            return Err(TransferError::UnknownPeer(target));
        }
        let Some(p) = ls.progress.iter().find(|p| p.id == target) else {
            return Err(TransferError::UnknownPeer(target));
        };
        if ls.transfer.is_some() {
            return Err(TransferError::AlreadyTransferring);
        }
        let lag = last.saturating_sub(p.match_index);
        if lag > self.config.max_transfer_lag_entries {
            return Err(TransferError::TooFarBehind { lag });
        }
        let deadline = self.now + self.ticks.transfer;
        ls.transfer = Some(LeaderTransfer {
            target,
            deadline,
            sent: false,
        });
        self.transfer_watch = Some(TransferWatch { target, deadline });
        tracing::info!(node = %self.id, %target, lag, "transferring leadership");
        self.try_send_take_leadership();
        Ok(())
    }

    /// Sends `TakeLeadership` once the target holds everything we have.
    pub(super) fn try_send_take_leadership(&mut self) {
        let last = self.storage.last_index();
        let RoleState::Leader(ls) = &mut self.role else {
            return;
        };
        let Some(transfer) = ls.transfer.as_mut() else {
            return;
        };
        if transfer.sent {
            return;
        }
        let caught_up = ls
            .progress
            .iter()
            .any(|p| p.id == transfer.target && p.match_index >= last);
        if caught_up {
            transfer.sent = true;
            let target = transfer.target;
            self.send(target, Payload::TakeLeadership);
        }
    }

    pub(super) fn on_take_leadership(&mut self, from: NodeId, term: u64) -> Result<(), RaftError> {
        if term != self.term || self.leader != Some(from) || !self.is_voter() || !self.may_vote() {
            return Ok(());
        }
        tracing::info!(node = %self.id, term, "asked to take leadership");
        self.taking_leadership_term = Some(term.saturating_add(1));
        self.become_candidate(0);
        if let RoleState::Candidate(c) = &mut self.role {
            c.need_increase_term = true;
        }
        self.start_round()
    }

    /// Leader housekeeping: abandon a stalled transfer; move to a preferred leader.
    pub(super) fn transfer_tick(&mut self) -> Result<(), RaftError> {
        let now = self.now;
        let last = self.storage.last_index();
        let leader_timeout = self.ticks.leader_timeout;
        let RoleState::Leader(ls) = &mut self.role else {
            return Ok(());
        };
        if ls.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
            ls.transfer = None;
        }
        if now < ls.next_preferred_check_at {
            return Ok(());
        }
        ls.next_preferred_check_at = now + self.ticks.preferred_check;
        let preferred = &self.config.preferred_leaders;
        if preferred.is_empty() || preferred.contains(&self.id) || ls.transfer.is_some() {
            return Ok(());
        }
        let best = ls
            .progress
            .iter()
            .filter(|p| preferred.contains(&p.id) && self.membership.current().is_voter(p.id))
            .filter(|p| now.saturating_sub(p.last_contact) < leader_timeout)
            .map(|p| (last.saturating_sub(p.match_index), p.id))
            .filter(|&(lag, _)| lag <= self.config.max_transfer_lag_entries)
            .min();
        if let Some((_, target)) = best {
            // A refusal here only means the check runs again later.
            let _ = self.transfer_leadership(target);
        }
        Ok(())
    }

    /// Reports the end of a transfer this node started: the target leads, someone else
    /// does, or time ran out.
    pub(super) fn check_transfer_watch(&mut self) {
        let Some(watch) = self.transfer_watch else {
            return;
        };
        let result = match self.leader {
            Some(leader) if leader == watch.target => Some(Ok(())),
            Some(leader) if leader != self.id => Some(Err(TransferError::Superseded {
                leader: Some(leader),
            })),
            _ if self.now >= watch.deadline => Some(Err(TransferError::Timeout)),
            _ => None,
        };
        if let Some(result) = result {
            self.transfer_watch = None;
            if let RoleState::Leader(ls) = &mut self.role {
                ls.transfer = None;
            }
            self.out.events.push(Event::TransferFinished {
                target: watch.target,
                result,
            });
        }
    }
}
