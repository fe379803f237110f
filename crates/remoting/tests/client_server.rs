//! Client ↔ server over 127.0.0.1: round trips, concurrency, one-way, callbacks,
//! failures and shutdown.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::{RemotingCommand, SerializeType};
use remoting::connection::{CallError, ConnectionHandle, RequestProcessor};
use remoting::server::{RemotingServer, ServerConfig};
use support::*;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

#[tokio::test]
async fn request_round_trip() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let request = RemotingCommand::request(ECHO)
        .with_ext_field("topic", "TopicTest")
        .with_remark("hi")
        .with_body(&b"payload"[..]);
    let opaque = request.opaque;
    let response = bounded(client.invoke(&addr, request, CALL_TIMEOUT))
        .await
        .unwrap();
    assert!(response.is_response());
    assert_eq!(response.code, response::SUCCESS);
    assert_eq!(response.opaque, opaque);
    assert_eq!(response.ext_field("topic"), Some("TopicTest"));
    assert_eq!(response.remark.as_deref(), Some("hi"));
    assert_eq!(&response.body[..], b"payload");
    assert_eq!(response.serialize_type, SerializeType::Json);
}

#[tokio::test]
async fn binary_requests_are_answered_in_json() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let request = RemotingCommand::request(ECHO)
        .with_ext_field("k", "v")
        .with_serialize_type(SerializeType::RocketMq);
    let response = bounded(client().invoke(&addr, request, CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SUCCESS);
    assert_eq!(response.ext_field("k"), Some("v"));
    assert_eq!(response.serialize_type, SerializeType::Json);
}

#[tokio::test]
async fn unknown_codes_get_not_supported() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let response = bounded(client().invoke(&addr, RemotingCommand::request(4242), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::REQUEST_CODE_NOT_SUPPORTED);
}

#[tokio::test]
async fn a_held_request_does_not_block_others_on_the_same_connection() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let conn = bounded(client.connection(&addr)).await.unwrap();

    let held = tokio::spawn({
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke(
                    &addr,
                    RemotingCommand::request(GATED),
                    Duration::from_secs(30),
                )
                .await
        }
    });
    bounded(probe.gated_started.recv()).await.unwrap();

    let fast = (0..200).map(|i| {
        let request = RemotingCommand::request(ECHO).with_body(format!("{i}"));
        client.invoke(&addr, request, CALL_TIMEOUT)
    });
    let responses = bounded(join_all(fast)).await;
    for (i, response) in responses.into_iter().enumerate() {
        assert_eq!(response.unwrap().body, format!("{i}").as_bytes());
    }
    assert!(
        !held.is_finished(),
        "the held request answered before its gate opened"
    );
    assert_eq!(conn.pending_invocations(), 1);

    probe.gate.send(true).unwrap();
    let held = bounded(held).await.unwrap().unwrap();
    assert_eq!(held.code, response::SUCCESS);
    // Everything went over the one connection.
    assert_eq!(bounded(client.connection(&addr)).await.unwrap(), conn);
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn many_requests_complete_with_a_tiny_in_flight_limit() {
    let config = ServerConfig {
        max_in_flight_requests_per_connection: 1,
        write_queue_frames_per_connection: 1,
        ..ServerConfig::default()
    };
    let (server, _probe) = start_server(config).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let calls = (0..300).map(|i| {
        client.invoke(
            &addr,
            RemotingCommand::request(ECHO).with_body(format!("{i}")),
            CALL_TIMEOUT,
        )
    });
    for (i, response) in bounded(join_all(calls)).await.into_iter().enumerate() {
        assert_eq!(response.unwrap().body, format!("{i}").as_bytes());
    }
}

