//! The compiled form of an expression: a tree whose properties are slots (indexes into
//! the values a caller looks up once per message), with AND / OR chains flattened so a
//! long chain does not make the tree deep.

use std::collections::HashSet;

/// A literal as the parser typed it: decimal literals within `i32` are Java `Integer`s,
/// larger ones `Long`s; floating-point literals are `Double`s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Const {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(String),
}

/// `>`, `>=`, `<`, `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ordering {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Ordering {
    pub(crate) fn holds(self, compared: std::cmp::Ordering) -> bool {
        match self {
            Ordering::Greater => compared.is_gt(),
            Ordering::GreaterOrEqual => compared.is_ge(),
            Ordering::Less => compared.is_lt(),
            Ordering::LessOrEqual => compared.is_le(),
        }
    }
}

/// `CONTAINS`, `STARTSWITH`, `ENDSWITH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextTest {
    Contains,
    StartsWith,
    EndsWith,
}

/// An `IN` list: a handful of values are compared one by one, more are hashed (as Java
/// switches to a `HashSet` at 5).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InList {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl InList {
    pub(crate) fn new(values: Vec<String>) -> InList {
        if values.len() < 5 {
            InList::Few(values)
        } else {
            InList::Many(values.into_iter().collect())
        }
    }

    pub(crate) fn contains(&self, value: &str) -> bool {
        match self {
            InList::Few(values) => values.iter().any(|v| v == value),
            InList::Many(values) => values.contains(value),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Const(Const),
    /// A message property, by slot.
    Property(usize),
    /// Unary minus: numbers negate, anything else is null.
    Negate(Box<Expr>),
    /// Three-valued NOT.
    Not(Box<Expr>),
    /// A property where a boolean is wanted: null when absent, else false (a property
    /// value is a string, never a boolean).
    BooleanCast(Box<Expr>),
    /// Stops at the first FALSE; null if any operand was null; else TRUE.
    And(Vec<Expr>),
    /// Stops at the first TRUE; null if any operand was null; else FALSE.
    Or(Vec<Expr>),
    /// `=` (and `IS NULL`, which compares with the NULL literal).
    Equal(Box<Expr>, Box<Expr>),
    Compare(Ordering, Box<Expr>, Box<Expr>),
    Text {
        test: TextTest,
        negated: bool,
        operand: Box<Expr>,
        search: String,
    },
    In {
        slot: usize,
        negated: bool,
        values: InList,
    },
}

impl Expr {
    /// Whether Java would see a `BooleanExpression` (usable under AND / OR / NOT, and not
    /// as an operand of `>`).
    pub(crate) fn is_boolean(&self) -> bool {
        match self {
            Expr::Const(c) => matches!(c, Const::Bool(_) | Const::Null),
            Expr::Property(_) | Expr::Negate(_) => false,
            Expr::Not(_)
            | Expr::BooleanCast(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Equal(..)
            | Expr::Compare(..)
            | Expr::Text { .. }
            | Expr::In { .. } => true,
        }
    }
}
