//! Log replication the way DLedger's entry pusher does it, plus the Raft commit rule.
//!
//! Leader: per follower COMPARE (probe until the logs match, skipping a whole divergent term
//! per round trip), TRUNCATE (restart a follower that is behind our first retained entry at
//! that entry) and APPEND (pipelined batches up to a window in messages and bytes). An append
//! unanswered for `append_timeout_ms` sends the follower back to COMPARE, so a follower that
//! lost messages or timed out is re-synced without help.
//!
//! Follower: verifies every frame's checksums, index, term and position, cuts a divergent
//! tail at the first conflicting entry (never a committed one), writes the leader's bytes
//! verbatim, and acknowledges what it holds (with `sync_flush`: what it holds durably).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Event, Node, Progress, Proposal, ProposeError, RaftError, ReplicaState, RoleState};
use crate::entry::{EntryHeader, EntryKind, ENTRY_HEADER_LEN};
use crate::message::{
    Append, AppendResponse, AppendResult, Heartbeat, HeartbeatResponse, Payload, RejectReason,
};
use crate::storage::{LogStorage, StorageError};
use crate::{EntryPlace, NodeId};

/// Largest index `<= upto` whose term is `<= term`, searching the terms (which never
/// decrease along the log) by bisection. `None` when it would be before the log's base or
/// the base's term is unknown.
pub(super) fn last_index_with_term_at_most<S: LogStorage>(
    storage: &S,
    upto: u64,
    term: u64,
) -> Result<Option<u64>, StorageError> {
    let base = storage.first_index().saturating_sub(1);
    let upto = upto.min(storage.last_index());
    if upto < base {
        return Ok(None);
    }
    let at_most = |index: u64| -> Result<Option<bool>, StorageError> {
        Ok(storage.term(index)?.map(|t| t <= term))
    };
    if at_most(upto)? == Some(true) {
        return Ok(Some(upto));
    }
    // Invariant: term(hi) > term; answer in [lo, hi).
    let (mut lo, mut hi) = (base, upto);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at_most(mid)? == Some(true) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(match at_most(lo)? {
        Some(true) => Some(lo),
        _ => None,
    })
}

impl<S: LogStorage> Node<S> {
    // ---- proposals ----

    /// Appends entries on the leader, in order, and returns where each landed. All or
    /// nothing: on error nothing was appended. Placement patches run here, in log order.
    pub fn propose(&mut self, proposals: Vec<Proposal>) -> Result<Vec<EntryPlace>, ProposeError> {
        let RoleState::Leader(ls) = &self.role else {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        };
        if ls.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        let uncommitted = self.storage.last_index().saturating_sub(self.commit_index);
        if uncommitted + proposals.len() as u64 > self.config.max_uncommitted_entries {
            return Err(ProposeError::Busy { uncommitted });
        }
        let max_bytes = self.config.max_entry_body_bytes;
        if let Some(p) = proposals.iter().find(|p| p.body.len() > max_bytes) {
            return Err(ProposeError::TooLarge {
                body_bytes: p.body.len(),
                max_bytes,
            });
        }
        let places = self.append_local(
            proposals
                .into_iter()
                .map(|p| (EntryKind::Normal, p.channel, p.body, p.patch)),
        )?;
        self.after_local_append()?;
        Ok(places)
    }

    pub(super) fn append_noop(&mut self) -> Result<(), StorageError> {
        self.append_local(std::iter::once((
            EntryKind::Internal,
            0,
            Bytes::new(),
            None,
        )))?;
        Ok(())
    }

