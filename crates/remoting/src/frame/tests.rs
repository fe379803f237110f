//! Codec tests: golden bytes from the protocol notes and from what real clients send,
//! malformed input, round trips, and arbitrary bytes.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::command::LanguageCode;

fn frame(serialize_type: u8, header: &[u8], body: &[u8]) -> BytesMut {
    let mut bytes = BytesMut::new();
    bytes.put_u32((4 + header.len() + body.len()) as u32);
    bytes.put_u32((u32::from(serialize_type) << 24) | header.len() as u32);
    bytes.put_slice(header);
    bytes.put_slice(body);
    bytes
}

fn decode_one(bytes: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
    RemotingCodec::new().decode(bytes)
}

fn decode_json(header: &str) -> RemotingCommand {
    let mut bytes = frame(0, header.as_bytes(), b"");
    decode_one(&mut bytes).unwrap().unwrap()
}

fn route_request() -> RemotingCommand {
    RemotingCommand {
        code: 105,
        opaque: 7,
        ..RemotingCommand::default()
    }
    .with_ext_field("topic", "TopicTest")
}

/// The JSON GET_ROUTEINFO_BY_TOPIC request as a Java client writes it (fastjson, keys in
/// alphabetical order): a 131-byte header, frame prefix `00 00 00 87 00 00 00 83`.
const JAVA_ROUTE_REQUEST_HEADER: &str = r#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#;

#[test]
fn decodes_javas_json_route_request() {
    let mut bytes = frame(0, JAVA_ROUTE_REQUEST_HEADER.as_bytes(), b"");
    assert_eq!(bytes.len(), 139);
    assert_eq!(&bytes[..8], &[0, 0, 0, 0x87, 0, 0, 0, 0x83]);
    let command = decode_one(&mut bytes).unwrap().unwrap();
    assert_eq!(command, route_request());
    assert!(bytes.is_empty());
}

#[test]
fn encodes_json_route_request_in_the_recommended_shape() {
    let encoded = RemotingCodec::new()
        .encode_to_bytes(&route_request())
        .unwrap();
    let expected_header = r#"{"code":105,"language":"JAVA","version":479,"opaque":7,"flag":0,"extFields":{"topic":"TopicTest"},"serializeTypeCurrentRPC":"JSON"}"#;
    let mut expected = vec![0, 0, 0, 0x87, 0, 0, 0, 0x83];
    expected.extend_from_slice(expected_header.as_bytes());
    assert_eq!(encoded, Bytes::from(expected));
}

#[test]
fn json_responses_carry_remark_only_when_present_and_ext_fields_always() {
    let request = route_request();
    let plain = RemotingCodec::new()
        .encode_to_bytes(&RemotingCommand::success_to(&request))
        .unwrap();
    let header = std::str::from_utf8(&plain[8..]).unwrap();
    assert_eq!(
        header,
        r#"{"code":0,"language":"JAVA","version":479,"opaque":7,"flag":1,"extFields":{},"serializeTypeCurrentRPC":"JSON"}"#
    );
    let with_remark = RemotingCodec::new()
        .encode_to_bytes(&RemotingCommand::error_to(
            &request,
            17,
            "No topic route info",
        ))
        .unwrap();
    let header = std::str::from_utf8(&with_remark[8..]).unwrap();
    assert_eq!(
        header,
        r#"{"code":17,"language":"JAVA","version":479,"opaque":7,"flag":1,"remark":"No topic route info","extFields":{},"serializeTypeCurrentRPC":"JSON"}"#
    );
}

