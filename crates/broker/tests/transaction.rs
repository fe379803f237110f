//! Half messages and END_TRANSACTION against an in-process broker: what a transactional
//! send stores, which ends are refused, that a commit delivers once whatever ends follow,
//! and that a restarted broker knows which transactions ended.

mod support;

use message::{decode_all, decode_offset_msg_id};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::transaction::EndTransactionRequestHeader;
use support::*;

const HALF: &str = "RMQ_SYS_TRANS_HALF_TOPIC";

/// A sent half message as END_TRANSACTION names it.
#[derive(Clone)]
struct Half {
    queue_offset: i64,
    commit_log_offset: i64,
    msg_id: String,
}

async fn send_half(broker: &TestBroker, topic: &str, body: &[u8]) -> Half {
    let properties = props(&[
        ("TAGS", "TagT"),
        ("KEYS", "k1"),
        ("TRAN_MSG", "true"),
        ("PGROUP", "PG"),
    ]);
    let sent = broker
        .call(send_v2(&send_header(topic, 1, &properties), body))
        .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    assert_eq!(
        sent.ext_field("queueId"),
        Some("1"),
        "the queue it was sent to"
    );
    Half {
        queue_offset: ext_i64(&sent, "queueOffset"),
        commit_log_offset: decode_offset_msg_id(sent.ext_field("msgId").unwrap())
            .unwrap()
            .commit_log_offset,
        msg_id: sent.ext_field("transactionId").unwrap().to_owned(),
    }
}

fn end(half: &Half, group: &str, commit_or_rollback: i32) -> RemotingCommand {
    let header = EndTransactionRequestHeader {
        topic: None,
        producer_group: group.into(),
        tran_state_table_offset: half.queue_offset,
        commit_log_offset: half.commit_log_offset,
        commit_or_rollback,
        from_transaction_check: false,
        msg_id: half.msg_id.clone(),
        transaction_id: Some(half.msg_id.clone()),
    };
    RemotingCommand::request(request::END_TRANSACTION).with_header(&header)
}

const COMMIT: i32 = 8;
const ROLLBACK: i32 = 12;
const UNKNOWN: i32 = 0;

fn stored(broker: &TestBroker, topic: &str, queue_id: i32) -> i64 {
    broker.ctx().store.reader().max_offset(topic, queue_id)
}

#[tokio::test]
async fn a_half_message_waits_in_the_half_queue_with_its_real_place() {
    let broker = TestBroker::start().await;
    let half = send_half(&broker, "TxT", b"pay").await;
    assert_eq!(stored(&broker, "TxT", 1), 0, "invisible in its topic");
    assert_eq!(stored(&broker, HALF, 0), 1);
    let record = broker
        .ctx()
        .store
        .reader()
        .message_at(half.commit_log_offset)
        .unwrap();
    let views = decode_all(&record).unwrap();
    let view = &views[0];
    assert_eq!((view.topic(), view.queue_id()), (HALF, 0));
    assert_eq!(view.property("REAL_TOPIC"), Some("TxT"));
    assert_eq!(view.property("REAL_QID"), Some("1"));
    assert_eq!(
        view.property("__transactionId__"),
        Some(half.msg_id.as_str())
    );
    assert_eq!(view.body(), b"pay");
}

#[tokio::test]
async fn ends_that_do_not_match_the_half_message_are_refused() {
    let broker = TestBroker::start().await;
    let half = send_half(&broker, "TxT", b"x").await;
    let wrong_group = broker.call(end(&half, "OtherGroup", COMMIT)).await;
    assert_eq!(wrong_group.code, response::SYSTEM_ERROR);
    assert!(wrong_group.remark.unwrap().contains("producer group"));
    let wrong_offset = broker
        .call(end(
            &Half {
                queue_offset: half.queue_offset + 1,
                ..half.clone()
            },
            "PG",
            COMMIT,
        ))
        .await;
    assert_eq!(wrong_offset.code, response::SYSTEM_ERROR);
    let nowhere = broker
        .call(end(
            &Half {
                commit_log_offset: 1 << 40,
                ..half.clone()
            },
            "PG",
            COMMIT,
        ))
        .await;
    assert_eq!(nowhere.code, response::SYSTEM_ERROR);
    let bad_state = broker.call(end(&half, "PG", 5)).await;
    assert_eq!(bad_state.code, response::SYSTEM_ERROR);
    let unknown = broker.call(end(&half, "PG", UNKNOWN)).await;
    assert_eq!(unknown.code, response::SUCCESS);
    assert_eq!(stored(&broker, "TxT", 1), 0, "nothing was delivered");
}

