//! RocketMQ's results, case by case, the limits, and property tests.

use proptest::prelude::*;

use super::*;

fn matches(expression: &str, properties: &[(&str, &str)]) -> bool {
    let filter = Sql92Filter::compile(expression)
        .unwrap_or_else(|e| panic!("{expression:?} should compile: {e}"));
    filter.matches_with(|name| {
        properties
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    })
}

fn refused(expression: &str) -> ParseError {
    match Sql92Filter::compile(expression) {
        Ok(_) => panic!("{expression:?} should be refused"),
        Err(e) => e,
    }
}

#[test]
fn comparisons_read_string_properties_as_the_literal_they_meet() {
    let props = [
        ("a", "10"),
        ("s", "abc"),
        ("d", "2.5"),
        ("b", "true"),
        ("big", "3000000000"),
    ];
    for (expression, expected) in [
        ("a = 10", true),
        ("a = '10'", true),
        ("a <> 10", false),
        ("a > 9", true),
        ("a >= 10", true),
        ("a < 10", false),
        ("a <= 10.0001", true),
        ("a > -5", true),
        ("a = +10", true),
        ("d = 2.5", true),
        ("d > 2.0", true),
        // Integer.valueOf("2.5") throws: against an integer literal, "2.5" never matches.
        ("d > 2", false),
        ("b = TRUE", true),
        ("b = FALSE", false),
        ("s = 'abc'", true),
        ("s <> 'abd'", true),
        ("big = 3000000000", true),
        ("big > 2999999999L", true),
        // Two properties (two strings) are ordered as numbers.
        ("a > d", true),
        ("d < a", true),
    ] {
        assert_eq!(matches(expression, &props), expected, "{expression}");
    }
}

#[test]
fn a_missing_property_never_matches_a_comparison() {
    for expression in [
        "x = 'v'",
        "x <> 'v'",
        "x > 1",
        "x <= 1",
        "NOT (x = 'v')",
        "x BETWEEN 1 AND 2",
        "x NOT BETWEEN 1 AND 2",
        "x IN ('v')",
        "x NOT IN ('v')",
        "x CONTAINS 'v'",
        "x NOT CONTAINS 'v'",
        "x NOT STARTSWITH 'v'",
        "x IS NOT NULL",
        "x",
        "NOT x",
    ] {
        assert!(!matches(expression, &[("a", "1")]), "{expression}");
    }
    assert!(matches("x IS NULL", &[]));
    assert!(matches("x IS NULL OR x = 'v'", &[]));
    assert!(matches("x = 'v' OR a = '1'", &[("a", "1")]));
    // Unknown AND false is false, so NOT of it is true.
    assert!(matches("NOT (x = 'v' AND a = '2')", &[("a", "1")]));
}

#[test]
fn a_type_mismatch_makes_the_whole_message_not_match() {
    let props = [("s", "abc"), ("t", "yes"), ("f", "1.5"), ("n", "7")];
    // Integer.valueOf("abc") throws: the message does not match, whatever OR follows...
    assert!(!matches("s > 5", &props));
    assert!(!matches("s = 5", &props));
    assert!(!matches("s = 5 OR n = 7", &props));
    // ...unless an earlier operand already decided.
    assert!(matches("n = 7 OR s = 5", &props));
    assert!(
        !matches("f = 1", &props),
        "Integer.valueOf reads no decimal point"
    );
    assert!(matches("f = 1.5", &props));
    assert!(
        !matches("t = TRUE", &props),
        "Boolean.valueOf(\"yes\") is false"
    );
    assert!(!matches("s > n", &props), "'abc' is not a number");
}

