//! The 5.x clients this broker serves over gRPC, by their `x-mq-client-id`: the settings
//! each reported on its Telemetry stream, answered with the server's part (retry policy,
//! body size limit, receive batch and long-polling time). Heartbeats and sends are only
//! accepted from clients that did so, as RocketMQ's proxy accepts them.

use std::collections::HashMap;

use grpc::v2::{self, settings::PubSub, ClientType, Code};
use parking_lot::Mutex;

use super::convert::duration;
use super::status;
use crate::context::BrokerContext;

/// Most clients whose settings are kept; beyond, new clients are refused until some leave.
pub const MAX_CLIENTS: usize = 100_000;

/// The retry delays a consumer group's default (customized) policy names: RocketMQ's
/// delay levels from 1 s up to 2 h.
const CONSUMER_BACKOFF_MS: [i64; 16] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000,
];
/// What a consumer is told to wait at most per receive (RocketMQ's proxy's bound).
pub const MAX_LONG_POLLING_MS: i64 = 20_000;
/// Messages one receive hands out at most.
pub const RECEIVE_BATCH: i32 = 32;

#[derive(Default)]
pub struct GrpcClients {
    settings: Mutex<HashMap<String, v2::Settings>>,
}

impl GrpcClients {
    /// Records what a client reported and returns the settings it is to use.
    pub fn settle(
        &self,
        ctx: &BrokerContext,
        client_id: &str,
        reported: v2::Settings,
    ) -> Result<v2::Settings, Option<v2::Status>> {
        let answer = server_settings(ctx, reported)?;
        let mut settings = self.settings.lock();
        if !settings.contains_key(client_id) && settings.len() >= MAX_CLIENTS {
            return Err(status::of(
                Code::TooManyRequests,
                format!("this broker serves at most {MAX_CLIENTS} gRPC clients"),
            ));
        }
        settings.insert(client_id.to_owned(), answer.clone());
        Ok(answer)
    }

    pub fn settings(&self, client_id: &str) -> Option<v2::Settings> {
        self.settings.lock().get(client_id).cloned()
    }

    /// Forgets a client; returns the settings it had.
    pub fn forget(&self, client_id: &str) -> Option<v2::Settings> {
        self.settings.lock().remove(client_id)
    }

    /// Whether the client is a lite consumer: its receives pop its lite topics.
    pub fn is_lite(&self, client_id: &str) -> bool {
        self.settings
            .lock()
            .get(client_id)
            .and_then(|s| s.client_type)
            .is_some_and(is_lite_type)
    }
}

fn server_settings(
    ctx: &BrokerContext,
    mut settings: v2::Settings,
) -> Result<v2::Settings, Option<v2::Status>> {
    match settings.pub_sub.as_mut() {
        Some(PubSub::Publishing(publishing)) => {
            publishing.max_body_size =
                i32::try_from(ctx.config.max_message_size).unwrap_or(i32::MAX);
            publishing.validate_message_type = ctx.config.enable_topic_message_type_check;
            settings.backoff_policy = Some(v2::RetryPolicy {
                max_attempts: 3,
                strategy: Some(v2::retry_policy::Strategy::ExponentialBackoff(
                    v2::ExponentialBackoff {
                        initial: Some(duration(10)),
                        max: Some(duration(1_000)),
                        multiplier: 2.0,
                    },
                )),
            });
        }
        Some(PubSub::Subscription(subscription)) => {
            let group = subscription
                .group
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default();
            if message::validate_group(&group).is_err() {
                return Err(status::of(
                    Code::IllegalConsumerGroup,
                    format!("consumer group `{group}` is not valid"),
                ));
            }
            let policy = ConsumerPolicy::of(ctx, &group);
            subscription.fifo = Some(policy.fifo);
            if settings.client_type.is_some_and(is_lite_type) {
                // The clients check both before they ask to subscribe; one that reads no
                // quota takes it as 0 and subscribes nothing.
                let quota = ctx.groups.lite_client_quota(&group);
                subscription.lite_subscription_quota =
                    Some(quota.map_or(i32::MAX, |q| i32::try_from(q).unwrap_or(i32::MAX)));
                subscription.max_lite_topic_size = Some(message::topic::MAX_LITE_TOPIC_SIZE as i32);
            }
            subscription.receive_batch_size = Some(RECEIVE_BATCH);
            let asked = subscription
                .long_polling_timeout
                .as_ref()
                .map(super::convert::duration_ms)
                .filter(|ms| *ms > 0)
                .unwrap_or(MAX_LONG_POLLING_MS);
            subscription.long_polling_timeout = Some(duration(asked.min(MAX_LONG_POLLING_MS)));
            settings.backoff_policy = Some(v2::RetryPolicy {
                max_attempts: policy.max_attempts,
                strategy: Some(v2::retry_policy::Strategy::CustomizedBackoff(
                    v2::CustomizedBackoff {
                        next: CONSUMER_BACKOFF_MS.iter().map(|ms| duration(*ms)).collect(),
                    },
                )),
            });
        }
        None => {
            return Err(status::of(
                Code::BadRequest,
                "settings name neither publishing nor subscription",
            ))
        }
    }
    settings.metric = Some(v2::Metric {
        on: false,
        endpoints: None,
    });
    Ok(settings)
}

/// How a consumer group consumes, from its subscription group config (RocketMQ's
/// defaults when it has none yet): orderly (`consumeMessageOrderly`, a FIFO group) or
/// not, and how many deliveries a message gets before it goes to the dead-letter queue.
pub struct ConsumerPolicy {
    pub fifo: bool,
    pub max_attempts: i32,
}

impl ConsumerPolicy {
    pub fn of(ctx: &BrokerContext, group: &str) -> ConsumerPolicy {
        let config = ctx.groups.get(group);
        ConsumerPolicy {
            fifo: config.as_ref().is_some_and(|c| c.consume_message_orderly),
            max_attempts: config
                .as_ref()
                .map_or(16, |c| c.retry_max_times)
                .saturating_add(1),
        }
    }
}

/// The group a consumer's settings name, and its (first) topic: a lite consumer's one
/// subscription is its parent topic.
pub fn subscribed(settings: &v2::Settings) -> (String, String) {
    match &settings.pub_sub {
        Some(PubSub::Subscription(subscription)) => (
            subscription
                .group
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            subscription
                .subscriptions
                .first()
                .and_then(|s| s.topic.as_ref())
                .map(|t| t.name.clone())
                .unwrap_or_default(),
        ),
        _ => Default::default(),
    }
}

/// Whether the client type is one whose heartbeat keeps it known.
pub fn is_known_type(client_type: i32) -> bool {
    matches!(
        ClientType::try_from(client_type),
        Ok(ClientType::Producer
            | ClientType::PushConsumer
            | ClientType::SimpleConsumer
            | ClientType::LitePushConsumer
            | ClientType::LiteSimpleConsumer)
    )
}

/// A LitePushConsumer or LiteSimpleConsumer: it consumes the lite topics it subscribed.
pub fn is_lite_type(client_type: i32) -> bool {
    matches!(
        ClientType::try_from(client_type),
        Ok(ClientType::LitePushConsumer | ClientType::LiteSimpleConsumer)
    )
}
