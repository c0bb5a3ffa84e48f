//! The hand-written HTTP/2 server (RFC 9113), for h2c and TLS with ALPN `h2`. One task per
//! connection: frames are read and answered here (this file: the connection's loop and its
//! streams' bookkeeping; `frames`: what each frame does; `receive`: requests and their bodies
//! arriving), each request's handling and response body are polled here too (`stream`, and
//! `wake`: a waker per stream), responses are encoded without touching the client's HPACK table
//! and written with gathered writes (`output`); `keepalive` finds dead clients, `deadlines`
//! holds the other clocks, `calm` the budgets, `closed` the streams the server reset.
//!
//! Why: hyper's HTTP/2 server (the `h2` crate, a task per stream, a lock shared by the
//! connection and its streams, Huffman-coding every response field) was two thirds of the
//! router's instructions per HTTP/2 request.
//!
//! Limits: at most [`MAX_CONCURRENT_STREAMS`] streams at once (more are refused with
//! `REFUSED_STREAM`); header lists bounded by `max_header_bytes` (431 past it, the connection
//! closed past [`LIST_LIMIT_FACTOR`] times it, or with a header block not finished within
//! `header_read_timeout`); request bodies bounded by the flow-control windows below, small
//! DATA payloads copied out of the read buffer so that memory follows the bytes; resets and
//! frames that get nothing done limited per connection (`calm`, `ENHANCE_YOUR_CALM`); a
//! response stalled on the client's window for `send_timeout` reset (`deadlines`).

mod body;
mod calm;
mod closed;
mod deadlines;
mod frames;
mod keepalive;
mod output;
mod receive;
mod request;
mod stream;
mod wake;

