//! A response body read straight off the backend connection by whoever polls it (the client's
//! connection task): length-delimited, chunked (trailers included) or until close. When it ends
//! cleanly on a keep-alive connection, the connection goes back to this thread's pool.

use super::{Conn, H1Error, head::Framing, poll_fill};
use crate::http1::fields::Spans;
use crate::target::Target;
use crate::upstream::pool;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// A backend response body on a hand-driven HTTP/1.1 connection.
#[derive(Debug)]
pub struct RawBody {
    conn: Option<Box<Conn>>,
    state: State,
    key: Target,
    max_idle: usize,
    keep_alive: bool,
    /// An error held back for one poll (see [`RawBody::fail`]).
    failed: Option<H1Error>,
}

impl RawBody {
    pub(super) fn new(
        conn: Box<Conn>,
        framing: Framing,
        keep_alive: bool,
        key: Target,
        max_idle: usize,
    ) -> RawBody {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = RawBody {
            conn: Some(conn),
            state,
            key,
            max_idle,
            keep_alive,
            failed: None,
        };
        if body.state == State::Done {
            body.release();
        }
        body
    }

    /// The body ended: the connection serves the next request if it can.
    fn release(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            pool::release_raw(self.key.clone(), conn, self.max_idle);
        }
    }

    /// Ends the body with `error` on the next poll, not this one: hyper's server stops at a
    /// body error without flushing what it buffered, so the client would lose the response
    /// head and the bytes before the break. Returning `Pending` once (after waking) lets it
    /// flush them first; the client then sees the head, the partial body, and the abort.
    fn fail(
        &mut self,
        error: H1Error,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.state = State::Done;
        self.conn = None;
        self.failed = Some(error);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = &mut *self;
        if let Some(error) = this.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        loop {
            let Some(conn) = this.conn.as_deref_mut() else {
                return Poll::Ready(None);
            };
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    if conn.buf.is_empty() {
                        match ready!(poll_fill(conn, cx)) {
                            Ok(0) => return this.fail(H1Error::Closed, cx),
                            Ok(_) => {}
                            Err(e) => return this.fail(H1Error::Io(e), cx),
                        }
                    }
                    let take = (conn.buf.len() as u64).min(left) as usize;
                    let data = conn.buf.split_to(take).freeze();
                    let left = left - take as u64;
                    this.state = State::Length(left);
                    if left == 0 {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose => {
                    if conn.buf.is_empty() {
                        match ready!(poll_fill(conn, cx)) {
                            Ok(0) => {
                                this.state = State::Done;
                                this.conn = None;
                                return Poll::Ready(None);
                            }
                            Ok(_) => {}
                            Err(e) => return this.fail(H1Error::Io(e), cx),
                        }
                    }
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(chunk) => match chunked(&mut conn.buf, &mut conn.spans, chunk) {
                    Ok(Step::Frame(frame, next)) => {
                        this.state = next;
                        if next == State::Done {
                            this.release();
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Ok(Step::Next(next)) => {
                        this.state = next;
                        if next == State::Done {
                            this.release();
                            return Poll::Ready(None);
                        }
                    }
                    Ok(Step::NeedMore) => match ready!(poll_fill(conn, cx)) {
                        Ok(0) => return this.fail(H1Error::Closed, cx),
                        Ok(_) => {}
                        Err(e) => return this.fail(H1Error::Io(e), cx),
                    },
                    Err(error) => return this.fail(error, cx),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done && self.failed.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(left) => SizeHint::with_exact(left),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// What one decoding step of a chunked body produced.
enum Step {
    /// A frame to hand out, and the state after it.
    Frame(Frame<Bytes>, State),
    /// Nothing to hand out; go on in this state.
    Next(State),
    /// The buffer holds too little to go on.
    NeedMore,
}

/// One step of the chunked decoder over the connection's buffer.
fn chunked(buf: &mut BytesMut, spans: &mut Spans, chunk: Chunk) -> Result<Step, H1Error> {
    match chunk {
        Chunk::Size => {
            let Some(end) = find_crlf(buf) else {
                return too_long(buf.len(), "chunk size line");
            };
            let line = &buf[..end];
            let digits = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = crate::http1::chunk_size(digits)
                .ok_or_else(|| H1Error::Protocol("bad chunk size".into()))?;
            let _ = buf.split_to(end + 2);
            Ok(Step::Next(if size == 0 {
                State::Chunked(Chunk::Trailers)
            } else {
                State::Chunked(Chunk::Data(size))
            }))
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Step::NeedMore);
            }
            let take = (buf.len() as u64).min(left) as usize;
            let data = buf.split_to(take).freeze();
            let left = left - take as u64;
            let next = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Ok(Step::Frame(Frame::data(data), State::Chunked(next)))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(Step::NeedMore);
            }
            if &buf[..2] != b"\r\n" {
                return Err(H1Error::Protocol("chunk data not followed by CRLF".into()));
            }
            let _ = buf.split_to(2);
            Ok(Step::Next(State::Chunked(Chunk::Size)))
        }
        Chunk::Trailers => {
            if buf.starts_with(b"\r\n") {
                let _ = buf.split_to(2);
                return Ok(Step::Next(State::Done));
            }
            let Some(end) = find(buf, b"\r\n\r\n") else {
                return too_long(buf.len(), "trailer section");
            };
            let section = buf.split_to(end + 4).freeze();
            let trailers = parse_trailers(&section, spans)?;
            Ok(Step::Frame(Frame::trailers(trailers), State::Done))
        }
    }
}

fn too_long(len: usize, what: &str) -> Result<Step, H1Error> {
    if len > super::head::MAX_HEAD {
        return Err(H1Error::Protocol(format!("{what} too long")));
    }
    Ok(Step::NeedMore)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    find(buf, b"\r\n")
}

/// The trailer fields, parsed like a head's (values share the section's bytes).
fn parse_trailers(section: &Bytes, spans: &mut Spans) -> Result<HeaderMap, H1Error> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let fields = match httparse::parse_headers(section, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => fields,
        _ => return Err(H1Error::Protocol("bad trailer section".into())),
    };
    spans.record(section, fields);
    spans
        .to_map(section, 0)
        .map_err(|e| H1Error::Protocol(format!("bad trailer: {e}")))
}

/// Fuzzing entry (`cargo fuzz`, built with `--cfg fuzzing`): decodes `input` as a chunked body
/// until it ends, fails or needs more.
#[cfg(fuzzing)]
pub fn fuzz_chunked(input: &[u8]) {
    let mut buf = BytesMut::from(input);
    let mut spans = Spans::new();
    let mut state = State::Chunked(Chunk::Size);
    while let State::Chunked(chunk) = state {
        state = match chunked(&mut buf, &mut spans, chunk) {
            Ok(Step::Frame(_, next) | Step::Next(next)) => next,
            Ok(Step::NeedMore) | Err(_) => return,
        };
    }
}
