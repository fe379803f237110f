//! Bytes a client or peer sends on the remoting port: frames (JSON and RocketMQ binary
//! headers), then the request headers the broker decodes from them. Any input must give a
//! command or an error, never a panic or an unbounded allocation.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use remoting::frame::RemotingCodec;
use remoting::header::pull::PullMessageRequestHeader;
use remoting::header::send::SendMessageRequestHeader;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = RemotingCodec::new();
    let mut buf = BytesMut::from(data);
    // Bounded: each decoded frame consumes at least its length field.
    for _ in 0..64 {
        match codec.decode(&mut buf) {
            Ok(Some(command)) => {
                let _ = SendMessageRequestHeader::from_request(command.code, &command.ext_fields);
                let _ = command.decode_header::<PullMessageRequestHeader>();
            }
            Ok(None) | Err(_) => break,
        }
    }
});
