//! `mq`: the tool for people. `mq produce` sends messages (arguments or stdin lines,
//! optionally in transactions), `mq consume` prints them (`--follow` keeps reading like
//! `tail -f`), `mq request` / `mq reply` are the two ends of request-reply, and `mq bench
//! produce|consume` measures throughput and latency with a live progress line and a
//! JSON summary for scripts.

mod grpc_bench;

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use client::consumer::{ConsumeFromWhere, ConsumeResult, PullStatus, Selector};
use client::{
    ClientOptions, Message, MessageQueue, Producer, ProducerOptions, PullConsumer, PushConsumer,
    PushConsumerOptions, ReceivedMessage, SendResult, TransactionProducer, TransactionState,
};
use hdrhistogram::Histogram;
use message::keys;
use parking_lot::Mutex;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "mq",
    about = "Produce, consume and benchmark RocketMQ topics",
    version
)]
struct Cli {
    /// Name server address list, e.g. '127.0.0.1:9876;127.0.0.2:9876'
    #[arg(short = 'n', long = "namesrv", global = true, env = "NAMESRV_ADDR")]
    namesrv: Option<String>,
    /// Machine-readable output (JSON lines, or a JSON summary for bench).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    credentials: client::CredentialArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send messages: the --body text, or each line of stdin.
    Produce(Produce),
    /// Print messages of a topic; --follow keeps waiting for new ones.
    Consume(Consume),
    /// Cancel a waiting timer message by the recall handle its send printed.
    Recall(Recall),
    /// Send requests and print each reply (request-reply, as Java's producer.request).
    Request(Request),
    /// Answer the requests sent to a topic (the replier's end of request-reply).
    Reply(Reply),
    /// Measure throughput and latency.
    Bench {
        #[command(subcommand)]
        kind: Bench,
    },
}

#[derive(Args)]
struct Recall {
    #[arg(short = 't', long)]
    topic: String,
    /// The recall handle `mq produce --deliver-after-ms` printed.
    #[arg(long)]
    handle: String,
    #[arg(long, default_value = "mq-producer")]
    group: String,
}

/// A message to send: shared by `produce` and `request`.
#[derive(Args)]
struct MessageArgs {
    #[arg(short = 't', long)]
    topic: String,
    /// Message body; without it every stdin line is one message.
    #[arg(short = 'b', long)]
    body: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// Business keys (repeatable).
    #[arg(short = 'k', long = "key")]
    keys: Vec<String>,
    /// User property KEY=VALUE (repeatable).
    #[arg(short = 'p', long = "property")]
    properties: Vec<String>,
    /// Send the --body this many times.
    #[arg(short = 'c', long, default_value_t = 1)]
    count: u64,
}

#[derive(Args)]
struct Produce {
    #[command(flatten)]
    message: MessageArgs,
    /// Delay level (1..=18: 1s 5s 10s 30s 1m ... 2h).
    #[arg(long, default_value_t = 0)]
    delay: i32,
    /// A RocketMQ 5 timer message delivered this many milliseconds from now
    /// (TIMER_DELIVER_MS); its recall handle is printed.
    #[arg(long)]
    deliver_after_ms: Option<i64>,
    /// Messages with the same ordering key go to the same queue, in order.
    #[arg(long)]
    order_key: Option<String>,
    /// Send each message in a transaction that ends this way: a half message, then its
    /// commit or rollback; `unknown` leaves it open until the broker checks back, which
    /// this tool then waits for and answers with --check-answer.
    #[arg(long, value_enum, conflicts_with_all = ["delay", "deliver_after_ms", "order_key"])]
    transaction: Option<LocalOutcome>,
    /// How to answer the broker's check of a transaction left unknown.
    #[arg(long, value_enum, default_value = "commit", requires = "transaction")]
    check_answer: CheckAnswer,
    /// With `--transaction unknown`: the longest wait for the broker to check every
    /// message back (its first check comes `transactionTimeOut` after the send, then
    /// every `transactionCheckInterval`).
    #[arg(long, default_value_t = 120, requires = "transaction")]
    check_wait_secs: u64,
    #[arg(long, default_value = "mq-producer")]
    group: String,
}

/// How the local transaction of `mq produce --transaction` ends.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LocalOutcome {
    Commit,
    Rollback,
    Unknown,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckAnswer {
    Commit,
    Rollback,
}

