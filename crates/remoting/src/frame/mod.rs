//! The TCP frame codec: `RemotingCommand` ⇄ bytes.
//!
//! - `json`: the JSON header (serialize type 0), read leniently, written as recommended.
//! - `json_scan`: the fast path of JSON header reading for the usual flat shape; it
//!   declines anything else, which `json` then reads.
//! - `binary`: the binary `ROCKETMQ` header (serialize type 1).
//!
//! ```text
//! int32 L | int32 T = (serializeType << 24) | H | header (H bytes) | body (L - 4 - H bytes)
//! ```
//! All integers big-endian; `L` counts everything after itself. The frame length limit
//! counts the 4-byte length field too, as Java's `LengthFieldBasedFrameDecoder` does, so a
//! frame we accept or send is one a Java peer accepts.

mod binary;
mod json;
mod json_scan;
#[cfg(test)]
mod tests;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::command::{RemotingCommand, SerializeType};

/// Java's default `com.rocketmq.remoting.frameMaxLength`: 16 MiB including the length field.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// The header length has 24 bits in the type word.
pub const MAX_HEADER_LENGTH: usize = 0x00FF_FFFF;

const LENGTH_FIELD_LEN: usize = 4;
const TYPE_WORD_LEN: usize = 4;
const PREFIX_LEN: usize = LENGTH_FIELD_LEN + TYPE_WORD_LEN;
/// Bodies up to this size are copied out of the read buffer when decoded.
const COPIED_BODY_MAX: usize = 4 * 1024;
/// How far ahead of received bytes the decoder grows its buffer for a partial frame.
const RESERVE_AHEAD_MAX: usize = 256 * 1024;
/// Room left in the read buffer below which a partial frame reserves its next step.
const RESERVE_LOW_WATER: usize = 64 * 1024;

/// Why incoming bytes are not a valid frame. Any of these ends the connection: the
/// stream cannot be resynchronised once a length is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "frame of {frame_length} bytes (with length field) exceeds the limit of {max_frame_length}"
    )]
    FrameTooLarge {
        frame_length: u64,
        max_frame_length: usize,
    },
    #[error("frame length field {length_field} is smaller than the 4-byte type word")]
    FrameTooShort { length_field: u32 },
    #[error(
        "partially received frames of all connections would exceed their budget of {budget} bytes"
    )]
    PartialFramesOverBudget { budget: usize },
    #[error("header length {header_length} exceeds the {available} bytes left in the frame")]
    HeaderLengthExceedsFrame {
        header_length: usize,
        available: usize,
    },
    #[error("unknown header serialize type {0}")]
    UnknownSerializeType(u8),
    #[error("invalid JSON header: {reason}")]
    InvalidJsonHeader { reason: String },
    #[error("invalid binary header: truncated or negative {reason}")]
    InvalidBinaryHeader { reason: &'static str },
    #[error("reading the connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a command cannot be put on the wire.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "frame of {frame_length} bytes (with length field) exceeds the limit of {max_frame_length}"
    )]
    FrameTooLarge {
        frame_length: u64,
        max_frame_length: usize,
    },
    #[error("header of {header_length} bytes exceeds the 24-bit limit")]
    HeaderTooLarge { header_length: usize },
    #[error("{field} = {value} does not fit the binary header")]
    NotRepresentableInBinary { field: &'static str, value: i64 },
    #[error("JSON header serialisation failed: {reason}")]
    Json { reason: String },
    #[error("writing the connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes and encodes frames, with a maximum frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotingCodec {
    max_frame_length: usize,
}

impl Default for RemotingCodec {
    fn default() -> Self {
        RemotingCodec {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
        }
    }
}

impl RemotingCodec {
    /// A codec with Java's 16 MiB frame limit.
    pub fn new() -> Self {
        RemotingCodec::default()
    }

    /// A codec with another limit (bytes, including the 4-byte length field).
    pub fn with_max_frame_length(max_frame_length: usize) -> Self {
        RemotingCodec { max_frame_length }
    }

