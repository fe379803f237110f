//! Bytes on a raft link: the hello that opens a connection and every peer message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = raft::codec::decode_hello(data);
    if let Ok(message) = raft::codec::decode(Bytes::copy_from_slice(data)) {
        // What decodes re-encodes to bytes that decode to the same message.
        let mut out = bytes::BytesMut::new();
        raft::codec::encode(&message, &mut out);
        let again = raft::codec::decode(out.freeze()).expect("re-encoded message decodes");
        assert_eq!(
            again, message,
            "decode/encode round trip changed the message"
        );
    }
});
