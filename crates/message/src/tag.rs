//! Tag hashes and TAG subscription expressions.
//!
//! The ConsumeQueue stores a tag's Java `String.hashCode()` so the broker can filter
//! without reading the CommitLog; clients re-filter by the tag text because hashes collide.

use std::collections::BTreeSet;

/// The subscription expression that matches every message.
pub const SUBSCRIBE_ALL: &str = "*";
/// Separates alternatives in an expression (`TagA || TagB`).
pub const TAG_ALTERNATIVE_SEPARATOR: &str = "||";
/// The default expression type; `SQL92` is the other one RocketMQ knows.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";

/// Java's `String.hashCode()` of `tag` (over UTF-16 code units, wrapping), sign-extended
/// to i64 as the ConsumeQueue stores it.
pub fn tag_hash(tag: &str) -> i64 {
    let mut hash: i32 = 0;
    for unit in tag.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    i64::from(hash)
}

/// The ConsumeQueue tags code of a message: its tag's hash, or 0 when it has no tag.
pub fn tags_code(tags: Option<&str>) -> i64 {
    tags.filter(|t| !t.is_empty()).map_or(0, tag_hash)
}

/// Why a subscription expression cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("subscription expression `{0}` names no tag")]
    NoTag(String),
    #[error("expression type `{0}` is not supported; only TAG is")]
    UnsupportedType(String),
}

/// Whether a TAG expression takes every message (`""` and `"*"`, as Java's `FilterAPI`).
pub fn subscribes_all(expression: &str) -> bool {
    let trimmed = expression.trim();
    trimmed.is_empty() || trimmed == SUBSCRIBE_ALL
}

/// A parsed TAG expression: either everything, or a set of tags with their hash codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// The expression as clients report it (`*` when it matches all).
    pub sub_string: String,
    /// Tags, trimmed, empty when matching all.
    pub tags: BTreeSet<String>,
    /// Hash codes of `tags` as Java's `codeSet` holds them (int).
    pub codes: BTreeSet<i32>,
}

impl TagFilter {
    /// The filter that matches every message.
    pub fn all() -> Self {
        TagFilter {
            sub_string: SUBSCRIBE_ALL.to_owned(),
            tags: BTreeSet::new(),
            codes: BTreeSet::new(),
        }
    }

    /// Parses an expression like Java's `FilterAPI`: `""` and `"*"` match all; otherwise
    /// split on `||`, trim and drop empty parts. Unlike Java, an expression that leaves no
    /// tag (`"||"`, `" "`) is an error instead of a filter that silently matches nothing.
    pub fn parse(expression: &str) -> Result<Self, SubscriptionError> {
        if subscribes_all(expression) {
            return Ok(Self::all());
        }
        let tags: BTreeSet<String> = expression
            .split(TAG_ALTERNATIVE_SEPARATOR)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if tags.is_empty() {
            return Err(SubscriptionError::NoTag(expression.to_owned()));
        }
        let codes = tags.iter().map(|t| tag_hash(t) as i32).collect();
        Ok(TagFilter {
            sub_string: expression.to_owned(),
            tags,
            codes,
        })
    }

    /// Parses an expression of the given type (`None` and `TAG` are tag expressions).
    pub fn parse_typed(
        expression: &str,
        expression_type: Option<&str>,
    ) -> Result<Self, SubscriptionError> {
        match expression_type {
            None => Self::parse(expression),
            Some(kind) if kind.is_empty() || kind.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) => {
                Self::parse(expression)
            }
            Some(kind) => Err(SubscriptionError::UnsupportedType(kind.to_owned())),
        }
    }

    pub fn matches_all(&self) -> bool {
        self.tags.is_empty()
    }

    /// The broker-side test against a ConsumeQueue entry's tags code. Java compares the
    /// code truncated to int, so we do too.
    pub fn matches_code(&self, tags_code: i64) -> bool {
        self.matches_all() || self.codes.contains(&(tags_code as i32))
    }

    /// The client-side test against a message's tag: untagged messages never match a tag
    /// subscription.
    pub fn matches_tag(&self, tag: Option<&str>) -> bool {
        if self.matches_all() {
            return true;
        }
        tag.is_some_and(|t| self.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_hashes_match_java() {
        assert_eq!(tag_hash("TagA"), 2_598_919);
        assert_eq!(tag_hash("TagB"), 2_598_920);
        assert_eq!(tag_hash("*"), 42);
        assert_eq!(tag_hash(""), 0);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE in Java.
        assert_eq!(tag_hash("polygenelubricants"), i64::from(i32::MIN));
        // Wrapping: "Aa".hashCode()==2112; long strings wrap around i32.
        assert_eq!(tag_hash("Aa"), 2112);
        assert_eq!(tag_hash("hello world, this is a long tag"), 1_197_800_641);
        assert_eq!(
            tag_hash("zzzzzzzz"),
            -1_910_022_912,
            "negative i32 is sign-extended"
        );
        // A non-BMP character hashes as its two UTF-16 surrogates.
        assert_eq!(tag_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn untagged_message_has_code_zero() {
        assert_eq!(tags_code(None), 0);
        assert_eq!(tags_code(Some("")), 0);
        assert_eq!(tags_code(Some("TagA")), 2_598_919);
    }

    #[test]
    fn parses_star_empty_and_alternatives() {
        assert!(TagFilter::parse("*").unwrap().matches_all());
        assert!(TagFilter::parse("").unwrap().matches_all());
        assert_eq!(TagFilter::parse(" * ").unwrap().sub_string, "*");

        let filter = TagFilter::parse("TagA || TagB||  ||TagC ").unwrap();
        assert_eq!(
            filter.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            ["TagA", "TagB", "TagC"]
        );
        assert!(filter.codes.contains(&2_598_919));
        assert!(filter.matches_code(2_598_920));
        assert!(!filter.matches_code(0));
        assert!(filter.matches_tag(Some("TagC")));
        assert!(!filter.matches_tag(Some("TagD")));
        assert!(!filter.matches_tag(None));
        assert!(TagFilter::all().matches_tag(None));
    }

    #[test]
    fn expressions_without_tags_and_sql_are_rejected() {
        assert_eq!(
            TagFilter::parse("||"),
            Err(SubscriptionError::NoTag("||".into()))
        );
        assert!(TagFilter::parse_typed("a > 1", Some("SQL92")).is_err());
        assert!(TagFilter::parse_typed("TagA", Some("tag")).is_ok());
    }
}
