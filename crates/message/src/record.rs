//! Encoding the stored-message record: the same bytes live in the CommitLog and travel in
//! pull, query and view responses.
//!
//! Layout (big-endian; offsets for an IPv4 born host):
//! TOTALSIZE 0, MAGICCODE 4, BODYCRC 8, QUEUEID 12, FLAG 16, QUEUEOFFSET 20,
//! PHYSICALOFFSET 28, SYSFLAG 36, BORNTIMESTAMP 40, BORNHOST 48, STORETIMESTAMP 56,
//! STOREHOST 64, RECONSUMETIMES 72, PREPAREDTRANSACTIONOFFSET 76, BODY length 84, BODY 88,
//! TOPIC length (1 byte in V1, 2 in V2), TOPIC, PROPERTIES length (int16), PROPERTIES.
//! An IPv6 host takes 20 bytes instead of 8 and shifts every later field by 12.

use std::net::{IpAddr, SocketAddr};

use super::properties::MAX_PROPERTIES_LEN;
use super::sysflag::message::{BORNHOST_V6, STOREHOST_V6};

/// Magic of records with a one-byte topic length (what every client reads).
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// Magic of records with a two-byte topic length (Java 5.x, topics over 127 bytes).
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic of the filler Java writes at the end of a CommitLog file; never a message.
pub const MAGIC_BLANK: i32 = 0xCBD4_3194_u32 as i32;

/// Byte offsets of the fixed-position fields, for patching a record in place.
pub mod field {
    pub const TOTAL_SIZE: usize = 0;
    pub const MAGIC_CODE: usize = 4;
    pub const BODY_CRC: usize = 8;
    pub const QUEUE_ID: usize = 12;
    pub const FLAG: usize = 16;
    pub const QUEUE_OFFSET: usize = 20;
    pub const PHYSICAL_OFFSET: usize = 28;
    pub const SYS_FLAG: usize = 36;
    pub const BORN_TIMESTAMP: usize = 40;
    pub const BORN_HOST: usize = 48;
    /// STORETIMESTAMP when the born host is IPv4; see [`super::store_timestamp_offset`].
    pub const STORE_TIMESTAMP: usize = 56;
}

/// Length of a host field: address bytes plus an int32 port.
pub const HOST_V4_LEN: usize = 8;
pub const HOST_V6_LEN: usize = 20;
/// Longest topic a V1 record can carry (its length byte is read as signed).
pub const MAX_TOPIC_LEN_V1: usize = i8::MAX as usize;
/// Longest topic a V2 record can carry.
pub const MAX_TOPIC_LEN_V2: usize = i16::MAX as usize;

/// Bytes of every fixed field, not counting the two host fields, body, topic, properties
/// and the topic length prefix: 4+4+4+4+4+8+8+4+8+8+4+8+4 + 2 (properties length).
const FIXED_LEN: usize = 74;
/// Size of a V1 record with IPv4 hosts and empty body, topic and properties.
pub const MIN_RECORD_LEN: usize = FIXED_LEN + 2 * HOST_V4_LEN + 1;

/// Everything needed to build one stored-message record. Fields the store only knows
/// under its append lock (queue offset, physical offset, store timestamp) may be left at 0
/// and patched afterwards with [`patch_queue_offset`] and friends.
#[derive(Debug, Clone)]
pub struct MessageDraft<'a> {
    pub topic: &'a str,
    pub body: &'a [u8],
    pub flag: i32,
    /// Encoded properties string (see [`super::properties`]).
    pub properties: &'a str,
    pub queue_id: i32,
    /// SYSFLAG; the IPv6 host bits are set from the host addresses by the encoder.
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub store_timestamp_ms: i64,
}

/// Why a draft cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("topic is {0} bytes; at most {MAX_TOPIC_LEN_V2} fit in a message record")]
    TopicTooLong(usize),
    #[error("properties are {0} bytes; at most {MAX_PROPERTIES_LEN} fit in a message record")]
    PropertiesTooLong(usize),
    #[error("message record would be {0} bytes, over the int32 size field")]
    TooLarge(usize),
}

/// Where the patchable fields of an encoded record sit, relative to its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedRecord {
    pub total_size: usize,
    pub store_timestamp_offset: usize,
}

