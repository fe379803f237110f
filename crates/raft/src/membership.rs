//! Who is in the group: voters, learners and their raft addresses, and how that changes
//! while the group runs.
//!
//! A change is a raft entry of its own (an internal entry on [`CHANNEL_MEMBERSHIP`] whose
//! body is the whole new [`Membership`]), and, as in the Raft dissertation's single-server
//! changes, a node uses the newest membership in its log from the moment it appends it,
//! committed or not. The leader allows one change at a time: the next only once the last is
//! durably committed, so any two successive memberships share a majority and no two
//! quorums can form. A new member joins as a learner: it receives the log but neither votes
//! nor counts towards commits until the leader sees it caught up and promotes it.
//!
//! A node keeps its memberships with the index of the entry that set each
//! ([`MembershipLog`]): a truncated log takes its membership back with it, and a follower
//! restarted at a leader's first retained entry gets the membership in force there. The
//! record list is persisted next to the term and vote (see [`crate::HardStateStore`]) before
//! anything that depends on it is acknowledged.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::peers::{PeerSpec, MAX_GROUP_SIZE};
use crate::storage::{LogStorage, StorageError};
use crate::NodeId;

/// The channel of the internal entries that carry a membership.
pub const CHANNEL_MEMBERSHIP: u32 = 1;

const FORMAT_VERSION: u8 = 1;
const MAX_ADDR_LEN: usize = 1024;

/// One member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    /// Raft address, `host:port`.
    pub addr: String,
    /// Votes and counts towards commits; a learner only receives the log.
    pub voter: bool,
}

/// Every member of the group at one point of the log, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    members: Vec<Member>,
}

/// A change an operator asks the leader for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Adds a learner that the leader promotes to voter once it has caught up.
    Add { id: NodeId, addr: String },
    /// Makes a learner a voter (the leader does this by itself when the learner caught up).
    Promote(NodeId),
    /// Removes a member, voter or learner.
    Remove(NodeId),
}

/// Why a membership, its encoding or a change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("{0} is already a member")]
    AlreadyMember(NodeId),
    #[error("{0} is not a member")]
    NotMember(NodeId),
    #[error("{0} is already a voter")]
    AlreadyVoter(NodeId),
    #[error("a group keeps at least one voter")]
    NoVoterLeft,
    #[error("a group has at most {max} members")]
    TooMany { max: usize },
    #[error("member address {0:?} is not `host:port`")]
    BadAddr(String),
    #[error("membership record is malformed: {0}")]
    Malformed(&'static str),
}

impl Membership {
    /// Every peer of the configured list as a voter: a group's membership before any change.
    pub fn bootstrap(peers: &[PeerSpec]) -> Membership {
        Membership::from_members(peers.iter().map(|p| Member {
            id: p.id,
            addr: p.addr.clone(),
            voter: true,
        }))
    }

    /// Voters without addresses (the consensus core does not need them; tests and the
    /// simulation).
    pub fn of_voters(ids: &[NodeId]) -> Membership {
        Membership::from_members(ids.iter().map(|&id| Member {
            id,
            addr: String::new(),
            voter: true,
        }))
    }