    /// Frames entries into one buffer (one allocation per batch), lets the storage place each,
    /// and appends them.
    pub(super) fn append_local(
        &mut self,
        items: impl ExactSizeIterator<Item = (EntryKind, u32, Bytes, Option<super::PatchFn>)>,
    ) -> Result<Vec<EntryPlace>, StorageError> {
        let mut places = Vec::with_capacity(items.len());
        let mut buf = BytesMut::new();
        let mut bounds = Vec::with_capacity(items.len());
        let mut end_pos = self.storage.end_pos();
        let first_index = self.storage.last_index() + 1;
        for (index, (kind, channel, body, patch)) in (first_index..).zip(items) {
            let framed = ENTRY_HEADER_LEN + body.len();
            let pos = self.storage.place(end_pos, framed as u64)?;
            let place = EntryPlace {
                index,
                term: self.term,
                pos,
            };
            let start = buf.len();
            buf.reserve(framed);
            buf.put_bytes(0, ENTRY_HEADER_LEN);
            buf.extend_from_slice(&body);
            let body_slice = &mut buf[start + ENTRY_HEADER_LEN..start + framed];
            if let Some(patch) = patch {
                patch(place, body_slice);
            }
            let header = EntryHeader {
                kind,
                index,
                term: self.term,
                pos,
                channel,
                body_crc: crc32c::crc32c(body_slice),
                body_len: body.len() as u32,
            };
            let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
            header.encode_into(&mut header_bytes);
            buf[start..start + ENTRY_HEADER_LEN].copy_from_slice(&header_bytes);
            bounds.push((start, start + framed));
            places.push(place);
            end_pos = pos + framed as u64;
        }
        let frozen = buf.freeze();
        let frames: Vec<Bytes> = bounds.iter().map(|&(s, e)| frozen.slice(s..e)).collect();
        self.storage.append(&frames)?;
        Ok(places)
    }

    fn after_local_append(&mut self) -> Result<(), StorageError> {
        // Without sync_flush the leader's own copy counts at once (a group of one commits
        // here); with it, when the driver reports the fsync.
        self.maybe_commit()
    }

    // ---- leader ----

    /// The Raft commit rule: the highest index held by a quorum commits if it is of the
    /// current term (section 5.4.2); older entries commit with it.
    pub(super) fn maybe_commit(&mut self) -> Result<(), StorageError> {
        let durable = self.durable_index();
        let Some(candidate) = self.voters_quorum_index(durable, |p| p.match_index) else {
            return Ok(());
        };
        if candidate > self.commit_index && self.storage.term(candidate)? == Some(self.term) {
            debug_assert!(candidate <= self.storage.last_index());
            self.commit_index = candidate;
        }
        self.maybe_advance_safe()
    }

    /// On the leader: the highest index a majority of the voters holds, this node's own
    /// being `own` and each follower's `held(progress)`.
    fn voters_quorum_index(&mut self, own: u64, held: impl Fn(&Progress) -> u64) -> Option<u64> {
        let RoleState::Leader(ls) = &self.role else {
            return None;
        };
        let membership = self.membership.current();
        let mut indexes = std::mem::take(&mut self.scratch);
        indexes.clear();
        if membership.is_voter(self.id) {
            indexes.push(own);
        }
        indexes.extend(
            ls.progress
                .iter()
                .filter(|p| membership.is_voter(p.id))
                .map(held),
        );
        let mut sorted = Vec::with_capacity(indexes.len());
        let candidate = super::progress::quorum_index(&indexes, &mut sorted);
        self.scratch = indexes;
        Some(candidate)
    }

    /// The commit rule again over what each member holds on disk: the durable commit index.
    fn maybe_advance_safe(&mut self) -> Result<(), StorageError> {
        if self.config.sync_flush {
            // Matches are fsynced before they are acknowledged: every commit is durable.
            self.safe_index = self.commit_index;
            return Ok(());
        }
        let own = self.persisted_index.min(self.storage.last_index());
        let Some(held) = self.voters_quorum_index(own, |p| p.durable_match) else {
            return Ok(());
        };
        let candidate = held.min(self.commit_index);
        if candidate > self.safe_index && self.storage.term(candidate)? == Some(self.term) {
            self.safe_index = candidate;
        }
        Ok(())
    }

    pub(super) fn broadcast_heartbeats(&mut self) {
        let RoleState::Leader(ls) = &mut self.role else {
            return;
        };
        ls.next_heartbeat_at = self.now + self.ticks.heartbeat;
        // The leader learns what followers hold on disk only from append answers. When a
        // follower's report of a finished fsync was lost, or it restarted since, and nothing
        // new is to be appended, the durable commit index would never move, and a new
        // leader (handed entries only once its no-op is durably committed) would never
        // become writable. Ask such followers again with an empty append.
        if !self.config.sync_flush && self.safe_index < self.commit_index {
            let commit = self.commit_index;
            for p in &mut ls.progress {
                if p.state == ReplicaState::Append
                    && p.inflight.is_empty()
                    && p.durable_match < p.match_index.min(commit)
                {
                    let next = p.match_index + 1;
                    p.rewind(ReplicaState::Compare, next);
                }
            }
        }
        let beats: Vec<(NodeId, u64, u64)> = ls
            .progress
            .iter()
            .map(|p| {
                (
                    p.id,
                    self.commit_index.min(p.match_index),
                    self.safe_index.min(p.match_index),
                )
            })
            .collect();
        for (to, commit_index, safe_index) in beats {
            self.send(
                to,
                Payload::Heartbeat(Heartbeat {
                    commit_index,
                    safe_index,
                }),
            );
        }
    }

