//! The fast path of JSON header decoding: one pass over the bytes for the shape every
//! client sends (a flat object of known keys with scalar values, `extFields` a flat object
//! of strings, integers, booleans and nulls), without building `serde_json::Value`s.
//!
//! Decoding a header is the largest cost of a small request after the store, and most of
//! the serde path's time goes to generic machinery (a `Value` per ext value, a growing
//! map). This scanner answers `None` for anything it does not handle exactly as the serde
//! path would (floats, nested values, escaped keys, surrogate escapes, malformed JSON), and
//! the caller then runs the serde path, which stays the definition of what a header means
//! and of every error message. Tests check the two agree on generated headers.

use std::borrow::Cow;

use crate::command::{LanguageCode, RemotingCommand, SerializeType};
use crate::ext_fields::known_key;
use crate::ExtFields;

/// Ext lists start with room for the fields of a send request (14) and grow beyond.
const EXT_CAPACITY: usize = 16;

/// The command `header` decodes to, or `None` when the serde path must decide.
pub(super) fn decode(header: &[u8]) -> Option<RemotingCommand> {
    // Invalid UTF-8 is either an error or inside a string the serde path skips without
    // checking; both are rare, so the scanner may treat the text as `str` from here on.
    let text = std::str::from_utf8(header).ok()?;
    let mut scanner = Scanner {
        text,
        bytes: header,
        pos: 0,
    };
    let command = scanner.header()?;
    scanner.skip_whitespace();
    (scanner.pos == scanner.bytes.len()).then_some(command)
}

/// The first byte of `bytes` that ends a run of plain JSON string text: a quote, a
/// backslash or a control character (below 0x20). Header strings are short and this runs
/// for every one of them on both sides of every request, so it tests eight bytes at a time.
pub(super) fn special_string_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk).map(u64::from_le_bytes) else {
            break;
        };
        // A byte's high bit is set in `zero_of(x)` when that byte of `x` is zero, and in
        // `below_space` when that byte of `word` is below 0x20. Either may also flag a
        // byte above a true hit (a borrow carries up), never one below it, so the lowest
        // flagged byte is the first special one.
        let zero_of = |x: u64| x.wrapping_sub(ONES) & !x;
        let quote = zero_of(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_of(word ^ (ONES * u64::from(b'\\')));
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let found = (quote | backslash | below_space) & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|offset| at + offset)
}

/// A scalar as the header fields use it.
enum Scalar<'a> {
    /// A string without escapes, borrowed from the header.
    Plain(&'a str),
    /// A string with escapes, unescaped.
    Escaped(String),
    /// An integer literal that serde_json reads as an integer (no fraction, exponent, `-0`
    /// or overflow); its text is exactly how serde_json prints it.
    Integer {
        text: &'a str,
        value: i128,
    },
    Bool(bool),
    Null,
}

