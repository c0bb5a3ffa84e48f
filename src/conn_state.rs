//! Per-client-connection bookkeeping for timeouts: requests in flight, when the connection went
//! idle, and when a new request head started arriving. `TrackedIo` feeds it from socket reads.

use crate::clock::now_ms;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// Timeout state of one client connection.
#[derive(Debug)]
pub struct ConnState {
    active: AtomicUsize,
    idle_since_ms: AtomicU64,
    head_started_ms: AtomicU64,
    http2: AtomicBool,
    first_read: AtomicBool,
    parking: AtomicBool,
    /// A request has begun on this connection.
    served: AtomicBool,
}

impl ConnState {
    /// A new connection, idle since now.
    pub fn new(http2: bool) -> Arc<ConnState> {
        Arc::new(ConnState {
            active: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now_ms()),
            head_started_ms: AtomicU64::new(0),
            http2: AtomicBool::new(http2),
            first_read: AtomicBool::new(true),
            parking: AtomicBool::new(false),
            served: AtomicBool::new(false),
        })
    }

    /// Marks a request head as received; the request counts until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_started_ms.store(0, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }

    /// True once a request has begun on this connection.
    pub fn served_any(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    fn on_read(&self, data: &[u8]) {
        if self.first_read.swap(false, Ordering::Relaxed) && data.starts_with(HTTP2_PREFACE) {
            self.http2.store(true, Ordering::Relaxed);
        }
        if self.active.load(Ordering::Relaxed) == 0
            && self.head_started_ms.load(Ordering::Relaxed) == 0
            && !self.http2.load(Ordering::Relaxed)
        {
            self.head_started_ms.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// How long the connection has been quiet: no request in flight and no byte read since the
    /// last response ended. `None` while anything is going on.
    pub fn quiet_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::Relaxed) > 0
            || self.head_started_ms.load(Ordering::Relaxed) != 0
        {
            return None;
        }
        let idle_since = self.idle_since_ms.load(Ordering::Relaxed);
        Some(Duration::from_millis(now_ms().saturating_sub(idle_since)))
    }

    /// While parking, hyper's closing `shutdown` must not reach the socket (it would end the
    /// connection for the client too); [`TrackedIo`] skips it while this is set.
    pub fn set_parking(&self, parking: bool) {
        self.parking.store(parking, Ordering::Relaxed);
    }

    /// True while the connection is being parked.
    pub fn is_parking(&self) -> bool {
        self.parking.load(Ordering::Relaxed)
    }

    /// True when bytes of a new request head have been read (and not yet handled).
    pub fn head_started(&self) -> bool {
        self.head_started_ms.load(Ordering::Relaxed) != 0
    }

    /// How long until this connection should be closed for a timeout (zero = now); `None` while
    /// a request is in flight (the request timeout covers that).
    pub fn time_left(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Duration> {
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = now_ms();
        let head = self.head_started_ms.load(Ordering::Relaxed);
        let deadline = if head != 0 {
            head + header_timeout.as_millis() as u64
        } else {
            self.idle_since_ms.load(Ordering::Relaxed) + idle_timeout.as_millis() as u64
        };
        Some(Duration::from_millis(deadline.saturating_sub(now)))
    }
}

/// A request in flight on a client connection (held until its response body ends).
#[derive(Debug)]
pub struct ActiveRequest(Arc<ConnState>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since_ms.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// A client socket that reports reads to its [`ConnState`].
#[derive(Debug)]
pub struct TrackedIo<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> TrackedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        TrackedIo { inner, state }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.state.parking.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
