//! HEART_BEAT bodies and the consumer/producer connection views built from them.
//!
//! Clients differ: Java writes enums by name and `subVersion` as a number; the C++ client
//! writes enums as ordinals, `subVersion` as a string and leaves out empty arrays; Java 5.x
//! adds `heartbeatFingerprint` and `withoutSub`. The types here read all of those and write
//! the Java form.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::fastjson::{self, JsonError};
use message::tag::{SubscriptionError, TagFilter, EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};

/// Declares a Java enum that serializes by name and deserializes from its name or ordinal.
macro_rules! java_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $java:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The Java enum constant's name.
            pub fn java_name(self) -> &'static str {
                match self { $($name::$variant => $java),* }
            }

            /// The Java ordinal (declaration index), what the C++ client sends.
            pub fn ordinal(self) -> usize {
                Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
            }

            pub fn from_java_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.java_name() == name)
            }

            pub fn from_ordinal(ordinal: u64) -> Option<Self> {
                usize::try_from(ordinal).ok().and_then(|i| Self::ALL.get(i).copied())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.java_name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct NameOrOrdinal;
                impl Visitor<'_> for NameOrOrdinal {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} name or ordinal", stringify!($name))
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::from_java_name(text)
                            .or_else(|| text.parse().ok().and_then($name::from_ordinal))
                            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
                    }
                    fn visit_u64<E: de::Error>(self, ordinal: u64) -> Result<$name, E> {
                        $name::from_ordinal(ordinal)
                            .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(ordinal), &self))
                    }
                    fn visit_i64<E: de::Error>(self, ordinal: i64) -> Result<$name, E> {
                        u64::try_from(ordinal)
                            .ok()
                            .and_then($name::from_ordinal)
                            .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(ordinal), &self))
                    }
                }
                deserializer.deserialize_any(NameOrOrdinal)
            }
        }
    };
}
pub(crate) use java_enum;

java_enum! {
    /// Pull (`CONSUME_ACTIVELY`), push (`CONSUME_PASSIVELY`) or pop.
    pub enum ConsumeType {
        ConsumeActively = "CONSUME_ACTIVELY",
        ConsumePassively = "CONSUME_PASSIVELY",
        ConsumePop = "CONSUME_POP",
    }
}

java_enum! {
    pub enum MessageModel {
        Broadcasting = "BROADCASTING",
        Clustering = "CLUSTERING",
    }
}

java_enum! {
    pub enum ConsumeFromWhere {
        ConsumeFromLastOffset = "CONSUME_FROM_LAST_OFFSET",
        ConsumeFromLastOffsetAndFromMinWhenBootFirst = "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        ConsumeFromMinOffset = "CONSUME_FROM_MIN_OFFSET",
        ConsumeFromMaxOffset = "CONSUME_FROM_MAX_OFFSET",
        ConsumeFromFirstOffset = "CONSUME_FROM_FIRST_OFFSET",
        ConsumeFromTimestamp = "CONSUME_FROM_TIMESTAMP",
    }
}

java_enum! {
    /// A client's implementation language (`LanguageCode`); the ordinal is the code byte.
    pub enum LanguageCode {
        Java = "JAVA",
        Cpp = "CPP",
        Dotnet = "DOTNET",
        Python = "PYTHON",
        Delphi = "DELPHI",
        Erlang = "ERLANG",
        Ruby = "RUBY",
        Other = "OTHER",
        Http = "HTTP",
        Go = "GO",
        Php = "PHP",
        Oms = "OMS",
        Rust = "RUST",
        NodeJs = "NODE_JS",
    }
}

/// Reads an i64 from a JSON number or a numeric string (C++ sends `subVersion` as text).
fn i64_from_number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Lenient;
    impl Visitor<'_> for Lenient {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a numeric string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e18 {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    deserializer.deserialize_any(Lenient)
}

