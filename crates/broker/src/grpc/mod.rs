//! RocketMQ 5's gRPC protocol (`apache.rocketmq.v2.MessagingService`) served by the broker
//! itself, so 5.x clients need no separate proxy. HTTP/2 on `grpcServerPort`, in plaintext
//! or TLS as each client starts ([`tls`]).
//!
//! - [`service`]: the service, routing each call to its room.
//! - [`authorize`]: ACL 1.0 and ACL 2.0 checks of each call.
//! - [`route`]: QueryRoute, QueryAssignment.
//! - [`clients`]: Telemetry settings, heartbeats and terminations of 5.x clients.
//! - [`produce`]: SendMessage, EndTransaction and RecallMessage over the remoting paths.
//! - [`transaction_id`]: the transaction ids 5.x producers get, naming the half message.
//! - [`producers`]: the producers' Telemetry streams, where transaction checks go.
//! - [`consume`]: ReceiveMessage, AckMessage, ChangeInvisibleDuration and dead-lettering,
//!   over the POP engine.
//! - [`lite`]: SyncLiteSubscription (a lite consumer's lite topics).
//! - [`pull`]: PullMessage (a 5.x pull consumer's reads of one queue).
//! - [`offsets`]: UpdateOffset, GetOffset, QueryOffset (a 5.x pull consumer's offsets).
//! - [`relay`]: on a group's follower, what only the master does, handed to it.
//! - [`convert`]: messages between the gRPC and the stored form.
//! - [`status`]: the v2 status codes, and remoting codes translated to them.
//! - [`tls`]: TLS beside plaintext on the port, and its certificate.

pub mod authorize;
pub mod clients;
pub mod consume;
pub mod convert;
pub mod lite;
pub mod offsets;
pub mod produce;
pub mod producers;
pub mod pull;
pub mod relay;
pub mod route;
pub mod service;
pub mod status;
pub mod tls;
pub mod transaction_id;

use std::sync::Arc;

use grpc::v2::messaging_service_server::MessagingServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::context::BrokerContext;

/// Largest gRPC message accepted: a send of a few messages of the largest size.
fn max_decoding_bytes(ctx: &BrokerContext) -> usize {
    (ctx.config.max_message_size as usize)
        .saturating_mul(4)
        .max(16 * 1024 * 1024)
}

/// Serves gRPC on `listener` until the broker shuts down.
pub fn serve(ctx: Arc<BrokerContext>, listener: TcpListener) -> JoinHandle<()> {
    let relay = Arc::new(relay::MasterRelay::new(
        Arc::clone(&ctx.grpc_producers),
        ctx.config.inner_client_config(),
    ));
    tokio::spawn({
        let (ctx, relay) = (Arc::clone(&ctx), Arc::clone(&relay));
        async move { relay.keep_producers_registered(&ctx).await }
    });
    let service = MessagingServiceServer::new(service::GrpcService::new(Arc::clone(&ctx), relay))
        .max_decoding_message_size(max_decoding_bytes(&ctx));
    let local = listener.local_addr().ok();
    let (cert_path, key_path) = ctx.config.tls_files();
    let tls = match tls::acceptor(ctx.config.tls_test_mode_enable, &cert_path, &key_path) {
        Ok(acceptor) => Some(acceptor),
        Err(e) => {
            warn!(error = %e, "no TLS on the gRPC port: clients must turn TLS off");
            None
        }
    };
    tokio::spawn(async move {
        info!(addr = ?local, tls = tls.is_some(), "gRPC server listening (RocketMQ 5 clients)");
        let mut connections = tls::incoming(listener, tls);
        let incoming = futures::stream::poll_fn(move |cx| connections.poll_recv(cx));
        let shutdown = ctx.shutdown.clone();
        let served = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(256)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            error!(error = %e, "gRPC server stopped");
        }
    })
}
