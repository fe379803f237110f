//! `consume` (a `DefaultMQPushConsumer`) and `pull` (a `DefaultLitePullConsumer`): both join a
//! clustering consumer group from the first offset, print every message they receive and stop
//! once the expected number of distinct messages arrived or the time is up. Either subscribes
//! with a tag expression or, with `--sql`, with `MessageSelector::by_sql`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    ConsumeOrderlyContext, ConsumeOrderlyStatus, DefaultLitePullConsumer, DefaultMQPushConsumer,
    MQPushConsumer, MessageListenerConcurrently, MessageListenerOrderly, MessageSelector,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::args::Consume;
use crate::report;

/// How long a consumer may take to shut down before the driver gives up on it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one lite-pull poll waits for messages.
const POLL_TIMEOUT_MS: u64 = 500;

/// Prints each message and counts the distinct accepted ones by client message id.
struct Collector {
    op: &'static str,
    expect: usize,
    /// Refuse the first delivery of each message.
    reconsume_once: bool,
    state: Mutex<Seen>,
    reached: Notify,
}

#[derive(Default)]
struct Seen {
    distinct: HashSet<String>,
    refused: HashSet<String>,
    received: usize,
}

impl Collector {
    fn new(op: &'static str, expect: usize, reconsume_once: bool) -> Arc<Collector> {
        Arc::new(Collector {
            op,
            expect,
            reconsume_once,
            state: Mutex::new(Seen::default()),
            reached: Notify::new(),
        })
    }

    /// Prints `message` and returns whether it is accepted (else it is to be redelivered).
    fn record(&self, message: &MessageExt) -> bool {
        let id = report::client_msg_id(message);
        // A poisoned lock only means another listener thread panicked mid-count; the sets
        // are still the best record there is.
        let mut seen = self.state.lock().unwrap_or_else(|e| e.into_inner());
        seen.received += 1;
        // The bound keeps a runaway topic from growing the sets without end; ids beyond it
        // are still printed, so a test sees them as extras.
        let room = seen.distinct.len() + seen.refused.len() <= 2 * crate::args::MAX_COUNT;
        let accepted = !(self.reconsume_once && room && seen.refused.insert(id.clone()));
        let mut line = report::message_line(self.op, message);
        line["accepted"] = json!(accepted);
        report::print(&line);
        if accepted && room {
            seen.distinct.insert(id);
        }
        if seen.distinct.len() >= self.expect {
            // notify_one keeps a permit when nobody waits yet, so the signal is never lost.
            self.reached.notify_one();
        }
        accepted
    }

    fn summary(&self) -> (usize, usize) {
        let seen = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (seen.distinct.len(), seen.received)
    }

    /// Prints the summary line and fails unless enough distinct messages arrived.
    fn finish(&self, args: &Consume) -> Result<()> {
        let (distinct, received) = self.summary();
        report::print(&json!({
            "op": "summary",
            "distinct": distinct,
            "received": received,
            "expected": args.expect,
        }));
        if distinct < args.expect {
            bail!(
                "{distinct} of {} distinct messages after {} s ({received} deliveries)",
                args.expect,
                args.timeout_secs
            );
        }
        Ok(())
    }
}

struct Listener(Arc<Collector>);

/// Records every message of the batch (each is printed), refusing the batch when any of
/// them is refused, as the client redelivers a refused batch whole.
fn record_all(collector: &Collector, messages: &[&MessageExt]) -> bool {
    // Every message is recorded: no short-circuit after the first refusal.
    let mut all_accepted = true;
    for message in messages {
        all_accepted &= collector.record(message);
    }
    all_accepted
}

impl MessageListenerConcurrently for Listener {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        if record_all(&self.0, messages) {
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        } else {
            Ok(ConsumeConcurrentlyStatus::ReconsumeLater)
        }
    }
}

impl MessageListenerOrderly for Listener {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &mut ConsumeOrderlyContext,
    ) -> ClientResult<ConsumeOrderlyStatus> {
        if record_all(&self.0, messages) {
            Ok(ConsumeOrderlyStatus::Success)
        } else {
            Ok(ConsumeOrderlyStatus::SuspendCurrentQueueAMoment)
        }
    }
}

/// The SQL92 selector of a `--sql` run.
fn selector(args: &Consume) -> MessageSelector {
    MessageSelector::by_sql(args.expression.as_str())
}

pub async fn push(runtime: Arc<ClientRuntime>, args: &Consume) -> Result<()> {
    let collector = Collector::new("received", args.expect, args.reconsume_once);
    let mut consumer = DefaultMQPushConsumer::builder(runtime)
        .consumer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    if args.sql {
        consumer
            .subscribe_with_selector(&args.topic, Some(selector(args)))
            .await
            .context("subscribing")?;
    } else {
        consumer
            .subscribe(args.topic.as_str(), args.expression.as_str())
            .await
            .context("subscribing")?;
    }
    let listener = Listener(Arc::clone(&collector));
    if args.orderly {
        consumer.register_message_listener_orderly(listener);
    } else {
        consumer.register_message_listener_concurrently(listener);
    }
    consumer
        .start()
        .await
        .context("starting the push consumer")?;
    if args.expect > 0 {
        let _ = tokio::time::timeout(
            Duration::from_secs(args.timeout_secs),
            collector.reached.notified(),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(args.linger_ms)).await;
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, consumer.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("push consumer did not shut down in {SHUTDOWN_TIMEOUT:?}");
    }
    collector.finish(args)
}

pub async fn pull(runtime: Arc<ClientRuntime>, args: &Consume) -> Result<()> {
    let collector = Collector::new("pulled", args.expect, false);
    let consumer = DefaultLitePullConsumer::builder(runtime)
        .consumer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build()
        .context("building the lite pull consumer")?;
    if args.sql {
        consumer
            .subscribe_with_selector(&args.topic, Some(selector(args)))
            .await
            .context("subscribing")?;
    } else {
        consumer
            .subscribe_with_expression(&args.topic, &args.expression)
            .await
            .context("subscribing")?;
    }
    consumer
        .start()
        .await
        .context("starting the lite pull consumer")?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut linger_until = None;
    loop {
        let now = Instant::now();
        if now >= deadline || linger_until.is_some_and(|until| now >= until) {
            break;
        }
        for message in consumer.poll_with_timeout(POLL_TIMEOUT_MS).await {
            // Nothing is refused here: the collector was made without reconsume_once.
            collector.record(&message);
        }
        if linger_until.is_none() && collector.summary().0 >= args.expect {
            linger_until = Some(Instant::now() + Duration::from_millis(args.linger_ms));
        }
    }
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, consumer.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("lite pull consumer did not shut down in {SHUTDOWN_TIMEOUT:?}");
    }
    collector.finish(args)
}