#[test]
fn between_in_and_text_tests() {
    let props = [("n", "5"), ("TAGS", "TagB"), ("city", "Hangzhou")];
    assert!(matches("n BETWEEN 1 AND 5", &props));
    assert!(!matches("n BETWEEN 6 AND 9", &props));
    assert!(matches("n NOT BETWEEN 6 AND 9", &props));
    assert!(matches("n BETWEEN 4.5 AND 5", &props));
    assert!(matches("TAGS IN ('TagA', 'TagB')", &props));
    assert!(!matches("TAGS NOT IN ('TagA', 'TagB')", &props));
    assert!(matches(
        "TAGS IN ('a', 'b', 'c', 'd', 'e', 'f', 'TagB')",
        &props
    ));
    assert!(matches("city CONTAINS 'ngzh'", &props));
    assert!(matches("city STARTSWITH 'Hang'", &props));
    assert!(matches("city ENDSWITH 'zhou'", &props));
    assert!(matches("city NOT ENDSWITH 'Hang'", &props));
    assert!(
        !matches("city CONTAINS ''", &props),
        "an empty search never matches"
    );
    assert!(!matches("city NOT CONTAINS ''", &props));
}

#[test]
fn logic_precedence_and_literals() {
    let props = [("a", "1"), ("b", "2"), ("c", "3")];
    assert!(matches("a = 1 OR b = 9 AND c = 9", &props));
    assert!(!matches("(a = 1 OR b = 9) AND c = 9", &props));
    assert!(matches("TRUE", &[]));
    assert!(!matches("FALSE", &[]));
    assert!(!matches("NULL", &[]));
    assert!(matches("NOT FALSE", &[]));
    // NOT binds tighter than `=`: (NOT a) = 'x' is never true.
    assert!(!matches("NOT a = 'x'", &[("a", "y")]));
    assert!(matches("NOT (a = 'x')", &[("a", "y")]));
    assert!(matches(
        "a = 1 and B = 2 Or c Is Null",
        &[("a", "1"), ("B", "2")]
    ));
    assert!(matches(
        "a = 1 -- the first\n AND /* the second */ b = 2",
        &props
    ));
    assert!(matches("s = 'it''s'", &[("s", "it's")]));
}

