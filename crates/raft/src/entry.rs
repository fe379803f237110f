//! A log entry and its framing.
//!
//! Every entry is stored and sent as a 48-byte big-endian header followed by its body. The
//! layout follows DLedger's (`magic, size, index, term, pos, channel, chainCrc, bodyCrc,
//! bodyLength`), but the two checksum slots DLedger reserves and never fills are used: one
//! covers the header, one the body (CRC32C). That lets recovery tell a torn or corrupt tail
//! from a valid entry without trusting any single field.
//!
//! | off | size | field |
//! |----:|-----:|-------|
//! | 0 | 4 | magic: [`MAGIC_NORMAL`], [`MAGIC_INTERNAL`], or [`MAGIC_BLANK`] padding |
//! | 4 | 4 | size = header + body length (for padding: bytes to the end of the segment) |
//! | 8 | 8 | index (raft log index) |
//! | 16 | 8 | term |
//! | 24 | 8 | pos: absolute byte position of this header in the log |
//! | 32 | 4 | channel: what the body is, chosen by the application |
//! | 36 | 4 | header CRC32C over bytes `0..36` and `40..48` |
//! | 40 | 4 | body CRC32C |
//! | 44 | 4 | body length |
//! | 48 | n | body |

use bytes::{BufMut, Bytes, BytesMut};

pub const ENTRY_HEADER_LEN: usize = 48;
/// An application entry (for a broker: a stored message or a replicated metadata change).
pub const MAGIC_NORMAL: u32 = 0xD1ED_0001;
/// An entry raft writes for itself (the no-op a new leader appends).
pub const MAGIC_INTERNAL: u32 = 0xD1ED_0002;
/// Filler from here to the end of a segment file; the next entry starts in the next segment.
pub const MAGIC_BLANK: u32 = 0xFFFF_FFFF;
/// The smallest blank filler that can be written: magic + size.
pub const BLANK_MIN_LEN: usize = 8;

const OFF_MAGIC: usize = 0;
const OFF_SIZE: usize = 4;
const OFF_INDEX: usize = 8;
const OFF_TERM: usize = 16;
const OFF_POS: usize = 24;
const OFF_CHANNEL: usize = 32;
const OFF_HEADER_CRC: usize = 36;
const OFF_BODY_CRC: usize = 40;
const OFF_BODY_LEN: usize = 44;

/// What an entry's body is, as seen by raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Written by the application through `propose`.
    Normal,
    /// Written by raft itself (leader no-op); never handed to the application as data.
    Internal,
}

impl EntryKind {
    fn magic(self) -> u32 {
        match self {
            EntryKind::Normal => MAGIC_NORMAL,
            EntryKind::Internal => MAGIC_INTERNAL,
        }
    }
}

/// The decoded header of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub kind: EntryKind,
    pub index: u64,
    pub term: u64,
    pub pos: u64,
    pub channel: u32,
    pub body_crc: u32,
    pub body_len: u32,
}

impl EntryHeader {
    /// Total framed size of this entry in bytes.
    pub fn size(&self) -> usize {
        ENTRY_HEADER_LEN + self.body_len as usize
    }

    /// Position of the first body byte in the log.
    pub fn body_pos(&self) -> u64 {
        self.pos + ENTRY_HEADER_LEN as u64
    }

    /// Writes the 48 header bytes, computing the header checksum.
    pub fn encode_into(&self, out: &mut [u8; ENTRY_HEADER_LEN]) {
        out[OFF_MAGIC..OFF_SIZE].copy_from_slice(&self.kind.magic().to_be_bytes());
        out[OFF_SIZE..OFF_INDEX].copy_from_slice(&(self.size() as u32).to_be_bytes());
        out[OFF_INDEX..OFF_TERM].copy_from_slice(&self.index.to_be_bytes());
        out[OFF_TERM..OFF_POS].copy_from_slice(&self.term.to_be_bytes());
        out[OFF_POS..OFF_CHANNEL].copy_from_slice(&self.pos.to_be_bytes());
        out[OFF_CHANNEL..OFF_HEADER_CRC].copy_from_slice(&self.channel.to_be_bytes());
        out[OFF_BODY_CRC..OFF_BODY_LEN].copy_from_slice(&self.body_crc.to_be_bytes());
        out[OFF_BODY_LEN..ENTRY_HEADER_LEN].copy_from_slice(&self.body_len.to_be_bytes());
        let crc = header_crc(out);
        out[OFF_HEADER_CRC..OFF_BODY_CRC].copy_from_slice(&crc.to_be_bytes());
    }