    fn from_members(members: impl Iterator<Item = Member>) -> Membership {
        let mut members: Vec<Member> = members.collect();
        members.sort_by_key(|m| m.id);
        members.dedup_by_key(|m| m.id);
        Membership { members }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|m| m.voter)
    }

    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| m.voter).map(|m| m.id)
    }

    pub fn learners(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| !m.voter).map(|m| m.id)
    }

    pub fn voter_count(&self) -> usize {
        self.members.iter().filter(|m| m.voter).count()
    }

    /// The peer list to connect to (the node's own entry included).
    pub fn peer_specs(&self) -> Vec<PeerSpec> {
        self.members
            .iter()
            .map(|m| PeerSpec {
                id: m.id,
                name: m.id.to_string(),
                addr: m.addr.clone(),
            })
            .collect()
    }

    /// The membership after `change`, or why the change cannot be made.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, MembershipError> {
        let mut members = self.members.clone();
        match change {
            MembershipChange::Add { id, addr } => {
                if self.contains(*id) {
                    return Err(MembershipError::AlreadyMember(*id));
                }
                if members.len() >= MAX_GROUP_SIZE {
                    return Err(MembershipError::TooMany {
                        max: MAX_GROUP_SIZE,
                    });
                }
                if !valid_addr(addr) {
                    return Err(MembershipError::BadAddr(addr.clone()));
                }
                members.push(Member {
                    id: *id,
                    addr: addr.clone(),
                    voter: false,
                });
            }
            MembershipChange::Promote(id) => {
                let member = members
                    .iter_mut()
                    .find(|m| m.id == *id)
                    .ok_or(MembershipError::NotMember(*id))?;
                if member.voter {
                    return Err(MembershipError::AlreadyVoter(*id));
                }
                member.voter = true;
            }
            MembershipChange::Remove(id) => {
                let at = members
                    .iter()
                    .position(|m| m.id == *id)
                    .ok_or(MembershipError::NotMember(*id))?;
                members.remove(at);
                if !members.iter().any(|m| m.voter) {
                    return Err(MembershipError::NoVoterLeft);
                }
            }
        }
        Ok(Membership::from_members(members.into_iter()))
    }

    /// The body of the entry that carries this membership.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode_into(&mut out);
        out.freeze()
    }

    fn encode_into(&self, out: &mut BytesMut) {
        out.put_u8(FORMAT_VERSION);
        out.put_u16(self.members.len() as u16);
        for m in &self.members {
            out.put_u32(m.id.0);
            out.put_u8(u8::from(m.voter));
            out.put_u16(m.addr.len() as u16);
            out.put_slice(m.addr.as_bytes());
        }
    }

    /// Reads an entry body written by [`Membership::encode`]; it is peer input, so every
    /// field is checked.
    pub fn decode(mut buf: &[u8]) -> Result<Membership, MembershipError> {
        let membership = Membership::decode_from(&mut buf)?;
        if !buf.is_empty() {
            return Err(MembershipError::Malformed("trailing bytes"));
        }
        Ok(membership)
    }

    fn decode_from(buf: &mut &[u8]) -> Result<Membership, MembershipError> {
        if buf.remaining() < 3 || buf.get_u8() != FORMAT_VERSION {
            return Err(MembershipError::Malformed("unknown format"));
        }
        let count = usize::from(buf.get_u16());
        if count == 0 || count > MAX_GROUP_SIZE {
            return Err(MembershipError::Malformed("member count"));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            if buf.remaining() < 7 {
                return Err(MembershipError::Malformed("truncated member"));
            }
            let id = NodeId(buf.get_u32());
            let voter = match buf.get_u8() {
                0 => false,
                1 => true,
                _ => return Err(MembershipError::Malformed("voter flag")),
            };
            let len = usize::from(buf.get_u16());
            if len > MAX_ADDR_LEN || buf.remaining() < len {
                return Err(MembershipError::Malformed("address length"));
            }
            let addr = std::str::from_utf8(&buf[..len])
                .map_err(|_| MembershipError::Malformed("address is not UTF-8"))?
                .to_string();
            buf.advance(len);
            members.push(Member { id, addr, voter });
        }
        let membership = Membership::from_members(members.into_iter());
        if membership.members.len() != count {
            return Err(MembershipError::Malformed("duplicate member"));
        }
        if membership.voter_count() == 0 {
            return Err(MembershipError::Malformed("no voter"));
        }
        Ok(membership)
    }
}

fn valid_addr(addr: &str) -> bool {
    addr.len() <= MAX_ADDR_LEN
        && addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        })
}

/// A membership and the log entry that set it (index 0: the configured peer list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub index: u64,
    pub term: u64,
    pub membership: Membership,
}

/// The memberships a node's log set, oldest first; never empty. The last one is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipLog {
    records: Vec<MembershipRecord>,
}

impl MembershipLog {
    /// A group that never changed: the configured peer list.
    pub fn bootstrap(membership: Membership) -> MembershipLog {
        MembershipLog {
            records: vec![MembershipRecord {
                index: 0,
                term: 0,
                membership,
            }],
        }
    }

    /// The membership in force.
    pub fn current(&self) -> &Membership {
        &self.last().membership
    }

    fn last(&self) -> &MembershipRecord {
        // Never empty: every constructor makes one record and nothing removes the first.
        &self.records[self.records.len() - 1]
    }