#[test]
fn json_escapes_control_characters_in_properties() {
    let command =
        RemotingCommand::request(310).with_ext_field("i", "KEYS\u{1}k1\u{2}TAGS\u{1}TagA\u{2}");
    let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
    let header = std::str::from_utf8(&encoded[8..]).unwrap();
    assert!(
        header.contains(r#""i":"KEYS\u0001k1\u0002TAGS\u0001TagA\u0002""#),
        "{header}"
    );
    let mut bytes = BytesMut::from(&encoded[..]);
    assert_eq!(decode_one(&mut bytes).unwrap().unwrap(), command);
}

/// The same request with the binary header, byte for byte as in the protocol notes.
const BINARY_ROUTE_REQUEST: &[u8] = b"\x00\x00\x00\x2d\x01\x00\x00\x29\x00\x69\x00\x01\xdf\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x14\x00\x05topic\x00\x00\x00\x09TopicTest";

#[test]
fn decodes_binary_route_request() {
    let mut bytes = BytesMut::from(BINARY_ROUTE_REQUEST);
    let command = decode_one(&mut bytes).unwrap().unwrap();
    assert_eq!(
        command,
        route_request().with_serialize_type(SerializeType::RocketMq)
    );
}

#[test]
fn encodes_binary_route_request_byte_for_byte() {
    let command = route_request().with_serialize_type(SerializeType::RocketMq);
    let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
    assert_eq!(&encoded[..], BINARY_ROUTE_REQUEST);
}

#[test]
fn binary_remark_and_body_round_trip() {
    let command = RemotingCommand::request(310)
        .with_remark("hello")
        .with_ext_field("a", "1")
        .with_ext_field("b", "")
        .with_body(&b"payload"[..])
        .with_serialize_type(SerializeType::RocketMq);
    let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
    let decoded = decode_one(&mut BytesMut::from(&encoded[..]))
        .unwrap()
        .unwrap();
    // Java decodes an empty value as null, i.e. an absent field.
    let mut expected = command.clone();
    expected.ext_fields.remove("b");
    assert_eq!(decoded, expected);
}

#[test]
fn binary_cannot_carry_codes_beyond_int16() {
    let pop = RemotingCommand::request(200_050).with_serialize_type(SerializeType::RocketMq);
    assert!(matches!(
        RemotingCodec::new().encode_to_bytes(&pop),
        Err(EncodeError::NotRepresentableInBinary {
            field: "code",
            value: 200_050
        })
    ));
}

/// A C++ client (jsoncpp FastWriter) PULL_MESSAGE: numeric ext values, `remark` as an empty
/// string, no `serializeTypeCurrentRPC`, a trailing newline.
#[test]
fn decodes_cpp_client_header_with_numbers_and_newline() {
    let header = "{\"code\":11,\"extFields\":{\"AccessKey\":\"\",\"OnsChannel\":\"ALIYUN\",\"Signature\":\"\",\"commitOffset\":\"0\",\"consumerGroup\":\"g\",\"expressionType\":\"TAG\",\"maxMsgNums\":32,\"queueId\":3,\"queueOffset\":\"100\",\"subVersion\":\"0\",\"suspendTimeoutMillis\":\"15000\",\"sysFlag\":6,\"topic\":\"T\"},\"flag\":0,\"language\":\"CPP\",\"opaque\":12,\"remark\":\"\",\"version\":333}\n";
    let command = decode_json(header);
    assert_eq!(command.code, 11);
    assert_eq!(command.language, LanguageCode::Cpp);
    assert_eq!(command.version, 333);
    assert_eq!(command.opaque, 12);
    assert_eq!(command.remark.as_deref(), Some(""));
    assert_eq!(command.ext_field("queueId"), Some("3"));
    assert_eq!(command.ext_field("maxMsgNums"), Some("32"));
    assert_eq!(command.ext_field("sysFlag"), Some("6"));
    assert_eq!(command.ext_field("queueOffset"), Some("100"));
    assert_eq!(command.ext_field("AccessKey"), Some(""));
}

/// The Rust client: `remark` null, all values strings.
#[test]
fn decodes_rust_client_header_with_null_remark() {
    let command = decode_json(
        r#"{"code":34,"language":"RUST","version":474,"opaque":1,"flag":0,"remark":null,"extFields":{},"serializeTypeCurrentRPC":"JSON"}"#,
    );
    assert_eq!(command.code, 34);
    assert_eq!(command.language, LanguageCode::Rust);
    assert_eq!(command.remark, None);
    assert!(command.ext_fields.is_empty());
}

#[test]
fn json_tolerates_booleans_nulls_unknown_languages_and_missing_keys() {
    let command = decode_json(
        r#"{"code":"310","language":"NODE_JS_NEXT","opaque":5,"extFields":{"m":true,"gone":null,"n":1.5,"big":12345678901234,"nested":{"x":[1]}},"extra":{"ignored":[1,2,{}]}}"#,
    );
    assert_eq!(command.code, 310);
    assert_eq!(command.language, LanguageCode::Other);
    assert_eq!(command.opaque, 5);
    assert_eq!(command.flag, 0);
    assert_eq!(command.remark, None);
    assert_eq!(command.ext_field("m"), Some("true"));
    assert_eq!(command.ext_field("gone"), None);
    assert_eq!(command.ext_field("n"), Some("1.5"));
    assert_eq!(command.ext_field("big"), Some("12345678901234"));
    assert_eq!(command.ext_field("nested"), Some(r#"{"x":[1]}"#));

    let minimal = decode_json("{}");
    assert_eq!(minimal.code, 0);
    assert!(minimal.ext_fields.is_empty());
    assert!(!minimal.is_response());

    let null_ext = decode_json(r#"{"code":1,"flag":1,"extFields":null}"#);
    assert!(null_ext.is_response());
    assert!(null_ext.ext_fields.is_empty());
}

#[test]
fn json_body_is_everything_after_the_header() {
    let mut bytes = frame(0, br#"{"code":310}"#, b"\x00\x01body");
    let command = decode_one(&mut bytes).unwrap().unwrap();
    assert_eq!(&command.body[..], b"\x00\x01body");
}

#[test]
fn invalid_json_is_a_typed_error() {
    for header in [
        &b"{\"code\":"[..],
        b"[1,2]",
        b"\xff\xfe",
        b"{\"code\":{}}",
        b"{\"code\":99999999999}",
        b"{} trailing",
    ] {
        let mut bytes = frame(0, header, b"");
        assert!(
            matches!(
                decode_one(&mut bytes),
                Err(DecodeError::InvalidJsonHeader { .. })
            ),
            "{header:?}"
        );
    }
}

#[test]
fn oversize_length_is_rejected_before_buffering() {
    let codec_limit = 1024;
    let mut codec = RemotingCodec::with_max_frame_length(codec_limit);
    let mut bytes = BytesMut::new();
    bytes.put_u32(1021); // 1025 bytes with the length field
    assert!(matches!(
        codec.decode(&mut bytes),
        Err(DecodeError::FrameTooLarge {
            frame_length: 1025,
            max_frame_length: 1024
        })
    ));
    // The largest allowed frame waits for its bytes instead.
    let mut bytes = BytesMut::new();
    bytes.put_u32(1020);
    assert!(codec.decode(&mut bytes).unwrap().is_none());
    // A negative Java int is a huge length, not a small one.
    let mut bytes = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert!(matches!(
        decode_one(&mut bytes),
        Err(DecodeError::FrameTooLarge { .. })
    ));
}

#[test]
fn default_limit_matches_java() {
    let mut bytes = BytesMut::new();
    bytes.put_u32((16 * 1024 * 1024 - 4 + 1) as u32);
    assert!(matches!(
        decode_one(&mut bytes),
        Err(DecodeError::FrameTooLarge { .. })
    ));
    let mut bytes = BytesMut::new();
    bytes.put_u32((16 * 1024 * 1024 - 4) as u32);
    assert!(decode_one(&mut bytes).unwrap().is_none());
}

#[test]
fn a_partial_frame_reserves_only_a_bounded_step() {
    let mut bytes = BytesMut::new();
    bytes.put_u32((16 * 1024 * 1024 - 4) as u32);
    assert!(decode_one(&mut bytes).unwrap().is_none());
    assert!(
        bytes.capacity() <= RESERVE_AHEAD_MAX + 64,
        "{}",
        bytes.capacity()
    );
    // Bytes trickling in do not make it reserve (and so double) again.
    let reserved = bytes.capacity();
    for _ in 0..100 {
        bytes.put_slice(&[b'{'; 100]);
        assert!(decode_one(&mut bytes).unwrap().is_none());
    }
    assert_eq!(bytes.capacity(), reserved);
}

#[test]
fn header_length_beyond_frame_is_rejected() {
    let mut bytes = BytesMut::new();
    bytes.put_u32(4 + 10);
    bytes.put_u32(11);
    bytes.put_slice(&[b' '; 10]);
    assert!(matches!(
        decode_one(&mut bytes),
        Err(DecodeError::HeaderLengthExceedsFrame {
            header_length: 11,
            available: 10
        })
    ));
}

#[test]
fn frame_shorter_than_type_word_is_rejected() {
    let mut bytes = BytesMut::from(&[0, 0, 0, 3, 0, 0, 0][..]);
    assert!(matches!(
        decode_one(&mut bytes),
        Err(DecodeError::FrameTooShort { length_field: 3 })
    ));
}

#[test]
fn unknown_serialize_type_is_rejected() {
    let mut bytes = frame(2, b"{}", b"");
    assert!(matches!(
        decode_one(&mut bytes),
        Err(DecodeError::UnknownSerializeType(2))
    ));
}

#[test]
fn truncated_binary_headers_are_rejected() {
    let full = &BINARY_ROUTE_REQUEST[8..];
    for cut in 0..full.len() {
        // Every cut leaves a fixed field or a declared length running past the end.
        let mut bytes = frame(1, &full[..cut], b"");
        let result = decode_one(&mut bytes);
        assert!(
            matches!(result, Err(DecodeError::InvalidBinaryHeader { .. })),
            "cut at {cut}: {result:?}"
        );
    }
    let mut negative_remark = full[..13].to_vec();
    negative_remark.extend_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(
        decode_one(&mut frame(1, &negative_remark, b"")),
        Err(DecodeError::InvalidBinaryHeader { .. })
    ));
}

#[test]
fn frames_split_across_reads_decode_once_complete() {
    let first = route_request();
    let second = RemotingCommand::request(11).with_body(&b"abc"[..]);
    let mut stream = BytesMut::new();
    let mut codec = RemotingCodec::new();
    codec.encode(first.clone(), &mut stream).unwrap();
    codec.encode(&second, &mut stream).unwrap();
    let mut received = BytesMut::new();
    let mut decoded = Vec::new();
    for byte in stream {
        received.put_u8(byte);
        while let Some(command) = codec.decode(&mut received).unwrap() {
            decoded.push(command);
        }
    }
    assert_eq!(decoded, vec![first, second]);
}

#[test]
fn encoding_refuses_frames_over_the_limit() {
    let codec = RemotingCodec::with_max_frame_length(200);
    let command = RemotingCommand::request(10).with_body(vec![0u8; 200]);
    let mut dst = BytesMut::from(&b"keep"[..]);
    assert!(matches!(
        codec.encode_head(&command, &mut dst),
        Err(EncodeError::FrameTooLarge { .. })
    ));
    assert_eq!(&dst[..], b"keep");
}

fn any_language() -> impl Strategy<Value = LanguageCode> {
    (0u8..14).prop_map(LanguageCode::from_code)
}

fn any_command(binary: bool) -> impl Strategy<Value = RemotingCommand> {
    let code = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    let version = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    (
        code,
        any_language(),
        version,
        any::<i32>(),
        0i32..4,
        proptest::option::of(".{1,20}"),
        proptest::collection::hash_map(".{1,12}", ".{1,24}", 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            move |(code, language, version, opaque, flag, remark, ext_fields, body)| {
                RemotingCommand {
                    code,
                    language,
                    version,
                    opaque,
                    flag,
                    remark,
                    ext_fields: ext_fields.into_iter().collect(),
                    body: Bytes::from(body),
                    body_chunks: Vec::new(),
                    serialize_type: if binary {
                        SerializeType::RocketMq
                    } else {
                        SerializeType::Json
                    },
                }
            },
        )
}

proptest! {
    #[test]
    fn json_round_trips(command in any_command(false)) {
        let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
        let decoded = decode_one(&mut BytesMut::from(&encoded[..])).unwrap().unwrap();
        prop_assert_eq!(decoded, command);
    }

    #[test]
    fn binary_round_trips(command in any_command(true)) {
        let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
        let decoded = decode_one(&mut BytesMut::from(&encoded[..])).unwrap().unwrap();
        prop_assert_eq!(decoded, command);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        let mut codec = RemotingCodec::with_max_frame_length(4096);
        let mut buffer = BytesMut::new();
        'feed: for piece in bytes.chunks(chunk) {
            buffer.extend_from_slice(piece);
            // Each decoded frame consumes at least 8 bytes, so this loop is bounded.
            loop {
                match codec.decode(&mut buffer) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn arbitrary_headers_never_panic(header in proptest::collection::vec(any::<u8>(), 0..256), binary in any::<bool>()) {
        let mut bytes = frame(u8::from(binary), &header, b"");
        let _ = decode_one(&mut bytes);
    }

    #[test]
    fn decoded_json_headers_re_encode_to_the_same_command(json in "\\{(\"(code|language|version|opaque|flag|remark|extFields)\":(-?[0-9]{1,9}|\"[A-Z_a-z0-9]{0,6}\"|null|\\{(\"[a-z]{1,3}\":(-?[0-9]{1,5}|\"[ -~]{0,5}\"|null|true|false|1\\.5),?){0,4}\\}),?){0,8}\\}") {
        // Whatever lenient decoding accepts, we can send back and read again unchanged.
        if let Ok(Some(command)) = decode_one(&mut frame(0, json.as_bytes(), b"")) {
            let encoded = RemotingCodec::new().encode_to_bytes(&command).unwrap();
            let decoded = decode_one(&mut BytesMut::from(&encoded[..])).unwrap().unwrap();
            prop_assert_eq!(decoded, command);
        }
    }

    #[test]
    fn arbitrary_json_objects_never_panic(json in "\\{(\"(code|language|version|opaque|flag|remark|extFields|x)\":(-?[0-9]{1,12}|\"[A-Z_a-z0-9]{0,6}\"|null|true|\\{\\}|\\[\\]|\\{\"k\":(1|\"v\"|null|false)\\}),?){0,8}\\}") {
        let mut bytes = frame(0, json.as_bytes(), b"");
        let _ = decode_one(&mut bytes);
    }
}
