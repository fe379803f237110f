//! Request-reply: `request` (a `DefaultMQProducer` calling `request(msg, timeout)`) and
//! `reply` (a push consumer answering each request with `MessageUtil::create_reply_message`,
//! sent by a producer of its own), as two client instances in two processes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer, MessageListenerConcurrently,
    MessageUtil,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::args::{Reply, Request};
use crate::report;

/// RocketMQ's property names for request-reply (`MessageConst`).
const CORRELATION_ID: &str = "CORRELATION_ID";
const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
/// How long the replier may wait for one reply's send.
const REPLY_SEND_TIMEOUT_MS: u64 = 10_000;
/// How long a consumer may take to shut down before the driver gives up on it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than its own timeout a request with a callback is waited for, should the
/// client never call back.
const CALLBACK_GRACE: Duration = Duration::from_secs(5);

/// What a request was answered with.
struct Answer {
    body: Vec<u8>,
    topic: String,
    correlation_id: Option<String>,
}

impl Answer {
    fn of(message: &dyn MessageTrait) -> Answer {
        Answer {
            body: message.get_body().map(|b| b.to_vec()).unwrap_or_default(),
            topic: message.topic().to_string(),
            correlation_id: property(message, CORRELATION_ID),
        }
    }
}

/// Sends one request and waits for its answer: with the blocking `request`, or with
/// `request_with_callback` and the callback's outcome.
async fn ask(
    producer: &DefaultMQProducer,
    message: Message,
    timeout_ms: u64,
    callback: bool,
) -> Result<Answer, String> {
    if !callback {
        return match producer.request(message, timeout_ms).await {
            Ok(answer) => Ok(Answer::of(answer.as_ref())),
            Err(e) => Err(e.to_string()),
        };
    }
    let (tell, told) = tokio::sync::oneshot::channel();
    // The callback is an Fn: the sender is taken out at its first call.
    let tell = Mutex::new(Some(tell));
    let on_answer = move |answer: Option<&dyn MessageTrait>,
                          error: Option<&rocketmq_client_rust::ClientError>| {
        let outcome = match (answer, error) {
            (Some(answer), _) => Ok(Answer::of(answer)),
            (None, Some(e)) => Err(e.to_string()),
            (None, None) => {
                // The client (unlike Java's) calls back as soon as the request is sent, with
                // neither answer nor error, and again when the reply comes: wait for that.
                report::print(&json!({"op": "called_back_empty"}));
                return;
            }
        };
        if let Some(tell) = tell.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // The receiver is gone only once the driver stopped waiting.
            let _ = tell.send(outcome);
        }
    };
    producer
        .request_with_callback(message, on_answer, timeout_ms)
        .await
        .map_err(|e| e.to_string())?;
    let wait = Duration::from_millis(timeout_ms) + CALLBACK_GRACE;
    match tokio::time::timeout(wait, told).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err("the client dropped the callback without calling it".to_string()),
        Err(_) => Err(format!("no callback within {wait:?}")),
    }
}

fn property(message: &dyn MessageTrait, name: &str) -> Option<String> {
    message
        .get_properties()
        .iter()
        .find(|(key, _)| key.as_str() == name)
        .map(|(_, value)| value.to_string())
}

