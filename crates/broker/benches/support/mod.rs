//! What the broker benches share: the consumer loop that reads a queue to its end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use remoting::client::RemotingClient;
use remoting::code::response;
use remoting::message::MessageIter;
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