#[tokio::test]
async fn oneway_requests_get_no_response() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let oneway = RemotingCommand::request(RECORD);
    let oneway_opaque = oneway.opaque;
    bounded(client.invoke_oneway(&addr, oneway, CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(bounded(probe.recorded.recv()).await, Some(oneway_opaque));
    // A later exchange on the same connection works; a stray response to the one-way
    // request would have no waiter and is visible nowhere, so check the raw stream too.
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();

    let raw = raw::Connection::open(server.local_addr()).await;
    let mut raw = raw;
    let oneway = RemotingCommand::request(RECORD).into_oneway();
    let oneway_opaque = oneway.opaque;
    raw.send(&oneway).await;
    assert_eq!(bounded(probe.recorded.recv()).await, Some(oneway_opaque));
    let silent = RemotingCommand::request(SILENT);
    raw.send(&silent).await;
    let echo = RemotingCommand::request(ECHO);
    raw.send(&echo).await;
    let first = raw.receive().await.expect("a response");
    assert_eq!(first.opaque, echo.opaque, "only the echo is answered");
}

#[tokio::test]
async fn server_calls_the_client_back_on_the_same_connection() {
    struct Answer;
    impl RequestProcessor for Answer {
        async fn process(
            &self,
            conn: &ConnectionHandle,
            request: RemotingCommand,
        ) -> Option<RemotingCommand> {
            assert_eq!(request.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
            Some(RemotingCommand::success_to(&request).with_remark(format!(
                "group {} seen on {}",
                request.ext_field("consumerGroup").unwrap_or("?"),
                conn.local_addr().ip()
            )))
        }
    }
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();

    let answering = RemotingClient::with_request_handler(ClientConfig::default(), Arc::new(Answer));
    let response =
        bounded(answering.invoke(&addr, RemotingCommand::request(CALL_BACK), CALL_TIMEOUT))
            .await
            .unwrap();
    assert_eq!(response.code, response::SUCCESS);
    assert_eq!(
        response.remark.as_deref(),
        Some("group g seen on 127.0.0.1")
    );

    // A client without a handler answers like Java does for an unknown code.
    let response =
        bounded(client().invoke(&addr, RemotingCommand::request(CALL_BACK), CALL_TIMEOUT))
            .await
            .unwrap();
    assert_eq!(response.code, response::REQUEST_CODE_NOT_SUPPORTED);
}

#[tokio::test]
async fn a_panicking_processor_yields_system_error_and_the_server_lives_on() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let response = bounded(client.invoke(&addr, RemotingCommand::request(PANIC), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SYSTEM_ERROR);
    assert!(response.remark.unwrap().contains("scripted panic"));
    let response = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SUCCESS);
}

#[tokio::test]
async fn a_body_sent_in_chunks_arrives_as_one_body() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    // Few small chunks (copied next to the header), many large ones (one buffer each),
    // and more chunks than one vectored write takes.
    for (chunks, chunk_size) in [(3usize, 10usize), (40, 1200), (1500, 64), (0, 0)] {
        let request = RemotingCommand::request(CHUNKED)
            .with_ext_field("chunks", chunks.to_string())
            .with_ext_field("chunk_size", chunk_size.to_string());
        let response = bounded(client.invoke(&addr, request, CALL_TIMEOUT))
            .await
            .unwrap();
        assert_eq!(response.code, response::SUCCESS);
        let expected: Vec<u8> = (0..chunks)
            .flat_map(|i| std::iter::repeat_n((i % 251) as u8, chunk_size))
            .collect();
        assert_eq!(response.body.len(), expected.len());
        assert!(
            response.body == expected,
            "{chunks} chunks of {chunk_size} bytes"
        );
    }
}

#[tokio::test]
async fn a_response_too_large_to_send_becomes_system_error() {
    let config = ServerConfig {
        max_frame_length: 4096,
        ..ServerConfig::default()
    };
    let (server, _probe) = start_server(config).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let fits = RemotingCommand::request(LARGE).with_ext_field("size", "1000");
    assert_eq!(
        bounded(client.invoke(&addr, fits, CALL_TIMEOUT))
            .await
            .unwrap()
            .body
            .len(),
        1000
    );
    let too_large = RemotingCommand::request(LARGE).with_ext_field("size", "5000");
    let response = bounded(client.invoke(&addr, too_large, CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SYSTEM_ERROR);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn a_slow_response_times_out_and_the_connection_stays_usable() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let error = bounded(client.invoke(
        &addr,
        RemotingCommand::request(GATED),
        Duration::from_millis(100),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(error, CallError::Timeout { timeout_ms: 100 }),
        "{error:?}"
    );
    let conn = bounded(client.connection(&addr)).await.unwrap();
    assert_eq!(
        conn.pending_invocations(),
        0,
        "a timed-out request leaves no waiter behind"
    );

    // The late response is dropped; the connection keeps serving.
    bounded(probe.gated_started.recv()).await.unwrap();
    probe.gate.send(true).unwrap();
    let response = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SUCCESS);
    assert_eq!(bounded(client.connection(&addr)).await.unwrap(), conn);
}

#[tokio::test]
async fn pending_requests_fail_fast_when_the_server_goes_away() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let held = tokio::spawn({
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke(
                    &addr,
                    RemotingCommand::request(GATED),
                    Duration::from_secs(600),
                )
                .await
        }
    });
    bounded(probe.gated_started.recv()).await.unwrap();
    drop(server);
    let error = bounded(held).await.unwrap().unwrap_err();
    assert!(matches!(error, CallError::ConnectionClosed), "{error:?}");
}

