//! Why a call over a connection failed. The connection and the client that opens
//! connections share one error type, so a caller of either matches the same variants.

use std::io;
use std::time::Duration;

use crate::frame::EncodeError;

/// Why a call to a peer failed. Named for the call, not for the client: a broker calling
/// a client back over an accepted connection gets the same error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connecting to {addr} failed: {source}")]
    ConnectFailed {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("connecting to {addr} timed out after {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u64 },
    #[error("no response within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("connection closed")]
    ConnectionClosed,
    #[error("too many requests awaiting a response on this connection (limit {limit})")]
    TooManyPending { limit: usize },
    #[error("request cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
    #[error("client is shut down")]
    Shutdown,
}

impl CallError {
    /// Whether the peer may have received the request, and so may have acted on it: a
    /// caller must not send again what cannot safely run twice (a send would be stored
    /// twice). Only a call that never got a connection, or was refused before it was
    /// queued, certainly did not arrive.
    pub fn may_have_arrived(&self) -> bool {
        match self {
            CallError::Timeout { .. } | CallError::ConnectionClosed => true,
            CallError::ConnectFailed { .. }
            | CallError::ConnectTimeout { .. }
            | CallError::TooManyPending { .. }
            | CallError::Encode(_)
            | CallError::Shutdown => false,
        }
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
