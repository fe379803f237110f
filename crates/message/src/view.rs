//! Zero-copy decoding of stored-message records.
//!
//! Every length is checked against the bytes at hand and against TOTALSIZE, and the fields
//! must add up to exactly TOTALSIZE: a torn or corrupted record is an error, never a panic
//! and never a silently shifted read.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::id::offset_msg_id;
use super::properties::{self, keys};
use super::record::{body_crc, field, MAGIC_V1, MAGIC_V2, MIN_RECORD_LEN};
use super::sysflag::message::{self as sysflag, BORNHOST_V6, STOREHOST_V6};
use super::tag::tags_code;

/// Why bytes are not a valid message record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message record truncated: {field} needs {needed} bytes at offset {offset}, record has {available}")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("message TOTALSIZE {0} is outside the valid range")]
    BadTotalSize(i32),
    #[error("message magic code {0:#010x} is neither V1 nor V2")]
    BadMagic(u32),
    #[error("message field {field} has negative length {len}")]
    NegativeLength { field: &'static str, len: i32 },
    #[error("message {field} port {port} is out of range")]
    BadPort { field: &'static str, port: i32 },
    #[error("message fields end at byte {fields_end} but TOTALSIZE is {total_size}")]
    SizeMismatch {
        fields_end: usize,
        total_size: usize,
    },
    #[error("message {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
}

/// A cursor over one record that never reads past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(slice) => {
                self.pos += len;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                field,
                offset: self.pos,
                needed: len,
                available: self.bytes.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn length(&mut self, field: &'static str, len: i32) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len).map_err(|_| DecodeError::NegativeLength { field, len })?;
        self.take(field, len)
    }

    fn host(&mut self, field: &'static str, is_v6: bool) -> Result<SocketAddr, DecodeError> {
        let ip = if is_v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))
        };
        let port = self.i32(field)?;
        let port = u16::try_from(port).map_err(|_| DecodeError::BadPort { field, port })?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// One decoded record borrowing the buffer it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView<'a> {
    record: &'a [u8],
    magic: i32,
    body_crc: i32,
    queue_id: i32,
    flag: i32,
    queue_offset: i64,
    physical_offset: i64,
    sys_flag: i32,
    born_timestamp_ms: i64,
    born_host: SocketAddr,
    store_timestamp_ms: i64,
    store_host: SocketAddr,
    reconsume_times: i32,
    prepared_transaction_offset: i64,
    body: &'a [u8],
    topic: &'a str,
    properties: &'a str,
}

/// Reads TOTALSIZE at the start of `bytes` and checks it is plausible and present.
/// A store uses this to walk its log before deciding whether to decode.
pub fn peek_total_size(bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut reader = Reader { bytes, pos: 0 };
    let total = reader.i32("TOTALSIZE")?;
    let size = usize::try_from(total).map_err(|_| DecodeError::BadTotalSize(total))?;
    if size < MIN_RECORD_LEN {
        return Err(DecodeError::BadTotalSize(total));
    }
    if size > bytes.len() {
        return Err(DecodeError::Truncated {
            field: "record",
            offset: 0,
            needed: size,
            available: bytes.len(),
        });
    }
    Ok(size)
}

