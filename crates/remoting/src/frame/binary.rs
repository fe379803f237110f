//! The binary `ROCKETMQ` header (serialize type 1), as `RocketMQSerializable` lays it out:
//!
//! ```text
//! int16 code | u8 language | int16 version | int32 opaque | int32 flag
//! | int32 remark length R | R bytes remark
//! | int32 ext length X | X bytes of (int16 key length, key, int32 value length, value)*
//! ```
//!
//! All lengths come from the peer, so every read is checked against what is left of the
//! header before anything is sliced or allocated.

use bytes::{BufMut, BytesMut};

use crate::command::{LanguageCode, RemotingCommand, SerializeType};
use crate::ext_fields::intern;
use crate::ExtFields;

use super::{DecodeError, EncodeError};

/// Parses a binary header into a command with an empty body.
pub(super) fn decode(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    let mut reader = Reader { rest: header };
    let code = i32::from(reader.i16("code")?);
    let language = LanguageCode::from_code(reader.u8("language")?);
    let version = i32::from(reader.i16("version")?);
    let opaque = reader.i32("opaque")?;
    let flag = reader.i32("flag")?;
    let remark_len = reader.length32("remark length")?;
    let remark = reader.bytes(remark_len, "remark")?;
    // Java decodes a zero-length remark as null.
    let remark = (!remark.is_empty()).then(|| String::from_utf8_lossy(remark).into_owned());
    let ext_len = reader.length32("extFields length")?;
    let ext_fields = decode_ext_fields(reader.bytes(ext_len, "extFields")?)?;
    // Bytes after the ext section are ignored, as Java does.
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: bytes::Bytes::new(),
        body_chunks: Vec::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

fn decode_ext_fields(section: &[u8]) -> Result<ExtFields, DecodeError> {
    let mut reader = Reader { rest: section };
    let mut entries = Vec::new();
    // Each entry consumes at least 6 bytes, so this loop ends within section.len() / 6 rounds.
    while !reader.rest.is_empty() {
        let key_len = usize::try_from(reader.i16("extFields key length")?)
            .map_err(|_| invalid("negative extFields key length"))?;
        let key = reader.bytes(key_len, "extFields key")?;
        let value_len = reader.length32("extFields value length")?;
        let value = reader.bytes(value_len, "extFields value")?;
        // Java turns empty keys and values into nulls; a null value is an absent field.
        if key.is_empty() || value.is_empty() {
            continue;
        }
        // Java decodes invalid UTF-8 with replacement characters rather than failing.
        entries.push((
            intern(String::from_utf8_lossy(key).into_owned()),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok(ExtFields::from_entries(entries))
}

/// Appends the binary header of `command` to `dst`.
pub(super) fn encode(command: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let code = i16::try_from(command.code).map_err(|_| EncodeError::NotRepresentableInBinary {
        field: "code",
        value: i64::from(command.code),
    })?;
    let version =
        i16::try_from(command.version).map_err(|_| EncodeError::NotRepresentableInBinary {
            field: "version",
            value: i64::from(command.version),
        })?;
    dst.put_i16(code);
    dst.put_u8(command.language.code());
    dst.put_i16(version);
    dst.put_i32(command.opaque);
    dst.put_i32(command.flag);
    let remark = command.remark.as_deref().unwrap_or("").as_bytes();
    dst.put_i32(length32(remark.len(), "remark")?);
    dst.put_slice(remark);

    let ext_len_at = dst.len();
    dst.put_i32(0);
    for (key, value) in &command.ext_fields {
        let key_len =
            i16::try_from(key.len()).map_err(|_| EncodeError::NotRepresentableInBinary {
                field: "extFields key length",
                value: i64::try_from(key.len()).unwrap_or(i64::MAX),
            })?;
        dst.put_i16(key_len);
        dst.put_slice(key.as_bytes());
        dst.put_i32(length32(value.len(), "extFields value")?);
        dst.put_slice(value.as_bytes());
    }
    let ext_len = length32(dst.len() - ext_len_at - 4, "extFields")?;
    if let Some(slot) = dst.get_mut(ext_len_at..ext_len_at + 4) {
        slot.copy_from_slice(&ext_len.to_be_bytes());
    }
    Ok(())
}

fn length32(len: usize, field: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::NotRepresentableInBinary {
        field,
        value: i64::try_from(len).unwrap_or(i64::MAX),
    })
}

fn invalid(reason: &'static str) -> DecodeError {
    DecodeError::InvalidBinaryHeader { reason }
}

/// A cursor whose reads fail instead of running past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::InvalidBinaryHeader { reason: what });
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let taken = self.bytes(N, what)?;
        <[u8; N]>::try_from(taken).map_err(|_| invalid(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    /// An int32 length; negative ones are invalid (Java would fail allocating them).
    fn length32(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        usize::try_from(self.i32(what)?).map_err(|_| invalid(what))
    }
}
