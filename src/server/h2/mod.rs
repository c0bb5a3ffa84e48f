//! The hand-written HTTP/2 server (RFC 9113), for h2c and TLS with ALPN `h2`. One task per
//! connection: frames are read and answered here, each request's handling and response body are
//! polled here too (`wake`: a waker per stream), responses are encoded without touching the
//! client's HPACK table and written with gathered writes (`output`).
//!
//! Why: hyper's HTTP/2 server (the `h2` crate, a task per stream, a lock shared by the
//! connection and its streams, Huffman-coding every response field) was two thirds of the
//! router's instructions per HTTP/2 request.
//!
//! Limits: at most [`MAX_CONCURRENT_STREAMS`] streams at once (more are refused with
//! `REFUSED_STREAM`), header blocks bounded by `max_header_bytes` (431 past it, the connection
//! closed past four times it), request bodies bounded by the flow-control windows below, and a
//! client that resets streams faster than [`MAX_RESETS`] per [`RESET_PERIOD`] is sent away
//! (`ENHANCE_YOUR_CALM`, the "rapid reset" attack).

mod body;
mod output;
mod request;
mod stream;
mod wake;

pub use body::RequestBody;

use super::ConnState;
use super::connection::ConnContext;
use crate::body::ProxyBody;
use crate::http2::frame::{self, Head, Reason, flag, kind, setting};
use crate::http2::hpack::Decoder;
use crate::proxy::ClientConn;
use body::BodyQueue;
use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Response, StatusCode};
use output::Output;
use request::HeadBuilder;
use rustc_hash::FxHashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use stream::{Peer, Progress, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use wake::{ReadyQueue, StreamWaker};

/// Streams a client may have open at once.
pub const MAX_CONCURRENT_STREAMS: usize = 200;
/// The receive window of each stream (how much request body may wait unread per stream).
const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window (how much request body may wait unread in all).
const CONN_WINDOW: u32 = 1024 * 1024;
/// Read bytes are given back as window once this many have gathered.
const WINDOW_CREDIT: usize = 32 * 1024;
/// The decoder's table size (the protocol's default).
const HEADER_TABLE_SIZE: usize = 4096;
/// Bytes made room for before each read.
const READ_SIZE: usize = 16 * 1024;
/// Client resets allowed per [`RESET_PERIOD`].
pub const MAX_RESETS: u32 = 500;
/// See [`MAX_RESETS`].
pub const RESET_PERIOD: Duration = Duration::from_secs(10);
/// Request body bytes dropped after a complete response before the stream is reset.
const DISCARD_LIMIT: usize = 1024 * 1024;
/// Passes through the loop before yielding to other tasks.
const ROUNDS: usize = 32;

/// Why a connection ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed.
    #[error("client connection: {0}")]
    Io(#[from] io::Error),
    /// The client broke the protocol; it was sent a GOAWAY with `reason`.
    #[error("HTTP/2 protocol error ({reason:?}): {what}")]
    Protocol {
        /// The GOAWAY's error code.
        reason: Reason,
        /// What was wrong.
        what: &'static str,
    },
}

fn protocol(reason: Reason, what: &'static str) -> ConnError {
    ConnError::Protocol { reason, what }
}

/// Serves HTTP/2 on `io` (the client preface not yet read) until the client leaves, breaks the
/// protocol, or the router stops (then a GOAWAY, and the open streams finish first).
pub async fn serve<I>(
    io: I,
    state: &Arc<ConnState>,
    client: &Arc<ClientConn>,
    ctx: &ConnContext,
) -> Result<(), ConnError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(io, state, client, ctx);
    poll_fn(|cx| conn.poll(cx)).await
}

/// A header block arriving in CONTINUATION frames.
struct Partial {
    stream: u32,
    end_stream: bool,
    block: BytesMut,
    frames: usize,
}

/// CONTINUATION frames allowed per header block (a flood of empty ones costs the server work
/// without growing the block).
const MAX_CONTINUATIONS: usize = 64;

