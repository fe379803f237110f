//! Routes and cluster membership: TopicRouteData (GET_ROUTEINFO_BY_TOPIC), ClusterInfo
//! (GET_BROKER_CLUSTER_INFO) and TopicList.
//!
//! `brokerAddrs` is keyed by broker id (0 = master). fastjson writes those keys unquoted
//! (`{0:"ip:port"}`), which is not JSON; Java name servers since 4.9.4 quote them for
//! requesters of version >= 401 (V4_9_4) or that set `acceptStandardJsonOnly`, and keep the
//! legacy form for older clients (the C++ client reports 333). [`KeyQuoting`] selects the
//! form; the decoders accept both.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::fastjson::{self, push_json, push_json_string, JsonError};

/// The broker id of a master in `brokerAddrs`.
pub const MASTER_ID: i64 = 0;
/// First request version whose route responses use quoted numeric keys (V4_9_4).
pub const STANDARD_JSON_MIN_VERSION: i32 = 401;

/// How to write numeric map keys (broker ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyQuoting {
    /// Standard JSON: `{"0":"addr"}`.
    Quoted,
    /// fastjson's legacy form: `{0:"addr"}`.
    Unquoted,
}

impl KeyQuoting {
    /// The Java name server's rule for route responses.
    pub fn for_route_request(request_version: i32, accept_standard_json_only: bool) -> Self {
        if accept_standard_json_only || request_version >= STANDARD_JSON_MIN_VERSION {
            KeyQuoting::Quoted
        } else {
            KeyQuoting::Unquoted
        }
    }
}

/// One broker group's queues for a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    /// Java 4.8 and older spelled it `topicSynFlag`.
    #[serde(alias = "topicSynFlag")]
    pub topic_sys_flag: i32,
}

/// One broker group: its name, cluster and member addresses by broker id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addrs: BTreeMap<i64, String>,
    pub enable_acting_master: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// The master's address (id 0), if one is registered.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }

    /// Writes the JSON object with broker-id keys quoted or not, fields sorted like
    /// fastjson's output.
    pub fn write_json(&self, out: &mut String, quoting: KeyQuoting) {
        out.push_str("{\"brokerAddrs\":{");
        for (index, (id, addr)) in self.broker_addrs.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            match quoting {
                KeyQuoting::Quoted => push_json_string(out, &id.to_string()),
                KeyQuoting::Unquoted => out.push_str(&id.to_string()),
            }
            out.push(':');
            push_json_string(out, addr);
        }
        out.push_str("},\"brokerName\":");
        push_json_string(out, &self.broker_name);
        out.push_str(",\"cluster\":");
        push_json_string(out, &self.cluster);
        out.push_str(",\"enableActingMaster\":");
        out.push_str(if self.enable_acting_master {
            "true"
        } else {
            "false"
        });
        if let Some(zone) = &self.zone_name {
            out.push_str(",\"zoneName\":");
            push_json_string(out, zone);
        }
        out.push('}');
    }
}

/// GET_ROUTEINFO_BY_TOPIC response body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    /// `brokerName:queueCount;...` for ordered topics; omitted when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    /// Always present (the Rust client requires it), normally empty.
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// Static-topic mapping, passed through untouched.
    #[serde(
        skip_serializing_if = "Option::is_none",
        alias = "topicQueueMappingInfo"
    )]
    pub topic_queue_mapping_by_broker: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TopicRouteData {
    /// The body bytes, with broker-id keys quoted or not.
    pub fn encode(&self, quoting: KeyQuoting) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"brokerDatas\":[");
        for (index, broker) in self.broker_datas.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            broker.write_json(&mut out, quoting);
        }
        out.push_str("],\"filterServerTable\":");
        push_json(&mut out, &self.filter_server_table);
        if let Some(conf) = &self.order_topic_conf {
            out.push_str(",\"orderTopicConf\":");
            push_json_string(&mut out, conf);
        }
        out.push_str(",\"queueDatas\":");
        push_json(&mut out, &self.queue_datas);
        if let Some(mapping) = &self.topic_queue_mapping_by_broker {
            out.push_str(",\"topicQueueMappingByBroker\":");
            push_json(&mut out, mapping);
        }
        out.push('}');
        out.into_bytes()
    }

    /// Parses a route body in either quoting form.
    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }
}

/// GET_BROKER_CLUSTER_INFO response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

