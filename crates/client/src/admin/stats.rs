//! Traffic statistics: a broker's own counters (VIEW_BROKER_STATS_DATA, 315), every
//! group's consume stats on one broker (GET_BROKER_CONSUME_STATS, 317), and the per topic
//! and group view of `mqadmin statsAll`.
//!
//! Brokers that do not answer 315 or 317 (this project's broker answers 315 but not 317
//! yet) are asked what they do answer instead, and the result says so: see
//! [`StatsSource`].

use std::collections::BTreeMap;
use std::time::Duration;

use remoting::body::{
    fastjson, BrokerStatsData, ConsumeStats, ConsumeStatsList, MessageQueue,
    SubscriptionGroupWrapper, TopicConfigSerializeWrapper, TopicStatsTable,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::admin::{
    GetConsumeStatsInBrokerHeader, GetConsumeStatsRequestHeader, TopicRequestHeader,
    ViewBrokerStatsDataRequestHeader,
};

use super::Admin;
use crate::error::{ClientError, Result};

/// The broker statistic of messages put, by topic (`Stats.TOPIC_PUT_NUMS`).
pub const TOPIC_PUT_NUMS: &str = "TOPIC_PUT_NUMS";
/// The broker statistic of messages pulled, by `topic@group` (`Stats.GROUP_GET_NUMS`).
pub const GROUP_GET_NUMS: &str = "GROUP_GET_NUMS";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Where statistics came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StatsSource {
    /// The broker's own counters (VIEW_BROKER_STATS_DATA or GET_BROKER_CONSUME_STATS).
    BrokerStats,
    /// The broker answered REQUEST_CODE_NOT_SUPPORTED; the figures were derived from
    /// queue offsets (GET_TOPIC_STATS_INFO, GET_CONSUME_STATS, SEARCH_OFFSET_BY_TIMESTAMP).
    Offsets,
}

/// One consumer group's share of a topic's traffic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupTraffic {
    pub group: String,
    /// Messages not consumed yet (never negative).
    pub accumulation: i64,
    pub out_tps: f64,
    pub out_msg_24_hour: i64,
}

/// A topic's traffic, summed over the masters of its route.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicTraffic {
    pub topic: String,
    pub in_tps: f64,
    pub in_msg_24_hour: i64,
    /// Consumer groups of the topic; empty when nobody consumes it.
    pub groups: Vec<GroupTraffic>,
    /// `Offsets` when any master had to be asked without VIEW_BROKER_STATS_DATA.
    pub source: StatsSource,
}

fn is_unsupported(error: &ClientError) -> bool {
    error.response_code() == Some(response::REQUEST_CODE_NOT_SUPPORTED)
}

impl Admin {
    /// One of a broker's statistics (VIEW_BROKER_STATS_DATA, 315): e.g.
    /// [`TOPIC_PUT_NUMS`] of a topic or [`GROUP_GET_NUMS`] of `topic@group`.
    pub async fn broker_stats_data(
        &self,
        addr: &str,
        stats_name: &str,
        stats_key: &str,
    ) -> Result<BrokerStatsData> {
        let header = ViewBrokerStatsDataRequestHeader {
            stats_name: stats_name.to_owned(),
            stats_key: stats_key.to_owned(),
        };
        let request =
            RemotingCommand::request(request::VIEW_BROKER_STATS_DATA).with_header(&header);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        BrokerStatsData::decode(&response.body).map_err(|err| ClientError::malformed(addr, err))
    }

    /// Every subscription group's consume stats on the broker at `addr`, per topic, with
    /// the broker's total lag (GET_BROKER_CONSUME_STATS, 317); `order` keeps ordered
    /// topics only. A broker that does not answer 317 is asked for each group it hosts
    /// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, then GET_CONSUME_STATS per group), which gives
    /// the same table.
    pub async fn broker_consume_stats(
        &self,
        addr: &str,
        order: bool,
        timeout: Duration,
    ) -> Result<(ConsumeStatsList, StatsSource)> {
        let header = GetConsumeStatsInBrokerHeader { is_order: order };
        let request =
            RemotingCommand::request(request::GET_BROKER_CONSUME_STATS).with_header(&header);
        match self.instance.invoke_ok(addr, request, timeout).await {
            Ok(response) => ConsumeStatsList::decode(&response.body)
                .map(|list| (list, StatsSource::BrokerStats))
                .map_err(|err| ClientError::malformed(addr, err)),
            Err(error) if is_unsupported(&error) => self
                .consume_stats_per_group(addr, order, timeout)
                .await
                .map(|list| (list, StatsSource::Offsets)),
            Err(error) => Err(error),
        }
    }

