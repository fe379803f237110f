//! The scrape endpoint: `GET /metrics` (and `/`, as RocketMQ's exporter answers on any
//! path) on `metricsPromExporterHost:metricsPromExporterPort`, answered in the Prometheus
//! text format.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
pub use futures::future::BoxFuture;
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a server shows on each scrape.
pub trait Scrape: Send + Sync + 'static {
    /// The scrape's text (see [`crate::encode`]).
    fn scrape(&self) -> BoxFuture<'_, Result<String, std::fmt::Error>>;
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for Prometheus scrapes on {addr} (metricsPromExporterHost/Port)")]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// Binds the endpoint's port: `metricsPromExporterHost` or, when empty, `default_host` (the
/// server's own address, as RocketMQ uses `brokerIP1`).
pub async fn bind(
    exporter: &conf::MetricsExporter,
    default_host: &str,
) -> Result<TcpListener, BindError> {
    let host = if exporter.prom_host.is_empty() {
        default_host
    } else {
        exporter.prom_host.as_str()
    };
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", exporter.prom_port)
    } else {
        format!("{host}:{}", exporter.prom_port)
    };
    TcpListener::bind(&addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves scrapes on `listener` until `shutdown`.
pub fn serve(
    listener: TcpListener,
    source: Arc<dyn Scrape>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/", get(scrape))
        .with_state(source);
    tokio::spawn(async move {
        tracing::info!(?addr, "serving Prometheus metrics");
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Prometheus endpoint stopped");
        }
    })
}

async fn scrape(State(source): State<Arc<dyn Scrape>>) -> Response {
    match source.scrape().await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded",
        )
            .into_response(),
    }
}
