//! Store settings, with RocketMQ's `MessageStoreConfig` names and defaults.

use std::path::PathBuf;

use message::DelayLevels;

use crate::error::{Result, StoreError};

/// When a put is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushDiskType {
    /// Acknowledge after the write; a background flush runs every
    /// `flush_interval_commit_log_ms`.
    #[default]
    AsyncFlush,
    /// Acknowledge after fsync; concurrent puts share one fsync (group commit).
    SyncFlush,
}

impl std::str::FromStr for FlushDiskType {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "ASYNC_FLUSH" => Ok(FlushDiskType::AsyncFlush),
            "SYNC_FLUSH" => Ok(FlushDiskType::SyncFlush),
            other => Err(StoreError::Config(format!(
                "flushDiskType must be ASYNC_FLUSH or SYNC_FLUSH, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `storePathRootDir`: holds `commitlog/`, `consumequeue/`, `index/`, `checkpoint`.
    pub store_path_root_dir: PathBuf,
    /// `mappedFileSizeCommitLog` (RocketMQ also accepts the old `mapedFileSizeCommitLog`).
    pub mapped_file_size_commit_log: u64,
    /// Entries per ConsumeQueue file (`mappedFileSizeConsumeQueue` / 20).
    pub consume_queue_entries_per_file: u64,
    /// Slots per entry-index file (32 bytes each; DLedger uses 5 Mi).
    pub entry_index_slots_per_file: u64,
    pub flush_disk_type: FlushDiskType,
    /// `flushIntervalCommitLog`: async flush period.
    pub flush_interval_commit_log_ms: u64,
    /// `flushIntervalConsumeQueue`: period of flushing ConsumeQueues and index and writing
    /// the checkpoints.
    pub flush_interval_consume_queue_ms: u64,
    /// `syncFlushTimeout`: how long a SYNC_FLUSH put waits for its fsync.
    pub sync_flush_timeout_ms: u64,
    /// `fileReservedTime`: hours a CommitLog segment is kept after its last write.
    pub file_reserved_time_hours: u64,
    /// `deleteWhen`: hours of the day (local time, `;`-separated, e.g. "04" or "03;04")
    /// when expired segments are removed.
    pub delete_when: String,
    /// `cleanResourceInterval`: how often retention runs.
    pub clean_resource_interval_ms: u64,
    /// `deleteCommitLogFilesInterval`-like bound: segments removed per retention run.
    pub max_segments_deleted_per_run: usize,
    /// `diskMaxUsedSpaceRatio` (percent in RocketMQ): above it, expired segments are removed
    /// at any hour.
    pub disk_max_used_space_ratio: f64,
    /// Above this, the oldest segments are removed even if not expired.
    pub disk_space_clean_forcibly_ratio: f64,
    /// `diskSpaceWarningLevelRatio`: above it, puts are refused with `DiskFull`.
    pub disk_space_warning_level_ratio: f64,
    /// How often the put path re-reads the filesystem usage.
    pub disk_check_interval_ms: u64,
    /// `maxMessageSize`: largest record accepted.
    pub max_message_size: usize,
    /// Most records in one put.
    pub max_batch_messages: usize,
    /// Most bytes in one put.
    pub max_batch_bytes: usize,
    /// `maxTransferCountOnMessageInMemory`: messages per pull.
    pub max_transfer_count_on_message_in_memory: usize,
    /// `maxTransferBytesOnMessageInMemory`: bytes per pull.
    pub max_transfer_bytes_on_message_in_memory: usize,
    /// `messageIndexEnable`: build the key index.
    pub message_index_enable: bool,
    /// `maxHashSlotNum` of a key-index file.
    pub max_hash_slot_num: u32,
    /// `maxIndexNum`: entries per key-index file.
    pub max_index_num: u32,
    /// Most results a key query returns (`maxMsgsNumBatch`).
    pub max_query_results: usize,
    /// `messageDelayLevel`: delays of levels 1, 2, ... for SCHEDULE_TOPIC_XXXX.
    pub message_delay_level: DelayLevels,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            store_path_root_dir: PathBuf::from("store"),
            mapped_file_size_commit_log: 1 << 30,
            consume_queue_entries_per_file: 300_000,
            entry_index_slots_per_file: 5 * 1024 * 1024,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_commit_log_ms: 500,
            flush_interval_consume_queue_ms: 1000,
            sync_flush_timeout_ms: 5000,
            file_reserved_time_hours: 72,
            delete_when: "04".to_string(),
            clean_resource_interval_ms: 10_000,
            max_segments_deleted_per_run: 10,
            disk_max_used_space_ratio: 0.75,
            disk_space_clean_forcibly_ratio: 0.85,
            disk_space_warning_level_ratio: 0.90,
            disk_check_interval_ms: 1000,
            max_message_size: 4 * 1024 * 1024,
            max_batch_messages: 1024,
            max_batch_bytes: 16 * 1024 * 1024,
            max_transfer_count_on_message_in_memory: 32,
            max_transfer_bytes_on_message_in_memory: 256 * 1024,
            message_index_enable: true,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            max_query_results: 64,
            message_delay_level: DelayLevels::default(),
        }
    }
}

impl StoreConfig {
    /// A config rooted at `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            store_path_root_dir: dir.into(),
            ..StoreConfig::default()
        }
    }

    /// Applies one `broker.conf` key if it is a store setting. Returns whether the key was
    /// recognised; a recognised key with a bad value is an error.
    pub fn apply_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let value = value.trim();
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value
                .parse()
                .map_err(|_| StoreError::Config(format!("{key}={value:?} is not a valid number")))
        }
        fn ratio(key: &str, value: &str) -> Result<f64> {
            let percent: f64 = num(key, value)?;
            if !(0.0..=100.0).contains(&percent) {
                return Err(StoreError::Config(format!(
                    "{key}={value} must be a percentage"
                )));
            }
            Ok(percent / 100.0)
        }
        match key {
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(value),
            "mappedFileSizeCommitLog" | "mapedFileSizeCommitLog" => {
                self.mapped_file_size_commit_log = num(key, value)?
            }
            "mappedFileSizeConsumeQueue" | "mapedFileSizeConsumeQueue" => {
                let bytes: u64 = num(key, value)?;
                self.consume_queue_entries_per_file = (bytes / 20).max(1);
            }
            "flushDiskType" => self.flush_disk_type = value.parse()?,
            "flushIntervalCommitLog" => self.flush_interval_commit_log_ms = num(key, value)?,
            "flushIntervalConsumeQueue" => self.flush_interval_consume_queue_ms = num(key, value)?,
            "syncFlushTimeout" => self.sync_flush_timeout_ms = num(key, value)?,
            "fileReservedTime" => self.file_reserved_time_hours = num(key, value)?,
            "deleteWhen" => {
                parse_delete_when(value)?;
                self.delete_when = value.to_string();
            }
            "cleanResourceInterval" => self.clean_resource_interval_ms = num(key, value)?,
            "diskMaxUsedSpaceRatio" => self.disk_max_used_space_ratio = ratio(key, value)?,
            "diskSpaceCleanForciblyRatio" => {
                self.disk_space_clean_forcibly_ratio = ratio(key, value)?
            }
            "diskSpaceWarningLevelRatio" => {
                self.disk_space_warning_level_ratio = ratio(key, value)?
            }
            "maxMessageSize" => self.max_message_size = num(key, value)?,
            "maxTransferCountOnMessageInMemory" => {
                self.max_transfer_count_on_message_in_memory = num(key, value)?
            }
            "maxTransferBytesOnMessageInMemory" => {
                self.max_transfer_bytes_on_message_in_memory = num(key, value)?
            }
            "messageIndexEnable" => {
                self.message_index_enable = value.parse().map_err(|_| {
                    StoreError::Config(format!("{key}={value:?} must be true or false"))
                })?
            }
            "maxHashSlotNum" => self.max_hash_slot_num = num(key, value)?,
            "maxIndexNum" => self.max_index_num = num(key, value)?,
            "maxMsgsNumBatch" => self.max_query_results = num(key, value)?,
            "messageDelayLevel" => {
                self.message_delay_level = value
                    .parse()
                    .map_err(|e| StoreError::Config(format!("messageDelayLevel: {e}")))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<()> {
        if self.max_message_size == 0 || self.max_batch_messages == 0 {
            return Err(StoreError::Config(
                "maxMessageSize and the batch limit must be positive".into(),
            ));
        }
        if self.mapped_file_size_commit_log < self.max_message_size as u64 + 48 {
            return Err(StoreError::Config(format!(
                "mappedFileSizeCommitLog={} cannot hold a message of maxMessageSize={} bytes",
                self.mapped_file_size_commit_log, self.max_message_size
            )));
        }
        if self.max_batch_bytes < self.max_message_size {
            return Err(StoreError::Config(
                "the batch byte limit is below maxMessageSize".into(),
            ));
        }
        for (name, r) in [
            ("diskMaxUsedSpaceRatio", self.disk_max_used_space_ratio),
            (
                "diskSpaceCleanForciblyRatio",
                self.disk_space_clean_forcibly_ratio,
            ),
            (
                "diskSpaceWarningLevelRatio",
                self.disk_space_warning_level_ratio,
            ),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(StoreError::Config(format!(
                    "{name} must be within 0..=1, got {r}"
                )));
            }
        }
        parse_delete_when(&self.delete_when)?;
        Ok(())
    }

    pub fn commit_log_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("commitlog")
    }

    pub fn consume_queue_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("consumequeue")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("index")
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.store_path_root_dir.join("checkpoint")
    }
}

