//! Malformed input closes only the offending connection.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::server::ServerConfig;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `bytes` on a fresh connection and waits until the server closes it.
async fn server_closes_after(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = bounded(TcpStream::connect(addr)).await.unwrap();
    bounded(stream.write_all(bytes)).await.unwrap();
    let mut sink = [0u8; 1024];
    // The server sends nothing back and closes; a reset counts as closed too.
    match bounded(stream.read(&mut sink)).await {
        Ok(0) | Err(_) => {}
        Ok(_) => panic!("the server answered a malformed frame"),
    }
}

fn frame(type_word: u32, header: &[u8], length_field: Option<u32>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let length = length_field.unwrap_or(4 + header.len() as u32);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&type_word.to_be_bytes());
    bytes.extend_from_slice(header);
    bytes
}

async fn assert_still_serving(client: &RemotingClient, addr: &str) {
    let response = bounded(client.invoke(addr, RemotingCommand::request(ECHO), CALL_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(response.code, response::SUCCESS);
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let config = ServerConfig {
        max_frame_length: 64 * 1024,
        ..ServerConfig::default()
    };
    let (server, mut probe) = start_server(config).await;
    let addr = server.local_addr();
    let client = RemotingClient::new(ClientConfig::default());
    assert_still_serving(&client, &addr.to_string()).await;
    let established = bounded(client.connection(&addr.to_string())).await.unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversize length", (64 * 1024u32 - 3).to_be_bytes().to_vec()),
        ("negative length", (-1i32).to_be_bytes().to_vec()),
        ("length shorter than the type word", vec![0, 0, 0, 2, 0, 0]),
        (
            "header length larger than the frame",
            frame(200, b"{}", None),
        ),
        ("invalid JSON header", frame(9, b"{\"code\":", None)),
        ("JSON header of the wrong shape", frame(5, b"[1,2]", None)),
        (
            "truncated binary header",
            frame((1 << 24) | 3, b"\x00\x69\x00", None),
        ),
        ("unknown serialize type", frame((7 << 24) | 2, b"{}", None)),
    ];
    // Kept open so the only connections that close are the malformed ones.
    let mut fresh_clients = Vec::new();
    for (case, bytes) in cases {
        server_closes_after(addr, &bytes).await;
        assert!(
            bounded(probe.closed.recv()).await.is_some(),
            "{case}: close reported"
        );
        // The established connection and new ones keep working.
        assert!(
            !established.is_closed(),
            "{case}: another connection was closed"
        );
        assert_still_serving(&client, &addr.to_string()).await;
        let fresh = RemotingClient::new(ClientConfig::default());
        assert_still_serving(&fresh, &addr.to_string()).await;
        fresh_clients.push(fresh);
    }
    assert_eq!(
        bounded(client.connection(&addr.to_string())).await.unwrap(),
        established
    );
}

#[tokio::test]
async fn a_malformed_frame_after_valid_ones_still_closes() {
    let (server, mut probe) = start_server(ServerConfig::default()).await;
    let mut bytes = remoting::frame::RemotingCodec::new()
        .encode_to_bytes(&RemotingCommand::request(RECORD).into_oneway())
        .unwrap()
        .to_vec();
    bytes.extend_from_slice(&frame(4, b"nope", None));
    server_closes_after(server.local_addr(), &bytes).await;
    assert!(
        bounded(probe.recorded.recv()).await.is_some(),
        "the valid frame was processed"
    );
    assert!(bounded(probe.closed.recv()).await.is_some());
}

/// Opens a connection that sends the first bytes of a frame announcing 8 MiB, then stalls.
async fn stalled_half_frame(addr: SocketAddr) -> TcpStream {
    let mut stream = bounded(TcpStream::connect(addr)).await.unwrap();
    let start = frame(64, &[b'{'; 512], Some(8 * 1024 * 1024));
    bounded(stream.write_all(&start)).await.unwrap();
    stream
}

/// Whether the server has closed `stream` (waits up to `wait`).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut sink = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut sink)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn stalled_half_frames_stay_within_the_servers_budget_and_others_are_served() {
    let config = ServerConfig {
        // Each stalled frame holds its read buffer plus the bounded reserve ahead (about
        // 260 KiB): three fit, the fourth would not.
        max_partial_frame_bytes: 900 * 1024,
        frame_read_timeout: None,
        ..ServerConfig::default()
    };
    let (server, _probe) = start_server(config).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(stalled_half_frame(addr).await);
    }
    let mut over = stalled_half_frame(addr).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(5)).await,
        "a half-frame past the budget was kept"
    );
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(200)).await,
            "a half-frame within the budget was closed"
        );
    }
    let client = RemotingClient::new(ClientConfig::default());
    assert_still_serving(&client, &addr.to_string()).await;
    // Closing the stalled ones gives their budget back.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = stalled_half_frame(addr).await;
    assert!(
        !closed_within(&mut again, Duration::from_millis(300)).await,
        "the budget was not given back"
    );
}

#[tokio::test]
async fn a_frame_that_does_not_arrive_whole_in_time_closes_its_connection() {
    let config = ServerConfig {
        frame_read_timeout: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    };
    let (server, _probe) = start_server(config).await;
    let addr = server.local_addr();
    let mut slow = stalled_half_frame(addr).await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "a stalled frame outlived the frame read timeout"
    );
    // An idle connection between frames is not a slow frame.
    let mut idle = bounded(TcpStream::connect(addr)).await.unwrap();
    assert!(!closed_within(&mut idle, Duration::from_millis(900)).await);
    let client = RemotingClient::new(ClientConfig::default());
    assert_still_serving(&client, &addr.to_string()).await;
}