    /// Decodes and verifies a header. Blank filler is reported as [`FrameError::Blank`] so a
    /// reader can skip to the next segment.
    pub fn decode(buf: &[u8]) -> Result<EntryHeader, FrameError> {
        if buf.len() >= BLANK_MIN_LEN && be_u32(buf, OFF_MAGIC) == MAGIC_BLANK {
            return Err(FrameError::Blank {
                len: be_u32(buf, OFF_SIZE),
            });
        }
        if buf.len() < ENTRY_HEADER_LEN {
            return Err(FrameError::Truncated {
                needed: ENTRY_HEADER_LEN,
                available: buf.len(),
            });
        }
        let kind = match be_u32(buf, OFF_MAGIC) {
            MAGIC_NORMAL => EntryKind::Normal,
            MAGIC_INTERNAL => EntryKind::Internal,
            other => return Err(FrameError::BadMagic(other)),
        };
        let stored_crc = be_u32(buf, OFF_HEADER_CRC);
        if stored_crc != header_crc(&buf[..ENTRY_HEADER_LEN]) {
            return Err(FrameError::HeaderChecksum);
        }
        let header = EntryHeader {
            kind,
            index: be_u64(buf, OFF_INDEX),
            term: be_u64(buf, OFF_TERM),
            pos: be_u64(buf, OFF_POS),
            channel: be_u32(buf, OFF_CHANNEL),
            body_crc: be_u32(buf, OFF_BODY_CRC),
            body_len: be_u32(buf, OFF_BODY_LEN),
        };
        if be_u32(buf, OFF_SIZE) as usize != header.size() {
            return Err(FrameError::SizeMismatch);
        }
        Ok(header)
    }
}

/// A complete entry: header fields plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub index: u64,
    pub term: u64,
    pub pos: u64,
    pub channel: u32,
    pub body: Bytes,
}

impl Entry {
    pub fn header(&self) -> EntryHeader {
        EntryHeader {
            kind: self.kind,
            index: self.index,
            term: self.term,
            pos: self.pos,
            channel: self.channel,
            body_crc: crc32c::crc32c(&self.body),
            body_len: self.body.len() as u32,
        }
    }

    /// Framed size in bytes (header + body).
    pub fn size(&self) -> usize {
        ENTRY_HEADER_LEN + self.body.len()
    }

    /// Appends the framed entry (header then body) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut header = [0u8; ENTRY_HEADER_LEN];
        self.header().encode_into(&mut header);
        out.reserve(self.size());
        out.put_slice(&header);
        out.put_slice(&self.body);
    }

    /// Decodes one framed entry from the start of `frame`, verifying both checksums. The body
    /// shares `frame`'s memory.
    pub fn decode(frame: &Bytes) -> Result<Entry, FrameError> {
        let entry = Self::decode_stored(frame)?;
        if crc32c::crc32c(&entry.body) != be_u32(frame, OFF_BODY_CRC) {
            return Err(FrameError::BodyChecksum);
        }
        Ok(entry)
    }

    /// Decodes a frame handed back by a [`crate::LogStorage`]: its body checksum was verified
    /// before it was appended (and by the storage when it read it back from a file), so only
    /// the header is checked here. The body shares `frame`'s memory.
    pub fn decode_stored(frame: &Bytes) -> Result<Entry, FrameError> {
        let header = EntryHeader::decode(frame)?;
        let end = header.size();
        if frame.len() < end {
            return Err(FrameError::Truncated {
                needed: end,
                available: frame.len(),
            });
        }
        let body = frame.slice(ENTRY_HEADER_LEN..end);
        Ok(Entry {
            kind: header.kind,
            index: header.index,
            term: header.term,
            pos: header.pos,
            channel: header.channel,
            body,
        })
    }
}

/// Why bytes are not a valid entry frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("blank filler of {len} bytes")]
    Blank { len: u32 },
    #[error("frame truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("body checksum mismatch")]
    BodyChecksum,
    #[error("size field disagrees with body length")]
    SizeMismatch,
}

/// Writes blank filler into `out` (which must be at least [`BLANK_MIN_LEN`] long): the
/// magic and the filler length. The rest of `out` is left as it is.
pub fn encode_blank(out: &mut [u8]) {
    debug_assert!(out.len() >= BLANK_MIN_LEN);
    let len = out.len() as u32;
    out[OFF_MAGIC..OFF_SIZE].copy_from_slice(&MAGIC_BLANK.to_be_bytes());
    out[OFF_SIZE..OFF_INDEX].copy_from_slice(&len.to_be_bytes());
}

fn header_crc(header: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[..OFF_HEADER_CRC]);
    crc32c::crc32c_append(crc, &header[OFF_BODY_CRC..ENTRY_HEADER_LEN])
}

fn be_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

fn be_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            kind: EntryKind::Normal,
            index: 42,
            term: 7,
            pos: 4096,
            channel: 3,
            body: Bytes::from_static(b"hello raft"),
        }
    }

    #[test]
    fn round_trip() {
        let entry = sample();
        let mut buf = BytesMut::new();
        entry.encode(&mut buf);
        assert_eq!(buf.len(), entry.size());
        let decoded = Entry::decode(&buf.freeze()).expect("valid frame");
        assert_eq!(decoded, entry);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut buf = BytesMut::new();
        sample().encode(&mut buf);
        let frame = buf.freeze();
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut corrupt = frame.to_vec();
                corrupt[byte] ^= 1 << bit;
                let result = Entry::decode(&Bytes::from(corrupt));
                assert!(
                    result.is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let mut buf = BytesMut::new();
        sample().encode(&mut buf);
        let frame = buf.freeze();
        for len in 0..frame.len() {
            assert!(Entry::decode(&frame.slice(..len)).is_err(), "length {len}");
        }
    }

    #[test]
    fn blank_is_recognised() {
        let mut seg = [0u8; 100];
        encode_blank(&mut seg[60..]);
        assert_eq!(
            EntryHeader::decode(&seg[60..]),
            Err(FrameError::Blank { len: 40 })
        );
    }
}
