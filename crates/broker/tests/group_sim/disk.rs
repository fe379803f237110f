//! What a disk would still hold after a power cut, for one member's directory.
//!
//! The store writes through memory maps and `write(2)`; the page cache holds it all until
//! an fsync. The simulation knows every moment the store makes something durable (the raft
//! log's fsync, the flush-everything-then-checkpoint step, recovery), and at each it
//! records the current content of the files that step covers. A power cut then puts back,
//! page by page, either that durable content or (a page the kernel happened to write back)
//! the newer one, so the last writes may be torn. As in LazyFS, names and sizes (create,
//! rename, remove, truncate) are durable at once; a file never synced reads as zeros.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::Rng;

const PAGE: usize = 4096;

#[derive(Default)]
pub struct DurableImage {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Every regular file under `dir`, recursively, in a stable order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    // Bounded by the directory tree, which the store keeps small in the simulation.
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

impl DurableImage {
    /// Everything under `dir` (a file, a subdirectory of the member's, or all of it) is
    /// durable as it is now.
    pub fn synced(&mut self, dir: &Path) -> std::io::Result<()> {
        if dir.is_file() {
            self.files.insert(dir.to_path_buf(), std::fs::read(dir)?);
            return Ok(());
        }
        self.files.retain(|path, _| !path.starts_with(dir));
        for path in files_under(dir) {
            let bytes = std::fs::read(&path)?;
            self.files.insert(path, bytes);
        }
        Ok(())
    }

    /// A bit flips on the disk itself at byte `at` of `path`: the durable content rots too,
    /// so no power cut brings the old byte back.
    pub fn rot(&mut self, path: &Path, at: usize, mask: u8) {
        if let Some(byte) = self.files.get_mut(path).and_then(|f| f.get_mut(at)) {
            *byte ^= mask;
        }
    }

    /// Power fails: every file under `root` goes back to its durable content, except pages
    /// that `torn` (0..=1) of the time were written back anyway. Returns how many pages
    /// differed from what the running process saw.
    pub fn power_cut(&self, root: &Path, rng: &mut SmallRng, torn: f64) -> std::io::Result<u64> {
        let mut lost_pages = 0;
        for path in files_under(root) {
            let now = std::fs::read(&path)?;
            let mut after = match self.files.get(&path) {
                Some(durable) => durable.clone(),
                None => Vec::new(),
            };
            // Sizes are durable at once.
            after.resize(now.len(), 0);
            for (page, current) in now.chunks(PAGE).enumerate() {
                let at = page * PAGE;
                let durable = &mut after[at..at + current.len()];
                if durable != current {
                    if rng.gen_bool(torn) {
                        durable.copy_from_slice(current);
                    } else {
                        lost_pages += 1;
                    }
                }
            }
            if after != now {
                std::fs::write(&path, &after)?;
            }
        }
        Ok(lost_pages)
    }
}
