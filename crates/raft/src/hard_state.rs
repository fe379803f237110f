//! Term and vote: the state that must survive a crash before a vote is answered or a new
//! term is acted upon. DLedger writes it without fsync; here `save` returns only once the
//! bytes are on disk.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

const MAGIC: &[u8; 4] = b"RFHS";
const FILE_LEN: usize = 4 + 8 + 1 + 4 + 4;
const NO_VOTE: u32 = u32::MAX;

/// A small file, replaced atomically: write a temporary file, fsync it, rename it over the
/// old one, fsync the directory. The content carries a CRC32C so a torn write is noticed.
#[derive(Debug)]
pub struct FileHardStateStore {
    path: PathBuf,
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
        })
    }

    fn io(&self, source: std::io::Error) -> HardStateError {
        HardStateError::Io {
            path: self.path.clone(),
            source,
        }
    }
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
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
            Err(e) => return Err(self.io(e)),
        };
        let mut bytes = Vec::with_capacity(FILE_LEN);
        Read::by_ref(&mut file)
            .take(FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(e))?;
        decode(&bytes).ok_or_else(|| HardStateError::Corrupt(self.path.clone()))
    }

    fn save(&mut self, state: &HardState) -> Result<(), HardStateError> {
        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        file.write_all(&encode(state)).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent() {
            // The rename itself must survive a power cut.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}

/// Keeps the state in memory (tests, benchmarks).
#[derive(Debug, Default, Clone)]
pub struct MemHardStateStore {
    pub state: HardState,
}

impl HardStateStore for MemHardStateStore {
    fn load(&mut self) -> Result<HardState, HardStateError> {
        Ok(self.state)
    }

    fn save(&mut self, state: &HardState) -> Result<(), HardStateError> {
        self.state = *state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
