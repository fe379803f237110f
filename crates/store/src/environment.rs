//! What the store asks of the outside world, injectable for tests: the time of day (for
//! retention) and how full the filesystem is (for cleanup and refusing writes).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Wall-clock time as the store sees it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Hour of the day (0..24) in local time, for `deleteWhen`.
    fn local_hour(&self) -> u32;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn local_hour(&self) -> u32 {
        let secs = (self.now_ms() / 1000) as libc::time_t;
        // SAFETY: `localtime_r` writes only into the `tm` we own.
        unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&secs, &mut tm).is_null() {
                return ((secs / 3600) % 24) as u32;
            }
            tm.tm_hour.clamp(0, 23) as u32
        }
    }
}

/// A clock tests set by hand.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    hour: AtomicU32,
}

impl ManualClock {
    pub fn new(now_ms: i64, hour: u32) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now_ms: AtomicI64::new(now_ms),
            hour: AtomicU32::new(hour % 24),
        })
    }

    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, delta_ms: i64) {
        self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }

    pub fn set_hour(&self, hour: u32) {
        self.hour.store(hour % 24, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn local_hour(&self) -> u32 {
        self.hour.load(Ordering::SeqCst)
    }
}

/// How full the filesystem holding a path is.
pub trait DiskUsage: Send + Sync {
    /// Used fraction (0.0..=1.0) as `df` computes it: used / (used + available to users).
    fn used_ratio(&self, path: &Path) -> io::Result<f64>;
}

/// `statvfs` of the real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatvfsDiskUsage;

impl DiskUsage for StatvfsDiskUsage {
    fn used_ratio(&self, path: &Path) -> io::Result<f64> {
        let st = statvfs(path)?;
        let used = (st.f_blocks as f64) - (st.f_bfree as f64);
        let usable = used + st.f_bavail as f64;
        if usable <= 0.0 {
            return Ok(1.0);
        }
        Ok((used / usable).clamp(0.0, 1.0))
    }
}

/// Bytes in use on the filesystem holding `path` (total minus free), as RocketMQ reports
/// its storage size.
pub fn filesystem_used_bytes(path: &Path) -> io::Result<u64> {
    let st = statvfs(path)?;
    let fragment = st.f_frsize as u64;
    Ok((st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * fragment)
}

fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `statvfs` writes only into the struct we own; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

/// A filesystem usage tests set by hand.
#[derive(Debug, Default)]
pub struct ManualDiskUsage {
    ratio_bits: AtomicU64,
}

impl ManualDiskUsage {
    pub fn new(ratio: f64) -> Arc<ManualDiskUsage> {
        Arc::new(ManualDiskUsage {
            ratio_bits: AtomicU64::new(ratio.to_bits()),
        })
    }

    pub fn set(&self, ratio: f64) {
        self.ratio_bits.store(ratio.to_bits(), Ordering::SeqCst);
    }
}

impl DiskUsage for ManualDiskUsage {
    fn used_ratio(&self, _path: &Path) -> io::Result<f64> {
        Ok(f64::from_bits(self.ratio_bits.load(Ordering::SeqCst)))
    }
}

/// The outside world a store runs in.
#[derive(Clone)]
pub struct Environment {
    pub clock: Arc<dyn Clock>,
    pub disk: Arc<dyn DiskUsage>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            clock: Arc::new(SystemClock),
            disk: Arc::new(StatvfsDiskUsage),
        }
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_filesystem_usage_is_a_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let ratio = StatvfsDiskUsage.used_ratio(dir.path()).unwrap();
        assert!((0.0..=1.0).contains(&ratio));
        assert!(StatvfsDiskUsage
            .used_ratio(&dir.path().join("missing"))
            .is_err());
    }

    #[test]
    fn system_clock_hour_is_an_hour() {
        assert!(SystemClock.local_hour() < 24);
        assert!(SystemClock.now_ms() > 1_600_000_000_000);
    }
}
