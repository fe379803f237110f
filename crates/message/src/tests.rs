//! Record encode/decode round trips, golden bytes and corruption handling.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::properties::{self, keys};
use super::record::{self, field, MessageDraft};
use super::sysflag::message as sysflag;
use super::view::{peek_total_size, DecodeError, MessageIter, MessageView};

fn draft<'a>(topic: &'a str, body: &'a [u8], props: &'a str) -> MessageDraft<'a> {
    MessageDraft {
        topic,
        body,
        flag: 7,
        properties: props,
        queue_id: 3,
        sys_flag: sysflag::COMPRESSED,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: "192.168.0.2:54321".parse().unwrap(),
        store_host: "10.0.0.1:10911".parse().unwrap(),
        reconsume_times: 2,
        prepared_transaction_offset: 0,
        queue_offset: 0,
        physical_offset: 0,
        store_timestamp_ms: 0,
    }
}

const PROPS: &str =
    "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}C0A8010A30390000000000000001\u{2}";

#[test]
fn golden_v1_ipv4_layout() {
    let body = b"hello";
    let bytes = record::encode(&draft("T", body, "A\u{1}b\u{2}")).unwrap();
    // 91 + N + T + P for V1/IPv4.
    assert_eq!(bytes.len(), 91 + 5 + 1 + 4);
    let expected_head: Vec<u8> = [
        &(bytes.len() as i32).to_be_bytes()[..],
        &[0xDA, 0xA3, 0x20, 0xA7],
        &record::body_crc(body).to_be_bytes(),
        &3i32.to_be_bytes(),
        &7i32.to_be_bytes(),
        &0i64.to_be_bytes(),
        &0i64.to_be_bytes(),
        &1i32.to_be_bytes(),
        &1_700_000_000_000i64.to_be_bytes(),
        &[192, 168, 0, 2],
        &54321i32.to_be_bytes(),
        &0i64.to_be_bytes(),
        &[10, 0, 0, 1],
        &10911i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        &0i64.to_be_bytes(),
        &5i32.to_be_bytes(),
        b"hello",
        &[1],
        b"T",
        &4i16.to_be_bytes(),
        b"A\x01b\x02",
    ]
    .concat();
    assert_eq!(bytes, expected_head);
    // zlib CRC32("hello") = 0x3610A686, already below 2^31.
    assert_eq!(record::body_crc(body), 0x3610_A686);
    // CRC32("a") = 0xE8B7BE43 loses its top bit.
    assert_eq!(record::body_crc(b"a"), 0x68B7_BE43);
}

#[test]
fn round_trip_all_fields_and_accessors() {
    let mut d = draft("TopicTest", b"payload", PROPS);
    d.queue_offset = 42;
    d.physical_offset = 4096;
    d.store_timestamp_ms = 1_700_000_000_123;
    d.prepared_transaction_offset = 77;
    d.sys_flag = sysflag::TRANSACTION_COMMIT_TYPE;
    let bytes = record::encode(&d).unwrap();
    let view = MessageView::parse(&bytes).unwrap();
    assert_eq!(view.total_size(), bytes.len());
    assert_eq!(view.magic(), record::MAGIC_V1);
    assert!(view.body_crc_matches());
    assert_eq!(view.topic(), "TopicTest");
    assert_eq!(view.body(), b"payload");
    assert_eq!(view.flag(), 7);
    assert_eq!(view.queue_id(), 3);
    assert_eq!(view.queue_offset(), 42);
    assert_eq!(view.physical_offset(), 4096);
    assert_eq!(view.sys_flag(), sysflag::TRANSACTION_COMMIT_TYPE);
    assert_eq!(view.transaction_type(), sysflag::TRANSACTION_COMMIT_TYPE);
    assert_eq!(view.born_timestamp_ms(), 1_700_000_000_000);
    assert_eq!(view.born_host(), d.born_host);
    assert_eq!(view.store_timestamp_ms(), 1_700_000_000_123);
    assert_eq!(view.store_host(), d.store_host);
    assert_eq!(view.reconsume_times(), 2);
    assert_eq!(view.prepared_transaction_offset(), 77);
    assert_eq!(view.tags(), Some("TagA"));
    assert_eq!(view.keys(), Some("k1 k2"));
    assert_eq!(view.uniq_key(), Some("C0A8010A30390000000000000001"));
    assert_eq!(view.tags_code(), 2_598_919);
    assert_eq!(view.offset_msg_id(), "0A00000100002A9F0000000000001000");
    assert_eq!(view.properties_map().len(), 3);

    let info = view.dispatch_info();
    assert_eq!(info.topic, "TopicTest");
    assert_eq!(
        (info.queue_id, info.queue_offset, info.physical_offset),
        (3, 42, 4096)
    );
    assert_eq!(info.total_size, bytes.len());
    assert_eq!(info.tags_code, 2_598_919);
    assert_eq!(info.key_list().collect::<Vec<_>>(), ["k1", "k2"]);
    assert!(info.is_dispatchable());

    let owned = view.to_owned_message();
    assert_eq!(owned.tags(), Some("TagA"));
    assert_eq!(owned.body, b"payload");
}

