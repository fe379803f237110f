//! The filter a pull applies, built from a subscription: TAG expressions test the
//! ConsumeQueue's tags code; SQL92 expressions (`enablePropertyFilter`) test each stored
//! message's properties, `TAGS` among them.
//!
//! A SQL92 expression is compiled once per subscription and kept in [`FilterCache`], keyed
//! by consumer group, topic, expression and subscription version (RocketMQ's
//! `ConsumerFilterManager` likewise keeps one compiled expression per group and topic,
//! replaced when the client's version moves on). Pulls, heartbeats and CHECK_CLIENT_CONFIG
//! all go through it, so a consumer polling every queue costs one compilation, not one per
//! pull. Unparsable expressions are cached as such: a client retrying its pulls does not make
//! the broker parse the same bad text again.

use std::collections::HashMap;
use std::sync::Arc;

use filter::{ParseError, Sql92Filter};
use message::tag::{SubscriptionError, EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};
use message::{properties, MessageView, TagFilter};
use parking_lot::Mutex;

/// Why a subscription cannot be turned into a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Tag(#[from] SubscriptionError),
    #[error("{0}")]
    Sql92(#[from] ParseError),
    #[error("expression type `{0}` is unknown; the broker filters by TAG or SQL92")]
    UnknownType(String),
}

/// The filter of one pull.
#[derive(Debug, Clone)]
pub enum SubscriptionFilter {
    Tag(TagFilter),
    Sql92(Arc<Sql92Filter>),
}

impl SubscriptionFilter {
    pub fn is_sql92(&self) -> bool {
        matches!(self, SubscriptionFilter::Sql92(_))
    }
}

impl store::MessageFilter for SubscriptionFilter {
    fn matches(&self, tags_code: i64) -> bool {
        match self {
            SubscriptionFilter::Tag(tags) => tags.matches_code(tags_code),
            SubscriptionFilter::Sql92(_) => true,
        }
    }

    fn matches_record(&self, record: &[u8]) -> bool {
        match self {
            SubscriptionFilter::Tag(_) => true,
            SubscriptionFilter::Sql92(sql) => sql92_matches(sql, record),
        }
    }
}

/// One pass over the record's properties fills the expression's slots; the last
/// occurrence of a key wins, as in Java's map-based decoding. A record that does not decode
/// has no properties, so only an expression true without any (there are none of use) could
/// match: it is treated as not matching, as RocketMQ does when evaluation fails.
fn sql92_matches(sql: &Sql92Filter, record: &[u8]) -> bool {
    let Ok(view) = MessageView::parse(record) else {
        return false;
    };
    let names = sql.properties();
    let mut values: Vec<Option<&str>> = vec![None; names.len()];
    for (key, value) in properties::iter(view.properties()) {
        if let Some(slot) = names.iter().position(|name| name == key) {
            values[slot] = Some(value);
        }
    }
    sql.matches(&values)
}

/// The kinds of expression RocketMQ knows; an absent or empty type is TAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressionKind {
    Tag,
    Sql92,
}

impl ExpressionKind {
    pub fn of(expression_type: Option<&str>) -> Result<ExpressionKind, FilterError> {
        match expression_type.map(str::trim) {
            None | Some("") => Ok(ExpressionKind::Tag),
            Some(kind) if kind.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) => Ok(ExpressionKind::Tag),
            Some(kind) if kind.eq_ignore_ascii_case(EXPRESSION_TYPE_SQL92) => {
                Ok(ExpressionKind::Sql92)
            }
            Some(kind) => Err(FilterError::UnknownType(kind.to_owned())),
        }
    }
}

/// A subscription as a pull, heartbeat or client check names it.
#[derive(Debug, Clone, Copy)]
pub struct Subscription<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub expression: &'a str,
    pub expression_type: Option<&'a str>,
    pub version: i64,
}

/// Compiled SQL92 expressions, bounded in entries and in expression text (the compiled tree
/// is proportional to its text).
pub struct FilterCache {
    inner: Mutex<Entries>,
    max_entries: usize,
    max_text_bytes: usize,
}

