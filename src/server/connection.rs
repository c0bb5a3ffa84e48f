//! Serving one accepted client connection: optional TLS handshake, HTTP/1.1 or HTTP/2 (detected
//! from the preface), header-read and idle timeouts, and graceful close when the router stops.

use super::{ConnState, TrackedIo};
use crate::lifecycle::{ConnGuards, Lifecycle};
use crate::proxy::{ClientConn, Proxy};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// Client-side limits and the protocol builder shared by a worker's connections.
pub struct ServeSettings {
    /// Time to finish a request head once started.
    pub header_timeout: Duration,
    /// Idle keep-alive limit.
    pub idle_timeout: Duration,
    /// Time to finish a TLS handshake.
    pub tls_handshake_timeout: Duration,
    builder: auto::Builder<TokioExecutor>,
}

impl ServeSettings {
    /// Settings from the `[server]` section.
    pub fn new(server: &crate::config::ServerConfig) -> ServeSettings {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .header_read_timeout(None)
            .max_buf_size(server.max_header_bytes.max(8192))
            .timer(TokioTimer::new());
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(server.max_header_bytes as u32)
            .keep_alive_interval(Duration::from_secs(30));
        ServeSettings {
            header_timeout: server.header_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
            tls_handshake_timeout: server.tls_handshake_timeout.0,
            builder,
        }
    }
}

/// Everything a connection task needs.
pub struct ConnContext {
    /// The request handler.
    pub proxy: Arc<Proxy>,
    /// Limits and builder.
    pub settings: Arc<ServeSettings>,
    /// The router's lifecycle (stop = graceful close).
    pub lifecycle: Arc<Lifecycle>,
}

/// Serves `stream` until the client leaves, a timeout fires, or the router stops.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    ctx: ConnContext,
    guard: ConnGuards,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        let state = ConnState::new(false);
        let io = TrackedIo::new(stream, state.clone());
        return serve_http(io, state, ClientConn::new(peer, false, guard), ctx).await;
    };
    let handshake =
        tokio::time::timeout(ctx.settings.tls_handshake_timeout, acceptor.accept(stream));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let state = ConnState::new(http2);
    let io = TrackedIo::new(stream, state.clone());
    serve_http(io, state, ClientConn::new(peer, true, guard), ctx).await
}

async fn serve_http<I>(io: I, state: Arc<ConnState>, client: ClientConn, ctx: ConnContext)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ConnContext {
        proxy,
        settings,
        lifecycle,
    } = ctx;
    let client = Arc::new(client);
    let service_state = state.clone();
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        let client = client.clone();
        let active = service_state.start_request();
        async move { Ok::<_, Infallible>(proxy.handle(req, client, active).await) }
    });
    let conn = settings
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Wake at least once per header timeout: a request head may start at any moment.
    let check_every = settings.header_timeout.min(settings.idle_timeout);
    let timer = tokio::time::sleep(check_every);
    tokio::pin!(timer);
    let stop = lifecycle.stopping();
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "client connection ended with an error");
                }
                return;
            }
            () = &mut stop, if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = timer.as_mut() => {
                let left = state.time_left(settings.header_timeout, settings.idle_timeout);
                if left.is_some_and(|left| left.is_zero()) {
                    tracing::debug!("closing client connection: header or idle timeout");
                    return;
                }
                let wait = left.map_or(check_every, |left| left.min(check_every));
                timer.as_mut().reset(tokio::time::Instant::now() + wait);
            }
        }
    }
}
