//! Drives Apache's RocketMQ 5 gRPC client for Rust (`rocketmq` 5.0.0 from crates.io,
//! unmodified; apache/rocketmq-clients, rust/) against a broker that serves gRPC itself. One
//! JSON object per line on stdout (the client logs to stderr); exit 0 on success, 1 on a
//! failure (a `failed` line says why), 2 on a usage error. The same commands and lines as
//! compat/python-grpc/driver.py and compat/nodejs-grpc/driver.js:
//!
//!   produce --endpoints E -t TOPIC -c COUNT [--tag T] [--message-groups N] [--delay-ms MS]
//!       Producer::send, one at a time: body `TOPIC:SEQ`, user property seq, key K-SEQ; with
//!       --message-groups each message is FIFO, in message group G<SEQ mod N>; with
//!       --delay-ms each is a delay message due MS from its send, rounded up to the second
//!       (the client sends its delivery timestamp in whole seconds).
//!   simple  --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--nack-first]
//!           [--batch B]
//!       SimpleConsumer::receive_with (up to B messages, 16 by default; invisible 20 s) and
//!       ack. With --nack-first each
//!       message's first delivery is turned down (`nacked`) and must come back. This client
//!       has no change_invisible_duration (5.0.0's SimpleConsumer offers receive and ack
//!       only), so the driver receives with an invisible time of 10 s (the least RocketMQ's
//!       proxy accepts, minInvisibleTimeMillsForRecv) and leaves each first delivery
//!       unacknowledged: the message comes back when that time runs out (`nacked` lines say
//!       `"by": "invisible-time-elapsed"`).
//!   transaction --endpoints E -t TOPIC [--timeout-secs S] [--linger-ms MS]
//!       A transaction producer (Producer::new_transaction_producer with a checker), one
//!       transaction per name in TRANSACTIONS (body `TOPIC:NAME`, tag TagTx, key tx-NAME):
//!       committed, rolled back, and two left open that the broker checks back (answered
//!       COMMIT and ROLLBACK). Lines: `sent` (name, msg_id, status OK), `checked` (name,
//!       msg_id, topic, times, transaction_id), then `done` once both open ones were checked
//!       (after lingering MS), or `timeout`.
//!
//! Workarounds for the client's own defects:
//! - Its receive RPC's deadline is the long-polling timeout itself (the Java client adds its
//!   request timeout), so a server that long-polls the full time answers after the deadline.
//!   The driver keeps the client's default long-polling timeout of 40 s, twice the 20 s a
//!   broker (or RocketMQ's proxy, grpcClientConsumerMaxLongPollingTimeoutMillis) polls at
//!   most, so an empty receive ends with MESSAGE_NOT_FOUND in time.
//! - It compiles only with the `time` crate's `local-offset` feature, which it uses but does
//!   not ask for: Cargo.toml turns it on.
//! - It handles no Telemetry command but transaction checks, so each Settings command a
//!   server sends back (as RocketMQ's proxy does) is logged on stderr as an error; harmless.
//!
//! ACL: the client signs its calls when ROCKETMQ_ACCESS_KEY and ROCKETMQ_SECRET_KEY are set
//! (HMAC-SHA1 of x-mq-date-time, as the other 5.x clients; crates/tests/tests/acl.rs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::{MessageBuilder, MessageView};
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::{Producer, SimpleConsumer};
use serde_json::{json, Value};

const RELEASE: &str = "5.0.0";
const TRANSACTIONS: [&str; 4] = ["commit", "rollback", "check-commit", "check-rollback"];
/// Invisible time of a receive (as the other drivers), and with --nack-first.
const INVISIBLE: Duration = Duration::from_secs(20);
const NACK_INVISIBLE: Duration = Duration::from_secs(10);

type Error = Box<dyn std::error::Error + Send + Sync>;

