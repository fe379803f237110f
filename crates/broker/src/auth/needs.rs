//! What a request needs under ACL 2.0: the resources it touches and the actions any one of
//! which suffices, as RocketMQ 5.3's `DefaultAuthorizationContextBuilder` reads remoting
//! requests (its hand-written cases, then its header annotations). A topic that is a
//! `%RETRY%` topic stands for its consumer group.
//!
//! Stricter than RocketMQ, where it leaves a state-changing request unchecked: changing the
//! broker's config (UPDATE_BROKER_CONFIG) or a request mode (SET_MESSAGE_REQUEST_MODE) and
//! moving a group's leadership need the cluster (Update); creating or changing a
//! subscription group needs that group (Create or Update).

use message::topic::RETRY_GROUP_TOPIC_PREFIX;
use remoting::body::lite::LiteSubscriptionCtlRequestBody;
use remoting::body::{HeartbeatData, LockBatchRequestBody, SubscriptionGroupConfig};
use remoting::code::request as code;
use remoting::command::RemotingCommand;

use super::model::{Action, ResourceType};

/// One resource a request touches, with the actions any one of which lets it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub kind: ResourceType,
    pub name: String,
    pub actions: &'static [Action],
}

impl Need {
    /// `Topic:<name>`, or `Group:<group>` for the group's retry topic.
    pub fn topic(name: &str, actions: &'static [Action]) -> Need {
        match name.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => Need::group(group, actions),
            None => Need {
                kind: ResourceType::Topic,
                name: name.to_owned(),
                actions,
            },
        }
    }

    pub fn group(name: &str, actions: &'static [Action]) -> Need {
        Need {
            kind: ResourceType::Group,
            name: name
                .strip_prefix(RETRY_GROUP_TOPIC_PREFIX)
                .unwrap_or(name)
                .to_owned(),
            actions,
        }
    }

    pub fn cluster(name: &str, actions: &'static [Action]) -> Need {
        Need {
            kind: ResourceType::Cluster,
            name: name.to_owned(),
            actions,
        }
    }

    /// The resource as a refusal names it (`Topic:orders`).
    pub fn resource_key(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

const PUB: &[Action] = &[Action::Pub];
const SUB: &[Action] = &[Action::Sub];
const GET: &[Action] = &[Action::Get];
const CREATE: &[Action] = &[Action::Create];
const UPDATE: &[Action] = &[Action::Update];
const DELETE: &[Action] = &[Action::Delete];
const SUB_GET: &[Action] = &[Action::Sub, Action::Get];
const SUB_UPDATE: &[Action] = &[Action::Sub, Action::Update];
const PUB_SUB_GET: &[Action] = &[Action::Pub, Action::Sub, Action::Get];
const CREATE_UPDATE: &[Action] = &[Action::Create, Action::Update];

/// Where a header field's value points.
#[derive(Clone, Copy)]
enum Field {
    Topic(&'static str),
    Group(&'static str),
    Cluster(&'static str),
}

/// A request read through its header fields: the fields naming resources, the actions,
/// and whether the cluster is the resource when no field is present.
struct ByFields {
    fields: &'static [Field],
    actions: &'static [Action],
    cluster_otherwise: bool,
}

const fn fields(fields: &'static [Field], actions: &'static [Action]) -> ByFields {
    ByFields {
        fields,
        actions,
        cluster_otherwise: false,
    }
}

const fn cluster(fields: &'static [Field], actions: &'static [Action]) -> ByFields {
    ByFields {
        fields,
        actions,
        cluster_otherwise: true,
    }
}

fn by_fields(request_code: i32) -> Option<ByFields> {
    use Field::{Cluster, Group, Topic};
    Some(match request_code {
        code::UPDATE_AND_CREATE_TOPIC => fields(&[Topic("topic")], CREATE),
        code::SEARCH_OFFSET_BY_TIMESTAMP
        | code::GET_MAX_OFFSET
        | code::GET_MIN_OFFSET
        | code::GET_EARLIEST_MSG_STORETIME
        | code::VIEW_MESSAGE_BY_ID
        | code::GET_TOPIC_STATS_INFO
        | code::QUERY_TOPIC_CONSUME_BY_WHO
        | code::GET_TOPIC_CONFIG => fields(&[Topic("topic")], GET),
        code::GET_CONSUMER_CONNECTION_LIST | code::GET_CONSUMER_RUNNING_INFO => {
            fields(&[Group("consumerGroup")], GET)
        }
        code::DELETE_SUBSCRIPTIONGROUP => fields(&[Group("groupName")], DELETE),
        code::GET_CONSUME_STATS => fields(&[Group("consumerGroup"), Topic("topic")], GET),
        code::DELETE_TOPIC_IN_BROKER => fields(&[Topic("topic")], DELETE),
        code::INVOKE_BROKER_TO_RESET_OFFSET => fields(&[Group("group"), Topic("topic")], UPDATE),
        code::INVOKE_BROKER_TO_GET_CONSUMER_STATUS => {
            fields(&[Topic("topic"), Group("group")], GET)
        }
        code::CONSUME_MESSAGE_DIRECTLY => fields(&[Group("consumerGroup"), Topic("topic")], SUB),
        code::CLONE_GROUP_OFFSET => fields(&[Group("destGroup"), Topic("topic")], UPDATE),
        code::GET_SUBSCRIPTIONGROUP_CONFIG => fields(&[Group("group")], GET),
        code::POP_MESSAGE
        | code::POP_LITE_MESSAGE
        | code::ACK_MESSAGE
        | code::CHANGE_MESSAGE_INVISIBLETIME
        | code::NOTIFICATION => fields(&[Group("consumerGroup"), Topic("topic")], SUB),
        code::POLLING_INFO => fields(&[Group("consumerGroup"), Topic("topic")], GET),
        code::QUERY_DATA_VERSION | code::GET_BROKER_MEMBER_GROUP => {
            cluster(&[Cluster("clusterName")], GET)
        }
        code::GET_PRODUCER_CONNECTION_LIST
        | code::VIEW_BROKER_STATS_DATA
        | code::GET_BROKER_CONSUME_STATS
        | code::AUTH_GET_USER
        | code::AUTH_LIST_USER
        | code::AUTH_GET_ACL
        | code::AUTH_LIST_ACL => cluster(&[], GET),
        code::WIPE_WRITE_PERM_OF_BROKER
        | code::ADD_WRITE_PERM_OF_BROKER
        | code::UPDATE_BROKER_CONFIG
        | code::SET_MESSAGE_REQUEST_MODE
        | code::DLEDGER_LEADERSHIP_TRANSFER
        | code::DLEDGER_ADD_MEMBER
        | code::DLEDGER_REMOVE_MEMBER
        | code::AUTH_CREATE_USER
        | code::AUTH_UPDATE_USER
        | code::AUTH_DELETE_USER
        | code::AUTH_CREATE_ACL
        | code::AUTH_UPDATE_ACL
        | code::AUTH_DELETE_ACL => cluster(&[], UPDATE),
        _ => return None,
    })
}

/// The resources `request` touches on a broker of `cluster_name`, or why it cannot be
/// read (RocketMQ refuses it: "parse authorization context error.").
pub fn of_request(request: &RemotingCommand, cluster_name: &str) -> Result<Vec<Need>, String> {
    let field = |name: &str| request.ext_field(name).filter(|v| !v.trim().is_empty());
    let required = |name: &str| field(name).ok_or_else(|| format!("{name} is null."));
    let mut needs = Vec::new();
    match request.code {
        code::GET_ROUTEINFO_BY_TOPIC => {
            let topic = required("topic")?;
            needs.push(if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                Need::group(topic, SUB_GET)
            } else {
                Need::topic(topic, PUB_SUB_GET)
            });
        }
        code::SEND_MESSAGE | code::SEND_MESSAGE_V2 | code::SEND_BATCH_MESSAGE => {
            let topic = required(if request.code == code::SEND_MESSAGE {
                "topic"
            } else {
                "b"
            })?;
            needs.push(if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                Need::group(topic, SUB)
            } else {
                Need::topic(topic, PUB)
            });
        }
        code::RECALL_MESSAGE => needs.push(Need::topic(required("topic")?, PUB)),
        code::END_TRANSACTION => {
            if let Some(topic) = field("topic") {
                needs.push(Need::topic(topic, PUB));
            }
        }
        code::CONSUMER_SEND_MSG_BACK => needs.push(Need::group(required("group")?, SUB)),
        code::PULL_MESSAGE | code::LITE_PULL_MESSAGE => {
            needs.push(Need::topic(required("topic")?, SUB));
            needs.push(Need::group(required("consumerGroup")?, SUB));
        }
        code::QUERY_MESSAGE => needs.push(Need::topic(required("topic")?, SUB_GET)),
        code::HEART_BEAT => {
            let heartbeat = HeartbeatData::decode(&request.body)
                .map_err(|e| format!("the heartbeat body cannot be read: {e}"))?;
            for consumer in heartbeat.consumer_data_set {
                needs.push(Need::group(&consumer.group_name, SUB));
                for subscription in &consumer.subscription_data_set {
                    if !subscription.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                        needs.push(Need::topic(&subscription.topic, SUB));
                    }
                }
            }
        }
        code::UNREGISTER_CLIENT => {
            if let Some(group) = field("consumerGroup") {
                needs.push(Need::group(group, SUB));
            }
        }
        code::GET_CONSUMER_LIST_BY_GROUP => {
            needs.push(Need::group(required("consumerGroup")?, SUB_GET));
        }
        code::QUERY_CONSUMER_OFFSET | code::UPDATE_CONSUMER_OFFSET => {
            let actions = if request.code == code::QUERY_CONSUMER_OFFSET {
                SUB_GET
            } else {
                SUB_UPDATE
            };
            let topic = required("topic")?;
            if !topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                needs.push(Need::topic(topic, actions));
            }
            needs.push(Need::group(required("consumerGroup")?, actions));
        }
        code::LOCK_BATCH_MQ | code::UNLOCK_BATCH_MQ => {
            let body = LockBatchRequestBody::decode(&request.body)
                .map_err(|e| format!("the lock body cannot be read: {e}"))?;
            needs.push(Need::group(&body.consumer_group, SUB));
            for queue in &body.mq_set {
                if !queue.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                    needs.push(Need::topic(&queue.topic, SUB));
                }
            }
        }
        code::LITE_SUBSCRIPTION_CTL => {
            let body = LiteSubscriptionCtlRequestBody::decode(&request.body)
                .map_err(|e| format!("the lite subscription body cannot be read: {e}"))?;
            for change in &body.subscription_set {
                needs.push(Need::group(&change.group, SUB));
                needs.push(Need::topic(&change.topic, SUB));
            }
        }
        code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
            let config: SubscriptionGroupConfig =
                remoting::body::fastjson::decode(&request.body)
                    .map_err(|e| format!("the subscription group cannot be read: {e}"))?;
            needs.push(Need::group(&config.group_name, CREATE_UPDATE));
        }
        other => {
            if let Some(rule) = by_fields(other) {
                for f in rule.fields {
                    match *f {
                        Field::Topic(key) => {
                            if let Some(v) = field(key) {
                                needs.push(Need::topic(v, rule.actions));
                            }
                        }
                        Field::Group(key) => {
                            if let Some(v) = field(key) {
                                needs.push(Need::group(v, rule.actions));
                            }
                        }
                        Field::Cluster(key) => {
                            if let Some(v) = field(key) {
                                needs.push(Need::cluster(v, rule.actions));
                            }
                        }
                    }
                }
                if needs.is_empty() && rule.cluster_otherwise {
                    needs.push(Need::cluster(cluster_name, rule.actions));
                }
            }
        }
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(request_code: i32, fields: &[(&str, &str)]) -> RemotingCommand {
        let mut request = RemotingCommand::request(request_code);
        for (k, v) in fields {
            request.ext_fields.insert((*k).into(), (*v).into());
        }
        request
    }

    #[test]
    fn client_requests_name_their_topics_and_groups() {
        let send = with(code::SEND_MESSAGE_V2, &[("a", "pg"), ("b", "T")]);
        assert_eq!(of_request(&send, "C").unwrap(), vec![Need::topic("T", PUB)]);
        let back = with(code::SEND_MESSAGE_V2, &[("a", "pg"), ("b", "%RETRY%g")]);
        let need = &of_request(&back, "C").unwrap()[0];
        assert_eq!((need.kind, need.name.as_str()), (ResourceType::Group, "g"));
        let pull = with(
            code::PULL_MESSAGE,
            &[("topic", "T"), ("consumerGroup", "g")],
        );
        assert_eq!(
            of_request(&pull, "C").unwrap(),
            vec![Need::topic("T", SUB), Need::group("g", SUB)]
        );
        assert!(of_request(&with(code::PULL_MESSAGE, &[("topic", "T")]), "C").is_err());
        let pop = with(code::POP_MESSAGE, &[("topic", "T"), ("consumerGroup", "g")]);
        assert_eq!(
            of_request(&pop, "C").unwrap(),
            vec![Need::group("g", SUB), Need::topic("T", SUB)]
        );
    }

    #[test]
    fn admin_requests_need_the_cluster_or_their_resource() {
        let create = with(code::UPDATE_AND_CREATE_TOPIC, &[("topic", "T")]);
        assert_eq!(
            of_request(&create, "C").unwrap(),
            vec![Need::topic("T", CREATE)]
        );
        let user = with(code::AUTH_CREATE_USER, &[("username", "u")]);
        assert_eq!(
            of_request(&user, "C").unwrap(),
            vec![Need::cluster("C", UPDATE)]
        );
        let config = with(code::UPDATE_BROKER_CONFIG, &[]);
        assert_eq!(
            of_request(&config, "C").unwrap()[0].resource_key(),
            "Cluster:C"
        );
        assert!(of_request(&with(code::GET_BROKER_CLUSTER_INFO, &[]), "C")
            .unwrap()
            .is_empty());
    }
}
