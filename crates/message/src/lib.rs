//! The stored message: RocketMQ's message as it lies on disk and travels in pull
//! responses, and the names and rules that go with it. No I/O, no sockets: the store, the
//! wire, the broker and the client all build on it.
//!
//! - [`record`]: the stored-message record encoder, field offsets and in-place patching.
//! - [`view`]: zero-copy, bounds-checked decoding of records and concatenated pull bodies,
//!   and the dispatch info a store indexes.
//! - [`properties`]: the `0x01`/`0x02` properties string and well-known keys.
//! - [`id`]: offset msgIds and client unique ids (`UNIQ_KEY`).
//! - [`tag`]: Java `hashCode` tag codes and TAG subscription expressions.
//! - [`batch`]: batch send bodies (client to broker).
//! - [`topic`]: the reserved topic names (system topics, `SCHEDULE_TOPIC_XXXX`,
//!   `RMQ_SYS_*`, `%RETRY%` / `%DLQ%` topics).
//! - [`validate`]: topic and group naming rules.
//! - [`delay`]: delay levels (`messageDelayLevel`) and the level a message asks for.
//! - [`sysflag`]: message SYSFLAG, pull sysFlag and compression bits.

pub mod batch;
pub mod delay;
pub mod id;
pub mod properties;
pub mod record;
pub mod sysflag;
pub mod tag;
pub mod topic;
pub mod validate;
pub mod view;

pub use batch::{decode_batch, encode_batch, BatchError, BatchItem, BatchIter};
pub use delay::{DelayLevels, DelayLevelsError};
pub use id::{decode_offset_msg_id, offset_msg_id, MsgIdError, OffsetMsgId, UniqIdGenerator};
pub use properties::{keys, MessageProperties};
pub use record::{
    body_crc, encode, encode_into, EncodeError, EncodedRecord, MessageDraft, MAGIC_V1, MAGIC_V2,
};
pub use tag::{tag_hash, TagFilter};
pub use validate::{validate_group, validate_topic, NameError};
pub use view::{decode_all, DecodeError, DispatchInfo, MessageIter, MessageView, StoredMessage};

#[cfg(test)]
mod tests;
