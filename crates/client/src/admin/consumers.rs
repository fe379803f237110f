//! Consumer groups and their members: offsets moved to a point in time or copied from
//! another group, what online members report about themselves, producer and consumer
//! connections, and subscription-group configs.

use std::collections::BTreeMap;

use message::topic::retry_topic;
use remoting::body::{
    fastjson, ConsumerConnection, ConsumerRunningInfo, GetConsumerStatusBody, MessageQueue,
    ProducerConnection, ResetOffsetBody, SubscriptionGroupConfig,
};
use remoting::code::request;
use remoting::command::RemotingCommand;
use remoting::header::admin::{
    CloneGroupOffsetRequestHeader, DeleteSubscriptionGroupRequestHeader,
    GetSubscriptionGroupConfigRequestHeader,
};
use remoting::header::client::{
    GetConsumerConnectionListRequestHeader, GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader, GetProducerConnectionListRequestHeader,
    ResetOffsetRequestHeader,
};

use super::Admin;
use crate::error::{ClientError, Result};

/// Each online member's offsets, by client id (INVOKE_BROKER_TO_GET_CONSUMER_STATUS).
pub type ConsumerStatusTable = BTreeMap<String, BTreeMap<MessageQueue, i64>>;

impl Admin {
    /// Moves `group`'s offsets of `topic` to the first message stored at or after
    /// `timestamp_ms` on every master of the topic's route (INVOKE_BROKER_TO_RESET_OFFSET,
    /// 222); without `force` an offset only moves back. The broker commits the offsets
    /// and tells the group's online members. Returns the new offset of every queue.
    pub async fn reset_offset_by_time(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
        force: bool,
    ) -> Result<BTreeMap<MessageQueue, i64>> {
        let header = ResetOffsetRequestHeader {
            topic: topic.to_owned(),
            group: group.to_owned(),
            timestamp: timestamp_ms,
            is_force: force,
            queue_id: -1,
            // Java sends -1 for "no offset": the timestamp decides.
            offset: Some(-1),
        };
        let request =
            RemotingCommand::request(request::INVOKE_BROKER_TO_RESET_OFFSET).with_header(&header);
        let mut offsets = BTreeMap::new();
        for body in self
            .ask_masters(topic, &request, ResetOffsetBody::decode)
            .await?
        {
            offsets.extend(body.offset_table);
        }
        Ok(offsets)
    }

    /// Gives `dest_group` the offsets `src_group` has of `topic` (CLONE_GROUP_OFFSET, 314,
    /// on every master of the topic's route); `offline` tells the broker the source group
    /// has no online members. Returns the masters asked.
    pub async fn clone_group_offset(
        &self,
        src_group: &str,
        dest_group: &str,
        topic: &str,
        offline: bool,
    ) -> Result<Vec<String>> {
        let header = CloneGroupOffsetRequestHeader {
            src_group: src_group.to_owned(),
            dest_group: dest_group.to_owned(),
            topic: Some(topic.to_owned()),
            offline,
        };
        let request = RemotingCommand::request(request::CLONE_GROUP_OFFSET).with_header(&header);
        let route = self.instance.refresh_route(topic).await?;
        let masters: Vec<String> = route
            .data
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        if masters.is_empty() {
            return Err(ClientError::NotFound(format!("no master serves `{topic}`")));
        }
        for addr in &masters {
            self.instance
                .invoke_ok(addr, request.clone(), self.timeout())
                .await?;
        }
        Ok(masters)
    }

    /// What member `client_id` of `group` reports about itself: properties,
    /// subscriptions, assigned queues with their offsets, rates (GET_CONSUMER_RUNNING_INFO,
    /// 307, relayed by a master hosting the group). `jstack` asks a Java member for its
    /// thread dump.
    pub async fn consumer_running_info(
        &self,
        group: &str,
        client_id: &str,
        jstack: bool,
    ) -> Result<ConsumerRunningInfo> {
        let addr = self.group_master(group).await?;
        let header = GetConsumerRunningInfoRequestHeader {
            consumer_group: group.to_owned(),
            client_id: client_id.to_owned(),
            jstack_enable: jstack,
        };
        let request =
            RemotingCommand::request(request::GET_CONSUMER_RUNNING_INFO).with_header(&header);
        // The broker waits for the client up to 10 s.
        let timeout = self.timeout().max(std::time::Duration::from_secs(12));
        let response = self.instance.invoke_ok(&addr, request, timeout).await?;
        ConsumerRunningInfo::decode(&response.body)
            .map_err(|err| ClientError::malformed(&addr, err))
    }