/// Tag hash codes as Java's fastjson reads them into `Set<Integer>`: numbers, or numeric
/// strings (the Go client writes `"codeSet":["2598919"]`); `null` is no codes.
fn tag_codes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i32>, D::Error> {
    struct Code(i32);
    impl<'de> Deserialize<'de> for Code {
        fn deserialize<D2: Deserializer<'de>>(deserializer: D2) -> Result<Code, D2::Error> {
            let code = i64_from_number_or_string(deserializer)?;
            i32::try_from(code).map(Code).map_err(|_| {
                de::Error::invalid_value(de::Unexpected::Signed(code), &"a 32-bit tag hash")
            })
        }
    }
    let codes = Option::<Vec<Code>>::deserialize(deserializer)?;
    Ok(codes.unwrap_or_default().into_iter().map(|c| c.0).collect())
}

/// A consumer's subscription to one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    pub class_filter_mode: bool,
    pub topic: String,
    pub sub_string: String,
    pub tags_set: Vec<String>,
    #[serde(deserialize_with = "tag_codes")]
    pub code_set: Vec<i32>,
    #[serde(deserialize_with = "i64_from_number_or_string")]
    pub sub_version: i64,
    pub expression_type: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: String::new(),
            sub_string: "*".to_owned(),
            tags_set: Vec::new(),
            code_set: Vec::new(),
            sub_version: 0,
            expression_type: EXPRESSION_TYPE_TAG.to_owned(),
        }
    }
}

impl SubscriptionData {
    /// A TAG subscription to `topic` built the way Java's `FilterAPI` builds it.
    pub fn tag(topic: &str, expression: &str, sub_version: i64) -> Result<Self, SubscriptionError> {
        Ok(Self::of_tags(
            topic,
            &TagFilter::parse(expression)?,
            sub_version,
        ))
    }

    /// The TAG subscription of an already parsed filter.
    pub fn of_tags(topic: &str, filter: &TagFilter, sub_version: i64) -> Self {
        SubscriptionData {
            topic: topic.to_owned(),
            sub_string: filter.sub_string.clone(),
            tags_set: filter.tags.iter().cloned().collect(),
            code_set: filter.codes.iter().copied().collect(),
            sub_version,
            ..SubscriptionData::default()
        }
    }

    /// A SQL92 subscription: the expression alone, no tag sets (Java's `bySql`).
    pub fn sql92(topic: &str, expression: &str, sub_version: i64) -> Self {
        SubscriptionData {
            topic: topic.to_owned(),
            sub_string: expression.to_owned(),
            sub_version,
            expression_type: EXPRESSION_TYPE_SQL92.to_owned(),
            ..SubscriptionData::default()
        }
    }

    /// The broker-side filter, rebuilt from `subString` rather than trusting the client's
    /// sets (C++ omits them).
    pub fn tag_filter(&self) -> Result<TagFilter, SubscriptionError> {
        TagFilter::parse_typed(&self.sub_string, Some(&self.expression_type))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    pub group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    #[serde(default)]
    pub group_name: String,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    #[serde(default)]
    pub subscription_data_set: Vec<SubscriptionData>,
    #[serde(default)]
    pub unit_mode: bool,
}

/// HEART_BEAT request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub producer_data_set: Vec<ProducerData>,
    pub consumer_data_set: Vec<ConsumerData>,
    /// 5.x heartbeat v2: non-zero enables fingerprint comparison.
    pub heartbeat_fingerprint: i32,
    /// 5.x: subscriptions were left out because the fingerprint did not change.
    pub without_sub: bool,
}

impl HeartbeatData {
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }

    pub fn encode(&self) -> Vec<u8> {
        fastjson::encode(self)
    }
}

/// One client channel, as admin views list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub client_id: String,
    pub client_addr: String,
    pub language: LanguageCode,
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    #[serde(default)]
    pub connection_set: Vec<Connection>,
    #[serde(default)]
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consume_type: Option<ConsumeType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message_model: Option<MessageModel>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consume_from_where: Option<ConsumeFromWhere>,
}

