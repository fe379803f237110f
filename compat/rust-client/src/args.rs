//! The command line: `produce`, `consume` (push consumer), `pull` (lite pull consumer),
//! `transaction` (transaction producer), `request` and `reply` (request-reply).
//!
//! Parsed by hand: clap would add its build time to every cold CI run for a handful of flags.

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "\
usage:
  rust-client produce -n NAMESRV -t TOPIC -c COUNT [--tag T]... [--key K] [--prop k=v]...
                      [--body-bytes B] [--batch] [--no-compress] [--lookup]
                      [--delay-level L] [--group G] [--interval-ms MS] [--retries R]
  rust-client consume -n NAMESRV -t TOPIC -g GROUP [--expr EXPR | --sql EXPR] --expect N
                      --timeout-secs S [--linger-ms MS] [--orderly] [--reconsume-once]
  rust-client pull    -n NAMESRV -t TOPIC -g GROUP [--expr EXPR | --sql EXPR] --expect N
                      --timeout-secs S [--linger-ms MS]
  rust-client transaction -n NAMESRV -t TOPIC [--group G] [--timeout-secs S] [--linger-ms MS]
  rust-client request -n NAMESRV -t TOPIC -c COUNT [--group G] [--timeout-ms MS] [--callback]
  rust-client reply   -n NAMESRV -t TOPIC -g GROUP --expect N --timeout-secs S [--linger-ms MS]
                      [--reply-delay-ms MS]

