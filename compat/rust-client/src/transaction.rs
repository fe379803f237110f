//! `transaction`: a `TransactionMQProducer` whose local transactions commit, roll back or stay
//! unknown until the broker checks them back, as the Go and Java drivers' `transaction`.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rocketmq_client_rust::{
    ClientRuntime, LocalTransactionState, TransactionListener, TransactionMQProducer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::args::Transaction;
use crate::report;

/// How each message's local transaction ends: `commit` and `rollback` at once; the `check-`
/// ones stay unknown until the broker checks them back, when the listener answers commit
/// and rollback.
const NAMES: [&str; 4] = ["commit", "rollback", "check-commit", "check-rollback"];
/// Per-send timeout, as the other drivers' (a group may still be settling its leader).
const SEND_TIMEOUT_MS: u32 = 10_000;

/// The part of a body after `TOPIC:`.
fn name_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.split_once(':') {
        Some((_, name)) => name.to_string(),
        None => text.into_owned(),
    }
}

/// Java's name for a local transaction state, as the Java driver prints it.
fn state_name(state: LocalTransactionState) -> &'static str {
    match state {
        LocalTransactionState::CommitMessage => "COMMIT_MESSAGE",
        LocalTransactionState::RollbackMessage => "ROLLBACK_MESSAGE",
        LocalTransactionState::Unknown => "UNKNOW",
    }
}

struct Listener {
    /// Checks so far by transaction name.
    checks: Mutex<HashMap<String, u32>>,
    /// The name of each unknown transaction at its first check.
    first_checks: mpsc::UnboundedSender<String>,
}

impl TransactionListener for Listener {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        match name_of(msg.get_body().map(|b| b.as_ref()).unwrap_or_default()).as_str() {
            "commit" => LocalTransactionState::CommitMessage,
            "rollback" => LocalTransactionState::RollbackMessage,
            _ => LocalTransactionState::Unknown,
        }
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        let body = msg.body().unwrap_or_default();
        let name = name_of(&body);
        let times = {
            // A poisoned lock only means another check panicked; the counts still stand.
            let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
            let times = checks.entry(name.clone()).or_default();
            *times += 1;
            *times
        };
        report::print(&json!({
            "op": "checked",
            "name": name,
            "body": String::from_utf8_lossy(&body),
            "msg_id": report::client_msg_id(msg),
            "offset_msg_id": msg.msg_id().as_str(),
            "transaction_id": msg.get_transaction_id().map(|id| id.to_string()),
            "topic": msg.topic().as_str(),
            "times": times,
        }));
        if times == 1 && name.starts_with("check-") {
            // The receiver lives until the run ends; a late check has nobody to tell.
            let _ = self.first_checks.send(name.clone());
        }
        match name.as_str() {
            "check-commit" => LocalTransactionState::CommitMessage,
            "check-rollback" => LocalTransactionState::RollbackMessage,
            _ => LocalTransactionState::Unknown,
        }
    }
}

/// Sends the four transactions, then waits for both unknown ones to be checked back. Lines:
/// `sent` per send (send result, transaction id, local state) or `send_failed`, `checked` per
/// check, `failed` when the checks did not come in time, then `done` (`failed`: how many
/// steps failed). Fails if any did.
pub async fn run(runtime: Arc<ClientRuntime>, args: &Transaction) -> Result<()> {
    let (first_checks, mut checked) = mpsc::unbounded_channel();
    let listener = Listener {
        checks: Mutex::new(HashMap::new()),
        first_checks,
    };
    let mut producer = TransactionMQProducer::builder(runtime)
        .producer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        .topics(vec![args.topic.as_str()])
        .send_msg_timeout(SEND_TIMEOUT_MS)
        .transaction_listener(listener)
        .build();
    report::print(&json!({"op": "started", "command": "transaction"}));
    producer
        .start()
        .await
        .context("starting the transaction producer")?;
    let mut failures = 0;
    for name in NAMES {
        let message = Message::builder()
            .topic(args.topic.as_str())
            .tags("TagTx")
            .key(format!("tx-{name}"))
            .body(format!("{}:{name}", args.topic).into_bytes())
            .build()
            .context("building the message")?;
        match producer
            .send_message_in_transaction::<(), _>(message, None)
            .await
        {
            Ok(result) => report::print(&sent_line(name, &result)),
            Err(e) => {
                failures += 1;
                report::print(&json!({
                    "op": "send_failed", "name": name, "error": e.to_string(),
                }));
            }
        }
    }
    let waited = tokio::time::timeout(Duration::from_secs(args.timeout_secs), async {
        for _ in 0..2 {
            // The listener, which holds the sender, lives as long as the producer.
            checked.recv().await;
        }
    })
    .await;
    if waited.is_err() {
        failures += 1;
        report::print(&json!({
            "op": "failed",
            "step": "check",
            "error": format!(
                "unknown transactions not checked back within {} s",
                args.timeout_secs
            ),
        }));
    }
    tokio::time::sleep(Duration::from_millis(args.linger_ms)).await;
    producer.shutdown().await;
    report::print(&json!({"op": "done", "failed": failures}));
    if failures > 0 {
        anyhow::bail!("{failures} steps failed");
    }
    Ok(())
}

fn sent_line(name: &str, result: &rocketmq_client_rust::TransactionSendResult) -> Value {
    let send = result.send_result.as_ref();
    json!({
        "op": "sent",
        "name": name,
        // SEND_OK etc., as Java's SendStatus names them.
        "status": send.map(|r| serde_json::to_value(r.send_status).unwrap_or(Value::Null)),
        "msg_id": send.and_then(|r| r.msg_id.as_ref().map(|id| id.to_string())),
        "offset_msg_id": send.and_then(|r| r.offset_msg_id.clone()),
        "queue_id": send.and_then(|r| r.message_queue.as_ref().map(|q| q.queue_id())),
        "broker_name": send
            .and_then(|r| r.message_queue.as_ref().map(|q| q.broker_name().to_string())),
        "queue_offset": send.map(|r| r.queue_offset),
        "transaction_id": send.and_then(|r| r.transaction_id.clone()),
        "local_state": result.local_transaction_state.map(state_name),
    })
}

#[cfg(test)]
mod tests {
    use super::name_of;

    #[test]
    fn the_name_follows_the_topic() {
        assert_eq!(name_of(b"T:check-commit"), "check-commit");
        assert_eq!(name_of(b"odd"), "odd");
    }
}