struct Connection<'a, I> {
    io: I,
    state: &'a Arc<ConnState>,
    client: &'a Arc<ClientConn>,
    ctx: &'a ConnContext,
    read: BytesMut,
    preface_read: bool,
    settings_seen: bool,
    read_closed: bool,
    out: Output,
    decoder: Decoder,
    peer: Peer,
    streams: FxHashMap<u32, Stream>,
    ready: Arc<ReadyQueue>,
    /// Streams to poll in this pass.
    again: Vec<u32>,
    polling: Vec<u32>,
    /// Streams waiting for the connection's send window, and for the output to drain.
    conn_blocked: Vec<u32>,
    out_blocked: Vec<u32>,
    partial: Option<Partial>,
    /// Highest stream the client opened.
    last_stream: u32,
    /// Set once a GOAWAY went out: streams above it are ignored.
    goaway: Option<u32>,
    peer_goaway: bool,
    /// What the client may still send on the connection, and what was read and not given back.
    recv_window: i64,
    recv_credit: usize,
    resets: (Instant, u32),
    keepalive: Keepalive,
    error: Option<ConnError>,
}

/// The keep-alive check, armed only while streams are open: with nothing read for a period
/// (`[server] http2_keepalive`), the client is sent a PING; if the next period passes with still
/// nothing read, the connection is taken for dead and closed (a peer that vanished without a
/// FIN would otherwise hold its streams and their backends).
struct Keepalive {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes were read since the timer last fired.
    heard: bool,
    /// A PING went out and nothing was read since.
    pinged: bool,
}

impl<'a, I: AsyncRead + AsyncWrite + Unpin> Connection<'a, I> {
    fn new(
        io: I,
        state: &'a Arc<ConnState>,
        client: &'a Arc<ClientConn>,
        ctx: &'a ConnContext,
    ) -> Self {
        let mut out = Output::default();
        let max_header = ctx.settings.max_header_bytes as u32;
        frame::settings(
            out.buf(),
            &[
                (
                    setting::MAX_CONCURRENT_STREAMS,
                    MAX_CONCURRENT_STREAMS as u32,
                ),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (setting::MAX_HEADER_LIST_SIZE, max_header),
            ],
        );
        frame::window_update(out.buf(), 0, CONN_WINDOW - frame::DEFAULT_WINDOW);
        Connection {
            io,
            state,
            client,
            ctx,
            read: BytesMut::new(),
            preface_read: false,
            settings_seen: false,
            read_closed: false,
            out,
            decoder: Decoder::new(HEADER_TABLE_SIZE),
            peer: Peer {
                max_frame: frame::DEFAULT_MAX_FRAME,
                conn_window: frame::DEFAULT_WINDOW as i64,
                initial_window: frame::DEFAULT_WINDOW as i64,
                size_update: None,
                table_size: HEADER_TABLE_SIZE,
            },
            streams: FxHashMap::default(),
            ready: Arc::new(ReadyQueue::default()),
            again: Vec::new(),
            polling: Vec::new(),
            conn_blocked: Vec::new(),
            out_blocked: Vec::new(),
            partial: None,
            last_stream: 0,
            goaway: None,
            peer_goaway: false,
            recv_window: CONN_WINDOW as i64,
            recv_credit: 0,
            resets: (Instant::now(), 0),
            keepalive: Keepalive {
                timer: None,
                heard: false,
                pinged: false,
            },
            error: None,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.ready.start_polling(cx.waker());
        for _ in 0..ROUNDS {
            if self.goaway.is_none() && self.ctx.lifecycle.is_stopping() {
                self.go_away(Reason::NoError);
            }
            let mut busy = false;
            if self.error.is_none() && !self.read_closed && self.out.len() < stream::OUTPUT_HIGH {
                match self.poll_frames(cx) {
                    Ok(progress) => busy |= progress,
                    Err(error) => self.fail(error),
                }
            }
            busy |= self.run_streams();
            if let Err(error) = self.poll_keepalive(cx) {
                self.fail(error);
            }
            self.give_back_window();
            match self.out.poll_flush(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    self.ready.stop_polling();
                    return Poll::Ready(Err(error.into()));
                }
                Poll::Pending => {}
            }
            if self.out.len() < stream::OUTPUT_HIGH / 2 && !self.out_blocked.is_empty() {
                self.again.append(&mut self.out_blocked);
                busy = true;
            }
            if self.finished() {
                self.ready.stop_polling();
                return Poll::Ready(self.error.take().map_or(Ok(()), Err));
            }
            if !busy && self.again.is_empty() && self.ready.stop_polling() {
                return Poll::Pending;
            }
        }
        self.ready.stop_polling();
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Runs the keep-alive check while streams are open.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        let keepalive = &mut self.keepalive;
        if self.streams.is_empty() || self.error.is_some() {
            keepalive.timer = None;
            return Ok(());
        }
        let period = self.ctx.settings.http2_keepalive;
        let timer = keepalive.timer.get_or_insert_with(|| {
            keepalive.heard = false;
            Box::pin(tokio::time::sleep(period))
        });
        if timer.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        if keepalive.heard {
            keepalive.pinged = false;
        } else if keepalive.pinged {
            return Err(protocol(
                Reason::NoError,
                "client silent: keep-alive PING unanswered",
            ));
        } else {
            keepalive.pinged = true;
            frame::head(self.out.buf(), 8, kind::PING, 0, 0);
            self.out.buf().extend_from_slice(b"keepaliv");
        }
        keepalive.heard = false;
        timer.as_mut().reset(tokio::time::Instant::now() + period);
        // Registers the timer again.
        let _ = timer.as_mut().poll(cx);
        Ok(())
    }

