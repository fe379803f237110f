//! Term and vote: the state that must survive a crash before a vote is answered or a new
//! term is acted upon. DLedger writes it without fsync; here `save` returns only once the
//! bytes are on disk. The membership records (see [`crate::membership`]) are kept alongside,
//! under the same rule: durable before anything that depends on them goes out.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::membership::MembershipLog;
use crate::NodeId;

/// The persistent election state of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// Where a node keeps its [`HardState`].
pub trait HardStateStore: Send + 'static {
    fn load(&mut self) -> Result<HardState, HardStateError>;
    /// Returns once `state` is durable.
    fn save(&mut self, state: &HardState) -> Result<(), HardStateError>;
    /// The membership records last saved; `None` for a node that never saved any (its
    /// membership is the configured peer list).
    fn load_membership(&mut self) -> Result<Option<MembershipLog>, HardStateError>;
    /// Returns once `membership` is durable.
    fn save_membership(&mut self, membership: &MembershipLog) -> Result<(), HardStateError>;
    /// The index below which the node withholds its vote (0: none); see
    /// [`crate::Node::withhold_votes_below`].
    fn load_vote_floor(&mut self) -> Result<u64, HardStateError>;
    /// Returns once `index` is durable.
    fn save_vote_floor(&mut self, index: u64) -> Result<(), HardStateError>;
}

#[derive(Debug, thiserror::Error)]
pub enum HardStateError {
    #[error("hard state I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hard state file {0} is corrupt")]
    Corrupt(PathBuf),
}

const MEMBERSHIP_MAGIC: &[u8; 4] = b"RFMS";
/// A membership file holds a few records of at most nine members each.
const MAX_MEMBERSHIP_FILE: u64 = 1 << 20;

const VOTE_FLOOR_MAGIC: &[u8; 4] = b"RFVF";
const VOTE_FLOOR_FILE_LEN: usize = 4 + 8 + 4;

const MAGIC: &[u8; 4] = b"RFHS";
const FILE_LEN: usize = 4 + 8 + 1 + 4 + 4;
const NO_VOTE: u32 = u32::MAX;

/// A small file, replaced atomically: write a temporary file, fsync it, rename it over the
/// old one, fsync the directory. The content carries a CRC32C so a torn write is noticed.
#[derive(Debug)]
pub struct FileHardStateStore {
    path: PathBuf,
    membership_path: PathBuf,
    vote_floor_path: PathBuf,
}

impl FileHardStateStore {
    /// Keeps the state in `dir/raft-hard-state`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<FileHardStateStore, HardStateError> {
        std::fs::create_dir_all(dir).map_err(|source| HardStateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(FileHardStateStore {
            path: dir.join("raft-hard-state"),
            membership_path: dir.join("raft-membership"),
            vote_floor_path: dir.join("raft-vote-floor"),
        })
    }
}

/// Replaces `path` with `bytes` so that a power cut leaves the old or the new content:
/// write a temporary file, fsync it, rename it over, fsync the directory.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), HardStateError> {
    let io = |source| HardStateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // The rename itself must survive a power cut.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// Reads a whole small file, `None` if it does not exist.
fn read_small_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, HardStateError> {
    let io = |source| HardStateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    Read::by_ref(&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(Some(bytes))
}

/// `body` framed with `magic` before it and a CRC32C of both after it, so a torn file is
/// noticed.
fn framed(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(magic);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(&out).to_be_bytes());
    out
}

/// The body of a [`framed`] file, `None` when the magic or the checksum is wrong.
fn unframed<'a>(magic: &[u8; 4], bytes: &'a [u8]) -> Option<&'a [u8]> {
    let (content, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if !content.starts_with(magic)
        || u32::from_be_bytes(crc.try_into().ok()?) != crc32c::crc32c(content)
    {
        return None;
    }
    Some(&content[magic.len()..])
}

fn encode_membership(membership: &MembershipLog) -> Vec<u8> {
    framed(MEMBERSHIP_MAGIC, &membership.encode())
}

fn decode_membership(bytes: &[u8]) -> Option<MembershipLog> {
    MembershipLog::decode(unframed(MEMBERSHIP_MAGIC, bytes)?).ok()
}

fn encode_vote_floor(index: u64) -> Vec<u8> {
    framed(VOTE_FLOOR_MAGIC, &index.to_be_bytes())
}

fn decode_vote_floor(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        unframed(VOTE_FLOOR_MAGIC, bytes)?.try_into().ok()?,
    ))
}

