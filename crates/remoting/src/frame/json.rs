//! The JSON header (serialize type 0): lenient reading, the recommended writing.
//!
//! Reading accepts what real clients send, not only what Java sends: the C++ client puts
//! some `extFields` values as JSON numbers and ends the header with a newline, the Rust
//! client sends `"remark": null`, newer peers use language names we do not know, and Java
//! leaves out null keys. Anything that is still a JSON object with sensible field types
//! decodes; only malformed JSON or a wrong shape (e.g. `code` is an object) is an error.
//!
//! Writing follows the protocol notes' recommendation, which every known client parses:
//! `code, language, version, opaque, flag, [remark], extFields, serializeTypeCurrentRPC`,
//! `extFields` always present (C++ dereferences it) with string values only (C++ ignores
//! numbers, Rust rejects the frame).

use std::fmt;

use bytes::BytesMut;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use crate::command::{LanguageCode, RemotingCommand, SerializeType};
use crate::ext_fields::intern;
use crate::ExtFields;

use super::{json_scan, DecodeError, EncodeError};

/// Parses a JSON header into a command with an empty body.
pub(super) fn decode(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    if let Some(command) = json_scan::decode(header) {
        return Ok(command);
    }
    decode_with_serde(header)
}

/// The general path: every header the fast scanner declines, and every error.
pub(super) fn decode_with_serde(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    let JsonHeader(command) =
        serde_json::from_slice(header).map_err(|error| DecodeError::InvalidJsonHeader {
            reason: error.to_string(),
        })?;
    Ok(command)
}

/// Appends the JSON header of `command` to `dst`.
///
/// Written by hand rather than through serde: encoding runs once per request and per
/// response, and the generic serializer spends most of its time per call, not per byte.
/// The bytes are exactly what serde_json writes for [`OutgoingHeader`] (tests compare
/// them), so the output stays the recommended shape.
pub(super) fn encode(command: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let remark_len = command
        .remark
        .as_ref()
        .map_or(0, |remark| remark.len() + 12);
    let ext_len: usize = command
        .ext_fields
        .iter()
        .map(|(key, value)| key.len() + value.len() + 6)
        .sum();
    // Fixed parts with the widest numbers come to about 130 bytes; escapes may add more,
    // which `extend_from_slice` then grows for.
    dst.reserve(144 + remark_len + ext_len);
    dst.extend_from_slice(b"{\"code\":");
    write_i32(dst, command.code);
    dst.extend_from_slice(b",\"language\":\"");
    dst.extend_from_slice(command.language.name().as_bytes());
    dst.extend_from_slice(b"\",\"version\":");
    write_i32(dst, command.version);
    dst.extend_from_slice(b",\"opaque\":");
    write_i32(dst, command.opaque);
    dst.extend_from_slice(b",\"flag\":");
    write_i32(dst, command.flag);
    if let Some(remark) = &command.remark {
        dst.extend_from_slice(b",\"remark\":");
        write_str(dst, remark);
    }
    dst.extend_from_slice(b",\"extFields\":{");
    for (i, (key, value)) in command.ext_fields.iter().enumerate() {
        if i > 0 {
            dst.extend_from_slice(b",");
        }
        write_str(dst, key);
        dst.extend_from_slice(b":");
        write_str(dst, value);
    }
    dst.extend_from_slice(b"},\"serializeTypeCurrentRPC\":\"JSON\"}");
    Ok(())
}

/// Decimal text of `value`, as serde_json (itoa) writes it.
fn write_i32(dst: &mut BytesMut, value: i32) {
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    dst.extend_from_slice(&digits[at..]);
}

/// A JSON string with serde_json's escapes: `"` and `\\`, the short forms of backspace,
/// tab, newline, form feed and carriage return, `\u00XX` (lowercase hex) for the other
/// control characters; everything else, non-ASCII included, as it is.
fn write_str(dst: &mut BytesMut, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    dst.extend_from_slice(b"\"");
    let mut run_start = 0;
    while let Some(offset) = bytes
        .get(run_start..)
        .and_then(json_scan::special_string_byte)
    {
        let at = run_start + offset;
        dst.extend_from_slice(bytes.get(run_start..at).unwrap_or_default());
        let byte = bytes.get(at).copied().unwrap_or_default();
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            _ => b'u',
        };
        if short == b'u' {
            dst.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]);
        } else {
            dst.extend_from_slice(&[b'\\', short]);
        }
        run_start = at + 1;
    }
    dst.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    dst.extend_from_slice(b"\"");
}

/// Field order is the wire order; see the module notes. Serialised by serde only in tests,
/// as the reference the hand-written encoder must match byte for byte.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Serialize)]
struct OutgoingHeader<'a> {
    code: i32,
    language: &'static str,
    version: i32,
    opaque: i32,
    flag: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    #[serde(rename = "extFields")]
    ext_fields: &'a ExtFields,
    #[serde(rename = "serializeTypeCurrentRPC")]
    serialize_type_current_rpc: &'static str,
}

/// A decoded header; a newtype so the lenient visitor can be plugged into serde_json.
struct JsonHeader(RemotingCommand);