    /// True when the connection can close: an error or the client's end of the stream, or a
    /// GOAWAY either way with no stream left; and everything written.
    fn finished(&self) -> bool {
        let quiet = self.streams.is_empty() && (self.goaway.is_some() || self.peer_goaway);
        self.out.is_empty() && (self.error.is_some() || self.read_closed || quiet)
    }

    /// Reads and handles frames until the socket has no more; true if any was handled.
    fn poll_frames(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnError> {
        let mut progress = false;
        loop {
            while let Some((head, payload)) = self.next_frame()? {
                self.on_frame(head, payload)?;
                progress = true;
                if self.out.len() >= stream::OUTPUT_HIGH {
                    return Ok(true);
                }
            }
            if self.read.capacity() - self.read.len() < READ_SIZE / 4 {
                self.read.reserve(READ_SIZE);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    self.cancel_all();
                    return Ok(true);
                }
                Poll::Ready(Ok(_)) => self.keepalive.heard = true,
                Poll::Ready(Err(error)) => return Err(error.into()),
                Poll::Pending => return Ok(progress),
            }
        }
    }

    /// The next whole frame in the read buffer.
    fn next_frame(&mut self) -> Result<Option<(Head, Bytes)>, ConnError> {
        if !self.preface_read {
            let n = self.read.len().min(frame::PREFACE.len());
            if self.read[..n] != frame::PREFACE[..n] {
                return Err(protocol(Reason::ProtocolError, "bad connection preface"));
            }
            if n < frame::PREFACE.len() {
                return Ok(None);
            }
            self.read.advance(n);
            self.preface_read = true;
        }
        if self.read.len() < frame::HEADER_LEN {
            return Ok(None);
        }
        let head = Head::parse(&self.read);
        if head.len > frame::DEFAULT_MAX_FRAME {
            return Err(protocol(
                Reason::FrameSizeError,
                "frame larger than announced",
            ));
        }
        if self.read.len() < frame::HEADER_LEN + head.len {
            self.read
                .reserve(frame::HEADER_LEN + head.len - self.read.len());
            return Ok(None);
        }
        self.read.advance(frame::HEADER_LEN);
        Ok(Some((head, self.read.split_to(head.len).freeze())))
    }