#[tokio::test]
async fn too_many_pending_requests_are_refused() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig {
        max_pending_requests_per_connection: 2,
        ..ClientConfig::default()
    });
    let held: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            let addr = addr.clone();
            tokio::spawn(async move {
                client
                    .invoke(&addr, RemotingCommand::request(GATED), CALL_TIMEOUT)
                    .await
            })
        })
        .collect();
    for _ in 0..2 {
        bounded(probe.gated_started.recv()).await.unwrap();
    }
    let error = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::TooManyPending { limit: 2 }),
        "{error:?}"
    );
    probe.gate.send(true).unwrap();
    for held in held {
        assert_eq!(
            bounded(held).await.unwrap().unwrap().code,
            response::SUCCESS
        );
    }
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let error = bounded(client().invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::ConnectFailed { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_client_reconnects_after_its_connection_closes() {
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_millis(100)),
        ..ServerConfig::default()
    };
    let (server, mut probe) = start_server(config).await;
    let addr = server.local_addr().to_string();
    let client = client();
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    let first = bounded(client.connection(&addr)).await.unwrap();
    // The server closes the idle connection; both sides notice.
    bounded(first.closed()).await;
    assert!(bounded(probe.closed.recv()).await.is_some());
    let response = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SUCCESS);
    let second = bounded(client.connection(&addr)).await.unwrap();
    assert_ne!(first, second);

    // An explicit close also leads to a fresh connection.
    client.close(&addr);
    assert!(second.is_closed());
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_ne!(bounded(client.connection(&addr)).await.unwrap(), second);
}

#[tokio::test]
async fn the_server_learns_when_a_connection_closes() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(server.connection_count(), 1);
    client.close(&addr);
    assert!(bounded(probe.closed.recv()).await.is_some());
    // The slot is released after the callback.
    bounded(async {
        while server.connection_count() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_lets_requests_in_flight_answer() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let held = tokio::spawn({
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke(
                    &addr,
                    RemotingCommand::request(GATED),
                    Duration::from_secs(30),
                )
                .await
        }
    });
    bounded(probe.gated_started.recv()).await.unwrap();
    let listen_addr = server.local_addr();
    let shutdown = tokio::spawn(server.shutdown(Duration::from_secs(30)));
    // Once the listener is gone the graceful phase has begun; only then release the
    // held request, which must still be answered.
    bounded(async {
        while tokio::net::TcpStream::connect(listen_addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    probe.gate.send(true).unwrap();
    assert_eq!(
        bounded(held).await.unwrap().unwrap().code,
        response::SUCCESS
    );
    bounded(shutdown).await.unwrap();
    // Nobody listens any more.
    let error = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::ConnectFailed { .. } | CallError::ConnectionClosed
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let held = tokio::spawn({
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke(
                    &addr,
                    RemotingCommand::request(GATED),
                    Duration::from_secs(600),
                )
                .await
        }
    });
    bounded(probe.gated_started.recv()).await.unwrap();
    bounded(server.shutdown(Duration::from_millis(100))).await;
    let error = bounded(held).await.unwrap().unwrap_err();
    assert!(matches!(error, CallError::ConnectionClosed), "{error:?}");
}

#[tokio::test]
async fn a_shut_down_client_refuses_calls() {
    let (server, _probe) = start_server(ServerConfig::default()).await;
    let addr = server.local_addr().to_string();
    let client = client();
    bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    let conn = bounded(client.connection(&addr)).await.unwrap();
    client.shutdown();
    bounded(conn.closed()).await;
    let error = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Shutdown), "{error:?}");
}