    async fn consume_stats_per_group(
        &self,
        addr: &str,
        order: bool,
        timeout: Duration,
    ) -> Result<ConsumeStatsList> {
        let request = RemotingCommand::request(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG);
        let response = self.instance.invoke_ok(addr, request, timeout).await?;
        let groups: SubscriptionGroupWrapper =
            fastjson::decode(&response.body).map_err(|err| ClientError::malformed(addr, err))?;
        let ordered_topics = if order {
            let request = RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG);
            let response = self.instance.invoke_ok(addr, request, timeout).await?;
            let topics = TopicConfigSerializeWrapper::decode(&response.body)
                .map_err(|err| ClientError::malformed(addr, err))?;
            Some(
                topics
                    .topic_config_table
                    .into_values()
                    .filter(|t| t.order)
                    .map(|t| t.topic_name)
                    .collect::<std::collections::BTreeSet<_>>(),
            )
        } else {
            None
        };
        let mut list = ConsumeStatsList {
            broker_addr: addr.to_owned(),
            ..ConsumeStatsList::default()
        };
        for group in groups.subscription_group_table.into_keys() {
            let header = GetConsumeStatsRequestHeader {
                consumer_group: group.clone(),
                topic: None,
                topic_list: None,
            };
            let request = RemotingCommand::request(request::GET_CONSUME_STATS).with_header(&header);
            let response = self.instance.invoke_ok(addr, request, timeout).await?;
            let stats = ConsumeStats::decode(&response.body)
                .map_err(|err| ClientError::malformed(addr, err))?;
            // One ConsumeStats per topic, as the broker's own answer has them.
            let mut per_topic: BTreeMap<String, ConsumeStats> = BTreeMap::new();
            for (queue, offsets) in stats.offset_table {
                if ordered_topics
                    .as_ref()
                    .is_some_and(|ordered| !ordered.contains(&queue.topic))
                {
                    continue;
                }
                per_topic
                    .entry(queue.topic.clone())
                    .or_default()
                    .offset_table
                    .insert(queue, offsets);
            }
            let per_topic: Vec<ConsumeStats> = per_topic.into_values().collect();
            list.total_diff += per_topic.iter().map(ConsumeStats::total_diff).sum::<i64>();
            list.consume_stats_list
                .push(BTreeMap::from([(group, per_topic)]));
        }
        Ok(list)
    }

    /// `topic`'s traffic per consumer group, as `mqadmin statsAll` shows it: messages put
    /// and pulled per second and in the last 24 hours (the masters' TOPIC_PUT_NUMS and
    /// GROUP_GET_NUMS counters), and each group's accumulation (its lag).
    ///
    /// A master that does not answer VIEW_BROKER_STATS_DATA is asked what it does answer:
    /// the rates it reports in GET_TOPIC_STATS_INFO and GET_CONSUME_STATS, the messages it
    /// stored in the last 24 hours (each queue's max offset minus the offset found for
    /// 24 hours ago) and, for a group, how many of those it has consumed (its committed
    /// offset minus that same offset). Those counts are of messages still stored, and a
    /// consumer's count is its progress, not its pulls.
    pub async fn topic_traffic(&self, topic: &str) -> Result<TopicTraffic> {
        let route = self.instance.refresh_route(topic).await?;
        let masters: Vec<String> = route
            .data
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr().map(str::to_owned))
            .collect();
        let groups = self.topic_consumer_groups(topic).await.unwrap_or_default();
        let since = crate::producer::now_ms() - DAY_MS;
        let mut traffic = TopicTraffic {
            topic: topic.to_owned(),
            in_tps: 0.0,
            in_msg_24_hour: 0,
            groups: groups
                .iter()
                .map(|group| GroupTraffic {
                    group: group.clone(),
                    accumulation: 0,
                    out_tps: 0.0,
                    out_msg_24_hour: 0,
                })
                .collect(),
            source: StatsSource::BrokerStats,
        };
        for addr in &masters {
            // Offsets of the messages stored 24 hours ago, when this master needs them.
            let mut day_start: Option<BTreeMap<MessageQueue, i64>> = None;
            match self.broker_stats_data(addr, TOPIC_PUT_NUMS, topic).await {
                Ok(stats) => {
                    traffic.in_tps += stats.stats_minute.tps;
                    traffic.in_msg_24_hour += stats.sum_24_hours();
                }
                Err(error) if is_unsupported(&error) => {
                    traffic.source = StatsSource::Offsets;
                    let (tps, stored, starts) = self.stored_since(addr, topic, since).await?;
                    traffic.in_tps += tps;
                    traffic.in_msg_24_hour += stored;
                    day_start = Some(starts);
                }
                // As RocketMQ's tool: a master that cannot tell is left out.
                Err(error) => tracing::debug!(%addr, %error, "no put stats"),
            }
            for group in &mut traffic.groups {
                let key = format!("{topic}@{}", group.group);
                match (
                    &day_start,
                    self.broker_stats_data(addr, GROUP_GET_NUMS, &key).await,
                ) {
                    (_, Ok(stats)) => {
                        group.out_tps += stats.stats_minute.tps;
                        group.out_msg_24_hour += stats.sum_24_hours();
                    }
                    (Some(starts), Err(error)) if is_unsupported(&error) => {
                        let stats = self.consume_stats_at(addr, &group.group, topic).await?;
                        group.out_tps += stats.consume_tps;
                        group.out_msg_24_hour += stats
                            .offset_table
                            .iter()
                            .map(|(queue, o)| {
                                let start = starts.get(queue).copied().unwrap_or(0);
                                (o.consumer_offset - start).max(0)
                            })
                            .sum::<i64>();
                    }
                    (_, Err(error)) => tracing::debug!(%addr, %error, "no pull stats"),
                }
            }
        }
        for group in &mut traffic.groups {
            group.accumulation = self
                .consume_stats(&group.group, Some(topic))
                .await
                .map_or(0, |stats| stats.total_diff().max(0));
        }
        Ok(traffic)
    }

    /// From one master: `topic`'s put rate as it reports it, the messages it stored since
    /// `since_ms`, and per queue the offset of the first of those.
    async fn stored_since(
        &self,
        addr: &str,
        topic: &str,
        since_ms: i64,
    ) -> Result<(f64, i64, BTreeMap<MessageQueue, i64>)> {
        let header = TopicRequestHeader {
            topic: topic.to_owned(),
        };
        let request = RemotingCommand::request(request::GET_TOPIC_STATS_INFO).with_header(&header);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        let table = TopicStatsTable::decode(&response.body)
            .map_err(|err| ClientError::malformed(addr, err))?;
        let mut stored = 0;
        let mut starts = BTreeMap::new();
        for (queue, offsets) in &table.offset_table {
            let start = if offsets.max_offset > offsets.min_offset {
                self.instance
                    .search_offset(addr, queue, since_ms)
                    .await?
                    .clamp(offsets.min_offset, offsets.max_offset)
            } else {
                offsets.max_offset
            };
            stored += offsets.max_offset - start;
            starts.insert(queue.clone(), start);
        }
        Ok((table.topic_put_tps, stored, starts))
    }

    async fn consume_stats_at(&self, addr: &str, group: &str, topic: &str) -> Result<ConsumeStats> {
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_owned(),
            topic: Some(topic.to_owned()),
            topic_list: None,
        };
        let request = RemotingCommand::request(request::GET_CONSUME_STATS).with_header(&header);
        let response = self
            .instance
            .invoke_ok(addr, request, self.timeout())
            .await?;
        ConsumeStats::decode(&response.body).map_err(|err| ClientError::malformed(addr, err))
    }
}