#[test]
fn patching_fixed_fields_in_place() {
    let mut bytes = record::encode(&draft("T", b"x", "")).unwrap();
    record::patch_queue_offset(&mut bytes, 9).unwrap();
    record::patch_physical_offset(&mut bytes, 123_456).unwrap();
    record::patch_store_timestamp(&mut bytes, 555).unwrap();
    assert_eq!(field::QUEUE_OFFSET, 20);
    assert_eq!(field::PHYSICAL_OFFSET, 28);
    assert_eq!(field::STORE_TIMESTAMP, 56);
    let view = MessageView::parse(&bytes).unwrap();
    assert_eq!(
        (
            view.queue_offset(),
            view.physical_offset(),
            view.store_timestamp_ms()
        ),
        (9, 123_456, 555)
    );
    assert!(record::patch_store_timestamp(&mut bytes[..40], 1).is_err());
    assert!(record::patch_queue_offset(&mut bytes[..27], 1).is_err());
}

#[test]
fn ipv6_hosts_set_flags_and_shift_fields() {
    let mut d = draft("T", b"body", PROPS);
    d.born_host = "[2001:db8::2]:1234".parse().unwrap();
    d.store_host = "[::1]:10911".parse().unwrap();
    let mut bytes = record::encode(&d).unwrap();
    assert_eq!(bytes.len(), 91 + 24 + 4 + 1 + PROPS.len());
    let encoded_flag = i32::from_be_bytes(bytes[36..40].try_into().unwrap());
    assert_eq!(
        encoded_flag,
        sysflag::COMPRESSED | sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6
    );
    assert_eq!(record::store_timestamp_offset(encoded_flag), 68);
    record::patch_store_timestamp(&mut bytes, 99).unwrap();
    let view = MessageView::parse(&bytes).unwrap();
    assert_eq!(view.born_host(), d.born_host);
    assert_eq!(view.store_host(), d.store_host);
    assert_eq!(view.store_timestamp_ms(), 99);
    assert_eq!(view.offset_msg_id().len(), 56);

    // An IPv4 draft clears stale IPv6 bits.
    let mut v4 = draft("T", b"", "");
    v4.sys_flag = sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6;
    let view_bytes = record::encode(&v4).unwrap();
    assert_eq!(MessageView::parse(&view_bytes).unwrap().sys_flag(), 0);
}

#[test]
fn long_topics_use_v2_magic() {
    let topic = "t".repeat(200);
    let bytes = record::encode(&draft(&topic, b"b", "")).unwrap();
    let view = MessageView::parse(&bytes).unwrap();
    assert_eq!(view.magic(), record::MAGIC_V2);
    assert_eq!(view.topic(), topic);
    let topic127 = "t".repeat(127);
    let bytes = record::encode(&draft(&topic127, b"b", "")).unwrap();
    assert_eq!(
        MessageView::parse(&bytes).unwrap().magic(),
        record::MAGIC_V1
    );
}

#[test]
fn oversized_fields_are_rejected_by_the_encoder() {
    let props = "p".repeat(properties::MAX_PROPERTIES_LEN + 1);
    assert!(matches!(
        record::encode(&draft("T", b"", &props)),
        Err(record::EncodeError::PropertiesTooLong(_))
    ));
    let topic = "t".repeat(record::MAX_TOPIC_LEN_V2 + 1);
    assert!(matches!(
        record::encode(&draft(&topic, b"", "")),
        Err(record::EncodeError::TopicTooLong(_))
    ));
}

fn two_records() -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    let first = record::encode_into(&draft("A", b"one", PROPS), &mut body).unwrap();
    record::encode_into(&draft("B", b"two", ""), &mut body).unwrap();
    (body, first.total_size)
}

#[test]
fn iterates_a_concatenated_pull_body() {
    let (body, _) = two_records();
    let topics: Vec<_> = MessageIter::new(&body)
        .map(|m| m.unwrap().topic())
        .collect();
    assert_eq!(topics, ["A", "B"]);
    assert_eq!(MessageIter::new(&[]).count(), 0);
}

#[test]
fn every_truncation_is_an_error() {
    let (body, first_len) = two_records();
    for cut in 0..body.len() {
        let results: Vec<_> = MessageIter::new(&body[..cut]).collect();
        let complete = results.iter().filter(|r| r.is_ok()).count();
        let expected_complete = usize::from(cut >= first_len);
        assert_eq!(complete, expected_complete, "cut at {cut}");
        if cut != 0 && cut != first_len {
            assert!(
                results.last().unwrap().is_err(),
                "cut at {cut} must report an error"
            );
        }
    }
}

