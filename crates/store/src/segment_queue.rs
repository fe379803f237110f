//! An ordered, contiguous run of equal-size segment files in one directory: the storage
//! under the CommitLog, the entry index and every ConsumeQueue.
//!
//! Segment `k` covers `[k * segment_len, (k + 1) * segment_len)` of the absolute offset
//! space, so finding the segment for an offset is one division. Segments are only removed
//! from the front (retention) or the back (truncation, reset).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Result, StoreError};
use crate::segment::{parse_file_name, Segment};

#[derive(Debug)]
pub struct SegmentQueue {
    dir: PathBuf,
    segment_len: u64,
    segments: RwLock<Vec<Arc<Segment>>>,
}

impl SegmentQueue {
    /// Opens every segment file in `dir` (creating the directory if needed). Files must be
    /// aligned to `segment_len` and contiguous; anything else is reported as corruption
    /// rather than silently skipped.
    pub fn open(dir: &Path, segment_len: u64) -> Result<SegmentQueue> {
        if segment_len == 0 {
            return Err(StoreError::Config(format!(
                "segment length of {} must be positive",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let mut starts = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let item = item.map_err(|e| StoreError::io(dir, e))?;
            let name = item.file_name();
            let Some(start) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            if !item.file_type().map(|t| t.is_file()).unwrap_or(false) {
                continue;
            }
            starts.push(start);
        }
        starts.sort_unstable();
        let mut segments = Vec::with_capacity(starts.len());
        for (i, start) in starts.iter().copied().enumerate() {
            let path = dir.join(crate::segment::file_name(start));
            if start % segment_len != 0 {
                return Err(StoreError::corrupt(
                    &path,
                    format!("start offset is not a multiple of the segment length {segment_len} (was the segment size changed?)"),
                ));
            }
            if i > 0 && starts[i - 1] + segment_len != start {
                return Err(StoreError::corrupt(
                    &path,
                    format!(
                        "segment files are not contiguous: previous starts at {}",
                        starts[i - 1]
                    ),
                ));
            }
            let file_len = std::fs::metadata(&path)
                .map_err(|e| StoreError::io(&path, e))?
                .len();
            if file_len > segment_len {
                return Err(StoreError::corrupt(
                    &path,
                    format!("file is {file_len} bytes, larger than the segment length {segment_len} (was the segment size changed?)"),
                ));
            }
            segments.push(Arc::new(Segment::open(path, start, segment_len)?));
        }
        Ok(SegmentQueue {
            dir: dir.to_path_buf(),
            segment_len,
            segments: RwLock::new(segments),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn segment_len(&self) -> u64 {
        self.segment_len
    }

    /// Start offset of the segment containing `offset`.
    pub fn segment_start(&self, offset: u64) -> u64 {
        offset - offset % self.segment_len
    }

    pub fn is_empty(&self) -> bool {
        self.segments.read().is_empty()
    }

    pub fn len(&self) -> usize {
        self.segments.read().len()
    }

    pub fn first(&self) -> Option<Arc<Segment>> {
        self.segments.read().first().cloned()
    }

    pub fn last(&self) -> Option<Arc<Segment>> {
        self.segments.read().last().cloned()
    }

    /// All segments, oldest first (a snapshot: later changes do not affect it).
    pub fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments.read().clone()
    }

    /// The segment holding `offset`, if it exists.
    pub fn find(&self, offset: u64) -> Option<Arc<Segment>> {
        let segments = self.segments.read();
        let first = segments.first()?.start();
        if offset < first {
            return None;
        }
        let k = usize::try_from((offset - first) / self.segment_len).ok()?;
        segments.get(k).cloned()
    }

    /// The segment holding `offset`, created (with any missing segments before it) if the
    /// queue ends before it. An empty queue starts at `offset`'s segment.
    pub fn find_or_create(&self, offset: u64) -> Result<Arc<Segment>> {
        if let Some(segment) = self.find(offset) {
            return Ok(segment);
        }
        let mut segments = self.segments.write();
        let wanted = self.segment_start(offset);
        if let Some(first) = segments.first() {
            if wanted < first.start() {
                return Err(StoreError::LogMismatch(format!(
                    "offset {offset} is before the first segment {} in {}",
                    first.start(),
                    self.dir.display()
                )));
            }
        }
        // Bounded: each round adds one segment and stops at `wanted`.
        loop {
            let next = match segments.last() {
                Some(last) if last.start() >= wanted => break,
                Some(last) => last.end(),
                None => wanted,
            };
            segments.push(Arc::new(Segment::create(
                &self.dir,
                next,
                self.segment_len,
            )?));
        }
        let first = segments.first().map(|s| s.start()).unwrap_or(wanted);
        let k = ((wanted - first) / self.segment_len) as usize;
        segments
            .get(k)
            .cloned()
            .ok_or_else(|| StoreError::LogMismatch(format!("no segment for offset {offset}")))
    }

    /// Deletes every segment that starts at or after `start`.
    pub fn remove_from(&self, start: u64) -> Result<()> {
        let removed: Vec<Arc<Segment>> = {
            let mut segments = self.segments.write();
            let keep = segments.iter().take_while(|s| s.start() < start).count();
            segments.split_off(keep)
        };
        for segment in removed.iter().rev() {
            segment.remove_file()?;
        }
        Ok(())
    }

    /// Deletes the oldest segment if `pred` accepts it. Returns the removed segment.
    pub fn remove_first_if(
        &self,
        pred: impl FnOnce(&Segment) -> bool,
    ) -> Result<Option<Arc<Segment>>> {
        let removed = {
            let mut segments = self.segments.write();
            match segments.first() {
                Some(first) if pred(first) => Some(segments.remove(0)),
                _ => None,
            }
        };
        if let Some(segment) = &removed {
            segment.remove_file()?;
        }
        Ok(removed)
    }

    /// Deletes all segments.
    pub fn clear(&self) -> Result<()> {
        self.remove_from(0)
    }

    /// Flushes every dirty segment. Returns how many were synced.
    pub fn flush(&self) -> Result<usize> {
        let mut synced = 0;
        for segment in self.snapshot() {
            if segment.is_dirty() {
                segment.flush()?;
                synced += 1;
            }
        }
        Ok(synced)
    }

    /// Removes the directory itself once it holds no segments (a dropped ConsumeQueue).
    pub fn remove_dir_all(&self) -> Result<()> {
        self.clear()?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_finds_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let q = SegmentQueue::open(dir.path(), 1024).unwrap();
        assert!(q.find(0).is_none());
        let s = q.find_or_create(2500).unwrap();
        assert_eq!(s.start(), 2048);
        assert_eq!(q.len(), 1);
        let s = q.find_or_create(5000).unwrap();
        assert_eq!(s.start(), 4096);
        assert_eq!(q.len(), 3, "the gap segments are created too");
        assert_eq!(q.find(3100).unwrap().start(), 3072);
        assert!(q.find_or_create(100).is_err(), "cannot grow backwards");
        drop(q);

        let q = SegmentQueue::open(dir.path(), 1024).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.first().unwrap().start(), 2048);
        q.remove_from(3072).unwrap();
        assert_eq!(q.len(), 1);
        let removed = q.remove_first_if(|s| s.start() == 2048).unwrap();
        assert!(removed.is_some());
        assert!(q.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn rejects_gaps_and_resized_segments() {
        let dir = tempfile::tempdir().unwrap();
        let q = SegmentQueue::open(dir.path(), 1024).unwrap();
        q.find_or_create(0).unwrap();
        q.find_or_create(2048).unwrap();
        drop(q);
        std::fs::remove_file(dir.path().join(crate::segment::file_name(1024))).unwrap();
        assert!(matches!(
            SegmentQueue::open(dir.path(), 1024),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(SegmentQueue::open(dir.path(), 512).is_err());
    }
}
