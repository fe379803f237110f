//! The key index behind QUERY_MESSAGE: `topic#key` (every KEYS entry and the UNIQ_KEY) to
//! CommitLog offsets, bounded by time.
//!
//! Files `index/<20-digit CommitLog offset of their first entry>`, each a fixed-size hash
//! table with chained entries (the shape of RocketMQ's IndexFile; our own layout):
//!
//! | part | size | content |
//! |------|------|---------|
//! | header | 64 | magic, slot count, entry capacity, entries used, first/last store time, first/last CommitLog offset, CRC32C |
//! | slots | 4 × slots | 1 + number of the newest entry in the bucket, 0 = empty |
//! | entries | 24 × capacity | key hash (u32), CommitLog offset (i64), store time (i64), 1 + previous entry in the bucket (u32) |
//!
//! A new file starts when one is full. The index is derived data: hash collisions and
//! entries torn by a crash can only produce wrong candidates, and the caller checks every
//! candidate against the message itself, so a query never returns a wrong message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::dir_lock::DirLock;
use crate::error::{Result, StoreError};
use crate::segment::{file_name, parse_file_name, Segment};

const MAGIC: u32 = 0x4B49_4458; // "KIDX"
const HEADER_LEN: u64 = 64;
const SLOT_LEN: u64 = 4;
const ENTRY_LEN: u64 = 24;

/// One record's keys, as the dispatcher hands them over.
#[derive(Debug, Clone, Copy)]
pub struct IndexRequest<'a> {
    pub topic: &'a str,
    pub keys: Option<&'a str>,
    pub uniq_key: Option<&'a str>,
    pub phys_offset: i64,
    pub store_timestamp_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    slots: u32,
    capacity: u32,
    used: u32,
    begin_ts: i64,
    end_ts: i64,
    begin_phys: i64,
    end_phys: i64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&self.slots.to_be_bytes());
        out[8..12].copy_from_slice(&self.capacity.to_be_bytes());
        out[12..16].copy_from_slice(&self.used.to_be_bytes());
        out[16..24].copy_from_slice(&self.begin_ts.to_be_bytes());
        out[24..32].copy_from_slice(&self.end_ts.to_be_bytes());
        out[32..40].copy_from_slice(&self.begin_phys.to_be_bytes());
        out[40..48].copy_from_slice(&self.end_phys.to_be_bytes());
        let crc = crc32c::crc32c(&out[0..48]);
        out[48..52].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(raw: &[u8; HEADER_LEN as usize]) -> Option<Header> {
        let u32_at =
            |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            i64::from_be_bytes(b)
        };
        if u32_at(0) != MAGIC || u32_at(48) != crc32c::crc32c(&raw[0..48]) {
            return None;
        }
        Some(Header {
            slots: u32_at(4),
            capacity: u32_at(8),
            used: u32_at(12),
            begin_ts: i64_at(16),
            end_ts: i64_at(24),
            begin_phys: i64_at(32),
            end_phys: i64_at(40),
        })
    }

    fn file_len(&self) -> u64 {
        HEADER_LEN + SLOT_LEN * u64::from(self.slots) + ENTRY_LEN * u64::from(self.capacity)
    }
}

struct IndexFile {
    segment: Arc<Segment>,
    header: Header,
}

impl IndexFile {
    fn slot_pos(&self, hash: u32) -> u64 {
        HEADER_LEN + SLOT_LEN * u64::from(hash % self.header.slots.max(1))
    }

    fn entry_pos(&self, n: u32) -> u64 {
        HEADER_LEN + SLOT_LEN * u64::from(self.header.slots) + ENTRY_LEN * u64::from(n)
    }

    /// Reads `N` bytes; the index lock keeps writers away.
    fn read<const N: usize>(&self, pos: u64) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        // SAFETY: every access to index files happens under `KeyIndex::files`' lock:
        // readers share it, the writer holds it alone.
        unsafe { self.segment.copy_unstable(pos, &mut out).ok()? };
        Some(out)
    }
}

pub struct KeyIndex {
    _lock: DirLock,
    dir: PathBuf,
    slots: u32,
    capacity: u32,
    files: RwLock<Vec<IndexFile>>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex").field("dir", &self.dir).finish()
    }
}

/// Hash of `topic#key`.
fn key_hash(topic: &str, key: &str) -> u32 {
    let crc = crc32c::crc32c(topic.as_bytes());
    let crc = crc32c::crc32c_append(crc, b"#");
    crc32c::crc32c_append(crc, key.as_bytes())
}

