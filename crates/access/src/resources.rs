//! What a request needs permission for, as RocketMQ's `PlainAccessResource.parse` reads it:
//! topics (PUB to send, SUB to read) and consumer groups, which are checked as their
//! `%RETRY%<group>` resource with SUB. Requests not listed need none beyond a valid
//! signature (and the admin flag for admin codes).
//!
//! Beyond RocketMQ 5.2: POP_MESSAGE, ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME and
//! NOTIFICATION are checked like a pull (the topic and the group with SUB), and RECALL_MESSAGE like a send,
//! as RocketMQ 5.3 does; RocketMQ 4.9 let them through.

use message::topic::{is_retry_topic, retry_topic};
use remoting::body::lite::LiteSubscriptionCtlRequestBody;
use remoting::body::HeartbeatData;
use remoting::code::request;
use remoting::command::RemotingCommand;

use super::perm::{PUB, SUB};

/// `(resource, needed permission)` pairs; a resource is a topic or `%RETRY%<group>`.
pub type Needs = Vec<(String, u8)>;

/// The permissions `request` needs, or why it cannot be read (RocketMQ refuses it then,
/// whitelisted or not).
pub fn needed(request: &RemotingCommand) -> Result<Needs, String> {
    let field = |name: &str| {
        request
            .ext_field(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let required =
        |name: &str| field(name).ok_or_else(|| format!("the custom field <{name}> is null"));
    let group = |group: String| (retry_topic(&group), SUB);
    let mut needs = Needs::new();
    match request.code {
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
            let topic_key = if request.code == request::SEND_MESSAGE {
                "topic"
            } else {
                "b"
            };
            let topic = required(topic_key)?;
            // A send into a retry topic is a consumer handing a message back: it needs
            // the group's permission.
            if is_retry_topic(&topic) {
                needs.push((topic, SUB));
            } else {
                needs.push((topic, PUB));
            }
        }
        request::RECALL_MESSAGE => needs.push((required("topic")?, PUB)),
        request::CONSUMER_SEND_MSG_BACK => needs.push(group(required("group")?)),
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            needs.push((required("topic")?, SUB));
            needs.push(group(required("consumerGroup")?));
        }
        request::POP_MESSAGE
        | request::POP_LITE_MESSAGE
        | request::ACK_MESSAGE
        | request::CHANGE_MESSAGE_INVISIBLETIME
        | request::NOTIFICATION => {
            needs.push((required("topic")?, SUB));
            needs.push(group(required("consumerGroup")?));
        }
        request::LITE_SUBSCRIPTION_CTL => {
            let body = LiteSubscriptionCtlRequestBody::decode(&request.body)
                .map_err(|e| format!("the lite subscription body cannot be read: {e}"))?;
            for change in body.subscription_set {
                needs.push((change.topic, SUB));
                needs.push(group(change.group));
            }
        }
        request::QUERY_MESSAGE => needs.push((required("topic")?, SUB)),
        request::HEART_BEAT => {
            let heartbeat = HeartbeatData::decode(&request.body)
                .map_err(|e| format!("the heartbeat body cannot be read: {e}"))?;
            for consumer in heartbeat.consumer_data_set {
                for subscription in &consumer.subscription_data_set {
                    needs.push((subscription.topic.clone(), SUB));
                }
                needs.push(group(consumer.group_name));
            }
        }
        request::UNREGISTER_CLIENT => {
            if let Some(consumer_group) = field("consumerGroup") {
                needs.push(group(consumer_group));
            }
        }
        request::GET_CONSUMER_LIST_BY_GROUP => needs.push(group(required("consumerGroup")?)),
        request::UPDATE_CONSUMER_OFFSET => {
            needs.push(group(required("consumerGroup")?));
            needs.push((required("topic")?, SUB));
        }
        _ => {}
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(code: i32, fields: &[(&str, &str)]) -> RemotingCommand {
        let mut request = RemotingCommand::request(code);
        for (k, v) in fields {
            request.ext_fields.insert((*k).into(), (*v).into());
        }
        request
    }

    #[test]
    fn sends_pulls_and_heartbeats() {
        let send = with(request::SEND_MESSAGE_V2, &[("a", "pg"), ("b", "T")]);
        assert_eq!(needed(&send).unwrap(), vec![("T".to_owned(), PUB)]);
        let retry = with(request::SEND_MESSAGE_V2, &[("a", "pg"), ("b", "%RETRY%g")]);
        assert_eq!(needed(&retry).unwrap(), vec![("%RETRY%g".to_owned(), SUB)]);
        let pull = with(
            request::PULL_MESSAGE,
            &[("topic", "T"), ("consumerGroup", "g")],
        );
        assert_eq!(
            needed(&pull).unwrap(),
            vec![("T".to_owned(), SUB), ("%RETRY%g".to_owned(), SUB)]
        );
        let no_topic = with(request::PULL_MESSAGE, &[("consumerGroup", "g")]);
        assert!(needed(&no_topic).unwrap_err().contains("topic"));
        let mut heartbeat = with(request::HEART_BEAT, &[]);
        heartbeat.body = bytes::Bytes::from_static(
            br#"{"clientID":"c","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"topic":"T","subString":"*","classFilterMode":false,"tagsSet":[],"codeSet":[],"subVersion":1}]}]}"#,
        );
        assert_eq!(
            needed(&heartbeat).unwrap(),
            vec![("T".to_owned(), SUB), ("%RETRY%g".to_owned(), SUB)]
        );
        heartbeat.body = bytes::Bytes::from_static(b"not json");
        assert!(needed(&heartbeat).is_err());
        assert!(needed(&with(request::GET_ROUTEINFO_BY_TOPIC, &[]))
            .unwrap()
            .is_empty());
    }
}
