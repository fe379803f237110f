//! The broker settings an operator can change while the broker runs
//! (UPDATE_BROKER_CONFIG, `mqadmin updateBrokerConfig`), read by processors on every
//! request. Every other key is fixed at start-up: changing it means editing broker.conf
//! and restarting, and the update says so instead of pretending.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use conf::{BadSetting, Setting};
use remoting::body::perm;

use crate::config::BrokerConfig;

/// Keys RocketMQ never lets a remote update touch (its `configBlackList` default).
pub const BLACK_LIST: &[&str] = &["configBlackList", "brokerConfigPath"];

/// Keys that take effect at once when updated.
pub const LIVE_KEYS: &[&str] = &[
    "brokerPermission",
    "autoCreateSubscriptionGroup",
    "longPollingEnable",
    "maxMessageSize",
    "timerStopDequeue",
];

#[derive(Debug)]
pub struct LiveConfig {
    broker_permission: AtomicU32,
    auto_create_subscription_group: AtomicBool,
    long_polling_enable: AtomicBool,
    max_message_size: AtomicU32,
    timer_stop_dequeue: AtomicBool,
    /// The store's record limits were sized for this body size when it opened.
    max_message_size_at_start: u32,
}

/// Why an update was refused (nothing of it applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("Can not update config in black list.")]
    BlackListed,
    #[error(transparent)]
    Bad(#[from] BadSetting),
    #[error("{0} takes effect only at start-up: change it in broker.conf and restart")]
    StartUpOnly(String),
    #[error(
        "maxMessageSize above {0} (its value at start-up) takes a restart: the store sized its \
         records for it"
    )]
    AboveStartUpSize(u32),
}

impl LiveConfig {
    pub fn new(config: &BrokerConfig) -> LiveConfig {
        LiveConfig {
            broker_permission: AtomicU32::new(config.broker_permission),
            auto_create_subscription_group: AtomicBool::new(config.auto_create_subscription_group),
            long_polling_enable: AtomicBool::new(config.long_polling_enable),
            max_message_size: AtomicU32::new(config.max_message_size),
            timer_stop_dequeue: AtomicBool::new(config.timer_stop_dequeue),
            max_message_size_at_start: config.max_message_size,
        }
    }

    pub fn broker_permission(&self) -> u32 {
        self.broker_permission.load(Ordering::Relaxed)
    }

    pub fn is_writeable(&self) -> bool {
        perm::is_writeable(self.broker_permission() as i32)
    }

    pub fn is_readable(&self) -> bool {
        perm::is_readable(self.broker_permission() as i32)
    }

    pub fn auto_create_subscription_group(&self) -> bool {
        self.auto_create_subscription_group.load(Ordering::Relaxed)
    }

    pub fn long_polling_enable(&self) -> bool {
        self.long_polling_enable.load(Ordering::Relaxed)
    }

    pub fn max_message_size(&self) -> u32 {
        self.max_message_size.load(Ordering::Relaxed)
    }

    pub fn timer_stop_dequeue(&self) -> bool {
        self.timer_stop_dequeue.load(Ordering::Relaxed)
    }

    /// Applies `settings` all or nothing, each checked as broker.conf would check it
    /// (`base` is the start-up config the values are validated against). Unknown keys are
    /// ignored, as RocketMQ ignores them. Returns the keys applied.
    pub fn update(
        &self,
        base: &BrokerConfig,
        settings: &[Setting],
    ) -> Result<Vec<String>, UpdateError> {
        let mut checked = base.clone();
        let mut applied = Vec::new();
        for setting in settings {
            if BLACK_LIST.contains(&setting.key.as_str()) {
                return Err(UpdateError::BlackListed);
            }
            if !checked.apply(setting)? {
                continue;
            }
            if !LIVE_KEYS.contains(&setting.key.as_str()) {
                return Err(UpdateError::StartUpOnly(setting.key.clone()));
            }
            applied.push(setting.key.clone());
        }
        if checked.max_message_size > self.max_message_size_at_start {
            return Err(UpdateError::AboveStartUpSize(
                self.max_message_size_at_start,
            ));
        }
        for key in &applied {
            match key.as_str() {
                "brokerPermission" => self
                    .broker_permission
                    .store(checked.broker_permission, Ordering::Relaxed),
                "autoCreateSubscriptionGroup" => self
                    .auto_create_subscription_group
                    .store(checked.auto_create_subscription_group, Ordering::Relaxed),
                "longPollingEnable" => self
                    .long_polling_enable
                    .store(checked.long_polling_enable, Ordering::Relaxed),
                "maxMessageSize" => self
                    .max_message_size
                    .store(checked.max_message_size, Ordering::Relaxed),
                "timerStopDequeue" => self
                    .timer_stop_dequeue
                    .store(checked.timer_stop_dequeue, Ordering::Relaxed),
                _ => {}
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_checked_and_all_or_nothing() {
        let base = BrokerConfig::default();
        let live = LiveConfig::new(&base);
        let applied = live
            .update(&base, &conf::parse("brokerPermission=4\nnoSuchKey=1\n"))
            .unwrap();
        assert_eq!(applied, ["brokerPermission"]);
        assert!(!live.is_writeable() && live.is_readable());

        let refused = live.update(
            &base,
            &conf::parse("longPollingEnable=false\nlistenPort=1\n"),
        );
        assert_eq!(refused, Err(UpdateError::StartUpOnly("listenPort".into())));
        assert!(
            live.long_polling_enable(),
            "nothing of a refused update applies"
        );
        assert!(live
            .update(&base, &conf::parse("brokerPermission=99\n"))
            .is_err());
        assert_eq!(
            live.update(&base, &conf::parse("configBlackList=x\n")),
            Err(UpdateError::BlackListed)
        );
        assert!(live
            .update(&base, &conf::parse("maxMessageSize=1024\n"))
            .is_ok());
        assert_eq!(live.max_message_size(), 1024);
        assert!(matches!(
            live.update(&base, &conf::parse("maxMessageSize=5000000\n")),
            Err(UpdateError::AboveStartUpSize(_))
        ));
    }
}