    fn on_frame(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if !self.settings_seen && head.kind != kind::SETTINGS {
            return Err(protocol(
                Reason::ProtocolError,
                "first frame is not SETTINGS",
            ));
        }
        if let Some(partial) = &self.partial
            && (head.kind != kind::CONTINUATION || head.stream != partial.stream)
        {
            return Err(protocol(Reason::ProtocolError, "header block interrupted"));
        }
        match head.kind {
            kind::DATA => self.on_data(head, payload),
            kind::HEADERS => self.on_headers(head, payload),
            kind::CONTINUATION => self.on_continuation(head, payload),
            kind::PRIORITY => match (head.stream, head.len) {
                (0, _) => Err(protocol(Reason::ProtocolError, "PRIORITY on stream 0")),
                (_, 5) => Ok(()),
                _ => Err(protocol(
                    Reason::FrameSizeError,
                    "PRIORITY of the wrong size",
                )),
            },
            kind::RST_STREAM => self.on_reset(head, payload),
            kind::SETTINGS => self.on_settings(head, payload),
            kind::PUSH_PROMISE => Err(protocol(
                Reason::ProtocolError,
                "PUSH_PROMISE from a client",
            )),
            kind::PING => self.on_ping(head, payload),
            kind::GOAWAY => {
                if head.stream != 0 {
                    return Err(protocol(Reason::ProtocolError, "GOAWAY on a stream"));
                }
                self.peer_goaway = true;
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(head, payload),
            // Unknown frame types are ignored (RFC 9113 section 4.1).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "SETTINGS on a stream"));
        }
        if head.has(flag::ACK) {
            return match head.len {
                0 => Ok(()),
                _ => Err(protocol(
                    Reason::FrameSizeError,
                    "SETTINGS ack with a payload",
                )),
            };
        }
        if !head.len.is_multiple_of(6) {
            return Err(protocol(
                Reason::FrameSizeError,
                "SETTINGS of the wrong size",
            ));
        }
        self.settings_seen = true;
        for pair in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match id {
                setting::HEADER_TABLE_SIZE => {
                    let size = (value as usize).min(HEADER_TABLE_SIZE);
                    if size < self.peer.table_size {
                        self.peer.table_size = size;
                        self.peer.size_update = Some(size);
                    }
                }
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(protocol(Reason::ProtocolError, "bad SETTINGS_ENABLE_PUSH"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if value > frame::MAX_WINDOW {
                        return Err(protocol(
                            Reason::FlowControlError,
                            "initial window too large",
                        ));
                    }
                    let delta = value as i64 - self.peer.initial_window;
                    self.peer.initial_window = value as i64;
                    for (id, stream) in &mut self.streams {
                        stream.send_window += delta;
                        if stream.send_window > frame::MAX_WINDOW as i64 {
                            return Err(protocol(Reason::FlowControlError, "window too large"));
                        }
                        if delta > 0 {
                            self.again.push(*id);
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..=0xff_ffff).contains(&value) {
                        return Err(protocol(
                            Reason::ProtocolError,
                            "bad SETTINGS_MAX_FRAME_SIZE",
                        ));
                    }
                    self.peer.max_frame = value as usize;
                }
                _ => {}
            }
        }
        frame::head(self.out.buf(), 0, kind::SETTINGS, flag::ACK, 0);
        Ok(())
    }

    fn on_ping(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "PING on a stream"));
        }
        if head.len != 8 {
            return Err(protocol(Reason::FrameSizeError, "PING of the wrong size"));
        }
        if !head.has(flag::ACK) {
            frame::head(self.out.buf(), 8, kind::PING, flag::ACK, 0);
            self.out.buf().extend_from_slice(&payload);
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.len != 4 {
            return Err(protocol(
                Reason::FrameSizeError,
                "WINDOW_UPDATE of the wrong size",
            ));
        }
        let increment = (u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
            & frame::MAX_WINDOW) as i64;
        if head.stream == 0 {
            if increment == 0 {
                return Err(protocol(Reason::ProtocolError, "WINDOW_UPDATE of 0"));
            }
            self.peer.conn_window += increment;
            if self.peer.conn_window > frame::MAX_WINDOW as i64 {
                return Err(protocol(
                    Reason::FlowControlError,
                    "connection window too large",
                ));
            }
            self.again.append(&mut self.conn_blocked);
            return Ok(());
        }
        self.check_not_idle(head.stream)?;
        let Some(stream) = self.streams.get_mut(&head.stream) else {
            return Ok(());
        };
        stream.send_window += increment;
        if increment == 0 || stream.send_window > frame::MAX_WINDOW as i64 {
            let reason = match increment {
                0 => Reason::ProtocolError,
                _ => Reason::FlowControlError,
            };
            self.reset(head.stream, reason);
        } else {
            self.again.push(head.stream);
        }
        Ok(())
    }

