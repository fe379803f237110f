//! Reading and writing the non-standard JSON that Java's fastjson produces.
//!
//! fastjson writes map keys that are not strings as they are: numbers unquoted
//! (`{0:"addr"}`) and objects as objects (`{{"brokerName":"b","queueId":0,"topic":"t"}:5}`).
//! [`normalize`] rewrites such text into standard JSON by turning every non-string key
//! into a string holding the key's compact JSON text (`"0"`, `"{\"brokerName\":...}"`),
//! so ordinary serde types can read it and parse object keys in a second step. Input size
//! and nesting depth are bounded because bodies come from the network.

use serde::de::DeserializeOwned;

/// Nesting deeper than this is rejected (real bodies nest fewer than 10 levels).
pub const MAX_DEPTH: usize = 64;
/// Bodies larger than this are rejected before parsing (frames are at most 16 MiB).
pub const MAX_BODY_LEN: usize = 16 * 1024 * 1024;

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("JSON body of {0} bytes exceeds the {MAX_BODY_LEN}-byte limit")]
    TooLarge(usize),
    #[error("JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("JSON syntax error at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: &'static str },
    #[error("JSON body does not match the expected shape: {0}")]
    Shape(String),
}

/// Parses a body that is standard JSON or fastjson's dialect into `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    if body.len() > MAX_BODY_LEN {
        return Err(JsonError::TooLarge(body.len()));
    }
    // Standard JSON (the common case) needs no rewrite; serde_json limits recursion itself.
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        // A shape mismatch in valid JSON will not improve by normalizing.
        Err(err) if !err.is_syntax() && !err.is_eof() => Err(JsonError::Shape(err.to_string())),
        Err(_) => {
            let normalized = normalize(body)?;
            serde_json::from_str(&normalized).map_err(|err| JsonError::Shape(err.to_string()))
        }
    }
}

/// Rewrites fastjson output into compact standard JSON (see the module docs).
pub fn normalize(input: &[u8]) -> Result<String, JsonError> {
    if input.len() > MAX_BODY_LEN {
        return Err(JsonError::TooLarge(input.len()));
    }
    let mut parser = Normalizer { input, pos: 0 };
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    parser.skip_ws();
    parser.value(&mut out, 0)?;
    parser.skip_ws();
    if parser.pos != input.len() {
        return Err(parser.error("trailing characters after the JSON value"));
    }
    Ok(out)
}

struct Normalizer<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Normalizer<'_> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError::Syntax {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object(out, depth),
            Some(b'[') => self.array(out, depth),
            Some(b'"') => self.string(out),
            Some(b'-' | b'0'..=b'9') => self.bare_token(out, false),
            Some(b't' | b'f' | b'n') => self.bare_token(out, false),
            Some(_) => Err(self.error("unexpected character where a value should start")),
            None => Err(self.error("unexpected end where a value should start")),
        }
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Result<(), JsonError> {
        self.pos += 1; // '{'
        out.push('{');
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            out.push('}');
            return Ok(());
        }
        loop {
            self.key(out, depth)?;
            self.expect(b':', "expected ':' after an object key")?;
            out.push(':');
            self.value(out, depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(',');
                }
                Some(b'}') => {
                    self.pos += 1;
                    out.push('}');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn key(&mut self, out: &mut String, depth: usize) -> Result<(), JsonError> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.string(out),
            Some(b'{' | b'[') => {
                // An object or array key becomes a string holding its normalized text.
                let mut key_text = String::new();
                self.value(&mut key_text, depth + 1)?;
                push_json_string(out, &key_text);
                Ok(())
            }
            Some(_) => self.bare_token(out, true),
            None => Err(self.error("unexpected end where an object key should start")),
        }
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Result<(), JsonError> {
        self.pos += 1; // '['
        out.push('[');
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.value(out, depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(',');
                }
                Some(b']') => {
                    self.pos += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    /// Copies a quoted string, escaping raw control characters that strict JSON forbids.
    fn string(&mut self, out: &mut String) -> Result<(), JsonError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        out.push('"');
        let mut escaped = false;
        loop {
            let Some(byte) = self.peek() else {
                self.pos = start;
                return Err(self.error("unterminated string"));
            };
            let run_start = self.pos;
            self.pos += 1;
            if escaped {
                escaped = false;
                out.push(char::from(byte));
                continue;
            }
            match byte {
                b'"' => {
                    out.push('"');
                    return Ok(());
                }
                b'\\' => {
                    escaped = true;
                    out.push('\\');
                }
                0x00..=0x1F => out.push_str(&format!("\\u{byte:04x}")),
                0x20..=0x7F => out.push(char::from(byte)),
                _ => {
                    // Copy a whole UTF-8 sequence at once; invalid UTF-8 is a syntax error.
                    let len =
                        utf8_len(byte).ok_or_else(|| self.error("invalid UTF-8 in a string"))?;
                    let end = run_start + len;
                    let text = self
                        .input
                        .get(run_start..end)
                        .and_then(|bytes| std::str::from_utf8(bytes).ok())
                        .ok_or_else(|| self.error("invalid UTF-8 in a string"))?;
                    out.push_str(text);
                    self.pos = end;
                }
            }
        }
    }

    /// A number, literal or (as a key) an unquoted name; keys are emitted quoted.
    fn bare_token(&mut self, out: &mut String, as_key: bool) -> Result<(), JsonError> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'_' | b'$')
        ) {
            self.pos += 1;
        }
        let token = self
            .input
            .get(start..self.pos)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("");
        if token.is_empty() {
            return Err(self.error("expected a key, number or literal"));
        }
        if as_key {
            push_json_string(out, token);
        } else {
            out.push_str(token);
        }
        Ok(())
    }
}

