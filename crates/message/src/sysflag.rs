//! Bit flags carried in a message's SYSFLAG field and in a pull request's `sysFlag`.

/// Bits of the stored message's SYSFLAG (RocketMQ `MessageSysFlag`).
pub mod message {
    /// The body is compressed (type in [`COMPRESSION_TYPE_MASK`]).
    pub const COMPRESSED: i32 = 0x1;
    /// Legacy MULTI_TAG topic marker.
    pub const MULTI_TAGS: i32 = 0x2;
    /// Transaction type field (two bits).
    pub const TRANSACTION_TYPE_MASK: i32 = 0xC;
    pub const TRANSACTION_NOT_TYPE: i32 = 0x0;
    pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
    pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
    pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
    /// BORNHOST is an IPv6 address (20-byte field instead of 8).
    pub const BORNHOST_V6: i32 = 0x10;
    /// STOREHOST is an IPv6 address (20-byte field instead of 8).
    pub const STOREHOST_V6: i32 = 0x20;
    /// Inner-batch message that must be unwrapped by the consumer.
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner-batch message stored as one record.
    pub const INNER_BATCH: i32 = 0x80;
    /// Compression algorithm bits (see [`super::CompressionType`]).
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
    pub const COMPRESSION_TYPE_SHIFT: u32 = 8;

    /// The transaction bits of `sys_flag` (one of the `TRANSACTION_*` values).
    pub fn transaction_type(sys_flag: i32) -> i32 {
        sys_flag & TRANSACTION_TYPE_MASK
    }

    /// `sys_flag` with its transaction bits replaced by `transaction_type`.
    pub fn with_transaction_type(sys_flag: i32, transaction_type: i32) -> i32 {
        (sys_flag & !TRANSACTION_TYPE_MASK) | (transaction_type & TRANSACTION_TYPE_MASK)
    }

    /// Whether a message with this sysflag gets a ConsumeQueue entry: prepared (half) and
    /// rolled-back messages never become visible to consumers.
    pub fn is_dispatchable(sys_flag: i32) -> bool {
        matches!(
            transaction_type(sys_flag),
            TRANSACTION_NOT_TYPE | TRANSACTION_COMMIT_TYPE
        )
    }
}

/// Bits of a PULL_MESSAGE request's `sysFlag` (RocketMQ `PullSysFlag`).
pub mod pull {
    /// Store `commitOffset` as the group's progress.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// Long polling allowed.
    pub const SUSPEND: i32 = 0x2;
    /// Use the `subscription` expression carried in this request.
    pub const SUBSCRIPTION: i32 = 0x4;
    /// Obsolete filter-server class filter.
    pub const CLASS_FILTER: i32 = 0x8;
    /// Sent by the Java lite-pull consumer.
    pub const LITE_PULL_MESSAGE: i32 = 0x10;

    pub fn build(
        commit_offset: bool,
        suspend: bool,
        subscription: bool,
        class_filter: bool,
    ) -> i32 {
        let mut flag = 0;
        if commit_offset {
            flag |= COMMIT_OFFSET;
        }
        if suspend {
            flag |= SUSPEND;
        }
        if subscription {
            flag |= SUBSCRIPTION;
        }
        if class_filter {
            flag |= CLASS_FILTER;
        }
        flag
    }

    /// The flag without COMMIT_OFFSET (clients clear it when pulling from a slave).
    pub fn clear_commit_offset(sys_flag: i32) -> i32 {
        sys_flag & !COMMIT_OFFSET
    }
}

/// Compression algorithm named by SYSFLAG bits 8–10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    Zlib,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// The algorithm a message with this sysflag was compressed with, `None` if the body
    /// is not compressed. Type value 0 predates the type bits and means zlib, like 3.
    pub fn of_sys_flag(sys_flag: i32) -> Option<Result<CompressionType, i32>> {
        if sys_flag & message::COMPRESSED == 0 {
            return None;
        }
        let kind = (sys_flag & message::COMPRESSION_TYPE_MASK) >> message::COMPRESSION_TYPE_SHIFT;
        Some(match kind {
            0 | 3 => Ok(CompressionType::Zlib),
            1 => Ok(CompressionType::Lz4),
            2 => Ok(CompressionType::Zstd),
            other => Err(other),
        })
    }

    /// The SYSFLAG bits (COMPRESSED plus type) a producer sets for this algorithm.
    pub fn sys_flag_bits(self) -> i32 {
        let kind = match self {
            CompressionType::Lz4 => 1,
            CompressionType::Zstd => 2,
            CompressionType::Zlib => 3,
        };
        message::COMPRESSED | (kind << message::COMPRESSION_TYPE_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_zlib_compressed_sysflag_is_0x301() {
        assert_eq!(CompressionType::Zlib.sys_flag_bits(), 0x301);
        assert_eq!(
            CompressionType::of_sys_flag(0x301),
            Some(Ok(CompressionType::Zlib))
        );
        // CPP sets only bit 0.
        assert_eq!(
            CompressionType::of_sys_flag(0x1),
            Some(Ok(CompressionType::Zlib))
        );
        assert_eq!(CompressionType::of_sys_flag(0x300), None);
        assert_eq!(
            CompressionType::of_sys_flag(0x101),
            Some(Ok(CompressionType::Lz4))
        );
        assert_eq!(CompressionType::of_sys_flag(0x701), Some(Err(7)));
    }

    #[test]
    fn only_plain_and_committed_messages_are_dispatched() {
        use message::*;
        assert!(is_dispatchable(0));
        assert!(is_dispatchable(COMPRESSED | TRANSACTION_COMMIT_TYPE));
        assert!(!is_dispatchable(TRANSACTION_PREPARED_TYPE));
        assert!(!is_dispatchable(TRANSACTION_ROLLBACK_TYPE | BORNHOST_V6));
        assert_eq!(
            with_transaction_type(
                TRANSACTION_PREPARED_TYPE | COMPRESSED,
                TRANSACTION_COMMIT_TYPE
            ),
            TRANSACTION_COMMIT_TYPE | COMPRESSED
        );
    }

    #[test]
    fn pull_flag_bits() {
        assert_eq!(pull::build(true, true, true, false), 0x7);
        assert_eq!(pull::clear_commit_offset(0x7), 0x6);
    }
}