impl ClusterInfo {
    /// The body bytes. Java always writes this one with unquoted broker-id keys.
    pub fn encode(&self, quoting: KeyQuoting) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"brokerAddrTable\":{");
        for (index, (name, broker)) in self.broker_addr_table.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            push_json_string(&mut out, name);
            out.push(':');
            broker.write_json(&mut out, quoting);
        }
        out.push_str("},\"clusterAddrTable\":");
        push_json(&mut out, &self.cluster_addr_table);
        out.push('}');
        out.into_bytes()
    }

    pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
        fastjson::decode(body)
    }
}

/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER, GET_TOPICS_BY_CLUSTER, GET_SYSTEM_TOPIC_LIST_FROM_NS
/// and GET_TOPIC_NAME_LIST response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    pub topic_list: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> TopicRouteData {
        TopicRouteData {
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addrs: [
                    (0, "10.0.0.1:10911".to_owned()),
                    (1, "10.0.0.2:10911".to_owned()),
                ]
                .into_iter()
                .collect(),
                enable_acting_master: false,
                zone_name: None,
            }],
            filter_server_table: BTreeMap::new(),
            topic_queue_mapping_by_broker: None,
        }
    }

    #[test]
    fn quoted_route_is_standard_json_with_every_field_rust_requires() {
        let bytes = route().encode(KeyQuoting::Quoted);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"#,
                r#""brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"#,
                r#""filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"#,
                r#""writeQueueNums":4,"perm":6,"topicSysFlag":0}]}"#
            )
        );
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(value["brokerDatas"][0]["enableActingMaster"].is_boolean());
        assert_eq!(TopicRouteData::decode(&bytes).unwrap(), route());
    }

    #[test]
    fn legacy_route_has_unquoted_ids_and_still_decodes() {
        let bytes = route().encode(KeyQuoting::Unquoted);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains(r#"{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}"#),
            "{text}"
        );
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
        let decoded = TopicRouteData::decode(&bytes).unwrap();
        assert_eq!(decoded, route());
        assert_eq!(
            decoded.broker_datas[0].master_addr(),
            Some("10.0.0.1:10911")
        );
    }

    #[test]
    fn quoting_follows_the_java_name_server_rule() {
        assert_eq!(
            KeyQuoting::for_route_request(333, false),
            KeyQuoting::Unquoted
        );
        assert_eq!(KeyQuoting::for_route_request(333, true), KeyQuoting::Quoted);
        assert_eq!(
            KeyQuoting::for_route_request(401, false),
            KeyQuoting::Quoted
        );
        assert_eq!(
            KeyQuoting::for_route_request(474, false),
            KeyQuoting::Quoted
        );
    }

    #[test]
    fn decodes_old_java_spelling_and_order_conf() {
        let body = br#"{"orderTopicConf":"broker-a:4","queueDatas":[{"brokerName":"b","readQueueNums":1,"writeQueueNums":1,"perm":6,"topicSynFlag":3}],"brokerDatas":[]}"#;
        let decoded = TopicRouteData::decode(body).unwrap();
        assert_eq!(decoded.queue_datas[0].topic_sys_flag, 3);
        assert_eq!(decoded.order_topic_conf.as_deref(), Some("broker-a:4"));
        let round = TopicRouteData::decode(&decoded.encode(KeyQuoting::Quoted)).unwrap();
        assert_eq!(round, decoded);
    }

    #[test]
    fn cluster_info_round_trips_in_both_forms() {
        let broker = route().broker_datas.remove(0);
        let info = ClusterInfo {
            broker_addr_table: [("broker-a".to_owned(), broker)].into_iter().collect(),
            cluster_addr_table: [(
                "DefaultCluster".to_owned(),
                ["broker-a".to_owned()].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
        };
        for quoting in [KeyQuoting::Quoted, KeyQuoting::Unquoted] {
            assert_eq!(ClusterInfo::decode(&info.encode(quoting)).unwrap(), info);
        }
        let text = String::from_utf8(info.encode(KeyQuoting::Unquoted)).unwrap();
        assert!(text.contains(r#""clusterAddrTable":{"DefaultCluster":["broker-a"]}"#));
    }

    #[test]
    fn topic_list_json() {
        let list = TopicList {
            topic_list: ["T1".to_owned(), "T2".to_owned()].into_iter().collect(),
            broker_addr: None,
        };
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"topicList":["T1","T2"]}"#
        );
    }
}