use super::ConnState;
use super::connection::ConnContext;
use crate::http2::frame::{self, Head, Reason, setting};
use crate::http2::hpack::Decoder;
use crate::proxy::ClientConn;
use bytes::{Buf, Bytes, BytesMut};
use calm::Calm;
use closed::ResetByServer;
use deadlines::Deadline;
use keepalive::Keepalive;
use output::Output;
use receive::Partial;
use rustc_hash::FxHashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
#[cfg(fuzzing)]
use std::time::Duration;
use stream::{Peer, Progress, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use wake::ReadyQueue;

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
/// A header list larger than `max_header_bytes` times this ends the connection (between the
/// two it is answered 431): decoding it costs the server far more than the client sent.
pub const LIST_LIMIT_FACTOR: usize = 2;
/// Vectors of stream ids longer than this are let go when the connection goes idle.
const KEEP_IDS: usize = 64;
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
    calm: Calm,
    reset_by_server: ResetByServer,
    keepalive: Keepalive,
    /// A header block (or the preface) is arriving: it must be complete by this deadline.
    head_deadline: Deadline,
    /// Some stream's response waits for window: the earliest time one may be given up.
    stall_deadline: Deadline,
    error: Option<ConnError>,
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
            calm: Calm::new(),
            reset_by_server: ResetByServer::default(),
            keepalive: Keepalive::new(),
            head_deadline: Deadline::default(),
            stall_deadline: Deadline::default(),
            error: None,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.ready.start_polling(cx.waker());
        for _ in 0..ROUNDS {
            // Stopping, idle long enough (`drive` marks the connection for parking), or
            // draining once a stream was served (a new connection gets one answer first).
            let lifecycle = &self.ctx.lifecycle;
            let leaving = lifecycle.is_stopping()
                || self.state.is_parking()
                || (!lifecycle.is_running() && self.last_stream > 0);
            if self.goaway.is_none() && leaving {
                self.go_away(Reason::NoError);
            }
            let mut busy = false;
            let reading = self.error.is_none() && !self.read_closed;
            let output_full = self.out.len() >= stream::OUTPUT_HIGH;
            if reading && !output_full {
                match self.poll_frames(cx) {
                    Ok(progress) => busy |= progress,
                    Err(error) => self.fail(error),
                }
            }
            busy |= self.run_streams();
            // A client's WINDOW_UPDATEs and PINGs follow the data it is sent (two per frame:
            // the stream's window and the connection's).
            self.calm.productive(2 * self.out.take_data_frames());
            if let Err(error) = self.poll_deadlines(cx) {
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
            // The socket was not read this pass because the output was full; if the flush
            // emptied it, nothing else would wake the task to read: go round again.
            busy |= reading && output_full && self.out.len() < stream::OUTPUT_HIGH;
            if self.out.len() < stream::OUTPUT_HIGH / 2 && !self.out_blocked.is_empty() {
                self.again.append(&mut self.out_blocked);
                busy = true;
            }
            if self.finished() {
                self.ready.stop_polling();
                return Poll::Ready(self.error.take().map_or(Ok(()), Err));
            }
            if !busy && self.again.is_empty() && self.ready.stop_polling() {
                // Going to sleep with no stream: an idle connection keeps no read buffer or
                // stream map (most of its memory otherwise; the last stream often ends after
                // the last read, so a pending read is not the place to check).
                if self.read.is_empty() && self.streams.is_empty() {
                    self.read = BytesMut::new();
                    self.streams = FxHashMap::default();
                    for ids in [
                        &mut self.again,
                        &mut self.polling,
                        &mut self.conn_blocked,
                        &mut self.out_blocked,
                    ] {
                        if ids.capacity() > KEEP_IDS {
                            *ids = Vec::new();
                        }
                    }
                }
                return Poll::Pending;
            }
        }
        self.ready.stop_polling();
        cx.waker().wake_by_ref();
        Poll::Pending
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
                Poll::Ready(Ok(_)) => self.keepalive.heard(),
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

    /// Polls the streams that were woken or have news; true if there were any.
    fn run_streams(&mut self) -> bool {
        self.ready.take(&mut self.again);
        if self.again.is_empty() {
            return false;
        }
        let mut ids = std::mem::take(&mut self.polling);
        std::mem::swap(&mut ids, &mut self.again);
        // A stream queued by several frames (a SETTINGS frame, WINDOW_UPDATEs) is polled once.
        if ids.len() > 1 {
            ids.sort_unstable();
            ids.dedup();
        }
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
        stream.answer_continue(id, &mut self.out, &mut self.peer);
        let progress = stream.poll(id, &mut self.out, &mut self.peer);
        if let Some(since) = stream.stalled_since {
            self.stall_deadline
                .arm_if_unset(since + self.ctx.settings.send_timeout);
        }
        match progress {
            Progress::Waiting => {}
            Progress::ConnBlocked => push_once(&mut self.conn_blocked, id),
            Progress::OutputFull => push_once(&mut self.out_blocked, id),
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

    /// Resets stream `id` (open or not yet) and forgets it; the reset counts against the
    /// client's budget (it was the client's doing: a broken rule, a stream too many, a response
    /// it would not take).
    fn reset(&mut self, id: u32, reason: Reason) -> Result<(), ConnError> {
        frame::rst_stream(self.out.buf(), id, reason);
        self.remove(id);
        self.reset_by_server.add(id);
        self.count_reset()
    }

    /// Counts a stream reset the client caused against its connection's budget and its
    /// address's (across its connections).
    fn count_reset(&mut self) -> Result<(), ConnError> {
        self.calm.reset()?;
        match self
            .ctx
            .settings
            .admission
            .reset_by(self.client.peer().ip())
        {
            true => Ok(()),
            false => Err(protocol(
                Reason::EnhanceYourCalm,
                "too many stream resets from this address",
            )),
        }
    }

    /// Forgets stream `id`: its handling and response are dropped (cancelling the upstream
    /// exchange), its unread request body goes back to the connection's window.
    fn remove(&mut self, id: u32) {
        if let Some(mut stream) = self.streams.remove(&id) {
            self.recv_credit += stream.cancel_body();
        }
    }

    fn cancel_all(&mut self) {
        for (_, mut stream) in self.streams.drain() {
            stream.cancel_body();
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
            if reason != Reason::NoError {
                self.ctx.proxy.metrics().http2_connection_error();
            }
        }
        self.cancel_all();
        self.error = Some(error);
    }
}

/// Adds `id` to a list of blocked streams unless it is there already (a stream is woken again
/// by every WINDOW_UPDATE while it stays blocked).
fn push_once(ids: &mut Vec<u32>, id: u32) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// Fuzzing entry (`cargo fuzz`, built with `--cfg fuzzing`): serves `input` as what a client
/// sends after the preface (then the end of its stream), with `ctx` (a proxy without routes
/// answers every request 404), until the connection ends.
#[cfg(fuzzing)]
pub fn fuzz_connection(input: &[u8], ctx: &ConnContext) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let mut sent = frame::PREFACE.to_vec();
        sent.extend_from_slice(input);
        tokio::spawn(async move {
            let _ = to_server.write_all(&sent).await;
            let _ = to_server.shutdown().await;
        });
        tokio::spawn(async move {
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(from_server.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let state = ConnState::new(true);
        let guards = (ctx.lifecycle.connection(), ctx.lifecycle.connection());
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let client = Arc::new(ClientConn::new(peer, false, guards));
        let serving = serve(server, &state, &client, ctx);
        let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    });
}