#[test]
fn corrupted_lengths_and_magic_are_errors() {
    let good = record::encode(&draft("Topic", b"body", PROPS)).unwrap();
    let body_len_at = 84;
    let topic_len_at = 88 + 4;

    let mut bad = good.clone();
    bad[4..8].copy_from_slice(&0x1234_5678i32.to_be_bytes());
    assert_eq!(
        MessageView::parse(&bad),
        Err(DecodeError::BadMagic(0x1234_5678))
    );

    let mut bad = good.clone();
    bad[0..4].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(MessageView::parse(&bad), Err(DecodeError::BadTotalSize(-1)));

    let mut bad = good.clone();
    bad[0..4].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(MessageView::parse(&bad), Err(DecodeError::BadTotalSize(10)));

    let mut bad = good.clone();
    bad[body_len_at..body_len_at + 4].copy_from_slice(&(-4i32).to_be_bytes());
    assert!(matches!(
        MessageView::parse(&bad),
        Err(DecodeError::NegativeLength { .. })
    ));

    let mut bad = good.clone();
    bad[body_len_at..body_len_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        MessageView::parse(&bad),
        Err(DecodeError::Truncated { .. })
    ));

    let mut bad = good.clone();
    bad[topic_len_at] = 0x80; // negative signed byte in V1
    assert!(matches!(
        MessageView::parse(&bad),
        Err(DecodeError::NegativeLength { .. })
    ));

    let mut bad = good.clone();
    bad[topic_len_at] = 4; // one short: fields no longer end at TOTALSIZE
    assert!(MessageView::parse(&bad).is_err());

    // TOTALSIZE claims one more byte than the fields use.
    let mut bad = good.clone();
    bad.push(0);
    bad[0..4].copy_from_slice(&((good.len() + 1) as i32).to_be_bytes());
    assert!(matches!(
        MessageView::parse(&bad),
        Err(DecodeError::SizeMismatch { .. })
    ));

    let mut bad = good.clone();
    bad[topic_len_at + 1] = 0xFF; // invalid UTF-8 in the topic
    assert_eq!(
        MessageView::parse(&bad),
        Err(DecodeError::InvalidUtf8("TOPIC"))
    );

    let mut bad = good.clone();
    bad[52..56].copy_from_slice(&70_000i32.to_be_bytes()); // born port
    assert!(matches!(
        MessageView::parse(&bad),
        Err(DecodeError::BadPort { .. })
    ));

    // A flipped body byte still parses but fails the CRC check.
    let mut bad = good.clone();
    bad[88] ^= 0xFF;
    assert!(!MessageView::parse(&bad).unwrap().body_crc_matches());
}

#[test]
fn peek_total_size_checks_presence() {
    let good = record::encode(&draft("T", b"", "")).unwrap();
    assert_eq!(peek_total_size(&good), Ok(good.len()));
    assert!(peek_total_size(&good[..good.len() - 1]).is_err());
    assert!(peek_total_size(&good[..3]).is_err());
}

#[test]
fn dispatch_info_takes_last_duplicate_and_handles_no_tags() {
    let props = properties::encode([(keys::TAGS, "X"), (keys::TAGS, "TagA")]);
    let bytes = record::encode(&draft("T", b"", &props)).unwrap();
    let info = MessageView::parse(&bytes).unwrap().dispatch_info();
    assert_eq!(info.tags, Some("TagA"));
    assert_eq!(info.tags_code, 2_598_919);
    let bytes = record::encode(&draft("T", b"", "")).unwrap();
    let info = MessageView::parse(&bytes).unwrap().dispatch_info();
    assert_eq!(
        (info.tags, info.tags_code, info.keys, info.uniq_key),
        (None, 0, None, None)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for result in MessageIter::new(&bytes).take(8) {
            let _ = result.map(|m| (m.dispatch_info(), m.properties_map()));
        }
        let _ = super::batch::decode_batch(&bytes, 64);
    }

    #[test]
    fn decoder_never_panics_on_mutated_records(
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        cut in 0usize..200,
    ) {
        let mut bytes = record::encode(&draft("TopicTest", b"payload", PROPS)).unwrap();
        for (at, value) in flips {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        bytes.truncate(cut.max(1));
        if let Ok(view) = MessageView::parse(&bytes) {
            prop_assert!(view.total_size() <= bytes.len());
            let _ = view.dispatch_info();
        }
    }

    #[test]
    fn encode_decode_round_trip(
        topic in "[A-Za-z0-9_%|-]{1,200}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
        tag in proptest::option::of("[A-Za-z]{1,10}"),
        queue_id in any::<i32>(),
        queue_offset in any::<i64>(),
        v6 in any::<bool>(),
    ) {
        let props = match &tag {
            Some(t) => properties::encode([(keys::TAGS, t.as_str())]),
            None => String::new(),
        };
        let mut d = draft(&topic, &body, &props);
        d.queue_id = queue_id;
        d.queue_offset = queue_offset;
        if v6 {
            d.born_host = SocketAddr::from(([0u16, 1, 2, 3, 4, 5, 6, 7], 9));
        }
        let bytes = record::encode(&d).unwrap();
        let view = MessageView::parse(&bytes).unwrap();
        prop_assert_eq!(view.topic(), topic.as_str());
        prop_assert_eq!(view.body(), &body[..]);
        prop_assert_eq!(view.queue_id(), queue_id);
        prop_assert_eq!(view.queue_offset(), queue_offset);
        prop_assert_eq!(view.born_host(), d.born_host);
        prop_assert_eq!(view.tags(), tag.as_deref());
        prop_assert!(view.body_crc_matches());
    }
}