    /// Index of the entry that set the membership in force (0: the configured peer list).
    pub fn current_index(&self) -> u64 {
        self.last().index
    }

    pub fn records(&self) -> &[MembershipRecord] {
        &self.records
    }

    /// The membership in force once the log holds entries up to `index`.
    pub fn at(&self, index: u64) -> &Membership {
        &self
            .records
            .iter()
            .rev()
            .find(|r| r.index <= index)
            .unwrap_or(&self.records[0])
            .membership
    }

    pub(crate) fn push(&mut self, record: MembershipRecord) {
        self.records.push(record);
    }

    /// Forgets the memberships set by entries after `index` (a truncated log). Returns
    /// whether anything changed.
    pub(crate) fn truncate_after(&mut self, index: u64) -> bool {
        let keep = self
            .records
            .iter()
            .position(|r| r.index > index)
            .unwrap_or(self.records.len())
            .max(1);
        let changed = keep < self.records.len();
        self.records.truncate(keep);
        changed
    }

    /// The log restarted after `base`: what it held before is gone, and `membership` (the
    /// leader's, in force at `base`) replaces every record.
    pub(crate) fn restart_at(&mut self, base: u64, term: u64, membership: Membership) {
        self.records = vec![MembershipRecord {
            index: base,
            term,
            membership,
        }];
    }

    /// Drops records no longer needed to answer [`MembershipLog::at`] for any index from
    /// `first_kept` on.
    pub(crate) fn prune_before(&mut self, first_kept: u64) {
        let base = first_kept.saturating_sub(1);
        let in_force_at_base = self
            .records
            .iter()
            .rposition(|r| r.index <= base)
            .unwrap_or(0);
        self.records.drain(..in_force_at_base);
    }

    /// After a restart: drops the records whose entries the log no longer holds (a power
    /// cut took them, or they were never synced), so the membership in force is the newest
    /// one in the log.
    pub fn recover<S: LogStorage>(mut self, storage: &S) -> Result<MembershipLog, StorageError> {
        let first = storage.first_index();
        let last = storage.last_index();
        let mut keep = 1;
        for (i, r) in self.records.iter().enumerate().skip(1) {
            let held =
                r.index <= last && (r.index < first || storage.term(r.index)? == Some(r.term));
            if !held {
                break;
            }
            keep = i + 1;
        }
        if self.records[0].index > last {
            // The base itself is past the log's end: only possible if the log was replaced
            // behind the node's back; the base membership is still the best known.
            self.records[0].index = last;
        }
        self.records.truncate(keep);
        Ok(self)
    }

