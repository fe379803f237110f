//! Tokens of RocketMQ's selector grammar (`SelectorParser.jj`): case-insensitive keywords,
//! identifiers `[a-z_$][a-z0-9_$]*`, `'...'` strings with `''` for a quote, decimal literals
//! (`0` or no leading zero, optional `L`), floating-point literals, the operators
//! `= <> > >= < <= ( ) , + -`, white space and `--` / `/* */` comments.
//!
//! Longest match, as JavaCC's generated tokenizer does: `0123` is `0` then `123`, `1e` is
//! `1` then the identifier `e`, and a `--` comment needs a line end (without one, the two
//! dashes are minus signs).

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
    /// The digits of a decimal literal, without its `L`.
    Decimal(String),
    Float(String),
    /// A string literal's value (quotes removed, `''` turned into `'`).
    Str(String),
    Id(String),
    Eq,
    NotEq,
    Gt,
    Ge,
    Lt,
    Le,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
}

impl Token {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Not => "NOT".into(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            Token::Between => "BETWEEN".into(),
            Token::In => "IN".into(),
            Token::True => "TRUE".into(),
            Token::False => "FALSE".into(),
            Token::Null => "NULL".into(),
            Token::Is => "IS".into(),
            Token::Contains => "CONTAINS".into(),
            Token::StartsWith => "STARTSWITH".into(),
            Token::EndsWith => "ENDSWITH".into(),
            Token::Decimal(digits) => digits.clone(),
            Token::Float(text) => text.clone(),
            Token::Str(value) => format!("'{}'", value.replace('\'', "''")),
            Token::Id(name) => name.clone(),
            Token::Eq => "=".into(),
            Token::NotEq => "<>".into(),
            Token::Gt => ">".into(),
            Token::Ge => ">=".into(),
            Token::Lt => "<".into(),
            Token::Le => "<=".into(),
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::Comma => ",".into(),
            Token::Plus => "+".into(),
            Token::Minus => "-".into(),
        }
    }
}

/// A token and the column (1-based, in characters) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    pub column: usize,
}

/// Splits `text` into tokens. The caller bounds `text`'s length, so the token list is
/// bounded too.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}') {
            i += 1;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            if let Some(end) = chars[i + 2..].iter().position(|&c| c == '\n' || c == '\r') {
                i += 2 + end + 1;
                continue;
            }
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let Some(end) = find_block_comment_end(&chars, i + 2) else {
                return Err(syntax(column, "a /* comment is never closed"));
            };
            i = end;
            continue;
        }
        let (token, next) = match c {
            '\'' => string_literal(&chars, i)?,
            '0'..='9' | '.' => number(&chars, i)?,
            c if is_id_start(c) => {
                let end = i + chars[i..].iter().take_while(|&&c| is_id_part(c)).count();
                let word: String = chars[i..end].iter().collect();
                (keyword(&word).unwrap_or(Token::Id(word)), end)
            }
            '=' => (Token::Eq, i + 1),
            '<' => match chars.get(i + 1) {
                Some('>') => (Token::NotEq, i + 2),
                Some('=') => (Token::Le, i + 2),
                _ => (Token::Lt, i + 1),
            },
            '>' => match chars.get(i + 1) {
                Some('=') => (Token::Ge, i + 2),
                _ => (Token::Gt, i + 1),
            },
            '(' => (Token::LParen, i + 1),
            ')' => (Token::RParen, i + 1),
            ',' => (Token::Comma, i + 1),
            '+' => (Token::Plus, i + 1),
            '-' => (Token::Minus, i + 1),
            other => {
                return Err(syntax(
                    column,
                    format!("`{other}` is not part of the SQL92 filter grammar"),
                ))
            }
        };
        tokens.push(Spanned { token, column });
        i = next;
    }
    Ok(tokens)
}

fn syntax(column: usize, reason: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        column,
        reason: reason.into(),
    }
}

