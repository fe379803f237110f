//! Membership changes as a node runs them: the leader's proposals (one change at a time,
//! learners promoted once caught up), the memberships followers take from the entries they
//! append, and what a cut log takes back. The rules of a single change are in
//! [`crate::membership`].

use bytes::Bytes;

use super::{Node, ProposeError, RoleState};
use crate::entry::{EntryHeader, EntryKind, ENTRY_HEADER_LEN};
use crate::membership::{
    Membership, MembershipChange, MembershipError, MembershipRecord, CHANNEL_MEMBERSHIP,
};
use crate::storage::{LogStorage, StorageError};
use crate::EntryPlace;

use super::progress::Progress;

impl<S: LogStorage> Node<S> {
    /// Appends a membership change on the leader; it is in force on this node at once and
    /// on each follower as soon as it appends the entry. Refused while the previous change
    /// is not durably committed, so two successive memberships always share a majority.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
    ) -> Result<EntryPlace, ProposeError> {
        let RoleState::Leader(ls) = &self.role else {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        };
        if ls.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        if change == MembershipChange::Remove(self.id) {
            return Err(ProposeError::RemovingLeader);
        }
        // A change made before this leader's own term is durably committed could rest on a
        // membership an earlier leader appended and a later election takes back.
        let previous = self.membership.current_index();
        if previous > self.safe_index || self.storage.term(self.safe_index)? != Some(self.term) {
            return Err(ProposeError::ChangeInProgress { index: previous });
        }
        let next = self.membership.current().apply(&change)?;
        let body = next.encode();
        let places = self.append_local(std::iter::once((
            EntryKind::Internal,
            CHANNEL_MEMBERSHIP,
            body,
            None,
        )))?;
        let place = places[0];
        tracing::info!(node = %self.id, index = place.index, ?change, membership = ?next,
            "membership change proposed");
        self.set_membership(MembershipRecord {
            index: place.index,
            term: place.term,
            membership: next,
        });
        self.maybe_commit()?;
        Ok(place)
    }

    /// Leader housekeeping: a learner that holds everything durably committed becomes a
    /// voter (it will not hold back commits by much once it counts).
    pub(super) fn promote_caught_up_learners(&mut self) -> Result<(), StorageError> {
        let RoleState::Leader(ls) = &self.role else {
            return Ok(());
        };
        let membership = self.membership.current();
        let caught_up = ls.progress.iter().find(|p| {
            membership.contains(p.id)
                && !membership.is_voter(p.id)
                && p.match_index >= self.commit_index
                && p.durable_match >= self.safe_index
        });
        let Some(learner) = caught_up.map(|p| p.id) else {
            return Ok(());
        };
        match self.propose_membership(MembershipChange::Promote(learner)) {
            Ok(_)
            | Err(ProposeError::ChangeInProgress { .. })
            | Err(ProposeError::Transferring) => Ok(()),
            Err(ProposeError::Storage(e)) => Err(e),
            Err(e) => {
                tracing::warn!(node = %self.id, %learner, error = %e, "could not promote a learner");
                Ok(())
            }
        }
    }

    /// Decodes the memberships among entries about to be appended, before anything is
    /// written: a body that does not decode is refused with the whole append.
    pub(super) fn memberships_in(
        headers: &[EntryHeader],
        frames: &[Bytes],
    ) -> Result<Vec<MembershipRecord>, MembershipError> {
        let mut found = Vec::new();
        for (header, frame) in headers.iter().zip(frames) {
            if header.kind == EntryKind::Internal && header.channel == CHANNEL_MEMBERSHIP {
                let body = frame
                    .get(ENTRY_HEADER_LEN..header.size())
                    .ok_or(MembershipError::Malformed("short frame"))?;
                found.push(MembershipRecord {
                    index: header.index,
                    term: header.term,
                    membership: Membership::decode(body)?,
                });
            }
        }
        Ok(found)
    }

    /// A membership set by an entry now in the log.
    pub(super) fn set_membership(&mut self, record: MembershipRecord) {
        let first = self.storage.first_index();
        self.membership.push(record);
        self.membership.prune_before(first);
        self.membership_changed();
    }

    /// The log was cut after `index`: memberships set after it no longer hold.
    pub(super) fn membership_truncated(&mut self, index: u64) {
        if self.membership.truncate_after(index) {
            self.membership_changed();
        }
    }

    /// The log restarted after `base` with the leader's membership in force there.
    pub(super) fn membership_restarted(&mut self, base: u64, term: u64, membership: Membership) {
        self.membership.restart_at(base, term, membership);
        self.membership_changed();
    }

    fn membership_changed(&mut self) {
        self.membership_dirty = true;
        let membership = self.membership.current().clone();
        let (next, now) = (self.storage.last_index() + 1, self.now);
        if let RoleState::Leader(ls) = &mut self.role {
            ls.progress.retain(|p| membership.contains(p.id));
            for member in membership.members() {
                if member.id != self.id && !ls.progress.iter().any(|p| p.id == member.id) {
                    ls.progress.push(Progress::new(member.id, next, now));
                }
            }
        }
    }
}
