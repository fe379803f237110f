//! `RemotingCommand`: the unit every request and response travels in.
//!
//! - [`language`]: the sender's language code.
//! - [`version`]: RocketMQ version ordinals.
//!
//! A command is the decoded frame: the header fields, the `extFields` map that carries the
//! typed custom header (see [`crate::header`]), and the opaque body.

pub mod language;
pub mod version;

use std::sync::atomic::{AtomicI32, Ordering};

use bytes::Bytes;

use crate::code::response;
use crate::header::{CommandHeader, HeaderError};
use crate::ExtFields;

pub use language::LanguageCode;

/// How a command's header is serialised on the wire (top byte of the frame's type word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// A JSON object: what every client sends by default and every client can read.
    #[default]
    Json,
    /// RocketMQ's compact binary layout (`RocketMQSerializable`); the C++ client cannot
    /// read it, so we only send it when asked to.
    RocketMq,
}

impl SerializeType {
    /// The byte in the frame's type word.
    pub fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The byte's meaning, if it has one.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// Flag bit 0: the command is a response.
pub const FLAG_RESPONSE: i32 = 1 << 0;
/// Flag bit 1: the request expects no response.
pub const FLAG_ONEWAY: i32 = 1 << 1;

/// Request ids are process-wide, so two requests built for the same connection never share
/// one even when built by different callers.
static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(0);

/// A fresh request id. Always non-negative: the C++ client masks the sign bit of the ids
/// it sends, and staying in that range keeps both sides' ids alike.
pub fn next_opaque() -> i32 {
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed) & i32::MAX
}

/// One request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code (requests) or response code (responses); see [`crate::code`].
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's version ordinal; see [`version`].
    pub version: i32,
    /// Request id, echoed by the response.
    pub opaque: i32,
    /// Bit flags: [`FLAG_RESPONSE`], [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Free text, typically the reason of an error response.
    pub remark: Option<String>,
    /// The custom header flattened to strings.
    pub ext_fields: ExtFields,
    /// The payload (a message, or a JSON document for many admin calls).
    pub body: Bytes,
    /// More payload sent right after `body`, chunk by chunk, without being joined first:
    /// a pull response's records straight from the mapped CommitLog. On the wire the body
    /// is `body` followed by every chunk; decoded commands have everything in `body` and
    /// no chunks.
    pub body_chunks: Vec<Bytes>,
    /// The header encoding this command arrived in, or will be sent in.
    pub serialize_type: SerializeType,
}

impl Default for RemotingCommand {
    fn default() -> Self {
        RemotingCommand {
            code: 0,
            language: LanguageCode::Java,
            version: version::CURRENT,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            body_chunks: Vec::new(),
            serialize_type: SerializeType::Json,
        }
    }
}

