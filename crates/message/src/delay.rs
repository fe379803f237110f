//! Delay levels: RocketMQ's `messageDelayLevel` ("1s 5s 10s 30s 1m ... 2h") as
//! milliseconds per level, and the level a message's `DELAY` property asks for.
//!
//! Parsed once, where a config file is read; everything after that holds [`DelayLevels`].

use std::fmt;
use std::str::FromStr;

use crate::properties::{self, keys};

/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_MESSAGE_DELAY_LEVEL: &str =
    "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Most levels a `messageDelayLevel` may list: each level is a queue of
/// `SCHEDULE_TOPIC_XXXX` that the schedule service reads every round.
pub const MAX_DELAY_LEVELS: usize = 64;

/// Why a `messageDelayLevel` value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayLevelsError {
    #[error("{0:?} is not a duration like 5s, 1m, 2h or 1d")]
    BadDuration(String),
    #[error("expected between 1 and {MAX_DELAY_LEVELS} delays like 1s 5s 1m 2h, found {0}")]
    BadCount(usize),
}

/// The delay of each level, level 1 first. Never empty, at most [`MAX_DELAY_LEVELS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayLevels {
    delays_ms: Vec<i64>,
}

impl Default for DelayLevels {
    fn default() -> DelayLevels {
        DEFAULT_MESSAGE_DELAY_LEVEL
            .parse()
            .expect("the default messageDelayLevel parses")
    }
}

impl FromStr for DelayLevels {
    type Err = DelayLevelsError;

    fn from_str(value: &str) -> Result<DelayLevels, DelayLevelsError> {
        let delays_ms = value
            .split_whitespace()
            .map(parse_duration_ms)
            .collect::<Result<Vec<i64>, _>>()?;
        if delays_ms.is_empty() || delays_ms.len() > MAX_DELAY_LEVELS {
            return Err(DelayLevelsError::BadCount(delays_ms.len()));
        }
        Ok(DelayLevels { delays_ms })
    }
}

/// One level's duration: a non-negative number and a unit of s, m, h or d.
fn parse_duration_ms(level: &str) -> Result<i64, DelayLevelsError> {
    let unit = level.chars().last().unwrap_or(' ');
    // Cut at the unit's own width: a unit of several bytes must not split a character.
    let number = &level[..level.len() - unit.len_utf8().min(level.len())];
    let unit_ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if unit_ms > 0 && n >= 0 => Ok(n.saturating_mul(unit_ms)),
        _ => Err(DelayLevelsError::BadDuration(level.to_owned())),
    }
}

/// Written back in the unit each level divides into exactly, largest first, so that
/// parsing the text gives the same levels.
impl fmt::Display for DelayLevels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &ms) in self.delays_ms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let (n, unit) = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m")]
                .into_iter()
                .find(|&(unit_ms, _)| ms != 0 && ms % unit_ms == 0)
                .map_or((ms / 1_000, "s"), |(unit_ms, unit)| (ms / unit_ms, unit));
            write!(f, "{n}{unit}")?;
        }
        Ok(())
    }
}

impl DelayLevels {
    /// The highest level (levels above it are clamped to it).
    pub fn max_level(&self) -> i32 {
        i32::try_from(self.delays_ms.len()).unwrap_or(i32::MAX)
    }

    /// The delay of `level` (1-based), clamped into the known levels.
    pub fn delay_ms(&self, level: i32) -> i64 {
        let index = usize::try_from(level.clamp(1, self.max_level()) - 1).unwrap_or(0);
        self.delays_ms.get(index).copied().unwrap_or(0)
    }

    /// The level a requested one becomes: `None` for none (zero or negative), the last
    /// level for anything above it (as RocketMQ clamps).
    pub fn clamp(&self, requested: i32) -> Option<i32> {
        (requested > 0).then(|| requested.min(self.max_level()))
    }

    /// The schedule queue of a level.
    pub fn queue_id(level: i32) -> i32 {
        level - 1
    }

    /// The level a schedule queue holds.
    pub fn level_of_queue(queue_id: i32) -> i32 {
        queue_id + 1
    }
}

/// The level a properties string's `DELAY` asks for; 0 when absent or not a number (a
/// malformed value means no delay rather than a refused send).
pub fn requested_level(properties: &str) -> i32 {
    properties::find(properties, keys::DELAY)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<DelayLevels, DelayLevelsError> {
        value.parse()
    }

    #[test]
    fn levels_clamp_to_the_last_and_none_below_one() {
        let levels = parse("1s 5s 1m").unwrap();
        assert_eq!(levels.max_level(), 3);
        assert_eq!(levels.clamp(0), None);
        assert_eq!(levels.clamp(-4), None);
        assert_eq!(levels.clamp(2), Some(2));
        assert_eq!(levels.clamp(99), Some(3));
        assert_eq!(levels.delay_ms(1), 1_000);
        assert_eq!(levels.delay_ms(3), 60_000);
        assert_eq!(levels.delay_ms(99), 60_000);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        assert_eq!(parse(""), Err(DelayLevelsError::BadCount(0)));
        assert_eq!(parse("1x"), Err(DelayLevelsError::BadDuration("1x".into())));
        assert_eq!(
            parse("-1s"),
            Err(DelayLevelsError::BadDuration("-1s".into()))
        );
        assert_eq!(parse("s"), Err(DelayLevelsError::BadDuration("s".into())));
        // A unit that is not one byte (found by fuzzing broker.conf: it panicked).
        assert_eq!(parse("1é"), Err(DelayLevelsError::BadDuration("1é".into())));
        assert_eq!(parse("秒"), Err(DelayLevelsError::BadDuration("秒".into())));
        let too_many = vec!["1s"; MAX_DELAY_LEVELS + 1].join(" ");
        assert_eq!(
            parse(&too_many),
            Err(DelayLevelsError::BadCount(MAX_DELAY_LEVELS + 1))
        );
    }

    #[test]
    fn the_default_is_rocketmqs_and_writes_back_as_read() {
        let levels = DelayLevels::default();
        assert_eq!(levels.max_level(), 18);
        assert_eq!(levels.delay_ms(18), 7_200_000);
        assert_eq!(levels.to_string(), DEFAULT_MESSAGE_DELAY_LEVEL);
        let odd = parse("0s 90s 120s 1d 25h").unwrap();
        assert_eq!(odd.to_string(), "0s 90s 2m 1d 25h");
        assert_eq!(parse(&odd.to_string()).unwrap(), odd);
    }

    #[test]
    fn the_requested_level_comes_from_delay() {
        let with = properties::encode([("TAGS", "a"), ("DELAY", "4")]);
        assert_eq!(requested_level(&with), 4);
        assert_eq!(requested_level(&properties::encode([("DELAY", "x")])), 0);
        assert_eq!(requested_level(""), 0);
    }
}
