//! JSON bodies of requests and responses, with fastjson's quirks where clients depend on
//! them.
//!
//! - [`fastjson`]: a bounded reader for fastjson's non-standard JSON (unquoted numeric
//!   keys, object keys) and small writing helpers.
//! - [`route`]: TopicRouteData / QueueData / BrokerData, ClusterInfo, TopicList, and the
//!   broker-id key quoting rule.
//! - [`heartbeat`]: HeartbeatData and its parts (Java, C++ and Rust variants), consumer and
//!   producer connection views, Java enums.
//! - [`topic`]: TopicConfig and perm bits, DataVersion, TopicConfigSerializeWrapper,
//!   RegisterBrokerBody, KvTable, SubscriptionGroupConfig.
//! - [`queue`]: MessageQueue, lock/unlock bodies, consumer lists, and the
//!   MessageQueue-keyed admin statistics (TopicStatsTable, ConsumeStats, ResetOffsetBody).
//! - [`pop`]: request modes, queue assignments and batch acks (RocketMQ 5's POP).
//! - [`auth`]: ACL 2.0's users and ACLs (UserInfo, AclInfo) as the auth admin requests
//!   carry them.
//! - [`running`]: a consumer's running info, broker stats data and a broker's consume
//!   stats list (operators' diagnostics).
//!
//! Every type decodes with `decode(&[u8])` (standard JSON or fastjson's dialect) and
//! encodes with `encode()` (or `encode(KeyQuoting)` where the quoting matters).

pub mod auth;
pub mod fastjson;
pub mod heartbeat;
pub mod lite;
pub mod pop;
pub mod queue;
pub mod route;
pub mod running;
pub mod topic;

pub use fastjson::JsonError;
pub use heartbeat::{
    CheckClientRequestBody, Connection, ConsumeFromWhere, ConsumeType, ConsumerConnection,
    ConsumerData, HeartbeatData, LanguageCode, MessageModel, ProducerConnection, ProducerData,
    SubscriptionData,
};
pub use queue::{
    ConsumeStats, ConsumerListBody, GetConsumerStatusBody, GroupList, LockBatchRequestBody,
    LockBatchResponseBody, MessageQueue, OffsetWrapper, ResetOffsetBody, ResetOffsetBodyForC,
    TopicOffset, TopicStatsTable, UnlockBatchRequestBody,
};
pub use route::{BrokerData, ClusterInfo, KeyQuoting, QueueData, TopicList, TopicRouteData};
pub use running::{
    BrokerStatsData, BrokerStatsItem, ConsumeStatsList, ConsumeStatus, ConsumerRunningInfo,
    ProcessQueueInfo,
};
pub use topic::{
    perm, DataVersion, KvTable, RegisterBrokerBody, SubscriptionGroupConfig,
    SubscriptionGroupWrapper, TopicConfig, TopicConfigSerializeWrapper,
};
