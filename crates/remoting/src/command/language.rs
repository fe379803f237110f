//! `LanguageCode`: the sender's language, a name in JSON headers and a byte in binary ones.

use std::fmt;

/// The language of a command's sender, with RocketMQ's numbering (`LanguageCode.java`).
///
/// Unknown names and numbers decode as [`LanguageCode::Other`]: peers newer than us add
/// languages (4.x stops at `RUST`), and rejecting a frame over an informational field would
/// cut off a working client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LanguageCode {
    /// What we send: the Rust client (v0.9.0) does not know every name, but knows `JAVA`.
    #[default]
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
}

/// Every language with its wire byte and wire name, in RocketMQ's order.
const LANGUAGES: [(LanguageCode, u8, &str); 14] = [
    (LanguageCode::Java, 0, "JAVA"),
    (LanguageCode::Cpp, 1, "CPP"),
    (LanguageCode::Dotnet, 2, "DOTNET"),
    (LanguageCode::Python, 3, "PYTHON"),
    (LanguageCode::Delphi, 4, "DELPHI"),
    (LanguageCode::Erlang, 5, "ERLANG"),
    (LanguageCode::Ruby, 6, "RUBY"),
    (LanguageCode::Other, 7, "OTHER"),
    (LanguageCode::Http, 8, "HTTP"),
    (LanguageCode::Go, 9, "GO"),
    (LanguageCode::Php, 10, "PHP"),
    (LanguageCode::Oms, 11, "OMS"),
    (LanguageCode::Rust, 12, "RUST"),
    (LanguageCode::NodeJs, 13, "NODE_JS"),
];

impl LanguageCode {
    /// The byte carried in binary (`ROCKETMQ`) headers.
    pub fn code(self) -> u8 {
        LANGUAGES
            .iter()
            .find(|(language, _, _)| *language == self)
            .map_or(7, |(_, code, _)| *code)
    }

    /// The name carried in JSON headers, e.g. `"JAVA"`.
    pub fn name(self) -> &'static str {
        LANGUAGES
            .iter()
            .find(|(language, _, _)| *language == self)
            .map_or("OTHER", |(_, _, name)| name)
    }

    /// Parses a binary-header byte; unknown bytes are `Other`.
    pub fn from_code(code: u8) -> Self {
        LANGUAGES
            .iter()
            .find(|(_, known, _)| *known == code)
            .map_or(LanguageCode::Other, |(language, _, _)| *language)
    }

    /// Parses a JSON-header name (case-insensitively); unknown names are `Other`.
    pub fn from_name(name: &str) -> Self {
        LANGUAGES
            .iter()
            .find(|(_, _, known)| known.eq_ignore_ascii_case(name))
            .map_or(LanguageCode::Other, |(language, _, _)| *language)
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_match_rocketmq() {
        assert_eq!(LanguageCode::Java.code(), 0);
        assert_eq!(LanguageCode::Cpp.code(), 1);
        assert_eq!(LanguageCode::Rust.code(), 12);
        assert_eq!(LanguageCode::NodeJs.code(), 13);
        assert_eq!(LanguageCode::NodeJs.name(), "NODE_JS");
        for (language, code, name) in LANGUAGES {
            assert_eq!(LanguageCode::from_code(code), language);
            assert_eq!(LanguageCode::from_name(name), language);
            assert_eq!(language.code(), code);
            assert_eq!(language.name(), name);
        }
    }

    #[test]
    fn unknown_languages_are_other() {
        assert_eq!(LanguageCode::from_name("COBOL"), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name(""), LanguageCode::Other);
        assert_eq!(LanguageCode::from_code(14), LanguageCode::Other);
        assert_eq!(LanguageCode::from_code(255), LanguageCode::Other);
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(LanguageCode::from_name("cpp"), LanguageCode::Cpp);
        assert_eq!(LanguageCode::from_name("Rust"), LanguageCode::Rust);
    }
}
