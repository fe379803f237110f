//! Name-server requests: broker registration, routes, KV config.

command_header! {
    /// REGISTER_BROKER (103). The request `version` also tells how to read the body.
    pub struct RegisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        ha_server_addr: String = "haServerAddr",
        /// 0 = master.
        broker_id: i64 = "brokerId",
        heartbeat_timeout_millis: Option<i64> = "heartbeatTimeoutMillis",
        /// Its absence marks a pre-5.x broker.
        enable_acting_master: Option<bool> = "enableActingMaster",
        compressed: bool = "compressed" => false,
        /// CRC32 of the body masked to 31 bits; 0 skips the check.
        body_crc32: i32 = "bodyCrc32" => 0,
        zone_name: Option<String> = "__ZONE_NAME",
        /// Not RocketMQ's: the raft term of a broker group member, so a name server keeps
        /// the master of the newest term when an old master that was frozen registers late.
        raft_term: Option<i64> = "raftTerm",
    }
}

command_header! {
    /// REGISTER_BROKER response: filled for slaves from the live master entry.
    pub struct RegisterBrokerResponseHeader {
        ha_server_addr: Option<String> = "haServerAddr",
        master_addr: Option<String> = "masterAddr",
    }
}

command_header! {
    /// UNREGISTER_BROKER (104); QUERY_DATA_VERSION (322) carries the same keys.
    pub struct UnRegisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        broker_id: i64 = "brokerId",
    }
}

pub type QueryDataVersionRequestHeader = UnRegisterBrokerRequestHeader;

command_header! {
    pub struct QueryDataVersionResponseHeader {
        changed: bool = "changed" => false,
    }
}

command_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105).
    pub struct GetRouteInfoRequestHeader {
        topic: String = "topic",
        /// Ask for quoted numeric keys regardless of the request version.
        accept_standard_json_only: Option<bool> = "acceptStandardJsonOnly",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216).
    pub struct DeleteTopicFromNamesrvRequestHeader {
        topic: String = "topic",
        cluster_name: Option<String> = "clusterName",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102).
    pub struct GetKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
    }
}

pub type DeleteKvConfigRequestHeader = GetKvConfigRequestHeader;

command_header! {
    pub struct GetKvConfigResponseHeader {
        value: Option<String> = "value",
    }
}

command_header! {
    /// GET_KVLIST_BY_NAMESPACE (219): the response body is a `KvTable`.
    pub struct GetKvListByNamespaceRequestHeader {
        namespace: String = "namespace",
    }
}

command_header! {
    /// PUT_KV_CONFIG (100).
    pub struct PutKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
        value: String = "value",
    }
}

command_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205).
    pub struct WipeWritePermOfBrokerRequestHeader {
        broker_name: String = "brokerName",
    }
}

command_header! {
    pub struct WipeWritePermOfBrokerResponseHeader {
        wipe_topic_count: i32 = "wipeTopicCount",
    }
}

command_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327).
    pub struct AddWritePermOfBrokerRequestHeader {
        broker_name: String = "brokerName",
    }
}

command_header! {
    pub struct AddWritePermOfBrokerResponseHeader {
        add_topic_count: i32 = "addTopicCount",
    }
}
