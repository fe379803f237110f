//! What a subscription selects: tags, or a SQL92 expression over message properties
//! (Java's `MessageSelector.byTag` / `bySql`). The broker filters both; tags are matched by
//! hash code there, so this side checks the names again, while a SQL92 selection is the
//! broker's alone (it needs `enablePropertyFilter=true`).

use message::tag::{EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};
use message::TagFilter;
use remoting::body::SubscriptionData;

use crate::error::{ClientError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Tag(TagFilter),
    Sql92(String),
}

impl Selector {
    /// `*` or tags joined by `||`.
    pub fn tag(expression: &str) -> Result<Selector> {
        TagFilter::parse(expression)
            .map(Selector::Tag)
            .map_err(|err| ClientError::InvalidArgument(format!("tag expression: {err}")))
    }

    /// A SQL92 expression; the broker parses it and refuses what it cannot.
    pub fn sql92(expression: &str) -> Result<Selector> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(ClientError::InvalidArgument(
                "a SQL92 expression must not be empty".into(),
            ));
        }
        Ok(Selector::Sql92(expression.to_owned()))
    }

    /// The expression as sent in pulls and heartbeats.
    pub fn expression(&self) -> &str {
        match self {
            Selector::Tag(filter) => &filter.sub_string,
            Selector::Sql92(expression) => expression,
        }
    }

    pub fn expression_type(&self) -> &'static str {
        match self {
            Selector::Tag(_) => EXPRESSION_TYPE_TAG,
            Selector::Sql92(_) => EXPRESSION_TYPE_SQL92,
        }
    }

    /// Whether a message the broker returned is selected (tag names collide in hash codes).
    pub(crate) fn keeps(&self, tag: Option<&str>) -> bool {
        match self {
            Selector::Tag(filter) => filter.matches_tag(tag),
            Selector::Sql92(_) => true,
        }
    }

    /// The subscription as heartbeats report it.
    pub(crate) fn subscription_data(&self, topic: &str, sub_version: i64) -> SubscriptionData {
        match self {
            Selector::Tag(filter) => SubscriptionData::of_tags(topic, filter, sub_version),
            Selector::Sql92(expression) => SubscriptionData::sql92(topic, expression, sub_version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sql92_selection_is_reported_as_such_and_left_to_the_broker() {
        let selector = Selector::sql92("  a > 5 AND b = 'x' ").unwrap();
        assert_eq!(selector.expression(), "a > 5 AND b = 'x'");
        let data = selector.subscription_data("T", 7);
        assert_eq!(data.expression_type, "SQL92");
        assert_eq!(data.sub_string, "a > 5 AND b = 'x'");
        assert!(data.tags_set.is_empty() && data.code_set.is_empty());
        assert!(selector.keeps(Some("any")) && selector.keeps(None));
        assert!(Selector::sql92(" ").is_err());
    }

    #[test]
    fn a_tag_selection_matches_what_java_reports() {
        let selector = Selector::tag("a || b").unwrap();
        let data = selector.subscription_data("T", 7);
        assert_eq!(data, SubscriptionData::tag("T", "a || b", 7).unwrap());
        assert!(selector.keeps(Some("a")) && !selector.keeps(Some("c")));
    }
}