impl RemotingCommand {
    /// A request with a fresh opaque, sent as a current Java peer.
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            opaque: next_opaque(),
            ..RemotingCommand::default()
        }
    }

    /// A response to `request`: same opaque, response flag set, sent in JSON whatever the
    /// request used (the C++ client cannot read binary headers).
    pub fn response_to(request: &RemotingCommand, code: i32) -> Self {
        RemotingCommand {
            code,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            ..RemotingCommand::default()
        }
    }

    /// A `SUCCESS` response to `request`.
    pub fn success_to(request: &RemotingCommand) -> Self {
        RemotingCommand::response_to(request, response::SUCCESS)
    }

    /// An error response to `request` with its reason in `remark`.
    pub fn error_to(request: &RemotingCommand, code: i32, remark: impl Into<String>) -> Self {
        RemotingCommand::response_to(request, code).with_remark(remark)
    }

    /// What Java answers for a request code nobody handles.
    pub fn not_supported_to(request: &RemotingCommand) -> Self {
        RemotingCommand::error_to(
            request,
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!(" request type {} not supported", request.code),
        )
    }

    /// Sets the remark.
    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `chunks` sent back to back, none of them copied: the zero-copy
    /// way to answer with many buffers (e.g. records read from the CommitLog).
    pub fn with_body_chunks(mut self, chunks: Vec<Bytes>) -> Self {
        self.body = Bytes::new();
        self.body_chunks = chunks;
        self
    }

    /// Length of the whole body on the wire: `body` and every chunk.
    pub fn body_len(&self) -> usize {
        self.body_chunks
            .iter()
            .fold(self.body.len(), |total, chunk| {
                total.saturating_add(chunk.len())
            })
    }

    /// Adds one `extFields` entry.
    pub fn with_ext_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.ext_fields.insert(key.into(), value.into());
        self
    }

    /// Writes a typed header into `extFields` (added to what is already there).
    pub fn with_header<H: CommandHeader>(mut self, header: &H) -> Self {
        self.set_header(header);
        self
    }

    /// Writes a typed header into `extFields` (added to what is already there).
    pub fn set_header<H: CommandHeader>(&mut self, header: &H) {
        header.to_ext_fields(&mut self.ext_fields);
    }

    /// Parses `extFields` as a typed header.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::from_ext_fields(&self.ext_fields)
    }

    /// One `extFields` value.
    pub fn ext_field(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key).map(String::as_str)
    }

    /// Sets the header encoding used when this command is sent.
    pub fn with_serialize_type(mut self, serialize_type: SerializeType) -> Self {
        self.serialize_type = serialize_type;
        self
    }

    /// Marks the request as one-way: the peer sends no response.
    pub fn into_oneway(mut self) -> Self {
        self.flag |= FLAG_ONEWAY;
        self
    }

    /// Whether this is a response (flag bit 0).
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// Whether this is a request that expects no response (flag bit 1). The C++ client
    /// sends its one-way requests without this bit, so behaviour must not depend on it.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Whether the code is `SUCCESS` (meaningful on responses).
    pub fn is_success(&self) -> bool {
        self.code == response::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct TopicHeader {
        topic: String,
        queue_id: Option<i32>,
    }

    impl CommandHeader for TopicHeader {
        fn to_ext_fields(&self, ext: &mut ExtFields) {
            ext.insert("topic".into(), self.topic.clone());
            if let Some(queue_id) = self.queue_id {
                ext.insert("queueId".into(), queue_id.to_string());
            }
        }

        fn from_ext_fields(ext: &ExtFields) -> Result<Self, HeaderError> {
            let topic = ext
                .get("topic")
                .ok_or(HeaderError::Missing("topic"))?
                .clone();
            let queue_id = match ext.get("queueId") {
                None => None,
                Some(text) => Some(text.parse().map_err(|_| HeaderError::Invalid {
                    field: "queueId",
                    value: text.clone(),
                })?),
            };
            Ok(TopicHeader { topic, queue_id })
        }
    }

    #[test]
    fn requests_get_distinct_non_negative_opaques_and_java_identity() {
        let first = RemotingCommand::request(105);
        let second = RemotingCommand::request(105);
        assert_ne!(first.opaque, second.opaque);
        assert!(first.opaque >= 0 && second.opaque >= 0);
        assert_eq!(first.language, LanguageCode::Java);
        assert_eq!(first.version, version::V5_3_3);
        assert!(!first.is_response());
        assert!(!first.is_oneway());
    }

    #[test]
    fn responses_echo_the_opaque_and_set_the_response_flag() {
        let request = RemotingCommand::request(34).into_oneway();
        let response = RemotingCommand::response_to(&request, response::SYSTEM_BUSY);
        assert_eq!(response.opaque, request.opaque);
        assert!(response.is_response());
        assert!(!response.is_oneway());
        assert_eq!(response.code, response::SYSTEM_BUSY);
        assert!(request.is_oneway());
    }

    #[test]
    fn responses_are_json_even_to_binary_requests() {
        let request = RemotingCommand::request(105).with_serialize_type(SerializeType::RocketMq);
        assert_eq!(
            RemotingCommand::success_to(&request).serialize_type,
            SerializeType::Json
        );
    }

    #[test]
    fn not_supported_uses_javas_remark() {
        let request = RemotingCommand::request(9999);
        let response = RemotingCommand::not_supported_to(&request);
        assert_eq!(response.code, response::REQUEST_CODE_NOT_SUPPORTED);
        assert_eq!(
            response.remark.as_deref(),
            Some(" request type 9999 not supported")
        );
    }

    #[test]
    fn typed_headers_round_trip_through_ext_fields() {
        let header = TopicHeader {
            topic: "TopicTest".into(),
            queue_id: Some(3),
        };
        let command = RemotingCommand::request(105)
            .with_ext_field("AccessKey", "ak")
            .with_header(&header);
        assert_eq!(command.ext_field("topic"), Some("TopicTest"));
        assert_eq!(command.ext_field("queueId"), Some("3"));
        assert_eq!(command.ext_field("AccessKey"), Some("ak"));
        assert_eq!(command.decode_header::<TopicHeader>(), Ok(header));
    }

    #[test]
    fn decoding_a_missing_header_field_is_an_error() {
        let command = RemotingCommand::request(105);
        assert_eq!(
            command.decode_header::<TopicHeader>(),
            Err(HeaderError::Missing("topic"))
        );
    }

    #[test]
    fn serialize_type_bytes() {
        assert_eq!(SerializeType::from_code(0), Some(SerializeType::Json));
        assert_eq!(SerializeType::from_code(1), Some(SerializeType::RocketMq));
        assert_eq!(SerializeType::from_code(2), None);
        assert_eq!(SerializeType::RocketMq.code(), 1);
    }
}
