//! Durable local files of a broker.
//!
//! - [`segment`]: one fixed-size memory-mapped file and the rules for sharing its bytes.
//! - [`segment_queue`]: a contiguous run of segment files in one directory.
//! - [`error`]: the store's error type.

pub mod error;
pub mod segment;
pub mod segment_queue;

pub use error::{Result, StoreError};