impl LocalOutcome {
    fn state(self) -> TransactionState {
        match self {
            LocalOutcome::Commit => TransactionState::Commit,
            LocalOutcome::Rollback => TransactionState::Rollback,
            LocalOutcome::Unknown => TransactionState::Unknown,
        }
    }
}

impl CheckAnswer {
    fn state(self) -> TransactionState {
        match self {
            CheckAnswer::Commit => TransactionState::Commit,
            CheckAnswer::Rollback => TransactionState::Rollback,
        }
    }
}

#[derive(Args)]
struct Request {
    #[command(flatten)]
    message: MessageArgs,
    /// How long each request waits for its reply, its send included (the request's TTL).
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    #[arg(long, default_value = "mq-requester")]
    group: String,
}

#[derive(Args)]
struct Reply {
    #[arg(short = 't', long)]
    topic: String,
    /// The consumer group the replier joins.
    #[arg(short = 'g', long, default_value = "mq-replier")]
    group: String,
    /// Tag expression: `*` or `a || b`.
    #[arg(short = 'e', long = "tags", default_value = "*")]
    expression: String,
    /// Reply body; without it each reply echoes its request's body.
    #[arg(short = 'b', long)]
    body: Option<String>,
    /// Stop after answering this many requests.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Where a new group starts: requests sent before it started have usually expired.
    #[arg(long, value_enum, default_value = "last")]
    from: From,
}

#[derive(Clone, Copy, ValueEnum)]
enum From {
    First,
    Last,
}

#[derive(Args)]
struct Consume {
    #[arg(short = 't', long)]
    topic: String,
    /// Tag expression: `*` or `a || b`.
    #[arg(short = 'e', long = "tags", default_value = "*")]
    expression: String,
    /// Select by a SQL92 expression over properties instead of tags (the broker needs
    /// enablePropertyFilter=true), e.g. "region = 'eu' AND amount > 10".
    #[arg(long, conflicts_with = "expression")]
    sql: Option<String>,
    /// Join this consumer group (committing offsets) instead of reading on one's own.
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Where to start reading.
    #[arg(long, value_enum, default_value = "first")]
    from: From,
    /// Keep waiting for new messages (like tail -f); stop with Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Stop after this many messages.
    #[arg(short = 'c', long)]
    count: Option<u64>,
}

#[derive(Subcommand)]
enum Bench {
    /// Send as fast as the broker takes it.
    Produce(BenchProduce),
    /// Consume as fast as the broker hands messages out.
    Consume(BenchConsume),
}

#[derive(Args)]
struct BenchProduce {
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Body size in bytes.
    #[arg(short = 's', long, default_value_t = 128)]
    size: usize,
    /// Sends in flight at once.
    #[arg(short = 'w', long, default_value_t = 16)]
    concurrency: usize,
    /// Stop after this many seconds...
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// ...or after this many messages, whichever comes first.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Messages per send (1 = single sends).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timer messages (single sends only), due 1 s to 1 + this many seconds from their
    /// send, spread evenly: what the broker's timer holds while they wait.
    #[arg(long)]
    timer_spread_secs: Option<u64>,
    /// Timer messages (single sends only) all due at this epoch millisecond: a backlog
    /// the broker delivers at once.
    #[arg(long, conflicts_with = "timer_spread_secs")]
    timer_due_at_ms: Option<i64>,
    /// Transactional sends (single sends only): each a half message, then its commit, as
    /// Java's TransactionMQProducer does; the latency covers both.
    #[arg(long, conflicts_with_all = ["timer_spread_secs", "timer_due_at_ms"])]
    transaction: bool,
    /// Tag of every message (for benchmarks of filtered consumption).
    #[arg(long)]
    tag: Option<String>,
    /// User property KEY=VALUE of every message (repeatable).
    #[arg(short = 'p', long = "property")]
    properties: Vec<String>,
    /// Send over RocketMQ 5's gRPC protocol to this broker's gRPC port (HOST:PORT) instead
    /// of remoting: normal single sends only.
    #[arg(long, conflicts_with_all = ["timer_spread_secs", "timer_due_at_ms", "transaction", "tag", "properties"])]
    grpc: Option<String>,
}

