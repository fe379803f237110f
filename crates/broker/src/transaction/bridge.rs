//! The records of a transaction's life, as RocketMQ's `TransactionalMessageBridge` and
//! `EndTransactionProcessor` shape them: the half message a transactional send becomes,
//! its copy stored again when it is checked, the op record that ends it, the message a
//! commit delivers, the one a transaction given up leaves in `TRANS_CHECK_MAX_TIME_TOPIC`,
//! and the CHECK_TRANSACTION_STATE request that asks its producer.

use std::net::SocketAddr;

use message::properties::{self, keys, PropertyError, MAX_PROPERTIES_LEN};
use message::sysflag::message as sysflag;
use message::topic::{TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};
use message::{MessageDraft, MessageProperties, MessageView};
use remoting::code::request as code;
use remoting::command::RemotingCommand;
use remoting::header::transaction::CheckTransactionStateRequestHeader;

use super::{OP_REMOVE_TAG, OP_SEPARATOR};
use crate::record::{append_record, append_record_of_transaction, NewMessage, RecordError};
use crate::schedule::divert;
use crate::store_facade::RecordBatch;
use message::DelayLevels;

/// Origins one op record may name (ours name one; a bound on reading foreign ones).
const MAX_ORIGINS_PER_OP: usize = 4096;

/// Why a transaction's record cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("transactional message properties: {0}")]
    Property(#[from] PropertyError),
    #[error("message properties are {0} bytes as a half message; at most {MAX_PROPERTIES_LEN} are allowed")]
    PropertiesTooLong(usize),
    #[error("the half message has no REAL_TOPIC")]
    NoRealTopic,
    #[error("the half message has no valid REAL_QID")]
    NoRealQueue,
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Delay(#[from] divert::DivertError),
    #[error(transparent)]
    Timer(#[from] crate::timer::request::TimerRefusal),
}

/// Whether a send is transactional: `TRAN_MSG=true` or a prepared SYSFLAG. A message a
/// consumer sends back through SEND_MESSAGE with a delay level (clients before 4.6.1 do
/// this for retries) is not, although it still carries the `TRAN_MSG` it was delivered
/// with: RocketMQ makes the same exception.
pub fn is_transactional(properties: &str, sys_flag: i32, reconsume_times: i32) -> bool {
    let asked = properties::find(properties, keys::TRAN_MSG)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || sysflag::transaction_type(sys_flag) == sysflag::TRANSACTION_PREPARED_TYPE;
    let retried_with_delay = reconsume_times > 0 && message::delay::requested_level(properties) > 0;
    asked && !retried_with_delay
}

/// A transactional send as it is stored: in `RMQ_SYS_TRANS_HALF_TOPIC` queue 0, where no
/// consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalfMessage {
    pub properties: String,
    pub sys_flag: i32,
}

/// The half message a transactional send becomes: its topic and queue kept in `REAL_TOPIC`
/// / `REAL_QID`, its `UNIQ_KEY` as `__transactionId__`, and no transaction type in its
/// SYSFLAG (the half queue indexes it like any message). A `TRAN_PREPARED_QUEUE_OFFSET`
/// the client set is dropped: the broker uses it to tie copies to their transaction.
pub fn into_half(
    stored_properties: &str,
    sys_flag: i32,
    real_topic: &str,
    real_queue_id: i32,
) -> Result<HalfMessage, BridgeError> {
    let mut parsed = MessageProperties::parse(stored_properties);
    parsed.remove(keys::TRAN_PREPARED_QUEUE_OFFSET);
    if let Some(uniq_key) = parsed.get(keys::UNIQ_KEY).map(str::to_owned) {
        parsed.put(keys::TRANSACTION_ID, &uniq_key)?;
    }
    parsed.put(keys::REAL_TOPIC, real_topic)?;
    parsed.put(keys::REAL_QID, &real_queue_id.to_string())?;
    let properties = parsed.encode();
    if properties.len() > MAX_PROPERTIES_LEN {
        return Err(BridgeError::PropertiesTooLong(properties.len()));
    }
    Ok(HalfMessage {
        properties,
        sys_flag: sysflag::with_transaction_type(sys_flag, sysflag::TRANSACTION_NOT_TYPE),
    })
}

/// The transaction a half-queue copy belongs to: the offset of its first half message.
pub fn origin_of(copy: &MessageView<'_>, copy_offset: i64) -> i64 {
    copy.property(keys::TRAN_PREPARED_QUEUE_OFFSET)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|origin| (0..copy_offset).contains(origin))
        .unwrap_or(copy_offset)
}

