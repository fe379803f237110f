//! The time wheel: which waiting timer messages fall in which slot, in bounded memory.
//!
//! One slot per precision step over twice the longest delay (a slot's place is reused only
//! long after its time has passed), each holding its time, the first and last queue offset
//! of its chain and how many it holds: about 32 bytes a slot, whatever the number of
//! messages. The chains' links (the next queue offset in the same slot, 8 bytes per
//! message) are in files of [`LINKS_PER_FILE`] entries, read and written in place, so a
//! million waiting messages cost 8 MB of page cache rather than heap; a file is removed
//! once every slot its messages fell in has been delivered.
//!
//! The wheel is derived state: a member builds it from the timer queue (whose entries carry
//! their slot time) at start-up and keeps it current as entries arrive, so the links files
//! are emptied when it opens. Chains are in queue-offset order, the same on every member.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Links per file (8 MiB files).
pub const LINKS_PER_FILE: i64 = 1 << 20;
const LINK_LEN: u64 = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// 0: never used.
    time_ms: i64,
    first: i64,
    last: i64,
    count: u64,
}

/// What became of an entry offered to the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Chained,
    /// Its slot's place still holds an undelivered slot of another time (delivery is more
    /// than the wheel's span behind): offer it again once that slot is delivered, or once
    /// its own time has passed (then the master's catch-up pass delivers it).
    Occupied,
}

/// A place in a slot's chain: `position` entries passed, the last of them at queue offset
/// `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCursor {
    pub slot_ms: i64,
    pub position: u64,
    last: i64,
}

#[derive(Debug)]
pub struct Wheel {
    precision_ms: i64,
    slots: Vec<Slot>,
    links: Links,
}

impl Wheel {
    /// An empty wheel covering twice `max_delay_ms`, its links under `dir` (emptied).
    pub fn open(dir: &Path, precision_ms: i64, max_delay_ms: i64) -> io::Result<Wheel> {
        let precision_ms = precision_ms.max(1);
        let count = usize::try_from((max_delay_ms.max(precision_ms) / precision_ms) * 2 + 2)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "wheel too large"))?;
        Ok(Wheel {
            precision_ms,
            // Zeroed memory: pages of slots never used are never touched.
            slots: vec![Slot::default(); count],
            links: Links::open(dir)?,
        })
    }

    fn index(&self, slot_ms: i64) -> usize {
        let step = slot_ms.div_euclid(self.precision_ms);
        usize::try_from(step.rem_euclid(self.slots.len() as i64)).unwrap_or(0)
    }

    /// Chains the entry at queue `offset` into the slot of `slot_ms`. `delivered_below_ms`:
    /// slots before it are delivered, so their places may be reused.
    pub fn add(&mut self, offset: i64, slot_ms: i64, delivered_below_ms: i64) -> io::Result<Added> {
        let index = self.index(slot_ms);
        let slot = self.slots[index];
        if slot.time_ms == slot_ms && slot.count > 0 {
            self.links.set(slot.last, offset, slot_ms)?;
            self.links.note(offset, slot_ms)?;
            let slot = &mut self.slots[index];
            slot.last = offset;
            slot.count += 1;
            return Ok(Added::Chained);
        }
        if slot.count > 0 && slot.time_ms >= delivered_below_ms {
            return Ok(Added::Occupied);
        }
        self.links.note(offset, slot_ms)?;
        self.slots[index] = Slot {
            time_ms: slot_ms,
            first: offset,
            last: offset,
            count: 1,
        };
        Ok(Added::Chained)
    }

    /// How many entries the slot of `slot_ms` holds.
    pub fn count(&self, slot_ms: i64) -> u64 {
        let slot = self.slots[self.index(slot_ms)];
        if slot.time_ms == slot_ms {
            slot.count
        } else {
            0
        }
    }

    /// Up to `max` queue offsets of the slot of `slot_ms`, in chain order, after the first
    /// `skip` (walking `skip` links first: a deliverer keeps a [`ChainCursor`] instead).
    pub fn chain(&self, slot_ms: i64, skip: u64, max: usize) -> io::Result<Vec<i64>> {
        let cursor = self.cursor(slot_ms, skip)?;
        Ok(self.chain_from(cursor, max)?.0)
    }

    /// A cursor after the first `skip` entries of the slot of `slot_ms`.
    pub fn cursor(&self, slot_ms: i64, skip: u64) -> io::Result<ChainCursor> {
        let mut cursor = ChainCursor {
            slot_ms,
            position: 0,
            last: -1,
        };
        let slot = self.slots[self.index(slot_ms)];
        if slot.time_ms != slot_ms {
            return Ok(cursor);
        }
        // Bounded by the slot's count.
        while cursor.position < skip.min(slot.count) {
            cursor.last = self.next_in_chain(&slot, &cursor)?;
            cursor.position += 1;
        }
        Ok(cursor)
    }

    /// Up to `max` queue offsets from `cursor`, and the cursor after them. Entries chained
    /// into the slot later are found from the returned cursor too.
    pub fn chain_from(
        &self,
        cursor: ChainCursor,
        max: usize,
    ) -> io::Result<(Vec<i64>, ChainCursor)> {
        let slot = self.slots[self.index(cursor.slot_ms)];
        let mut out = Vec::new();
        let mut cursor = cursor;
        if slot.time_ms != cursor.slot_ms {
            return Ok((out, cursor));
        }
        // Bounded by `max` and the slot's count.
        while cursor.position < slot.count && out.len() < max {
            let at = self.next_in_chain(&slot, &cursor)?;
            out.push(at);
            cursor.last = at;
            cursor.position += 1;
        }
        Ok((out, cursor))
    }

    fn next_in_chain(&self, slot: &Slot, cursor: &ChainCursor) -> io::Result<i64> {
        if cursor.position == 0 {
            return Ok(slot.first);
        }
        self.links.get(cursor.last)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "timer wheel chain of slot {} broken after {}",
                    cursor.slot_ms, cursor.last
                ),
            )
        })
    }

    /// Removes links files whose every entry fell in a slot before `delivered_below_ms`
    /// and which lie wholly below `enqueued_below` (no entry will be added to them).
    pub fn release(&mut self, delivered_below_ms: i64, enqueued_below: i64) -> io::Result<()> {
        self.links.release(delivered_below_ms, enqueued_below)
    }

    /// The first queue offset of the oldest links file with an entry in a slot at or after
    /// `delivered_below_ms`: no entry below it waits to be delivered. `None` when none waits.
    pub fn lowest_waiting_offset(&self, delivered_below_ms: i64) -> Option<i64> {
        self.links
            .files
            .iter()
            .find(|(_, file)| file.latest_slot_ms >= delivered_below_ms)
            .map(|(number, _)| number.saturating_mul(LINKS_PER_FILE))
    }

    /// Links files held (for tests and figures).
    pub fn links_files(&self) -> usize {
        self.links.files.len()
    }
}