#[derive(Args)]
struct BenchConsume {
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Tag expression: `*` or `a || b`.
    #[arg(short = 'e', long = "tags", default_value = "*")]
    expression: String,
    /// Select by a SQL92 expression over properties instead of tags.
    #[arg(long, conflicts_with = "expression")]
    sql: Option<String>,
    #[arg(short = 'g', long)]
    group: Option<String>,
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many messages.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    #[arg(long, value_enum, default_value = "last")]
    from: From,
    /// Consume over RocketMQ 5's gRPC protocol from this broker's gRPC port (HOST:PORT):
    /// receives (POP) and acks, in a group that starts at the topic's beginning.
    #[arg(long, conflicts_with_all = ["sql", "from"])]
    grpc: Option<String>,
    /// With --grpc: receives in flight at once.
    #[arg(short = 'w', long, default_value_t = 4)]
    concurrency: usize,
}

fn main() {
    let cli = Cli::parse();
    launch::init_logging("warn", launch::LogTo::Stderr);
    let runtime = match launch::runtime("mq") {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mq: cannot start a runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        eprintln!("mq: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let namesrv = cli
        .namesrv
        .clone()
        .context("no name server: pass -n ADDR or set NAMESRV_ADDR")?;
    let options = cli.credentials.apply(ClientOptions::new(&namesrv))?;
    match cli.command {
        Command::Produce(args) => produce(options, args, cli.json).await,
        Command::Consume(args) => consume(options, args, cli.json).await,
        Command::Recall(args) => recall(options, args, cli.json).await,
        Command::Request(args) => request(options, args, cli.json).await,
        Command::Reply(args) => reply(options, args, cli.json).await,
        Command::Bench {
            kind: Bench::Produce(args),
        } => bench_produce(options, args, cli.json).await,
        Command::Bench {
            kind: Bench::Consume(args),
        } => bench_consume(options, args, cli.json).await,
    }
}

// ---- produce --------------------------------------------------------------------------

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn recall(options: ClientOptions, args: Recall, json: bool) -> Result<()> {
    let producer = Producer::start(options, ProducerOptions::new(&args.group))?;
    let recalled = producer.recall(&args.topic, &args.handle).await;
    producer.shutdown().await;
    let msg_id = recalled?;
    if json {
        println!("{}", json!({"recalled": msg_id}));
    } else {
        println!("recalled msgId={msg_id}");
    }
    Ok(())
}

/// A `-p KEY=VALUE` argument.
fn key_value(property: &str) -> Result<(&str, &str)> {
    property
        .split_once('=')
        .with_context(|| format!("property `{property}` is not KEY=VALUE"))
}

impl MessageArgs {
    fn message(&self, body: String) -> Result<Message> {
        let mut message = Message::new(self.topic.clone(), body);
        if let Some(tag) = &self.tag {
            message = message.with_tag(tag.clone());
        }
        if !self.keys.is_empty() {
            message = message.with_keys(&self.keys);
        }
        for property in &self.properties {
            let (key, value) = key_value(property)?;
            message = message.with_property(key, value);
        }
        Ok(message)
    }

    /// Runs `each` on every message: the --body `count` times, else one per non-empty
    /// stdin line, read as it comes (`tail -f log | mq produce` streams).
    async fn for_each(&self, mut each: impl AsyncFnMut(Message)) -> Result<()> {
        if let Some(body) = &self.body {
            for _ in 0..self.count {
                each(self.message(body.clone())?).await;
            }
            return Ok(());
        }
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            if !line.is_empty() {
                each(self.message(line)?).await;
            }
        }
        Ok(())
    }
}

fn print_sent(result: &SendResult, extra: &[(&str, String)], json: bool) {
    if json {
        let mut line = json!({"status": result.status.as_str(), "msgId": result.msg_id, "offsetMsgId": result.offset_msg_id,
            "brokerName": result.queue.broker_name, "queueId": result.queue.queue_id, "queueOffset": result.queue_offset,
            "recallHandle": result.recall_handle});
        for (key, value) in extra {
            line[*key] = json!(value);
        }
        println!("{line}");
        return;
    }
    let extra: String = extra.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    println!(
        "{} msgId={} offsetMsgId={} queue={}:{} offset={}{}{extra}",
        result.status.as_str(),
        result.msg_id,
        result.offset_msg_id,
        result.queue.broker_name,
        result.queue.queue_id,
        result.queue_offset,
        result
            .recall_handle
            .as_ref()
            .map(|h| format!(" recallHandle={h}"))
            .unwrap_or_default()
    );
}

async fn produce(options: ClientOptions, args: Produce, json: bool) -> Result<()> {
    if let Some(outcome) = args.transaction {
        return produce_in_transactions(options, &args, outcome, json).await;
    }
    let producer = Producer::start(options, ProducerOptions::new(&args.group))?;
    let mut failures = 0u64;
    let sent = args
        .message
        .for_each(async |mut message: Message| {
            message = message.with_delay_level(args.delay);
            if let Some(after_ms) = args.deliver_after_ms {
                message = message.with_deliver_time_ms(now_ms().saturating_add(after_ms));
            }
            let sent = match &args.order_key {
                Some(key) => producer.send_ordered(message, key).await,
                None => producer.send(message).await,
            };
            match sent {
                Ok(result) => print_sent(&result, &[], json),
                Err(error) => {
                    failures += 1;
                    eprintln!("send failed: {error}");
                }
            }
        })
        .await;
    producer.shutdown().await;
    all_done(sent, failures, "message(s) not sent")
}

/// How a run over the messages went: stdin unreadable, or `failures` of them `failed`.
fn all_done(read: Result<()>, failures: u64, failed: &str) -> Result<()> {
    read?;
    if failures > 0 {
        bail!("{failures} {failed}");
    }
    Ok(())
}

/// Transactions of `mq produce` left unknown, and the broker's checks of them. A check can
/// come before its send's answer is handled (or name a half message of an earlier run of
/// the same producer group), so checks not yet expected are remembered, a bounded number.
#[derive(Default)]
struct CheckTracker {
    awaited: HashSet<String>,
    checked_early: HashSet<String>,
}

/// Most checks of not-yet-sent messages remembered: beyond a burst of early checks, these
/// are other runs' half messages, which nothing waits for.
const MAX_EARLY_CHECKS: usize = 10_000;

impl CheckTracker {
    fn sent(&mut self, msg_id: &str) {
        if !self.checked_early.remove(msg_id) {
            self.awaited.insert(msg_id.to_owned());
        }
    }

    fn checked(&mut self, msg_id: &str) {
        if !self.awaited.remove(msg_id) && self.checked_early.len() < MAX_EARLY_CHECKS {
            self.checked_early.insert(msg_id.to_owned());
        }
    }
}

async fn produce_in_transactions(
    options: ClientOptions,
    args: &Produce,
    outcome: LocalOutcome,
    json: bool,
) -> Result<()> {
    let tracker = Arc::new(Mutex::new(CheckTracker::default()));
    let all_checked = Arc::new(tokio::sync::Notify::new());
    let (tracked, notify, answer) = (
        Arc::clone(&tracker),
        Arc::clone(&all_checked),
        args.check_answer.state(),
    );
    let checker = move |message: &ReceivedMessage| {
        let msg_id = message.msg_id();
        if json {
            println!(
                "{}",
                json!({"checked": msg_id, "answer": format!("{answer:?}")})
            );
        } else {
            println!("checked msgId={msg_id}: answered {answer:?}");
        }
        let mut tracker = tracked.lock();
        tracker.checked(msg_id);
        if tracker.awaited.is_empty() {
            notify.notify_one();
        }
        answer
    };
    let transactions =
        TransactionProducer::start(options, ProducerOptions::new(&args.group), checker)?;
    let mut failures = 0u64;
    let sent = args
        .message
        .for_each(async |message: Message| {
            let outcome = outcome.state();
            match transactions
                .send_in_transaction(message, |_| async move { outcome })
                .await
            {
                Ok(result) => {
                    if result.state == TransactionState::Unknown {
                        tracker.lock().sent(&result.send.msg_id);
                    }
                    let transaction_id = result.send.transaction_id.clone().unwrap_or_default();
                    let state = format!("{:?}", result.state);
                    print_sent(
                        &result.send,
                        &[("transaction", state), ("transactionId", transaction_id)],
                        json,
                    );
                }
                Err(error) => {
                    failures += 1;
                    eprintln!("send failed: {error}");
                }
            }
        })
        .await;
    let waited = if outcome == LocalOutcome::Unknown && sent.is_ok() {
        let deadline = Instant::now() + Duration::from_secs(args.check_wait_secs);
        loop {
            let notified = all_checked.notified();
            let left = tracker.lock().awaited.len();
            if left == 0 {
                break Ok(());
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    break Err(anyhow::anyhow!(
                        "{left} transaction(s) not checked back within {} s (the broker's transactionTimeOut and transactionCheckInterval decide when)",
                        args.check_wait_secs
                    ));
                }
                _ = tokio::signal::ctrl_c() => break Err(anyhow::anyhow!("interrupted with {left} transaction(s) unchecked")),
            }
        }
    } else {
        Ok(())
    };
    transactions.shutdown().await;
    all_done(sent, failures, "message(s) not sent")?;
    waited
}