/// GET_PRODUCER_CONNECTION_LIST response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerConnection {
    pub connection_set: Vec<Connection>,
}

/// CHECK_CLIENT_CONFIG request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientRequestBody {
    pub client_id: String,
    pub group: String,
    pub subscription_data: Option<SubscriptionData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_heartbeat() {
        let body = br#"{"clientID":"192.168.1.10@12345","producerDataSet":[{"groupName":"PG"}],
          "consumerDataSet":[{"groupName":"CG","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",
          "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,
          "topic":"T","subString":"TagA || TagB","tagsSet":["TagA","TagB"],"codeSet":[2598919,2598920],
          "subVersion":1700000000000,"expressionType":"TAG"}],"unitMode":false}],
          "heartbeatFingerprint":0,"withoutSub":false}"#;
        let heartbeat = HeartbeatData::decode(body).unwrap();
        assert_eq!(heartbeat.client_id, "192.168.1.10@12345");
        assert_eq!(heartbeat.producer_data_set[0].group_name, "PG");
        let consumer = &heartbeat.consumer_data_set[0];
        assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(consumer.message_model, MessageModel::Clustering);
        let sub = &consumer.subscription_data_set[0];
        assert_eq!(sub.sub_version, 1_700_000_000_000);
        assert!(sub.tag_filter().unwrap().matches_code(2_598_920));
        assert_eq!(
            HeartbeatData::decode(&heartbeat.encode()).unwrap(),
            heartbeat
        );
    }

    #[test]
    fn cpp_heartbeat_with_ordinals_string_version_and_missing_arrays() {
        let body =
            b"{\"clientID\":\"10.0.0.5@777#1\",\"consumerDataSet\":[{\"consumeFromWhere\":4,\
            \"consumeType\":1,\"groupName\":\"CG\",\"messageModel\":1,\"subscriptionDataSet\":[\
            {\"subString\":\"TagA\",\"subVersion\":\"1700000000001\",\"topic\":\"T\"}]}]}\n";
        let heartbeat = HeartbeatData::decode(body).unwrap();
        assert!(heartbeat.producer_data_set.is_empty());
        let consumer = &heartbeat.consumer_data_set[0];
        assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(consumer.message_model, MessageModel::Clustering);
        assert_eq!(
            consumer.consume_from_where,
            ConsumeFromWhere::ConsumeFromFirstOffset
        );
        let sub = &consumer.subscription_data_set[0];
        assert_eq!(sub.sub_version, 1_700_000_000_001);
        assert!(sub.tags_set.is_empty(), "C++ leaves the sets out");
        assert_eq!(sub.expression_type, "TAG");
        assert!(sub.tag_filter().unwrap().matches_tag(Some("TagA")));
    }

    #[test]
    fn rust_heartbeat_and_bad_enums() {
        let body = br#"{"clientID":"c","producerDataSet":[],"consumerDataSet":[{"groupName":"CG",
            "consumeType":"CONSUME_ACTIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_TIMESTAMP",
            "subscriptionDataSet":[],"unitMode":false}],"heartbeatFingerprint":123,"withoutSub":true}"#;
        let heartbeat = HeartbeatData::decode(body).unwrap();
        assert!(heartbeat.without_sub);
        assert_eq!(heartbeat.heartbeat_fingerprint, 123);
        let bad = br#"{"clientID":"c","consumerDataSet":[{"groupName":"CG","consumeType":9,"messageModel":1,"consumeFromWhere":0}]}"#;
        assert!(HeartbeatData::decode(bad).is_err());
        let bad = br#"{"clientID":"c","consumerDataSet":[{"groupName":"CG","consumeType":"PUSH","messageModel":1,"consumeFromWhere":0}]}"#;
        assert!(HeartbeatData::decode(bad).is_err());
    }

    #[test]
    fn enums_by_name_and_ordinal() {
        assert_eq!(LanguageCode::Rust.ordinal(), 12);
        assert_eq!(LanguageCode::from_ordinal(1), Some(LanguageCode::Cpp));
        assert_eq!(
            LanguageCode::from_java_name("NODE_JS"),
            Some(LanguageCode::NodeJs)
        );
        assert_eq!(ConsumeFromWhere::ConsumeFromTimestamp.ordinal(), 5);
        assert_eq!(
            serde_json::to_string(&MessageModel::Clustering).unwrap(),
            "\"CLUSTERING\""
        );
        assert_eq!(
            serde_json::from_str::<MessageModel>("\"0\"").unwrap(),
            MessageModel::Broadcasting
        );
    }

    #[test]
    fn go_heartbeat_with_codes_as_strings() {
        // What rocketmq-client-go v2.1.2 sends for `TagA || TagB`.
        let body = br#"{"clientID":"127.0.0.1@1@go","producerDataSet":[],
          "consumerDataSet":[{"groupName":"CG","consumeType":"CONSUME_PASSIVELY",
          "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
          "subscriptionDataSet":[{"classFilterMode":false,"topic":"GSync","subString":"TagA || TagB",
          "tagsSet":["TagA","TagB"],"codeSet":["2598919","2598920"],
          "subVersion":1796266179750330569,"expressionType":"TAG"}],"unitMode":false}]}"#;
        let heartbeat = HeartbeatData::decode(body).unwrap();
        let sub = &heartbeat.consumer_data_set[0].subscription_data_set[0];
        assert_eq!(sub.code_set, [2_598_919, 2_598_920]);
        assert!(sub.tag_filter().unwrap().matches_code(2_598_919));
        let null_codes = br#"{"clientID":"c","consumerDataSet":[{"groupName":"CG",
          "consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",
          "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
          "subscriptionDataSet":[{"topic":"T","subString":"*","codeSet":null}]}]}"#;
        let heartbeat = HeartbeatData::decode(null_codes).unwrap();
        assert!(heartbeat.consumer_data_set[0].subscription_data_set[0]
            .code_set
            .is_empty());
        let not_a_code = br#"{"clientID":"c","consumerDataSet":[{"groupName":"CG",
          "consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",
          "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
          "subscriptionDataSet":[{"topic":"T","subString":"A","codeSet":["A"]}]}]}"#;
        assert!(HeartbeatData::decode(not_a_code).is_err());
    }

    #[test]
    fn subscription_built_like_filter_api() {
        let sub = SubscriptionData::tag("T", "TagB || TagA", 5).unwrap();
        assert_eq!(sub.tags_set, ["TagA", "TagB"]);
        assert_eq!(sub.code_set, [2_598_919, 2_598_920]);
        let all = SubscriptionData::tag("T", "", 5).unwrap();
        assert_eq!(all.sub_string, "*");
        let json = serde_json::to_string(&all).unwrap();
        assert!(json.contains(r#""subVersion":5"#) && json.contains(r#""expressionType":"TAG""#));
    }

    #[test]
    fn consumer_connection_json() {
        let connection = ConsumerConnection {
            connection_set: vec![Connection {
                client_id: "c1".into(),
                client_addr: "127.0.0.1:5555".into(),
                language: LanguageCode::Java,
                version: 479,
            }],
            subscription_table: BTreeMap::new(),
            consume_type: Some(ConsumeType::ConsumePassively),
            message_model: Some(MessageModel::Clustering),
            consume_from_where: Some(ConsumeFromWhere::ConsumeFromLastOffset),
        };
        let json = serde_json::to_string(&connection).unwrap();
        assert!(json.contains(r#""language":"JAVA""#));
        assert_eq!(
            serde_json::from_str::<ConsumerConnection>(&json).unwrap(),
            connection
        );
    }
}
