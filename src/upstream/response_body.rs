//! A backend's response body as the client gets it: the lease that returns the connection to
//! the pool when the body ends, and the deadline of the whole exchange.

use super::{ResponseBody, ResponseLease};
use crate::body::{BodyEnd, BodyError};
use crate::deadline::Deadline;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Instant;

/// The backend's response body, with the lease that returns the connection to the pool when
/// the body ends and the deadline of the whole exchange.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: ResponseBody,
    lease: Option<ResponseLease>,
    deadline: Option<Instant>,
    timer: Option<Deadline>,
    /// Told the bytes sent when the body is done (dropped).
    end: Option<Box<dyn BodyEnd>>,
    sent: u64,
}

/// The backend did not finish its response body within the request timeout.
#[derive(Debug, thiserror::Error)]
#[error("backend response body exceeded the request timeout of {0:?}")]
pub struct BodyTimeout(pub Duration);

impl UpstreamBody {
    /// Wraps a backend body; `deadline` bounds the time until its last byte; `end` is told
    /// the bytes sent when the body is done.
    pub fn new(
        inner: ResponseBody,
        lease: ResponseLease,
        deadline: Option<Instant>,
        end: Option<Box<dyn BodyEnd>>,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            inner,
            lease: Some(lease),
            deadline,
            timer: None,
            end,
            sent: 0,
        };
        if body.inner.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        self.release(true);
    }

    /// Lets the lease go, the bytes sent counted: the connection back to the pool when the body
    /// ended `clean`ly, else closed.
    fn release(&mut self, clean: bool) {
        if let Some(lease) = self.lease.take() {
            lease.count_bytes(self.sent);
            if clean {
                lease.complete();
            }
        }
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<BodyError> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Deadline::at(deadline));
        ready!(timer.poll(cx));
        self.release(false);
        let limit = deadline.saturating_duration_since(Instant::now());
        Poll::Ready(Box::new(BodyTimeout(limit)))
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        self.release(false);
        if let Some(end) = self.end.take() {
            end.ended(self.sent);
        }
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
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.release(false);
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
