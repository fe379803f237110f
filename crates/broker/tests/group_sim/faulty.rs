//! A member's raft log on a disk that fails when told to: the next append, truncation,
//! reset or fsync fails as a full disk (ENOSPC) or a failing one (EIO) would, at the moment
//! the node asks, in the middle of handling a message, not between steps. Nothing of the
//! failed operation reaches the files. The simulation then treats the member as its broker
//! does (its raft node stops, the process exits and is restarted); after a failed fsync
//! the page cache cannot be trusted either (the kernel may have dropped the dirty pages),
//! so that member also loses what it had not synced, as in a power cut.

use bytes::Bytes;
use raft::{LogStorage, StorageError};
use store::raft_log::RaftLog;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFault {
    NoSpace,
    Eio,
}

pub struct FaultyLog {
    inner: RaftLog,
    armed: Option<DiskFault>,
    tripped: Option<DiskFault>,
}

impl FaultyLog {
    pub fn new(inner: RaftLog) -> FaultyLog {
        FaultyLog {
            inner,
            armed: None,
            tripped: None,
        }
    }

    pub fn inner(&self) -> &RaftLog {
        &self.inner
    }

    /// The next write or fsync fails with `fault`.
    pub fn arm(&mut self, fault: DiskFault) {
        self.armed = Some(fault);
    }

    /// The disk is sound again (the faults are healed): nothing armed fails.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    /// The fault an operation ran into, if one did.
    pub fn tripped(&self) -> Option<DiskFault> {
        self.tripped
    }

    fn check(&mut self) -> Result<(), StorageError> {
        let Some(fault) = self.armed.take() else {
            return Ok(());
        };
        self.tripped = Some(fault);
        let errno = match fault {
            DiskFault::NoSpace => libc::ENOSPC,
            DiskFault::Eio => libc::EIO,
        };
        Err(StorageError::Io(std::io::Error::from_raw_os_error(errno)))
    }
}

impl LogStorage for FaultyLog {
    fn first_index(&self) -> u64 {
        self.inner.first_index()
    }

    fn last_index(&self) -> u64 {
        self.inner.last_index()
    }

    fn term(&self, index: u64) -> Result<Option<u64>, StorageError> {
        self.inner.term(index)
    }

    fn end_pos(&self) -> u64 {
        self.inner.end_pos()
    }

    fn place(&self, end_pos: u64, framed_len: u64) -> Result<u64, StorageError> {
        self.inner.place(end_pos, framed_len)
    }

    fn append(&mut self, frames: &[Bytes]) -> Result<(), StorageError> {
        self.check()?;
        self.inner.append(frames)
    }

    fn truncate_after(&mut self, index: u64) -> Result<(), StorageError> {
        self.check()?;
        self.inner.truncate_after(index)
    }

    fn read(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        self.inner.read(from, max_entries, max_bytes)
    }

    fn reset(
        &mut self,
        next_index: u64,
        next_pos: u64,
        base_term: Option<u64>,
    ) -> Result<(), StorageError> {
        self.check()?;
        self.inner.reset(next_index, next_pos, base_term)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check()?;
        self.inner.sync()
    }

    fn sync_may_block(&self) -> bool {
        false
    }

    fn repair(&mut self, index: u64, frame: Bytes) -> Result<bool, StorageError> {
        self.check()?;
        self.inner.repair(index, frame)
    }

    fn damage_reported(&mut self) -> Option<u64> {
        self.inner.damage_reported()
    }

    fn committed(&mut self, index: u64) {
        self.inner.committed(index)
    }
}
