//! RocketMQ 5's gRPC protocol, `apache.rocketmq.v2` (the interface of apache/rocketmq-apis,
//! written out in `proto/`): the messages, and the `MessagingService` server trait and
//! client generated from them. What the broker does with each call lives in the broker.

#![allow(clippy::all, clippy::pedantic)]

pub mod v2 {
    tonic::include_proto!("apache.rocketmq.v2");
}
