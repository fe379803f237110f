//! Batch send bodies (client to broker): one entry per message, concatenated.
//!
//! Entry: TOTALSIZE int32 (whole entry), MAGICCODE int32 (clients write 0), BODYCRC int32
//! (clients write 0), FLAG int32, body length int32, body, properties length int16,
//! properties. The broker ignores MAGICCODE and BODYCRC and recomputes the CRC.

use super::properties::MAX_PROPERTIES_LEN;

/// Bytes of an entry with an empty body and no properties.
pub const MIN_ENTRY_LEN: usize = 4 + 4 + 4 + 4 + 4 + 2;

/// One message of a batch, borrowing the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    /// Encoded properties string (each item carries its own `UNIQ_KEY`).
    pub properties: &'a str,
}

/// Why a batch body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch entry at byte {offset} is truncated")]
    Truncated { offset: usize },
    #[error("batch entry at byte {offset} has invalid TOTALSIZE {total_size}")]
    BadTotalSize { offset: usize, total_size: i32 },
    #[error("batch entry at byte {offset} has invalid body length {len}")]
    BadBodyLength { offset: usize, len: i32 },
    #[error("batch entry at byte {offset} has invalid properties length {len}")]
    BadPropertiesLength { offset: usize, len: i16 },
    #[error(
        "batch entry at byte {offset}: fields end at {fields_end} but TOTALSIZE says {total_size}"
    )]
    SizeMismatch {
        offset: usize,
        fields_end: usize,
        total_size: usize,
    },
    #[error("batch entry at byte {offset} has properties that are not UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("batch holds more than {0} messages")]
    TooManyItems(usize),
    #[error("batch is empty")]
    Empty,
    #[error("batch message properties are {0} bytes; at most {MAX_PROPERTIES_LEN} are allowed")]
    PropertiesTooLong(usize),
    #[error("batch message is too large to encode")]
    TooLarge,
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes.get(at..at.checked_add(4)?)?);
    Some(i32::from_be_bytes(word))
}

fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    let mut word = [0u8; 2];
    word.copy_from_slice(bytes.get(at..at.checked_add(2)?)?);
    Some(i16::from_be_bytes(word))
}

/// Decodes one entry starting at `offset` of `bytes`; returns it and the next offset.
fn decode_entry(bytes: &[u8], offset: usize) -> Result<(BatchItem<'_>, usize), BatchError> {
    let truncated = BatchError::Truncated { offset };
    let total_size = read_i32(bytes, offset).ok_or(truncated.clone())?;
    let size = usize::try_from(total_size)
        .ok()
        .filter(|size| *size >= MIN_ENTRY_LEN)
        .ok_or(BatchError::BadTotalSize { offset, total_size })?;
    let end = offset.checked_add(size).ok_or(truncated.clone())?;
    let entry = bytes.get(offset..end).ok_or(truncated.clone())?;
    // Inside `entry` every read is relative to its start and bounded by TOTALSIZE.
    let flag = read_i32(entry, 12).ok_or(truncated.clone())?;
    let body_len = read_i32(entry, 16).ok_or(truncated.clone())?;
    let body_len_usize = usize::try_from(body_len).map_err(|_| BatchError::BadBodyLength {
        offset,
        len: body_len,
    })?;
    let body_end = 20usize
        .checked_add(body_len_usize)
        .ok_or(BatchError::BadBodyLength {
            offset,
            len: body_len,
        })?;
    let body = entry.get(20..body_end).ok_or(BatchError::BadBodyLength {
        offset,
        len: body_len,
    })?;
    let properties_len = read_i16(entry, body_end).ok_or(truncated)?;
    let properties_start = body_end + 2;
    let properties_end = usize::try_from(properties_len)
        .ok()
        .map(|len| properties_start + len)
        .filter(|end| *end <= entry.len())
        .ok_or(BatchError::BadPropertiesLength {
            offset,
            len: properties_len,
        })?;
    if properties_end != size {
        return Err(BatchError::SizeMismatch {
            offset,
            fields_end: properties_end,
            total_size: size,
        });
    }
    let properties = entry
        .get(properties_start..properties_end)
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .ok_or(BatchError::InvalidUtf8 { offset })?;
    Ok((
        BatchItem {
            flag,
            body,
            properties,
        },
        end,
    ))
}

