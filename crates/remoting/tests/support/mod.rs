//! A scripted processor and helpers shared by the transport tests.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::server::{RemotingServer, ServerConfig};
use tokio::sync::{mpsc, watch};

/// Echoes body, ext fields and remark.
pub const ECHO: i32 = 1000;
/// Waits until the test opens the gate, then answers SUCCESS.
pub const GATED: i32 = 1001;
/// Reports its opaque to the test and answers SUCCESS (must be suppressed when one-way).
pub const RECORD: i32 = 1002;
/// Panics.
pub const PANIC: i32 = 1003;
/// Calls the client back with NOTIFY_CONSUMER_IDS_CHANGED and answers with the client's
/// response code and remark.
pub const CALL_BACK: i32 = 1004;
/// Answers nothing.
pub const SILENT: i32 = 1005;
/// Answers with a body of `size` bytes (ext field).
pub const LARGE: i32 = 1006;
/// Answers with `chunks` body chunks (ext field), chunk `i` holding `chunk_size` bytes of
/// value `i % 251`.
pub const CHUNKED: i32 = 1007;

/// Bounds every wait in the tests.
pub const TEST_WAIT: Duration = Duration::from_secs(10);

pub struct Scripted {
    gate: watch::Receiver<bool>,
    gated_started: mpsc::UnboundedSender<i32>,
    recorded: mpsc::UnboundedSender<i32>,
    closed: mpsc::UnboundedSender<u64>,
}

/// What a test observes of the scripted processor, and its gate.
pub struct Probe {
    pub gate: watch::Sender<bool>,
    pub gated_started: mpsc::UnboundedReceiver<i32>,
    pub recorded: mpsc::UnboundedReceiver<i32>,
    pub closed: mpsc::UnboundedReceiver<u64>,
}

pub fn scripted() -> (Arc<Scripted>, Probe) {
    let (gate_tx, gate_rx) = watch::channel(false);
    let (gated_tx, gated_rx) = mpsc::unbounded_channel();
    let (recorded_tx, recorded_rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = mpsc::unbounded_channel();
    (
        Arc::new(Scripted {
            gate: gate_rx,
            gated_started: gated_tx,
            recorded: recorded_tx,
            closed: closed_tx,
        }),
        Probe {
            gate: gate_tx,
            gated_started: gated_rx,
            recorded: recorded_rx,
            closed: closed_rx,
        },
    )
}

impl RequestProcessor for Scripted {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        match request.code {
            ECHO => {
                let mut response =
                    RemotingCommand::success_to(&request).with_body(request.body.clone());
                response.ext_fields = request.ext_fields.clone();
                response.remark = request.remark.clone();
                Some(response)
            }
            GATED => {
                let _ = self.gated_started.send(request.opaque);
                let mut gate = self.gate.clone();
                let _ = gate.wait_for(|open| *open).await;
                Some(RemotingCommand::success_to(&request))
            }
            RECORD => {
                let _ = self.recorded.send(request.opaque);
                Some(RemotingCommand::success_to(&request))
            }
            PANIC => panic!("scripted panic"),
            CALL_BACK => {
                let callback =
                    RemotingCommand::request(remoting::code::request::NOTIFY_CONSUMER_IDS_CHANGED)
                        .with_ext_field("consumerGroup", "g");
                match conn.invoke(callback, Duration::from_secs(5)).await {
                    Ok(answer) => Some(
                        RemotingCommand::response_to(&request, answer.code)
                            .with_remark(answer.remark.unwrap_or_default()),
                    ),
                    Err(error) => Some(RemotingCommand::error_to(
                        &request,
                        response::SYSTEM_ERROR,
                        error.to_string(),
                    )),
                }
            }
            SILENT => None,
            LARGE => {
                let size: usize = request
                    .ext_field("size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                Some(RemotingCommand::success_to(&request).with_body(vec![b'x'; size]))
            }
            CHUNKED => {
                let number = |key: &str| -> usize {
                    request
                        .ext_field(key)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0)
                };
                let chunks = (0..number("chunks"))
                    .map(|i| bytes::Bytes::from(vec![(i % 251) as u8; number("chunk_size")]))
                    .collect();
                Some(RemotingCommand::success_to(&request).with_body_chunks(chunks))
            }
            _ => Some(RemotingCommand::not_supported_to(&request)),
        }
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        let _ = self.closed.send(conn.id());
    }
}

pub async fn start_server(config: ServerConfig) -> (RemotingServer, Probe) {
    let (processor, probe) = scripted();
    let server = RemotingServer::bind("127.0.0.1:0", config, processor)
        .await
        .unwrap();
    (server, probe)
}

/// Awaits `future`, failing the test if it takes longer than [`TEST_WAIT`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_WAIT, future)
        .await
        .expect("test wait bounded")
}
