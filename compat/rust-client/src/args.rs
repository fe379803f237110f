//! The command line: `produce`, `consume` (push consumer) and `pull` (lite pull consumer).
//!
//! Parsed by hand: clap would add its build time to every cold CI run for a handful of flags.

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "\
usage:
  rust-client produce -n NAMESRV -t TOPIC -c COUNT [--tag T]... [--key K] [--prop k=v]...
                      [--body-bytes B] [--batch] [--no-compress] [--lookup]
                      [--delay-level L] [--group G]
  rust-client consume -n NAMESRV -t TOPIC -g GROUP [--expr EXPR] --expect N --timeout-secs S
                      [--linger-ms MS] [--orderly] [--reconsume-once]
  rust-client pull    -n NAMESRV -t TOPIC -g GROUP [--expr EXPR] --expect N --timeout-secs S
                      [--linger-ms MS]

produce: message SEQ (0-based) gets the body `TOPIC:SEQ:` padded with a-z to B bytes, the
tag number SEQ mod (number of --tag), the key `K-SEQ`, the user property seq=SEQ and every
--prop. One JSON line per acknowledged send (one for a --batch of all COUNT messages).
Bodies over 4 KiB are compressed (the client's default) unless --no-compress.
--delay-level L: RocketMQ's delay level L (1-based) on every message.
--lookup: after the sends, each message is looked up by its message id, by its offset
message id and by its key (view/query through the producer's admin API).
consume/pull: one JSON line per message received; exits 0 once N distinct messages were
received (after lingering MS more milliseconds for late extras), 1 at the timeout.
--orderly: an orderly listener (queues locked on the broker) instead of a concurrent one.
--reconsume-once: the first delivery of each message is refused (reconsume later / suspend
the queue a moment), so it comes back; only accepted deliveries count towards N.";

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consume {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub expression: String,
    pub expect: usize,
    pub timeout_secs: u64,
    pub linger_ms: u64,
    pub orderly: bool,
    pub reconsume_once: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Produce(Produce),
    /// A push consumer in a clustering consumer group.
    Consume(Consume),
    /// A lite pull consumer subscribed in a clustering consumer group.
    Pull(Consume),
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
            }))
        }
        "consume" | "pull" => {
            flags.only(&[
                "-n",
                "-t",
                "-g",
                "--expr",
                "--expect",
                "--timeout-secs",
                "--linger-ms",
                "--orderly",
                "--reconsume-once",
            ])?;
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
                expression: flags.one("--expr")?.unwrap_or_else(|| "*".to_string()),
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
        other => bail!("unknown command {other:?}"),
    }
}

/// Flags in order as given; a flag without a value is a switch.
struct Flags {
    given: Vec<(String, Option<String>)>,
}

/// Flags that take no value.
const SWITCHES: [&str; 5] = [
    "--batch",
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
    }
}