#[test]
fn expressions_rocketmq_refuses_are_refused() {
    for bad in [
        "a =",
        "a = NULL",
        "NULL <> a",
        "'x' > 1",
        "a > 'x'",
        "a > TRUE",
        "(a = 1) > 2",
        "TRUE = 1",
        "1",
        "'text'",
        "-a",
        "a IN (1, 2)",
        "a IN ()",
        "NOT a IN ('x')",
        "a NOT b",
        "a BETWEEN 3 AND 1",
        "a BETWEEN 'x' AND 'y'",
        "a BETWEEN NULL AND 1",
        "a > 0.0",
        "a > 1e999",
        "a = 99999999999999999999",
        "a CONTAINS b",
        "a = 'open",
        "a == 1",
        "a != 1",
        "(a = 1",
        "a = 1)",
        "a = 1 b = 2",
        "",
        "  -- only a comment\n",
    ] {
        let error = refused(bad);
        assert!(!error.to_string().is_empty(), "{bad}");
    }
    assert_eq!(refused(""), ParseError::Empty);
    match refused("a = 1 AMD b = 2") {
        ParseError::Syntax { column, reason } => {
            assert_eq!(column, 7);
            assert!(reason.contains("AMD"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pathological_expressions_are_refused_by_the_limits() {
    let deep = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(refused(&deep), ParseError::TooDeep { max: MAX_NESTING });
    let nots = format!("{}a", "NOT ".repeat(2_000));
    assert_eq!(refused(&nots), ParseError::TooDeep { max: MAX_NESTING });
    let minus = format!("{}a > 1", "-".repeat(5_000));
    assert_eq!(refused(&minus), ParseError::TooDeep { max: MAX_NESTING });
    let chain = format!("a{}", " = a".repeat(100));
    assert_eq!(refused(&chain), ParseError::TooDeep { max: MAX_NESTING });
    let huge_in = format!(
        "a IN ({})",
        (0..=MAX_IN_VALUES)
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        refused(&huge_in),
        ParseError::InListTooLong { max: MAX_IN_VALUES }
    );
    let many_terms = vec!["a = 'x'"; 400].join(" OR ");
    assert_eq!(
        refused(&many_terms),
        ParseError::TooManyTerms { max: MAX_TERMS }
    );
    let too_long = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_BYTES));
    assert!(matches!(refused(&too_long), ParseError::TooLong { .. }));

    // A long AND chain within the limits stays shallow and evaluates.
    let long_and = vec!["a = 'x'"; 200].join(" AND ");
    assert!(matches(&long_and, &[("a", "x")]));
    let wide_in = format!(
        "a IN ({})",
        (0..MAX_IN_VALUES)
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(matches(&wide_in, &[("a", "999")]));
    let nested = format!("{}a = 1{}", "(".repeat(60), ")".repeat(60));
    assert!(matches(&nested, &[("a", "1")]));
}

#[test]
fn properties_are_listed_once_in_first_use_order() {
    let filter = Sql92Filter::compile("b > 1 AND a = 'x' OR b < 9 AND TAGS IS NOT NULL").unwrap();
    assert_eq!(filter.properties(), ["b", "a", "TAGS"]);
    assert!(filter.matches(&[Some("5"), Some("x"), None]));
    assert!(!filter.matches(&[]), "missing values are absent properties");
}

// ---- property tests ---------------------------------------------------------------

/// A condition over properties p0..p2 and a reference answer in three-valued logic.
#[derive(Debug, Clone)]
enum Model {
    Eq(usize, &'static str),
    IsNull(usize),
    In(usize, Vec<&'static str>),
    Not(Box<Model>),
    And(Box<Model>, Box<Model>),
    Or(Box<Model>, Box<Model>),
}

const VALUES: [&str; 3] = ["x", "y", "z"];

impl Model {
    fn text(&self) -> String {
        match self {
            Model::Eq(p, v) => format!("p{p} = '{v}'"),
            Model::IsNull(p) => format!("p{p} IS NULL"),
            Model::In(p, vs) => format!(
                "p{p} IN ({})",
                vs.iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Model::Not(m) => format!("NOT ({})", m.text()),
            Model::And(a, b) => format!("({}) AND ({})", a.text(), b.text()),
            Model::Or(a, b) => format!("({}) OR ({})", a.text(), b.text()),
        }
    }

    fn eval(&self, props: &[Option<&str>; 3]) -> Option<bool> {
        match self {
            Model::Eq(p, v) => props[*p].map(|actual| actual == *v),
            Model::IsNull(p) => Some(props[*p].is_none()),
            Model::In(p, vs) => props[*p].map(|actual| vs.contains(&actual)),
            Model::Not(m) => m.eval(props).map(|b| !b),
            Model::And(a, b) => match (a.eval(props), b.eval(props)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Model::Or(a, b) => match (a.eval(props), b.eval(props)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
        }
    }
}

fn model() -> impl Strategy<Value = Model> {
    let leaf = prop_oneof![
        (0..3usize, 0..3usize).prop_map(|(p, v)| Model::Eq(p, VALUES[v])),
        (0..3usize).prop_map(Model::IsNull),
        (0..3usize, proptest::collection::vec(0..3usize, 1..4))
            .prop_map(|(p, vs)| Model::In(p, vs.into_iter().map(|v| VALUES[v]).collect())),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|m| Model::Not(Box::new(m))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Model::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Model::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn property_values() -> impl Strategy<Value = [Option<&'static str>; 3]> {
    let one = proptest::option::of((0..3usize).prop_map(|v| VALUES[v]));
    [one.clone(), one.clone(), one]
}

proptest! {
    #[test]
    fn evaluation_agrees_with_three_valued_logic(model in model(), props in property_values()) {
        let filter = Sql92Filter::compile(&model.text()).unwrap();
        let matched = filter.matches_with(|name| {
            let slot: usize = name.strip_prefix('p')?.parse().ok()?;
            props[slot]
        });
        prop_assert_eq!(matched, model.eval(&props) == Some(true), "{}", model.text());
    }

    #[test]
    fn any_input_is_parsed_or_refused_without_a_panic(
        text in "[a-cA-C0-9 '()=<>.,+\\-*/_\\n]{0,120}|(NOT |AND |OR |IN |BETWEEN |IS |NULL |TRUE |a |1 |'x' |\\( |\\) |= |> |, )*"
    ) {
        if let Ok(filter) = Sql92Filter::compile(&text) {
            let _ = filter.matches_with(|_| Some("1"));
            let _ = filter.matches_with(|_| None);
        }
    }
}
