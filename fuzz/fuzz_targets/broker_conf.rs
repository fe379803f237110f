//! An operator's broker.conf: any text gives a configuration or a clear error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let settings = conf::parse(&text);
    let mut config = broker::config::BrokerConfig::default();
    let _ = config.apply_all(&settings);
});
