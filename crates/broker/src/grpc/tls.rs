//! TLS on the gRPC port, beside plaintext: a connection whose first byte starts a TLS
//! handshake is answered with TLS, any other is served in plaintext, as RocketMQ's proxy
//! serves both on one port. So a 5.x client works with its defaults (the Java client turns
//! TLS on unless told otherwise, and trusts any certificate) and with `enableSsl(false)`.
//!
//! The certificate: with `tlsTestModeEnable` (RocketMQ's default) a self-signed one made at
//! start-up, else the PEM files `tlsCertPath` and `tlsKeyPath`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::debug;

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a new connection may take to send its first byte and finish a TLS handshake.
const HANDSHAKE_TAKES: Duration = Duration::from_secs(10);
/// Connections in their first byte or handshake at once; more wait to be accepted.
const MAX_HANDSHAKES: usize = 1024;
/// Connections told apart but not yet taken by the server.
const READY_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: String },
    #[error("no certificate in {0}")]
    NoCertificate(String),
    #[error("making a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS server: {0}")]
    Server(#[from] rustls::Error),
}

/// The TLS side of the gRPC port.
pub fn acceptor(
    test_mode: bool,
    cert_path: &Path,
    key_path: &Path,
) -> Result<TlsAcceptor, TlsSetupError> {
    let (certs, key) = if test_mode {
        self_signed()?
    } else {
        from_files(cert_path, key_path)?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

type CertAndKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn self_signed() -> Result<CertAndKey, TlsSetupError> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    Ok((vec![made.cert.der().clone()], key))
}

fn from_files(cert_path: &Path, key_path: &Path) -> Result<CertAndKey, TlsSetupError> {
    let unreadable = |path: &Path, error: String| TlsSetupError::Read {
        path: path.display().to_string(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| unreadable(cert_path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate(
            cert_path.display().to_string(),
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| unreadable(key_path, e.to_string()))?;
    Ok((certs, key))
}

/// A connection of the gRPC port, plaintext or TLS.
pub enum GrpcConnection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Accepts connections on `listener` and hands each on once told apart (and, for TLS,
/// once its handshake is done); a connection that sends nothing, or fails its handshake,
/// within [`HANDSHAKE_TAKES`] is dropped.
pub fn incoming(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) -> mpsc::Receiver<io::Result<GrpcConnection>> {
    let (ready, incoming) = mpsc::channel(READY_QUEUE);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if ready.is_closed() {
                return;
            }
            let (ready, tls) = (ready.clone(), tls.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let told = tokio::time::timeout(HANDSHAKE_TAKES, tell_apart(stream, &tls)).await;
                match told {
                    Ok(Ok(connection)) => {
                        let _ = ready.send(Ok(connection)).await;
                    }
                    Ok(Err(e)) => debug!(%peer, error = %e, "gRPC connection dropped"),
                    Err(_) => {
                        debug!(%peer, "gRPC connection dropped: no request or handshake in time")
                    }
                }
            });
        }
    });
    incoming
}

async fn tell_apart(stream: TcpStream, tls: &Option<TlsAcceptor>) -> io::Result<GrpcConnection> {
    stream.set_nodelay(true)?;
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    match tls {
        Some(tls) if read == 1 && first[0] == TLS_HANDSHAKE => {
            Ok(GrpcConnection::Tls(Box::new(tls.accept(stream).await?)))
        }
        _ => Ok(GrpcConnection::Plain(stream)),
    }
}

impl Connected for GrpcConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            GrpcConnection::Plain(stream) => stream.connect_info(),
            GrpcConnection::Tls(stream) => stream.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for GrpcConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for GrpcConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_flush(cx),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            GrpcConnection::Plain(s) => s.is_write_vectored(),
            GrpcConnection::Tls(s) => s.is_write_vectored(),
        }
    }
}
