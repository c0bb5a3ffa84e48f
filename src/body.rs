//! The one body type the router sends and receives: empty, a fixed message, a client's request
//! body on its way upstream, or a backend's response body on its way to the client.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Error type of [`ProxyBody`].
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A body another layer streams (the HTTP/2 server's request bodies, backends' response
/// bodies), known here only by what it does: this module, which every layer uses, names none
/// of them.
pub trait StreamedBody:
    Body<Data = Bytes, Error = BodyError> + Send + Sync + Unpin + std::fmt::Debug
{
}

impl<T> StreamedBody for T where
    T: Body<Data = Bytes, Error = BodyError> + Send + Sync + Unpin + std::fmt::Debug
{
}

/// Told once when a streamed response body is done, finished or abandoned, with the body
/// bytes that went out (the access log's record of the request waits for this).
pub trait BodyEnd: Send + Sync + std::fmt::Debug {
    /// The body is done after `bytes` bytes.
    fn ended(self: Box<Self>, bytes: u64);
}

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
    Http2(Box<dyn StreamedBody>),
    /// A backend's body, streamed to the client.
    Upstream(Box<dyn StreamedBody>),
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
            ProxyBody::Http2(body) | ProxyBody::Upstream(body) => {
                Pin::new(&mut **body).poll_frame(cx)
            }
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
            ProxyBody::Http2(body) | ProxyBody::Upstream(body) => body.is_end_stream(),
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
            ProxyBody::Http2(body) | ProxyBody::Upstream(body) => body.size_hint(),
            ProxyBody::Limited(limited) => limited.inner.size_hint(),
        }
    }
}
