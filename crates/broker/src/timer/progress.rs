//! How far timer delivery went, as a record in [`TIMER_TOPIC`] queue
//! [`PROGRESS_QUEUE`] (body `caught_up_below,slot_ms,delivered_in_slot`), stored in the
//! same put as the deliveries it covers. A put is one raft entry in a broker group, so a new
//! master finds exactly the progress of what was stored: no delivery is lost and none is
//! repeated across a failover. The latest record is the progress:
//!
//! - `caught_up_below`: every entry of the message queue below this offset whose slot is
//!   before `slot_ms` has been delivered;
//! - `slot_ms`: the first slot not wholly delivered;
//! - `delivered_in_slot`: how many entries of that slot's chain (in queue-offset order, the
//!   same on every member) have been delivered.

use std::net::SocketAddr;

use message::MessageView;
use store::AcceptAll;

use super::TIMER_TOPIC;
use crate::clock::now_ms;
use crate::record::{append_record, NewMessage, RecordError};
use crate::store_facade::{MessageStore, RecordBatch};

/// Queue of [`TIMER_TOPIC`] holding the progress records.
pub const PROGRESS_QUEUE: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub caught_up_below: i64,
    pub slot_ms: i64,
    pub delivered_in_slot: u64,
}

impl Progress {
    fn encode(&self) -> String {
        format!(
            "{},{},{}",
            self.caught_up_below, self.slot_ms, self.delivered_in_slot
        )
    }

    fn decode(body: &[u8]) -> Option<Progress> {
        let text = std::str::from_utf8(body).ok()?;
        let mut parts = text.split(',').map(str::trim);
        let progress = Progress {
            caught_up_below: parts.next()?.parse().ok()?,
            slot_ms: parts.next()?.parse().ok()?,
            delivered_in_slot: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(progress)
    }
}

/// The latest progress record; `None` before the first (or if it is unreadable).
pub fn recorded(store: &dyn MessageStore) -> Option<Progress> {
    let reader = store.reader();
    let last = reader.max_offset(TIMER_TOPIC, PROGRESS_QUEUE) - 1;
    if last < 0 {
        return None;
    }
    let read = reader.get_messages(TIMER_TOPIC, PROGRESS_QUEUE, last, 1, None, &AcceptAll);
    let record = read.messages.first()?;
    Progress::decode(MessageView::parse(record).ok()?.body())
}

/// Where the latest progress record sits in the CommitLog.
pub fn last_record_position(store: &dyn MessageStore) -> Option<i64> {
    let reader = store.reader();
    let last = reader.max_offset(TIMER_TOPIC, PROGRESS_QUEUE) - 1;
    (last >= 0)
        .then(|| reader.queue_entry_position(TIMER_TOPIC, PROGRESS_QUEUE, last))
        .flatten()
}

/// Adds the record of `progress` to `batch` (after the deliveries it covers).
pub fn append(
    batch: &mut RecordBatch,
    progress: &Progress,
    store_host: SocketAddr,
) -> Result<(), RecordError> {
    let body = progress.encode();
    let message = NewMessage {
        topic: TIMER_TOPIC,
        queue_id: PROGRESS_QUEUE,
        body: body.as_bytes(),
        flag: 0,
        properties: "",
        sys_flag: 0,
        born_timestamp_ms: now_ms(),
        born_host: store_host,
        reconsume_times: 0,
    };
    append_record(batch, &message, store_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_record_round_trips_and_garbage_is_none() {
        let p = Progress {
            caught_up_below: 42,
            slot_ms: 1_700_000_000_000,
            delivered_in_slot: 7,
        };
        assert_eq!(Progress::decode(p.encode().as_bytes()), Some(p));
        for bad in ["", "1,2", "1,2,x", "1,2,3,4", "-"] {
            assert_eq!(Progress::decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