// ---- request-reply --------------------------------------------------------------------

async fn request(options: ClientOptions, args: Request, json: bool) -> Result<()> {
    let producer = Producer::start(options, ProducerOptions::new(&args.group))?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut failures = 0u64;
    let sent = args
        .message
        .for_each(async |message: Message| {
            let asked_at = Instant::now();
            match producer.request(message, timeout).await {
                Ok(reply) => {
                    let round_trip_ms = asked_at.elapsed().as_secs_f64() * 1e3;
                    let correlation_id = reply.property(keys::CORRELATION_ID).unwrap_or("-");
                    if json {
                        println!(
                            "{}",
                            json!({"correlationId": correlation_id, "roundTripMs": round_trip_ms,
                                "msgId": reply.msg_id(), "properties": reply.properties, "body": reply.body_text()})
                        );
                    } else {
                        println!(
                            "reply in {round_trip_ms:.1} ms correlationId={correlation_id}: {}",
                            reply.body_text()
                        );
                    }
                }
                Err(error) => {
                    failures += 1;
                    eprintln!("request failed: {error}");
                }
            }
        })
        .await;
    producer.shutdown().await;
    all_done(sent, failures, "request(s) not answered")
}

async fn reply(options: ClientOptions, args: Reply, json: bool) -> Result<()> {
    let replier = Producer::start(options.clone(), ProducerOptions::new(&args.group))?;
    let mut consumer_options =
        PushConsumerOptions::new(&args.group).subscribe(&args.topic, &args.expression);
    consumer_options.consume_from_where = match args.from {
        From::First => ConsumeFromWhere::ConsumeFromFirstOffset,
        From::Last => ConsumeFromWhere::ConsumeFromLastOffset,
    };
    let answered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let limit = args.count.unwrap_or(u64::MAX);
    let fixed_body = args.body.clone();
    let (producer, counter, finished) = (replier.clone(), Arc::clone(&answered), Arc::clone(&done));
    let consumer = PushConsumer::start(
        options,
        consumer_options,
        move |requests: Vec<ReceivedMessage>| {
            let (producer, counter, finished, fixed_body) = (
                producer.clone(),
                Arc::clone(&counter),
                Arc::clone(&finished),
                fixed_body.clone(),
            );
            async move {
                for request in &requests {
                    print_message(request, json);
                    if request.property(keys::REPLY_TO_CLIENT).is_none() {
                        eprintln!(
                            "{} is not a request (no REPLY_TO_CLIENT): not answered",
                            request.msg_id()
                        );
                        continue;
                    }
                    let body = fixed_body
                        .clone()
                        .map_or_else(|| request.body.clone(), bytes::Bytes::from);
                    // A requester that is gone cannot be answered later either: a failed reply
                    // is reported, not retried.
                    match producer.reply(request, body).await {
                        Ok(result) => {
                            print_sent(&result, &[("repliedTo", request.msg_id().to_owned())], json)
                        }
                        Err(error) => eprintln!("reply to {} failed: {error}", request.msg_id()),
                    }
                    if counter.fetch_add(1, Ordering::Relaxed) + 1 >= limit {
                        finished.notify_one();
                    }
                }
                ConsumeResult::Success
            }
        },
    )
    .await?;
    tokio::select! {
        _ = done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    consumer.shutdown().await;
    replier.shutdown().await;
    Ok(())
}

// ---- consume --------------------------------------------------------------------------

fn print_message(message: &ReceivedMessage, json: bool) {
    let mut out = std::io::stdout().lock();
    let written = if json {
        writeln!(
            out,
            "{}",
            json!({"topic": message.topic, "brokerName": message.queue.broker_name, "queueId": message.queue.queue_id,
                "queueOffset": message.queue_offset, "msgId": message.msg_id(), "offsetMsgId": message.offset_msg_id,
                "tags": message.tag(), "keys": message.keys(), "reconsumeTimes": message.reconsume_times,
                "bornTimestamp": message.born_timestamp_ms, "storeTimestamp": message.store_timestamp_ms,
                "properties": message.properties, "body": message.body_text()})
        )
    } else {
        writeln!(
            out,
            "[{}:{} #{}] {} tag={} keys={}: {}",
            message.queue.broker_name,
            message.queue.queue_id,
            message.queue_offset,
            message.msg_id(),
            message.tag().unwrap_or("-"),
            message.keys().unwrap_or("-"),
            message.body_text()
        )
    };
    // A closed pipe (`mq consume | head`) ends the program quietly.
    if written.and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

async fn consume(options: ClientOptions, args: Consume, json: bool) -> Result<()> {
    if let Some(group) = &args.group {
        return consume_in_group(options, &args, group, json).await;
    }
    let selector = match &args.sql {
        Some(sql) => Selector::sql92(sql)?,
        None => Selector::tag(&args.expression)?,
    };
    let consumer = PullConsumer::start(options, "mq-reader")?;
    let queues = consumer.queues(&args.topic).await?;
    if queues.is_empty() {
        bail!("topic {} has no readable queue", args.topic);
    }
    let mut offsets: Vec<(MessageQueue, i64)> = Vec::new();
    for queue in queues {
        let offset = match args.from {
            From::First => consumer.min_offset(&queue).await?,
            From::Last => consumer.max_offset(&queue).await?,
        };
        offsets.push((queue, offset));
    }
    let limit = args.count.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    loop {
        let mut caught_up = true;
        for (queue, offset) in offsets.iter_mut() {
            // Drain each queue before moving on, so output is grouped by queue.
            loop {
                let result = consumer
                    .pull_selected(queue, &selector, *offset, 32, None)
                    .await?;
                *offset = result.next_begin_offset;
                for message in &result.messages {
                    print_message(message, json);
                    printed += 1;
                    if printed >= limit {
                        consumer.shutdown();
                        return Ok(());
                    }
                }
                match result.status {
                    PullStatus::Found | PullStatus::NoMatchedMsg | PullStatus::OffsetIllegal => {
                        caught_up = false
                    }
                    PullStatus::NoNewMsg => break,
                }
            }
        }
        if caught_up && !args.follow {
            break;
        }
        if caught_up {
            // Following: wait for the next message on any queue with long polls. Each
            // queue gets a short hold so a quiet queue does not delay a busy one long.
            let hold = Duration::from_millis(1000 / offsets.len().max(1) as u64 + 50);
            for (queue, offset) in offsets.iter_mut() {
                let result = tokio::select! {
                    result = consumer.pull_selected(queue, &selector, *offset, 32, Some(hold)) => result?,
                    _ = tokio::signal::ctrl_c() => { consumer.shutdown(); return Ok(()); }
                };
                *offset = result.next_begin_offset;
                for message in &result.messages {
                    print_message(message, json);
                    printed += 1;
                    if printed >= limit {
                        consumer.shutdown();
                        return Ok(());
                    }
                }
            }
        }
    }
    consumer.shutdown();
    Ok(())
}

/// A push consumer of `group` subscribed to `topic` by SQL92 when given, else by tags.
fn subscribed(
    group: impl Into<String>,
    topic: &str,
    tags: &str,
    sql: &Option<String>,
) -> PushConsumerOptions {
    let options = PushConsumerOptions::new(group);
    match sql {
        Some(sql) => options.subscribe_sql92(topic, sql),
        None => options.subscribe(topic, tags),
    }
}

async fn consume_in_group(
    options: ClientOptions,
    args: &Consume,
    group: &str,
    json: bool,
) -> Result<()> {
    let mut consumer_options = subscribed(group, &args.topic, &args.expression, &args.sql);
    consumer_options.consume_from_where = match args.from {
        From::First => ConsumeFromWhere::ConsumeFromFirstOffset,
        From::Last => ConsumeFromWhere::ConsumeFromLastOffset,
    };
    let printed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let limit = args.count.unwrap_or(u64::MAX);
    let (counter, finished) = (Arc::clone(&printed), Arc::clone(&done));
    let consumer = PushConsumer::start(
        options,
        consumer_options,
        move |messages: Vec<ReceivedMessage>| {
            for message in &messages {
                print_message(message, json);
                if counter.fetch_add(1, Ordering::Relaxed) + 1 >= limit {
                    finished.notify_one();
                }
            }
            futures::future::ready(ConsumeResult::Success)
        },
    )
    .await?;
    tokio::select! {
        _ = done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    consumer.shutdown().await;
    Ok(())
}

// ---- bench ----------------------------------------------------------------------------

/// Latencies in microseconds, up to one minute, 3 significant digits.
fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Stats {
    fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(Stats {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            latency_us: Mutex::new(new_histogram()?),
        }))
    }

    fn record(&self, latency: Duration, messages: u64, bytes: u64) {
        self.ok.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.latency_us.lock().record(micros);
    }
}

/// Prints `elapsed ok tps p99` every second on stderr: over itself on a terminal, one
/// line per second otherwise.
fn spawn_progress(
    stats: Arc<Stats>,
    label: &'static str,
    started: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let mut last_ok = 0;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let ok = stats.ok.load(Ordering::Relaxed);
            let failed = stats.failed.load(Ordering::Relaxed);
            let p99 = stats.latency_us.lock().value_at_quantile(0.99) as f64 / 1000.0;
            let line = format!(
                "{:>5.0}s {label}={ok} rate={}/s p99={p99:.2}ms errors={failed}",
                started.elapsed().as_secs_f64(),
                ok - last_ok
            );
            last_ok = ok;
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
    })
}