/// By (group, topic): the expressions seen for it, newest first.
#[derive(Default)]
struct Entries {
    by_subscription: HashMap<(String, String), Vec<Compiled>>,
    entries: usize,
    text_bytes: usize,
}

struct Compiled {
    expression: String,
    version: i64,
    result: Result<Arc<Sql92Filter>, ParseError>,
}

/// Expressions kept per group and topic: a group whose members briefly disagree (a rolling
/// change of its subscription) keeps both without recompiling on every pull.
const VERSIONS_PER_SUBSCRIPTION: usize = 4;

impl FilterCache {
    pub fn new(max_entries: usize, max_text_bytes: usize) -> FilterCache {
        FilterCache {
            inner: Mutex::new(Entries::default()),
            max_entries: max_entries.max(1),
            max_text_bytes,
        }
    }

    /// The filter for `subscription`.
    pub fn filter(
        &self,
        subscription: Subscription<'_>,
    ) -> Result<SubscriptionFilter, FilterError> {
        match ExpressionKind::of(subscription.expression_type)? {
            ExpressionKind::Tag => Ok(SubscriptionFilter::Tag(TagFilter::parse(
                subscription.expression,
            )?)),
            ExpressionKind::Sql92 => Ok(SubscriptionFilter::Sql92(self.sql92(subscription)?)),
        }
    }

    /// The compiled SQL92 expression of `subscription`, compiled now if not cached.
    pub fn sql92(&self, subscription: Subscription<'_>) -> Result<Arc<Sql92Filter>, ParseError> {
        let key = (subscription.group.to_owned(), subscription.topic.to_owned());
        if let Some(found) = self
            .inner
            .lock()
            .by_subscription
            .get(&key)
            .and_then(|list| {
                list.iter()
                    .find(|c| {
                        c.version == subscription.version && c.expression == subscription.expression
                    })
                    .map(|c| c.result.clone())
            })
        {
            return found;
        }
        // Outside the lock: a 16 KiB expression takes a while, and other pulls must not wait
        // for it. Two pulls racing here compile twice and one result replaces the other.
        let result = Sql92Filter::compile(subscription.expression).map(Arc::new);
        self.insert(
            key,
            Compiled {
                expression: subscription.expression.to_owned(),
                version: subscription.version,
                result: result.clone(),
            },
        );
        result
    }

