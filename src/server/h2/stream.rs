//! One stream of an HTTP/2 connection: the proxy's handling of its request, then its response
//! going out as the client's flow-control windows allow, and what it still expects of the
//! client's request body.

use super::body::BodyQueue;
use super::output::Output;
use super::wake::StreamWaker;
use crate::body::ProxyBody;
use crate::http2::frame::{self, Reason};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::Body;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Output beyond which no more response bytes are produced until some are written.
pub const OUTPUT_HIGH: usize = 256 * 1024;

/// The proxy's handling of a request.
pub type Handling = Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>;

/// What the connection knows of the client's settings and its own send window.
pub struct Peer {
    /// Largest frame the client takes.
    pub max_frame: usize,
    /// The connection's send window.
    pub conn_window: i64,
    /// Send window of a new stream.
    pub initial_window: i64,
    /// A lowered header table size to announce in the next header block.
    pub size_update: Option<usize>,
    /// The header table size the encoder may assume.
    pub table_size: usize,
}

impl Peer {
    /// Writes a header block as this client takes it (its frame size, a pending table size
    /// update first).
    fn headers(
        &mut self,
        out: &mut Output,
        id: u32,
        status: Option<StatusCode>,
        fields: &http::HeaderMap,
        end: bool,
    ) {
        let update = self.size_update.take();
        out.headers(id, status, fields, end, self.max_frame, update);
    }
}

/// Where a stream's response stands after being polled.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for the proxy, the response body or the stream's window.
    Waiting,
    /// Waiting for the connection's window.
    ConnBlocked,
    /// Waiting for the output to drain.
    OutputFull,
    /// The response is complete.
    Done,
    /// The response failed and the stream was reset.
    Reset,
}

enum Task {
    Handling(Handling),
    Sending {
        body: ProxyBody,
        /// Bytes of a body frame not yet sent (window), and whether they end the body.
        pending: Option<(Bytes, bool)>,
    },
    Done,
}

/// One open stream.
pub struct Stream {
    waker: Waker,
    wake: Arc<StreamWaker>,
    task: Task,
    /// The request body still arriving (`None` once the client ended its side).
    pub recv: Option<Arc<BodyQueue>>,
    /// The request body's queue for as long as the stream lives (the proxy may still be
    /// reading it after the client's last frame): what it reads is window to give back.
    queue: Option<Arc<BodyQueue>>,
    /// Bytes the client may still send on this stream.
    pub recv_window: i64,
    /// Bytes read by the proxy and not yet given back as window.
    pub recv_credit: usize,
    /// Set once the response is complete while the client still sends: body bytes dropped.
    pub discarded: Option<usize>,
    /// Body bytes still due by the declared `content-length`.
    pub length_left: Option<u64>,
    /// Bytes the server may still send on this stream.
    pub send_window: i64,
    /// Since when the response has had bytes to send and no window to send them in.
    pub stalled_since: Option<Instant>,
    head_only: bool,
}

impl Stream {
    /// A stream whose request is being handled by `handling`.
    pub fn new(
        wake: Arc<StreamWaker>,
        handling: Handling,
        recv: Option<Arc<BodyQueue>>,
        windows: (i64, i64),
        length: Option<u64>,
        head_only: bool,
    ) -> Stream {
        Stream {
            waker: Waker::from(wake.clone()),
            wake,
            task: Task::Handling(handling),
            queue: recv.clone(),
            recv,
            recv_window: windows.0,
            recv_credit: 0,
            discarded: None,
            length_left: length,
            send_window: windows.1,
            stalled_since: None,
            head_only,
        }
    }

    /// Ends the request body for good; returns the window it still owed (bytes unread, or read
    /// and not yet taken).
    pub fn cancel_body(&mut self) -> usize {
        self.recv = None;
        self.queue.take().map_or(0, |queue| queue.cancel())
    }

    /// Called before the stream is polled: a wake from now on queues it again.
    pub fn unqueue(&self) {
        self.wake.unqueue();
    }

    /// Writes `100 Continue` if the client waits for it and the proxy started reading the body
    /// before the response head went out.
    pub fn answer_continue(&mut self, id: u32, out: &mut Output, peer: &mut Peer) {
        let due = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.take_continue());
        if due && matches!(self.task, Task::Handling(_)) {
            let none = http::HeaderMap::new();
            peer.headers(out, id, Some(StatusCode::CONTINUE), &none, false);
        }
    }

    /// Takes what the proxy read of the request body since last time (to give back as window).
    pub fn take_consumed(&mut self) -> usize {
        self.queue.as_ref().map_or(0, |queue| queue.take_consumed())
    }

    /// Polls the handling and then the response body, writing what is ready and allowed.
    pub fn poll(&mut self, id: u32, out: &mut Output, peer: &mut Peer) -> Progress {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        if let Task::Handling(handling) = &mut self.task {
            let Poll::Ready(response) = handling.as_mut().poll(&mut cx) else {
                return Progress::Waiting;
            };
            self.respond(id, response, out, peer);
        }
        self.pump(id, out, peer, &mut cx)
    }

    fn respond(
        &mut self,
        id: u32,
        response: Response<ProxyBody>,
        out: &mut Output,
        peer: &mut Peer,
    ) {
        let (parts, body) = response.into_parts();
        let bodiless = matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
        let end = self.head_only || bodiless || body.is_end_stream();
        peer.headers(out, id, Some(parts.status), &parts.headers, end);
        crate::http1::fields::recycle(parts.headers);
        self.task = if end {
            Task::Done
        } else {
            Task::Sending {
                body,
                pending: None,
            }
        };
    }

    fn pump(
        &mut self,
        id: u32,
        out: &mut Output,
        peer: &mut Peer,
        cx: &mut Context<'_>,
    ) -> Progress {
        let Task::Sending { body, pending } = &mut self.task else {
            return Progress::Done;
        };
        loop {
            if out.len() >= OUTPUT_HIGH {
                return Progress::OutputFull;
            }
            if let Some((data, end)) = pending {
                let room = self
                    .send_window
                    .min(peer.conn_window)
                    .min(peer.max_frame as i64);
                if room <= 0 && !data.is_empty() {
                    self.stalled_since.get_or_insert_with(Instant::now);
                    return if peer.conn_window <= 0 {
                        Progress::ConnBlocked
                    } else {
                        Progress::Waiting
                    };
                }
                let n = data.len().min(room.max(0) as usize);
                let chunk = data.split_to(n);
                let last = data.is_empty() && *end;
                self.stalled_since = None;
                out.data(id, chunk, last);
                self.send_window -= n as i64;
                peer.conn_window -= n as i64;
                if data.is_empty() {
                    *pending = None;
                    if last {
                        self.task = Task::Done;
                        return Progress::Done;
                    }
                }
                continue;
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => *pending = Some((data, body.is_end_stream())),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            peer.headers(out, id, None, &trailers, true);
                            self.task = Task::Done;
                            return Progress::Done;
                        }
                    }
                },
                Poll::Ready(None) => *pending = Some((Bytes::new(), true)),
                Poll::Ready(Some(Err(error))) => {
                    tracing::debug!(%error, stream = id, "response body failed: resetting the stream");
                    frame::rst_stream(out.buf(), id, Reason::InternalError);
                    self.task = Task::Done;
                    return Progress::Reset;
                }
                Poll::Pending => return Progress::Waiting,
            }
        }
    }
}
