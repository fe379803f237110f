//! A RocketMQ client: producer, consumers and admin API.
