//! Delay levels: `messageDelayLevel` as milliseconds per level, and the level a message's
//! `DELAY` property asks for.

use remoting::message::properties::{self, keys};

/// The delay of each level, level 1 first. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayLevels {
    delays_ms: Vec<i64>,
}

impl DelayLevels {
    /// Parses a `messageDelayLevel` value ("1s 5s 10s ... 2h").
    pub fn parse(value: &str) -> Result<DelayLevels, String> {
        let delays_ms = store::dispatch::parse_delay_levels(value).map_err(|e| e.to_string())?;
        if delays_ms.is_empty() {
            return Err("messageDelayLevel lists no delay".into());
        }
        Ok(DelayLevels { delays_ms })
    }

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

    #[test]
    fn levels_clamp_to_the_last_and_none_below_one() {
        let levels = DelayLevels::parse("1s 5s 1m").unwrap();
        assert_eq!(levels.max_level(), 3);
        assert_eq!(levels.clamp(0), None);
        assert_eq!(levels.clamp(-4), None);
        assert_eq!(levels.clamp(2), Some(2));
        assert_eq!(levels.clamp(99), Some(3));
        assert_eq!(levels.delay_ms(1), 1_000);
        assert_eq!(levels.delay_ms(3), 60_000);
        assert_eq!(levels.delay_ms(99), 60_000);
        assert!(DelayLevels::parse("").is_err());
        assert!(DelayLevels::parse("1x").is_err());
    }

    #[test]
    fn the_requested_level_comes_from_delay() {
        let with = properties::encode([("TAGS", "a"), ("DELAY", "4")]);
        assert_eq!(requested_level(&with), 4);
        assert_eq!(requested_level(&properties::encode([("DELAY", "x")])), 0);
        assert_eq!(requested_level(""), 0);
    }
}