impl<'de> Deserialize<'de> for JsonHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = JsonHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a RocketMQ command header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonHeader, A::Error> {
        // Absent keys keep Java's defaults; a repeated key keeps its last value (fastjson).
        let mut command = RemotingCommand {
            serialize_type: SerializeType::Json,
            ..RemotingCommand::default()
        };
        while let Some(key) = map.next_key::<HeaderKey>()? {
            match key {
                HeaderKey::Code => command.code = map.next_value::<LenientInt>()?.0,
                HeaderKey::Language => command.language = map.next_value::<LenientLanguage>()?.0,
                HeaderKey::Version => command.version = map.next_value::<LenientInt>()?.0,
                HeaderKey::Opaque => command.opaque = map.next_value::<LenientInt>()?.0,
                HeaderKey::Flag => command.flag = map.next_value::<LenientInt>()?.0,
                HeaderKey::Remark => command.remark = text_of(map.next_value::<Value>()?),
                HeaderKey::ExtFields => command.ext_fields = map.next_value::<LenientExt>()?.0,
                HeaderKey::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(JsonHeader(command))
    }
}

/// Header keys, matched without allocating.
enum HeaderKey {
    Code,
    Language,
    Version,
    Opaque,
    Flag,
    Remark,
    ExtFields,
    Unknown,
}

impl<'de> Deserialize<'de> for HeaderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = HeaderKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<HeaderKey, E> {
                Ok(match key {
                    "code" => HeaderKey::Code,
                    "language" => HeaderKey::Language,
                    "version" => HeaderKey::Version,
                    "opaque" => HeaderKey::Opaque,
                    "flag" => HeaderKey::Flag,
                    "remark" => HeaderKey::Remark,
                    "extFields" => HeaderKey::ExtFields,
                    _ => HeaderKey::Unknown,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// An `int` field: a JSON integer in `i32` range, a string holding one (fastjson coerces
/// those), or null (Java's default 0).
struct LenientInt(i32);

impl<'de> Deserialize<'de> for LenientInt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = LenientInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 32-bit integer")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<LenientInt, E> {
                i32::try_from(value)
                    .map(LenientInt)
                    .map_err(|_| E::custom(format!("{value} is out of 32-bit range")))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<LenientInt, E> {
                i32::try_from(value)
                    .map(LenientInt)
                    .map_err(|_| E::custom(format!("{value} is out of 32-bit range")))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<LenientInt, E> {
                value
                    .trim()
                    .parse()
                    .map(LenientInt)
                    .map_err(|_| E::custom(format!("`{value}` is not a 32-bit integer")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientInt, E> {
                Ok(LenientInt(0))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// `language`: a name (unknown ones are `OTHER`), or a number as in binary headers.
struct LenientLanguage(LanguageCode);

impl<'de> Deserialize<'de> for LenientLanguage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(LenientLanguage(match Value::deserialize(deserializer)? {
            Value::String(name) => LanguageCode::from_name(&name),
            Value::Number(number) => number
                .as_u64()
                .and_then(|code| u8::try_from(code).ok())
                .map_or(LanguageCode::Other, LanguageCode::from_code),
            Value::Null => LanguageCode::Java,
            _ => LanguageCode::Other,
        }))
    }
}

/// `extFields`: values may be strings, numbers or booleans (C++), all normalised to the
/// string fastjson would have produced; null values mean "absent" and are dropped.
struct LenientExt(ExtFields);

impl<'de> Deserialize<'de> for LenientExt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExtVisitor;
        impl<'de> Visitor<'de> for ExtVisitor {
            type Value = LenientExt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LenientExt, A::Error> {
                // The header is at most 16 MiB, so the list is bounded by its text; the
                // map is built in one sort, whatever the number of fields.
                let mut operations = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(key) = map.next_key::<String>()? {
                    let value = text_of(map.next_value::<Value>()?);
                    operations.push((intern(key), value));
                }
                Ok(LenientExt(ExtFields::from_operations(operations)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientExt, E> {
                Ok(LenientExt(ExtFields::new()))
            }
        }
        deserializer.deserialize_any(ExtVisitor)
    }
}

/// The string a JSON value stands for in a string-typed field, as fastjson would coerce
/// it; `None` for null. Nested arrays/objects keep their JSON text.
fn text_of(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        nested @ (Value::Array(_) | Value::Object(_)) => Some(nested.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use proptest::prelude::*;

    use super::*;

    fn with_serde(command: &RemotingCommand) -> Vec<u8> {
        let header = OutgoingHeader {
            code: command.code,
            language: command.language.name(),
            version: command.version,
            opaque: command.opaque,
            flag: command.flag,
            remark: command.remark.as_deref(),
            ext_fields: &command.ext_fields,
            serialize_type_current_rpc: "JSON",
        };
        let mut out = BytesMut::new().writer();
        serde_json::to_writer(&mut out, &header).unwrap();
        out.into_inner().to_vec()
    }

    fn by_hand(command: &RemotingCommand) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(command, &mut out).unwrap();
        out.to_vec()
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[ -~]{0,12}",
            1 => "[\\x00-\\x20\"\\\\/é中\u{7f}\u{80}\u{2028}😀a]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn hand_written_header_is_byte_identical_to_serde(
            code in any::<i32>(),
            version in any::<i32>(),
            opaque in any::<i32>(),
            flag in any::<i32>(),
            language in 0u8..16,
            remark in proptest::option::of(text()),
            ext in proptest::collection::hash_map(text(), text(), 0..8),
        ) {
            let command = RemotingCommand {
                code,
                language: LanguageCode::from_code(language),
                version,
                opaque,
                flag,
                remark,
                ext_fields: ext.into_iter().collect(),
                ..RemotingCommand::default()
            };
            let (ours, reference) = (by_hand(&command), with_serde(&command));
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&reference));
            prop_assert_eq!(ours, reference);
        }
    }

    #[test]
    fn extreme_numbers_and_every_control_character_match_serde() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for number in [0, -1, 9, 10, i32::MIN, i32::MAX] {
            let command = RemotingCommand {
                code: number,
                version: number,
                opaque: number,
                flag: number,
                remark: Some(all_controls.clone()),
                ..RemotingCommand::default()
            }
            .with_ext_field(all_controls.clone(), "\"\\");
            assert_eq!(by_hand(&command), with_serde(&command));
        }
    }
}