fn encode(state: &HardState) -> [u8; FILE_LEN] {
    let mut out = [0u8; FILE_LEN];
    out[0..4].copy_from_slice(MAGIC);
    out[4..12].copy_from_slice(&state.term.to_be_bytes());
    out[12] = 1; // format version
    let vote = state.voted_for.map_or(NO_VOTE, |id| id.0);
    out[13..17].copy_from_slice(&vote.to_be_bytes());
    let crc = crc32c::crc32c(&out[..17]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<HardState> {
    if bytes.len() != FILE_LEN || &bytes[0..4] != MAGIC || bytes[12] != 1 {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[17..21].try_into().ok()?);
    if crc != crc32c::crc32c(&bytes[..17]) {
        return None;
    }
    let term = u64::from_be_bytes(bytes[4..12].try_into().ok()?);
    let vote = u32::from_be_bytes(bytes[13..17].try_into().ok()?);
    Some(HardState {
        term,
        voted_for: (vote != NO_VOTE).then_some(NodeId(vote)),
    })
}

impl HardStateStore for FileHardStateStore {
    fn load(&mut self) -> Result<HardState, HardStateError> {
        match read_small_file(&self.path, FILE_LEN as u64)? {
            None => Ok(HardState::default()),
            Some(bytes) => decode(&bytes).ok_or_else(|| HardStateError::Corrupt(self.path.clone())),
        }
    }

    fn save(&mut self, state: &HardState) -> Result<(), HardStateError> {
        replace_file(&self.path, &encode(state))
    }

    fn load_membership(&mut self) -> Result<Option<MembershipLog>, HardStateError> {
        match read_small_file(&self.membership_path, MAX_MEMBERSHIP_FILE)? {
            None => Ok(None),
            Some(bytes) => decode_membership(&bytes)
                .map(Some)
                .ok_or_else(|| HardStateError::Corrupt(self.membership_path.clone())),
        }
    }

    fn save_membership(&mut self, membership: &MembershipLog) -> Result<(), HardStateError> {
        replace_file(&self.membership_path, &encode_membership(membership))
    }

    fn load_vote_floor(&mut self) -> Result<u64, HardStateError> {
        match read_small_file(&self.vote_floor_path, VOTE_FLOOR_FILE_LEN as u64)? {
            None => Ok(0),
            Some(bytes) => decode_vote_floor(&bytes)
                .ok_or_else(|| HardStateError::Corrupt(self.vote_floor_path.clone())),
        }
    }

    fn save_vote_floor(&mut self, index: u64) -> Result<(), HardStateError> {
        replace_file(&self.vote_floor_path, &encode_vote_floor(index))
    }
}

/// Keeps the state in memory (tests, benchmarks).
#[derive(Debug, Default, Clone)]
pub struct MemHardStateStore {
    pub state: HardState,
    pub membership: Option<MembershipLog>,
    pub vote_floor: u64,
}

impl HardStateStore for MemHardStateStore {
    fn load(&mut self) -> Result<HardState, HardStateError> {
        Ok(self.state)
    }

    fn save(&mut self, state: &HardState) -> Result<(), HardStateError> {
        self.state = *state;
        Ok(())
    }

    fn load_membership(&mut self) -> Result<Option<MembershipLog>, HardStateError> {
        Ok(self.membership.clone())
    }

    fn save_membership(&mut self, membership: &MembershipLog) -> Result<(), HardStateError> {
        self.membership = Some(membership.clone());
        Ok(())
    }

    fn load_vote_floor(&mut self) -> Result<u64, HardStateError> {
        Ok(self.vote_floor)
    }

    fn save_vote_floor(&mut self, index: u64) -> Result<(), HardStateError> {
        self.vote_floor = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vote_floor_survives_a_restart_and_a_torn_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(store.load_vote_floor().unwrap(), 0);
        store.save_vote_floor(1234).unwrap();
        let mut again = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(again.load_vote_floor().unwrap(), 1234);
        let path = dir.path().join("raft-vote-floor");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            again.load_vote_floor(),
            Err(HardStateError::Corrupt(_))
        ));
    }

    #[test]
    fn file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), HardState::default());
        let state = HardState {
            term: 42,
            voted_for: Some(NodeId(2)),
        };
        store.save(&state).unwrap();
        let mut again = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(again.load().unwrap(), state);
        store
            .save(&HardState {
                term: 43,
                voted_for: None,
            })
            .unwrap();
        assert_eq!(again.load().unwrap().voted_for, None);

        let path = dir.path().join("raft-hard-state");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(again.load(), Err(HardStateError::Corrupt(_))));
    }

    #[test]
    fn membership_round_trip_and_corruption() {
        use crate::membership::{Membership, MembershipChange};
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(store.load_membership().unwrap(), None);
        let three = Membership::of_voters(&[NodeId(0), NodeId(1), NodeId(2)]);
        let mut log = MembershipLog::bootstrap(three.clone());
        store.save_membership(&log).unwrap();
        assert_eq!(store.load_membership().unwrap(), Some(log.clone()));
        let four = three
            .apply(&MembershipChange::Add {
                id: NodeId(3),
                addr: "127.0.0.1:9".into(),
            })
            .unwrap();
        log.push(crate::membership::MembershipRecord {
            index: 9,
            term: 2,
            membership: four,
        });
        store.save_membership(&log).unwrap();
        let mut again = FileHardStateStore::open(dir.path()).unwrap();
        assert_eq!(again.load_membership().unwrap(), Some(log));

        let path = dir.path().join("raft-membership");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            again.load_membership(),
            Err(HardStateError::Corrupt(_))
        ));
    }
}
