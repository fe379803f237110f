//! Recursive descent over RocketMQ's selector grammar, with the checks RocketMQ's
//! expression factories make while parsing (what may be compared with what, `IN` only on
//! a property, `BETWEEN` bounds in order, no `= NULL`), and this crate's limits on size,
//! nesting and `IN` lists.
//!
//! Precedence, loosest first: `OR`; `AND`; `=`, `<>`, `IS [NOT] NULL`; `>`, `>=`, `<`,
//! `<=`, `[NOT] BETWEEN`, `[NOT] IN`, `[NOT] CONTAINS|STARTSWITH|ENDSWITH`; the prefixes
//! `+`, `-`, `NOT`; literals, properties and parentheses. As in RocketMQ, `NOT` binds
//! tighter than a comparison: `NOT a = 'x'` is `(NOT a) = 'x'`; write `NOT (a = 'x')`.

use std::collections::HashMap;

use crate::expr::{Const, Expr, InList, Ordering, TextTest};
use crate::java;
use crate::lexer::{tokenize, Spanned, Token};
use crate::{ParseError, MAX_IN_VALUES, MAX_NESTING, MAX_TERMS};

/// A parsed expression and the property names its slots stand for.
pub(crate) struct Parsed {
    pub expr: Expr,
    pub properties: Vec<String>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ParseError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column: text.chars().count() + 1,
        slots: HashMap::new(),
        properties: Vec::new(),
        terms: 0,
        nesting: 0,
    };
    let top = parser.or_expression()?;
    if let Some(extra) = parser.peek_spanned() {
        return Err(ParseError::Syntax {
            column: extra.column,
            reason: format!(
                "unexpected `{}` after a complete expression",
                extra.token.describe()
            ),
        });
    }
    let top = parser.as_condition(top)?;
    Ok(Parsed {
        expr: top.expr,
        properties: parser.properties,
    })
}

/// An expression being built, with where it starts and how deep its tree is.
struct Node {
    expr: Expr,
    column: usize,
    depth: usize,
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    end_column: usize,
    slots: HashMap<String, usize>,
    properties: Vec<String>,
    terms: usize,
    nesting: usize,
}