fn summary(kind: &str, stats: &Stats, elapsed: Duration, json: bool, latency_name: &str) {
    let ok = stats.ok.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let histogram = stats.latency_us.lock();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let summary = json!({
        "kind": kind,
        "messages": ok,
        "errors": failed,
        "elapsed_s": seconds,
        "msgs_per_s": ok as f64 / seconds,
        "mib_per_s": bytes as f64 / seconds / (1024.0 * 1024.0),
        latency_name: {
            "count": histogram.len(),
            "mean": histogram.mean() / 1000.0,
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "p999": ms(0.999),
            "max": histogram.max() as f64 / 1000.0,
        }
    });
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    if json {
        println!("{summary}");
    } else {
        println!(
            "{kind}: {ok} messages in {seconds:.1}s, {:.0} msg/s, {:.2} MiB/s, {failed} errors",
            ok as f64 / seconds,
            bytes as f64 / seconds / (1024.0 * 1024.0)
        );
        println!(
            "{} (ms): p50={:.3} p90={:.3} p99={:.3} p99.9={:.3} max={:.3} mean={:.3}",
            latency_name.trim_end_matches("_ms").replace('_', " "),
            ms(0.50),
            ms(0.90),
            ms(0.99),
            ms(0.999),
            histogram.max() as f64 / 1000.0,
            histogram.mean() / 1000.0
        );
    }
}

