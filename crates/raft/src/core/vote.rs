//! Votes the DLedger way: how a voter answers, and what a candidate makes of the answers.
//!
//! Both are pure functions here so that every answer and every outcome can be tested on its
//! own; `election` applies their verdicts to the [`Node`](super::Node) (term adoption, vote
//! recording, timers).

use crate::message::{VoteAnswer, VoteRequest};
use crate::NodeId;

/// What a voter knows when it judges a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VoterState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    /// A leader was heard from (or, on the leader itself, a quorum answered) within the
    /// leader timeout.
    pub lease_holds: bool,
    pub last_index: u64,
    pub last_term: u64,
    /// This node was asked to take leadership at its current term.
    pub taking_leadership: bool,
}

/// The voter's decision, before its side effects are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer without changing any state.
    Answer(VoteAnswer),
    /// Adopt the request's term (persisted before answering), then answer
    /// [`VoteAnswer::RejectTermNotReady`].
    AdoptTermNotReady,
    /// Record the vote (persisted before answering), answer [`VoteAnswer::Accept`].
    Grant,
}

/// Judges a vote or pre-vote request asking for `term`. The checks run in DLedger's order
/// (log freshness, term, ledger term, taking leadership), with the leader lease of pre-vote
/// and check-quorum added after the freshness check: a voter that hears a healthy leader does
/// not help anyone depose it, unless the leader itself asked for the hand-off.
pub(crate) fn judge(
    voter: &VoterState,
    candidate: NodeId,
    term: u64,
    request: &VoteRequest,
    is_self: bool,
) -> Verdict {
    use VoteAnswer::*;
    if request.last_term < voter.last_term {
        return Verdict::Answer(RejectExpiredLedgerTerm);
    }
    if request.last_term == voter.last_term && request.last_index < voter.last_index {
        return Verdict::Answer(RejectSmallLedgerEndIndex);
    }
    if !is_self && !request.take_leadership && voter.lease_holds && voter.leader != Some(candidate)
    {
        return Verdict::Answer(RejectAlreadyHasLeader);
    }
    if term < voter.term {
        return Verdict::Answer(RejectExpiredVoteTerm);
    }
    if term == voter.term {
        match voter.voted_for {
            Some(voted) if voted != candidate => {
                return Verdict::Answer(if voter.leader.is_some() {
                    RejectAlreadyHasLeader
                } else {
                    RejectAlreadyVoted
                });
            }
            _ => {}
        }
    } else if !request.pre_vote {
        // DLedger grants only once the terms agree: the voter moves to the new term now and
        // the candidate, seeing a quorum of "not ready", asks again at once.
        return Verdict::AdoptTermNotReady;
    }
    if term < voter.last_term {
        return Verdict::Answer(RejectTermSmallThanLedger);
    }
    if !is_self
        && voter.taking_leadership
        && request.last_term == voter.last_term
        && voter.last_index >= request.last_index
    {
        return Verdict::Answer(RejectTakingLeadership);
    }
    if request.pre_vote {
        Verdict::Answer(Accept)
    } else {
        Verdict::Grant
    }
}

/// The answers of one vote round, counted as DLedger counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub answered: usize,
    pub accepted: usize,
    pub not_ready: usize,
    pub bigger_ledger: usize,
    pub already_has_leader: bool,
    /// Highest term reported by `RejectExpiredVoteTerm` / `RejectTermSmallThanLedger`.
    pub known_max_term: u64,
}

impl Tally {
    pub fn record(&mut self, answer: VoteAnswer, responder_term: u64) {
        use VoteAnswer::*;
        self.answered += 1;
        match answer {
            Accept => self.accepted += 1,
            RejectAlreadyHasLeader => self.already_has_leader = true,
            // A voter that already voted in its term answers with that term: a pre-vote
            // candidate behind it must move up to it, or it would ask for the same term
            // forever (pre-votes never raise the term by themselves).
            RejectExpiredVoteTerm | RejectTermSmallThanLedger | RejectAlreadyVoted => {
                self.known_max_term = self.known_max_term.max(responder_term);
            }
            RejectExpiredLedgerTerm | RejectSmallLedgerEndIndex => self.bigger_ledger += 1,
            RejectTermNotReady => self.not_ready += 1,
            RejectTakingLeadership => {}
        }
    }

    /// Whether waiting for more answers cannot change the outcome much (DLedger's latch).
    pub fn decisive(&self, members: usize) -> bool {
        let quorum = quorum(members);
        self.already_has_leader
            || self.accepted >= quorum
            || self.accepted + self.not_ready >= quorum
            || self.answered >= members
    }
}

