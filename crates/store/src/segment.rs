//! One fixed-size, memory-mapped file of a segmented log, and the soundness rules for
//! sharing its bytes.
//!
//! The file is mapped once, shared and writable. Bytes are handed out to readers without
//! copying (`Bytes` that keep the mapping alive), so the segment keeps a *stable length*:
//! everything below it is immutable for the life of the mapping and only that range may be
//! shared. Writes below the stable length are refused. Bytes between the stable length and
//! the owner's write position may still be rewritten (a raft log truncating an uncommitted
//! suffix); reading them is a copy that the owner must keep apart from such rewrites.
//!
//! The file's blocks are reserved when it is created (`fallocate`), so a write through the
//! mapping never lands in a hole that a full filesystem cannot back (which would raise
//! SIGBUS instead of returning an error).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};
use parking_lot::Mutex;

use crate::error::{Result, StoreError};

/// Width of a segment file name: its start offset, zero padded, as RocketMQ names them.
pub const FILE_NAME_LEN: usize = 20;

/// The file name of a segment starting at `start`.
pub fn file_name(start: u64) -> String {
    format!("{start:020}")
}

/// The start offset encoded in a segment file name, if the name is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    if name.len() != FILE_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

pub struct Segment {
    path: PathBuf,
    start: u64,
    len: u64,
    file: File,
    map: MmapRaw,
    stable_len: AtomicU64,
    /// End of the bytes written since the last flush took it: 0 when nothing is (flushers
    /// skip idle files), `WHOLE_FILE` after a change made through the filesystem. A flush
    /// syncs only up to here, so pages the prefaulter made writable ahead of the writer
    /// are not written to disk as zeros first.
    dirty_end: AtomicU64,
    /// Below this the warmer ([`Segment::warm`]) never writes. A write reaching above it
    /// first moves it up under `warming`, which the warmer holds while it writes, so the
    /// warmer's zeros can never land on written bytes.
    warm_end: AtomicU64,
    warming: Mutex<()>,
}

/// `dirty_end` when the next flush must sync the whole file (extents changed).
const WHOLE_FILE: u64 = u64::MAX;
/// How far a write claims past its end from the warmer (see `Segment::keep_warmer_out`).
const WARM_CLAIM: u64 = 64 << 10;
/// Zeros the warmer writes per hold of `warming`: a writer that caught up waits for at
/// most this much.
const WARM_STEP: u64 = 256 << 10;

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("start", &self.start)
            .field("len", &self.len)
            .field("stable_len", &self.stable_len.load(Ordering::Relaxed))
            .finish()
    }
}

impl Segment {
    /// Creates (or reuses, zeroed) the file for a segment starting at `start`.
    pub fn create(dir: &Path, start: u64, len: u64) -> Result<Segment> {
        let path = dir.join(file_name(start));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Self::from_file(path, file, start, len)
    }