/// How often the copy says its transaction was checked (`TRANSACTION_CHECK_TIMES`).
pub fn check_times(copy: &MessageView<'_>) -> u32 {
    copy.property(keys::TRANSACTION_CHECK_TIMES)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0)
}

/// The copy of a half message stored again at the end of the half queue, tied to its
/// transaction by `origin`; with `check_times`, the count it records (a check), without,
/// the count unchanged (a message waiting out its `CHECK_IMMUNITY_TIME_IN_SECONDS`).
pub fn append_copy(
    batch: &mut RecordBatch,
    copy: &MessageView<'_>,
    origin: i64,
    check_times: Option<u32>,
    store_host: SocketAddr,
) -> Result<(), BridgeError> {
    let mut parsed = MessageProperties::parse(copy.properties());
    parsed.put(keys::TRAN_PREPARED_QUEUE_OFFSET, &origin.to_string())?;
    if let Some(times) = check_times {
        parsed.put(keys::TRANSACTION_CHECK_TIMES, &times.to_string())?;
    }
    let properties = parsed.encode();
    let message = NewMessage {
        topic: TRANS_HALF_TOPIC,
        queue_id: 0,
        properties: &properties,
        ..carried_over(copy)
    };
    Ok(append_record(batch, &message, store_host)?)
}

/// The op record that ends the transaction begun at `origin` (RocketMQ's format: the body
/// lists half-queue offsets, each followed by `,`; tag `d`).
pub fn append_op(
    batch: &mut RecordBatch,
    origin: i64,
    uniq_key: &str,
    now_ms: i64,
    store_host: SocketAddr,
) -> Result<(), BridgeError> {
    let body = format!("{origin}{OP_SEPARATOR}");
    let properties = properties::encode([(keys::TAGS, OP_REMOVE_TAG), (keys::UNIQ_KEY, uniq_key)]);
    let message = NewMessage {
        topic: TRANS_OP_HALF_TOPIC,
        queue_id: 0,
        body: body.as_bytes(),
        flag: 0,
        properties: &properties,
        sys_flag: 0,
        born_timestamp_ms: now_ms,
        born_host: store_host,
        reconsume_times: 0,
    };
    Ok(append_record(batch, &message, store_host)?)
}

/// The origins an op record names; records that are not `d` ops name none.
pub fn op_origins(op: &MessageView<'_>) -> Vec<i64> {
    if op.tags() != Some(OP_REMOVE_TAG) {
        return Vec::new();
    }
    let Ok(body) = std::str::from_utf8(op.body()) else {
        return Vec::new();
    };
    body.split(OP_SEPARATOR)
        .filter_map(|offset| offset.trim().parse::<i64>().ok())
        .filter(|offset| *offset >= 0)
        .take(MAX_ORIGINS_PER_OP)
        .collect()
}

/// Where a committed message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub topic: String,
    pub queue_id: i32,
}

/// The half message's real topic and queue.
pub fn destination(copy: &MessageView<'_>) -> Result<Destination, BridgeError> {
    let topic = copy
        .property(keys::REAL_TOPIC)
        .filter(|t| !t.is_empty())
        .ok_or(BridgeError::NoRealTopic)?;
    let queue_id = copy
        .property(keys::REAL_QID)
        .and_then(|q| q.trim().parse::<i32>().ok())
        .filter(|q| *q >= 0)
        .ok_or(BridgeError::NoRealQueue)?;
    Ok(Destination {
        topic: topic.to_owned(),
        queue_id,
    })
}