    pub(super) fn check_append_timeouts(&mut self) -> Result<(), StorageError> {
        let first = self.storage.first_index();
        let RoleState::Leader(ls) = &mut self.role else {
            return Ok(());
        };
        for p in &mut ls.progress {
            if p.timed_out(self.now, self.ticks.append_timeout) {
                tracing::debug!(peer = %p.id, state = ?p.state, next = p.next_index,
                    "append timed out: re-probing");
                match p.state {
                    ReplicaState::Truncate => p.rewind(ReplicaState::Truncate, first),
                    _ => {
                        let next = p.match_index + 1;
                        p.rewind(ReplicaState::Compare, next);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends every follower what its window allows.
    pub(super) fn flush_replication(&mut self) -> Result<(), StorageError> {
        let RoleState::Leader(ls) = &mut self.role else {
            return Ok(());
        };
        let mut out = std::mem::take(&mut self.out.messages);
        let mut damaged = None;
        let repairing = self.repair.map(|r| r.index);
        for p in &mut ls.progress {
            let pushed = push_to_follower(
                p,
                &self.storage,
                &self.config,
                &self.membership,
                self.now,
                self.term,
                (self.commit_index, self.safe_index),
                self.id,
                repairing,
                &mut out,
            );
            match pushed {
                Ok(()) => {}
                // This follower waits for the repair; the others go on.
                Err(StorageError::DamagedEntry { index, .. }) => damaged = Some(index),
                Err(e) => {
                    self.out.messages = out;
                    return Err(e);
                }
            }
        }
        self.out.messages = out;
        if let Some(index) = damaged {
            self.on_damaged_entry(index);
        }
        Ok(())
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        term: u64,
        resp: AppendResponse,
    ) -> Result<(), RaftError> {
        if term > self.term {
            self.become_follower(term, None);
            return Ok(());
        }
        if term < self.term {
            return Ok(());
        }
        let last = self.storage.last_index();
        let first = self.storage.first_index();
        let RoleState::Leader(ls) = &mut self.role else {
            return Ok(());
        };
        let Some(p) = ls.progress.iter_mut().find(|p| p.id == from) else {
            return Ok(());
        };
        p.last_contact = self.now;
        match resp.result {
            AppendResult::Success {
                match_index,
                persisted_index,
            } => {
                let match_index = match_index.min(last);
                if match_index > p.match_index {
                    p.match_index = match_index;
                    p.match_seq = p.next_seq;
                }
                let durable = if self.config.sync_flush {
                    match_index
                } else {
                    persisted_index.min(match_index)
                };
                p.durable_match = p.durable_match.max(durable);
                p.release_through(p.match_index);
                if p.state != ReplicaState::Append && resp.seq >= p.rewind_seq {
                    // The probe matched. If it is only partly acknowledged (a follower with
                    // sync_flush acknowledges what it fsynced), it stays in flight, so the
                    // append timeout still covers the rest.
                    p.state = ReplicaState::Append;
                }
                if p.next_index <= p.match_index {
                    p.next_index = p.match_index + 1;
                }
                self.maybe_commit()?;
                self.try_send_take_leadership();
            }
            AppendResult::Inconsistent {
                hint_index,
                hint_term,
                last_index,
            } => {
                if resp.seq < p.rewind_seq {
                    return Ok(());
                }
                // A follower still holding our entry at `match_index` answers a hint at or
                // after it (the probe is after it and terms never decrease along a log), and
                // at it only with our term there.
                let ours_at_hint = self.storage.term(hint_index)?;
                let lost = hint_index < p.match_index
                    || (hint_index == p.match_index
                        && ours_at_hint.is_some()
                        && ours_at_hint != Some(hint_term));
                if lost && resp.seq < p.match_seq {
                    // Overtaken by a later success (answers may arrive out of order).
                    return Ok(());
                }
                if lost {
                    // Only possible when a follower lost acknowledged entries (a power cut
                    // without sync_flush), whether or not older entries took their place:
                    // forget what it no longer has.
                    tracing::warn!(peer = %from, last_index, hint_index, match_index = p.match_index,
                        "follower lost acknowledged entries");
                    p.match_index =
                        hint_index.saturating_sub(u64::from(hint_index == p.match_index));
                    p.durable_match = p.durable_match.min(p.match_index);
                }
                let peer_idx = ls.progress.iter().position(|q| q.id == from);
                let found = last_index_with_term_at_most(&self.storage, hint_index, hint_term)?;
                let RoleState::Leader(ls) = &mut self.role else {
                    return Ok(());
                };
                let Some(p) = peer_idx.and_then(|i| ls.progress.get_mut(i)) else {
                    return Ok(());
                };
                match found {
                    Some(j) if j + 1 >= first => p.rewind(ReplicaState::Compare, j + 1),
                    _ => p.rewind(ReplicaState::Truncate, first),
                }
            }
            AppendResult::Rejected(reason) => {
                tracing::error!(peer = %from, ?reason, "follower rejected an append");
                self.out
                    .events
                    .push(Event::ReplicationRejected { peer: from, reason });
            }
            AppendResult::ExpiredTerm => {}
        }
        Ok(())
    }

    pub(super) fn on_heartbeat_response(
        &mut self,
        from: NodeId,
        term: u64,
        resp: HeartbeatResponse,
    ) {
        if term > self.term {
            self.become_follower(term, None);
            return;
        }
        if term < self.term {
            return;
        }
        if resp == HeartbeatResponse::InconsistentLeader {
            tracing::error!(peer = %from, term, "peer follows another leader in our term");
        }
        let now = self.now;
        if let RoleState::Leader(ls) = &mut self.role {
            if let Some(p) = ls.progress.iter_mut().find(|p| p.id == from) {
                p.last_contact = now;
            }
        }
    }

    // ---- follower ----

    /// Accepts `from` as leader of `term` if nothing contradicts it. Returns false when the
    /// message must be refused (older term, or another leader known in this term).
    fn accept_leader(&mut self, from: NodeId, term: u64) -> bool {
        if term < self.term {
            return false;
        }
        if term == self.term && self.leader.is_some() && self.leader != Some(from) {
            tracing::error!(node = %self.id, term, leader = ?self.leader, other = %from,
                "two leaders in one term");
            return false;
        }
        if term > self.term
            || self.leader != Some(from)
            || !matches!(self.role, RoleState::Follower)
        {
            self.become_follower(term, Some(from));
        }
        self.last_leader_contact = self.now;
        true
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, term: u64, hb: Heartbeat) {
        if !self.accept_leader(from, term) {
            let result = if term < self.term {
                HeartbeatResponse::ExpiredTerm
            } else {
                HeartbeatResponse::InconsistentLeader
            };
            self.send(from, Payload::HeartbeatResponse(result));
            return;
        }
        self.advance_follower_commit(hb.commit_index, hb.safe_index);
        self.send(from, Payload::HeartbeatResponse(HeartbeatResponse::Success));
    }

    fn advance_follower_commit(&mut self, leader_commit: u64, leader_safe: u64) {
        let commit = leader_commit.min(self.leader_match);
        if commit > self.commit_index {
            self.commit_index = commit;
        }
        let safe = leader_safe.min(self.leader_match).min(self.commit_index);
        if safe > self.safe_index {
            self.safe_index = safe;
        }
    }

    /// The last entry no leader can ask this follower to replace: durably committed (with
    /// `sync_flush`, that is every committed entry).
    fn irreplaceable_index(&self) -> u64 {
        if self.config.sync_flush {
            self.commit_index
        } else {
            self.safe_index
        }
    }

    /// Without sync_flush: an entry counted as committed but not durable on a quorum is being
    /// replaced, which happens only after a quorum lost power. What was acknowledged there is
    /// lost (ASYNC_FLUSH's documented risk); nothing was applied, so nothing applied changes.
    fn forget_commits_after(&mut self, index: u64) {
        if self.commit_index > index {
            tracing::warn!(node = %self.id, commit = self.commit_index, kept = index,
                "entries committed in memory but not durable on a quorum were lost to a power cut; dropping them");
            self.commit_index = index;
        }
    }

    /// Answers an append. A success takes the place of this round's last message to the
    /// same leader when that is a success it covers (a later sequence number, match and
    /// persisted index at least as high, same term): a follower that took several appends
    /// in one round acknowledges them with one message, and the leader learns the same
    /// from it with fewer messages to send, read and step.
    pub(super) fn reply_append(&mut self, to: NodeId, seq: u64, result: AppendResult) {
        let answer = AppendResponse { seq, result };
        let term = self.term;
        let last_to_peer = self.out.messages.iter_mut().rev().find(|m| m.to == to);
        if let Some(last) = last_to_peer.filter(|m| m.term == term) {
            if let Payload::AppendResponse(earlier) = &mut last.payload {
                if covers(&answer, earlier) {
                    *earlier = answer;
                    return;
                }
            }
        }
        self.send(to, Payload::AppendResponse(answer));
    }

    fn reply_inconsistent(
        &mut self,
        to: NodeId,
        seq: u64,
        prev_index: u64,
        prev_term: u64,
    ) -> Result<(), StorageError> {
        let last_index = self.storage.last_index();
        let upto = prev_index.min(last_index);
        let (hint_index, hint_term) =
            match last_index_with_term_at_most(&self.storage, upto, prev_term)? {
                Some(i) => (i, self.storage.term(i)?.unwrap_or(0)),
                None => (self.storage.first_index().saturating_sub(1), 0),
            };
        self.reply_append(
            to,
            seq,
            AppendResult::Inconsistent {
                hint_index,
                hint_term,
                last_index,
            },
        );
        Ok(())
    }

    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        term: u64,
        append: Append,
    ) -> Result<(), RaftError> {
        let seq = append.seq;
        if !self.accept_leader(from, term) {
            let result = if term < self.term {
                AppendResult::ExpiredTerm
            } else {
                AppendResult::Rejected(RejectReason::InconsistentLeader)
            };
            self.reply_append(from, seq, result);
            return Ok(());
        }
        // Indexes and positions are peer input: keep the arithmetic below far from overflow.
        let sane = append.prev_index < u64::MAX / 2 && append.entries.len() < (u32::MAX as usize);
        let verified = if sane {
            verify_frames(&append, term)
        } else {
            None
        };
        let Some(headers) = verified else {
            self.reply_append(
                from,
                seq,
                AppendResult::Rejected(RejectReason::CorruptEntry),
            );
            return Ok(());
        };
        // Positions inside the batch must follow the storage's placement rule.
        for pair in headers.windows(2) {
            let Some(end) = pair[0].pos.checked_add(pair[0].size() as u64) else {
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::CorruptEntry),
                );
                return Ok(());
            };
            // A placement the storage refuses is the sender's problem, not ours.
            let expected = self.storage.place(end, pair[1].size() as u64).ok();
            if Some(pair[1].pos) != expected {
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::PositionMismatch),
                );
                return Ok(());
            }
        }

        let mut prev_checked = false;
        if append.restart {
            let Some(first) = headers.first() else {
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::EmptyRestart),
                );
                return Ok(());
            };
            let have_first = self.storage.term(first.index)? == Some(first.term);
            // At or below our base everything is committed, hence equal to the leader's.
            let have_prev = append.prev_index < self.storage.first_index()
                || match append.prev_term {
                    Some(t) => self.storage.term(append.prev_index)? == Some(t),
                    None => false,
                };
            if have_first || have_prev {
                prev_checked = true;
            } else {
                if first.index <= self.irreplaceable_index()
                    && self.storage.last_index() >= first.index
                {
                    self.reply_append(
                        from,
                        seq,
                        AppendResult::Rejected(RejectReason::ConflictWithCommitted),
                    );
                    return Ok(());
                }
                tracing::warn!(node = %self.id, next_index = first.index, next_pos = first.pos,
                    "log restarts at the leader's first entry");
                let base_membership = match append.base_membership.as_deref() {
                    Some(body) => match crate::membership::Membership::decode(body) {
                        Ok(membership) => Some(membership),
                        Err(_) => {
                            self.reply_append(
                                from,
                                seq,
                                AppendResult::Rejected(RejectReason::CorruptEntry),
                            );
                            return Ok(());
                        }
                    },
                    None => None,
                };
                self.storage
                    .reset(first.index, first.pos, append.prev_term)?;
                self.log_cuts += 1;
                let base = first.index - 1;
                // A leader that sends no membership predates membership changes: the one
                // this node had is the group's.
                let membership =
                    base_membership.unwrap_or_else(|| self.membership.current().clone());
                self.membership_restarted(base, append.prev_term.unwrap_or(0), membership);
                self.forget_commits_after(base);
                self.persisted_index = base;
                self.leader_match = self.leader_match.max(base);
                self.commit_index = self.commit_index.max(base);
                self.safe_index = self.safe_index.max(base);
                self.out.events.push(Event::LogRestarted {
                    next_index: first.index,
                    next_pos: first.pos,
                });
                prev_checked = true;
            }
        }

        let base = self.storage.first_index() - 1;
        let last = self.storage.last_index();
        if !prev_checked {
            if append.prev_index > last {
                let prev_term = append.prev_term.unwrap_or(0);
                self.reply_inconsistent(from, seq, append.prev_index, prev_term)?;
                return Ok(());
            }
            // At or below the base everything is committed, hence equal to the leader's.
            if append.prev_index > base {
                let mine = self.storage.term(append.prev_index)?;
                if mine.is_none() || mine != append.prev_term {
                    let prev_term = append.prev_term.unwrap_or(0);
                    self.reply_inconsistent(from, seq, append.prev_index, prev_term)?;
                    return Ok(());
                }
            }
        }

        // Skip what we already hold; cut at the first conflict.
        let mut append_from = None;
        for (i, h) in headers.iter().enumerate() {
            if h.index <= base {
                continue;
            }
            if h.index > self.storage.last_index() {
                append_from = Some(i);
                break;
            }
            if self.storage.term(h.index)? == Some(h.term) {
                continue;
            }
            if h.index <= self.irreplaceable_index() {
                tracing::error!(node = %self.id, index = h.index,
                    "leader sent an entry conflicting with a durably committed one");
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::ConflictWithCommitted),
                );
                return Ok(());
            }
            // Never below the durable commit point: such an entry never changes.
            debug_assert!(h.index > self.irreplaceable_index());
            self.forget_commits_after(h.index - 1);
            self.storage.truncate_after(h.index - 1)?;
            self.membership_truncated(h.index - 1);
            self.log_cuts += 1;
            self.persisted_index = self.persisted_index.min(h.index - 1);
            append_from = Some(i);
            break;
        }
        if let Some(i) = append_from {
            let first_new = &headers[i];
            let expected = self
                .storage
                .place(self.storage.end_pos(), first_new.size() as u64)
                .ok();
            if Some(first_new.pos) != expected {
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::PositionMismatch),
                );
                return Ok(());
            }
            let Ok(memberships) = Self::memberships_in(&headers[i..], &append.entries[i..]) else {
                self.reply_append(
                    from,
                    seq,
                    AppendResult::Rejected(RejectReason::CorruptEntry),
                );
                return Ok(());
            };
            self.storage.append(&append.entries[i..])?;
            for record in memberships {
                self.set_membership(record);
            }
        }
        let verified = append.prev_index + headers.len() as u64;
        self.leader_match = self.leader_match.max(verified);
        self.advance_follower_commit(append.commit_index, append.safe_index);
        self.last_append_seq = Some(seq);
        if self.config.sync_flush && self.persisted_index < self.leader_match {
            // Answer once the fsync covers it (the driver reports it with on_persisted).
            self.pending_ack = Some(seq);
        } else {
            self.reply_append(
                from,
                seq,
                AppendResult::Success {
                    match_index: self.leader_match,
                    persisted_index: self.persisted_index.min(self.leader_match),
                },
            );
        }
        Ok(())
    }

    /// Without sync_flush: tells the leader how far this log is now on disk (answers went out
    /// before the fsync), so it can advance the durable commit index.
    pub(super) fn report_persisted(&mut self) {
        let (RoleState::Follower, Some(leader), Some(seq)) =
            (&self.role, self.leader, self.last_append_seq)
        else {
            return;
        };
        if self.leader_match == 0 {
            return;
        }
        let result = AppendResult::Success {
            match_index: self.leader_match,
            persisted_index: self.persisted_index.min(self.leader_match),
        };
        self.reply_append(leader, seq, result);
    }

    pub(super) fn flush_pending_ack(&mut self) {
        let (RoleState::Follower, Some(leader)) = (&self.role, self.leader) else {
            return;
        };
        let Some(seq) = self.pending_ack else {
            return;
        };
        let match_index = self.leader_match.min(self.persisted_index);
        if match_index >= self.leader_match {
            self.pending_ack = None;
        }
        self.reply_append(
            leader,
            seq,
            AppendResult::Success {
                match_index,
                persisted_index: match_index,
            },
        );
    }
}

