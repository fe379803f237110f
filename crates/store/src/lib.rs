//! Durable local files of a broker.