fn line(fields: Value) {
    // One write per line: the checker prints from the client's task.
    println!("{fields}");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Args {
    command: String,
    flags: HashMap<String, String>,
    switches: HashSet<String>,
}

impl Args {
    fn parse(argv: &[String]) -> Result<Args, String> {
        let (command, rest) = argv.split_first().ok_or("no command")?;
        let mut flags = HashMap::new();
        let mut switches = HashSet::new();
        let mut rest = rest.iter();
        while let Some(key) = rest.next() {
            if key == "--nack-first" {
                switches.insert(key.clone());
            } else {
                let value = rest.next().ok_or(format!("{key} needs a value"))?;
                flags.insert(key.clone(), value.clone());
            }
        }
        for needed in ["--endpoints", "-t"] {
            if !flags.contains_key(needed) {
                return Err(format!("missing {needed}"));
            }
        }
        Ok(Args {
            command: command.clone(),
            flags,
            switches,
        })
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.flags.get(key).map(String::as_str)
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.text(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{key} {v} is no number")),
        }
    }

    fn topic(&self) -> &str {
        self.text("-t").unwrap_or_default()
    }

    fn client_option(&self) -> ClientOption {
        let mut option = ClientOption::default();
        option.set_access_url(self.text("--endpoints").unwrap_or_default());
        option.set_enable_tls(false);
        option.set_timeout(Duration::from_secs(10));
        if let (Ok(key), Ok(secret)) = (
            std::env::var("ROCKETMQ_ACCESS_KEY"),
            std::env::var("ROCKETMQ_SECRET_KEY"),
        ) {
            if !key.is_empty() && !secret.is_empty() {
                option.set_access_key(key);
                option.set_secret_key(secret);
            }
        }
        option
    }
}

async fn produce(args: &Args) -> Result<bool, Error> {
    let topic = args.topic();
    let count = args.number("-c", 0)?;
    let message_groups = args.number("--message-groups", 0)?;
    let delay_ms = args.number("--delay-ms", 0)?;
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic]);
    let mut producer = Producer::new(option, args.client_option())?;
    producer.start().await?;
    line(json!({"op": "started", "command": "produce", "client_version": RELEASE}));
    let sent = async {
        for seq in 0..count {
            let mut message = MessageBuilder::builder()
                .set_topic(topic)
                .set_body(format!("{topic}:{seq}").into_bytes())
                .set_keys(vec![format!("K-{seq}")])
                .set_properties(HashMap::from([("seq", seq.to_string())]));
            if let Some(tag) = args.text("--tag") {
                message = message.set_tag(tag);
            }
            let group = (message_groups > 0).then(|| format!("G{}", seq % message_groups));
            if let Some(group) = &group {
                message = message.set_message_group(group);
            }
            let mut deliver_ms = 0;
            if delay_ms > 0 {
                let deliver_secs = (now_ms() + delay_ms).div_ceil(1000);
                message = message.set_delivery_timestamp(deliver_secs as i64);
                deliver_ms = deliver_secs * 1000;
            }
            let receipt = producer.send(message.build()?).await?;
            line(json!({
                "op": "sent", "seq": seq, "msg_id": receipt.message_id(), "group": group,
                "deliver_ms": deliver_ms,
            }));
        }
        Ok::<(), Error>(())
    }
    .await;
    producer.shutdown().await?;
    sent?;
    line(json!({"op": "done", "sent": count}));
    Ok(true)
}