    /// Opens an existing segment file, growing it to `len` if a crash left it short.
    pub fn open(path: PathBuf, start: u64, len: u64) -> Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Self::from_file(path, file, start, len)
    }

    fn from_file(path: PathBuf, file: File, start: u64, len: u64) -> Result<Segment> {
        if len == 0 {
            return Err(StoreError::Config(format!(
                "segment {} has zero length",
                path.display()
            )));
        }
        let map_len = usize::try_from(len)
            .map_err(|_| StoreError::Config(format!("segment length {len} too large")))?;
        reserve_blocks(&file, len).map_err(|e| StoreError::io(&path, e))?;
        let map = MmapOptions::new()
            .len(map_len)
            .map_raw(&file)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(Segment {
            path,
            start,
            len,
            file,
            map,
            stable_len: AtomicU64::new(0),
            dirty_end: AtomicU64::new(0),
            warm_end: AtomicU64::new(0),
            warming: Mutex::new(()),
        })
    }

    /// Tells the kernel access is random (no readahead): for hash tables, where readahead
    /// would zero-fill and map pages that are never touched.
    pub fn advise_random(&self) {
        if let Err(e) = self.map.advise(memmap2::Advice::Random) {
            tracing::debug!(path = %self.path.display(), error = %e, "madvise(RANDOM) failed");
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Absolute offset of the first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Absolute offset one past the last byte.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true for an opened segment (a zero length is refused); here for symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn stable_len(&self) -> u64 {
        self.stable_len.load(Ordering::Acquire)
    }

    /// Declares `[0, len)` immutable from now on. Never moves backwards.
    pub(crate) fn mark_stable(&self, len: u64) {
        self.stable_len
            .fetch_max(len.min(self.len), Ordering::AcqRel);
    }

    fn check_range(&self, rel: u64, len: usize) -> Result<usize> {
        let end = rel.checked_add(len as u64);
        match end {
            Some(end) if end <= self.len => Ok(rel as usize),
            _ => Err(StoreError::corrupt(
                &self.path,
                format!("range {rel}+{len} outside segment of {} bytes", self.len),
            )),
        }
    }

    /// Where `len` bytes at `rel` may be written: inside the file and not below the
    /// stable length.
    fn check_writable(&self, rel: u64, len: usize) -> Result<usize> {
        let at = self.check_range(rel, len)?;
        if rel < self.stable_len() {
            return Err(StoreError::LogMismatch(format!(
                "write at {} below the stable length {} of {}",
                rel,
                self.stable_len(),
                self.path.display()
            )));
        }
        Ok(at)
    }

    /// Copies `data` into the file at `rel`. Refuses to touch stable bytes.
    pub(crate) fn write(&self, rel: u64, data: &[u8]) -> Result<()> {
        let at = self.check_writable(rel, data.len())?;
        self.keep_warmer_out(rel + data.len() as u64);
        // SAFETY: the range is inside the mapping (checked above) and not below the stable
        // length, so no shared slice covers it; the owner serialises writers and keeps
        // copy-readers of unstable bytes away (see `copy_unstable`). No reference to the
        // mapped bytes is created.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(at), data.len());
        }
        self.dirty_end
            .fetch_max(rel + data.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// Writes `data` at `rel` with write(2) rather than through the mapping, for a writer
    /// that appends to pages fsynced while it appends: a page written through the mapping
    /// stays mapped writable, so each fsync that writes it back must write-protect it again
    /// (a TLB shootdown across cores) and the next append to it faults, several times per
    /// page with small entries. write(2) leaves the page tables alone; readers of the
    /// mapping see the same page cache. Refuses to touch stable bytes.
    pub(crate) fn write_through_file(&self, rel: u64, data: &[u8]) -> Result<()> {
        self.check_writable(rel, data.len())?;
        self.keep_warmer_out(rel + data.len() as u64);
        self.file
            .write_all_at(data, rel)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.dirty_end
            .fetch_max(rel + data.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// Claims `[0, end)` from the warmer before a write there (see `warm_end`). Rounded up,
    /// so a writer the warmer is not ahead of (a standalone log) locks once per block.
    fn keep_warmer_out(&self, end: u64) {
        if end <= self.warm_end.load(Ordering::Acquire) {
            return;
        }
        let _warmer_not_writing = self.warming.lock();
        let claim = end.div_ceil(WARM_CLAIM).saturating_mul(WARM_CLAIM);
        self.warm_end
            .fetch_max(claim.min(self.len), Ordering::AcqRel);
    }

    /// Writes zeros through the file over the part of `[rel, rel + len)` no write has
    /// reached, and syncs them; returns how many bytes it zeroed. A fresh segment's blocks
    /// are reserved as unwritten extents, so an fdatasync covering the first write to a
    /// block must also write the extent change: a second synchronous write, on the path of
    /// every sync of a log that fsyncs as it grows. Warmed ahead of the writer, the blocks
    /// are ordinary ones by the time it writes them (RocketMQ's `warmMapedFileEnable`). The
    /// zeros stay in the page cache, so the writer's partial-page writes read nothing.
    ///
    /// Only writes made through this `Segment` claim their bytes: the caller keeps the range
    /// clear of bytes it needs that an earlier process wrote.
    pub(crate) fn warm(&self, rel: u64, len: u64) -> Result<u64> {
        let to = rel.saturating_add(len).min(self.len);
        let zeros = vec![0u8; WARM_STEP as usize];
        let mut zeroed = None::<(u64, u64)>;
        // Bounded: each round zeroes up to a step further or stops.
        loop {
            let warmer = self.warming.lock();
            let from = rel
                .max(self.warm_end.load(Ordering::Acquire))
                .max(self.stable_len());
            if from >= to {
                break;
            }
            let end = (from + WARM_STEP).min(to);
            let step = zeros.get(..(end - from) as usize).unwrap_or(&zeros);
            self.file
                .write_all_at(step, from)
                .map_err(|e| StoreError::io(&self.path, e))?;
            self.warm_end.fetch_max(end, Ordering::AcqRel);
            drop(warmer);
            zeroed = Some((zeroed.map_or(from, |(first, _)| first), end));
        }
        let Some((first, end)) = zeroed else {
            return Ok(0);
        };
        // msync of the range is an fdatasync limited to it: the writer's own unsynced
        // bytes below are left for its flush.
        let (at, sync_len) = (
            usize::try_from(first).unwrap_or(usize::MAX),
            usize::try_from(end - first).unwrap_or(0),
        );
        self.map
            .flush_range(at, sync_len)
            .map_err(|e| StoreError::io(&self.path, e))?;
        Ok(end - first)
    }

    /// Zeroes `[from, to)` (clamped to the segment), used to erase a cut tail so stale
    /// frames can never be mistaken for valid ones after a later crash.
    pub(crate) fn zero(&self, from: u64, to: u64) -> Result<()> {
        let to = to.min(self.len);
        if from >= to {
            return Ok(());
        }
        self.keep_warmer_out(to);
        if from < self.stable_len() {
            return Err(StoreError::LogMismatch(format!(
                "zeroing from {} below the stable length {} of {}",
                from,
                self.stable_len(),
                self.path.display()
            )));
        }
        const CHUNK: usize = 1 << 20;
        if to - from > CHUNK as u64 && self.zero_range_in_kernel(from, to) {
            self.dirty_end.store(WHOLE_FILE, Ordering::Release);
            return Ok(());
        }
        let zeros = vec![0u8; CHUNK.min((to - from) as usize)];
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(zeros.len());
            if let Some(chunk) = zeros.get(..n) {
                self.write(at, chunk)?;
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Large ranges (a recovery cut of a 1 GiB segment) are zeroed by the filesystem, which
    /// keeps the blocks reserved and avoids dirtying every page.
    fn zero_range_in_kernel(&self, from: u64, to: u64) -> bool {
        let (Ok(offset), Ok(len)) = (
            libc::off_t::try_from(from),
            libc::off_t::try_from(to - from),
        ) else {
            return false;
        };
        // SAFETY: plain syscall on an owned descriptor; the range is inside the file and
        // above the stable length, so no shared slice observes the change.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_ZERO_RANGE,
                offset,
                len,
            )
        };
        rc == 0
    }

    /// A zero-copy view of stable bytes, or `None` if any of them is not stable.
    pub fn read_stable(self: &Arc<Self>, rel: u64, len: usize) -> Option<Bytes> {
        let at = self.check_range(rel, len).ok()?;
        if rel + len as u64 > self.stable_len() {
            return None;
        }
        Some(Bytes::from_owner(StableRange {
            segment: Arc::clone(self),
            at,
            len,
        }))
    }

    /// Copies stable bytes into `out`; false if any of them is not stable.
    pub fn copy_stable(&self, rel: u64, out: &mut [u8]) -> bool {
        let Ok(at) = self.check_range(rel, out.len()) else {
            return false;
        };
        if rel + out.len() as u64 > self.stable_len() {
            return false;
        }
        // SAFETY: stable bytes inside the mapping are never written again.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), out.as_mut_ptr(), out.len());
        }
        true
    }

    /// Copies possibly unstable bytes into `out`.
    ///
    /// Writing (and marking bytes stable) is crate-private, so code outside the crate can
    /// only ever see the stable bytes, which never change.
    ///
    /// # Safety
    /// No write to `[rel, rel + out.len())` may run concurrently (the caller holds whatever
    /// lock its writers of that range take, or owns the segment exclusively).
    pub(crate) unsafe fn copy_unstable(&self, rel: u64, out: &mut [u8]) -> Result<()> {
        let at = self.check_range(rel, out.len())?;
        // SAFETY: in bounds (checked); no concurrent writer per the caller's contract.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), out.as_mut_ptr(), out.len());
        }
        Ok(())
    }

    /// Brings `len` bytes from `rel` into the page cache without changing them, so writing
    /// them later finds the pages allocated and zeroed. For writes through the mapping
    /// (`writable`) they are also mapped writable, so the write costs no fault; they are
    /// dirty from then on, and [`Segment::flush`] syncs only what was written, so they do not
    /// reach the disk as zeros first. For [`Segment::write_through_file`] they are mapped
    /// for reading only and stay clean: a page mapped writable would have to be
    /// write-protected again at each fsync.
    pub fn prefault(&self, rel: u64, len: u64, writable: bool) -> std::io::Result<()> {
        let at = usize::try_from(rel).unwrap_or(usize::MAX);
        let len = usize::try_from(len.min(self.len.saturating_sub(rel))).unwrap_or(0);
        if len == 0 || at >= self.map.len() {
            return Ok(());
        }
        self.map.advise_range(
            if writable {
                memmap2::Advice::PopulateWrite
            } else {
                memmap2::Advice::PopulateRead
            },
            at,
            len,
        )
    }

    /// Makes what was written durable: the written range with msync (fdatasync limited
    /// to it), or the whole file with fdatasync after a change of its extents.
    pub fn flush(&self) -> Result<()> {
        let end = self.dirty_end.swap(0, Ordering::AcqRel);
        let synced = match end {
            0 => return Ok(()),
            WHOLE_FILE => self.file.sync_data(),
            end => self
                .map
                .flush_range(0, usize::try_from(end.min(self.len)).unwrap_or(usize::MAX)),
        };
        if let Err(e) = synced {
            self.dirty_end.fetch_max(end, Ordering::AcqRel);
            return Err(StoreError::io(&self.path, e));
        }
        Ok(())
    }

    /// fdatasync whatever this process knows about it: after a kill -9 the previous process's
    /// writes may still sit in the page cache only.
    pub fn sync_unconditionally(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.dirty_end.store(0, Ordering::Release);
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty_end.load(Ordering::Acquire) != 0
    }

    /// Last modification time of the file (what retention ages segments by, as RocketMQ).
    pub fn modified(&self) -> Option<SystemTime> {
        self.file.metadata().and_then(|m| m.modified()).ok()
    }

    /// Reads with `pread`, bypassing the stable-length rule: only for files no one else can
    /// see yet (recovery of derived files).
    pub fn pread(&self, rel: u64, out: &mut [u8]) -> Result<()> {
        self.check_range(rel, out.len())?;
        self.file
            .read_exact_at(out, rel)
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Writes `data` at `rel` through the file (not the mapping) and fdatasyncs it, even over
    /// stable bytes: only for putting back the bytes an entry had before they rotted (see
    /// `CommitLog::repair_entry`). A view of those bytes sees the damaged or the repaired
    /// bytes, as it would see any change made to the file from outside, and every reader
    /// that trusts them verifies checksums first.
    pub(crate) fn overwrite_durably(&self, rel: u64, data: &[u8]) -> Result<()> {
        self.check_range(rel, data.len())?;
        self.keep_warmer_out(rel + data.len() as u64);
        self.file
            .write_all_at(data, rel)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Removes the file. Readers holding views keep the mapping (and the unlinked inode)
    /// alive until they drop them.
    pub fn remove_file(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }
}

/// Owner of a shared, stable byte range: keeps the mapping alive for a `Bytes`.
struct StableRange {
    segment: Arc<Segment>,
    at: usize,
    len: usize,
}

impl AsRef<[u8]> for StableRange {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the range was checked to lie inside the mapping and below the stable length
        // when this owner was made; stable bytes are never written again and the mapping
        // lives as long as `segment`. The slice covers exactly the stable range, never the
        // bytes a writer may still touch.
        unsafe { std::slice::from_raw_parts(self.segment.map.as_ptr().add(self.at), self.len) }
    }
}

/// Makes sure every byte of the file has a block behind it, so writes through the mapping
/// cannot fault on a full disk. Falls back to writing zeros where `fallocate` is missing.
fn reserve_blocks(file: &File, len: u64) -> io::Result<()> {
    let current = file.metadata()?.len();
    let len_off = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment length too large"))?;
    // SAFETY: plain syscall on an owned, open descriptor.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_off) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(err);
    }
    // No fallocate: extend, then fill the new tail with real zero blocks.
    if current < len {
        file.set_len(len)?;
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK as usize];
        let mut at = current;
        while at < len {
            let n = (len - at).min(CHUNK) as usize;
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(1024), "00000000000000001024");
        assert_eq!(parse_file_name("00000000000000001024"), Some(1024));
        assert_eq!(parse_file_name("0000000000000000102"), None);
        assert_eq!(parse_file_name("0000000000000000102x"), None);
    }

    #[test]
    fn stable_bytes_are_shared_and_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Arc::new(Segment::create(dir.path(), 4096, 4096).unwrap());
        seg.write(0, b"hello world").unwrap();
        assert!(
            seg.read_stable(0, 5).is_none(),
            "unstable bytes must not be shared"
        );
        seg.mark_stable(5);
        let view = seg.read_stable(0, 5).unwrap();
        assert_eq!(&view[..], b"hello");
        assert!(
            seg.write(4, b"X").is_err(),
            "stable bytes must not be rewritten"
        );
        seg.write(5, b"!").unwrap();
        let mut out = [0u8; 6];
        unsafe { seg.copy_unstable(0, &mut out).unwrap() };
        assert_eq!(&out, b"hello!");
        assert!(seg.read_stable(4000, 200).is_none());
        assert!(seg.write(4095, b"ab").is_err());
    }

    #[test]
    fn data_survives_reopen_and_view_outlives_removal() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Arc::new(Segment::create(dir.path(), 0, 8192).unwrap());
        seg.write(100, b"abc").unwrap();
        seg.flush().unwrap();
        seg.mark_stable(103);
        let view = seg.read_stable(100, 3).unwrap();
        seg.remove_file().unwrap();
        drop(seg);
        assert_eq!(&view[..], b"abc");

        let seg = Segment::create(dir.path(), 0, 8192).unwrap();
        seg.write(10, b"xyz").unwrap();
        seg.flush().unwrap();
        drop(seg);
        let reopened = Segment::open(dir.path().join(file_name(0)), 0, 8192).unwrap();
        let mut out = [0u8; 3];
        reopened.pread(10, &mut out).unwrap();
        assert_eq!(&out, b"xyz");
    }

    #[test]
    fn a_write_through_the_file_is_read_through_the_mapping_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Arc::new(Segment::create(dir.path(), 0, 8192).unwrap());
        // Mapped for reading first, as the prefaulter leaves a raft log's pages.
        seg.prefault(0, 8192, false).unwrap();
        seg.write_through_file(4090, b"across a page").unwrap();
        assert!(seg.is_dirty());
        seg.flush().unwrap();
        seg.mark_stable(4103);
        assert_eq!(&seg.read_stable(4090, 13).unwrap()[..], b"across a page");
        assert!(
            seg.write_through_file(4100, b"X").is_err(),
            "stable bytes must not be rewritten"
        );
        assert!(seg.write_through_file(8190, b"abc").is_err());
        drop(seg);
        let reopened = Segment::open(dir.path().join(file_name(0)), 0, 8192).unwrap();
        let mut out = [0u8; 13];
        reopened.pread(4090, &mut out).unwrap();
        assert_eq!(&out, b"across a page");
    }

    #[test]
    fn the_warmer_never_zeroes_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let len = 4 << 20;
        let seg = Arc::new(Segment::create(dir.path(), 0, len).unwrap());
        let record = |i: u64| -> Vec<u8> { (0..1000).map(|j| (i * 31 + j) as u8 | 1).collect() };
        let records = 3000u64;
        for i in 0..10 {
            seg.write_through_file(i * 1000, &record(i)).unwrap();
        }
        let writer = {
            let seg = Arc::clone(&seg);
            std::thread::spawn(move || {
                for i in 10..records {
                    seg.write_through_file(i * 1000, &record(i)).unwrap();
                }
            })
        };
        // Asked to warm the whole segment, over and under the writer, while it writes.
        let mut zeroed = 0;
        for _ in 0..1000 {
            zeroed += seg.warm(0, len).unwrap();
            if writer.is_finished() {
                break;
            }
        }
        writer.join().unwrap();
        assert!(zeroed > 0, "the warmer zeroed nothing");
        for i in 0..records {
            let mut out = vec![0u8; 1000];
            unsafe { seg.copy_unstable(i * 1000, &mut out).unwrap() };
            assert!(out == record(i), "record {i} was overwritten");
        }
        let mut tail = vec![1u8; 4096];
        seg.pread(len - 4096, &mut tail).unwrap();
        assert!(tail.iter().all(|&b| b == 0));
    }

    #[test]
    fn short_file_is_grown_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        std::fs::write(&path, b"abc").unwrap();
        let seg = Segment::open(path.clone(), 0, 4096).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        let mut out = [0u8; 4];
        seg.pread(0, &mut out).unwrap();
        assert_eq!(&out, b"abc\0");
    }
}
