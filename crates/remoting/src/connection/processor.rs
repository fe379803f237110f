//! `RequestProcessor`: what the broker, the name server and client-side handlers implement.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::command::RemotingCommand;

use super::handle::ConnectionHandle;

/// Handles the requests arriving on connections.
///
/// The server is generic over this trait and `process` returns `impl Future` rather than a
/// boxed future: the hot path (one call per request, >150k/s) then costs no allocation or
/// dynamic dispatch beyond what the implementation itself chooses. An implementation can
/// still route by request code to boxed per-code handlers if it likes. Implementations may
/// write `async fn process(&self, conn: &ConnectionHandle, request: RemotingCommand) ->
/// Option<RemotingCommand>` as long as the future is `Send`.
///
/// Each request runs in its own task, so a slow request (a long-polling pull held 15 s)
/// never blocks other requests on the same connection.
pub trait RequestProcessor: Send + Sync + 'static {
    /// Handles one request. Returns the response, or `None` to send nothing. The server
    /// sets the response's opaque and response flag itself (they must match the request),
    /// and sends nothing for one-way requests whatever this returns. A panic becomes a
    /// `SYSTEM_ERROR` response; the connection and the server carry on.
    fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> impl Future<Output = Option<RemotingCommand>> + Send;

    /// Called once when a connection is established, before its first request.
    fn connection_opened(&self, _conn: &ConnectionHandle) {}

    /// Called once when a connection has closed (peer gone, decode error, idle timeout,
    /// shutdown), e.g. to drop the client channels registered over it.
    fn connection_closed(&self, _conn: &ConnectionHandle) {}
}

/// The object-safe shape of a processor, so the client can hold a handler of any type
/// without being generic over it. Requests to clients are rare; boxing costs nothing there.
trait ErasedProcessor: Send + Sync + 'static {
    fn process_boxed<'a>(
        &'a self,
        conn: &'a ConnectionHandle,
        request: RemotingCommand,
    ) -> BoxFuture<'a, Option<RemotingCommand>>;
    fn opened(&self, conn: &ConnectionHandle);
    fn closed(&self, conn: &ConnectionHandle);
}

impl<P: RequestProcessor> ErasedProcessor for P {
    fn process_boxed<'a>(
        &'a self,
        conn: &'a ConnectionHandle,
        request: RemotingCommand,
    ) -> BoxFuture<'a, Option<RemotingCommand>> {
        Box::pin(self.process(conn, request))
    }

    fn opened(&self, conn: &ConnectionHandle) {
        self.connection_opened(conn);
    }

    fn closed(&self, conn: &ConnectionHandle) {
        self.connection_closed(conn);
    }
}

/// Any processor behind one concrete type.
#[derive(Clone)]
pub(crate) struct DynProcessor(Arc<dyn ErasedProcessor>);

impl DynProcessor {
    pub(crate) fn new<P: RequestProcessor>(processor: Arc<P>) -> Self {
        DynProcessor(processor)
    }
}

impl RequestProcessor for DynProcessor {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        self.0.process_boxed(conn, request).await
    }

    fn connection_opened(&self, conn: &ConnectionHandle) {
        self.0.opened(conn);
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        self.0.closed(conn);
    }
}

/// Answers every request like Java answers an unknown code: the handler of a client that
/// registered none.
pub(crate) struct RejectAll;

impl RequestProcessor for RejectAll {
    async fn process(
        &self,
        _conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        Some(RemotingCommand::not_supported_to(&request))
    }
}
