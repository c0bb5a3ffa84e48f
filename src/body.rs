//! The one body type the router sends and receives: empty, a fixed message, a client's request
//! body on its way upstream, or a backend's response body on its way to the client.

use crate::deadline::Deadline;
use crate::upstream::{ResponseBody, ResponseLease};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Instant;

/// Error type of [`ProxyBody`].
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A body flowing through the router.
#[derive(Debug, Default)]
pub enum ProxyBody {
    /// No bytes.
    #[default]
    Empty,
    /// A router-made message (error pages, admin answers).
    Full(Option<Bytes>),
    /// A client's body from hyper's HTTP/1.1 server, streamed to a backend.
    Incoming(Incoming),
    /// A client's body from the HTTP/2 server, streamed to a backend.
    Http2(crate::server::Http2Body),
    /// A backend's body, streamed to the client.
    Upstream(Box<UpstreamBody>),
    /// A client's body of unknown length, cut off past a limit (the route's
    /// `max_request_body`).
    Limited(Box<LimitedBody>),
}

/// A body that fails with [`BodyTooLarge`] once more than its limit has passed.
#[derive(Debug)]
pub struct LimitedBody {
    /// The body.
    pub inner: ProxyBody,
    /// Bytes still allowed.
    pub left: u64,
}

/// A request body went past the route's `max_request_body`.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than the limit")]
pub struct BodyTooLarge;

impl ProxyBody {
    /// A body holding `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Full(Some(bytes.into()))
    }
}

/// The backend's response body, with the lease that returns the connection to the pool when
/// the body ends and the deadline of the whole exchange.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: ResponseBody,
    lease: Option<ResponseLease>,
    deadline: Option<Instant>,
    timer: Option<Deadline>,
}

/// The backend did not finish its response body within the request timeout.
#[derive(Debug, thiserror::Error)]
#[error("backend response body exceeded the request timeout of {0:?}")]
pub struct BodyTimeout(pub Duration);

impl UpstreamBody {
    /// Wraps a backend body; `deadline` bounds the time until its last byte.
    pub fn new(
        inner: ResponseBody,
        lease: ResponseLease,
        deadline: Option<Instant>,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            inner,
            lease: Some(lease),
            deadline,
            timer: None,
        };
        if body.inner.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.complete();
        }
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<BodyError> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Deadline::at(deadline));
        ready!(timer.poll(cx));
        self.lease = None;
        let limit = deadline.saturating_duration_since(Instant::now());
        Poll::Ready(Box::new(BodyTimeout(limit)))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.lease = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => match this.poll_deadline(cx) {
                Poll::Ready(error) => Poll::Ready(Some(Err(error))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ProxyBody::Http2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ProxyBody::Upstream(body) => Pin::new(&mut **body).poll_frame(cx),
            ProxyBody::Limited(limited) => {
                let frame = ready!(Pin::new(&mut limited.inner).poll_frame(cx));
                let len = match &frame {
                    Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => 0,
                };
                match limited.left.checked_sub(len) {
                    Some(left) => limited.left = left,
                    None => return Poll::Ready(Some(Err(Box::new(BodyTooLarge)))),
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Incoming(body) => body.is_end_stream(),
            ProxyBody::Http2(body) => body.is_end_stream(),
            ProxyBody::Upstream(body) => body.is_end_stream(),
            ProxyBody::Limited(limited) => limited.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Incoming(body) => body.size_hint(),
            ProxyBody::Http2(body) => body.size_hint(),
            ProxyBody::Upstream(body) => body.size_hint(),
            ProxyBody::Limited(limited) => limited.inner.size_hint(),
        }
    }
}
