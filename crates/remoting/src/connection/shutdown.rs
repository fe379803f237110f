//! How the owner of connections (a server or a client) stops them: one small type handed
//! to every connection, so stopping needs no list of connections.

use tokio_util::sync::CancellationToken;

/// How an owner (server or client) stops its connections. Cancelling `abort` also
/// cancels `graceful` (it is its child).
#[derive(Debug, Clone)]
pub(crate) struct StopSignals {
    /// Stop reading, let requests in flight answer, then close.
    pub(crate) graceful: CancellationToken,
    /// Close now.
    pub(crate) abort: CancellationToken,
}

impl StopSignals {
    pub(crate) fn new() -> Self {
        let abort = CancellationToken::new();
        StopSignals {
            graceful: abort.child_token(),
            abort,
        }
    }
}
