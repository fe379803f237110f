//! Feeds arbitrary bytes to the frame decoder in arbitrary chunk sizes: it must never
//! panic, must consume at least one frame's prefix per decoded command (so the loop ends),
//! and every command it decodes must survive re-encoding and decoding again.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use remoting::frame::RemotingCodec;
use tokio_util::codec::Decoder;

fuzz_target!(|input: &[u8]| {
    let Some((&chunk_seed, bytes)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(chunk_seed).max(1);
    let mut codec = RemotingCodec::with_max_frame_length(64 * 1024);
    let mut buffer = BytesMut::new();
    for piece in bytes.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let before = buffer.len();
            match codec.decode(&mut buffer) {
                Ok(Some(command)) => {
                    assert!(
                        buffer.len() + 8 <= before,
                        "a decoded frame consumed its bytes"
                    );
                    // What we decode we can send back (unless it is too large for the
                    // binary header's int16 fields, which re-encoding reports as an error).
                    if let Ok(encoded) = codec.encode_to_bytes(&command) {
                        let mut again = BytesMut::from(&encoded[..]);
                        let decoded = codec.decode(&mut again).expect("re-encoded frame decodes");
                        assert_eq!(decoded.as_ref(), Some(&command));
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
