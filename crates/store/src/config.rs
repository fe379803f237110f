//! Store settings, with RocketMQ's `MessageStoreConfig` names and defaults. The store owns
//! its `broker.conf` keys: each is read here, once, into its type.

use std::path::PathBuf;

use conf::{BadSetting, Setting};
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

impl FlushDiskType {
    /// The `flushDiskType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
            FlushDiskType::SyncFlush => "SYNC_FLUSH",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
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
    /// `deleteWhen`: hours of the day (local time; `;`-separated in the file, e.g. "04" or
    /// "03;04") when expired segments are removed.
    pub delete_when: Vec<u32>,
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
    /// Bytes of CommitLog kept mapped ahead of the writer by the prefault thread (0: none;
    /// see [`crate::prefault`]).
    pub prefault_ahead_bytes: u64,
    /// `warmMapedFileEnable`: a group member's prefault thread also writes zeros over its
    /// raft log's blocks ahead of the writer and syncs them, so the writer's fsyncs do not
    /// convert fresh blocks (see [`crate::prefault`]). On by default, unlike RocketMQ, where
    /// it warms a standalone CommitLog; a standalone broker here writes through the mapping
    /// and is never warmed.
    pub warm_mapped_file: bool,
    /// Consumer reads verify the body checksum of messages at least this far behind the
    /// CommitLog's write position (0: all). Nearer ones sit in pages this process wrote and
    /// the page cache still holds, whose bytes no disk rot can reach; verifying them would
    /// make the CPU read every body a pull otherwise sends straight from the mapping.
    pub verify_reads_behind_bytes: u64,
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
            delete_when: vec![4],
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
            prefault_ahead_bytes: 32 << 20,
            warm_mapped_file: true,
            verify_reads_behind_bytes: 256 << 20,
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