/// Parses `deleteWhen` ("04", "03;04") into hours of the day.
pub fn parse_delete_when(value: &str) -> Result<Vec<u32>> {
    let mut hours = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(h) if h < 24 => hours.push(h),
            _ => {
                return Err(StoreError::Config(format!(
                    "deleteWhen={value:?}: {part:?} is not an hour of the day"
                )))
            }
        }
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_apply_with_rocketmq_names() {
        let mut c = StoreConfig::default();
        assert!(c.apply_property("flushDiskType", "SYNC_FLUSH").unwrap());
        assert_eq!(c.flush_disk_type, FlushDiskType::SyncFlush);
        assert!(c
            .apply_property("mapedFileSizeCommitLog", "1048576")
            .unwrap());
        assert_eq!(c.mapped_file_size_commit_log, 1 << 20);
        assert!(c.apply_property("diskMaxUsedSpaceRatio", "80").unwrap());
        assert!((c.disk_max_used_space_ratio - 0.8).abs() < 1e-9);
        assert!(c
            .apply_property("mappedFileSizeConsumeQueue", "6000000")
            .unwrap());
        assert_eq!(c.consume_queue_entries_per_file, 300_000);
        assert!(!c.apply_property("brokerName", "b").unwrap());
        assert!(c.apply_property("flushDiskType", "SOMETIMES").is_err());
        assert!(c.apply_property("deleteWhen", "25").is_err());
        assert!(c.apply_property("fileReservedTime", "-1").is_err());
        assert!(c
            .apply_property("messageDelayLevel", "1s 2m 3h 1d")
            .unwrap());
        assert!(c.apply_property("messageDelayLevel", "1s 2x").is_err());
        c.mapped_file_size_commit_log = 1 << 30;
        assert!(c.validate().is_ok());
        c.mapped_file_size_commit_log = 1 << 20;
        assert!(
            c.validate().is_err(),
            "a segment must hold the largest message"
        );
    }

    #[test]
    fn delete_when_lists_hours() {
        assert_eq!(parse_delete_when("04").unwrap(), vec![4]);
        assert_eq!(parse_delete_when("03; 04;").unwrap(), vec![3, 4]);
        assert!(parse_delete_when("4am").is_err());
    }
}
