//! A client's request body on an HTTP/2 stream: the connection pushes each DATA frame's bytes
//! (and trailers) in; the proxy reads them out as an `http_body::Body`. What the reader takes is
//! counted, so the connection can give the client that much flow-control window back.
//!
//! Memory follows the bytes, not the frames: a large payload is kept as the slice of the
//! connection's read buffer it arrived in, but a small one is copied into a buffer of the
//! queue's own (a 1-byte slice would keep a whole 16 KiB read buffer alive, and flow control
//! counts only the byte).

use super::wake::StreamWaker;
use crate::body::BodyError;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Bytes read after which the reader wakes the connection to send a WINDOW_UPDATE (it also
/// does whenever it has read everything there was).
const CREDIT_AFTER: usize = 32 * 1024;
/// Payloads smaller than this are copied (see the module's doc).
const COPY_BELOW: usize = 4096;

/// The client reset the stream (or the connection ended) before the body was complete.
#[derive(Debug, thiserror::Error)]
#[error("the client cancelled the request body")]
pub struct BodyCancelled;

/// The connection's side of a request body.
pub struct BodyQueue {
    inner: Mutex<Inner>,
    /// Wakes the connection's handling of this stream (to return window).
    stream: Arc<StreamWaker>,
}

#[derive(Default)]
struct Inner {
    chunks: VecDeque<Bytes>,
    /// Small payloads copied, after everything in `chunks`.
    small: BytesMut,
    buffered: usize,
    trailers: Option<HeaderMap>,
    ended: bool,
    cancelled: bool,
    /// Bytes read and not yet given back as window.
    consumed: usize,
    asked: bool,
    reader: Option<Waker>,
    /// The client expects `100 Continue`; due once the body is first read.
    continue_wanted: bool,
    continue_due: bool,
}

impl BodyQueue {
    /// A queue for the stream `stream` wakes; `expects_continue` when the client sent
    /// `Expect: 100-continue` (it waits for a `100` before sending the body).
    pub fn new(stream: Arc<StreamWaker>, expects_continue: bool) -> Arc<BodyQueue> {
        let inner = Inner {
            continue_wanted: expects_continue,
            ..Inner::default()
        };
        Arc::new(BodyQueue {
            inner: Mutex::new(inner),
            stream,
        })
    }

    /// True once: when the client is waiting for `100 Continue` and the body is being read.
    pub fn take_continue(&self) -> bool {
        std::mem::take(&mut self.lock().continue_due)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake_reader(mut inner: MutexGuard<'_, Inner>) {
        let reader = inner.reader.take();
        drop(inner);
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Adds a DATA frame's bytes.
    pub fn push(&self, data: Bytes) {
        let mut inner = self.lock();
        inner.buffered += data.len();
        if data.len() < COPY_BELOW {
            inner.small.extend_from_slice(&data);
        } else {
            if !inner.small.is_empty() {
                let small = inner.small.split().freeze();
                inner.chunks.push_back(small);
            }
            inner.chunks.push_back(data);
        }
        Self::wake_reader(inner);
    }

    /// The client's last frame arrived (with trailers, if it sent them).
    pub fn end(&self, trailers: Option<HeaderMap>) {
        let mut inner = self.lock();
        inner.ended = true;
        inner.trailers = trailers;
        Self::wake_reader(inner);
    }

    /// The body will not complete; returns the bytes whose window was not given back yet
    /// (unread, or read since the last [`take_consumed`](Self::take_consumed)).
    pub fn cancel(&self) -> usize {
        let mut inner = self.lock();
        inner.cancelled = true;
        inner.chunks.clear();
        inner.small = BytesMut::new();
        let owed = std::mem::take(&mut inner.buffered) + std::mem::take(&mut inner.consumed);
        Self::wake_reader(inner);
        owed
    }

    /// Bytes read since the last call.
    pub fn take_consumed(&self) -> usize {
        let mut inner = self.lock();
        inner.asked = false;
        std::mem::take(&mut inner.consumed)
    }
}

/// The proxy's side of a request body.
pub struct RequestBody {
    queue: Arc<BodyQueue>,
    /// The declared `content-length`.
    length: Option<u64>,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("length", &self.length)
            .finish()
    }
}

impl RequestBody {
    /// The body read from `queue`, `length` bytes long when declared.
    pub fn new(queue: Arc<BodyQueue>, length: Option<u64>) -> RequestBody {
        RequestBody { queue, length }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let queue = &self.queue;
        let mut inner = queue.lock();
        if inner.cancelled {
            return Poll::Ready(Some(Err(Box::new(BodyCancelled))));
        }
        if std::mem::take(&mut inner.continue_wanted) {
            // The body is wanted: the client may send it (hyper's servers do the same).
            inner.continue_due = true;
            std::task::Wake::wake_by_ref(&queue.stream);
        }
        let next = match inner.chunks.pop_front() {
            Some(data) => Some(data),
            None if !inner.small.is_empty() => Some(inner.small.split().freeze()),
            None => None,
        };
        if let Some(data) = next {
            inner.buffered -= data.len();
            inner.consumed += data.len();
            let credit = inner.consumed >= CREDIT_AFTER && !inner.asked;
            inner.asked |= credit;
            drop(inner);
            if credit {
                std::task::Wake::wake_by_ref(&queue.stream);
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = inner.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if inner.ended {
            return Poll::Ready(None);
        }
        if !inner
            .reader
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inner.reader = Some(cx.waker().clone());
        }
        // Caught up: what was read goes back as window now, whatever its size. Streams that
        // each hold a little unreported window could otherwise use up the connection's window
        // between them and wait for each other forever.
        let credit = inner.consumed > 0 && !inner.asked;
        inner.asked |= credit;
        drop(inner);
        if credit {
            std::task::Wake::wake_by_ref(&queue.stream);
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let inner = self.queue.lock();
        inner.ended && inner.buffered == 0 && inner.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}
