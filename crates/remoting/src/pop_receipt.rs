//! What a popped message's receipt handle says (RocketMQ's `extraInfo`, the `POP_CK`
//! property the client builds from a pop's answer and sends back with ack and change
//! invisible time), and the per-queue offset lists of a pop's answer it is built from.
//!
//! A handle is eight space-separated fields: `checkpoint_offset pop_time invisible_time
//! revive_qid retry_flag broker_name queue_id offset`.

/// The `revive_qid` of an orderly pop's receipts (RocketMQ's `POP_ORDER_REVIVE_QUEUE`):
/// acks and changes of invisible time of such a receipt go to the broker's order state,
/// not to a checkpoint.
pub const ORDER_REVIVE_QUEUE: i32 = 999;

/// Which topic a popped message was read from, as the handle's retry flag says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryFlag {
    /// The topic itself.
    Normal,
    /// Its pop retry topic `%RETRY%group_topic`.
    RetryV1,
    /// Its pop retry topic `%RETRY%group+topic`.
    RetryV2,
}

impl RetryFlag {
    /// The flag of a topic name as read.
    pub fn of_topic(topic: &str) -> RetryFlag {
        match topic.strip_prefix("%RETRY%") {
            Some(rest) if rest.contains('+') => RetryFlag::RetryV2,
            Some(_) => RetryFlag::RetryV1,
            None => RetryFlag::Normal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RetryFlag::Normal => "0",
            RetryFlag::RetryV1 => "1",
            RetryFlag::RetryV2 => "2",
        }
    }

    pub fn parse(text: &str) -> Option<RetryFlag> {
        match text {
            "0" => Some(RetryFlag::Normal),
            "1" => Some(RetryFlag::RetryV1),
            "2" => Some(RetryFlag::RetryV2),
            _ => None,
        }
    }
}

/// A decoded receipt handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopReceipt {
    /// The offset the pop that handed the message out started from: with `pop_time`,
    /// names its checkpoint.
    pub checkpoint_offset: i64,
    pub pop_time: i64,
    pub invisible_time: i64,
    pub revive_qid: i32,
    pub retry: RetryFlag,
    pub broker_name: String,
    pub queue_id: i32,
    pub offset: i64,
}

/// Longest handle accepted; real ones are well under 200 bytes.
const MAX_RECEIPT_LEN: usize = 1024;

impl PopReceipt {
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {}",
            self.checkpoint_offset,
            self.pop_time,
            self.invisible_time,
            self.revive_qid,
            self.retry.as_str(),
            self.broker_name,
            self.queue_id,
            self.offset
        )
    }

    /// Parses a handle; the older seven-field form lacks the offset, which the request's
    /// `offset` header gives (`fallback_offset`).
    pub fn parse(text: &str, fallback_offset: i64) -> Result<PopReceipt, &'static str> {
        const INVALID: &str = "the receipt handle (extraInfo) is invalid";
        if text.len() > MAX_RECEIPT_LEN {
            return Err(INVALID);
        }
        let fields: Vec<&str> = text.split(' ').collect();
        if fields.len() != 7 && fields.len() != 8 {
            return Err(INVALID);
        }
        let number = |i: usize| fields[i].parse::<i64>().map_err(|_| INVALID);
        Ok(PopReceipt {
            checkpoint_offset: number(0)?,
            pop_time: number(1)?,
            invisible_time: number(2)?,
            revive_qid: fields[3].parse().map_err(|_| INVALID)?,
            retry: RetryFlag::parse(fields[4]).ok_or(INVALID)?,
            broker_name: fields[5].to_owned(),
            queue_id: fields[6].parse().map_err(|_| INVALID)?,
            offset: if fields.len() == 8 {
                number(7)?
            } else {
                fallback_offset
            },
        })
    }
}

/// The offset lists of a pop's answer, one entry per topic-queue read:
/// `startOffsetInfo` (`flag queue start;...`) and `msgOffsetInfo`
/// (`flag queue o1,o2,...;...`). The body must list each queue's messages in the order
/// of its offsets here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PopOffsetInfo {
    start: String,
    offsets: String,
}

