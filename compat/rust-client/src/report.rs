//! The JSON lines this driver prints on stdout (its logs go to stderr).

use std::collections::BTreeMap;
use std::io::Write;

use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::{MessageTrait, STRING_HASH_SET};
use serde_json::{json, Value};

/// Bodies up to this size are printed in full (as UTF-8, lossily); longer ones only by length
/// and checksum, so a 1 MiB message does not make a 1 MiB line.
const BODY_PRINTED_MAX_BYTES: usize = 1024;

/// The property the client stores its own message id under (RocketMQ's `UNIQ_KEY`).
const UNIQ_KEY: &str = "UNIQ_KEY";

/// Writes one line and flushes, so a runner killed at its timeout still sees every line.
pub fn print(line: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to report to; nothing better to do than drop the line.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The id a RocketMQ client calls the message id: the producer-made unique key when the
/// message has one, else the broker's offset id.
pub fn client_msg_id(message: &MessageExt) -> String {
    message
        .properties()
        .get(UNIQ_KEY)
        .map(|id| id.to_string())
        .unwrap_or_else(|| message.msg_id().to_string())
}

/// One received message as a line under `op`.
pub fn message_line(op: &str, message: &MessageExt) -> Value {
    let user_properties: BTreeMap<String, String> = message
        .properties()
        .iter()
        .filter(|(key, _)| !STRING_HASH_SET.contains(key.as_str()))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let body = message.body().unwrap_or_default();
    let mut line = json!({
        "op": op,
        "msg_id": client_msg_id(message),
        "offset_msg_id": message.msg_id().as_str(),
        "topic": message.topic().as_str(),
        "tags": message.get_tags().map(|t| t.to_string()),
        "keys": message.get_keys().map(|k| k.to_string()),
        "properties": user_properties,
        "body_len": body.len(),
        "body_crc32": crc32fast::hash(&body),
        "queue_id": message.queue_id(),
        "queue_offset": message.queue_offset(),
        "reconsume_times": message.reconsume_times(),
        "broker_name": message.broker_name(),
    });
    if body.len() <= BODY_PRINTED_MAX_BYTES {
        line["body"] = Value::String(String::from_utf8_lossy(&body).into_owned());
    }
    line
}
