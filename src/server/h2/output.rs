//! What the connection writes: frames gathered into one buffer, with large DATA payloads queued
//! beside it as they are (not copied), and written with vectored writes.

use crate::http2::connection_specific;
use crate::http2::frame::{self, flag, kind};
use crate::http2::hpack::encoder;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// DATA payloads up to this size are copied into the frame buffer; larger ones are queued.
const COPY_AT_MOST: usize = 4096;
/// Slices per vectored write.
const MAX_SLICES: usize = 32;

/// The frames waiting to be written.
#[derive(Default)]
pub struct Output {
    /// Frames being gathered (after everything in `queue`).
    buf: BytesMut,
    /// Earlier bytes, in order.
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Block scratch for header blocks that need CONTINUATION frames.
    block: BytesMut,
    /// DATA frames with bytes written since [`take_data_frames`](Self::take_data_frames).
    data_frames: usize,
}

impl Output {
    /// The buffer control frames are written into.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.queued + self.buf.len()
    }

    /// True when everything has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// DATA frames with bytes written since the last call.
    pub fn take_data_frames(&mut self) -> usize {
        std::mem::take(&mut self.data_frames)
    }

    /// A DATA frame.
    pub fn data(&mut self, stream: u32, data: Bytes, end: bool) {
        let flags = if end { flag::END_STREAM } else { 0 };
        self.data_frames += usize::from(!data.is_empty());
        frame::head(&mut self.buf, data.len(), kind::DATA, flags, stream);
        if data.len() <= COPY_AT_MOST {
            self.buf.extend_from_slice(&data);
        } else {
            let gathered = self.buf.split().freeze();
            self.queued += gathered.len() + data.len();
            self.queue.push_back(gathered);
            self.queue.push_back(data);
        }
    }

    /// A header block (a response head when `status` is given, else trailers) in HEADERS and,
    /// past `max_frame`, CONTINUATION frames. Connection-specific fields are left out (HTTP/2
    /// has no such fields); `size_update` is a table size change to announce first.
    pub fn headers(
        &mut self,
        stream: u32,
        status: Option<StatusCode>,
        fields: &HeaderMap,
        end: bool,
        max_frame: usize,
        size_update: Option<usize>,
    ) {
        let start = self.buf.len();
        frame::head(&mut self.buf, 0, kind::HEADERS, 0, stream);
        if let Some(size) = size_update {
            encoder::size_update(size, &mut self.buf);
        }
        if let Some(status) = status {
            encoder::status(status, &mut self.buf);
        }
        for (name, value) in fields {
            if !connection_specific(name) {
                encoder::field(name, value, &mut self.buf);
            }
        }
        let final_head = status.is_some_and(|status| !status.is_informational());
        if final_head && !fields.contains_key(header::DATE) {
            encoder::field(&header::DATE, &crate::http1::date::now(), &mut self.buf);
        }
        let len = self.buf.len() - start - frame::HEADER_LEN;
        let end_flag = if end { flag::END_STREAM } else { 0 };
        if len <= max_frame {
            let head = &mut self.buf[start..start + frame::HEADER_LEN];
            head[..3].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
            head[4] = end_flag | flag::END_HEADERS;
            return;
        }
        // Too long for one frame: split the block.
        self.block.clear();
        self.block
            .extend_from_slice(&self.buf[start + frame::HEADER_LEN..]);
        self.buf.truncate(start);
        let mut pieces = self.block.chunks(max_frame).peekable();
        let mut first = true;
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let (kind, mut flags) = if first {
                (kind::HEADERS, end_flag)
            } else {
                (kind::CONTINUATION, 0)
            };
            if last {
                flags |= flag::END_HEADERS;
            }
            frame::head(&mut self.buf, piece.len(), kind, flags, stream);
            self.buf.extend_from_slice(piece);
            first = false;
        }
    }

    /// Writes as much as the socket takes; ready once everything is written and flushed (TLS
    /// keeps what the socket did not take in its own buffer until flushed).
    pub fn poll_flush<I: AsyncWrite + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.queue.is_empty() {
                if self.buf.is_empty() {
                    return Pin::new(&mut *io).poll_flush(cx);
                }
                let n = std::task::ready!(Pin::new(&mut *io).poll_write(cx, &self.buf))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.buf.advance(n);
                if self.buf.is_empty() {
                    self.buf.clear();
                }
                continue;
            }
            if !self.buf.is_empty() {
                let gathered = self.buf.split().freeze();
                self.queued += gathered.len();
                self.queue.push_back(gathered);
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, bytes) in slices.iter_mut().zip(&self.queue) {
                *slot = IoSlice::new(bytes);
                count += 1;
            }
            let written =
                std::task::ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.queued -= written;
            let mut left = written;
            while left > 0 {
                let front = &mut self.queue[0];
                if front.len() <= left {
                    left -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::Head;

    #[test]
    fn long_header_blocks_continue_and_big_data_is_not_copied() {
        let mut out = Output::default();
        let mut fields = HeaderMap::new();
        fields.insert("x-long", "v".repeat(100).parse().unwrap());
        fields.insert(header::CONNECTION, "close".parse().unwrap());
        out.headers(1, Some(StatusCode::OK), &fields, false, 50, None);
        let big = Bytes::from(vec![7u8; 10_000]);
        out.data(1, big.clone(), true);
        assert_eq!(out.queue.back().unwrap().as_ptr(), big.as_ptr());

        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut all = Vec::new();
        let mut writer = VecWriter(&mut all);
        assert!(out.poll_flush(&mut writer, &mut cx).is_ready());
        assert!(out.is_empty());

        let mut frames = Vec::new();
        let mut at = 0;
        while at < all.len() {
            let head = Head::parse(&all[at..]);
            frames.push((head.kind, head.flags, head.len));
            at += frame::HEADER_LEN + head.len;
        }
        let block_len: usize = frames
            .iter()
            .filter(|f| f.0 != kind::DATA)
            .map(|f| f.2)
            .sum();
        assert!(frames.len() >= 4, "{frames:?}");
        assert_eq!(frames[0].0, kind::HEADERS);
        assert_eq!(frames[0].1 & flag::END_HEADERS, 0);
        assert_eq!(frames[frames.len() - 2].1, flag::END_HEADERS);
        assert_eq!(
            frames.last().unwrap(),
            &(kind::DATA, flag::END_STREAM, 10_000)
        );
        // :status, x-long (literal name) and date; no connection field.
        assert!(block_len > 100 && block_len < 160, "{block_len}");
    }

    struct VecWriter<'a>(&'a mut Vec<u8>);

    impl AsyncWrite for VecWriter<'_> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