/// Decodes and verifies the frames of an append: both checksums, consecutive indexes after
/// `prev_index`, and terms that never decrease and never exceed the leader's.
fn verify_frames(append: &Append, leader_term: u64) -> Option<Vec<EntryHeader>> {
    let mut headers = Vec::with_capacity(append.entries.len());
    let mut min_term = append.prev_term.unwrap_or(0);
    for (expected_index, frame) in (append.prev_index + 1..).zip(&append.entries) {
        let header = EntryHeader::decode(frame).ok()?;
        if frame.len() != header.size()
            || header.index != expected_index
            || header.term < min_term
            || header.term > leader_term
            || crc32c::crc32c(&frame[ENTRY_HEADER_LEN..]) != header.body_crc
        {
            return None;
        }
        min_term = header.term;
        headers.push(header);
    }
    Some(headers)
}

/// Fills one follower's window: probes in COMPARE/TRUNCATE, pipelined batches in APPEND.
#[allow(clippy::too_many_arguments)]
fn push_to_follower<S: LogStorage>(
    p: &mut Progress,
    storage: &S,
    config: &crate::RaftConfig,
    membership: &crate::membership::MembershipLog,
    now: u64,
    term: u64,
    (commit_index, safe_index): (u64, u64),
    from: NodeId,
    repairing: Option<u64>,
    out: &mut Vec<crate::Message>,
) -> Result<(), StorageError> {
    let first = storage.first_index();
    let last = storage.last_index();
    // Bounded: each pass sends a batch or changes state, and the window caps batches.
    for _ in 0..config.max_inflight_batches + 2 {
        if !p.can_send(config.max_inflight_batches, config.max_inflight_bytes) {
            break;
        }
        let restart = p.state == ReplicaState::Truncate;
        let from_index = if restart { first } else { p.next_index };
        if p.state == ReplicaState::Append && from_index > last {
            break;
        }
        if !restart && from_index < first {
            p.rewind(ReplicaState::Truncate, first);
            continue;
        }
        if repairing == Some(from_index) {
            // The next entry to send is damaged here: it goes once repaired.
            break;
        }
        let prev_index = from_index - 1;
        let prev_term = storage.term(prev_index)?;
        if !restart && prev_term.is_none() {
            p.rewind(ReplicaState::Truncate, first);
            continue;
        }
        let entries = if from_index <= last {
            storage.read(from_index, config.max_batch_entries, config.max_batch_bytes)?
        } else {
            Vec::new()
        };
        if restart && entries.is_empty() {
            break;
        }
        let bytes: usize = entries.iter().map(Bytes::len).sum();
        let last_sent = prev_index + entries.len() as u64;
        let seq = p.record_sent(last_sent, bytes, now);
        p.next_index = last_sent + 1;
        // A restarted follower has none of the entries that set the membership before them.
        let base_membership = restart.then(|| membership.at(prev_index).encode());
        let probing = p.state != ReplicaState::Append;
        let empty = entries.is_empty();
        out.push(crate::Message {
            from,
            to: p.id,
            term,
            payload: Payload::Append(Append {
                seq,
                prev_index,
                prev_term,
                commit_index,
                safe_index,
                restart,
                entries,
                base_membership,
            }),
        });
        if probing || empty {
            break;
        }
    }
    Ok(())
}

/// Whether the successful answer `later` says everything the successful answer `earlier`
/// said.
fn covers(later: &AppendResponse, earlier: &AppendResponse) -> bool {
    match (later.result, earlier.result) {
        (
            AppendResult::Success {
                match_index,
                persisted_index,
            },
            AppendResult::Success {
                match_index: earlier_match,
                persisted_index: earlier_persisted,
            },
        ) => {
            later.seq > earlier.seq
                && match_index >= earlier_match
                && persisted_index >= earlier_persisted
        }
        _ => false,
    }
}