impl<'a> MessageView<'a> {
    /// Decodes the record at the start of `bytes` (which may hold more records after it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let total_size = peek_total_size(bytes)?;
        let record = &bytes[..total_size.min(bytes.len())];
        let mut r = Reader {
            bytes: record,
            pos: field::MAGIC_CODE,
        };
        let magic = r.i32("MAGICCODE")?;
        if magic != MAGIC_V1 && magic != MAGIC_V2 {
            return Err(DecodeError::BadMagic(magic as u32));
        }
        let body_crc = r.i32("BODYCRC")?;
        let queue_id = r.i32("QUEUEID")?;
        let flag = r.i32("FLAG")?;
        let queue_offset = r.i64("QUEUEOFFSET")?;
        let physical_offset = r.i64("PHYSICALOFFSET")?;
        let sys_flag = r.i32("SYSFLAG")?;
        let born_timestamp_ms = r.i64("BORNTIMESTAMP")?;
        let born_host = r.host("BORNHOST", sys_flag & BORNHOST_V6 != 0)?;
        let store_timestamp_ms = r.i64("STORETIMESTAMP")?;
        let store_host = r.host("STOREHOST", sys_flag & STOREHOST_V6 != 0)?;
        let reconsume_times = r.i32("RECONSUMETIMES")?;
        let prepared_transaction_offset = r.i64("PREPAREDTRANSACTIONOFFSET")?;
        let body_len = r.i32("BODY length")?;
        let body = r.length("BODY", body_len)?;
        let topic_len = if magic == MAGIC_V2 {
            i32::from(r.i16("TOPIC length")?)
        } else {
            // Java reads the V1 length as a signed byte; lengths over 127 are corrupt.
            i32::from(i8::from_be_bytes(r.array("TOPIC length")?))
        };
        let topic = r.length("TOPIC", topic_len)?;
        let properties_len = i32::from(r.i16("PROPERTIES length")?);
        let properties = r.length("PROPERTIES", properties_len)?;
        if r.pos != total_size {
            return Err(DecodeError::SizeMismatch {
                fields_end: r.pos,
                total_size,
            });
        }
        let topic = std::str::from_utf8(topic).map_err(|_| DecodeError::InvalidUtf8("TOPIC"))?;
        let properties =
            std::str::from_utf8(properties).map_err(|_| DecodeError::InvalidUtf8("PROPERTIES"))?;
        Ok(MessageView {
            record,
            magic,
            body_crc,
            queue_id,
            flag,
            queue_offset,
            physical_offset,
            sys_flag,
            born_timestamp_ms,
            born_host,
            store_timestamp_ms,
            store_host,
            reconsume_times,
            prepared_transaction_offset,
            body,
            topic,
            properties,
        })
    }

    /// The record's bytes, exactly TOTALSIZE long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.record
    }
    pub fn total_size(&self) -> usize {
        self.record.len()
    }
    pub fn magic(&self) -> i32 {
        self.magic
    }
    pub fn body_crc(&self) -> i32 {
        self.body_crc
    }
    /// Whether BODYCRC matches the body (the store checks this on recovery).
    pub fn body_crc_matches(&self) -> bool {
        body_crc(self.body) == self.body_crc
    }
    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }
    pub fn flag(&self) -> i32 {
        self.flag
    }
    pub fn queue_offset(&self) -> i64 {
        self.queue_offset
    }
    pub fn physical_offset(&self) -> i64 {
        self.physical_offset
    }
    pub fn sys_flag(&self) -> i32 {
        self.sys_flag
    }
    pub fn transaction_type(&self) -> i32 {
        sysflag::transaction_type(self.sys_flag)
    }
    pub fn born_timestamp_ms(&self) -> i64 {
        self.born_timestamp_ms
    }
    pub fn born_host(&self) -> SocketAddr {
        self.born_host
    }
    pub fn store_timestamp_ms(&self) -> i64 {
        self.store_timestamp_ms
    }
    pub fn store_host(&self) -> SocketAddr {
        self.store_host
    }
    pub fn reconsume_times(&self) -> i32 {
        self.reconsume_times
    }
    pub fn prepared_transaction_offset(&self) -> i64 {
        self.prepared_transaction_offset
    }
    /// The body as stored (still compressed if SYSFLAG says so).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    /// The encoded properties string.
    pub fn properties(&self) -> &'a str {
        self.properties
    }
    pub fn property(&self, key: &str) -> Option<&'a str> {
        properties::find(self.properties, key)
    }
    pub fn properties_map(&self) -> HashMap<String, String> {
        properties::decode(self.properties)
    }
    pub fn tags(&self) -> Option<&'a str> {
        self.property(keys::TAGS)
    }
    /// The space-separated KEYS property.
    pub fn keys(&self) -> Option<&'a str> {
        self.property(keys::KEYS)
    }
    pub fn uniq_key(&self) -> Option<&'a str> {
        self.property(keys::UNIQ_KEY)
    }
    /// The ConsumeQueue tags code (hash of TAGS, 0 without).
    pub fn tags_code(&self) -> i64 {
        tags_code(self.tags())
    }
    /// The broker-assigned offset msgId (STOREHOST + PHYSICALOFFSET).
    pub fn offset_msg_id(&self) -> String {
        offset_msg_id(self.store_host, self.physical_offset)
    }

    /// What a store needs to build ConsumeQueue and index entries.
    pub fn dispatch_info(&self) -> DispatchInfo<'a> {
        let mut tags = None;
        let mut keys = None;
        let mut uniq_key = None;
        // One pass over the properties instead of three lookups; last duplicate wins.
        for (key, value) in properties::iter(self.properties) {
            match key {
                keys::TAGS => tags = Some(value),
                keys::KEYS => keys = Some(value),
                keys::UNIQ_KEY => uniq_key = Some(value),
                _ => {}
            }
        }
        DispatchInfo {
            topic: self.topic,
            queue_id: self.queue_id,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            total_size: self.record.len(),
            tags_code: tags_code(tags),
            store_timestamp_ms: self.store_timestamp_ms,
            born_timestamp_ms: self.born_timestamp_ms,
            sys_flag: self.sys_flag,
            tags,
            keys,
            uniq_key,
            properties: self.properties,
        }
    }

    /// An owned copy with decoded properties (for clients that keep messages around).
    pub fn to_owned_message(&self) -> StoredMessage {
        StoredMessage {
            topic: self.topic.to_owned(),
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sys_flag: self.sys_flag,
            body_crc: self.body_crc,
            born_timestamp_ms: self.born_timestamp_ms,
            born_host: self.born_host,
            store_timestamp_ms: self.store_timestamp_ms,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: self.body.to_vec(),
            properties: self.properties_map(),
            offset_msg_id: self.offset_msg_id(),
        }
    }
}