/// Iterates the entries of a batch body; stops after the first error.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BatchIter {
            bytes,
            offset: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchItem<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        match decode_entry(self.bytes, self.offset) {
            Ok((item, next)) => {
                self.offset = next;
                Some(Ok(item))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

impl std::iter::FusedIterator for BatchIter<'_> {}

/// Decodes a whole batch body, rejecting empty batches and more than `max_items` entries
/// (a bound the broker picks so one request cannot make it index unbounded messages).
pub fn decode_batch(bytes: &[u8], max_items: usize) -> Result<Vec<BatchItem<'_>>, BatchError> {
    let mut items = Vec::new();
    for item in BatchIter::new(bytes) {
        if items.len() == max_items {
            return Err(BatchError::TooManyItems(max_items));
        }
        items.push(item?);
    }
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(items)
}

/// Appends the entry for one message to a batch body.
pub fn encode_batch_item(item: &BatchItem<'_>, out: &mut Vec<u8>) -> Result<(), BatchError> {
    if item.properties.len() > MAX_PROPERTIES_LEN {
        return Err(BatchError::PropertiesTooLong(item.properties.len()));
    }
    let total = MIN_ENTRY_LEN
        .checked_add(item.body.len())
        .and_then(|t| t.checked_add(item.properties.len()))
        .filter(|t| *t <= i32::MAX as usize)
        .ok_or(BatchError::TooLarge)?;
    out.reserve(total);
    out.extend_from_slice(&(total as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // magic: ignored by brokers
    out.extend_from_slice(&0i32.to_be_bytes()); // body CRC: brokers compute their own
    out.extend_from_slice(&item.flag.to_be_bytes());
    out.extend_from_slice(&(item.body.len() as i32).to_be_bytes());
    out.extend_from_slice(item.body);
    out.extend_from_slice(&(item.properties.len() as i16).to_be_bytes());
    out.extend_from_slice(item.properties.as_bytes());
    Ok(())
}

/// Encodes a batch body from its messages.
pub fn encode_batch<'a, I>(items: I) -> Result<Vec<u8>, BatchError>
where
    I: IntoIterator<Item = BatchItem<'a>>,
{
    let mut out = Vec::new();
    for item in items {
        encode_batch_item(&item, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_batch([
            BatchItem {
                flag: 1,
                body: b"hello",
                properties: "UNIQ_KEY\u{1}A\u{2}",
            },
            BatchItem {
                flag: 0,
                body: b"",
                properties: "",
            },
        ])
        .unwrap()
    }

    #[test]
    fn round_trip_and_golden_layout() {
        let bytes = sample();
        // First entry: 22 + 5 + 11 = 38 bytes.
        assert_eq!(&bytes[..4], &38i32.to_be_bytes());
        assert_eq!(&bytes[12..16], &1i32.to_be_bytes());
        assert_eq!(&bytes[16..20], &5i32.to_be_bytes());
        assert_eq!(&bytes[20..25], b"hello");
        assert_eq!(bytes.len(), 38 + 22);
        let items = decode_batch(&bytes, 10).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].body, b"hello");
        assert_eq!(items[0].properties, "UNIQ_KEY\u{1}A\u{2}");
        assert_eq!(
            items[1],
            BatchItem {
                flag: 0,
                body: b"",
                properties: ""
            }
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for cut in 1..bytes.len() {
            if cut == 38 {
                continue; // a whole first entry is a valid batch
            }
            assert!(decode_batch(&bytes[..cut], 10).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_batch(&[], 10), Err(BatchError::Empty));
    }

    #[test]
    fn inconsistent_lengths_are_errors() {
        let mut bytes = sample();
        bytes[16..20].copy_from_slice(&6i32.to_be_bytes()); // body length overruns
        assert!(decode_batch(&bytes, 10).is_err());
        let mut bytes = sample();
        bytes[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            decode_batch(&bytes, 10),
            Err(BatchError::BadBodyLength { .. })
        ));
        let mut bytes = sample();
        bytes[0..4].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            decode_batch(&bytes, 10),
            Err(BatchError::BadTotalSize { .. })
        ));
        let mut bytes = sample();
        bytes[0..4].copy_from_slice(&39i32.to_be_bytes()); // TOTALSIZE larger than fields
        assert!(decode_batch(&bytes, 10).is_err());
    }

    #[test]
    fn item_count_is_bounded() {
        assert_eq!(decode_batch(&sample(), 1), Err(BatchError::TooManyItems(1)));
    }
}