impl PopOffsetInfo {
    /// Adds a queue read from `start` that handed out `offsets`.
    pub fn add(&mut self, topic: &str, queue_id: i32, start: i64, offsets: &[i64]) {
        let flag = RetryFlag::of_topic(topic).as_str();
        if !self.start.is_empty() {
            self.start.push(';');
            self.offsets.push(';');
        }
        self.start.push_str(&format!("{flag} {queue_id} {start}"));
        self.offsets.push_str(&format!("{flag} {queue_id} "));
        let listed: Vec<String> = offsets.iter().map(i64::to_string).collect();
        self.offsets.push_str(&listed.join(","));
    }

    pub fn start_offset_info(&self) -> &str {
        &self.start
    }

    pub fn msg_offset_info(&self) -> &str {
        &self.offsets
    }
}

/// What the receipts of one pop's answer are built from: its header's fields and the
/// broker that answered. A client (and a gRPC front) gives each message its receipt.
#[derive(Debug, Clone)]
pub struct PopAnswer {
    /// `startOffsetInfo` as (retry flag, queue, start offset).
    starts: Vec<(RetryFlag, i32, i64)>,
    pub pop_time: i64,
    pub invisible_time: i64,
    pub revive_qid: i32,
    pub broker_name: String,
}

impl PopAnswer {
    pub fn new(
        start_offset_info: &str,
        pop_time: i64,
        invisible_time: i64,
        revive_qid: i32,
        broker_name: &str,
    ) -> PopAnswer {
        let starts = start_offset_info
            .split(';')
            .filter_map(|entry| {
                let mut parts = entry.split(' ');
                let flag = RetryFlag::parse(parts.next()?)?;
                let queue = parts.next()?.parse().ok()?;
                let start = parts.next()?.parse().ok()?;
                Some((flag, queue, start))
            })
            .collect();
        PopAnswer {
            starts,
            pop_time,
            invisible_time,
            revive_qid,
            broker_name: broker_name.to_owned(),
        }
    }

    /// The receipt of the message stored at `offset` of `queue_id` in `stored_topic` (a
    /// retry topic for a redelivered one).
    pub fn receipt(&self, stored_topic: &str, queue_id: i32, offset: i64) -> PopReceipt {
        let retry = RetryFlag::of_topic(stored_topic);
        let checkpoint_offset = self
            .starts
            .iter()
            .find(|(flag, queue, _)| *flag == retry && *queue == queue_id)
            .map_or(offset, |(_, _, start)| *start);
        PopReceipt {
            checkpoint_offset,
            pop_time: self.pop_time,
            invisible_time: self.invisible_time,
            revive_qid: self.revive_qid,
            retry,
            broker_name: self.broker_name.clone(),
            queue_id,
            offset,
        }
    }
}

/// An orderly pop's `orderCountInfo`: how often each handed-out message was handed out
/// before. Entries are `flag qo<queue>%<offset> <count>` for messages handed out before,
/// and, for the clients that read counts per queue, `flag <queue> <least count>`, joined
/// by `;`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrderCountInfo {
    text: String,
}

impl OrderCountInfo {
    pub fn from_text(text: &str) -> OrderCountInfo {
        OrderCountInfo {
            text: text.to_owned(),
        }
    }

    /// Adds one queue's messages with their earlier deliveries (`counts[i]` for
    /// `offsets[i]`).
    pub fn add(&mut self, topic: &str, queue_id: i32, offsets: &[i64], counts: &[u32]) {
        let flag = RetryFlag::of_topic(topic).as_str();
        for (offset, count) in offsets.iter().zip(counts) {
            if *count > 0 {
                self.push(&format!("{flag} qo{queue_id}%{offset} {count}"));
            }
        }
        let least = counts.iter().copied().min().unwrap_or(0);
        self.push(&format!("{flag} {queue_id} {least}"));
    }