/// The fields a store needs to index one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchInfo<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub total_size: usize,
    /// Hash of TAGS, 0 without (a store overrides it for SCHEDULE_TOPIC_XXXX).
    pub tags_code: i64,
    pub store_timestamp_ms: i64,
    pub born_timestamp_ms: i64,
    pub sys_flag: i32,
    pub tags: Option<&'a str>,
    pub keys: Option<&'a str>,
    pub uniq_key: Option<&'a str>,
    pub properties: &'a str,
}

impl DispatchInfo<'_> {
    /// Whether this record gets a ConsumeQueue entry (not a half or rolled-back message).
    pub fn is_dispatchable(&self) -> bool {
        sysflag::is_dispatchable(self.sys_flag)
    }

    /// The individual KEYS entries (space separated, empties skipped).
    pub fn key_list(&self) -> impl Iterator<Item = &str> {
        self.keys
            .unwrap_or("")
            .split(keys::KEY_SEPARATOR)
            .filter(|k| !k.is_empty())
    }
}

/// The fields of a record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub body_crc: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub store_timestamp_ms: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Vec<u8>,
    pub properties: HashMap<String, String>,
    pub offset_msg_id: String,
}

impl StoredMessage {
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }
    pub fn tags(&self) -> Option<&str> {
        self.property(keys::TAGS)
    }
    pub fn keys(&self) -> Option<&str> {
        self.property(keys::KEYS)
    }
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(keys::UNIQ_KEY)
    }
}

/// Iterates the records of a concatenated body (pull, query, view responses). Yields an
/// error once and then stops, because nothing after a corrupt record can be located.
#[derive(Debug, Clone)]
pub struct MessageIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> MessageIter<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        MessageIter {
            rest: body,
            failed: false,
        }
    }
}

impl<'a> Iterator for MessageIter<'a> {
    type Item = Result<MessageView<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match MessageView::parse(self.rest) {
            Ok(view) => {
                self.rest = self.rest.get(view.total_size()..).unwrap_or(&[]);
                Some(Ok(view))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

impl std::iter::FusedIterator for MessageIter<'_> {}

/// Decodes every record of a concatenated body, failing on the first malformed one.
pub fn decode_all(body: &[u8]) -> Result<Vec<MessageView<'_>>, DecodeError> {
    MessageIter::new(body).collect()
}
