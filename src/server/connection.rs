//! Serving one accepted client connection: optional TLS handshake, HTTP/1.1 or HTTP/2 (the
//! preface, peeked, for plain TCP; ALPN for TLS), header-read and idle timeouts, graceful close
//! when the router stops, and parking of idle HTTP/1.1 connections.
//!
//! Parking: an HTTP/1.1 connection that has been quiet for [`PARK_AFTER`] gives its serving
//! state (read and write buffers, the per-request future: tens of KB) back, and waits for the
//! next request with only its socket (and, with TLS, its TLS session). The hand-written server
//! hands its socket back when it parks; hyper serves a duplicate of the socket's descriptor
//! (plain text only), so ending hyper's connection (`graceful_shutdown`, which never shuts the
//! socket down) leaves the socket itself open.

use super::{ConnState, TrackedIo, h1, h2};
use crate::lifecycle::{ConnGuards, FIRST_REQUEST_GRACE, Lifecycle};
use crate::proxy::{ClientConn, Proxy};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Quiet time after which an idle plain-text HTTP/1.1 connection is parked.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// Client-side limits and the protocol builders shared by a worker's connections.
pub struct ServeSettings {
    /// Time to finish a request head once started.
    pub header_timeout: Duration,
    /// Idle keep-alive limit.
    pub idle_timeout: Duration,
    /// Time to finish a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// HTTP/2 keep-alive PING period (see `h2::serve`).
    pub http2_keepalive: Duration,
    /// How long a response may wait for the client to take more of it.
    pub send_timeout: Duration,
    /// Client connections open at once (shared by every worker).
    pub admission: Arc<super::Admission>,
    http1: http1::Builder,
}

impl ServeSettings {
    /// Settings from the `[server]` section.
    pub fn new(server: &crate::config::ServerConfig) -> ServeSettings {
        let mut http1 = http1::Builder::new();
        http1
            .header_read_timeout(None)
            .max_buf_size(server.max_header_bytes.max(8192))
            .timer(TokioTimer::new());
        ServeSettings {
            header_timeout: server.header_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
            tls_handshake_timeout: server.tls_handshake_timeout.0,
            max_header_bytes: server.max_header_bytes,
            http2_keepalive: server.http2_keepalive.0,
            send_timeout: server.send_timeout.0,
            admission: super::Admission::new(server.max_connections, server.max_connections_per_ip),
            http1,
        }
    }

    /// How often an idle connection re-checks its timeouts at the least.
    fn check_every(&self) -> Duration {
        self.header_timeout.min(self.idle_timeout)
    }
}

/// Everything a connection task needs.
pub struct ConnContext {
    /// The request handler.
    pub proxy: Arc<Proxy>,
    /// Limits and builders.
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
    guards: ConnGuards,
) {
    let _ = stream.set_nodelay(true);
    let client = Arc::new(ClientConn::new(peer, tls.is_some(), guards));
    let Some(acceptor) = tls else {
        let sniffed = tokio::select! {
            biased;
            sniffed = sniff_http2(&stream, ctx.settings.header_timeout) => sniffed,
            () = first_request_grace(&ctx.lifecycle) => None,
        };
        return match sniffed {
            Some(true) => {
                let _open = ctx.proxy.metrics().client_connection(true, false);
                let state = ConnState::new(true);
                let io = TrackedIo::new(stream, state.clone());
                Box::pin(serve_http2(io, state, client, &ctx)).await
            }
            Some(false) => {
                let _open = ctx.proxy.metrics().client_connection(false, false);
                serve_http1_parking(stream, client, &ctx).await
            }
            None => {}
        };
    };
    // Boxed: the TLS states (handshake, TLS stream) would otherwise size the task of every
    // connection, plain ones included, for as long as it lives.
    Box::pin(serve_tls(stream, acceptor, client, &ctx)).await
}

/// Resolves when the stop's grace for a connection's first request has run out.
async fn first_request_grace(lifecycle: &Lifecycle) {
    lifecycle.stopping().await;
    tokio::time::sleep(FIRST_REQUEST_GRACE).await;
}

