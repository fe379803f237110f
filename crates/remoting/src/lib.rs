//! The RocketMQ remoting protocol, as real RocketMQ clients and servers speak it.