fn utf8_len(first: u8) -> Option<usize> {
    match first {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

/// Appends `text` as a JSON string literal.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `value` as the JSON a RocketMQ peer reads (see [`push_json`]).
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = String::new();
    push_json(&mut out, value);
    out.into_bytes()
}

/// Appends the compact JSON of a serializable value.
pub fn push_json<T: serde::Serialize + ?Sized>(out: &mut String, value: &T) {
    // Serializing our own plain structs and maps cannot fail (no non-string map keys,
    // no custom failing serializers), so an error here would be a bug; emit null then.
    match serde_json::to_string(value) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn standard_json_passes_through_unchanged() {
        let text = r#"{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"d\"e\\"}}"#;
        assert_eq!(normalize(text.as_bytes()).unwrap(), text);
    }

    #[test]
    fn unquoted_numeric_keys_are_quoted() {
        let text = "{\"brokerAddrs\":{0:\"10.0.0.1:10911\", 1 :\"10.0.0.2:10911\"}}\n";
        assert_eq!(
            normalize(text.as_bytes()).unwrap(),
            r#"{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}}"#
        );
        let parsed: BTreeMap<String, BTreeMap<i64, String>> = decode(text.as_bytes()).unwrap();
        assert_eq!(parsed["brokerAddrs"][&1], "10.0.0.2:10911");
    }

    #[test]
    fn object_keys_become_string_keys() {
        let text =
            r#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"maxOffset":5}}}"#;
        let normalized = normalize(text.as_bytes()).unwrap();
        assert_eq!(
            normalized,
            r#"{"offsetTable":{"{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"t\"}":{"maxOffset":5}}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&normalized).unwrap();
        let key = parsed["offsetTable"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let mq: serde_json::Value = serde_json::from_str(&key).unwrap();
        assert_eq!(mq["topic"], "t");
    }

    #[test]
    fn raw_control_characters_in_strings_are_escaped() {
        let text = "{\"p\":\"a\u{1}b\u{2}\"}";
        let value: serde_json::Value = decode(text.as_bytes()).unwrap();
        assert_eq!(value["p"], "a\u{1}b\u{2}");
        let text = "{\"k\":\"héllo ✓\"}";
        assert_eq!(normalize(text.as_bytes()).unwrap(), text);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for text in [
            "",
            "{",
            "}",
            "{\"a\"",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,",
            "\"abc",
            "{:1}",
            "{\"a\":1}x",
            "[\u{0}]",
            "{\"a\":\"\\",
            "{{",
            "[{]",
        ] {
            assert!(normalize(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(normalize(&[b'"', 0xFF, b'"']).is_err());
        assert!(normalize(&[b'"', 0xE2, 0x9C]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(normalize(deep.as_bytes()), Err(JsonError::TooDeep));
        let deep_keys = "{".repeat(MAX_DEPTH + 2);
        assert!(normalize(deep_keys.as_bytes()).is_err());
        let ok = "[".repeat(10) + &"]".repeat(10);
        assert!(normalize(ok.as_bytes()).is_ok());
    }

    #[test]
    fn json_string_escaping() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\u{1}\n");
        assert_eq!(out, r#""a\"b\\c\u0001\n""#);
        assert_eq!(
            serde_json::from_str::<String>(&out).unwrap(),
            "a\"b\\c\u{1}\n"
        );
    }

    proptest::proptest! {
        #[test]
        fn normalize_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = normalize(&bytes);
        }

        #[test]
        fn normalize_never_panics_on_jsonish(text in "[{}\\[\\]:,\"0-9a-z \\\\]{0,80}") {
            let _ = decode::<serde_json::Value>(text.as_bytes());
        }
    }
}