/// TLS: handshake within the limit, then HTTP/2 or HTTP/1.1 by ALPN. An HTTP/1.1 connection
/// quiet for [`PARK_AFTER`] between requests is parked: the TLS session stays (it cannot be
/// handed on like a bare socket), the HTTP/1.1 server's buffers and state go, and the task
/// waits for the socket to turn readable.
async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    client: Arc<ClientConn>,
    ctx: &ConnContext,
) {
    let peer = client.peer();
    let handshake =
        tokio::time::timeout(ctx.settings.tls_handshake_timeout, acceptor.accept(stream));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let _open = ctx.proxy.metrics().client_connection(http2, true);
    let state = ConnState::new(http2);
    let mut io = TrackedIo::new(stream, state.clone());
    if http2 {
        return serve_http2(io, state, client, ctx).await;
    }
    loop {
        let served = serve_http1(io, &state, &client, ctx, Some(PARK_AFTER), false);
        let Http1End::Parked(Some(back)) = Box::pin(served).await else {
            return;
        };
        io = back;
        if !wait_parked(io.get_ref().get_ref().0, &state, ctx).await {
            return;
        }
    }
}

/// Waits, parked, for `socket` to turn readable: true then (the connection is served again),
/// false when it is to close instead (idle timeout, the router stopping).
async fn wait_parked(socket: &TcpStream, state: &ConnState, ctx: &ConnContext) -> bool {
    // Bytes of a head read while ending would be lost with the server: close rather than
    // misparse.
    if state.head_started() || ctx.lifecycle.is_stopping() {
        return false;
    }
    let idle_left = state
        .time_left(ctx.settings.header_timeout, ctx.settings.idle_timeout)
        .unwrap_or(ctx.settings.idle_timeout);
    tokio::select! {
        ready = socket.readable() => if ready.is_err() { return false },
        () = tokio::time::sleep(idle_left) => return false,
        () = ctx.lifecycle.stopping() => return false,
    }
    state.set_parking(false);
    true
}

/// True when the client opens with the HTTP/2 preface (`PRI `); `None` if it closes or stays
/// silent past `limit`. Peeking leaves the bytes for hyper.
async fn sniff_http2(stream: &TcpStream, limit: Duration) -> Option<bool> {
    const PREFACE: &[u8] = b"PRI ";
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if n >= PREFACE.len() || buf[..n] != PREFACE[..n] {
            return Some(buf[..n] == *PREFACE);
        }
        // A few bytes of what may be the preface: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The per-connection service hyper's HTTP/1.1 server calls: each request goes to the proxy,
/// counted as in flight; never an error.
fn service(
    state: &Arc<ConnState>,
    client: &Arc<ClientConn>,
    ctx: &ConnContext,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::ProxyBody>,
    Error = Infallible,
    Future: Send + 'static,
> + use<> {
    let (state, client, proxy) = (state.clone(), client.clone(), ctx.proxy.clone());
    service_fn(move |req| {
        let proxy = proxy.clone();
        let client = client.clone();
        let active = state.start_request();
        let req = req.map(crate::body::ProxyBody::Incoming);
        async move { Ok::<_, Infallible>(proxy.handle(req, client, active).await) }
    })
}

/// How serving an HTTP/1.1 connection ended.
enum Http1End<I> {
    /// Closed, or to be closed.
    Closed,
    /// Parked: quiet, its serving state let go. The socket comes back when the hand-written
    /// server parked (hyper's parking leaves only the duplicate descriptor, see [`drive`]).
    Parked(Option<I>),
}

/// Serves HTTP/1.1 on `io`: the hand-written server first, hyper (with upgrades) from the first
/// request it hands off; with `park_after`, a connection quiet that long ends parked. hyper's
/// part parks only with `hyper_parks` (when `io` is a duplicate descriptor of a socket kept
/// elsewhere: hyper does not hand its socket back).
async fn serve_http1<I>(
    io: I,
    state: &Arc<ConnState>,
    client: &Arc<ClientConn>,
    ctx: &ConnContext,
    park_after: Option<Duration>,
    hyper_parks: bool,
) -> Http1End<I>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // The hand-written server notices parking and stopping by itself while idle.
    let fast = Box::pin(h1::serve(io, state, client, ctx));
    match drive(fast, |_| {}, state, ctx, park_after).await {
        Driven::Ended {
            output: h1::Served::HandOff(io),
            ..
        } => {
            let park_after = park_after.filter(|_| hyper_parks);
            if serve_hyper_http1(io, state, client, ctx, park_after).await {
                Http1End::Parked(None)
            } else {
                Http1End::Closed
            }
        }
        Driven::Ended {
            output: h1::Served::Parked(io),
            ..
        } => Http1End::Parked(Some(io)),
        Driven::Ended { parked: true, .. } => Http1End::Parked(None),
        Driven::Ended { .. } | Driven::TimedOut => Http1End::Closed,
    }
}

/// hyper's HTTP/1.1 server (with upgrades) on `io`; returns true when it ended to park.
async fn serve_hyper_http1<I>(
    io: I,
    state: &Arc<ConnState>,
    client: &Arc<ClientConn>,
    ctx: &ConnContext,
    park_after: Option<Duration>,
) -> bool
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let io = super::SendTimeout::new(io, ctx.settings.send_timeout);
    let conn = ctx
        .settings
        .http1
        .serve_connection(TokioIo::new(io), service(state, client, ctx));
    let conn = Box::pin(conn.with_upgrades());
    let finish = |conn: Pin<&mut _>| {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(conn)
    };
    logged(drive(conn, finish, state, ctx, park_after).await)
}

