//! Message bytes: a stored record (what a follower or a recovering store reads back), a
//! pull response's records, a producer's batch body, a properties string, an offset msgId.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = message::MessageView::parse(data) {
        let _ = view.dispatch_info();
        let _ = view.body();
        let _ = view.uniq_key();
    }
    for record in message::decode_all(data).into_iter().flatten() {
        let _ = record.queue_offset();
    }
    if let Ok(items) = message::decode_batch(data, 1024) {
        for item in items {
            let _ = item;
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = message::properties::decode(&text);
    let _ = message::decode_offset_msg_id(&text);
});