    fn on_reset(&mut self, head: Head, _payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(protocol(Reason::ProtocolError, "RST_STREAM on stream 0"));
        }
        if head.len != 4 {
            return Err(protocol(
                Reason::FrameSizeError,
                "RST_STREAM of the wrong size",
            ));
        }
        self.check_not_idle(head.stream)?;
        if self.streams.contains_key(&head.stream) {
            self.remove(head.stream);
            let (since, count) = &mut self.resets;
            if since.elapsed() > RESET_PERIOD {
                *since = Instant::now();
                *count = 0;
            }
            *count += 1;
            if *count > MAX_RESETS {
                return Err(protocol(Reason::EnhanceYourCalm, "too many stream resets"));
            }
        }
        Ok(())
    }

    /// A frame for a stream the client has not opened yet is a protocol error.
    fn check_not_idle(&self, id: u32) -> Result<(), ConnError> {
        match id > self.last_stream {
            true => Err(protocol(Reason::ProtocolError, "frame on an idle stream")),
            false => Ok(()),
        }
    }

    fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(protocol(Reason::ProtocolError, "DATA on stream 0"));
        }
        self.check_not_idle(head.stream)?;
        let data = unpad(&head, payload)?;
        let len = head.len as i64;
        if len > self.recv_window {
            return Err(protocol(
                Reason::FlowControlError,
                "connection window exceeded",
            ));
        }
        self.recv_window -= len;
        let id = head.stream;
        let Some(stream) = self.streams.get_mut(&id).filter(|s| s.recv.is_some()) else {
            // A stream already closed: its window is the connection's to give back.
            self.recv_credit += len as usize;
            if self.streams.contains_key(&id) {
                self.reset(id, Reason::StreamClosed);
            }
            return Ok(());
        };
        let padding = len as usize - data.len();
        self.recv_credit += padding;
        stream.recv_credit += padding;
        if len > stream.recv_window {
            self.recv_credit += data.len();
            self.reset(id, Reason::FlowControlError);
            return Ok(());
        }
        stream.recv_window -= len;
        let end = head.has(flag::END_STREAM);
        if stream.discarded.is_some() {
            self.discard(id, data.len(), end);
            return Ok(());
        }
        let too_long = match &mut stream.length_left {
            Some(left) => {
                let over = data.len() as u64 > *left;
                *left = left.saturating_sub(data.len() as u64);
                over || (end && *left > 0)
            }
            None => false,
        };
        if too_long {
            self.recv_credit += data.len();
            self.reset(id, Reason::ProtocolError);
            return Ok(());
        }
        let Some(recv) = &stream.recv else {
            return Ok(());
        };
        if !data.is_empty() {
            recv.push(data);
        }
        if end {
            recv.end(None);
            stream.recv = None;
            self.again.push(id);
        }
        Ok(())
    }

    fn on_headers(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 || head.stream.is_multiple_of(2) {
            return Err(protocol(
                Reason::ProtocolError,
                "HEADERS on an invalid stream",
            ));
        }
        let mut block = unpad(&head, payload)?;
        if head.has(flag::PRIORITY) {
            if block.len() < 5 {
                return Err(protocol(
                    Reason::ProtocolError,
                    "HEADERS too short for priority",
                ));
            }
            block.advance(5);
        }
        let end_stream = head.has(flag::END_STREAM);
        if head.has(flag::END_HEADERS) {
            return self.on_block(head.stream, block, end_stream);
        }
        self.partial = Some(Partial {
            stream: head.stream,
            end_stream,
            block: BytesMut::from(&block[..]),
            frames: 0,
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        let Some(partial) = &mut self.partial else {
            return Err(protocol(
                Reason::ProtocolError,
                "CONTINUATION without HEADERS",
            ));
        };
        partial.block.extend_from_slice(&payload);
        partial.frames += 1;
        let limit = (self.ctx.settings.max_header_bytes * 4).max(64 * 1024);
        if partial.block.len() > limit || partial.frames > MAX_CONTINUATIONS {
            return Err(protocol(Reason::EnhanceYourCalm, "header block too large"));
        }
        if !head.has(flag::END_HEADERS) {
            return Ok(());
        }
        let Partial {
            stream,
            end_stream,
            block,
            ..
        } = self.partial.take().expect("checked above");
        self.on_block(stream, block.freeze(), end_stream)
    }

    /// A complete header block: a new request, or trailers of one.
    fn on_block(&mut self, id: u32, block: Bytes, end_stream: bool) -> Result<(), ConnError> {
        let limit = self.ctx.settings.max_header_bytes;
        let mut fields = HeadBuilder::new(limit, crate::proxy::ADDED_HEADERS);
        self.decoder
            .decode(&block, |field, size| fields.push(field, size))
            .map_err(|_| protocol(Reason::CompressionError, "bad header block"))?;
        if id <= self.last_stream {
            self.on_trailers(id, fields, end_stream);
            return Ok(());
        }
        self.last_stream = id;
        if self.goaway.is_some_and(|last| id > last) {
            return Ok(());
        }
        if self.streams.len() >= MAX_CONCURRENT_STREAMS {
            frame::rst_stream(self.out.buf(), id, Reason::RefusedStream);
            return Ok(());
        }
        // A header list over the limit is answered 431 (what was kept of it is incomplete).
        let request = match fields.too_large() {
            true => None,
            false => match fields.finish() {
                Ok(request) => Some(request),
                Err(_) => {
                    frame::rst_stream(self.out.buf(), id, Reason::ProtocolError);
                    return Ok(());
                }
            },
        };
        let declared = request
            .as_ref()
            .and_then(|r| r.headers().get(http::header::CONTENT_LENGTH));
        let length = match declared {
            Some(value) => match value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(length) => Some(length),
                None => {
                    frame::rst_stream(self.out.buf(), id, Reason::ProtocolError);
                    return Ok(());
                }
            },
            None => None,
        };
        if end_stream && length.is_some_and(|length| length > 0) {
            frame::rst_stream(self.out.buf(), id, Reason::ProtocolError);
            return Ok(());
        }
        let wake = StreamWaker::new(id, &self.ready);
        let (body, recv) = match end_stream {
            true => (ProxyBody::Empty, None),
            false => {
                let queue = BodyQueue::new(wake.clone());
                let body = ProxyBody::Http2(RequestBody::new(queue.clone(), length));
                (body, Some(queue))
            }
        };
        let head_only = request.as_ref().is_some_and(|r| r.method() == Method::HEAD);
        let handling: stream::Handling = match request {
            None => {
                let mut response = Response::new(ProxyBody::Empty);
                *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                Box::pin(std::future::ready(response))
            }
            Some(request) => {
                let request = request.map(|()| body);
                let (proxy, client) = (self.ctx.proxy.clone(), self.client.clone());
                let active = self.state.start_request();
                Box::pin(async move { proxy.handle(request, client, active).await })
            }
        };
        let windows = (STREAM_WINDOW as i64, self.peer.initial_window);
        let stream = Stream::new(wake, handling, recv, windows, length, head_only);
        self.streams.insert(id, stream);
        self.again.push(id);
        Ok(())
    }

    /// DATA after the response was complete: dropped, its window given back at once, so the
    /// client can finish sending (an early answer, such as a 413, reaches clients that read
    /// only once their upload is done). Past [`DISCARD_LIMIT`] the stream is reset instead.
    fn discard(&mut self, id: u32, len: usize, end: bool) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let discarded = stream.discarded.get_or_insert(0);
        *discarded += len;
        self.recv_credit += len;
        stream.recv_credit += len;
        if end {
            self.remove(id);
        } else if *discarded > DISCARD_LIMIT {
            self.reset(id, Reason::NoError);
        } else {
            self.credit_stream(id);
        }
    }

    /// Sends the stream's WINDOW_UPDATE once enough of its body was read.
    fn credit_stream(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id)
            && stream.recv.is_some()
            && stream.recv_credit >= WINDOW_CREDIT
        {
            frame::window_update(self.out.buf(), id, stream.recv_credit as u32);
            stream.recv_window += stream.recv_credit as i64;
            stream.recv_credit = 0;
        }
    }

    /// A header block on an open stream: the request's trailers.
    fn on_trailers(&mut self, id: u32, fields: HeadBuilder, end_stream: bool) {
        let Some(recv) = self.streams.get_mut(&id).and_then(|s| s.recv.take()) else {
            if self.streams.contains_key(&id) {
                self.reset(id, Reason::StreamClosed);
            }
            return;
        };
        let discarding = self.streams.get(&id).is_some_and(|s| s.discarded.is_some());
        match fields.finish_trailers() {
            Ok(_) if end_stream && discarding => self.remove(id),
            Ok(trailers) if end_stream => {
                recv.end(Some(trailers));
                self.again.push(id);
            }
            _ => {
                self.recv_credit += recv.cancel();
                self.reset(id, Reason::ProtocolError);
            }
        }
    }

    /// Polls the streams that were woken or have news; true if there were any.
    fn run_streams(&mut self) -> bool {
        self.ready.take(&mut self.again);
        if self.again.is_empty() {
            return false;
        }
        let mut ids = std::mem::take(&mut self.polling);
        std::mem::swap(&mut ids, &mut self.again);
        for id in ids.drain(..) {
            self.poll_stream(id);
        }
        self.polling = ids;
        true
    }

    fn poll_stream(&mut self, id: u32) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.unqueue();
        let consumed = stream.take_consumed();
        self.recv_credit += consumed;
        stream.recv_credit += consumed;
        let progress = stream.poll(id, &mut self.out, &mut self.peer);
        match progress {
            Progress::Waiting => {}
            Progress::ConnBlocked => self.conn_blocked.push(id),
            Progress::OutputFull => self.out_blocked.push(id),
            Progress::Done => match &stream.recv {
                None => return self.remove(id),
                // The response is complete and the client is still sending: what it sends
                // from now on is dropped (see `discard`).
                Some(recv) if stream.discarded.is_none() => {
                    let unread = recv.cancel();
                    self.recv_credit += unread;
                    stream.recv_credit += unread;
                    stream.discarded = Some(0);
                }
                Some(_) => {}
            },
            Progress::Reset => return self.remove(id),
        }
        self.credit_stream(id);
    }

    /// Sends the connection's WINDOW_UPDATE once enough was read.
    fn give_back_window(&mut self) {
        if self.recv_credit >= WINDOW_CREDIT && self.error.is_none() {
            frame::window_update(self.out.buf(), 0, self.recv_credit as u32);
            self.recv_window += self.recv_credit as i64;
            self.recv_credit = 0;
        }
    }

    /// Resets stream `id` and forgets it.
    fn reset(&mut self, id: u32, reason: Reason) {
        frame::rst_stream(self.out.buf(), id, reason);
        self.remove(id);
    }

    /// Forgets stream `id`: its handling and response are dropped (cancelling the upstream
    /// exchange), its unread request body goes back to the connection's window.
    fn remove(&mut self, id: u32) {
        if let Some(stream) = self.streams.remove(&id)
            && let Some(recv) = &stream.recv
        {
            self.recv_credit += recv.cancel();
        }
    }

    fn cancel_all(&mut self) {
        for (_, stream) in self.streams.drain() {
            if let Some(recv) = &stream.recv {
                recv.cancel();
            }
        }
    }

    fn go_away(&mut self, reason: Reason) {
        frame::goaway(self.out.buf(), self.last_stream, reason);
        self.goaway = Some(self.last_stream);
    }

    /// A connection error: GOAWAY with its code, every stream dropped; the connection closes
    /// once that is written.
    fn fail(&mut self, error: ConnError) {
        if let ConnError::Protocol { reason, .. } = &error {
            let reason = *reason;
            self.go_away(reason);
        }
        self.cancel_all();
        self.error = Some(error);
    }
}

/// The payload without its padding (`PADDED` flag).
fn unpad(head: &Head, mut payload: Bytes) -> Result<Bytes, ConnError> {
    if !head.has(flag::PADDED) {
        return Ok(payload);
    }
    let Some(&pad) = payload.first() else {
        return Err(protocol(
            Reason::ProtocolError,
            "padded frame without a pad length",
        ));
    };
    if pad as usize >= payload.len() {
        return Err(protocol(
            Reason::ProtocolError,
            "padding longer than the frame",
        ));
    }
    payload.truncate(payload.len() - pad as usize);
    payload.advance(1);
    Ok(payload)
}