async fn simple(args: &Args) -> Result<bool, Error> {
    let topic = args.topic();
    let group = args.text("-g").ok_or("missing -g")?;
    let expect = args.number("--expect", 0)? as usize;
    let timeout = Duration::from_secs(args.number("--timeout-secs", 60)?);
    let nack_first = args.switches.contains("--nack-first");
    let batch = args.number("--batch", 16)? as i32;
    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group(group);
    option.set_topics(vec![topic]);
    let mut consumer = SimpleConsumer::new(option, args.client_option())?;
    consumer.start().await?;
    line(json!({"op": "started", "command": "simple", "client_version": RELEASE}));
    let filter = FilterExpression::new(FilterType::Tag, "*");
    let invisible = if nack_first {
        NACK_INVISIBLE
    } else {
        INVISIBLE
    };
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + timeout;
    let consumed = async {
        while acked.len() < expect && Instant::now() < deadline {
            let messages = consumer
                .receive_with(topic, &filter, batch, invisible)
                .await?;
            for message in messages {
                let id = message.message_id().to_owned();
                let delivery = deliveries.entry(id.clone()).or_default();
                *delivery += 1;
                let mut fields = fields(&message, *delivery);
                if nack_first && *delivery == 1 {
                    fields["op"] = "nacked".into();
                    fields["by"] = "invisible-time-elapsed".into();
                } else {
                    consumer.ack(&message).await?;
                    acked.insert(id);
                    fields["op"] = "received".into();
                }
                line(fields);
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    consumer.shutdown().await?;
    consumed?;
    let done = acked.len() >= expect;
    line(json!({"op": if done { "done" } else { "timeout" }, "distinct": acked.len()}));
    Ok(done)
}

fn fields(message: &MessageView, delivery: u32) -> Value {
    json!({
        "msg_id": message.message_id(),
        "body": String::from_utf8_lossy(message.body()),
        "seq": message.properties().get("seq"),
        "tag": message.tag(),
        "group": message.message_group(),
        "keys": message.keys().join(" "),
        "delivery_attempt": message.delivery_attempt(),
        "delivery": delivery,
        "at_ms": now_ms(),
    })
}

async fn transaction(args: &Args) -> Result<bool, Error> {
    let topic = args.topic();
    let linger = Duration::from_millis(args.number("--linger-ms", 1000)?);
    let deadline = Instant::now() + Duration::from_secs(args.number("--timeout-secs", 60)?);
    let checks: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let checker = {
        let checks = Arc::clone(&checks);
        // The client calls the checker (a plain closure) from its telemetry task and sends
        // the answer as EndTransaction.
        move |transaction_id: String, message: MessageView| {
            let text = String::from_utf8_lossy(message.body()).into_owned();
            let name = text.split_once(':').map_or("", |(_, name)| name).to_owned();
            let times = {
                let mut checks = checks.lock().unwrap();
                let times = checks.entry(name.clone()).or_default();
                *times += 1;
                *times
            };
            line(json!({
                "op": "checked", "name": name, "msg_id": message.message_id(),
                "topic": message.topic(), "times": times, "transaction_id": transaction_id,
            }));
            match name.as_str() {
                "check-commit" => TransactionResolution::COMMIT,
                "check-rollback" => TransactionResolution::ROLLBACK,
                _ => TransactionResolution::UNKNOWN,
            }
        }
    };
    let answered_both = || {
        let checks = checks.lock().unwrap();
        checks.contains_key("check-commit") && checks.contains_key("check-rollback")
    };
    let mut option = ProducerOption::default();
    // The topics go into the producer's settings: the broker checks back the producers
    // that publish to a transaction's topic.
    option.set_topics(vec![topic]);
    let mut producer =
        Producer::new_transaction_producer(option, args.client_option(), Box::new(checker))?;
    producer.start().await?;
    line(json!({"op": "started", "command": "transaction", "client_version": RELEASE}));
    let ran = async {
        for name in TRANSACTIONS {
            let message = MessageBuilder::transaction_message_builder(
                topic,
                format!("{topic}:{name}").into_bytes(),
            )
            .set_tag("TagTx")
            .set_keys(vec![format!("tx-{name}")])
            .build()?;
            let transaction = producer.send_transaction_message(message).await?;
            line(json!({
                "op": "sent", "name": name, "msg_id": transaction.message_id(),
                "transaction_id": transaction.transaction_id(), "status": "OK",
            }));
            match name {
                "commit" => transaction.commit().await?,
                "rollback" => transaction.rollback().await?,
                _ => {}
            }
        }
        while !answered_both() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if answered_both() {
            // The answers travel as EndTransaction calls; a second check would show here.
            tokio::time::sleep(linger).await;
        }
        Ok::<(), Error>(())
    }
    .await;
    producer.shutdown().await?;
    ran?;
    let done = answered_both();
    let checked = checks.lock().unwrap().len();
    line(json!({"op": if done { "done" } else { "timeout" }, "checked": checked}));
    Ok(done)
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(&argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("rust-grpc: {e}");
            return ExitCode::from(2);
        }
    };
    let ran = match args.command.as_str() {
        "produce" => produce(&args).await,
        "simple" => simple(&args).await,
        "transaction" => transaction(&args).await,
        other => {
            eprintln!("rust-grpc: unknown command {other}");
            return ExitCode::from(2);
        }
    };
    match ran {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            line(json!({"op": "failed", "error": format!("{e:?}")}));
            ExitCode::from(1)
        }
    }
}