impl Scalar<'_> {
    /// The text of a string-typed field, as the serde path's `text_of`; `None` for null.
    fn into_text(self) -> Option<String> {
        match self {
            Scalar::Plain(text) => Some(text.to_owned()),
            Scalar::Escaped(text) => Some(text),
            Scalar::Integer { text, .. } => Some(text.to_owned()),
            Scalar::Bool(flag) => Some(if flag { "true" } else { "false" }.to_owned()),
            Scalar::Null => None,
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn header(&mut self) -> Option<RemotingCommand> {
        let mut command = RemotingCommand {
            serialize_type: SerializeType::Json,
            ..RemotingCommand::default()
        };
        self.skip_whitespace();
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.eat(b'}') {
            return Some(command);
        }
        // Each round consumes at least one member, so the loop ends with the text.
        loop {
            let key = self.plain_key()?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            match key {
                "code" => command.code = self.int_field()?,
                "version" => command.version = self.int_field()?,
                "opaque" => command.opaque = self.int_field()?,
                "flag" => command.flag = self.int_field()?,
                "language" => command.language = self.language()?,
                "remark" => command.remark = self.scalar()?.into_text(),
                "extFields" => command.ext_fields = self.ext_fields()?,
                // Unknown keys are skipped; only scalars here, anything nested goes to
                // the serde path.
                _ => {
                    self.scalar()?;
                }
            }
            self.skip_whitespace();
            if self.eat(b',') {
                self.skip_whitespace();
                continue;
            }
            self.expect(b'}')?;
            return Some(command);
        }
    }

    /// `code`, `version`, `opaque`, `flag`: an `i32` integer, a string holding one, or
    /// null (0), as the serde path's `LenientInt`.
    fn int_field(&mut self) -> Option<i32> {
        match self.scalar()? {
            Scalar::Integer { value, .. } => i32::try_from(value).ok(),
            Scalar::Plain(text) => text.trim().parse().ok(),
            Scalar::Escaped(text) => text.trim().parse().ok(),
            Scalar::Null => Some(0),
            Scalar::Bool(_) => None,
        }
    }

    /// A name, a number as binary headers carry it, or null (Java), as `LenientLanguage`.
    fn language(&mut self) -> Option<LanguageCode> {
        Some(match self.scalar()? {
            Scalar::Plain(name) => LanguageCode::from_name(name),
            Scalar::Escaped(name) => LanguageCode::from_name(&name),
            Scalar::Integer { value, .. } => {
                u8::try_from(value).map_or(LanguageCode::Other, LanguageCode::from_code)
            }
            Scalar::Null => LanguageCode::Java,
            Scalar::Bool(_) => LanguageCode::Other,
        })
    }

    /// `extFields`: an object of scalars (null values drop the key, the last of repeated
    /// keys wins) or null (empty), as `LenientExt`.
    fn ext_fields(&mut self) -> Option<ExtFields> {
        if self.eat_literal("null") {
            return Some(ExtFields::new());
        }
        self.expect(b'{')?;
        let mut operations = Vec::with_capacity(EXT_CAPACITY);
        self.skip_whitespace();
        if self.eat(b'}') {
            return Some(ExtFields::new());
        }
        loop {
            let key = self.plain_key()?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            let value = self.scalar()?.into_text();
            let key = match known_key(key) {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(key.to_owned()),
            };
            operations.push((key, value));
            self.skip_whitespace();
            if self.eat(b',') {
                self.skip_whitespace();
                continue;
            }
            self.expect(b'}')?;
            return Some(ExtFields::from_operations(operations));
        }
    }

    /// A key without escapes (keys with escapes are left to the serde path).
    fn plain_key(&mut self) -> Option<&'a str> {
        match self.string()? {
            Scalar::Plain(key) => Some(key),
            _ => None,
        }
    }

    /// A string, integer, boolean or null; `None` for anything else.
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match *self.bytes.get(self.pos)? {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.integer(),
            b't' if self.eat_literal("true") => Some(Scalar::Bool(true)),
            b'f' if self.eat_literal("false") => Some(Scalar::Bool(false)),
            b'n' if self.eat_literal("null") => Some(Scalar::Null),
            _ => None,
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<Scalar<'a>> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = self.string_run_end()?;
        self.pos = end;
        if self.eat(b'"') {
            return Some(Scalar::Plain(self.text.get(start..end)?));
        }
        // A backslash: unescape from here on.
        let mut out = String::with_capacity(end - start + 16);
        out.push_str(self.text.get(start..end)?);
        loop {
            self.expect(b'\\')?;
            self.escape(&mut out)?;
            let run_start = self.pos;
            let run_end = self.string_run_end()?;
            out.push_str(self.text.get(run_start..run_end)?);
            self.pos = run_end;
            if self.eat(b'"') {
                return Some(Scalar::Escaped(out));
            }
        }
    }

    /// Where the run of ordinary string bytes from `pos` ends: at a quote or a backslash.
    /// `None` at a control character (an error for serde_json) or the end of the text.
    fn string_run_end(&self) -> Option<usize> {
        let rest = self.bytes.get(self.pos..)?;
        let end = self.pos + special_string_byte(rest)?;
        (*self.bytes.get(end)? >= 0x20).then_some(end)
    }

    /// One escape after its backslash. Surrogates (`\uD800`-`\uDFFF`) are left to the serde
    /// path, which pairs them or reports them.
    fn escape(&mut self, out: &mut String) -> Option<()> {
        let kind = *self.bytes.get(self.pos)?;
        self.pos += 1;
        let ch = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.bytes.get(self.pos..self.pos + 4)?;
                let mut code = 0u32;
                for &digit in hex {
                    code = code * 16 + char::from(digit).to_digit(16)?;
                }
                self.pos += 4;
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(ch);
        Some(())
    }

    /// An integer in JSON's grammar that serde_json keeps as an integer; `None` for floats,
    /// `-0`, leading zeros and values beyond `u64` / `i64`.
    fn integer(&mut self) -> Option<Scalar<'a>> {
        let start = self.pos;
        let negative = self.eat(b'-');
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        while let Some(&byte) = self.bytes.get(self.pos) {
            if !byte.is_ascii_digit() {
                break;
            }
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(byte - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - digits_start;
        if digits == 0 || (digits > 1 && self.bytes[digits_start] == b'0') {
            return None;
        }
        if matches!(self.bytes.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = if negative {
            // serde_json reads -0 and anything below i64::MIN as floats.
            if magnitude == 0 || magnitude > i64::MIN.unsigned_abs() {
                return None;
            }
            -i128::from(magnitude)
        } else {
            i128::from(magnitude)
        };
        Some(Scalar::Integer {
            text: self.text.get(start..self.pos)?,
            value,
        })
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn eat_literal(&mut self, literal: &str) -> bool {
        let end = self.pos + literal.len();
        if self.bytes.get(self.pos..end) == Some(literal.as_bytes()) {
            self.pos = end;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::json::decode_with_serde;
    use super::*;

    /// The scanner either declines or agrees with the serde path; returns whether it
    /// decoded.
    fn agrees(header: &[u8]) -> bool {
        let fast = decode(header);
        if let Some(fast) = &fast {
            let slow = decode_with_serde(header);
            assert_eq!(
                slow.as_ref().ok(),
                Some(fast),
                "scanner and serde disagree on {:?}: serde says {slow:?}",
                String::from_utf8_lossy(header)
            );
        }
        fast.is_some()
    }

    #[test]
    fn java_and_cpp_headers_take_the_fast_path() {
        let java = br#"{"code":310,"extFields":{"a":"G","b":"T","d":"4","i":"TAGS\u0001A\u0002KEYS\u0001k\u0002","e":"3"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":475}"#;
        assert!(agrees(java));
        let command = decode(java).unwrap();
        assert_eq!(
            command.ext_field("i"),
            Some("TAGS\u{1}A\u{2}KEYS\u{1}k\u{2}")
        );
        assert_eq!(
            (command.code, command.opaque, command.version),
            (310, 7, 475)
        );
        let cpp = b"{\"code\":11,\"extFields\":{\"queueId\":1,\"queueOffset\":-5,\"sysFlag\":true,\"x\":null},\"flag\":0,\"language\":\"CPP\",\"opaque\":3,\"remark\":\"\",\"version\":0}\n";
        assert!(agrees(cpp));
        let command = decode(cpp).unwrap();
        assert_eq!(command.ext_field("queueOffset"), Some("-5"));
        assert_eq!(command.ext_field("sysFlag"), Some("true"));
        assert_eq!(command.ext_field("x"), None);
        assert_eq!(command.remark.as_deref(), Some(""));
        assert!(agrees(
            br#"{"code":1,"remark":null,"extFields":null,"language":12}"#
        ));
        assert!(agrees(b" { } "));
    }

    #[test]
    fn unusual_headers_are_left_to_serde() {
        for header in [
            &br#"{"code":1.0}"#[..],
            br#"{"code":-0}"#,
            br#"{"code":01}"#,
            br#"{"code":2147483648}"#,
            br#"{"code":true}"#,
            br#"{"extFields":{"k":1.5}}"#,
            br#"{"extFields":{"k":-0}}"#,
            br#"{"extFields":{"k":18446744073709551616}}"#,
            br#"{"extFields":{"k":[1]}}"#,
            br#"{"extFields":{"k\u0041":"v"}}"#,
            br#"{"extFields":"text"}"#,
            br#"{"remark":"\ud83d\ude00"}"#,
            br#"{"remark":"\ud800"}"#,
            br#"{"remark":"\x"}"#,
            b"{\"remark\":\"a\x01b\"}",
            br#"{"x":{"nested":1}}"#,
            br#"{"code":1,}"#,
            br#"{"code":1} x"#,
            br#"{"code":1"#,
            b"{\"remark\":\"\xff\"}",
            b"",
            b"[]",
        ] {
            assert!(!agrees(header), "{:?}", String::from_utf8_lossy(header));
        }
    }

    proptest! {
        #[test]
        fn special_byte_search_matches_a_plain_scan(bytes in proptest::collection::vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 1 => 0x80u8..=0xff],
            0..40,
        )) {
            let plain = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(special_string_byte(&bytes), plain);
        }
    }

    fn whitespace() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => Just(String::new()),
            1 => Just(" ".to_owned()),
            1 => Just("\n".to_owned()),
            1 => Just(" \t\r\n ".to_owned()),
        ]
    }

    fn string_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[ -!#-\\[\\]-~]{0,6}",
            1 => Just("é中".to_owned()),
            1 => prop::sample::select(vec![
                "\\n", "\\t", "\\r", "\\b", "\\f", "\\/", "\\\\", "\\\"", "\\u0001", "\\u00e9",
                "\\u4E2D", "\\u0000", "\\ud83d\\ude00", "\\ud800", "\\udc00", "\\x", "\\u12",
                "\u{1}", "\u{1f}",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn string() -> impl Strategy<Value = String> {
        proptest::collection::vec(string_piece(), 0..4)
            .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (-99_999i64..99_999).prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "0", "-0", "01", "-01", "2147483647", "2147483648", "-2147483648",
                "-2147483649", "255", "256", "18446744073709551615", "18446744073709551616",
                "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                "-9223372036854775809", "1.5", "1e3", "1E+2", "-", "1.", "-1.0e-2",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => string(),
            3 => number(),
            1 => prop::sample::select(vec!["true", "false", "null", "tru", "nul", "True"])
                .prop_map(str::to_owned),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => scalar(),
            1 => prop::sample::select(vec!["{}", "[]", "[1,\"a\"]", "{\"k\":\"v\"}", "{\"k\":{}}"])
                .prop_map(str::to_owned),
        ]
    }

    fn members(
        keys: impl Strategy<Value = String>,
        values: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = String> {
        let member = (whitespace(), keys, whitespace(), values, whitespace())
            .prop_map(|(a, key, b, value, c)| format!("{a}{key}{b}:{value}{c}"));
        let separator = prop_oneof![12 => Just(","), 1 => Just(""), 1 => Just(",,")];
        (
            proptest::collection::vec((member, separator), 0..8),
            whitespace(),
            prop_oneof![12 => Just(""), 1 => Just(",")],
        )
            .prop_map(|(members, ws, trailing)| {
                let mut text = String::from("{");
                for (i, (member, separator)) in members.iter().enumerate() {
                    if i > 0 {
                        text.push_str(separator);
                    }
                    text.push_str(member);
                }
                format!("{text}{trailing}{ws}}}")
            })
    }

    fn ext_key() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "\"[a-e]\"",
            1 => Just("\"queueId\"".to_owned()),
            1 => string(),
        ]
    }

    fn ext_fields() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => members(ext_key(), value()),
            1 => Just("null".to_owned()),
            1 => prop::sample::select(vec!["[]", "\"x\"", "1", "true"]).prop_map(str::to_owned),
        ]
    }

    fn top_key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "code",
            "language",
            "version",
            "opaque",
            "flag",
            "remark",
            "extFields",
            "serializeTypeCurrentRPC",
            "x",
            "co\\u0064e",
        ])
        .prop_map(|key| format!("\"{key}\""))
    }

    fn header() -> impl Strategy<Value = String> {
        let top_value = prop_oneof![
            6 => value(),
            3 => ext_fields(),
            2 => prop::sample::select(vec!["\"JAVA\"", "\"cpp\"", "\"COBOL\"", "\" 42 \"", "\"4x\""])
                .prop_map(str::to_owned),
        ];
        (
            whitespace(),
            members(top_key(), top_value),
            whitespace(),
            prop_oneof![12 => Just(""), 1 => Just("x")],
        )
            .prop_map(|(a, object, b, tail)| format!("{a}{object}{b}{tail}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16_384))]

        #[test]
        fn scanner_agrees_with_serde_on_generated_headers(header in header()) {
            agrees(header.as_bytes());
        }

        #[test]
        fn scanner_agrees_with_serde_on_mutated_headers(
            header in header(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut bytes = header.into_bytes();
            for (at, byte, kind) in edits {
                let at = if bytes.is_empty() { 0 } else { at.index(bytes.len()) };
                match kind {
                    0 if !bytes.is_empty() => bytes[at] = byte,
                    1 if !bytes.is_empty() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            agrees(&bytes);
        }
    }
}