    fn push(&mut self, entry: &str) {
        if !self.text.is_empty() {
            self.text.push(';');
        }
        self.text.push_str(entry);
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How often the message at `offset` of `queue_id` in `stored_topic` was handed out
    /// before: its own entry, else its queue's, else 0.
    pub fn count(&self, stored_topic: &str, queue_id: i32, offset: i64) -> u32 {
        let flag = RetryFlag::of_topic(stored_topic).as_str();
        let by_offset = format!("qo{queue_id}%{offset}");
        let by_queue = queue_id.to_string();
        let mut queue_count = None;
        for entry in self.text.split(';') {
            let mut parts = entry.split(' ');
            let (Some(f), Some(key), Some(count)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if f != flag {
                continue;
            }
            let Ok(count) = count.parse::<u32>() else {
                continue;
            };
            if key == by_offset {
                return count;
            }
            if key == by_queue {
                queue_count = Some(count);
            }
        }
        queue_count.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_take_the_older_form() {
        let receipt = PopReceipt {
            checkpoint_offset: 100,
            pop_time: 1_700_000_000_000,
            invisible_time: 60_000,
            revive_qid: 3,
            retry: RetryFlag::Normal,
            broker_name: "broker-a".into(),
            queue_id: 2,
            offset: 101,
        };
        assert_eq!(
            receipt.encode(),
            "100 1700000000000 60000 3 0 broker-a 2 101"
        );
        assert_eq!(PopReceipt::parse(&receipt.encode(), 0), Ok(receipt.clone()));
        assert_eq!(
            PopReceipt::parse("100 1700000000000 60000 3 0 broker-a 2", 101),
            Ok(receipt)
        );
        for bad in ["", "1 2 3", "a 1 1 1 0 b 1 1", "1 1 1 1 9 b 1 1"] {
            assert!(PopReceipt::parse(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn offset_info_lists_each_queue_with_its_retry_flag() {
        let mut info = PopOffsetInfo::default();
        info.add("T", 2, 100, &[100, 101, 103]);
        info.add("%RETRY%G_T", 0, 7, &[7, 8]);
        assert_eq!(info.start_offset_info(), "0 2 100;1 0 7");
        assert_eq!(info.msg_offset_info(), "0 2 100,101,103;1 0 7,8");
        assert_eq!(RetryFlag::of_topic("%RETRY%G+T"), RetryFlag::RetryV2);
        let answer = PopAnswer::new(info.start_offset_info(), 5, 60_000, 0, "b");
        assert_eq!(answer.receipt("T", 2, 101).checkpoint_offset, 100);
        assert_eq!(answer.receipt("%RETRY%G_T", 0, 8).checkpoint_offset, 7);
        assert_eq!(answer.receipt("%RETRY%G_T", 0, 8).retry, RetryFlag::RetryV1);
    }

    #[test]
    fn order_counts_name_each_message_handed_out_before_and_each_queue() {
        let mut info = OrderCountInfo::default();
        info.add("T", 1, &[10, 11, 12], &[2, 1, 0]);
        info.add("T", 3, &[5], &[0]);
        assert_eq!(info.as_str(), "0 qo1%10 2;0 qo1%11 1;0 1 0;0 3 0");
        let read = OrderCountInfo::from_text(info.as_str());
        assert_eq!(read.count("T", 1, 10), 2);
        assert_eq!(read.count("T", 1, 11), 1);
        assert_eq!(read.count("T", 1, 12), 0);
        assert_eq!(read.count("T", 3, 5), 0);
        assert_eq!(read.count("%RETRY%G_T", 1, 10), 0, "another topic's");
        // The per-queue form older brokers send, and garbage.
        assert_eq!(OrderCountInfo::from_text("0 2 4").count("T", 2, 99), 4);
        assert_eq!(
            OrderCountInfo::from_text("x;0 qo1%z 1;;").count("T", 1, 1),
            0
        );
    }
}
