//! Evaluation of a compiled expression against one message's property values, with
//! RocketMQ's three-valued results: a comparison with a missing property is null, null
//! never matches, and a Java exception (a string that does not read as the number it is
//! compared with) makes the whole message not match.
//!
//! Cost: one visit per node (AND / OR stop early), string tests linear in the property's
//! length, `IN` lists hashed. Recursion is bounded by the parser's nesting limit.

use crate::expr::{Expr, TextTest};
use crate::java::{self, EvalError, Value};
use crate::parser::const_value;

type Outcome<'a> = Result<Value<'a>, EvalError>;

/// Whether the message whose property values (by slot) are `slots` matches.
pub(crate) fn matches(expr: &Expr, slots: &[Option<&str>]) -> bool {
    matches!(evaluate(expr, slots), Ok(Value::Bool(true)))
}

fn evaluate<'a>(expr: &'a Expr, slots: &[Option<&'a str>]) -> Outcome<'a> {
    match expr {
        Expr::Const(constant) => Ok(const_value(constant)),
        Expr::Property(slot) => Ok(property(slots, *slot)),
        Expr::Negate(inner) => Ok(match evaluate(inner, slots)? {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Long(l) => Value::Long(l.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        }),
        Expr::Not(inner) => Ok(match condition(evaluate(inner, slots)?)? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        }),
        Expr::BooleanCast(inner) => Ok(match evaluate(inner, slots)? {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Bool(false),
        }),
        Expr::And(operands) => {
            let mut unknown = false;
            for operand in operands {
                match condition(evaluate(operand, slots)?)? {
                    Some(false) => return Ok(Value::Bool(false)),
                    Some(true) => {}
                    None => unknown = true,
                }
            }
            Ok(if unknown {
                Value::Null
            } else {
                Value::Bool(true)
            })
        }
        Expr::Or(operands) => {
            let mut unknown = false;
            for operand in operands {
                match condition(evaluate(operand, slots)?)? {
                    Some(true) => return Ok(Value::Bool(true)),
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            Ok(if unknown {
                Value::Null
            } else {
                Value::Bool(false)
            })
        }
        Expr::Equal(left, right) => {
            let l = evaluate(left, slots)?;
            let r = evaluate(right, slots)?;
            Ok(match (l, r) {
                (Value::Null, Value::Null) => Value::Bool(true),
                (Value::Null, _) => Value::Null,
                (_, Value::Null) => Value::Bool(false),
                (l, r) if java::java_equals(l, r) => Value::Bool(true),
                (l, r) => Value::Bool(java::compare(l, r)?.is_eq()),
            })
        }
        Expr::Compare(ordering, left, right) => {
            let l = evaluate(left, slots)?;
            if l == Value::Null {
                return Ok(Value::Null);
            }
            let r = evaluate(right, slots)?;
            if r == Value::Null {
                return Ok(Value::Null);
            }
            let compared = match (l, r) {
                // Two strings are ordered as the numbers they spell, or not at all.
                (Value::Str(a), Value::Str(b)) => {
                    java::double_compare(java::parse_double(a)?, java::parse_double(b)?)
                }
                (l, r) => java::compare(l, r)?,
            };
            Ok(Value::Bool(ordering.holds(compared)))
        }
        Expr::Text {
            test,
            negated,
            operand,
            search,
        } => {
            if search.is_empty() {
                return Ok(Value::Bool(false));
            }
            let Value::Str(text) = evaluate(operand, slots)? else {
                return Ok(Value::Bool(false));
            };
            let found = match test {
                TextTest::Contains => text.contains(search.as_str()),
                TextTest::StartsWith => text.starts_with(search.as_str()),
                TextTest::EndsWith => text.ends_with(search.as_str()),
            };
            Ok(Value::Bool(found != *negated))
        }
        Expr::In {
            slot,
            negated,
            values,
        } => Ok(match property(slots, *slot) {
            Value::Str(text) => Value::Bool(values.contains(text) != *negated),
            _ => Value::Null,
        }),
    }
}

fn property<'a>(slots: &[Option<&'a str>], slot: usize) -> Value<'a> {
    match slots.get(slot).copied().flatten() {
        Some(text) => Value::Str(text),
        None => Value::Null,
    }
}

/// An operand of AND / OR / NOT: Java casts it to `Boolean` (null stays null; anything
/// else would be a ClassCastException, which the parser's checks rule out).
fn condition(value: Value) -> Result<Option<bool>, EvalError> {
    match value {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        _ => Err(EvalError),
    }
}