/// The message a commit delivers: the half message's body, flag, born time and host and
/// properties, in its real topic and queue, with the commit type in its SYSFLAG and the
/// half message's CommitLog offset as its prepared-transaction offset. Its properties are
/// the half message's as they were stored — RocketMQ 5 writes the committed record from
/// the half message's properties string, so consumers see `TRAN_MSG`, `PGROUP`,
/// `REAL_TOPIC` / `REAL_QID` and `__transactionId__` there too — and `UNIQ_KEY`, so the
/// message id is the one the producer saw. A `DELAY` level sends it to wait in the
/// schedule topic first, and a timer property (its delay counted from the commit) to the
/// timer topic, as a committed message passes RocketMQ's delay hook.
pub fn append_committed(
    batch: &mut RecordBatch,
    copy: &MessageView<'_>,
    delays: &Delays<'_>,
    store_host: SocketAddr,
) -> Result<Destination, BridgeError> {
    let real = destination(copy)?;
    let delayed =
        divert::by_delay_property(delays.levels, copy.properties(), &real.topic, real.queue_id)?;
    let put_aside = match delayed {
        Some(_) => None,
        None => crate::timer::request::put_aside(
            copy.properties(),
            delays.timer,
            delays.now_ms,
            &real.topic,
            real.queue_id,
        )?,
    };
    let (topic, queue_id, properties) = match (&delayed, &put_aside) {
        (Some(diverted), _) => (
            message::topic::SCHEDULE_TOPIC,
            diverted.queue_id,
            diverted.properties.as_str(),
        ),
        (None, Some(aside)) => (
            crate::timer::TIMER_TOPIC,
            crate::timer::MESSAGE_QUEUE,
            aside.properties.as_str(),
        ),
        (None, None) => (real.topic.as_str(), real.queue_id, copy.properties()),
    };
    let message = NewMessage {
        topic,
        queue_id,
        properties,
        sys_flag: sysflag::with_transaction_type(copy.sys_flag(), sysflag::TRANSACTION_COMMIT_TYPE),
        ..carried_over(copy)
    };
    append_record_of_transaction(batch, &message, store_host, copy.physical_offset())?;
    Ok(real)
}

/// What decides where a committed message waits first, if anywhere.
pub struct Delays<'a> {
    pub levels: &'a DelayLevels,
    pub timer: &'a crate::timer::TimerSettings,
    pub now_ms: i64,
}

/// What a transaction checked `transactionCheckMax` times leaves behind: the half message
/// as it is, in `TRANS_CHECK_MAX_TIME_TOPIC` queue 0, for an operator to look at.
pub fn append_given_up(
    batch: &mut RecordBatch,
    copy: &MessageView<'_>,
    store_host: SocketAddr,
) -> Result<(), BridgeError> {
    let message = NewMessage {
        topic: TRANS_CHECK_MAX_TIME_TOPIC,
        queue_id: 0,
        ..carried_over(copy)
    };
    Ok(append_record(batch, &message, store_host)?)
}

/// The fields every record made from a half message keeps.
fn carried_over<'a>(copy: &MessageView<'a>) -> NewMessage<'a> {
    NewMessage {
        topic: copy.topic(),
        queue_id: copy.queue_id(),
        body: copy.body(),
        flag: copy.flag(),
        properties: copy.properties(),
        sys_flag: copy.sys_flag(),
        born_timestamp_ms: copy.born_timestamp_ms(),
        born_host: copy.born_host(),
        reconsume_times: copy.reconsume_times(),
    }
}

/// Where a copy was stored (from its put outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCopy {
    pub queue_offset: i64,
    pub phys_offset: i64,
    pub store_timestamp_ms: i64,
}

