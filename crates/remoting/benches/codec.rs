//! Cost of the frame codec on the produce hot path: decoding and encoding a
//! SEND_MESSAGE_V2 request (1 KiB body, the Java client's header) and its response.
//!
//! ```text
//! cargo bench -p remoting --bench codec -- [--iterations 200000]
//! ```
//!
//! Prints nanoseconds per operation, best of five rounds (the machine is shared; the best
//! round is the least disturbed one).

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use message::properties;
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::frame::RemotingCodec;
use remoting::header::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use tokio_util::codec::{Decoder, Encoder};

const ROUNDS: usize = 5;

fn send_request() -> RemotingCommand {
    let properties = properties::encode([
        ("TAGS", "TagA"),
        ("KEYS", "bench-key"),
        ("UNIQ_KEY", "7F0000010B8C18B4AAC2736C8E5A0000"),
        ("WAIT", "true"),
    ]);
    let header = SendMessageRequestHeader {
        producer_group: "BenchProducer".into(),
        topic: "BenchTopic".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(properties),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(false),
        max_reconsume_times: None,
        broker_name: Some("broker-a".into()),
    };
    let mut command =
        RemotingCommand::request(request::SEND_MESSAGE_V2).with_body(vec![b'x'; 1024]);
    header.to_v2(&mut command.ext_fields);
    command
}

fn send_response(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::success_to(request).with_header(&SendMessageResponseHeader {
        msg_id: "7F00000100002A9F0000000000ABCDEF".into(),
        queue_id: 3,
        queue_offset: 123_456,
        transaction_id: Some("7F0000010B8C18B4AAC2736C8E5A0000".into()),
        batch_uniq_id: None,
        recall_handle: None,
        msg_region: Some("DefaultRegion".into()),
        trace_on: Some(true),
    })
}

/// Best-of-rounds nanoseconds per call of `op`.
fn measure(iterations: usize, mut op: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..iterations {
            op();
        }
        best = best.min(started.elapsed().as_nanos() as f64 / iterations as f64);
    }
    best
}

fn main() {
    let mut iterations = 200_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--iterations" {
            iterations = args
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(iterations)
                .max(1);
        }
    }
    let mut codec = RemotingCodec::new();
    let request = send_request();
    let response = send_response(&request);
    let request_frame = codec.encode_to_bytes(&request).expect("request encodes");
    let response_frame = codec.encode_to_bytes(&response).expect("response encodes");
    println!(
        "request frame {} bytes ({} header), response frame {} bytes",
        request_frame.len(),
        request_frame.len() - 8 - request.body.len(),
        response_frame.len()
    );

    for (name, frame) in [("request", &request_frame), ("response", &response_frame)] {
        let ns = measure(iterations, || {
            let mut src = BytesMut::from(&frame[..]);
            let command = codec
                .decode(&mut src)
                .expect("decodes")
                .expect("whole frame");
            black_box(command);
        });
        println!("decode {name}: {ns:.0} ns");
    }
    for (name, command) in [("request", &request), ("response", &response)] {
        let mut dst = BytesMut::with_capacity(4096);
        let ns = measure(iterations, || {
            dst.clear();
            codec.encode(command, &mut dst).expect("encodes");
            black_box(&dst);
        });
        println!("encode {name}: {ns:.0} ns");
    }
}