#[tokio::test]
async fn servers_can_be_bound_from_a_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (processor, _probe) = scripted();
    let server =
        RemotingServer::from_listener(listener, ServerConfig::default(), processor).unwrap();
    let addr = server.local_addr().to_string();
    bounded(client().invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
}

/// A bare framed socket, for sending what the client would not.
mod raw {
    use std::net::SocketAddr;

    use futures::{SinkExt, StreamExt};
    use remoting::command::RemotingCommand;
    use remoting::frame::RemotingCodec;
    use tokio::net::TcpStream;
    use tokio_util::codec::Framed;

    use super::support::bounded;

    pub struct Connection(Framed<TcpStream, RemotingCodec>);

    impl Connection {
        pub async fn open(addr: SocketAddr) -> Self {
            let stream = bounded(TcpStream::connect(addr)).await.unwrap();
            Connection(Framed::new(stream, RemotingCodec::new()))
        }

        pub async fn send(&mut self, command: &RemotingCommand) {
            bounded(self.0.send(command)).await.unwrap();
        }

        pub async fn receive(&mut self) -> Option<RemotingCommand> {
            bounded(self.0.next()).await.map(|frame| frame.unwrap())
        }
    }
}

#[tokio::test]
async fn byte_budgets_smaller_than_the_traffic_still_let_everything_through() {
    let config = ServerConfig {
        max_in_flight_bytes_per_connection: 4 * 1024,
        write_queue_bytes_per_connection: 4 * 1024,
        ..ServerConfig::default()
    };
    let (server, _probe) = start_server(config).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig {
        write_queue_bytes_per_connection: 4 * 1024,
        ..ClientConfig::default()
    });
    // Bodies from 1 KiB up to more than a whole budget, many at once.
    let calls = (0..64).map(|i| {
        let body = vec![b'a' + (i % 26) as u8; 1024 * (1 + i % 9)];
        let client = client.clone();
        let addr = addr.clone();
        async move {
            let response = client
                .invoke(
                    &addr,
                    RemotingCommand::request(ECHO).with_body(body.clone()),
                    CALL_TIMEOUT,
                )
                .await
                .unwrap();
            assert_eq!(response.body, body);
        }
    });
    bounded(join_all(calls)).await;
}

#[tokio::test]
async fn a_panicking_connection_callback_does_not_stop_the_server() {
    struct PanicOnConnect;
    impl RequestProcessor for PanicOnConnect {
        async fn process(
            &self,
            _conn: &ConnectionHandle,
            request: RemotingCommand,
        ) -> Option<RemotingCommand> {
            Some(RemotingCommand::success_to(&request))
        }
        fn connection_opened(&self, _conn: &ConnectionHandle) {
            panic!("scripted panic on connect");
        }
        fn connection_closed(&self, _conn: &ConnectionHandle) {
            panic!("scripted panic on close");
        }
    }
    let server = RemotingServer::bind(
        "127.0.0.1:0",
        ServerConfig::default(),
        Arc::new(PanicOnConnect),
    )
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    for _ in 0..3 {
        let client = client();
        let response = bounded(client.invoke(&addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
            .await
            .unwrap();
        assert_eq!(response.code, response::SUCCESS);
        client.shutdown();
    }
}

#[tokio::test]
async fn a_request_in_flight_keeps_a_quiet_connection_open() {
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_millis(50)),
        ..ServerConfig::default()
    };
    let (server, mut probe) = start_server(config).await;
    let addr = server.local_addr().to_string();
    let client = client();
    let held = tokio::spawn({
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke(
                    &addr,
                    RemotingCommand::request(GATED),
                    Duration::from_secs(30),
                )
                .await
        }
    });
    bounded(probe.gated_started.recv()).await.unwrap();
    // Several idle periods pass without a frame while the request is held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    probe.gate.send(true).unwrap();
    assert_eq!(
        bounded(held).await.unwrap().unwrap().code,
        response::SUCCESS
    );
}