/// CHECK_TRANSACTION_STATE (39) for the copy stored at `stored`, as RocketMQ's broker sends
/// it: the header names the copy (half topic, queue offset, CommitLog offset, offset msgId)
/// and the transaction (`msgId` = `transactionId` = `UNIQ_KEY`); the body is the message as
/// a stored record in its real topic and queue, which the producer's check listener gets.
pub fn check_request(
    copy: &MessageView<'_>,
    stored: StoredCopy,
    broker_name: &str,
    store_host: SocketAddr,
) -> Result<RemotingCommand, BridgeError> {
    let real = destination(copy)?;
    let uniq_key = copy.uniq_key().map(str::to_owned);
    let header = CheckTransactionStateRequestHeader {
        topic: Some(TRANS_HALF_TOPIC.to_owned()),
        tran_state_table_offset: stored.queue_offset,
        commit_log_offset: stored.phys_offset,
        msg_id: uniq_key.clone(),
        transaction_id: uniq_key,
        offset_msg_id: Some(message::offset_msg_id(store_host, stored.phys_offset)),
        broker_name: Some(broker_name.to_owned()),
    };
    let draft = MessageDraft {
        topic: &real.topic,
        body: copy.body(),
        flag: copy.flag(),
        properties: copy.properties(),
        queue_id: real.queue_id,
        sys_flag: copy.sys_flag(),
        born_timestamp_ms: copy.born_timestamp_ms(),
        born_host: crate::record::ipv4_if_possible(copy.born_host()),
        store_host,
        reconsume_times: copy.reconsume_times(),
        prepared_transaction_offset: copy.prepared_transaction_offset(),
        queue_offset: stored.queue_offset,
        physical_offset: stored.phys_offset,
        store_timestamp_ms: stored.store_timestamp_ms,
    };
    let body = message::record::encode(&draft).map_err(RecordError::from)?;
    Ok(RemotingCommand::request(code::CHECK_TRANSACTION_STATE)
        .with_header(&header)
        .with_body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1:10911";

    fn host() -> SocketAddr {
        HOST.parse().unwrap()
    }

    fn no_delays() -> Delays<'static> {
        static LEVELS: std::sync::OnceLock<DelayLevels> = std::sync::OnceLock::new();
        static TIMER: crate::timer::TimerSettings = crate::timer::TimerSettings {
            enabled: true,
            max_delay_ms: 3 * 24 * 3600 * 1000,
            precision_ms: 1000,
        };
        Delays {
            levels: LEVELS.get_or_init(DelayLevels::default),
            timer: &TIMER,
            now_ms: 0,
        }
    }

    /// A half message as the send path stores it, read back with offsets filled in.
    fn stored_half(extra: &[(&str, &str)], queue_offset: i64, phys_offset: i64) -> Vec<u8> {
        let mut client: Vec<(&str, &str)> = vec![
            ("TAGS", "TagA"),
            ("KEYS", "k1 k2"),
            ("TRAN_MSG", "true"),
            ("PGROUP", "pg"),
            ("UNIQ_KEY", "ID1"),
            ("user", "v"),
        ];
        client.extend_from_slice(extra);
        let half = into_half(&properties::encode(client), 0x4, "Orders", 3).unwrap();
        let mut batch = RecordBatch::default();
        let message = NewMessage {
            topic: TRANS_HALF_TOPIC,
            queue_id: 0,
            body: b"payload",
            flag: 5,
            properties: &half.properties,
            sys_flag: half.sys_flag,
            born_timestamp_ms: 1_000,
            born_host: "10.0.0.9:4000".parse().unwrap(),
            reconsume_times: 0,
        };
        append_record(&mut batch, &message, host()).unwrap();
        let mut record = batch.records()[0].to_vec();
        message::record::patch_queue_offset(&mut record, queue_offset).unwrap();
        message::record::patch_physical_offset(&mut record, phys_offset).unwrap();
        record
    }

    #[test]
    fn transactional_sends_are_recognised_as_rocketmq_does() {
        let tran = properties::encode([("TRAN_MSG", "true")]);
        assert!(is_transactional(&tran, 0, 0));
        assert!(is_transactional("", sysflag::TRANSACTION_PREPARED_TYPE, 0));
        assert!(!is_transactional(
            &properties::encode([("TRAN_MSG", "false")]),
            0,
            0
        ));
        assert!(!is_transactional("", sysflag::TRANSACTION_COMMIT_TYPE, 0));
        // An old client's retry of a committed transactional message.
        let retried = properties::encode([("TRAN_MSG", "true"), ("DELAY", "3")]);
        assert!(!is_transactional(&retried, 0, 1));
        assert!(is_transactional(&retried, 0, 0));
    }

    #[test]
    fn a_half_message_keeps_its_real_place_and_hides_its_type() {
        let record = stored_half(&[("TRAN_PREPARED_QUEUE_OFFSET", "0")], 7, 4096);
        let half = MessageView::parse(&record).unwrap();
        assert_eq!(half.topic(), TRANS_HALF_TOPIC);
        assert_eq!(half.sys_flag() & sysflag::TRANSACTION_TYPE_MASK, 0);
        assert_eq!(half.property("REAL_TOPIC"), Some("Orders"));
        assert_eq!(half.property("REAL_QID"), Some("3"));
        assert_eq!(half.property("__transactionId__"), Some("ID1"));
        assert_eq!(
            origin_of(&half, 7),
            7,
            "a client cannot tie its half message to another transaction"
        );
        assert_eq!(check_times(&half), 0);
    }

    #[test]
    fn copies_name_their_origin_and_count_checks() {
        let record = stored_half(&[], 7, 4096);
        let half = MessageView::parse(&record).unwrap();
        let mut batch = RecordBatch::default();
        append_copy(&mut batch, &half, 7, Some(1), host()).unwrap();
        let copy_record = batch.records()[0].to_vec();
        let copy = MessageView::parse(&copy_record).unwrap();
        assert_eq!(copy.topic(), TRANS_HALF_TOPIC);
        assert_eq!(origin_of(&copy, 12), 7);
        assert_eq!(check_times(&copy), 1);
        assert_eq!(copy.uniq_key(), Some("ID1"));
        assert_eq!(copy.body(), b"payload");
        assert_eq!(copy.born_timestamp_ms(), 1_000);
        // An immunity copy keeps the count.
        let mut batch = RecordBatch::default();
        append_copy(&mut batch, &copy, 7, None, host()).unwrap();
        let again = batch.records()[0].to_vec();
        assert_eq!(check_times(&MessageView::parse(&again).unwrap()), 1);
    }

    #[test]
    fn a_commit_delivers_the_half_message_in_its_real_topic() {
        let record = stored_half(&[], 7, 4096);
        let half = MessageView::parse(&record).unwrap();
        let mut batch = RecordBatch::default();
        let real = append_committed(&mut batch, &half, &no_delays(), host()).unwrap();
        assert_eq!((real.topic.as_str(), real.queue_id), ("Orders", 3));
        let committed_record = batch.records()[0].to_vec();
        let committed = MessageView::parse(&committed_record).unwrap();
        assert_eq!((committed.topic(), committed.queue_id()), ("Orders", 3));
        assert_eq!(
            committed.sys_flag() & sysflag::TRANSACTION_TYPE_MASK,
            sysflag::TRANSACTION_COMMIT_TYPE
        );
        assert_eq!(committed.prepared_transaction_offset(), 4096);
        assert_eq!(committed.body(), b"payload");
        assert_eq!(committed.flag(), 5);
        assert_eq!(committed.tags(), Some("TagA"));
        assert_eq!(committed.keys(), Some("k1 k2"));
        assert_eq!(committed.uniq_key(), Some("ID1"));
        assert_eq!(committed.property("user"), Some("v"));
        assert_eq!(committed.born_timestamp_ms(), 1_000);
    }

    #[test]
    fn a_committed_message_with_a_delay_level_waits_first() {
        let record = stored_half(&[("DELAY", "2")], 7, 4096);
        let half = MessageView::parse(&record).unwrap();
        let mut batch = RecordBatch::default();
        append_committed(&mut batch, &half, &no_delays(), host()).unwrap();
        let waiting_record = batch.records()[0].to_vec();
        let waiting = MessageView::parse(&waiting_record).unwrap();
        assert_eq!(waiting.topic(), message::topic::SCHEDULE_TOPIC);
        assert_eq!(waiting.queue_id(), 1);
        assert_eq!(waiting.property("REAL_TOPIC"), Some("Orders"));
    }

    #[test]
    fn op_records_round_trip_and_foreign_ones_name_nothing() {
        let mut batch = RecordBatch::default();
        append_op(&mut batch, 42, "OPID", 5, host()).unwrap();
        let op_record = batch.records()[0].to_vec();
        let op = MessageView::parse(&op_record).unwrap();
        assert_eq!(op.topic(), TRANS_OP_HALF_TOPIC);
        assert_eq!(op.body(), b"42,");
        assert_eq!(op_origins(&op), vec![42]);
        let half_record = stored_half(&[], 1, 1);
        assert!(op_origins(&MessageView::parse(&half_record).unwrap()).is_empty());
    }

    #[test]
    fn the_check_request_carries_the_copy_and_the_real_message() {
        let record = stored_half(&[], 7, 4096);
        let half = MessageView::parse(&record).unwrap();
        let stored = StoredCopy {
            queue_offset: 12,
            phys_offset: 8192,
            store_timestamp_ms: 2_000,
        };
        let request = check_request(&half, stored, "broker-a", host()).unwrap();
        assert_eq!(request.code, code::CHECK_TRANSACTION_STATE);
        let header: CheckTransactionStateRequestHeader = request.decode_header().unwrap();
        assert_eq!(header.tran_state_table_offset, 12);
        assert_eq!(header.commit_log_offset, 8192);
        assert_eq!(header.msg_id.as_deref(), Some("ID1"));
        assert_eq!(header.transaction_id.as_deref(), Some("ID1"));
        assert_eq!(header.broker_name.as_deref(), Some("broker-a"));
        assert_eq!(
            header.offset_msg_id,
            Some(message::offset_msg_id(host(), 8192))
        );
        let body = MessageView::parse(&request.body).unwrap();
        assert_eq!((body.topic(), body.queue_id()), ("Orders", 3));
        assert_eq!((body.queue_offset(), body.physical_offset()), (12, 8192));
        assert_eq!(body.property("PGROUP"), Some("pg"));
    }
}