#[tokio::test]
async fn a_commit_delivers_once_whatever_ends_follow() {
    let broker = TestBroker::start().await;
    let half = send_half(&broker, "TxT", b"once").await;
    let committed = broker.call(end(&half, "PG", COMMIT)).await;
    assert_eq!(committed.code, response::SUCCESS, "{:?}", committed.remark);
    assert_eq!(stored(&broker, "TxT", 1), 1);
    for again in [COMMIT, ROLLBACK, COMMIT] {
        let late = broker.call(end(&half, "PG", again)).await;
        assert_eq!(late.code, response::SUCCESS);
        assert!(late.remark.unwrap().contains("already ended"));
    }
    assert_eq!(stored(&broker, "TxT", 1), 1, "delivered once");
    assert_eq!(stored(&broker, "RMQ_SYS_TRANS_OP_HALF_TOPIC", 0), 1);

    let rolled_back = send_half(&broker, "TxT", b"never").await;
    let ended = broker.call(end(&rolled_back, "PG", ROLLBACK)).await;
    assert_eq!(ended.code, response::SUCCESS);
    let late = broker.call(end(&rolled_back, "PG", COMMIT)).await;
    assert!(late.remark.unwrap().contains("already ended"));
    assert_eq!(stored(&broker, "TxT", 1), 1, "a rollback delivers nothing");
}

#[tokio::test]
async fn a_restarted_broker_knows_which_transactions_ended() {
    let mut broker = TestBroker::start().await;
    let ended = send_half(&broker, "TxT", b"ended").await;
    let open = send_half(&broker, "TxT", b"open").await;
    let committed = broker.call(end(&ended, "PG", COMMIT)).await;
    assert_eq!(committed.code, response::SUCCESS);
    broker.restart().await;
    // The table is loaded by the check service shortly after start; an end waits for it.
    let late = broker.call(end(&ended, "PG", COMMIT)).await;
    assert_eq!(late.code, response::SUCCESS);
    assert!(late.remark.unwrap().contains("already ended"));
    let now_committed = broker.call(end(&open, "PG", COMMIT)).await;
    assert_eq!(
        now_committed.code,
        response::SUCCESS,
        "{:?}",
        now_committed.remark
    );
    assert!(now_committed.remark.is_none());
    assert_eq!(stored(&broker, "TxT", 1), 2);
}

#[tokio::test]
async fn batches_cannot_be_transactional() {
    let broker = TestBroker::start().await;
    let mut header = send_header("TxT", 0, &props(&[("TRAN_MSG", "true")]));
    header.batch = Some(true);
    let body = message::batch::encode_batch([message::batch::BatchItem {
        flag: 0,
        body: b"b",
        properties: "",
    }])
    .unwrap();
    let sent = broker.call(send_batch(&header, &body)).await;
    assert_eq!(sent.code, response::MESSAGE_ILLEGAL);
}

#[tokio::test]
async fn a_half_message_too_big_to_copy_for_a_check_is_given_up_not_lost() {
    let broker = TestBroker::start_with(|c| {
        c.transaction_timeout = std::time::Duration::ZERO;
        c.transaction_check_interval = std::time::Duration::from_millis(100);
    })
    .await;
    // The largest half message the broker stores: its copy for a check, which adds the
    // transaction's origin and check count, cannot fit the properties limit.
    let mut pad = message::properties::MAX_PROPERTIES_LEN;
    let half = loop {
        assert!(pad > 30_000, "no padding fits");
        let properties = props(&[
            ("TRAN_MSG", "true"),
            ("PGROUP", "PG"),
            ("pad", &"x".repeat(pad)),
        ]);
        let sent = broker
            .call(send_v2(&send_header("TxBig", 0, &properties), b"big"))
            .await;
        if sent.code == response::SUCCESS {
            break Half {
                queue_offset: ext_i64(&sent, "queueOffset"),
                commit_log_offset: decode_offset_msg_id(sent.ext_field("msgId").unwrap())
                    .unwrap()
                    .commit_log_offset,
                msg_id: sent.ext_field("transactionId").unwrap().to_owned(),
            };
        }
        assert_eq!(sent.code, response::MESSAGE_ILLEGAL, "{:?}", sent.remark);
        pad -= 4;
    };
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    while stored(&broker, "TRANS_CHECK_MAX_TIME_TOPIC", 0) < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not given up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let late = broker.call(end(&half, "PG", COMMIT)).await;
    assert!(late.remark.unwrap().contains("already ended"));
    assert_eq!(stored(&broker, "TxBig", 0), 0);
}
