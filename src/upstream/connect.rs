//! Opening a connection to an endpoint: TCP (no Nagle), optional TLS with SNI and ALPN
//! ([`Connector::open`]), then, for hyper, the HTTP/1.1 or HTTP/2 handshake with the
//! connection's driver task spawned on this thread ([`Connector::connect`]).

use super::UpstreamError;
use super::io::Io;
use super::pool::Sender;
use crate::body::ProxyBody;
use crate::config::UpstreamProtocol;
use crate::metrics::Metrics;
use crate::target::{Target, Trust};
use crate::tls::UpstreamTls;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Opens connections to endpoints.
#[derive(Debug)]
pub(super) struct Connector {
    tls: UpstreamTls,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Connector {
    pub(super) fn new(tls: UpstreamTls, timeout: Duration, metrics: Arc<Metrics>) -> Connector {
        Connector {
            tls,
            timeout,
            metrics,
        }
    }

    /// Connects (TCP, TLS, HTTP handshake) within the connect timeout.
    pub(super) async fn connect(&self, target: &Target) -> Result<Sender, UpstreamError> {
        tokio::time::timeout(self.timeout, async {
            handshake(self.open_inner(target).await?, target.protocol).await
        })
        .await
        .unwrap_or(Err(UpstreamError::ConnectTimeout(self.timeout)))
    }

    /// Opens the byte stream (TCP, and TLS when the endpoint has a TLS name) within the
    /// connect timeout.
    pub(super) async fn open(&self, target: &Target) -> Result<Io, UpstreamError> {
        tokio::time::timeout(self.timeout, self.open_inner(target))
            .await
            .unwrap_or(Err(UpstreamError::ConnectTimeout(self.timeout)))
    }

    async fn open_inner(&self, target: &Target) -> Result<Io, UpstreamError> {
        let started = std::time::Instant::now();
        let tcp = TcpStream::connect(target.address)
            .await
            .map_err(UpstreamError::Connect)?;
        let _ = tcp.set_nodelay(true);
        self.metrics.upstream_connection_opened();
        let Some(name) = &target.tls_name else {
            self.metrics.observe_upstream_connect(started.elapsed());
            return Ok(Io::Tcp(tcp));
        };
        let tls = match target.trust {
            Trust::Backends => &self.tls.backends,
            Trust::RouteServices => &self.tls.route_services,
        };
        let config = match target.protocol {
            UpstreamProtocol::Http1 => tls.http1.clone(),
            UpstreamProtocol::Http2 => tls.http2.clone(),
        };
        let server_name = ServerName::try_from(name.to_string()).map_err(|e| {
            UpstreamError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        let tls = TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(UpstreamError::Tls)?;
        self.metrics.observe_upstream_connect(started.elapsed());
        Ok(Io::Tls(Box::new(tls)))
    }
}

async fn handshake(io: Io, protocol: UpstreamProtocol) -> Result<Sender, UpstreamError> {
    let io = TokioIo::new(io);
    match protocol {
        UpstreamProtocol::Http1 => {
            let (sender, conn) = http1::Builder::new().handshake::<_, ProxyBody>(io).await?;
            tokio::spawn(async move {
                if let Err(error) = conn.with_upgrades().await {
                    tracing::debug!(%error, "upstream http1 connection ended");
                }
            });
            Ok(Sender::Http1(sender))
        }
        UpstreamProtocol::Http2 => {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(Duration::from_secs(30))
                .handshake::<_, ProxyBody>(io)
                .await?;
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%error, "upstream http2 connection ended");
                }
            });
            Ok(Sender::Http2(sender))
        }
    }
}