    /// Applies one `broker.conf` setting if its key is a store setting. Returns whether the
    /// key was recognised; a recognised key with a bad value is an error naming its line.
    /// (`maxMessageSize` is the broker's: it limits bodies, and the broker derives the
    /// store's record limits from it.)
    pub fn apply(&mut self, s: &Setting) -> std::result::Result<bool, BadSetting> {
        match s.key.as_str() {
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(s.non_empty()?),
            // RocketMQ's key keeps its historic misspelling; accept the correct one too.
            "mapedFileSizeCommitLog" | "mappedFileSizeCommitLog" => {
                self.mapped_file_size_commit_log = s.in_range(4096, 1 << 40)?
            }
            "mapedFileSizeConsumeQueue" | "mappedFileSizeConsumeQueue" => {
                // RocketMQ gives this in bytes of 20-byte entries.
                self.consume_queue_entries_per_file = s.in_range(20, 1 << 34)? / 20
            }
            "flushDiskType" => {
                self.flush_disk_type = match s.value.as_str() {
                    "ASYNC_FLUSH" => FlushDiskType::AsyncFlush,
                    "SYNC_FLUSH" => FlushDiskType::SyncFlush,
                    _ => return Err(s.bad("expected ASYNC_FLUSH or SYNC_FLUSH")),
                }
            }
            "flushIntervalCommitLog" => {
                self.flush_interval_commit_log_ms = s.in_range(1, 60_000)?
            }
            "flushIntervalConsumeQueue" => {
                self.flush_interval_consume_queue_ms = s.in_range(1, 60_000)?
            }
            "syncFlushTimeout" => self.sync_flush_timeout_ms = s.in_range(1, 600_000)?,
            "fileReservedTime" => self.file_reserved_time_hours = s.in_range(1, 24 * 365 * 10)?,
            "deleteWhen" => self.delete_when = parse_delete_when(s)?,
            "cleanResourceInterval" => {
                self.clean_resource_interval_ms = s.in_range(100, 3_600_000)?
            }
            // Percentages, as RocketMQ 5 reads them (4.x took the last two as JVM properties).
            "diskMaxUsedSpaceRatio" => {
                self.disk_max_used_space_ratio = s.in_range(10, 95)? as f64 / 100.0
            }
            "diskSpaceCleanForciblyRatio" => {
                self.disk_space_clean_forcibly_ratio = s.in_range(10, 100)? as f64 / 100.0
            }
            "diskSpaceWarningLevelRatio" => {
                self.disk_space_warning_level_ratio = s.in_range(10, 100)? as f64 / 100.0
            }
            "maxTransferCountOnMessageInMemory" => {
                self.max_transfer_count_on_message_in_memory = s.in_range(1, 1 << 20)? as usize
            }
            "maxTransferBytesOnMessageInMemory" => {
                self.max_transfer_bytes_on_message_in_memory = s.in_range(1, 1 << 30)? as usize
            }
            "messageIndexEnable" => self.message_index_enable = s.parse_bool()?,
            "maxHashSlotNum" => self.max_hash_slot_num = s.in_range(1, u32::MAX.into())? as u32,
            "maxIndexNum" => self.max_index_num = s.in_range(1, u32::MAX.into())? as u32,
            "maxMsgsNumBatch" => self.max_query_results = s.in_range(1, 1 << 16)? as usize,
            // This store's own: how far ahead of the writer the CommitLog is prefaulted.
            "commitLogPrefaultAheadBytes" => self.prefault_ahead_bytes = s.in_range(0, 1 << 30)?,
            // RocketMQ's key keeps its historic misspelling; accept the correct one too.
            "warmMapedFileEnable" | "warmMappedFileEnable" => {
                self.warm_mapped_file = s.parse_bool()?
            }
            // This store's own: which consumer reads verify the message's checksum.
            "commitLogVerifyReadsBehindBytes" => {
                self.verify_reads_behind_bytes = s.in_range(0, 1 << 50)?
            }
            "messageDelayLevel" => {
                self.message_delay_level = s.value.parse().map_err(|e| s.bad(format!("{e}")))?
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
        if self.delete_when.iter().any(|&hour| hour >= 24) {
            return Err(StoreError::Config(format!(
                "deleteWhen lists an hour past 23: {:?}",
                self.delete_when
            )));
        }
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

/// `deleteWhen` is a `;`-separated list of hours of the day (RocketMQ: "04", "04;16").
fn parse_delete_when(s: &Setting) -> std::result::Result<Vec<u32>, BadSetting> {
    let mut hours = Vec::new();
    for part in s.value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(h) if h < 24 => hours.push(h),
            _ => return Err(s.bad("expected hours of the day 00-23, separated by ';'")),
        }
    }
    if hours.is_empty() {
        return Err(s.bad("expected at least one hour of the day"));
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(key: &str, value: &str) -> Setting {
        Setting {
            key: key.into(),
            value: value.into(),
            line: 1,
        }
    }

    trait ApplyProperty {
        fn apply_property(
            &mut self,
            key: &str,
            value: &str,
        ) -> std::result::Result<bool, BadSetting>;
    }

    impl ApplyProperty for StoreConfig {
        fn apply_property(
            &mut self,
            key: &str,
            value: &str,
        ) -> std::result::Result<bool, BadSetting> {
            self.apply(&setting(key, value))
        }
    }

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
        assert!(c
            .apply_property("commitLogPrefaultAheadBytes", "0")
            .unwrap());
        assert_eq!(c.prefault_ahead_bytes, 0);
        assert!(
            c.warm_mapped_file,
            "group members warm their log by default"
        );
        assert!(c.apply_property("warmMapedFileEnable", "false").unwrap());
        assert!(!c.warm_mapped_file);
        assert!(c.apply_property("warmMappedFileEnable", "true").unwrap());
        assert!(c.warm_mapped_file);
        assert!(c
            .apply_property("warmMapedFileEnable", "sometimes")
            .is_err());
        assert!(c
            .apply_property("commitLogVerifyReadsBehindBytes", "0")
            .unwrap());
        assert_eq!(c.verify_reads_behind_bytes, 0);
        assert!(c
            .apply_property("commitLogVerifyReadsBehindBytes", "-1")
            .is_err());
        assert!(c
            .apply_property("commitLogPrefaultAheadBytes", "4294967296")
            .is_err());
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
        assert_eq!(
            parse_delete_when(&setting("deleteWhen", "04")).unwrap(),
            vec![4]
        );
        assert_eq!(
            parse_delete_when(&setting("deleteWhen", "03; 04;")).unwrap(),
            vec![3, 4]
        );
        assert!(parse_delete_when(&setting("deleteWhen", "4am")).is_err());
    }
}
