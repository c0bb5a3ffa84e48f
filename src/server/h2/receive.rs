//! What arrives on streams: HEADERS and CONTINUATION (a new request, or a request's trailers)
//! and DATA (request bodies, under flow control), and a body still arriving after its
//! response is complete.

use super::body::{BodyQueue, RequestBody};
use super::request::HeadBuilder;
use super::stream::{self, Stream};
use super::wake::StreamWaker;
use super::{
    ConnError, Connection, DISCARD_LIMIT, LIST_LIMIT_FACTOR, MAX_CONCURRENT_STREAMS, STREAM_WINDOW,
    WINDOW_CREDIT, protocol,
};
use crate::body::ProxyBody;
use crate::http2::frame::{self, Head, Reason, flag, kind};
use crate::http2::hpack::HpackError;
use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};

/// A header block arriving in CONTINUATION frames.
pub(super) struct Partial {
    stream: u32,
    end_stream: bool,
    block: BytesMut,
    frames: usize,
}

/// CONTINUATION frames allowed per header block (a flood of empty ones costs the server work
/// without growing the block).
const MAX_CONTINUATIONS: usize = 64;

impl Partial {
    /// True when `head` is the CONTINUATION this block waits for (no other frame may come
    /// between).
    pub(super) fn continued_by(&self, head: &Head) -> bool {
        head.kind == kind::CONTINUATION && head.stream == self.stream
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Connection<'_, I> {
    pub(super) fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
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
        let end = head.has(flag::END_STREAM);
        match (data.is_empty(), end) {
            (true, false) => self.calm.idle_frame()?,
            _ => self.calm.productive(1),
        }
        let Some(stream) = self.streams.get_mut(&id).filter(|s| s.recv.is_some()) else {
            // Not open for DATA: its window is the connection's to give back. Frames sent
            // before the client saw the server's reset are ignored; on any other stream they
            // break the protocol (half-closed or closed, section 6.1).
            self.recv_credit += len as usize;
            return match self.reset_by_server.contains(id) {
                true => self.calm.idle_frame(),
                false => self.reset(id, Reason::StreamClosed),
            };
        };
        let padding = len as usize - data.len();
        self.recv_credit += padding;
        stream.recv_credit += padding;
        if len > stream.recv_window {
            self.recv_credit += data.len();
            return self.reset(id, Reason::FlowControlError);
        }
        stream.recv_window -= len;
        if stream.discarded.is_some() {
            return self.discard(id, data.len(), end);
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
            return self.reset(id, Reason::ProtocolError);
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

    pub(super) fn on_headers(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
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
            super::frames::check_priority(head.stream, &block)?;
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

    pub(super) fn on_continuation(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
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
            .decode_bounded(&block, limit * LIST_LIMIT_FACTOR, |field, size| {
                fields.push(field, size)
            })
            .map_err(|error| match error {
                HpackError::ListTooLarge => protocol(
                    Reason::EnhanceYourCalm,
                    "header list far over max_header_bytes",
                ),
                _ => protocol(Reason::CompressionError, "bad header block"),
            })?;
        if id <= self.last_stream {
            if self.streams.contains_key(&id) {
                return self.on_trailers(id, fields, end_stream);
            }
            // Headers the client sent before it saw the server's reset are ignored; on any
            // other closed stream, or one lower than a stream already opened, they break the
            // protocol (sections 5.1 and 5.1.1).
            return match self.reset_by_server.contains(id) {
                true => self.calm.idle_frame(),
                false => Err(protocol(
                    Reason::ProtocolError,
                    "HEADERS on a closed stream",
                )),
            };
        }
        self.last_stream = id;
        if self.goaway.is_some_and(|last| id > last) {
            return Ok(());
        }
        if self.streams.len() >= MAX_CONCURRENT_STREAMS {
            self.ctx.proxy.metrics().http2_stream_refused();
            return self.reset(id, Reason::RefusedStream);
        }
        self.calm.productive(1);
        // A header list over the limit is answered 431 (what was kept of it is incomplete).
        let request = match fields.too_large() {
            true => None,
            false => match fields.finish() {
                Ok(request) => Some(request),
                Err(_) => return self.reset(id, Reason::ProtocolError),
            },
        };
        let declared = request
            .as_ref()
            .and_then(|r| r.headers().get(http::header::CONTENT_LENGTH));
        let length = match declared {
            Some(value) => match crate::http1::content_length(value.as_bytes()) {
                Some(length) => Some(length),
                None => return self.reset(id, Reason::ProtocolError),
            },
            None => None,
        };
        if end_stream && length.is_some_and(|length| length > 0) {
            return self.reset(id, Reason::ProtocolError);
        }
        let wake = StreamWaker::new(id, &self.ready);
        let expects_continue = request.as_ref().is_some_and(|r| {
            r.headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        });
        let (body, recv) = match end_stream {
            true => (ProxyBody::Empty, None),
            false => {
                let queue = BodyQueue::new(wake.clone(), expects_continue);
                let body = ProxyBody::Http2(Box::new(RequestBody::new(queue.clone(), length)));
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
    fn discard(&mut self, id: u32, len: usize, end: bool) -> Result<(), ConnError> {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let discarded = stream.discarded.get_or_insert(0);
        *discarded += len;
        self.recv_credit += len;
        stream.recv_credit += len;
        if end {
            self.remove(id);
        } else if *discarded > DISCARD_LIMIT {
            return self.reset(id, Reason::NoError);
        } else {
            self.credit_stream(id);
        }
        Ok(())
    }

    /// Sends the stream's WINDOW_UPDATE once enough of its body was read.
    pub(super) fn credit_stream(&mut self, id: u32) {
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
    fn on_trailers(
        &mut self,
        id: u32,
        fields: HeadBuilder,
        end_stream: bool,
    ) -> Result<(), ConnError> {
        let Some(recv) = self.streams.get_mut(&id).and_then(|s| s.recv.take()) else {
            // The client had ended its side already (half-closed).
            return self.reset(id, Reason::StreamClosed);
        };
        let discarding = self.streams.get(&id).is_some_and(|s| s.discarded.is_some());
        match fields.finish_trailers() {
            Ok(_) if end_stream && discarding => self.remove(id),
            Ok(trailers) if end_stream => {
                recv.end(Some(trailers));
                self.again.push(id);
            }
            // Resetting cancels the body and credits what it owed (`remove`).
            _ => return self.reset(id, Reason::ProtocolError),
        }
        Ok(())
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
