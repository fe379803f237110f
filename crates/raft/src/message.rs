//! The messages raft nodes exchange. Their binary encoding lives in [`crate::codec`].

use bytes::Bytes;

use crate::NodeId;

/// One message between two members of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's current term (for a vote answer of `RejectTermSmallThanLedger`, the term
    /// of the voter's last entry, as DLedger does).
    pub term: u64,
    pub payload: Payload,
}

/// Most entries one merged append may carry (see [`Message::absorb`]); a step stays short.
const MAX_MERGED_ENTRIES: usize = 8192;

impl Message {
    /// Takes `next` into this message when both are appends from the same leader in the
    /// same term and `next` continues exactly where this one's entries end: stepping the
    /// merged append is stepping the two in order, with one write to the log and one
    /// answer (for `next`'s sequence number, which covers both). Returns `next` when it
    /// cannot be merged.
    pub fn absorb(&mut self, next: Message) -> Option<Message> {
        let continues = |held: &Append, next: &Append| {
            let Some(last) = held.entries.last() else {
                return false;
            };
            let last_term = match crate::entry::EntryHeader::decode(last) {
                Ok(header) => header.term,
                Err(_) => return false,
            };
            !held.restart
                && !next.restart
                && next.base_membership.is_none()
                && !next.entries.is_empty()
                && held.entries.len() + next.entries.len() <= MAX_MERGED_ENTRIES
                && next.seq > held.seq
                && held.prev_index.checked_add(held.entries.len() as u64) == Some(next.prev_index)
                && next.prev_term == Some(last_term)
        };
        let same_sender = next.from == self.from && next.to == self.to && next.term == self.term;
        match (&mut self.payload, next.payload) {
            (Payload::Append(held), Payload::Append(appended))
                if same_sender && continues(held, &appended) =>
            {
                held.seq = appended.seq;
                held.commit_index = held.commit_index.max(appended.commit_index);
                held.safe_index = held.safe_index.max(appended.safe_index);
                held.entries.extend(appended.entries);
                None
            }
            (_, payload) => Some(Message { payload, ..next }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    VoteRequest(VoteRequest),
    VoteResponse(VoteResponse),
    Heartbeat(Heartbeat),
    HeartbeatResponse(HeartbeatResponse),
    Append(Append),
    AppendResponse(AppendResponse),
    /// Sent by a leader to the node it hands leadership to: campaign now, at the next term.
    TakeLeadership,
    /// The answer to a vote request from a node the group removed: the sender's committed
    /// membership, set by the entry at `membership_index`, does not list the candidate.
    /// A removed member never receives the entry that removed it (the leader stops
    /// replicating to it at once), so this is how it learns.
    NotMember {
        membership_index: u64,
    },
    /// The sender read entry `index` back damaged and asks for an intact copy. Any member
    /// holding that entry answers, leader or not, whatever the terms of the two nodes.
    EntryRequest {
        index: u64,
    },
    /// An intact copy of entry `index`, as the sender holds it (one frame). The asker
    /// checks it against the term it holds for that index before writing it over its
    /// damaged copy: the same index and term mean the same entry (log matching).
    EntryCopy {
        index: u64,
        frame: Bytes,
    },
}

/// A request for a vote. `Message::term` is the term the candidate asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteRequest {
    /// A pre-vote asks "would you vote for me at this term?" and changes no state.
    pub pre_vote: bool,
    /// The candidate was asked by the leader to take over: voters skip the leader lease.
    pub take_leadership: bool,
    pub last_index: u64,
    pub last_term: u64,
}

/// A voter's answer. DLedger's answers, same names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteAnswer {
    Accept,
    /// Voted for another candidate in this term, no leader known.
    RejectAlreadyVoted,
    /// A leader is known (voted for another and it won, or its lease still holds).
    RejectAlreadyHasLeader,
    /// The candidate's term is behind the voter's.
    RejectExpiredVoteTerm,
    /// The candidate's last entry has an older term than the voter's.
    RejectExpiredLedgerTerm,
    /// Same last term, but the candidate's log is shorter.
    RejectSmallLedgerEndIndex,
    /// The voter was behind the candidate's term; it adopted the term (fsynced) but votes only
    /// once both agree, so the candidate should ask again at once.
    RejectTermNotReady,
    /// The candidate's term is behind the voter's last entry term.
    RejectTermSmallThanLedger,
    /// The voter is itself taking leadership (a transfer is under way).
    RejectTakingLeadership,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteResponse {
    pub pre_vote: bool,
    /// The term the request asked for, so the candidate can match answer and round.
    pub request_term: u64,
    pub answer: VoteAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Leader's commit index, capped at what this follower is known to hold.
    pub commit_index: u64,
    /// Leader's durable commit index (entries a quorum holds on disk), capped the same way.
    pub safe_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatResponse {
    Success,
    /// The heartbeat's term is older than the follower's (which is `Message::term`).
    ExpiredTerm,
    /// The follower follows another leader in the same term (must never happen).
    InconsistentLeader,
}

/// Entries for a follower. `entries` are whole frames (header + body, as stored), so the
/// follower verifies their checksums and writes the same bytes at the same positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// Per-follower sequence number, echoed in the answer.
    pub seq: u64,
    pub prev_index: u64,
    /// Term of `prev_index` on the leader; `None` when the leader no longer knows it.
    pub prev_term: Option<u64>,
    pub commit_index: u64,
    /// Leader's durable commit index: only entries up to here may be applied.
    pub safe_index: u64,
    /// The follower's log must start over at the first entry (it is behind the leader's
    /// first retained entry, or its log is empty).
    pub restart: bool,
    pub entries: Vec<Bytes>,
    /// With `restart`: the membership in force at `prev_index` (an encoded
    /// [`crate::membership::Membership`]), which the follower's log no longer shows.
    pub base_membership: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResponse {
    pub seq: u64,
    pub result: AppendResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log equals the leader's up to `match_index` (and, with `sync_flush`,
    /// holds it durably), and is on its disk up to `persisted_index` (at most `match_index`).
    /// Without `sync_flush` a follower also sends this when an fsync completes, so the
    /// leader learns what a quorum holds durably.
    Success {
        match_index: u64,
        persisted_index: u64,
    },
    /// `prev` did not match. `hint_index`/`hint_term`: the follower's last entry at or before
    /// the probe whose term is not above the probe's term, so the leader can skip a whole
    /// divergent term per round trip.
    Inconsistent {
        hint_index: u64,
        hint_term: u64,
        last_index: u64,
    },
    /// The append cannot be used; the leader retries after its append timeout.
    Rejected(RejectReason),
    /// The append's term is older than the follower's (`Message::term`).
    ExpiredTerm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A frame failed its checksum or does not continue the batch.
    CorruptEntry,
    /// An entry's position is not where this follower's storage places it (different
    /// segment size configured?).
    PositionMismatch,
    /// The append would change an entry this follower has committed (must never happen).
    ConflictWithCommitted,
    /// The follower follows another leader in this term (must never happen).
    InconsistentLeader,
    /// A restart append without entries.
    EmptyRestart,
}
