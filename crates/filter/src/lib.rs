//! RocketMQ's SQL92 message filter (`MessageSelector.bySql`): the selector grammar of
//! RocketMQ's `filter` module, compiled once per subscription and evaluated per message
//! against the message's properties, with RocketMQ's results.
//!
//! - [`lexer`]: tokens (case-insensitive keywords, literals, operators, comments).
//! - [`parser`]: recursive descent with RocketMQ's parse-time checks and this crate's
//!   limits; produces the compiled tree.
//! - [`expr`]: the compiled tree (properties as slots, AND / OR chains flattened).
//! - [`java`]: values and Java's comparison and number-reading rules.
//! - [`eval`]: three-valued evaluation; null and errors never match.
//!
//! It knows nothing of records or the wire: a caller looks up the values of
//! [`Sql92Filter::properties`] in a message (each once) and asks
//! [`Sql92Filter::matches`]. Its own crate because it is a language with its own rules and
//! tests, needed by the broker only, and independent of how messages are stored (as
//! RocketMQ keeps it in its own `filter` module).
//!
//! ```
//! let filter = filter::Sql92Filter::compile("region = 'eu' AND (amount > 100 OR vip IS NOT NULL)").unwrap();
//! let lookup = |name: &str| match name {
//!     "region" => Some("eu"),
//!     "amount" => Some("250"),
//!     _ => None,
//! };
//! assert!(filter.matches_with(lookup));
//! assert!(filter::Sql92Filter::compile("amount >").is_err());
//! ```

mod eval;
mod expr;
mod java;
mod lexer;
mod parser;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// Deepest nesting of parentheses, prefixes and operators.
pub const MAX_NESTING: usize = 64;
/// Most terms (properties, literals, operators) in one expression; bounds the work per
/// message.
pub const MAX_TERMS: usize = 1000;
/// Most values in one `IN` list.
pub const MAX_IN_VALUES: usize = 1000;

/// Why an expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the SQL92 expression is empty")]
    Empty,
    #[error("the SQL92 expression is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("the SQL92 expression nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("the SQL92 expression has more than {max} terms")]
    TooManyTerms { max: usize },
    #[error("an IN list of the SQL92 expression has more than {max} values")]
    InListTooLong { max: usize },
    #[error("the SQL92 expression does not parse at column {column}: {reason}")]
    Syntax { column: usize, reason: String },
}

/// A compiled SQL92 expression.
#[derive(Debug, Clone)]
pub struct Sql92Filter {
    source: String,
    expr: expr::Expr,
    properties: Vec<String>,
}

impl Sql92Filter {
    /// Parses and checks `expression`.
    pub fn compile(expression: &str) -> Result<Sql92Filter, ParseError> {
        if expression.len() > MAX_EXPRESSION_BYTES {
            return Err(ParseError::TooLong {
                len: expression.len(),
                max: MAX_EXPRESSION_BYTES,
            });
        }
        let parsed = parser::parse(expression)?;
        Ok(Sql92Filter {
            source: expression.to_owned(),
            expr: parsed.expr,
            properties: parsed.properties,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.source
    }

    /// The property names the expression reads; [`Sql92Filter::matches`] takes their
    /// values in this order.
    pub fn properties(&self) -> &[String] {
        &self.properties
    }

    /// Whether a message matches, given the value of each of [`Sql92Filter::properties`]
    /// (`None` when the message lacks it). Only TRUE matches; NULL and evaluation errors
    /// do not.
    pub fn matches(&self, values: &[Option<&str>]) -> bool {
        eval::matches(&self.expr, values)
    }

    /// [`Sql92Filter::matches`] with each property looked up through `lookup`.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        let values: Vec<Option<&str>> = self.properties.iter().map(|p| lookup(p)).collect();
        self.matches(&values)
    }
}

#[cfg(test)]
mod tests;