impl Parser {
    // ---- tokens -----------------------------------------------------------------

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|s| &s.token)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead).map(|s| &s.token)
    }

    fn peek_spanned(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn column(&self) -> usize {
        self.peek_spanned().map_or(self.end_column, |s| s.column)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).map(|s| s.token.clone());
        self.pos += 1;
        token
    }

    fn eat(&mut self, wanted: &Token) -> bool {
        if self.peek() == Some(wanted) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, wanted: &Token, what: &str) -> Result<(), ParseError> {
        if self.eat(wanted) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// "expected WHAT, found X" at the current token.
    fn unexpected(&self, what: &str) -> ParseError {
        let found = match self.peek() {
            Some(token) => format!("`{}`", token.describe()),
            None => "the end of the expression".to_owned(),
        };
        ParseError::Syntax {
            column: self.column(),
            reason: format!("expected {what}, found {found}"),
        }
    }

    // ---- building nodes ---------------------------------------------------------

    fn node(
        &mut self,
        expr: Expr,
        column: usize,
        children_depth: usize,
    ) -> Result<Node, ParseError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(ParseError::TooManyTerms { max: MAX_TERMS });
        }
        let depth = children_depth + 1;
        if depth > MAX_NESTING {
            return Err(ParseError::TooDeep { max: MAX_NESTING });
        }
        Ok(Node {
            expr,
            column,
            depth,
        })
    }

    fn binary(
        &mut self,
        left: Node,
        right: Node,
        build: impl FnOnce(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Node, ParseError> {
        let depth = left.depth.max(right.depth);
        let column = left.column;
        self.node(
            build(Box::new(left.expr), Box::new(right.expr)),
            column,
            depth,
        )
    }

    fn unary(
        &mut self,
        inner: Node,
        column: usize,
        build: impl FnOnce(Box<Expr>) -> Expr,
    ) -> Result<Node, ParseError> {
        let depth = inner.depth;
        self.node(build(Box::new(inner.expr)), column, depth)
    }

    /// A copy of a subtree used twice (BETWEEN's value); it counts as terms again.
    fn duplicate(&mut self, node: &Node) -> Result<Node, ParseError> {
        self.terms += count_terms(&node.expr);
        if self.terms > MAX_TERMS {
            return Err(ParseError::TooManyTerms { max: MAX_TERMS });
        }
        Ok(Node {
            expr: node.expr.clone(),
            column: node.column,
            depth: node.depth,
        })
    }

    fn logic(&mut self, left: Node, right: Node, and: bool) -> Result<Node, ParseError> {
        let column = left.column;
        let left_depth = left.depth;
        let right_depth = right.depth;
        let (expr, depth) = match (left.expr, and) {
            (Expr::And(mut operands), true) => {
                operands.push(right.expr);
                (Expr::And(operands), left_depth.max(right_depth + 1))
            }
            (Expr::Or(mut operands), false) => {
                operands.push(right.expr);
                (Expr::Or(operands), left_depth.max(right_depth + 1))
            }
            (first, true) => (
                Expr::And(vec![first, right.expr]),
                left_depth.max(right_depth) + 1,
            ),
            (first, false) => (
                Expr::Or(vec![first, right.expr]),
                left_depth.max(right_depth) + 1,
            ),
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(ParseError::TooManyTerms { max: MAX_TERMS });
        }
        if depth > MAX_NESTING {
            return Err(ParseError::TooDeep { max: MAX_NESTING });
        }
        Ok(Node {
            expr,
            column,
            depth,
        })
    }

    fn slot(&mut self, name: String) -> usize {
        if let Some(&slot) = self.slots.get(&name) {
            return slot;
        }
        let slot = self.properties.len();
        self.slots.insert(name.clone(), slot);
        self.properties.push(name);
        slot
    }

    // ---- RocketMQ's checks ------------------------------------------------------

    /// Java's `asBooleanExpression`: a condition stays, a property is read as a boolean,
    /// anything else (a number, a string, a negation) is refused.
    fn as_condition(&mut self, node: Node) -> Result<Node, ParseError> {
        match node.expr {
            ref e if e.is_boolean() => Ok(node),
            Expr::Property(_) => {
                let column = node.column;
                self.unary(node, column, Expr::BooleanCast)
            }
            _ => Err(ParseError::Syntax {
                column: node.column,
                reason: "this is a value, not a condition (it cannot be TRUE or FALSE)".into(),
            }),
        }
    }

    /// Only numbers and properties may stand beside `>`, `>=`, `<`, `<=` (and BETWEEN).
    fn check_orderable(node: &Node, operator: &str) -> Result<(), ParseError> {
        let refused = match &node.expr {
            Expr::Const(Const::Int(_) | Const::Long(_) | Const::Double(_)) => false,
            Expr::Const(_) => true,
            other => other.is_boolean(),
        };
        if refused {
            return Err(ParseError::Syntax {
                column: node.column,
                reason: format!("only numbers and properties can be compared with {operator}"),
            });
        }
        Ok(())
    }

    /// `=` and `<>` refuse the NULL literal (use IS NULL) and a boolean literal compared
    /// with a non-boolean literal.
    fn check_equality(left: &Node, right: &Node) -> Result<(), ParseError> {
        for side in [left, right] {
            if side.expr == Expr::Const(Const::Null) {
                return Err(ParseError::Syntax {
                    column: side.column,
                    reason: "NULL cannot be compared with = or <>; use IS NULL or IS NOT NULL"
                        .into(),
                });
            }
        }
        if let (Expr::Const(l), Expr::Const(r)) = (&left.expr, &right.expr) {
            let boolean = |c: &Const| matches!(c, Const::Bool(_) | Const::Null);
            if boolean(l) && !boolean(r) {
                return Err(ParseError::Syntax {
                    column: left.column,
                    reason: "a boolean literal cannot be compared with a number or a string".into(),
                });
            }
        }
        Ok(())
    }

    // ---- grammar ----------------------------------------------------------------

    fn or_expression(&mut self) -> Result<Node, ParseError> {
        let mut left = self.and_expression()?;
        while self.eat(&Token::Or) {
            let right = self.and_expression()?;
            let left_condition = self.as_condition(left)?;
            let right_condition = self.as_condition(right)?;
            left = self.logic(left_condition, right_condition, false)?;
        }
        Ok(left)
    }

    fn and_expression(&mut self) -> Result<Node, ParseError> {
        let mut left = self.equality_expression()?;
        while self.eat(&Token::And) {
            let right = self.equality_expression()?;
            let left_condition = self.as_condition(left)?;
            let right_condition = self.as_condition(right)?;
            left = self.logic(left_condition, right_condition, true)?;
        }
        Ok(left)
    }

    fn equality_expression(&mut self) -> Result<Node, ParseError> {
        let mut left = self.comparison_expression()?;
        loop {
            let column = left.column;
            match self.peek() {
                Some(Token::Eq) => {
                    self.advance();
                    let right = self.comparison_expression()?;
                    Self::check_equality(&left, &right)?;
                    left = self.binary(left, right, Expr::Equal)?;
                }
                Some(Token::NotEq) => {
                    self.advance();
                    let right = self.comparison_expression()?;
                    Self::check_equality(&left, &right)?;
                    let equal = self.binary(left, right, Expr::Equal)?;
                    left = self.unary(equal, column, Expr::Not)?;
                }
                Some(Token::Is) => {
                    self.advance();
                    let negated = self.eat(&Token::Not);
                    self.expect(&Token::Null, "NULL after IS")?;
                    let null = self.node(Expr::Const(Const::Null), column, 0)?;
                    let equal = self.binary(left, null, Expr::Equal)?;
                    left = if negated {
                        self.unary(equal, column, Expr::Not)?
                    } else {
                        equal
                    };
                }
                _ => return Ok(left),
            }
        }
    }

    fn comparison_expression(&mut self) -> Result<Node, ParseError> {
        let mut left = self.unary_expression()?;
        loop {
            let negated = self.peek() == Some(&Token::Not);
            let operator = if negated {
                self.peek_at(1)
            } else {
                self.peek()
            };
            left = match operator.cloned() {
                Some(token @ (Token::Gt | Token::Ge | Token::Lt | Token::Le)) if !negated => {
                    self.advance();
                    let right = self.unary_expression()?;
                    let (ordering, symbol) = match token {
                        Token::Gt => (Ordering::Greater, ">"),
                        Token::Ge => (Ordering::GreaterOrEqual, ">="),
                        Token::Lt => (Ordering::Less, "<"),
                        _ => (Ordering::LessOrEqual, "<="),
                    };
                    Self::check_orderable(&left, symbol)?;
                    Self::check_orderable(&right, symbol)?;
                    self.binary(left, right, |l, r| Expr::Compare(ordering, l, r))?
                }
                Some(token @ (Token::Contains | Token::StartsWith | Token::EndsWith)) => {
                    self.pos += 1 + usize::from(negated);
                    let test = match token {
                        Token::Contains => TextTest::Contains,
                        Token::StartsWith => TextTest::StartsWith,
                        _ => TextTest::EndsWith,
                    };
                    let search = self.string_literal(&token)?;
                    let column = left.column;
                    self.unary(left, column, |operand| Expr::Text {
                        test,
                        negated,
                        operand,
                        search,
                    })?
                }
                Some(Token::Between) => {
                    self.pos += 1 + usize::from(negated);
                    self.between(left, negated)?
                }
                Some(Token::In) => {
                    self.pos += 1 + usize::from(negated);
                    self.in_list(left, negated)?
                }
                _ if negated => {
                    self.advance();
                    return Err(
                        self.unexpected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT")
                    );
                }
                _ => return Ok(left),
            };
        }
    }

    fn string_literal(&mut self, after: &Token) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::Str(value)) => {
                let value = value.clone();
                self.advance();
                Ok(value)
            }
            _ => Err(self.unexpected(&format!("a 'string' after {}", after.describe()))),
        }
    }

    fn between(&mut self, value: Node, negated: bool) -> Result<Node, ParseError> {
        let low = self.unary_expression()?;
        self.expect(&Token::And, "AND between the two bounds of BETWEEN")?;
        let high = self.unary_expression()?;
        if let (Expr::Const(l), Expr::Const(h)) = (&low.expr, &high.expr) {
            if !negated {
                let in_order = match (const_value(l), const_value(h)) {
                    (java::Value::Null, _) | (_, java::Value::Null) => {
                        return Err(ParseError::Syntax {
                            column: low.column,
                            reason: "BETWEEN's bounds cannot be NULL".into(),
                        })
                    }
                    (l, h) => java::compare(h, l).is_ok_and(|o| o.is_ge()),
                };
                if !in_order {
                    return Err(ParseError::Syntax {
                        column: low.column,
                        reason: "BETWEEN's first bound must not be greater than its second".into(),
                    });
                }
            }
        }
        let keyword = if negated { "NOT BETWEEN" } else { "BETWEEN" };
        for side in [&value, &low, &high] {
            Self::check_orderable(side, keyword)?;
        }
        let value_again = self.duplicate(&value)?;
        let (first, second) = if negated {
            (Ordering::Less, Ordering::Greater)
        } else {
            (Ordering::GreaterOrEqual, Ordering::LessOrEqual)
        };
        let low_test = self.binary(value, low, |v, b| Expr::Compare(first, v, b))?;
        let high_test = self.binary(value_again, high, |v, b| Expr::Compare(second, v, b))?;
        self.logic(low_test, high_test, !negated)
    }

    fn in_list(&mut self, left: Node, negated: bool) -> Result<Node, ParseError> {
        let Expr::Property(slot) = left.expr else {
            return Err(ParseError::Syntax {
                column: left.column,
                reason:
                    "IN needs a property on its left (write `p NOT IN (...)`, not `NOT p IN (...)`)"
                        .into(),
            });
        };
        self.expect(&Token::LParen, "`(` after IN")?;
        let mut values = Vec::new();
        loop {
            values.push(self.string_literal(&Token::In)?);
            if values.len() > MAX_IN_VALUES {
                return Err(ParseError::InListTooLong { max: MAX_IN_VALUES });
            }
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen, "`,` or `)` in the IN list")?;
        let depth = left.depth;
        self.node(
            Expr::In {
                slot,
                negated,
                values: InList::new(values),
            },
            left.column,
            depth,
        )
    }

    fn unary_expression(&mut self) -> Result<Node, ParseError> {
        let column = self.column();
        let prefix = match self.peek() {
            Some(Token::Plus) => Token::Plus,
            Some(Token::Minus) => Token::Minus,
            Some(Token::Not) => Token::Not,
            _ => return self.primary_expression(),
        };
        self.advance();
        self.nest()?;
        let inner = self.unary_expression();
        self.nesting -= 1;
        let inner = inner?;
        match prefix {
            Token::Plus => Ok(inner),
            Token::Minus => self.unary(inner, column, Expr::Negate),
            _ => {
                let condition = self.as_condition(inner)?;
                self.unary(condition, column, Expr::Not)
            }
        }
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ParseError::TooDeep { max: MAX_NESTING });
        }
        Ok(())
    }

    fn primary_expression(&mut self) -> Result<Node, ParseError> {
        let column = self.column();
        let literal = match self.peek().cloned() {
            Some(Token::LParen) => {
                self.advance();
                self.nest()?;
                let inner = self.or_expression();
                self.nesting -= 1;
                let inner = inner?;
                self.expect(&Token::RParen, "`)`")?;
                return Ok(inner);
            }
            Some(Token::Id(name)) => {
                self.advance();
                let slot = self.slot(name);
                return self.node(Expr::Property(slot), column, 0);
            }
            Some(Token::Str(value)) => Const::Str(value),
            Some(Token::Decimal(digits)) => decimal(&digits, column)?,
            Some(Token::Float(text)) => float(&text, column)?,
            Some(Token::True) => Const::Bool(true),
            Some(Token::False) => Const::Bool(false),
            Some(Token::Null) => Const::Null,
            _ => return Err(self.unexpected("a property, a literal or `(`")),
        };
        self.advance();
        self.node(Expr::Const(literal), column, 0)
    }
}

