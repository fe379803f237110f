//! The values an expression computes and Java's rules for comparing them, as RocketMQ's
//! `ComparisonExpression` applies them (with string conversion on, as its parser always
//! turns it on): numbers of different types widen, a string met by a number or a boolean
//! is read as one (`Integer.valueOf`, `Long.valueOf`, `Double.valueOf`,
//! `Boolean.valueOf`), and a string that does not read as that number is an error, which
//! makes the whole message not match.

use std::cmp::Ordering;

/// A computed value; strings borrow from the expression or from the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// A Java exception during evaluation: the message does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EvalError;

/// Java's `a.equals(b)`: same type and same value (doubles by bits, as `Double.equals`).
pub(crate) fn java_equals(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Long(x), Value::Long(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => canonical_bits(x) == canonical_bits(y),
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

/// `Double.doubleToLongBits`: every NaN is the same NaN.
fn canonical_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// RocketMQ's `__compare` of two non-null values: widen or convert, then `compareTo`.
/// Types with no conversion compare as "less" (Java returns -1).
pub(crate) fn compare(left: Value, right: Value) -> Result<Ordering, EvalError> {
    use Value::*;
    Ok(match (left, right) {
        (Bool(x), Bool(y)) => x.cmp(&y),
        (Int(x), Int(y)) => x.cmp(&y),
        (Long(x), Long(y)) => x.cmp(&y),
        (Double(x), Double(y)) => double_compare(x, y),
        (Str(x), Str(y)) => utf16_compare(x, y),
        // Java casts the boolean to String here and fails.
        (Bool(_), Str(_)) => return Err(EvalError),
        (Int(x), Long(y)) => i64::from(x).cmp(&y),
        (Int(x), Double(y)) => double_compare(f64::from(x), y),
        (Int(x), Str(y)) => x.cmp(&parse_int(y)?),
        (Long(x), Int(y)) => x.cmp(&i64::from(y)),
        (Long(x), Double(y)) => double_compare(x as f64, y),
        (Long(x), Str(y)) => x.cmp(&parse_long(y)?),
        (Double(x), Int(y)) => double_compare(x, f64::from(y)),
        (Double(x), Long(y)) => double_compare(x, y as f64),
        (Double(x), Str(y)) => double_compare(x, parse_double(y)?),
        (Str(x), Bool(y)) => parse_boolean(x).cmp(&y),
        (Str(x), Int(y)) => parse_int(x)?.cmp(&y),
        (Str(x), Long(y)) => parse_long(x)?.cmp(&y),
        (Str(x), Double(y)) => double_compare(parse_double(x)?, y),
        (Null, _) | (_, Null) => return Err(EvalError),
        _ => Ordering::Less,
    })
}

/// `Double.compare`: -0.0 before 0.0, NaN after everything and equal to itself.
pub(crate) fn double_compare(x: f64, y: f64) -> Ordering {
    if x < y {
        Ordering::Less
    } else if x > y {
        Ordering::Greater
    } else {
        // Equal or unordered: Java compares the (NaN-canonical) bits as signed longs.
        (canonical_bits(x) as i64).cmp(&(canonical_bits(y) as i64))
    }
}

/// `String.compareTo`: by UTF-16 code units.
fn utf16_compare(x: &str, y: &str) -> Ordering {
    x.encode_utf16().cmp(y.encode_utf16())
}

/// `Integer.valueOf`: an optional sign and decimal digits.
pub(crate) fn parse_int(text: &str) -> Result<i32, EvalError> {
    if !is_java_integer(text) {
        return Err(EvalError);
    }
    text.parse().map_err(|_| EvalError)
}

/// `Long.valueOf`.
pub(crate) fn parse_long(text: &str) -> Result<i64, EvalError> {
    if !is_java_integer(text) {
        return Err(EvalError);
    }
    text.parse().map_err(|_| EvalError)
}

fn is_java_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `Double.valueOf`: surrounding white space (anything up to U+0020) is ignored, a `d`,
/// `D`, `f` or `F` may end the number, and `NaN` / `Infinity` are spelled as Java
/// spells them. (Java's hexadecimal floating-point form is not read.)
pub(crate) fn parse_double(text: &str) -> Result<f64, EvalError> {
    let trimmed = text.trim_matches(|c: char| c <= ' ');
    let (sign, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    match unsigned {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => return Ok(sign * f64::INFINITY),
        _ => {}
    }
    let number = unsigned
        .strip_suffix(['d', 'D', 'f', 'F'])
        .unwrap_or(unsigned);
    let well_formed = !number.is_empty()
        && number.bytes().any(|b| b.is_ascii_digit())
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !well_formed {
        return Err(EvalError);
    }
    number
        .parse::<f64>()
        .map(|value| sign * value)
        .map_err(|_| EvalError)
}

/// `Boolean.valueOf`: true exactly for `true` in any case.
pub(crate) fn parse_boolean(text: &str) -> bool {
    text.eq_ignore_ascii_case("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_widen_and_strings_are_read_as_the_other_side() {
        assert_eq!(compare(Value::Int(3), Value::Long(3)), Ok(Ordering::Equal));
        assert_eq!(
            compare(Value::Long(3), Value::Double(3.5)),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Value::Str("10"), Value::Int(9)),
            Ok(Ordering::Greater)
        );
        assert_eq!(
            compare(Value::Str(" 2.5 "), Value::Double(2.5)),
            Ok(Ordering::Equal)
        );
        assert_eq!(
            compare(Value::Str("TRUE"), Value::Bool(true)),
            Ok(Ordering::Equal)
        );
        assert_eq!(compare(Value::Str("abc"), Value::Int(1)), Err(EvalError));
        // Integer.valueOf does not read a decimal point or a value beyond int.
        assert_eq!(compare(Value::Str("1.0"), Value::Int(1)), Err(EvalError));
        assert_eq!(
            compare(Value::Str("3000000000"), Value::Int(1)),
            Err(EvalError)
        );
        assert_eq!(
            compare(Value::Str("3000000000"), Value::Long(1)),
            Ok(Ordering::Greater)
        );
        assert_eq!(
            compare(Value::Bool(true), Value::Str("true")),
            Err(EvalError)
        );
        // No conversion between a boolean and a number: Java answers "less".
        assert_eq!(
            compare(Value::Int(1), Value::Bool(true)),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Value::Bool(true), Value::Int(1)),
            Ok(Ordering::Less)
        );
    }

    #[test]
    fn java_double_parsing() {
        assert_eq!(parse_double("1.5d"), Ok(1.5));
        assert_eq!(parse_double("-2E3"), Ok(-2000.0));
        assert_eq!(parse_double("\t7 "), Ok(7.0));
        assert_eq!(parse_double("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_double("NaN").unwrap().is_nan());
        for bad in ["", "inf", "nan", "1,5", "0x10", "e5", ".", "1.5dd"] {
            assert_eq!(parse_double(bad), Err(EvalError), "{bad:?}");
        }
    }

    #[test]
    fn java_integer_parsing() {
        assert_eq!(parse_int("+12"), Ok(12));
        assert_eq!(parse_int("-2147483648"), Ok(i32::MIN));
        for bad in ["", "-", " 1", "1 ", "1.0", "2147483648", "1L"] {
            assert_eq!(parse_int(bad), Err(EvalError), "{bad:?}");
        }
        assert_eq!(parse_long("9223372036854775807"), Ok(i64::MAX));
    }

    #[test]
    fn double_order_is_javas() {
        assert_eq!(double_compare(-0.0, 0.0), Ordering::Less);
        assert_eq!(double_compare(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(double_compare(f64::NAN, f64::NAN), Ordering::Equal);
        assert_eq!(double_compare(1.0, 2.0), Ordering::Less);
        assert!(java_equals(
            Value::Double(f64::NAN),
            Value::Double(f64::NAN)
        ));
        assert!(!java_equals(Value::Double(0.0), Value::Double(-0.0)));
        assert!(!java_equals(Value::Int(1), Value::Long(1)));
    }
}