/// HTTP/2 on `io` with the hand-written server.
async fn serve_http2<I>(io: I, state: Arc<ConnState>, client: Arc<ClientConn>, ctx: &ConnContext)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    // The server sends its GOAWAY by itself once the router is stopping, or once `drive`
    // marks it for parking: an idle connection goes away (GOAWAY, then close) just before the
    // idle timeout would cut it, so a request racing the close is known to be unprocessed.
    let conn = Box::pin(h2::serve(io, &state, &client, ctx));
    let idle = ctx.settings.idle_timeout;
    let go_away_after = idle.saturating_sub((idle / 10).min(Duration::from_secs(1)));
    if let Driven::Ended {
        output: Err(error), ..
    } = drive(conn, |_| {}, &state, ctx, Some(go_away_after)).await
    {
        tracing::debug!(%error, "HTTP/2 client connection ended with an error");
    }
}

/// Plain-text HTTP/1.1 with parking: hyper serves a duplicate of the socket; when it has been
/// quiet for [`PARK_AFTER`], hyper's connection ends and the task waits on the socket alone.
async fn serve_http1_parking(stream: TcpStream, client: Arc<ClientConn>, ctx: &ConnContext) {
    let state = ConnState::new(false);
    let Ok(mut parked) = stream.into_std() else {
        return;
    };
    loop {
        let Ok(active) = parked.try_clone().and_then(TcpStream::from_std) else {
            return;
        };
        let io = TrackedIo::new(active, state.clone());
        // Boxed: while parked, the task keeps only this loop's state, not room for serving.
        let served = Box::pin(serve_http1(
            io,
            &state,
            &client,
            ctx,
            Some(PARK_AFTER),
            true,
        ))
        .await;
        if !matches!(served, Http1End::Parked(_)) {
            return;
        }
        // The duplicate descriptor served is closed with `served`; `parked` keeps the socket.
        drop(served);
        let Ok(waiting) = TcpStream::from_std(parked) else {
            return;
        };
        if !wait_parked(&waiting, &state, ctx).await {
            return;
        }
        let Ok(std) = waiting.into_std() else { return };
        parked = std;
    }
}

/// How a driven connection ended.
enum Driven<T> {
    /// It finished by itself (`parked`: after being asked to, for parking).
    Ended { output: T, parked: bool },
    /// A header-read or idle timeout closed it.
    TimedOut,
}

/// The outcome of a hyper connection, its error logged; true when it ended to park.
fn logged(driven: Driven<hyper::Result<()>>) -> bool {
    match driven {
        Driven::Ended { output, parked } => {
            if let Err(error) = output {
                tracing::debug!(%error, "client connection ended with an error");
            }
            parked
        }
        Driven::TimedOut => false,
    }
}