#[derive(Debug)]
struct LinksFile {
    file: File,
    path: PathBuf,
    /// The latest slot time of an entry in this file.
    latest_slot_ms: i64,
}

#[derive(Debug)]
struct Links {
    dir: PathBuf,
    files: BTreeMap<i64, LinksFile>,
}

impl Links {
    fn open(dir: &Path) -> io::Result<Links> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        Ok(Links {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        })
    }

    fn file_for(&mut self, offset: i64) -> io::Result<&mut LinksFile> {
        let number = offset.div_euclid(LINKS_PER_FILE);
        if !self.files.contains_key(&number) {
            let path = self.dir.join(format!("{number:020}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            file.set_len(LINKS_PER_FILE as u64 * LINK_LEN)?;
            self.files.insert(
                number,
                LinksFile {
                    file,
                    path,
                    latest_slot_ms: i64::MIN,
                },
            );
        }
        self.files
            .get_mut(&number)
            .ok_or_else(|| io::Error::other("links file vanished"))
    }

    fn position(offset: i64) -> u64 {
        offset.rem_euclid(LINKS_PER_FILE) as u64 * LINK_LEN
    }

    /// Records that the entry at `offset` falls in `slot_ms` (its file is kept until then).
    fn note(&mut self, offset: i64, slot_ms: i64) -> io::Result<()> {
        let file = self.file_for(offset)?;
        file.latest_slot_ms = file.latest_slot_ms.max(slot_ms);
        Ok(())
    }

    /// Links `offset` to `next`. Stored as next + 1, so a zero (a fresh file) means none.
    fn set(&mut self, offset: i64, next: i64, slot_ms: i64) -> io::Result<()> {
        let file = self.file_for(offset)?;
        file.latest_slot_ms = file.latest_slot_ms.max(slot_ms);
        file.file
            .write_all_at(&(next + 1).to_le_bytes(), Self::position(offset))
    }

    fn get(&self, offset: i64) -> io::Result<Option<i64>> {
        let Some(file) = self.files.get(&offset.div_euclid(LINKS_PER_FILE)) else {
            return Ok(None);
        };
        let mut raw = [0u8; LINK_LEN as usize];
        file.file.read_exact_at(&mut raw, Self::position(offset))?;
        let stored = i64::from_le_bytes(raw);
        Ok((stored > 0).then_some(stored - 1))
    }

    fn release(&mut self, delivered_below_ms: i64, enqueued_below: i64) -> io::Result<()> {
        let done: Vec<i64> = self
            .files
            .iter()
            .filter(|(number, file)| {
                file.latest_slot_ms < delivered_below_ms
                    && (**number + 1).saturating_mul(LINKS_PER_FILE) <= enqueued_below
            })
            .map(|(number, _)| *number)
            .collect();
        for number in done {
            if let Some(file) = self.files.remove(&number) {
                fs::remove_file(&file.path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_chain_their_entries_in_offset_order_and_skip_what_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut wheel = Wheel::open(&dir.path().join("links"), 1000, 10_000).unwrap();
        for (offset, slot) in [(0, 5_000), (1, 7_000), (2, 5_000), (3, 5_000), (4, 7_000)] {
            assert_eq!(wheel.add(offset, slot, 0).unwrap(), Added::Chained);
        }
        assert_eq!(wheel.count(5_000), 3);
        assert_eq!(wheel.chain(5_000, 0, 10).unwrap(), vec![0, 2, 3]);
        assert_eq!(wheel.chain(5_000, 1, 1).unwrap(), vec![2]);
        assert_eq!(wheel.chain(7_000, 0, 10).unwrap(), vec![1, 4]);
        assert!(wheel.chain(6_000, 0, 10).unwrap().is_empty());
    }

    #[test]
    fn a_cursor_goes_on_where_it_stopped_and_finds_entries_chained_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut wheel = Wheel::open(&dir.path().join("links"), 1000, 10_000).unwrap();
        for offset in 0..5 {
            wheel.add(offset, 5_000, 0).unwrap();
        }
        let (first, cursor) = wheel
            .chain_from(wheel.cursor(5_000, 0).unwrap(), 3)
            .unwrap();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(cursor, wheel.cursor(5_000, 3).unwrap());
        let (rest, cursor) = wheel.chain_from(cursor, 10).unwrap();
        assert_eq!(rest, vec![3, 4]);
        wheel.add(9, 5_000, 0).unwrap();
        assert_eq!(wheel.chain_from(cursor, 10).unwrap().0, vec![9]);
    }

    #[test]
    fn a_place_is_reused_only_once_its_slot_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        // 10 s of delay at 1 s: 22 places, so 5 s and 27 s share one.
        let mut wheel = Wheel::open(&dir.path().join("links"), 1000, 10_000).unwrap();
        wheel.add(0, 5_000, 0).unwrap();
        assert_eq!(wheel.add(1, 27_000, 5_000).unwrap(), Added::Occupied);
        assert_eq!(wheel.add(1, 27_000, 6_000).unwrap(), Added::Chained);
        assert_eq!(wheel.count(5_000), 0);
        assert_eq!(wheel.add(2, 5_000, 0).unwrap(), Added::Occupied);
        assert_eq!(wheel.chain(27_000, 0, 10).unwrap(), vec![1]);
    }

    #[test]
    fn entries_wait_from_the_oldest_file_with_a_slot_not_yet_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut wheel = Wheel::open(&dir.path().join("links"), 1000, 10_000).unwrap();
        assert_eq!(wheel.lowest_waiting_offset(0), None);
        wheel.add(3, 5_000, 0).unwrap();
        wheel.add(LINKS_PER_FILE + 1, 9_000, 0).unwrap();
        assert_eq!(wheel.lowest_waiting_offset(5_000), Some(0));
        // The first file's slots are delivered though it is still being written to.
        assert_eq!(wheel.lowest_waiting_offset(6_000), Some(LINKS_PER_FILE));
        assert_eq!(wheel.lowest_waiting_offset(10_000), None);
    }

    #[test]
    fn links_files_go_once_their_slots_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut wheel = Wheel::open(&dir.path().join("links"), 1000, 10_000).unwrap();
        wheel.add(0, 5_000, 0).unwrap();
        wheel.add(1, 5_000, 0).unwrap();
        wheel.add(LINKS_PER_FILE, 6_000, 0).unwrap();
        assert_eq!(wheel.links_files(), 2);
        wheel.release(6_000, LINKS_PER_FILE + 1).unwrap();
        assert_eq!(wheel.links_files(), 1);
        // The file still written to stays, whatever its slots.
        wheel.release(7_000, LINKS_PER_FILE + 1).unwrap();
        assert_eq!(wheel.links_files(), 1);
    }
}
