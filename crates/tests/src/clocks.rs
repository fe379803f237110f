//! Wall clocks of their own for the processes of a test (libfaketime, from Debian's
//! `faketime` package, preloaded into each process): a test steps one process's clock
//! forward or back while it runs, as an NTP step or an operator's `date -s` would. Only the
//! wall clock moves (CLOCK_REALTIME); the monotonic clock keeps running, as the kernel's
//! does through such a step.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

/// Where Debian's `libfaketime` package puts the library.
const LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// One clock per process, each set by a file libfaketime reads again every second.
pub struct Clocks {
    files: Vec<PathBuf>,
}

impl Clocks {
    /// Whether libfaketime is installed (`apt-get install faketime`; `scripts/test` does).
    pub fn available() -> bool {
        Path::new(LIBRARY).exists()
    }

    /// `count` clocks, each on the real time until set, their files in `dir`.
    pub fn create(dir: &Path, count: usize) -> Result<Clocks> {
        ensure!(
            Clocks::available(),
            "libfaketime is not installed ({LIBRARY})"
        );
        let clocks = Clocks {
            files: (0..count).map(|i| dir.join(format!("clock-{i}"))).collect(),
        };
        for i in 0..count {
            clocks.set_offset(i, 0)?;
        }
        Ok(clocks)
    }

    /// The environment that puts a process on clock `i`.
    pub fn env(&self, i: usize) -> Vec<(String, String)> {
        let file = self.files[i].display().to_string();
        [
            ("LD_PRELOAD", LIBRARY.to_owned()),
            ("FAKETIME_TIMESTAMP_FILE", file),
            // Read the file again every second, so a step takes effect while it runs.
            ("FAKETIME_CACHE_DURATION", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// Sets clock `i` to `offset_s` seconds from the real time (negative: behind it); a
    /// process on it sees the step within a second.
    pub fn set_offset(&self, i: usize, offset_s: i64) -> Result<()> {
        let file = &self.files[i];
        // Renamed into place, so the library never reads a half-written offset.
        let staged = file.with_extension("new");
        std::fs::write(&staged, format!("{offset_s:+}\n"))
            .with_context(|| format!("write {}", staged.display()))?;
        std::fs::rename(&staged, file).with_context(|| format!("rename to {}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn seconds_seen(clocks: &Clocks) -> i64 {
        let output = Command::new("date")
            .arg("+%s")
            .envs(clocks.env(0))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    }

    fn now_s() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_process_on_a_clock_sees_its_offset() {
        if !Clocks::available() {
            eprintln!("SKIPPED: libfaketime is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let clocks = Clocks::create(dir.path(), 1).unwrap();
        assert!((seconds_seen(&clocks) - now_s()).abs() <= 2);
        clocks.set_offset(0, -3600).unwrap();
        assert!((seconds_seen(&clocks) - (now_s() - 3600)).abs() <= 2);
        clocks.set_offset(0, 600).unwrap();
        assert!((seconds_seen(&clocks) - (now_s() + 600)).abs() <= 2);
    }
}
