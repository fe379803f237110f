//! A consumer's SQL92 subscription expression: compiled once per subscription, then
//! evaluated per message. Any text gives a filter or a parse error, never a panic or a deep
//! recursion; a compiled filter evaluates against any property values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the property values; the rest is the expression.
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let expression = String::from_utf8_lossy(text);
    if let Ok(filter) = filter::Sql92Filter::compile(&expression) {
        let samples = [
            "1",
            "-2.5",
            "true",
            "TagA",
            "",
            "9223372036854775808",
            "NaN",
        ];
        let values: Vec<Option<&str>> = (0..filter.properties().len())
            .map(|i| {
                let choice = (pick as usize + i) % (samples.len() + 1);
                samples.get(choice).copied()
            })
            .collect();
        let _ = filter.matches(&values);
    }
});