/// What the candidate does next (DLedger `VoteResponse.ParseResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A quorum accepted: become leader (after a pre-vote: start the real vote).
    Passed,
    /// Accepted plus not-ready make a quorum: the voters just adopted the term, ask again now.
    RevoteImmediately,
    /// Ask again at the same term after a random wait, plus `extra`.
    WaitToRevote(RevoteDelay),
    /// Move to the next term (or the higher one seen) after a random wait.
    WaitToVoteNext,
}

/// Extra wait added to a revote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevoteDelay {
    None,
    /// A leader exists: give it a full leader timeout to reach us.
    LeaderTimeout,
    /// Too many voters have a better log: give way to them for one more vote interval.
    GiveWayToBetterLog,
}

/// Decides the outcome of a round at `round_term`, in DLedger's order.
pub(crate) fn outcome(tally: &Tally, members: usize, round_term: u64) -> Outcome {
    let quorum = quorum(members);
    if tally.known_max_term > round_term {
        Outcome::WaitToVoteNext
    } else if tally.already_has_leader {
        Outcome::WaitToRevote(RevoteDelay::LeaderTimeout)
    } else if tally.answered < quorum {
        Outcome::WaitToRevote(RevoteDelay::None)
    } else if tally.answered - tally.bigger_ledger < quorum {
        Outcome::WaitToRevote(RevoteDelay::GiveWayToBetterLog)
    } else if tally.accepted >= quorum {
        Outcome::Passed
    } else if tally.accepted + tally.not_ready >= quorum {
        Outcome::RevoteImmediately
    } else {
        Outcome::WaitToVoteNext
    }
}

