//! The limits and timeouts of one connection, in one shape for both owners: the server and
//! the client each translate their own configuration into it.

use std::sync::Arc;
use std::time::Duration;

use super::decoder::PartialFrameBudget;
use crate::frame::RemotingCodec;

/// Limits and timeouts of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub(crate) codec: RemotingCodec,
    pub(crate) max_in_flight_requests: usize,
    pub(crate) write_queue_frames: usize,
    pub(crate) write_queue_bytes: usize,
    pub(crate) max_in_flight_request_bytes: usize,
    pub(crate) max_pending_invocations: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_stall_timeout: Duration,
    /// Shared by every connection of a server; `None` on a client's connections.
    pub(crate) partial_frame_budget: Option<Arc<PartialFrameBudget>>,
    /// A frame that began to arrive must be whole within this.
    pub(crate) frame_read_timeout: Option<Duration>,
}
