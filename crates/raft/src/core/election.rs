//! Vote rounds as a node runs them: becoming a candidate, starting and concluding rounds,
//! answering other candidates, becoming leader. The rules themselves (how a voter answers,
//! what the answers mean) are pure functions in `vote`; this file applies their verdicts to
//! the node: term adoption, the recorded vote, timers and messages.

use rand::Rng;

use crate::message::{Message, Payload, VoteRequest, VoteResponse};
use crate::storage::{LogStorage, StorageError};
use crate::NodeId;

use super::progress::Progress;
use super::vote::{self, Outcome, RevoteDelay, Tally, Verdict, VoterState};
use super::{Candidacy, LeaderState, Node, RaftError, RoleState, Round};

impl<S: LogStorage> Node<S> {
    pub(super) fn vote_interval(&mut self) -> u64 {
        let (min_ms, max_ms) = if self.taking_leadership_term.is_some() {
            (
                self.config.min_take_leadership_vote_interval_ms,
                self.config.max_take_leadership_vote_interval_ms,
            )
        } else {
            (
                self.config.min_vote_interval_ms,
                self.config.max_vote_interval_ms,
            )
        };
        let ms = self.rng.gen_range(min_ms..=max_ms);
        ms.div_ceil(self.config.tick_ms)
    }

    pub(super) fn become_candidate(&mut self, wait_ticks: u64) {
        self.leader = None;
        self.leader_match = 0;
        self.pending_ack = None;
        self.role = RoleState::Candidate(Candidacy {
            last_outcome: Outcome::WaitToVoteNext,
            last_round_pre_vote: false,
            need_increase_term: false,
            pre_vote_passed: false,
            next_round_at: self.now + wait_ticks,
            round: None,
        });
    }

    fn lease_holds(&self) -> bool {
        if !(self.config.pre_vote || self.config.check_quorum) {
            return false;
        }
        match &self.role {
            RoleState::Leader(ls) => self.quorum_contact_age(ls) < self.ticks.leader_timeout,
            _ => {
                self.leader.is_some()
                    && self.now.saturating_sub(self.last_leader_contact) < self.ticks.leader_timeout
            }
        }
    }

    fn voter_state(&self) -> Result<VoterState, StorageError> {
        let last_index = self.storage.last_index();
        Ok(VoterState {
            term: self.term,
            voted_for: self.voted_for,
            leader: self.leader,
            lease_holds: self.lease_holds(),
            last_index,
            last_term: self.storage.term(last_index)?.unwrap_or(0),
            taking_leadership: self.taking_leadership_term == Some(self.term)
                && matches!(self.role, RoleState::Candidate(_)),
        })
    }

    pub(super) fn on_vote_request(
        &mut self,
        from: NodeId,
        term: u64,
        req: VoteRequest,
    ) -> Result<(), RaftError> {
        if !self.membership.current().is_voter(from) {
            // A learner (or a removed member) that has not yet learnt what it is; a vote
            // could only help it disrupt the group. A removed one is told, once the
            // membership without it is committed (before that the removal may be undone).
            let membership_index = self.membership.current_index();
            if !self.membership.current().contains(from)
                && membership_index > 0
                && self.commit_index >= membership_index
            {
                self.send(from, Payload::NotMember { membership_index });
            }
            return Ok(());
        }
        if !self.may_vote() {
            // Its log may lack entries it acknowledged before losing its disk; the
            // candidate learns nothing from it, as from a member that is down.
            return Ok(());
        }
        let voter = self.voter_state()?;
        let verdict = vote::judge(&voter, from, term, &req, false);
        let answer = match verdict {
            Verdict::Answer(answer) => answer,
            Verdict::AdoptTermNotReady => {
                self.become_follower(term, None);
                crate::message::VoteAnswer::RejectTermNotReady
            }
            Verdict::Grant => {
                self.voted_for = Some(from);
                self.hard_state_dirty = true;
                self.last_leader_contact = self.now;
                crate::message::VoteAnswer::Accept
            }
        };
        let reply_term = if answer == crate::message::VoteAnswer::RejectTermSmallThanLedger {
            voter.last_term
        } else {
            self.term
        };
        self.out.messages.push(Message {
            from: self.id,
            to: from,
            term: reply_term,
            payload: Payload::VoteResponse(VoteResponse {
                pre_vote: req.pre_vote,
                request_term: term,
                answer,
            }),
        });
        Ok(())
    }

    /// A member says its committed membership does not list this node. Believed only when
    /// that membership is newer than this log's: a node whose log already holds a newer
    /// one (it was added back) is a member whatever a lagging member says.
    pub(super) fn on_not_member(&mut self, from: NodeId, membership_index: u64) {
        if membership_index <= self.membership.current_index()
            || self
                .removed_as_of
                .is_some_and(|known| known >= membership_index)
        {
            return;
        }
        self.removed_as_of = Some(membership_index);
        tracing::warn!(node = %self.id, told_by = %from, membership_index,
            "this node was removed from the group: it stops campaigning");
    }

    pub(super) fn on_vote_response(
        &mut self,
        from: NodeId,
        term: u64,
        resp: VoteResponse,
    ) -> Result<(), RaftError> {
        if !self.membership.current().is_voter(from) {
            return Ok(());
        }
        let members = self.voter_count();
        let RoleState::Candidate(c) = &mut self.role else {
            return Ok(());
        };
        let Some(round) = c.round.as_mut() else {
            return Ok(());
        };
        if resp.pre_vote != round.pre_vote
            || resp.request_term != round.term
            || round.answered.contains(&from)
        {
            return Ok(());
        }
        round.answered.push(from);
        round.tally.record(resp.answer, term);
        if round.tally.decisive(members) {
            self.conclude_round()?;
        }
        Ok(())
    }

