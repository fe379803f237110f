//! The limits of a listening port, under the keys `broker.conf` and `namesrv.conf` share
//! (RocketMQ's `serverChannelMaxIdleTimeSeconds`, and this project's connection limits).

use std::time::Duration;

use crate::{BadSetting, Setting};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `serverMaxConnections`: connections beyond this are closed right after accept, with
    /// a logged reason.
    pub max_connections: usize,
    /// `serverPartialFrameBudgetBytes`: what all connections of the port together may hold
    /// for frames still arriving; a connection that would go past it is closed.
    pub partial_frame_budget_bytes: usize,
    /// `serverFrameReadTimeoutMs`: a frame that began to arrive must be whole within this.
    pub frame_read_timeout: Duration,
    /// `serverChannelMaxIdleTimeSeconds`: a connection silent this long is closed.
    pub channel_max_idle: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            partial_frame_budget_bytes: 256 * 1024 * 1024,
            frame_read_timeout: Duration::from_secs(30),
            channel_max_idle: Duration::from_secs(120),
        }
    }
}

impl ServerLimits {
    /// Applies `s` when it is one of these keys; `Ok(false)` when it is not.
    pub fn apply(&mut self, s: &Setting) -> Result<bool, BadSetting> {
        match s.key.as_str() {
            "serverMaxConnections" => self.max_connections = s.in_range(1, 1_000_000)? as usize,
            "serverPartialFrameBudgetBytes" => {
                self.partial_frame_budget_bytes =
                    s.in_range(1024 * 1024, 64 * 1024 * 1024 * 1024)? as usize
            }
            "serverFrameReadTimeoutMs" => {
                self.frame_read_timeout = Duration::from_millis(s.in_range(100, 3_600_000)?)
            }
            "serverChannelMaxIdleTimeSeconds" => {
                self.channel_max_idle = Duration::from_secs(s.in_range(1, 86_400)?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> Result<ServerLimits, BadSetting> {
        let mut limits = ServerLimits::default();
        for setting in crate::parse(text) {
            assert!(limits.apply(&setting)?, "{} not taken", setting.key);
        }
        Ok(limits)
    }

    #[test]
    fn keys_defaults_and_bad_values() {
        assert_eq!(ServerLimits::default().max_connections, 10_000);
        let limits = apply(
            "serverMaxConnections=50\nserverPartialFrameBudgetBytes=2097152\n\
             serverFrameReadTimeoutMs=500\nserverChannelMaxIdleTimeSeconds=9\n",
        )
        .unwrap();
        assert_eq!(limits.max_connections, 50);
        assert_eq!(limits.partial_frame_budget_bytes, 2 << 20);
        assert_eq!(limits.frame_read_timeout, Duration::from_millis(500));
        assert_eq!(limits.channel_max_idle, Duration::from_secs(9));
        for text in ["serverMaxConnections=0", "serverPartialFrameBudgetBytes=10"] {
            assert!(apply(text).is_err(), "{text}");
        }
        let mut limits = ServerLimits::default();
        assert!(!limits.apply(&crate::parse("listenPort=1")[0]).unwrap());
    }
}
