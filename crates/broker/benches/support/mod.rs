//! What the broker benches share: the send request a producer makes and the consumer loop
//! that reads a queue to its end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use message::batch::{encode_batch, BatchItem};
use message::MessageIter;
use remoting::client::RemotingClient;
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::send::SendMessageRequestHeader;
use tests::requests::{pull, pull_header};

/// Pulls `topic`:`queue_id` from offset 0, 32 messages a request, until the broker answers
/// anything but SUCCESS (the end of the queue), decoding every record as a consumer does and
/// adding the count to `consumed`.
pub async fn drain_queue(
    client: RemotingClient,
    addr: String,
    topic: String,
    queue_id: i32,
    consumed: std::sync::Arc<AtomicU64>,
    call_timeout: Duration,
) {
    let mut offset = 0i64;
    loop {
        let request = pull(&pull_header("BenchConsumer", &topic, queue_id, offset));
        let answer = client
            .invoke(&addr, request, call_timeout)
            .await
            .expect("pull");
        if answer.code != response::SUCCESS {
            break;
        }
        let mut count = 0u64;
        for record in MessageIter::new(&answer.body) {
            std::hint::black_box(record.expect("record decodes").body());
            count += 1;
        }
        consumed.fetch_add(count, Ordering::Relaxed);
        offset = answer
            .ext_field("nextBeginOffset")
            .and_then(|v| v.parse().ok())
            .expect("nextBeginOffset");
    }
}

/// SEND_MESSAGE_V2 of one message with `properties` (encoded), or SEND_BATCH_MESSAGE of
/// `batch` copies of it.
pub fn send_request(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    properties: &str,
    batch: usize,
) -> RemotingCommand {
    let header = SendMessageRequestHeader {
        producer_group: "BenchProducer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(properties.to_owned()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(batch > 1),
        max_reconsume_times: None,
        broker_name: None,
    };
    let (code, body) = if batch > 1 {
        let items = (0..batch).map(|_| BatchItem {
            flag: 0,
            body,
            properties,
        });
        (
            request::SEND_BATCH_MESSAGE,
            encode_batch(items).expect("batch encodes"),
        )
    } else {
        (request::SEND_MESSAGE_V2, body.to_vec())
    };
    let mut command = RemotingCommand::request(code).with_body(body);
    header.to_v2(&mut command.ext_fields);
    command
}
