//! Handing a decoded request to the processor: each request in its own task, a panic
//! contained and answered, the response given the request's opaque.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::error;

use crate::code::response;
use crate::command::{RemotingCommand, FLAG_ONEWAY, FLAG_RESPONSE};

use super::handle::ConnectionHandle;
use super::processor::RequestProcessor;

/// Runs one request in its own task, so slow requests do not hold up the connection.
pub(super) fn spawn_request<P: RequestProcessor>(
    conn: ConnectionHandle,
    processor: Arc<P>,
    request: RemotingCommand,
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    tokio::spawn(async move {
        let oneway = request.is_oneway();
        let (code, opaque) = (request.code, request.opaque);
        // The call itself sits inside the guarded future, so a panic before the
        // processor's first await is caught too. Boxed: the processor's future is sized for
        // its largest handler (3 KiB), and the task's future is copied several times as it
        // is spawned.
        let outcome = AssertUnwindSafe(async { Box::pin(processor.process(&conn, request)).await })
            .catch_unwind()
            .await;
        let response = match outcome {
            Ok(response) => response,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                error!(conn = conn.id(), peer = %conn.remote_addr(), code, %message,
                    "request processor panicked");
                Some(RemotingCommand {
                    code: response::SYSTEM_ERROR,
                    remark: Some(format!("request processor panicked: {message}")),
                    ..RemotingCommand::default()
                })
            }
        };
        if let Some(mut response) = response.filter(|_| !oneway) {
            response.opaque = opaque;
            response.flag = (response.flag | FLAG_RESPONSE) & !FLAG_ONEWAY;
            conn.send_response(response).await;
        }
        // The permit is released only once the response is queued, so a graceful close
        // that waits for all permits also sees every response in the write queue.
        drop(permits);
    });
}

/// Runs a processor callback, containing a panic: `connection_opened` runs on the accept
/// loop, which must survive whatever a processor does.
pub(super) fn guard_callback(conn: &ConnectionHandle, name: &'static str, callback: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(callback)) {
        let message = panic_message(panic.as_ref());
        error!(conn = conn.id(), peer = %conn.remote_addr(), callback = name, %message,
            "processor callback panicked");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}
