//! One owner per directory: an exclusive `flock` on a `lock` file, held for as long as
//! the owning structure lives.
//!
//! Two owners of the same files would write bytes the other has already handed out as
//! immutable; the lock turns that mistake (two brokers on one store, or opening a log
//! twice) into an error at open time.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Result, StoreError};

#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` (creating `dir/lock`), or fails if someone holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        // SAFETY: plain syscall on an owned, open descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StoreError::Config(format!(
                    "{} is in use by another store (lock {} is held)",
                    dir.display(),
                    path.display()
                )));
            }
            return Err(StoreError::io(&path, err));
        }
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_owner_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(StoreError::Config(_))
        ));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