/// `zlib` CRC32 of a body masked to 31 bits, as RocketMQ stores it in BODYCRC.
pub fn body_crc(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

/// Offset of STORETIMESTAMP, which moves when the born host is IPv6.
pub fn store_timestamp_offset(sys_flag: i32) -> usize {
    field::BORN_HOST + host_len(sys_flag & BORNHOST_V6 != 0)
}

fn host_len(is_v6: bool) -> usize {
    if is_v6 {
        HOST_V6_LEN
    } else {
        HOST_V4_LEN
    }
}

/// The exact record size `draft` encodes to.
pub fn encoded_len(draft: &MessageDraft<'_>) -> Result<usize, EncodeError> {
    let topic_len = draft.topic.len();
    if topic_len > MAX_TOPIC_LEN_V2 {
        return Err(EncodeError::TopicTooLong(topic_len));
    }
    let properties_len = draft.properties.len();
    if properties_len > MAX_PROPERTIES_LEN {
        return Err(EncodeError::PropertiesTooLong(properties_len));
    }
    let topic_len_size = if topic_len > MAX_TOPIC_LEN_V1 { 2 } else { 1 };
    let head_len = FIXED_LEN
        + host_len(draft.born_host.is_ipv6())
        + host_len(draft.store_host.is_ipv6())
        + topic_len_size
        + topic_len
        + properties_len;
    let total = head_len.saturating_add(draft.body.len());
    if total > i32::MAX as usize {
        return Err(EncodeError::TooLarge(total));
    }
    Ok(total)
}

/// Appends the record for `draft` to `out`. V1 magic unless the topic needs V2 (over 127
/// bytes), because C++ and Java 4.x consumers only read V1.
pub fn encode_into(
    draft: &MessageDraft<'_>,
    out: &mut Vec<u8>,
) -> Result<EncodedRecord, EncodeError> {
    let total_size = encoded_len(draft)?;
    let is_v2 = draft.topic.len() > MAX_TOPIC_LEN_V1;
    let mut sys_flag = draft.sys_flag & !(BORNHOST_V6 | STOREHOST_V6);
    if draft.born_host.is_ipv6() {
        sys_flag |= BORNHOST_V6;
    }
    if draft.store_host.is_ipv6() {
        sys_flag |= STOREHOST_V6;
    }

    out.reserve(total_size);
    let start = out.len();
    // Lengths below were bounded by `encoded_len`, so the casts cannot truncate.
    out.extend_from_slice(&(total_size as i32).to_be_bytes());
    out.extend_from_slice(&(if is_v2 { MAGIC_V2 } else { MAGIC_V1 }).to_be_bytes());
    out.extend_from_slice(&body_crc(draft.body).to_be_bytes());
    out.extend_from_slice(&draft.queue_id.to_be_bytes());
    out.extend_from_slice(&draft.flag.to_be_bytes());
    out.extend_from_slice(&draft.queue_offset.to_be_bytes());
    out.extend_from_slice(&draft.physical_offset.to_be_bytes());
    out.extend_from_slice(&sys_flag.to_be_bytes());
    out.extend_from_slice(&draft.born_timestamp_ms.to_be_bytes());
    put_host(out, draft.born_host);
    out.extend_from_slice(&draft.store_timestamp_ms.to_be_bytes());
    put_host(out, draft.store_host);
    out.extend_from_slice(&draft.reconsume_times.to_be_bytes());
    out.extend_from_slice(&draft.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&(draft.body.len() as i32).to_be_bytes());
    out.extend_from_slice(draft.body);
    if is_v2 {
        out.extend_from_slice(&(draft.topic.len() as i16).to_be_bytes());
    } else {
        out.push(draft.topic.len() as u8);
    }
    out.extend_from_slice(draft.topic.as_bytes());
    out.extend_from_slice(&(draft.properties.len() as i16).to_be_bytes());
    out.extend_from_slice(draft.properties.as_bytes());
    debug_assert_eq!(out.len() - start, total_size);

    Ok(EncodedRecord {
        total_size,
        store_timestamp_offset: store_timestamp_offset(sys_flag),
    })
}

/// The record for `draft` in a new buffer.
pub fn encode(draft: &MessageDraft<'_>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(draft, &mut out)?;
    Ok(out)
}

fn put_host(out: &mut Vec<u8>, host: SocketAddr) {
    match host.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&i32::from(host.port()).to_be_bytes());
}

/// Why a record could not be patched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record of {len} bytes is too short to patch the field at offset {offset}")]
pub struct PatchError {
    pub offset: usize,
    pub len: usize,
}

fn patch(record: &mut [u8], offset: usize, bytes: &[u8]) -> Result<(), PatchError> {
    let len = record.len();
    record
        .get_mut(offset..offset + bytes.len())
        .ok_or(PatchError { offset, len })?
        .copy_from_slice(bytes);
    Ok(())
}

/// Overwrites QUEUEOFFSET of the record starting at `record[0]`.
pub fn patch_queue_offset(record: &mut [u8], queue_offset: i64) -> Result<(), PatchError> {
    patch(record, field::QUEUE_OFFSET, &queue_offset.to_be_bytes())
}

/// Overwrites PHYSICALOFFSET of the record starting at `record[0]`.
pub fn patch_physical_offset(record: &mut [u8], physical_offset: i64) -> Result<(), PatchError> {
    patch(
        record,
        field::PHYSICAL_OFFSET,
        &physical_offset.to_be_bytes(),
    )
}

/// Overwrites STORETIMESTAMP, locating it from the record's own SYSFLAG.
pub fn patch_store_timestamp(record: &mut [u8], store_timestamp_ms: i64) -> Result<(), PatchError> {
    let len = record.len();
    let sys_flag_bytes = record
        .get(field::SYS_FLAG..field::SYS_FLAG + 4)
        .ok_or(PatchError {
            offset: field::SYS_FLAG,
            len,
        })?;
    let mut word = [0u8; 4];
    word.copy_from_slice(sys_flag_bytes);
    let offset = store_timestamp_offset(i32::from_be_bytes(word));
    patch(record, offset, &store_timestamp_ms.to_be_bytes())
}