async fn bench_produce(options: ClientOptions, args: BenchProduce, json: bool) -> Result<()> {
    if args.concurrency == 0 || args.size == 0 || args.batch == 0 {
        bail!("--concurrency, --size and --batch must be > 0");
    }
    if let Some(endpoint) = args.grpc {
        if args.batch > 1 {
            bail!("gRPC sends are single sends (--batch 1)");
        }
        let load = grpc_bench::Load {
            endpoint,
            topic: args.topic,
            concurrency: args.concurrency,
            duration: Duration::from_secs(args.duration),
            count: args.count,
            json,
        };
        return grpc_bench::produce(load, args.size).await;
    }
    if (args.timer_spread_secs.is_some() || args.timer_due_at_ms.is_some()) && args.batch > 1 {
        bail!("timer messages take single sends (--batch 1)");
    }
    if args.transaction && args.batch > 1 {
        bail!("transactional messages take single sends (--batch 1)");
    }
    let due_at_ms = args.timer_due_at_ms;
    let spread_ms = args.timer_spread_secs.map(|s| {
        i64::try_from(s.saturating_mul(1000))
            .unwrap_or(i64::MAX)
            .max(1)
    });
    let mut producer_options = ProducerOptions::new("mq-bench-producer");
    // Bench what the broker does, not zlib.
    producer_options.compress_over_bytes = usize::MAX;
    // The checker only answers for sends whose commit was lost: each was meant to commit.
    let (producer, transactions) = if args.transaction {
        let checker = |_: &ReceivedMessage| TransactionState::Commit;
        let transactions = TransactionProducer::start(options, producer_options, checker)?;
        (transactions.producer().clone(), Some(transactions))
    } else {
        (Producer::start(options, producer_options)?, None)
    };
    let stats = Stats::new()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let budget = Arc::new(AtomicU64::new(args.count.unwrap_or(u64::MAX)));
    let progress = spawn_progress(Arc::clone(&stats), "sent", started);
    let body = bytes::Bytes::from(vec![b'x'; args.size]);
    let properties = args
        .properties
        .iter()
        .map(|property| key_value(property).map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Result<Vec<_>>>()?;
    let tag = args.tag.clone();
    let dressed = Arc::new(move |mut message: Message| {
        if let Some(tag) = &tag {
            message = message.with_tag(tag.clone());
        }
        for (key, value) in &properties {
            message = message.with_property(key, value);
        }
        message
    });
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let transactions = transactions.clone();
        let dressed = Arc::clone(&dressed);
        let (producer, stats, budget, body, topic) = (
            producer.clone(),
            Arc::clone(&stats),
            Arc::clone(&budget),
            body.clone(),
            args.topic.clone(),
        );
        let batch = args.batch as u64;
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let take = budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        left.checked_sub(batch.min(left)).filter(|_| left > 0)
                    })
                    .map_or(0, |left| batch.min(left));
                if take == 0 {
                    return;
                }
                let sent_at = Instant::now();
                let result = if take == 1 {
                    let mut message = dressed(Message::new(topic.clone(), body.clone()));
                    if let Some(spread) = spread_ms {
                        let within = rand::random::<u64>() % spread as u64;
                        message = message.with_deliver_time_ms(now_ms() + 1_000 + within as i64);
                    } else if let Some(due) = due_at_ms {
                        message = message.with_deliver_time_ms(due);
                    }
                    match &transactions {
                        Some(transactions) => transactions
                            .send_in_transaction(message, |_| async { TransactionState::Commit })
                            .await
                            .map(|sent| sent.send),
                        None => producer.send(message).await,
                    }
                } else {
                    let messages = (0..take)
                        .map(|_| dressed(Message::new(topic.clone(), body.clone())))
                        .collect();
                    producer.send_batch(messages).await
                };
                match result {
                    Ok(_) => stats.record(sent_at.elapsed(), take, take * body.len() as u64),
                    Err(_) => {
                        stats.failed.fetch_add(take, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    progress.abort();
    match &transactions {
        Some(transactions) => transactions.shutdown().await,
        None => producer.shutdown().await,
    }
    summary("produce", &stats, elapsed, json, "send_latency_ms");
    Ok(())
}

async fn bench_consume(options: ClientOptions, args: BenchConsume, json: bool) -> Result<()> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("mq-bench-consumer-{}", std::process::id()));
    if let Some(endpoint) = args.grpc {
        if args.concurrency == 0 {
            bail!("--concurrency must be > 0");
        }
        let load = grpc_bench::Load {
            endpoint,
            topic: args.topic,
            concurrency: args.concurrency,
            duration: Duration::from_secs(args.duration),
            count: args.count,
            json,
        };
        return grpc_bench::consume(load, group).await;
    }
    let mut consumer_options = subscribed(group, &args.topic, &args.expression, &args.sql);
    consumer_options.consume_from_where = match args.from {
        From::First => ConsumeFromWhere::ConsumeFromFirstOffset,
        From::Last => ConsumeFromWhere::ConsumeFromLastOffset,
    };
    consumer_options.consume_batch_max = 32;
    let stats = Stats::new()?;
    let done = Arc::new(tokio::sync::Notify::new());
    let limit = args.count.unwrap_or(u64::MAX);
    let (recorder, finished) = (Arc::clone(&stats), Arc::clone(&done));
    let started = Instant::now();
    let consumer = PushConsumer::start(
        options,
        consumer_options,
        move |messages: Vec<ReceivedMessage>| {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            for message in &messages {
                // End-to-end latency: producer clock to now (same host for meaningful numbers).
                let latency_ms = (now_ms - message.born_timestamp_ms).max(0) as u64;
                recorder.record(
                    Duration::from_millis(latency_ms),
                    1,
                    message.body.len() as u64,
                );
            }
            if recorder.ok.load(Ordering::Relaxed) >= limit {
                finished.notify_one();
            }
            futures::future::ready(ConsumeResult::Success)
        },
    )
    .await?;
    let progress = spawn_progress(Arc::clone(&stats), "consumed", started);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(args.duration)) => {}
        _ = done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let elapsed = started.elapsed();
    progress.abort();
    consumer.shutdown().await;
    summary("consume", &stats, elapsed, json, "end_to_end_latency_ms");
    Ok(())
}