/// Drives `conn` until it ends, enforcing header-read and idle timeouts and the router's stop
/// (`finish` asks it to end gracefully). With `park_after`, a connection quiet that long is
/// asked to finish, and reported `parked`.
async fn drive<C: Future>(
    mut conn: Pin<Box<C>>,
    finish: impl Fn(Pin<&mut C>),
    state: &ConnState,
    ctx: &ConnContext,
    park_after: Option<Duration>,
) -> Driven<C::Output> {
    let settings = &ctx.settings;
    // One poll registers this task to be woken when the phase changes. After that the stop
    // future is polled only once the router has left `Running` (polling it on every wake took a
    // lock each time); the wake-up still comes, from that registration. Unconstrained: a task
    // that used up its cooperative budget would get `Pending` from the first poll without being
    // registered.
    let mut stop = std::pin::pin!(tokio::task::unconstrained(ctx.lifecycle.stopping()));
    let stopped = std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx).is_ready())).await;
    let mut stop = std::pin::pin!(std::future::poll_fn(|cx| {
        if ctx.lifecycle.is_running() {
            Poll::Pending
        } else {
            stop.as_mut().poll(cx)
        }
    }));
    let (mut stopping, mut parking) = (stopped, false);
    let check_every = settings.check_every();
    let timer = tokio::time::sleep(check_every.min(park_after.unwrap_or(check_every)));
    tokio::pin!(timer);
    // A connection that has not begun its first request when the stop comes is woken when its
    // grace ends (`Lifecycle::closes_idle`), so that it closes then if nothing came.
    let mut grace_ends: Option<Instant> = None;
    let begin_stop = |conn: Pin<&mut C>, grace_ends: &mut Option<Instant>| {
        finish(conn);
        if !state.served_any() {
            *grace_ends = Some(Instant::now() + FIRST_REQUEST_GRACE);
        }
    };
    if stopped {
        begin_stop(conn.as_mut(), &mut grace_ends);
    }
    // The timer is polled once after each reset, which registers this task's waker with it;
    // after that only its state is checked until it has fired (a poll on every wake of the
    // connection cost ~100 instructions, twice per request).
    let mut armed = false;
    loop {
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = conn.as_mut().poll(cx) {
                return Poll::Ready(Event::Ended(output));
            }
            if !stopping && stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop);
            }
            if !parking && (!armed || timer.is_elapsed()) {
                // A poll refused for want of cooperative budget registers nothing: it is made
                // again on the next wake.
                armed = tokio::task::coop::has_budget_remaining();
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Check);
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Ended(output) => {
                return Driven::Ended {
                    output,
                    parked: parking && !stopping,
                };
            }
            Event::Stop => {
                stopping = true;
                begin_stop(conn.as_mut(), &mut grace_ends);
                if let Some(end) = grace_ends {
                    timer.as_mut().reset(end);
                    armed = false;
                }
            }
            Event::Check => {
                let left = state.time_left(settings.header_timeout, settings.idle_timeout);
                if left.is_some_and(|left| left.is_zero()) {
                    tracing::debug!("closing client connection: header or idle timeout");
                    return Driven::TimedOut;
                }
                let mut wait = left.map_or(check_every, |left| left.min(check_every));
                if let Some(end) = grace_ends {
                    wait = wait.min(end.saturating_duration_since(Instant::now()));
                }
                // A stopping connection is closing anyway: never park it.
                let park = park_after.filter(|_| !stopping).zip(state.quiet_for());
                if let Some((park_after, quiet)) = park {
                    if quiet >= park_after {
                        parking = true;
                        state.set_parking(true);
                        finish(conn.as_mut());
                        continue;
                    }
                    wait = wait.min(park_after - quiet);
                }
                timer.as_mut().reset(Instant::now() + wait);
                armed = false;
            }
        }
    }
}

/// What woke [`drive`].
enum Event<T> {
    /// The connection ended.
    Ended(T),
    /// The router is stopping.
    Stop,
    /// The check timer fired: timeouts and parking are due a look.
    Check,
}