impl KeyIndex {
    /// Opens the index files in `dir`. Files with an unreadable header are removed (their
    /// keys can no longer be found, but nothing wrong can be).
    pub fn open(dir: &Path, slots: u32, capacity: u32) -> Result<KeyIndex> {
        if slots == 0 || capacity == 0 {
            return Err(StoreError::Config(
                "key index slots and capacity must be positive".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let mut starts = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let item = item.map_err(|e| StoreError::io(dir, e))?;
            if let Some(start) = item.file_name().to_str().and_then(parse_file_name) {
                starts.push(start);
            }
        }
        starts.sort_unstable();
        let mut files = Vec::new();
        for start in starts {
            let path = dir.join(file_name(start));
            let mut raw = [0u8; HEADER_LEN as usize];
            let header = std::fs::File::open(&path)
                .and_then(|f| {
                    use std::os::unix::fs::FileExt;
                    f.read_exact_at(&mut raw, 0)
                })
                .ok()
                .and_then(|()| Header::decode(&raw))
                .filter(|h| {
                    h.slots > 0
                        && h.capacity > 0
                        && h.used <= h.capacity
                        && std::fs::metadata(&path)
                            .map(|m| m.len() == h.file_len())
                            .unwrap_or(false)
                });
            let Some(header) = header else {
                tracing::warn!(path = %path.display(), "removing an unreadable key-index file");
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let segment = Arc::new(Segment::open(path, start, header.file_len())?);
            segment.advise_random();
            files.push(IndexFile { segment, header });
        }
        Ok(KeyIndex {
            _lock: lock,
            dir: dir.to_path_buf(),
            slots,
            capacity,
            files: RwLock::new(files),
        })
    }

    fn new_file(&self, start: u64, begin_phys: i64, begin_ts: i64) -> Result<IndexFile> {
        let header = Header {
            slots: self.slots,
            capacity: self.capacity,
            used: 0,
            begin_ts,
            end_ts: begin_ts,
            begin_phys,
            end_phys: begin_phys,
        };
        let segment = Arc::new(Segment::create(&self.dir, start, header.file_len())?);
        segment.advise_random();
        segment.write(0, &header.encode())?;
        Ok(IndexFile { segment, header })
    }

    /// Indexes the keys of some records (in CommitLog order).
    pub fn put(&self, requests: &[IndexRequest<'_>]) -> Result<()> {
        let mut files = self.files.write();
        let mut touched = false;
        for req in requests {
            let keys = req
                .keys
                .unwrap_or("")
                .split(' ')
                .filter(|k| !k.is_empty())
                .chain(req.uniq_key.filter(|k| !k.is_empty()));
            for key in keys {
                let need_new = match files.last() {
                    None => true,
                    Some(f) => f.header.used >= f.header.capacity,
                };
                if need_new {
                    if let Some(last) = files.last() {
                        last.segment.write(0, &last.header.encode())?;
                    }
                    // Files are named by their first offset; one record with more keys than
                    // a file holds would otherwise reuse a name.
                    let after_last = files.last().map_or(0, |f| f.segment.start() + 1);
                    let start = u64::try_from(req.phys_offset).unwrap_or(0).max(after_last);
                    let file = self.new_file(start, req.phys_offset, req.store_timestamp_ms)?;
                    files.push(file);
                }
                let Some(file) = files.last_mut() else { break };
                let hash = key_hash(req.topic, key);
                let slot_pos = file.slot_pos(hash);
                let prev = file
                    .read::<4>(slot_pos)
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                let prev = if prev <= file.header.used { prev } else { 0 };
                let n = file.header.used;
                let mut entry = [0u8; ENTRY_LEN as usize];
                entry[0..4].copy_from_slice(&hash.to_be_bytes());
                entry[4..12].copy_from_slice(&req.phys_offset.to_be_bytes());
                entry[12..20].copy_from_slice(&req.store_timestamp_ms.to_be_bytes());
                entry[20..24].copy_from_slice(&prev.to_be_bytes());
                file.segment.write(file.entry_pos(n), &entry)?;
                file.segment.write(slot_pos, &(n + 1).to_be_bytes())?;
                file.header.used = n + 1;
                file.header.end_ts = file.header.end_ts.max(req.store_timestamp_ms);
                file.header.begin_ts = file.header.begin_ts.min(req.store_timestamp_ms);
                file.header.end_phys = file.header.end_phys.max(req.phys_offset);
                touched = true;
            }
        }
        if touched {
            if let Some(file) = files.last() {
                file.segment.write(0, &file.header.encode())?;
            }
        }
        Ok(())
    }

    /// CommitLog offsets of messages indexed under `topic#key` stored within
    /// `[begin_ms, end_ms]`, newest first, at most `max_count`, without duplicates.
    /// Candidates may include hash collisions: check them against the messages.
    pub fn query(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Vec<i64> {
        let hash = key_hash(topic, key);
        let files = self.files.read();
        let mut out: Vec<i64> = Vec::new();
        for file in files.iter().rev() {
            if out.len() >= max_count {
                break;
            }
            let h = &file.header;
            if h.used == 0 || h.end_ts < begin_ms || h.begin_ts > end_ms {
                continue;
            }
            let Some(head) = file.read::<4>(file.slot_pos(hash)).map(u32::from_be_bytes) else {
                continue;
            };
            let mut next = head;
            // Bounded: at most `used` steps per file, even if a torn chain loops.
            for _ in 0..h.used {
                if next == 0 || next > h.used || out.len() >= max_count {
                    break;
                }
                let n = next - 1;
                let Some(entry) = file.read::<{ ENTRY_LEN as usize }>(file.entry_pos(n)) else {
                    break;
                };
                let entry_hash = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
                let mut phys = [0u8; 8];
                phys.copy_from_slice(&entry[4..12]);
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&entry[12..20]);
                let (phys, ts) = (i64::from_be_bytes(phys), i64::from_be_bytes(ts));
                let prev = u32::from_be_bytes([entry[20], entry[21], entry[22], entry[23]]);
                if entry_hash == hash && ts >= begin_ms && ts <= end_ms && !out.contains(&phys) {
                    out.push(phys);
                }
                // Chains point strictly backwards; anything else is damage.
                if prev >= next {
                    break;
                }
                next = prev;
            }
        }
        out
    }

    /// Removes files whose every entry points below `min_phys_offset` (never the last).
    pub fn remove_below(&self, min_phys_offset: i64) -> Result<usize> {
        let mut files = self.files.write();
        let mut removed = 0;
        while files.len() > 1 {
            match files.first() {
                Some(f) if f.header.end_phys < min_phys_offset => {
                    f.segment.remove_file()?;
                    files.remove(0);
                    removed += 1;
                }
                _ => break,
            }
        }
        Ok(removed)
    }

    /// (last store time, last CommitLog offset) indexed, for QUERY_MESSAGE's response.
    pub fn last_update(&self) -> (i64, i64) {
        self.files
            .read()
            .last()
            .map(|f| (f.header.end_ts, f.header.end_phys))
            .unwrap_or((0, 0))
    }

    pub fn flush(&self) -> Result<usize> {
        // Hold the read lock so the files do not change while syncing.
        let files = self.files.read();
        let mut synced = 0;
        for file in files.iter() {
            if file.segment.is_dirty() {
                file.segment.flush()?;
                synced += 1;
            }
        }
        Ok(synced)
    }

    pub fn disk_bytes(&self) -> u64 {
        self.files.read().iter().map(|f| f.header.file_len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        topic: &'a str,
        keys: Option<&'a str>,
        uniq: Option<&'a str>,
        phys: i64,
        ts: i64,
    ) -> IndexRequest<'a> {
        IndexRequest {
            topic,
            keys,
            uniq_key: uniq,
            phys_offset: phys,
            store_timestamp_ms: ts,
        }
    }

    #[test]
    fn finds_keys_newest_first_within_time() {
        let dir = tempfile::tempdir().unwrap();
        let idx = KeyIndex::open(dir.path(), 4, 5).unwrap();
        idx.put(&[
            req("T", Some("order-1 user-9"), Some("U1"), 100, 1000),
            req("T", Some("order-2"), Some("U2"), 200, 2000),
            req("T", Some("order-1"), None, 300, 3000),
            req("Other", Some("order-1"), None, 400, 4000),
        ])
        .unwrap();
        assert_eq!(idx.query("T", "order-1", 10, 0, i64::MAX), vec![300, 100]);
        assert_eq!(idx.query("T", "order-1", 1, 0, i64::MAX), vec![300]);
        assert_eq!(idx.query("T", "order-1", 10, 0, 2500), vec![100]);
        assert_eq!(idx.query("T", "U2", 10, 0, i64::MAX), vec![200]);
        assert_eq!(idx.query("Other", "order-1", 10, 0, i64::MAX), vec![400]);
        assert!(idx.query("T", "nope", 10, 0, i64::MAX).is_empty());
        // 6 keys with capacity 5: a second file exists; both survive a reopen.
        drop(idx);
        let idx = KeyIndex::open(dir.path(), 4, 5).unwrap();
        assert_eq!(idx.query("T", "order-1", 10, 0, i64::MAX), vec![300, 100]);
        assert_eq!(idx.last_update(), (4000, 400));
        assert_eq!(idx.remove_below(350).unwrap(), 1);
        assert_eq!(idx.query("T", "order-1", 10, 0, i64::MAX), vec![300]);
        assert_eq!(idx.query("Other", "order-1", 10, 0, i64::MAX), vec![400]);
    }

    #[test]
    fn damaged_header_drops_file() {
        let dir = tempfile::tempdir().unwrap();
        let idx = KeyIndex::open(dir.path(), 4, 5).unwrap();
        idx.put(&[req("T", Some("k"), None, 100, 1000)]).unwrap();
        drop(idx);
        let path = dir.path().join(file_name(100));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let idx = KeyIndex::open(dir.path(), 4, 5).unwrap();
        assert!(idx.query("T", "k", 10, 0, i64::MAX).is_empty());
        idx.put(&[req("T", Some("k"), None, 200, 2000)]).unwrap();
        assert_eq!(idx.query("T", "k", 10, 0, i64::MAX), vec![200]);
    }
}