/// Java's `createFromDecimal`: within int it is an Integer, else a Long.
fn decimal(digits: &str, column: usize) -> Result<Const, ParseError> {
    let value: i64 = digits.parse().map_err(|_| ParseError::Syntax {
        column,
        reason: format!("{digits} does not fit a 64-bit integer"),
    })?;
    Ok(match i32::try_from(value) {
        Ok(int) => Const::Int(int),
        Err(_) => Const::Long(value),
    })
}

/// Java's `createFloat`, which refuses values beyond `Double.MAX_VALUE` and below
/// `Double.MIN_VALUE` (the smallest positive double) — so `0.0` too.
fn float(text: &str, column: usize) -> Result<Const, ParseError> {
    let value: f64 = text.parse().map_err(|_| ParseError::Syntax {
        column,
        reason: format!("{text} is not a number"),
    })?;
    if value.is_infinite() {
        return Err(ParseError::Syntax {
            column,
            reason: format!("{text} is greater than the largest double"),
        });
    }
    if value <= 0.0 {
        return Err(ParseError::Syntax {
            column,
            reason: format!(
                "{text} is below the smallest positive double; RocketMQ refuses a floating-point 0 (write 0)"
            ),
        });
    }
    Ok(Const::Double(value))
}

pub(crate) fn const_value(constant: &Const) -> java::Value<'_> {
    match constant {
        Const::Null => java::Value::Null,
        Const::Bool(b) => java::Value::Bool(*b),
        Const::Int(i) => java::Value::Int(*i),
        Const::Long(l) => java::Value::Long(*l),
        Const::Double(d) => java::Value::Double(*d),
        Const::Str(s) => java::Value::Str(s),
    }
}

fn count_terms(expr: &Expr) -> usize {
    1 + match expr {
        Expr::Const(_) | Expr::Property(_) | Expr::In { .. } => 0,
        Expr::Negate(e) | Expr::Not(e) | Expr::BooleanCast(e) => count_terms(e),
        Expr::Text { operand, .. } => count_terms(operand),
        Expr::And(es) | Expr::Or(es) => es.iter().map(count_terms).sum(),
        Expr::Equal(l, r) | Expr::Compare(_, l, r) => count_terms(l) + count_terms(r),
    }
}