    fn insert(&self, key: (String, String), compiled: Compiled) {
        let text = compiled.expression.len();
        if text > self.max_text_bytes {
            return;
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let list = inner.by_subscription.entry(key.clone()).or_default();
        let before = list.len();
        let text_before: usize = list.iter().map(|c| c.expression.len()).sum();
        // A racing pull may have compiled the same expression meanwhile: keep one.
        list.retain(|c| !(c.version == compiled.version && c.expression == compiled.expression));
        list.insert(0, compiled);
        list.truncate(VERSIONS_PER_SUBSCRIPTION);
        let after = list.len();
        let text_after: usize = list.iter().map(|c| c.expression.len()).sum();
        inner.entries = inner.entries + after - before;
        inner.text_bytes = (inner.text_bytes + text_after).saturating_sub(text_before);
        // Over a bound: drop other subscriptions (whichever the map yields first) until under.
        while inner.entries > self.max_entries || inner.text_bytes > self.max_text_bytes {
            let Some(victim) = inner.by_subscription.keys().find(|k| **k != key).cloned() else {
                break;
            };
            if let Some(list) = inner.by_subscription.remove(&victim) {
                inner.entries = inner.entries.saturating_sub(list.len());
                let text: usize = list.iter().map(|c| c.expression.len()).sum();
                inner.text_bytes = inner.text_bytes.saturating_sub(text);
            }
        }
    }

    /// Compiled expressions held (for tests and stats).
    pub fn len(&self) -> usize {
        self.inner.lock().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use message::record::{encode, MessageDraft};

    fn sub<'a>(group: &'a str, expression: &'a str, version: i64) -> Subscription<'a> {
        Subscription {
            group,
            topic: "T",
            expression,
            expression_type: Some("SQL92"),
            version,
        }
    }

    #[test]
    fn compiles_once_per_subscription_version() {
        let cache = FilterCache::new(100, 1 << 20);
        let a = cache.sql92(sub("G", "a > 1", 1)).unwrap();
        let again = cache.sql92(sub("G", "a > 1", 1)).unwrap();
        assert!(
            Arc::ptr_eq(&a, &again),
            "the second pull reuses the first compilation"
        );
        let newer = cache.sql92(sub("G", "a > 1", 2)).unwrap();
        assert!(!Arc::ptr_eq(&a, &newer));
        assert_eq!(cache.len(), 2);
        assert!(cache.sql92(sub("G", "a >", 3)).is_err());
        assert!(
            cache.sql92(sub("G", "a >", 3)).is_err(),
            "errors are cached too"
        );
    }

    #[test]
    fn bounded_in_entries_and_text() {
        let cache = FilterCache::new(8, 1 << 20);
        for version in 0..20 {
            cache.sql92(sub("G", "a > 1", version)).unwrap();
        }
        assert_eq!(cache.len(), VERSIONS_PER_SUBSCRIPTION);
        let groups: Vec<String> = (0..50).map(|i| format!("G{i}")).collect();
        for group in &groups {
            cache.sql92(sub(group, "a > 1", 1)).unwrap();
        }
        assert!(cache.len() <= 8);
        let small = FilterCache::new(1000, 64);
        for group in &groups {
            small
                .sql92(sub(group, "a > 1 AND b < 2 AND c = 'x'", 1))
                .unwrap();
        }
        assert!(small.inner.lock().text_bytes <= 64);
        let counted: usize = small
            .inner
            .lock()
            .by_subscription
            .values()
            .flatten()
            .map(|c| c.expression.len())
            .sum();
        assert_eq!(
            small.inner.lock().text_bytes,
            counted,
            "the count matches what is held"
        );
    }

    #[test]
    fn expression_types() {
        assert_eq!(ExpressionKind::of(None).unwrap(), ExpressionKind::Tag);
        assert_eq!(ExpressionKind::of(Some("")).unwrap(), ExpressionKind::Tag);
        assert_eq!(
            ExpressionKind::of(Some("tag")).unwrap(),
            ExpressionKind::Tag
        );
        assert_eq!(
            ExpressionKind::of(Some("sql92")).unwrap(),
            ExpressionKind::Sql92
        );
        assert!(matches!(
            ExpressionKind::of(Some("XPATH")),
            Err(FilterError::UnknownType(_))
        ));
    }

    #[test]
    fn sql92_reads_the_stored_properties_tags_included() {
        use store::MessageFilter;
        let host = "127.0.0.1:10911".parse().unwrap();
        let record = |props: &str| {
            encode(&MessageDraft {
                topic: "T",
                body: b"body",
                flag: 0,
                properties: props,
                queue_id: 0,
                sys_flag: 0,
                born_timestamp_ms: 1,
                born_host: host,
                store_host: host,
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                queue_offset: 0,
                physical_offset: 0,
                store_timestamp_ms: 1,
            })
            .unwrap()
        };
        let cache = FilterCache::new(10, 1 << 20);
        let filter = cache
            .filter(sub("G", "TAGS = 'a' AND (n BETWEEN 2 AND 4)", 1))
            .unwrap();
        assert!(
            filter.matches(12345),
            "the tags code does not decide for SQL92"
        );
        let props = |pairs: &[(&str, &str)]| properties::encode(pairs.iter().copied());
        assert!(filter.matches_record(&record(&props(&[("TAGS", "a"), ("n", "3")]))));
        assert!(!filter.matches_record(&record(&props(&[("TAGS", "b"), ("n", "3")]))));
        assert!(!filter.matches_record(&record(&props(&[("TAGS", "a")]))));
        assert!(!filter.matches_record(&record(&props(&[("TAGS", "a"), ("n", "x")]))));
        assert!(!filter.matches_record(b"not a record"));
    }
}