fn elapsed_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Sends COUNT requests one at a time (`--callback`: with a callback). Lines: `response` per answered request (`seq`,
/// `body`, `topic`, `correlation_id`, `sent_at_ms`, `answered_at_ms`), `request_failed` per
/// request without an answer, then `done` (`ok`, `failed`). Fails if any failed.
///
/// The request's own correlation id is not printed: the client sets it on the message it
/// was handed by value and never shows it to the caller. The replier prints it as it
/// received it, and the reply carries it back.
pub async fn request(runtime: Arc<ClientRuntime>, args: &Request) -> Result<()> {
    let start = Instant::now();
    let mut producer = DefaultMQProducer::builder(runtime)
        .producer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        .build();
    producer.start().await.context("starting the requester")?;
    report::print(&json!({
        "op": "started", "command": "request", "topic": args.topic, "callback": args.callback,
    }));
    let (mut ok, mut failed) = (0, 0);
    for seq in 0..args.count {
        let body = format!("{}:{seq}", args.topic);
        let message = Message::builder()
            .topic(args.topic.as_str())
            .body(body.into_bytes())
            .build()
            .context("building the request")?;
        let sent_at_ms = elapsed_ms(start);
        match ask(&producer, message, args.timeout_ms, args.callback).await {
            Ok(answer) => {
                ok += 1;
                report::print(&json!({
                    "op": "response",
                    "seq": seq,
                    "body": String::from_utf8_lossy(&answer.body),
                    "topic": answer.topic,
                    "correlation_id": answer.correlation_id,
                    "sent_at_ms": sent_at_ms,
                    "answered_at_ms": elapsed_ms(start),
                }));
            }
            Err(e) => {
                failed += 1;
                report::print(&json!({
                    "op": "request_failed",
                    "seq": seq,
                    "sent_at_ms": sent_at_ms,
                    "error": e,
                }));
            }
        }
    }
    report::print(&json!({"op": "done", "ok": ok, "failed": failed}));
    producer.shutdown().await;
    if failed > 0 {
        bail!("{failed} of {} requests were not answered", args.count);
    }
    Ok(())
}

/// Hands every request the consumer gets to the task that answers it (the listener is
/// synchronous, the reply's send is not).
struct Listener(mpsc::UnboundedSender<MessageExt>);

impl MessageListenerConcurrently for Listener {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        for message in messages {
            // The receiver lives until the consumer is shut down.
            let _ = self.0.send((*message).clone());
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// Answers requests (each after `--reply-delay-ms`) until N were answered (then lingers) or
/// the time is up. Lines:
/// `started`, then `replied` per request (`request_body`, `request_correlation_id`,
/// `reply_to`, and the reply's `topic` and `status`, or `error`), then `summary`.
pub async fn reply(runtime: Arc<ClientRuntime>, reply_args: &Reply) -> Result<()> {
    let args = &reply_args.consume;
    let start = Instant::now();
    let mut producer = DefaultMQProducer::builder(runtime.clone())
        .producer_group(format!("{}-replier", args.group))
        .name_server_addr(args.namesrv.as_str())
        .retry_times_when_send_failed(0)
        .build();
    producer
        .start()
        .await
        .context("starting the reply producer")?;
    let (requests, mut received) = mpsc::unbounded_channel();
    let mut consumer = DefaultMQPushConsumer::builder(runtime)
        .consumer_group(args.group.as_str())
        .name_server_addr(args.namesrv.as_str())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    consumer
        .subscribe(args.topic.as_str(), "*")
        .await
        .context("subscribing")?;
    consumer.register_message_listener_concurrently(Listener(requests));
    consumer.start().await.context("starting the replier")?;
    report::print(&json!({"op": "started", "command": "reply", "topic": args.topic}));
    let deadline = start + Duration::from_secs(args.timeout_secs);
    let mut answered = 0;
    let mut linger_until = (args.expect == 0).then(Instant::now);
    loop {
        let until = linger_until.unwrap_or(deadline).min(deadline);
        let Ok(Some(request)) = tokio::time::timeout_at(until, received.recv()).await else {
            break;
        };
        let body = request.body().unwrap_or_default();
        let mut line = json!({
            "op": "replied",
            "request_body": String::from_utf8_lossy(&body),
            "request_msg_id": report::client_msg_id(&request),
            "request_correlation_id": property(&request, CORRELATION_ID),
            "reply_to": property(&request, REPLY_TO_CLIENT),
            "consumed_at_ms": elapsed_ms(start),
        });
        tokio::time::sleep(Duration::from_millis(reply_args.delay_ms)).await;
        let mut reply_body = b"reply:".to_vec();
        reply_body.extend_from_slice(&body);
        match MessageUtil::create_reply_message(&request.message, &reply_body) {
            Ok(reply) => {
                line["topic"] = json!(reply.topic().as_str());
                line["correlation_id"] = json!(property(&reply, CORRELATION_ID));
                match producer
                    .send_with_timeout(reply, REPLY_SEND_TIMEOUT_MS)
                    .await
                {
                    Ok(Some(result)) => {
                        answered += 1;
                        line["status"] =
                            serde_json::to_value(result.send_status).unwrap_or_default();
                    }
                    Ok(None) => line["error"] = json!("the client returned no send result"),
                    Err(e) => line["error"] = json!(e.to_string()),
                }
            }
            Err(e) => line["error"] = json!(format!("create_reply_message: {e}")),
        }
        line["replied_at_ms"] = json!(elapsed_ms(start));
        report::print(&line);
        if linger_until.is_none() && answered >= args.expect {
            linger_until = Some(Instant::now() + Duration::from_millis(args.linger_ms));
        }
    }
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, consumer.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("replier did not shut down in {SHUTDOWN_TIMEOUT:?}");
    }
    producer.shutdown().await;
    report::print(&json!({"op": "summary", "answered": answered, "expected": args.expect}));
    if answered < args.expect {
        bail!(
            "{answered} of {} requests answered after {} s",
            args.expect,
            args.timeout_secs
        );
    }
    Ok(())
}
