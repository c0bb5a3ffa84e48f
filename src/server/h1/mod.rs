//! The hand-written HTTP/1.1 server, for the common case: plain requests with no body or a small
//! one with a Content-Length (`request`), answered with one gathered write where the body allows
//! (`response`). Everything else (streamed or chunked request bodies, `Expect`, upgrades,
//! HTTP/1.0, malformed or oversized heads) is handed to hyper together with the bytes already
//! read (`prefixed`), and hyper serves the connection from there on.
//!
//! Why: hyper's server dispatch was a third of the router's instructions per request (profile
//! in the README); this loop does the same work for these requests with a fraction of it.

mod prefixed;
mod request;
mod response;

pub use prefixed::Prefixed;

use super::ConnState;
use super::SendTimeout;
use super::connection::ConnContext;
use crate::body::ProxyBody;
use crate::http1::fields::Spans;
use crate::proxy::ClientConn;
use bytes::BytesMut;
use http::{Method, Response, StatusCode};
use request::{Head, Parsed};
use response::Asked;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Bytes made room for before each read.
const READ_SIZE: usize = 8 * 1024;

/// How serving ended.
pub enum Served<I> {
    /// The connection is done (client left, asked to close, error, or the router stopping).
    Closed,
    /// Quiet between requests when the connection was asked to park: the socket, with nothing
    /// read from it that is not served (the buffers are let go with this server's state).
    Parked(I),
    /// A request this server does not serve: hyper continues with these bytes first.
    HandOff(Prefixed<I>),
}

/// Serves requests on `io` until the connection ends or a request needs hyper. While waiting
/// for a new request with nothing read, it stops when the connection is to park or the router
/// is stopping.
pub async fn serve<I>(
    mut io: I,
    state: &Arc<ConnState>,
    client: &Arc<ClientConn>,
    ctx: &ConnContext,
) -> Served<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let max_head = ctx.settings.max_header_bytes;
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut spans = Spans::new();
    loop {
        let head = loop {
            if !buf.is_empty() {
                match request::parse(&mut buf, max_head, &mut spans) {
                    Parsed::Complete(head) => break head,
                    Parsed::Partial => {}
                    Parsed::HandOff => return Served::HandOff(Prefixed::new(buf.freeze(), io)),
                    Parsed::Bad => {
                        let _ = bad_request(&mut io, &mut out).await;
                        return Served::Closed;
                    }
                }
            }
            let idle = buf.is_empty();
            let waiting = idle.then_some((&**state, ctx));
            if !matches!(read(&mut io, &mut buf, waiting).await, Ok(n) if n > 0) {
                // Whether a parked connection is then kept (not when stopping) is decided
                // where it waits (`connection::wait_parked`).
                return if idle && state.is_parking() {
                    Served::Parked(io)
                } else {
                    Served::Closed
                };
            }
        };
        let Head {
            mut request,
            body_len,
            close,
            te_trailers,
        } = head;
        if body_len > 0 {
            while buf.len() < body_len {
                if !matches!(read(&mut io, &mut buf, None).await, Ok(n) if n > 0) {
                    return Served::Closed;
                }
            }
            *request.body_mut() = ProxyBody::full(buf.split_to(body_len).freeze());
        }
        let head_request = request.method() == Method::HEAD;
        let active = state.start_request();
        // Pinned where it is made: the request's future is large, and moving it costs a copy.
        let handling = std::pin::pin!(ctx.proxy.handle(request, client.clone(), active));
        let Some(response) = unless_client_leaves(handling, &mut io, &mut buf, max_head).await
        else {
            return Served::Closed;
        };
        let asked = Asked {
            head: head_request,
            trailers: te_trailers,
            // Draining or stopping: the client learns to go before any socket closes.
            close: close || !ctx.lifecycle.is_running(),
        };
        let mut timed = SendTimeout::new(&mut io, ctx.settings.send_timeout);
        if response::write(&mut timed, &mut out, response, asked)
            .await
            .is_err()
            || asked.close
        {
            let _ = io.shutdown().await;
            return Served::Closed;
        }
    }
}

/// Awaits `handling` while watching the client: if it closes (or its socket fails) first, the
/// request is dropped, cancelling the upstream exchange (hyper does the same). Bytes the client
/// sends meanwhile (a pipelined request) are kept in `buf`, up to `limit`.
async fn unless_client_leaves<I, F>(
    mut handling: Pin<&mut F>,
    io: &mut I,
    buf: &mut BytesMut,
    limit: usize,
) -> Option<F::Output>
where
    I: AsyncRead + Unpin,
    F: std::future::Future,
{
    poll_fn(|cx| {
        if let Poll::Ready(output) = handling.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        while buf.len() < limit {
            match poll_fill(io, cx, buf) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => break,
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads more bytes into `buf`; 0 at the end of the stream. `waiting` (connection and context)
/// is given while idle between requests: then the read ends early, with 0, once the connection
/// is to park or the stop closes it (a connection that has not begun its first request gets a
/// grace: `Lifecycle::closes_idle`).
async fn read<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    waiting: Option<(&ConnState, &ConnContext)>,
) -> io::Result<usize> {
    poll_fn(|cx| {
        if let Some((state, ctx)) = waiting
            && (state.is_parking() || ctx.lifecycle.closes_idle(state.served_any()))
        {
            return Poll::Ready(Ok(0));
        }
        poll_fill(io, cx, buf)
    })
    .await
}

/// One read into `buf`, with room made first (0 only at the end of the stream).
fn poll_fill<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_SIZE / 8 {
        buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Answers a head that parsed but named an invalid target or field (the connection closes).
async fn bad_request<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>) -> io::Result<()> {
    let mut response = Response::new(ProxyBody::Empty);
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let asked = Asked {
        head: false,
        trailers: false,
        close: true,
    };
    response::write(io, out, response, asked).await?;
    io.shutdown().await
}

/// Fuzzing entry (`cargo fuzz`, built with `--cfg fuzzing`): parses `input` as request heads,
/// one after another, as the server reads them.
#[cfg(fuzzing)]
pub fn fuzz_request_head(input: &[u8]) {
    let mut buf = BytesMut::from(input);
    let mut spans = Spans::new();
    while let Parsed::Complete(head) = request::parse(&mut buf, 64 * 1024, &mut spans) {
        let _ = buf.split_to(head.body_len.min(buf.len()));
    }
}