produce: message SEQ (0-based) gets the body `TOPIC:SEQ:` padded with a-z to B bytes, the
tag number SEQ mod (number of --tag), the key `K-SEQ`, the user property seq=SEQ and every
--prop. One JSON line per acknowledged send (one for a --batch of all COUNT messages).
Bodies over 4 KiB are compressed (the client's default) unless --no-compress.
--delay-level L: RocketMQ's delay level L (1-based) on every message.
--interval-ms MS: a pause after every send, and a failed send prints `send_failed` (seq,
error) and the run goes on (for measuring what an application sees through a restart).
--retries R: the client's retryTimesWhenSendFailed (default 0: each message sent once).
--lookup: after the sends, each message is looked up by its message id, by its offset
message id and by its key (view/query through the producer's admin API).
consume/pull: one JSON line per message received; exits 0 once N distinct messages were
received (after lingering MS more milliseconds for late extras), 1 at the timeout.
--orderly: an orderly listener (queues locked on the broker) instead of a concurrent one.
--reconsume-once: the first delivery of each message is refused (reconsume later / suspend
the queue a moment), so it comes back; only accepted deliveries count towards N.
--expr: a tag expression (default *); --sql: a SQL92 expression (MessageSelector::by_sql).
transaction: a TransactionMQProducer sends 4 messages, bodies TOPIC:commit, TOPIC:rollback,
TOPIC:check-commit, TOPIC:check-rollback (tag TagTx, key tx-NAME); the local transaction
commits, rolls back, and leaves the check- ones unknown; the check listener answers commit
and rollback. Lines: `sent` per send, `checked` per check, `done` once both unknown ones
were checked (after lingering MS, default 1000), exit 1 at S (default 60).
request: DefaultMQProducer::request of COUNT messages with bodies TOPIC:SEQ, one at a time,
each waiting MS (default 30000) for its reply. Lines: `response` per reply, `request_failed`
per request without one, then `done`; exit 1 if any failed. --callback: request with a
callback (request_with_callback) instead, still one at a time.
reply: a push consumer in GROUP answering every message of TOPIC with a reply message
(MessageUtil::create_reply_message, body `reply:` + the request's body) sent by a producer
of group GROUP-replier. Lines: `started`, then `replied` per answered request; exit 0 once
N were answered (after lingering MS), 1 at S. --reply-delay-ms: wait MS before each answer
(the client's blocking request() misses a reply that comes back before it starts waiting).";

/// Most messages one run produces or expects (a bound on memory and run time).
pub const MAX_COUNT: usize = 100_000;
/// Largest body a run produces (the broker's limit is the real one; this bounds memory).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produce {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub count: usize,
    pub tags: Vec<String>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub body_bytes: Option<usize>,
    pub batch: bool,
    pub compress: bool,
    pub lookup: bool,
    pub delay_level: Option<i32>,
    /// Paced sends that go on past failures.
    pub interval_ms: Option<u64>,
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consume {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub expression: String,
    /// The expression is SQL92 (`--sql`), not a tag expression.
    pub sql: bool,
    pub expect: usize,
    pub timeout_secs: u64,
    pub linger_ms: u64,
    pub orderly: bool,
    pub reconsume_once: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub timeout_secs: u64,
    pub linger_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub count: usize,
    pub timeout_ms: u64,
    /// `request_with_callback` instead of the blocking `request`.
    pub callback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The push consumer answering (its expression is always `*`).
    pub consume: Consume,
    /// How long to wait before answering each request.
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Produce(Produce),
    /// A push consumer in a clustering consumer group.
    Consume(Consume),
    /// A lite pull consumer subscribed in a clustering consumer group.
    Pull(Consume),
    /// A transaction producer with a local transaction and check listener.
    Transaction(Transaction),
    /// A producer sending requests and waiting for their replies.
    Request(Request),
    /// A push consumer answering requests.
    Reply(Reply),
}

pub fn parse(args: &[String]) -> Result<Command> {
    let Some((command, rest)) = args.split_first() else {
        bail!("no command");
    };
    let flags = Flags::parse(rest)?;
    match command.as_str() {
        "produce" => {
            flags.only(&[
                "-n",
                "-t",
                "-c",
                "--tag",
                "--key",
                "--prop",
                "--body-bytes",
                "--batch",
                "--no-compress",
                "--lookup",
                "--delay-level",
                "--group",
                "--interval-ms",
                "--retries",
            ])?;
            let count = flags.number("-c")?.context("-c COUNT is required")?;
            if count == 0 || count > MAX_COUNT {
                bail!("-c must be 1..={MAX_COUNT}");
            }
            let body_bytes = flags.number("--body-bytes")?;
            if body_bytes.is_some_and(|b| b > MAX_BODY_BYTES) {
                bail!("--body-bytes must be at most {MAX_BODY_BYTES}");
            }
            let mut properties = Vec::new();
            for prop in flags.all("--prop") {
                let (key, value) = prop
                    .split_once('=')
                    .with_context(|| format!("--prop {prop}: expected k=v"))?;
                properties.push((key.to_string(), value.to_string()));
            }
            Ok(Command::Produce(Produce {
                namesrv: flags.required("-n")?,
                topic: flags.required("-t")?,
                group: flags
                    .one("--group")?
                    .unwrap_or_else(|| "rust_client_producer".to_string()),
                count,
                tags: flags.all("--tag"),
                key: flags.one("--key")?,
                properties,
                body_bytes,
                batch: flags.switch("--batch"),
                compress: !flags.switch("--no-compress"),
                lookup: flags.switch("--lookup"),
                delay_level: flags
                    .number("--delay-level")?
                    .map(|level| i32::try_from(level).context("--delay-level too large"))
                    .transpose()?,
                interval_ms: flags.number("--interval-ms")?.map(|ms| ms as u64),
                retries: flags
                    .number("--retries")?
                    .map(|r| u32::try_from(r).context("--retries too large"))
                    .transpose()?
                    .unwrap_or(0),
            }))
        }
        "consume" | "pull" => {
            flags.only(&[
                "-n",
                "-t",
                "-g",
                "--expr",
                "--sql",
                "--expect",
                "--timeout-secs",
                "--linger-ms",
                "--orderly",
                "--reconsume-once",
            ])?;
            let (expression, sql) = match (flags.one("--expr")?, flags.one("--sql")?) {
                (Some(_), Some(_)) => bail!("--expr and --sql exclude each other"),
                (_, Some(sql)) => (sql, true),
                (expr, None) => (expr.unwrap_or_else(|| "*".to_string()), false),
            };
            if command == "pull" && (flags.switch("--orderly") || flags.switch("--reconsume-once"))
            {
                bail!("--orderly and --reconsume-once are for consume");
            }
            let expect = flags
                .number("--expect")?
                .context("--expect N is required")?;
            if expect > MAX_COUNT {
                bail!("--expect must be at most {MAX_COUNT}");
            }
            let consume = Consume {
                namesrv: flags.required("-n")?,
                topic: flags.required("-t")?,
                group: flags.required("-g")?,
                expression,
                sql,
                expect,
                timeout_secs: flags
                    .number("--timeout-secs")?
                    .context("--timeout-secs S is required")? as u64,
                linger_ms: flags.number("--linger-ms")?.unwrap_or(0) as u64,
                orderly: flags.switch("--orderly"),
                reconsume_once: flags.switch("--reconsume-once"),
            };
            if command == "consume" {
                Ok(Command::Consume(consume))
            } else {
                Ok(Command::Pull(consume))
            }
        }
        "transaction" => {
            flags.only(&["-n", "-t", "--group", "--timeout-secs", "--linger-ms"])?;
            Ok(Command::Transaction(Transaction {
                namesrv: flags.required("-n")?,
                topic: flags.required("-t")?,
                group: flags
                    .one("--group")?
                    .unwrap_or_else(|| "rust_client_tx_producer".to_string()),
                timeout_secs: flags.number("--timeout-secs")?.unwrap_or(60) as u64,
                linger_ms: flags.number("--linger-ms")?.unwrap_or(1000) as u64,
            }))
        }
        "request" => {
            flags.only(&["-n", "-t", "-c", "--group", "--timeout-ms", "--callback"])?;
            let count = flags.number("-c")?.context("-c COUNT is required")?;
            if count == 0 || count > MAX_COUNT {
                bail!("-c must be 1..={MAX_COUNT}");
            }
            Ok(Command::Request(Request {
                namesrv: flags.required("-n")?,
                topic: flags.required("-t")?,
                group: flags
                    .one("--group")?
                    .unwrap_or_else(|| "rust_client_requester".to_string()),
                count,
                timeout_ms: flags.number("--timeout-ms")?.unwrap_or(30_000) as u64,
                callback: flags.switch("--callback"),
            }))
        }
        "reply" => {
            flags.only(&[
                "-n",
                "-t",
                "-g",
                "--expect",
                "--timeout-secs",
                "--linger-ms",
                "--reply-delay-ms",
            ])?;
            let expect = flags
                .number("--expect")?
                .context("--expect N is required")?;
            if expect > MAX_COUNT {
                bail!("--expect must be at most {MAX_COUNT}");
            }
            let consume = Consume {
                namesrv: flags.required("-n")?,
                topic: flags.required("-t")?,
                group: flags.required("-g")?,
                expression: "*".to_string(),
                sql: false,
                expect,
                timeout_secs: flags
                    .number("--timeout-secs")?
                    .context("--timeout-secs S is required")? as u64,
                linger_ms: flags.number("--linger-ms")?.unwrap_or(0) as u64,
                orderly: false,
                reconsume_once: false,
            };
            Ok(Command::Reply(Reply {
                consume,
                delay_ms: flags.number("--reply-delay-ms")?.unwrap_or(0) as u64,
            }))
        }
        other => bail!("unknown command {other:?}"),
    }
}

/// Flags in order as given; a flag without a value is a switch.
struct Flags {
    given: Vec<(String, Option<String>)>,
}

/// Flags that take no value.
const SWITCHES: [&str; 6] = [
    "--batch",
    "--callback",
    "--no-compress",
    "--lookup",
    "--orderly",
    "--reconsume-once",
];

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut given = Vec::new();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if !flag.starts_with('-') {
                bail!("unexpected argument {flag:?}");
            }
            if SWITCHES.contains(&flag.as_str()) {
                given.push((flag.clone(), None));
                continue;
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            given.push((flag.clone(), Some(value.clone())));
        }
        Ok(Flags { given })
    }

    fn only(&self, known: &[&str]) -> Result<()> {
        match self
            .given
            .iter()
            .find(|(f, _)| !known.contains(&f.as_str()))
        {
            Some((flag, _)) => bail!("unknown flag {flag}"),
            None => Ok(()),
        }
    }

    fn all(&self, flag: &str) -> Vec<String> {
        self.given
            .iter()
            .filter(|(f, _)| f == flag)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn one(&self, flag: &str) -> Result<Option<String>> {
        let mut values = self.all(flag);
        if values.len() > 1 {
            bail!("{flag} given more than once");
        }
        Ok(values.pop())
    }

    fn required(&self, flag: &str) -> Result<String> {
        self.one(flag)?
            .with_context(|| format!("{flag} is required"))
    }

    fn number(&self, flag: &str) -> Result<Option<usize>> {
        self.one(flag)?
            .map(|v| {
                v.parse()
                    .with_context(|| format!("{flag} {v}: not a number"))
            })
            .transpose()
    }

    fn switch(&self, flag: &str) -> bool {
        self.given.iter().any(|(f, _)| f == flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn produce_flags_repeat_and_switch() {
        let parsed = parse(&args(
            "produce -n ns:1 -t T -c 3 --tag A --tag B --prop a=b=c --batch",
        ))
        .unwrap();
        let Command::Produce(p) = parsed else {
            panic!("not produce: {parsed:?}");
        };
        assert_eq!(p.tags, ["A", "B"]);
        assert_eq!(p.properties, [("a".to_string(), "b=c".to_string())]);
        assert!(p.batch);
        assert!(p.compress);
        assert_eq!(p.count, 3);
    }

    #[test]
    fn rejects_unknown_missing_and_oversized() {
        assert!(parse(&args("produce -n ns -t T")).is_err());
        assert!(parse(&args("produce -n ns -t T -c 1 --expect 3")).is_err());
        assert!(parse(&args("consume -n ns -t T -g G --expect 1")).is_err());
        assert!(parse(&args("produce -n ns -t T -c 1 --body-bytes 999999999")).is_err());
        assert!(parse(&args("produce -n ns -t T -c 1 --key")).is_err());
        assert!(parse(&args("bogus")).is_err());
        assert!(parse(&args(
            "pull -n ns -t T -g G --expect 1 --timeout-secs 1 --orderly"
        ))
        .is_err());
        assert!(parse(&args(
            "consume -n ns -t T -g G --expect 1 --timeout-secs 1 --expr A --sql a=1"
        ))
        .is_err());
        assert!(parse(&args("request -n ns -t T -c 0")).is_err());
        assert!(parse(&args("reply -n ns -t T -g G --timeout-secs 1")).is_err());
    }

    #[test]
    fn sql_and_new_commands() {
        let parsed = parse(&args(
            "pull -n ns -t T -g G --sql seq>3 --expect 1 --timeout-secs 1",
        ))
        .unwrap();
        let Command::Pull(c) = parsed else {
            panic!("not pull: {parsed:?}");
        };
        assert!(c.sql);
        assert_eq!(c.expression, "seq>3");
        let Command::Transaction(t) = parse(&args("transaction -n ns -t T")).unwrap() else {
            panic!("not transaction");
        };
        assert_eq!((t.timeout_secs, t.linger_ms), (60, 1000));
        let Command::Request(r) = parse(&args("request -n ns -t T -c 2")).unwrap() else {
            panic!("not request");
        };
        assert_eq!((r.count, r.timeout_ms), (2, 30_000));
    }
}
