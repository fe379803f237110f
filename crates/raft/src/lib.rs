//! Consensus for a broker group, in the style of DLedger but hardened.
//!
//! - [`entry`]: a log entry and its on-disk/on-wire framing (index, term, byte position,
//!   checksums). The CommitLog of a broker is a sequence of these frames, so the same bytes
//!   sit at the same offsets on every replica.

pub mod entry;