    /// Each online member's offsets of `topic`, asked by the first broker of the topic's
    /// route (INVOKE_BROKER_TO_GET_CONSUMER_STATUS, 223); `client_id` limits it to one.
    pub async fn consumer_status(
        &self,
        topic: &str,
        group: &str,
        client_id: Option<&str>,
    ) -> Result<ConsumerStatusTable> {
        let route = self.instance.refresh_route(topic).await?;
        let addr = route
            .data
            .broker_datas
            .iter()
            .find_map(|b| b.master_addr())
            .ok_or_else(|| ClientError::NotFound(format!("no master serves `{topic}`")))?
            .to_owned();
        let header = GetConsumerStatusRequestHeader {
            topic: topic.to_owned(),
            group: group.to_owned(),
            client_addr: client_id.map(str::to_owned),
        };
        let request = RemotingCommand::request(request::INVOKE_BROKER_TO_GET_CONSUMER_STATUS)
            .with_header(&header);
        let timeout = self.timeout().max(std::time::Duration::from_secs(7));
        let response = self.instance.invoke_ok(&addr, request, timeout).await?;
        GetConsumerStatusBody::decode(&response.body)
            .map(|body| body.consumer_table)
            .map_err(|err| ClientError::malformed(&addr, err))
    }

    /// The connected members of producer group `group`, as a master serving `topic` sees
    /// them (GET_PRODUCER_CONNECTION_LIST, 204).
    pub async fn producer_connection(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<ProducerConnection> {
        let route = self.instance.refresh_route(topic).await?;
        let addr = route
            .data
            .broker_datas
            .iter()
            .find_map(|b| b.master_addr())
            .ok_or_else(|| ClientError::NotFound(format!("no master serves `{topic}`")))?
            .to_owned();
        let header = GetProducerConnectionListRequestHeader {
            producer_group: group.to_owned(),
        };
        let request =
            RemotingCommand::request(request::GET_PRODUCER_CONNECTION_LIST).with_header(&header);
        let response = self
            .instance
            .invoke_ok(&addr, request, self.timeout())
            .await?;
        let connection: ProducerConnection =
            fastjson::decode(&response.body).map_err(|err| ClientError::malformed(&addr, err))?;
        if connection.connection_set.is_empty() {
            return Err(ClientError::NotFound(format!(
                "producer group `{group}` has no connection"
            )));
        }
        Ok(connection)
    }

    /// The group's connected members and subscriptions as the broker at `addr` sees them
    /// (GET_CONSUMER_CONNECTION_LIST, 203).
    pub async fn consumer_connection_at(
        &self,
        group: &str,
        addr: &str,
    ) -> Result<ConsumerConnection> {
        let header = GetConsumerConnectionListRequestHeader {
            consumer_group: group.to_owned(),
        };
        let request =
            RemotingCommand::request(request::GET_CONSUMER_CONNECTION_LIST).with_header(&header);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        fastjson::decode(&response.body).map_err(|err| ClientError::malformed(addr, err))
    }

    /// A master hosting `group` (one serving its retry topic).
    pub(crate) async fn group_master(&self, group: &str) -> Result<String> {
        let route = self.instance.refresh_route(&retry_topic(group)).await?;
        route
            .data
            .broker_datas
            .iter()
            .find_map(|b| b.master_addr())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::NotFound(format!("no master hosts group `{group}`")))
    }

    // ---- subscription groups ----------------------------------------------------------

    /// Sets whether `group` pulls or pops `topic` on one broker (SET_MESSAGE_REQUEST_MODE,
    /// 401; RocketMQ 5's `mqadmin setConsumeMode`).
    pub async fn set_message_request_mode(
        &self,
        addr: &str,
        mode: &remoting::body::pop::SetMessageRequestModeRequestBody,
    ) -> Result<()> {
        let request =
            RemotingCommand::request(request::SET_MESSAGE_REQUEST_MODE).with_body(mode.encode());
        self.instance
            .invoke_ok(addr, request, self.timeout())
            .await
            .map(drop)
    }

    /// Creates or updates a subscription group on one broker
    /// (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, 200).
    pub async fn create_subscription_group(
        &self,
        addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        message::validate_group(&config.group_name)
            .map_err(|err| ClientError::InvalidArgument(format!("group: {err}")))?;
        let body = serde_json::to_vec(config)
            .map_err(|err| ClientError::InvalidArgument(format!("group config: {err}")))?;
        let request =
            RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).with_body(body);
        self.instance
            .invoke_ok(addr, request, self.timeout())
            .await
            .map(drop)
    }

    /// A broker's config of subscription group `group` (GET_SUBSCRIPTIONGROUP_CONFIG, 352).
    pub async fn subscription_group(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<SubscriptionGroupConfig> {
        let header = GetSubscriptionGroupConfigRequestHeader {
            group: group.to_owned(),
        };
        let request =
            RemotingCommand::request(request::GET_SUBSCRIPTIONGROUP_CONFIG).with_header(&header);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        fastjson::decode(&response.body).map_err(|err| ClientError::malformed(addr, err))
    }

    /// Deletes subscription group `group` from one broker, and its offsets there too with
    /// `remove_offset` (DELETE_SUBSCRIPTIONGROUP, 207).
    pub async fn delete_subscription_group(
        &self,
        addr: &str,
        group: &str,
        remove_offset: bool,
    ) -> Result<()> {
        let header = DeleteSubscriptionGroupRequestHeader {
            group_name: group.to_owned(),
            clean_offset: remove_offset,
        };
        let request =
            RemotingCommand::request(request::DELETE_SUBSCRIPTIONGROUP).with_header(&header);
        self.instance
            .invoke_ok(addr, request, self.timeout())
            .await
            .map(drop)
    }
}
