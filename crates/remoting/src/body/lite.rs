//! LITE_SUBSCRIPTION_CTL's body (RocketMQ 5.5 lite topics): changes to the lite topics
//! clients consume, as the gRPC SyncLiteSubscription call names them.

use std::fmt;

// The names `java_enum!` expands to.
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::fastjson::{self, JsonError};
use super::heartbeat::java_enum;

java_enum! {
    /// What a change does to the client's set of lite topics: COMPLETE_ADD makes it exactly
    /// the one named, COMPLETE_REMOVE drops the client (it is gone).
    pub enum LiteSubscriptionAction {
        PartialAdd = "PARTIAL_ADD",
        PartialRemove = "PARTIAL_REMOVE",
        CompleteAdd = "COMPLETE_ADD",
        CompleteRemove = "COMPLETE_REMOVE",
    }
}

java_enum! {
    /// Where the group is to consume a newly added lite topic from: by [`policy`] (its
    /// `value`), at an offset, `value` messages before the group's offset (TAIL_N), or from
    /// a time.
    pub enum OffsetOptionType {
        Policy = "POLICY",
        Offset = "OFFSET",
        TailN = "TAIL_N",
        Timestamp = "TIMESTAMP",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetOption {
    #[serde(rename = "type")]
    pub kind: OffsetOptionType,
    pub value: i64,
}

/// `OffsetOption` policy values.
pub mod policy {
    pub const LAST: i64 = 0;
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 2;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiteSubscriptionDto {
    pub action: LiteSubscriptionAction,
    pub client_id: String,
    pub group: String,
    /// The parent topic the client's group is bound to.
    pub topic: String,
    #[serde(default)]
    pub lite_topic_set: Vec<String>,
    #[serde(default)]
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_option: Option<OffsetOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LiteSubscriptionCtlRequestBody {
    pub subscription_set: Vec<LiteSubscriptionDto>,
}

impl LiteSubscriptionCtlRequestBody {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        fastjson::encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_change_round_trips_through_its_json() {
        let body = LiteSubscriptionCtlRequestBody {
            subscription_set: vec![LiteSubscriptionDto {
                action: LiteSubscriptionAction::PartialAdd,
                client_id: "c1".into(),
                group: "g".into(),
                topic: "P".into(),
                lite_topic_set: vec!["a".into(), "b".into()],
                version: 3,
                offset_option: Some(OffsetOption {
                    kind: OffsetOptionType::Policy,
                    value: policy::MIN,
                }),
            }],
        };
        let text = String::from_utf8(body.encode()).unwrap();
        assert!(text.contains("\"action\":\"PARTIAL_ADD\""), "{text}");
        assert!(text.contains("\"liteTopicSet\":[\"a\",\"b\"]"), "{text}");
        assert_eq!(
            LiteSubscriptionCtlRequestBody::decode(text.as_bytes()).unwrap(),
            body
        );
        assert!(LiteSubscriptionCtlRequestBody::decode(b"{\"subscriptionSet\":[{}]}").is_err());
    }
}