    /// The persisted form (see [`crate::HardStateStore::save_membership`]).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(FORMAT_VERSION);
        out.put_u16(self.records.len() as u16);
        for r in &self.records {
            out.put_u64(r.index);
            out.put_u64(r.term);
            r.membership.encode_into(&mut out);
        }
        out.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<MembershipLog, MembershipError> {
        if buf.remaining() < 3 || buf.get_u8() != FORMAT_VERSION {
            return Err(MembershipError::Malformed("unknown format"));
        }
        let count = usize::from(buf.get_u16());
        if count == 0 {
            return Err(MembershipError::Malformed("no record"));
        }
        let mut records = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            if buf.remaining() < 16 {
                return Err(MembershipError::Malformed("truncated record"));
            }
            let index = buf.get_u64();
            let term = buf.get_u64();
            let membership = Membership::decode_from(&mut buf)?;
            if records
                .last()
                .is_some_and(|r: &MembershipRecord| r.index >= index)
            {
                return Err(MembershipError::Malformed("records out of order"));
            }
            records.push(MembershipRecord {
                index,
                term,
                membership,
            });
        }
        if !buf.is_empty() {
            return Err(MembershipError::Malformed("trailing bytes"));
        }
        Ok(MembershipLog { records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemLog;

    fn peers(n: u32) -> Vec<PeerSpec> {
        (0..n)
            .map(|i| PeerSpec {
                id: NodeId(i),
                name: format!("n{i}"),
                addr: format!("127.0.0.1:{}", 40000 + i),
            })
            .collect()
    }

    #[test]
    fn changes_follow_the_rules() {
        let three = Membership::bootstrap(&peers(3));
        assert_eq!(three.voter_count(), 3);
        let add = MembershipChange::Add {
            id: NodeId(3),
            addr: "127.0.0.1:40003".into(),
        };
        let four = three.apply(&add).unwrap();
        assert!(four.contains(NodeId(3)) && !four.is_voter(NodeId(3)));
        assert_eq!(four.voter_count(), 3);
        assert_eq!(
            four.apply(&add),
            Err(MembershipError::AlreadyMember(NodeId(3)))
        );
        let promoted = four.apply(&MembershipChange::Promote(NodeId(3))).unwrap();
        assert_eq!(promoted.voter_count(), 4);
        assert_eq!(
            promoted.apply(&MembershipChange::Promote(NodeId(3))),
            Err(MembershipError::AlreadyVoter(NodeId(3)))
        );
        let without = promoted
            .apply(&MembershipChange::Remove(NodeId(0)))
            .unwrap();
        assert_eq!(without.voters().collect::<Vec<_>>(), [1, 2, 3].map(NodeId));
        let one = Membership::bootstrap(&peers(1));
        assert_eq!(
            one.apply(&MembershipChange::Remove(NodeId(0))),
            Err(MembershipError::NoVoterLeft)
        );
        for bad in ["", "host", "host:0", ":80", "host:99999"] {
            let change = MembershipChange::Add {
                id: NodeId(9),
                addr: bad.into(),
            };
            assert!(matches!(
                three.apply(&change),
                Err(MembershipError::BadAddr(_))
            ));
        }
    }

    #[test]
    fn membership_and_log_round_trip_and_refuse_garbage() {
        let m = Membership::bootstrap(&peers(3))
            .apply(&MembershipChange::Add {
                id: NodeId(7),
                addr: "broker-7.example:40911".into(),
            })
            .unwrap();
        assert_eq!(Membership::decode(&m.encode()).unwrap(), m);
        let mut log = MembershipLog::bootstrap(Membership::bootstrap(&peers(3)));
        log.push(MembershipRecord {
            index: 12,
            term: 3,
            membership: m.clone(),
        });
        assert_eq!(MembershipLog::decode(&log.encode()).unwrap(), log);
        let bytes = log.encode();
        for cut in 0..bytes.len() {
            assert!(
                MembershipLog::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for cut in 0..m.encode().len() {
            assert!(Membership::decode(&m.encode()[..cut]).is_err());
        }
    }

    #[test]
    fn the_log_follows_truncation_restart_and_recovery() {
        let base = Membership::of_voters(&[NodeId(0), NodeId(1), NodeId(2)]);
        let four = base
            .apply(&MembershipChange::Add {
                id: NodeId(3),
                addr: "h:1".into(),
            })
            .unwrap();
        let mut log = MembershipLog::bootstrap(base.clone());
        log.push(MembershipRecord {
            index: 5,
            term: 1,
            membership: four.clone(),
        });
        assert_eq!(log.at(4), &base);
        assert_eq!(log.at(5), &four);
        assert!(!log.truncate_after(5));
        assert!(log.truncate_after(4));
        assert_eq!(log.current(), &base);
        assert!(!log.truncate_after(0), "the base record stays");

        // Recovery keeps only what the log holds with the same term.
        let mut storage = MemLog::new();
        for index in 1..=3 {
            let entry = crate::entry::Entry {
                kind: crate::entry::EntryKind::Normal,
                index,
                term: 1,
                pos: storage.end_pos(),
                channel: 0,
                body: Bytes::new(),
            };
            let mut frame = BytesMut::new();
            entry.encode(&mut frame);
            storage.append(&[frame.freeze()]).unwrap();
        }
        let mut log = MembershipLog::bootstrap(base.clone());
        log.push(MembershipRecord {
            index: 2,
            term: 1,
            membership: four.clone(),
        });
        log.push(MembershipRecord {
            index: 3,
            term: 2,
            membership: base.clone(),
        });
        let recovered = log.clone().recover(&storage).unwrap();
        assert_eq!(recovered.records().len(), 2);
        assert_eq!(recovered.current(), &four);

        log.prune_before(3);
        assert_eq!(log.records()[0].index, 2);
        log.restart_at(10, 4, base.clone());
        assert_eq!(log.records().len(), 1);
        assert_eq!(log.current_index(), 10);
    }
}