    /// Starts the next vote round: a pre-vote for the next term, a vote at the next term, or
    /// a revote at the current one, depending on the last outcome.
    pub(super) fn start_round(&mut self) -> Result<(), RaftError> {
        let taking = self.taking_leadership_term.is_some();
        let RoleState::Candidate(c) = &mut self.role else {
            return Ok(());
        };
        let increase = c.need_increase_term || c.last_outcome == Outcome::WaitToVoteNext;
        c.need_increase_term = false;
        let pre_vote_passed = std::mem::take(&mut c.pre_vote_passed);
        let pre_vote = if increase {
            self.config.pre_vote && !taking && !pre_vote_passed
        } else {
            c.last_round_pre_vote
        };
        let round_term = if pre_vote {
            // Saturating: a term is peer input, and no input may panic the node.
            self.term.saturating_add(1)
        } else {
            if increase {
                let next = self.term.saturating_add(1);
                self.set_term(next);
            }
            self.term
        };
        let last_index = self.storage.last_index();
        let request = VoteRequest {
            pre_vote,
            take_leadership: taking,
            last_index,
            last_term: self.storage.term(last_index)?.unwrap_or(0),
        };
        let mut tally = Tally::default();
        let voter = self.voter_state()?;
        match vote::judge(&voter, self.id, round_term, &request, true) {
            Verdict::Grant => {
                self.voted_for = Some(self.id);
                self.hard_state_dirty = true;
                tally.record(crate::message::VoteAnswer::Accept, self.term);
            }
            Verdict::Answer(answer) => tally.record(answer, self.term),
            Verdict::AdoptTermNotReady => {
                tally.record(crate::message::VoteAnswer::RejectTermNotReady, self.term)
            }
        }
        let deadline = self.now + self.ticks.vote_round;
        let peers: Vec<NodeId> = self.voting_peers().collect();
        for peer in peers {
            self.out.messages.push(Message {
                from: self.id,
                to: peer,
                term: round_term,
                payload: Payload::VoteRequest(request),
            });
        }
        let decisive = tally.decisive(self.voter_count());
        if let RoleState::Candidate(c) = &mut self.role {
            c.round = Some(Round {
                pre_vote,
                term: round_term,
                deadline,
                answered: vec![self.id],
                tally,
            });
        }
        if decisive {
            self.conclude_round()?;
        }
        Ok(())
    }

    pub(super) fn conclude_round(&mut self) -> Result<(), RaftError> {
        let members = self.voter_count();
        let RoleState::Candidate(c) = &mut self.role else {
            return Ok(());
        };
        let Some(round) = c.round.take() else {
            return Ok(());
        };
        let outcome = vote::outcome(&round.tally, members, round.term);
        c.last_outcome = outcome;
        c.last_round_pre_vote = round.pre_vote;
        tracing::debug!(node = %self.id, term = round.term, pre_vote = round.pre_vote,
            ?outcome, tally = ?round.tally, "vote round over");
        match outcome {
            Outcome::Passed => {
                if round.pre_vote {
                    // Straight to the real vote at the next term.
                    c.need_increase_term = true;
                    c.pre_vote_passed = true;
                    self.start_round()?;
                } else if round.term == self.term {
                    self.become_leader()?;
                }
            }
            Outcome::RevoteImmediately => {
                c.next_round_at = self.now;
                self.start_round()?;
            }
            Outcome::WaitToRevote(delay) => {
                let extra = match delay {
                    RevoteDelay::None => 0,
                    RevoteDelay::LeaderTimeout => self.ticks.leader_timeout,
                    RevoteDelay::GiveWayToBetterLog => {
                        self.config.ticks(self.config.max_vote_interval_ms)
                    }
                };
                let wait = self.vote_interval() + extra;
                if let RoleState::Candidate(c) = &mut self.role {
                    c.next_round_at = self.now + wait;
                }
            }
            Outcome::WaitToVoteNext => {
                if round.tally.known_max_term > self.term {
                    self.set_term(round.tally.known_max_term);
                }
                let wait = self.vote_interval();
                if let RoleState::Candidate(c) = &mut self.role {
                    c.next_round_at = self.now + wait;
                }
            }
        }
        Ok(())
    }

    fn become_leader(&mut self) -> Result<(), RaftError> {
        let next = self.storage.last_index() + 1;
        let now = self.now;
        let progress = self
            .peers()
            .map(|peer| Progress::new(peer, next, now))
            .collect();
        self.role = RoleState::Leader(LeaderState {
            progress,
            next_heartbeat_at: now,
            next_preferred_check_at: now + self.ticks.preferred_check,
            transfer: None,
        });
        self.leader = Some(self.id);
        self.taking_leadership_term = None;
        tracing::info!(node = %self.id, term = self.term, "became leader");
        // Raft section 5.4.2: only entries of the current term commit by counting replicas;
        // a no-op of this term commits everything before it promptly.
        self.append_noop()?;
        self.broadcast_heartbeats();
        self.maybe_commit()?;
        Ok(())
    }
}
