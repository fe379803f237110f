//! Request and response codes, with RocketMQ's numbers and names.

/// Declares codes as `pub const NAME: i32`, and `ALL`: every code with its name, which
/// RocketMQ's metrics label in lower case (`rocketmq_rpc_latency{request_code="send_message_v2"}`).
macro_rules! named_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal; )*) => {
        $( $(#[$doc])* pub const $name: i32 = $value; )*

        /// Every code with its name.
        pub const ALL: &[(i32, &str)] = &[$( ($value, stringify!($name)), )*];
    };
}

/// Request codes (`RequestCode` in RocketMQ).
pub mod request {
    named_codes! {
        SEND_MESSAGE = 10;
        PULL_MESSAGE = 11;
        QUERY_MESSAGE = 12;
        QUERY_BROKER_OFFSET = 13;
        QUERY_CONSUMER_OFFSET = 14;
        UPDATE_CONSUMER_OFFSET = 15;
        UPDATE_AND_CREATE_TOPIC = 17;
        GET_ALL_TOPIC_CONFIG = 21;
        GET_TOPIC_CONFIG_LIST = 22;
        GET_TOPIC_NAME_LIST = 23;
        UPDATE_BROKER_CONFIG = 25;
        GET_BROKER_CONFIG = 26;
        GET_BROKER_RUNTIME_INFO = 28;
        SEARCH_OFFSET_BY_TIMESTAMP = 29;
        GET_MAX_OFFSET = 30;
        GET_MIN_OFFSET = 31;
        GET_EARLIEST_MSG_STORETIME = 32;
        VIEW_MESSAGE_BY_ID = 33;
        HEART_BEAT = 34;
        UNREGISTER_CLIENT = 35;
        CONSUMER_SEND_MSG_BACK = 36;
        END_TRANSACTION = 37;
        GET_CONSUMER_LIST_BY_GROUP = 38;
        CHECK_TRANSACTION_STATE = 39;
        NOTIFY_CONSUMER_IDS_CHANGED = 40;
        LOCK_BATCH_MQ = 41;
        UNLOCK_BATCH_MQ = 42;
        GET_ALL_CONSUMER_OFFSET = 43;
        GET_ALL_DELAY_OFFSET = 45;
        CHECK_CLIENT_CONFIG = 46;
        /// ACL 1.0 (`plain_acl.yml`): accounts and the global whitelist, changed on a broker.
        UPDATE_AND_CREATE_ACL_CONFIG = 50;
        DELETE_ACL_CONFIG = 51;
        GET_BROKER_CLUSTER_ACL_INFO = 52;
        UPDATE_GLOBAL_WHITE_ADDRS_CONFIG = 53;
        PUT_KV_CONFIG = 100;
        GET_KV_CONFIG = 101;
        DELETE_KV_CONFIG = 102;
        REGISTER_BROKER = 103;
        UNREGISTER_BROKER = 104;
        GET_ROUTEINFO_BY_TOPIC = 105;
        GET_BROKER_CLUSTER_INFO = 106;
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200;
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201;
        GET_TOPIC_STATS_INFO = 202;
        GET_CONSUMER_CONNECTION_LIST = 203;
        GET_PRODUCER_CONNECTION_LIST = 204;
        WIPE_WRITE_PERM_OF_BROKER = 205;
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206;
        DELETE_SUBSCRIPTIONGROUP = 207;
        GET_CONSUME_STATS = 208;
        DELETE_TOPIC_IN_BROKER = 215;
        DELETE_TOPIC_IN_NAMESRV = 216;
        REGISTER_TOPIC_IN_NAMESRV = 217;
        GET_KVLIST_BY_NAMESPACE = 219;
        RESET_CONSUMER_CLIENT_OFFSET = 220;
        GET_CONSUMER_STATUS_FROM_CLIENT = 221;
        INVOKE_BROKER_TO_RESET_OFFSET = 222;
        INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223;
        GET_TOPICS_BY_CLUSTER = 224;
        QUERY_TOPIC_CONSUME_BY_WHO = 300;
        GET_SYSTEM_TOPIC_LIST_FROM_NS = 304;
        GET_SYSTEM_TOPIC_LIST_FROM_BROKER = 305;
        GET_CONSUMER_RUNNING_INFO = 307;
        CONSUME_MESSAGE_DIRECTLY = 309;
        SEND_MESSAGE_V2 = 310;
        CLONE_GROUP_OFFSET = 314;
        VIEW_BROKER_STATS_DATA = 315;
        GET_BROKER_CONSUME_STATS = 317;
        SEND_BATCH_MESSAGE = 320;
        QUERY_DATA_VERSION = 322;
        /// Request-reply: a replier's answer (SEND_MESSAGE's header, long or V2 keys), and the
        /// broker's push of it to the requesting client.
        SEND_REPLY_MESSAGE = 324;
        SEND_REPLY_MESSAGE_V2 = 325;
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326;
        ADD_WRITE_PERM_OF_BROKER = 327;
        GET_TOPIC_CONFIG = 351;
        GET_SUBSCRIPTIONGROUP_CONFIG = 352;
        LITE_PULL_MESSAGE = 361;
        /// RocketMQ 5.3: cancel a timer message still waiting, by the recall handle its send
        /// returned.
        RECALL_MESSAGE = 370;
        /// RocketMQ 5's assignment of queues by the broker (POP mode or server-side
        /// rebalance), and the per-topic-and-group mode an operator sets.
        QUERY_ASSIGNMENT = 400;
        SET_MESSAGE_REQUEST_MODE = 401;
        GET_ALL_MESSAGE_REQUEST_MODE = 402;
        GET_BROKER_MEMBER_GROUP = 901;
        /// ACL 2.0 (RocketMQ 5.3): users and their policies, kept by the broker.
        AUTH_CREATE_USER = 3001;
        AUTH_UPDATE_USER = 3002;
        AUTH_DELETE_USER = 3003;
        AUTH_GET_USER = 3004;
        AUTH_LIST_USER = 3005;
        AUTH_CREATE_ACL = 3006;
        AUTH_UPDATE_ACL = 3007;
        AUTH_DELETE_ACL = 3008;
        AUTH_GET_ACL = 3009;
        AUTH_LIST_ACL = 3010;
        BROKER_HEARTBEAT = 904;
        /// DLedger's METADATA and LEADERSHIP_TRANSFER numbers, answered on a group member's
        /// client port: its raft status as JSON; hand leadership to ext field `transfereeId`.
        DLEDGER_METADATA = 50000;
        DLEDGER_LEADERSHIP_TRANSFER = 51005;
        /// This broker's own, next to DLedger's (which never changed its membership): add a
        /// member to a group (ext fields `nodeId`, `raftAddr`) or remove one (`nodeId`),
        /// answered by the group's leader.
        DLEDGER_ADD_MEMBER = 51100;
        DLEDGER_REMOVE_MEMBER = 51101;
        /// POP consumption (RocketMQ 5).
        POP_MESSAGE = 200050;
        ACK_MESSAGE = 200051;
        CHANGE_MESSAGE_INVISIBLETIME = 200053;
        NOTIFICATION = 200054;
        POLLING_INFO = 200055;
        /// Lite topics (RocketMQ 5.5): a pop over the lite topics a client subscribed, and
        /// the changes to those subscriptions (a JSON body of subscription changes).
        POP_LITE_MESSAGE = 200070;
        LITE_SUBSCRIPTION_CTL = 200071;
        BATCH_ACK_MESSAGE = 200151;
    }
}

/// Response codes (`ResponseCode` / `RemotingSysResponseCode` in RocketMQ).
pub mod response {
    named_codes! {
        SUCCESS = 0;
        SYSTEM_ERROR = 1;
        SYSTEM_BUSY = 2;
        REQUEST_CODE_NOT_SUPPORTED = 3;
        TRANSACTION_FAILED = 4;
        FLUSH_DISK_TIMEOUT = 10;
        SLAVE_NOT_AVAILABLE = 11;
        FLUSH_SLAVE_TIMEOUT = 12;
        MESSAGE_ILLEGAL = 13;
        SERVICE_NOT_AVAILABLE = 14;
        VERSION_NOT_SUPPORTED = 15;
        NO_PERMISSION = 16;
        TOPIC_NOT_EXIST = 17;
        TOPIC_EXIST_ALREADY = 18;
        PULL_NOT_FOUND = 19;
        PULL_RETRY_IMMEDIATELY = 20;
        PULL_OFFSET_MOVED = 21;
        QUERY_NOT_FOUND = 22;
        SUBSCRIPTION_PARSE_FAILED = 23;
        SUBSCRIPTION_NOT_EXIST = 24;
        SUBSCRIPTION_NOT_LATEST = 25;
        SUBSCRIPTION_GROUP_NOT_EXIST = 26;
        FILTER_DATA_NOT_EXIST = 27;
        FILTER_DATA_NOT_LATEST = 28;
        INVALID_PARAMETER = 29;
        TRANSACTION_SHOULD_COMMIT = 200;
        TRANSACTION_SHOULD_ROLLBACK = 201;
        TRANSACTION_STATE_UNKNOW = 202;
        TRANSACTION_STATE_GROUP_WRONG = 203;
        NO_BUYER_ID = 204;
        NOT_IN_CURRENT_UNIT = 205;
        CONSUMER_NOT_ONLINE = 206;
        CONSUME_MSG_TIMEOUT = 207;
        NO_MESSAGE = 208;
        /// ACL 1.0 admin calls that failed (RocketMQ 4.x numbers, which 5.x reuses for
        /// POLLING_FULL and POLLING_TIMEOUT; they answer different requests).
        UPDATE_AND_CREATE_ACL_CONFIG_FAILED = 209;
        DELETE_ACL_CONFIG_FAILED = 210;
        UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED = 211;
        /// A pop (or notification) found nothing and too many are already waiting.
        POLLING_FULL = 209;
        /// A pop found nothing within its poll time.
        POLLING_TIMEOUT = 210;
        FLOW_CONTROL = 215;
        /// A new lite topic beyond the broker's quota of LMQs.
        LMQ_QUOTA_EXCEEDED = 2017;
        /// A lite subscription beyond the client's or the broker's quota.
        LITE_SUBSCRIPTION_QUOTA_EXCEEDED = 2018;
        NOT_LEADER_FOR_QUEUE = 501;
        ILLEGAL_OPERATION = 604;
        GO_AWAY = 1500;
    }
}