/// Smallest majority of `members`.
pub(crate) fn quorum(members: usize) -> usize {
    members / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use VoteAnswer::*;

    const C: NodeId = NodeId(7);
    const OTHER: NodeId = NodeId(8);

    fn voter() -> VoterState {
        VoterState {
            term: 5,
            voted_for: None,
            leader: None,
            lease_holds: false,
            last_index: 10,
            last_term: 4,
            taking_leadership: false,
        }
    }

    fn request(last_index: u64, last_term: u64) -> VoteRequest {
        VoteRequest {
            pre_vote: false,
            take_leadership: false,
            last_index,
            last_term,
        }
    }

    fn pre(last_index: u64, last_term: u64) -> VoteRequest {
        VoteRequest {
            pre_vote: true,
            ..request(last_index, last_term)
        }
    }

    #[test]
    fn accept_when_term_matches_and_log_is_fresh() {
        assert_eq!(
            judge(&voter(), C, 5, &request(10, 4), false),
            Verdict::Grant
        );
        assert_eq!(judge(&voter(), C, 5, &request(3, 5), false), Verdict::Grant);
    }

    #[test]
    fn repeated_request_from_the_same_candidate_is_accepted_again() {
        let v = VoterState {
            voted_for: Some(C),
            ..voter()
        };
        assert_eq!(judge(&v, C, 5, &request(10, 4), false), Verdict::Grant);
    }

    #[test]
    fn already_voted_for_another() {
        let v = VoterState {
            voted_for: Some(OTHER),
            ..voter()
        };
        assert_eq!(
            judge(&v, C, 5, &request(10, 4), false),
            Verdict::Answer(RejectAlreadyVoted)
        );
    }

    #[test]
    fn already_has_leader_by_vote_or_by_lease() {
        let voted = VoterState {
            voted_for: Some(OTHER),
            leader: Some(OTHER),
            ..voter()
        };
        assert_eq!(
            judge(&voted, C, 5, &request(10, 4), false),
            Verdict::Answer(RejectAlreadyHasLeader)
        );
        let leased = VoterState {
            leader: Some(OTHER),
            lease_holds: true,
            ..voter()
        };
        assert_eq!(
            judge(&leased, C, 9, &request(10, 4), false),
            Verdict::Answer(RejectAlreadyHasLeader),
            "a healthy leader is not deposed by a higher term"
        );
        assert_eq!(
            judge(&leased, C, 6, &pre(10, 4), false),
            Verdict::Answer(RejectAlreadyHasLeader)
        );
    }

    #[test]
    fn leadership_transfer_skips_the_lease() {
        let leased = VoterState {
            leader: Some(OTHER),
            lease_holds: true,
            ..voter()
        };
        let take = VoteRequest {
            take_leadership: true,
            ..request(10, 4)
        };
        assert_eq!(
            judge(&leased, C, 6, &take, false),
            Verdict::AdoptTermNotReady
        );
    }

    #[test]
    fn expired_vote_term() {
        assert_eq!(
            judge(&voter(), C, 4, &request(10, 4), false),
            Verdict::Answer(RejectExpiredVoteTerm)
        );
        assert_eq!(
            judge(&voter(), C, 4, &pre(10, 4), false),
            Verdict::Answer(RejectExpiredVoteTerm)
        );
    }

    #[test]
    fn ledger_term_behind() {
        assert_eq!(
            judge(&voter(), C, 9, &request(50, 3), false),
            Verdict::Answer(RejectExpiredLedgerTerm)
        );
    }

    #[test]
    fn ledger_index_behind() {
        assert_eq!(
            judge(&voter(), C, 9, &request(9, 4), false),
            Verdict::Answer(RejectSmallLedgerEndIndex)
        );
    }

    #[test]
    fn higher_term_is_adopted_then_not_ready() {
        assert_eq!(
            judge(&voter(), C, 6, &request(10, 4), false),
            Verdict::AdoptTermNotReady
        );
    }

    #[test]
    fn pre_vote_at_higher_term_changes_nothing() {
        assert_eq!(
            judge(&voter(), C, 6, &pre(10, 4), false),
            Verdict::Answer(Accept)
        );
        let voted = VoterState {
            voted_for: Some(OTHER),
            ..voter()
        };
        assert_eq!(
            judge(&voted, C, 6, &pre(10, 4), false),
            Verdict::Answer(Accept),
            "a vote in the current term does not bind the next one"
        );
    }

    #[test]
    fn term_smaller_than_ledger() {
        // Only reachable with a term behind the voter's own last entry, which a sane voter
        // never has; DLedger still checks it, so do we.
        let odd = VoterState { term: 3, ..voter() };
        assert_eq!(
            judge(&odd, C, 3, &request(10, 4), false),
            Verdict::Answer(RejectTermSmallThanLedger)
        );
    }

    #[test]
    fn taking_leadership_rejects_equal_logs_but_not_better_ones() {
        let taking = VoterState {
            taking_leadership: true,
            ..voter()
        };
        assert_eq!(
            judge(&taking, C, 5, &request(10, 4), false),
            Verdict::Answer(RejectTakingLeadership)
        );
        assert_eq!(judge(&taking, C, 5, &request(11, 4), false), Verdict::Grant);
        assert_eq!(
            judge(&taking, C, 5, &request(10, 4), true),
            Verdict::Grant,
            "its own vote"
        );
    }

    fn tally(answers: &[(VoteAnswer, u64)]) -> Tally {
        let mut t = Tally::default();
        for &(a, term) in answers {
            t.record(a, term);
        }
        t
    }

    #[test]
    fn outcome_passed() {
        let t = tally(&[(Accept, 5), (Accept, 5), (RejectAlreadyVoted, 5)]);
        assert_eq!(outcome(&t, 3, 5), Outcome::Passed);
    }

    #[test]
    fn outcome_revote_immediately() {
        let t = tally(&[(Accept, 5), (RejectTermNotReady, 5)]);
        assert_eq!(outcome(&t, 3, 5), Outcome::RevoteImmediately);
        assert!(t.decisive(3));
    }

    #[test]
    fn outcome_wait_to_revote_when_a_leader_exists() {
        let t = tally(&[(Accept, 5), (RejectAlreadyHasLeader, 5)]);
        assert_eq!(
            outcome(&t, 3, 5),
            Outcome::WaitToRevote(RevoteDelay::LeaderTimeout)
        );
    }

    #[test]
    fn outcome_wait_to_revote_without_enough_answers() {
        let t = tally(&[(Accept, 5), (Accept, 5)]);
        assert_eq!(outcome(&t, 5, 5), Outcome::WaitToRevote(RevoteDelay::None));
    }

    #[test]
    fn outcome_gives_way_to_better_logs() {
        let t = tally(&[
            (Accept, 5),
            (RejectSmallLedgerEndIndex, 5),
            (RejectExpiredLedgerTerm, 5),
        ]);
        assert_eq!(
            outcome(&t, 3, 5),
            Outcome::WaitToRevote(RevoteDelay::GiveWayToBetterLog)
        );
    }

    #[test]
    fn outcome_wait_to_vote_next() {
        let higher = tally(&[(Accept, 5), (RejectExpiredVoteTerm, 9)]);
        assert_eq!(outcome(&higher, 3, 5), Outcome::WaitToVoteNext);
        let split = tally(&[
            (Accept, 5),
            (RejectAlreadyVoted, 5),
            (RejectAlreadyVoted, 5),
        ]);
        assert_eq!(outcome(&split, 3, 5), Outcome::WaitToVoteNext);
    }

    #[test]
    fn quorum_sizes() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 3);
    }
}