fn is_id_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_id_part(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn keyword(word: &str) -> Option<Token> {
    let upper = word.to_ascii_uppercase();
    Some(match upper.as_str() {
        "NOT" => Token::Not,
        "AND" => Token::And,
        "OR" => Token::Or,
        "BETWEEN" => Token::Between,
        "IN" => Token::In,
        "TRUE" => Token::True,
        "FALSE" => Token::False,
        "NULL" => Token::Null,
        "IS" => Token::Is,
        "CONTAINS" => Token::Contains,
        "STARTSWITH" => Token::StartsWith,
        "ENDSWITH" => Token::EndsWith,
        _ => return None,
    })
}

/// The index just past the `*/` closing a block comment whose body starts at `from`.
fn find_block_comment_end(chars: &[char], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < chars.len() {
        if chars[i] == '*' && chars[i + 1] == '/' {
            return Some(i + 2);
        }
        i += 1;
    }
    None
}

fn string_literal(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(syntax(start + 1, "a string literal is never closed")),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((Token::Str(value), i + 1)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// A decimal or floating-point literal starting at `start` (a digit or a `.`).
fn number(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let digits_from = |i: usize| chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int_digits = digits_from(start);
    let mut i = start + int_digits;
    let mut float = false;
    if chars.get(i) == Some(&'.') {
        let fraction = digits_from(i + 1);
        if int_digits == 0 && fraction == 0 {
            return Err(syntax(start + 1, "`.` is not a number"));
        }
        float = true;
        i += 1 + fraction;
    }
    if let Some(after_exponent) = exponent_end(chars, i) {
        if int_digits > 0 || float {
            float = true;
            i = after_exponent;
        }
    }
    if float {
        let text: String = chars[start..i].iter().collect();
        return Ok((Token::Float(text), i));
    }
    // A decimal literal has no leading zero: `0123` is `0` followed by `123`.
    if chars[start] == '0' {
        return Ok((Token::Decimal("0".into()), start + 1));
    }
    let digits: String = chars[start..i].iter().collect();
    if matches!(chars.get(i), Some('l' | 'L')) {
        i += 1;
    }
    Ok((Token::Decimal(digits), i))
}

/// Where an exponent (`E`, an optional sign, digits) starting at `i` ends, if one does.
fn exponent_end(chars: &[char], i: usize) -> Option<usize> {
    if !matches!(chars.get(i), Some('e' | 'E')) {
        return None;
    }
    let mut j = i + 1;
    if matches!(chars.get(j), Some('+' | '-')) {
        j += 1;
    }
    let digits = chars[j.min(chars.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (digits > 0).then_some(j + digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn keywords_ignore_case_and_longer_words_are_identifiers() {
        assert_eq!(
            tokens("not And oR between IN true FALSE null is Contains startswith ENDSWITH"),
            [
                Token::Not,
                Token::And,
                Token::Or,
                Token::Between,
                Token::In,
                Token::True,
                Token::False,
                Token::Null,
                Token::Is,
                Token::Contains,
                Token::StartsWith,
                Token::EndsWith
            ]
        );
        assert_eq!(
            tokens("notes TAGS a_1 $x"),
            [
                Token::Id("notes".into()),
                Token::Id("TAGS".into()),
                Token::Id("a_1".into()),
                Token::Id("$x".into())
            ]
        );
    }

    #[test]
    fn numbers_follow_the_javacc_literals() {
        assert_eq!(tokens("10L"), [Token::Decimal("10".into())]);
        assert_eq!(
            tokens("0123"),
            [Token::Decimal("0".into()), Token::Decimal("123".into())]
        );
        assert_eq!(tokens("1.5"), [Token::Float("1.5".into())]);
        assert_eq!(tokens("5."), [Token::Float("5.".into())]);
        assert_eq!(tokens(".5E-3"), [Token::Float(".5E-3".into())]);
        assert_eq!(tokens("5e10"), [Token::Float("5e10".into())]);
        assert_eq!(
            tokens("1e"),
            [Token::Decimal("1".into()), Token::Id("e".into())]
        );
        assert!(tokenize(".").is_err());
    }

    #[test]
    fn strings_operators_and_comments() {
        assert_eq!(
            tokens("'it''s' <> >= <= < > = ( ) , + -"),
            [
                Token::Str("it's".into()),
                Token::NotEq,
                Token::Ge,
                Token::Le,
                Token::Lt,
                Token::Gt,
                Token::Eq,
                Token::LParen,
                Token::RParen,
                Token::Comma,
                Token::Plus,
                Token::Minus
            ]
        );
        assert_eq!(
            tokens("a -- note\n/* block * */ b"),
            [Token::Id("a".into()), Token::Id("b".into())]
        );
        // No line end: the dashes are minus signs.
        assert_eq!(
            tokens("--a"),
            [Token::Minus, Token::Minus, Token::Id("a".into())]
        );
        assert!(tokenize("'open").is_err());
        assert!(tokenize("/* open").is_err());
        assert!(tokenize("a != 1").is_err());
        assert!(tokenize("a = \"x\"").is_err());
    }

    #[test]
    fn columns_count_characters() {
        let spanned = tokenize("é = 'ü' x").unwrap_err();
        assert!(spanned.to_string().contains("column 1"), "{spanned}");
        let ok = tokenize("'ü' x").unwrap();
        assert_eq!(ok[1].column, 5);
    }
}