    /// The limit in bytes, including the 4-byte length field.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// Appends the length field, type word and header of `command` to `dst`, sized for
    /// `command.body` and its chunks, which the caller sends right after (the body is not
    /// copied: large pull-response bodies go to the socket as they are). On error `dst` is
    /// unchanged.
    pub fn encode_head(
        &self,
        command: &RemotingCommand,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        let result = self.write_head(command, dst, start);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn write_head(
        &self,
        command: &RemotingCommand,
        dst: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        dst.put_bytes(0, PREFIX_LEN);
        match command.serialize_type {
            SerializeType::Json => json::encode(command, dst)?,
            SerializeType::RocketMq => binary::encode(command, dst)?,
        }
        let header_length = dst.len() - start - PREFIX_LEN;
        if header_length > MAX_HEADER_LENGTH {
            return Err(EncodeError::HeaderTooLarge { header_length });
        }
        let frame_length = (PREFIX_LEN + header_length) as u64 + command.body_len() as u64;
        if frame_length > self.max_frame_length as u64 {
            return Err(EncodeError::FrameTooLarge {
                frame_length,
                max_frame_length: self.max_frame_length,
            });
        }
        // Both fit in u32: the frame is within max_frame_length, itself a usize we compared
        // as u64; a limit above 4 GiB would be rejected by every peer anyway.
        let length_field = u32::try_from(frame_length - LENGTH_FIELD_LEN as u64).map_err(|_| {
            EncodeError::FrameTooLarge {
                frame_length,
                max_frame_length: self.max_frame_length,
            }
        })?;
        let type_word = (u32::from(command.serialize_type.code()) << 24) | header_length as u32;
        if let Some(prefix) = dst.get_mut(start..start + PREFIX_LEN) {
            prefix[..LENGTH_FIELD_LEN].copy_from_slice(&length_field.to_be_bytes());
            prefix[LENGTH_FIELD_LEN..].copy_from_slice(&type_word.to_be_bytes());
        }
        Ok(())
    }

    /// The whole frame of `command` (head and body) as one buffer.
    pub fn encode_to_bytes(&self, command: &RemotingCommand) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::with_capacity(256 + command.body_len());
        self.encode_head(command, &mut dst)?;
        put_body(command, &mut dst);
        Ok(dst.freeze())
    }
}

impl Decoder for RemotingCodec {
    type Item = RemotingCommand;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
        let Some(length_bytes) = src.get(..LENGTH_FIELD_LEN) else {
            return Ok(None);
        };
        let mut length_field = [0u8; LENGTH_FIELD_LEN];
        length_field.copy_from_slice(length_bytes);
        let length_field = u32::from_be_bytes(length_field);
        let frame_length = u64::from(length_field) + LENGTH_FIELD_LEN as u64;
        if frame_length > self.max_frame_length as u64 {
            return Err(DecodeError::FrameTooLarge {
                frame_length,
                max_frame_length: self.max_frame_length,
            });
        }
        if (length_field as usize) < TYPE_WORD_LEN {
            return Err(DecodeError::FrameTooShort { length_field });
        }
        let frame_length = frame_length as usize;
        if src.len() < frame_length {
            // Reserve for the rest of the frame, but only a bounded step ahead of the bytes
            // that actually arrived: a peer announcing 16 MiB and sending nothing must not
            // make us hold 16 MiB. And only once the room left runs low: reserving a full
            // step again on every few bytes that trickle in would double the buffer each
            // time (growth is geometric), so a slow sender would make it grow without
            // sending the bytes to fill it.
            let remaining = frame_length - src.len();
            if src.capacity() - src.len() < remaining.min(RESERVE_LOW_WATER) {
                src.reserve(remaining.min(RESERVE_AHEAD_MAX));
            }
            return Ok(None);
        }
        let mut frame = src.split_to(frame_length);
        frame.advance(LENGTH_FIELD_LEN);
        let type_word = frame.get_u32();
        let serialize_code = (type_word >> 24) as u8;
        let header_length = (type_word as usize) & MAX_HEADER_LENGTH;
        if header_length > frame.len() {
            return Err(DecodeError::HeaderLengthExceedsFrame {
                header_length,
                available: frame.len(),
            });
        }
        let header = frame.split_to(header_length);
        let mut command = match SerializeType::from_code(serialize_code) {
            Some(SerializeType::Json) => json::decode(&header)?,
            Some(SerializeType::RocketMq) => binary::decode(&header)?,
            None => return Err(DecodeError::UnknownSerializeType(serialize_code)),
        };
        // Small bodies are copied out so the read buffer is not kept shared by them: a
        // shared buffer cannot be reused in place, and the next read would allocate a new
        // one and copy the partial frame over. Large bodies stay zero-copy.
        command.body = if frame.len() <= COPIED_BODY_MAX {
            Bytes::copy_from_slice(&frame)
        } else {
            frame.freeze()
        };
        Ok(Some(command))
    }
}

impl Encoder<RemotingCommand> for RemotingCodec {
    type Error = EncodeError;

    fn encode(&mut self, command: RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
        Encoder::<&RemotingCommand>::encode(self, &command, dst)
    }
}

impl Encoder<&RemotingCommand> for RemotingCodec {
    type Error = EncodeError;

    fn encode(&mut self, command: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_head(command, dst)?;
        put_body(command, dst);
        Ok(())
    }
}

/// Appends the body of `command` (its `body`, then every chunk) to `dst`.
fn put_body(command: &RemotingCommand, dst: &mut BytesMut) {
    dst.extend_from_slice(&command.body);
    for chunk in &command.body_chunks {
        dst.extend_from_slice(chunk);
    }
}
