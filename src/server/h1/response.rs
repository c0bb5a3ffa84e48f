//! Writing a response as HTTP/1.1: status line, the headers as they are (names lower-case),
//! `Date` when the response has none, framing of the router's choosing (`Content-Length` when
//! the body's length is known, chunked otherwise, none for bodiless responses), then the body as
//! it arrives. Small pieces are gathered into one write; a body frame that is not ready yet
//! sends what is gathered first, and so does a gathering that reaches [`FLUSH_AT`] (a backend
//! streaming small chunks faster than the client reads must not pile its whole response up
//! here).

use crate::body::ProxyBody;
use crate::http1::lines::{fields, line};
use bytes::Bytes;
use http::header::DATE;
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Body pieces up to this size are copied into the write buffer; larger ones are written from
/// where they are.
const COPY_BELOW: usize = 8 * 1024;
/// Gathered bytes are written once they reach this much.
pub const FLUSH_AT: usize = 64 * 1024;

/// What the request asked of its response.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// A `HEAD` request: headers only.
    pub head: bool,
    /// The client accepts trailers on a chunked body.
    pub trailers: bool,
    /// The connection closes after this response (`Connection: close` is sent).
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A body that ended before its Content-Length, or failed.
fn body_failed(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::other(error)
}

/// Writes `response` to `io` (using `out` as the write buffer); an error means the connection
/// must close (the client got an incomplete response).
pub async fn write<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    asked: Asked,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let framing = if asked.head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::None
    } else {
        match body.size_hint().exact() {
            Some(len) => Framing::Length(len),
            None => Framing::Chunked,
        }
    };
    out.clear();
    head(out, status, &parts.headers, framing, asked.close);
    match framing {
        Framing::None => {}
        Framing::Length(len) => {
            let mut left = len;
            while let Some(frame) = next_frame(io, out, &mut body).await? {
                if let Ok(data) = frame.into_data() {
                    left = left
                        .checked_sub(data.len() as u64)
                        .ok_or_else(|| body_failed("body longer than its length"))?;
                    put(io, out, &data, b"").await?;
                }
            }
            if left != 0 {
                return Err(body_failed("body ended before its length"));
            }
        }
        Framing::Chunked => {
            let mut trailers = None;
            while let Some(frame) = next_frame(io, out, &mut body).await? {
                match frame.into_data() {
                    Ok(data) if !data.is_empty() => {
                        chunk_size(out, data.len());
                        put(io, out, &data, b"\r\n").await?;
                    }
                    Ok(_) => {}
                    Err(frame) => trailers = frame.into_trailers().ok(),
                }
            }
            out.extend_from_slice(b"0\r\n");
            if let Some(trailers) = trailers.filter(|_| asked.trailers) {
                fields(out, &trailers, false);
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    crate::http1::fields::recycle(parts.headers);
    io.write_all(out).await?;
    out.clear();
    io.flush().await
}

fn head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap, framing: Framing, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    fields(out, headers, framing != Framing::None);
    if !headers.contains_key(DATE) {
        line(out, b"date", crate::http1::date::now().as_bytes());
    }
    match framing {
        Framing::None => {}
        Framing::Length(len) => line(
            out,
            b"content-length",
            itoa::Buffer::new().format(len).as_bytes(),
        ),
        Framing::Chunked => line(out, b"transfer-encoding", b"chunked"),
    }
    if close {
        line(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

fn chunk_size(out: &mut Vec<u8>, len: usize) {
    let mut digits = [0u8; 16];
    let (mut at, mut left) = (digits.len(), len);
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[left & 15];
        left >>= 4;
        if left == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// The next body frame; when it is not ready, what is gathered in `out` is written first.
async fn next_frame<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    body: &mut ProxyBody,
) -> io::Result<Option<Frame<Bytes>>> {
    let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await;
    let frame = match polled {
        Poll::Ready(frame) => frame,
        Poll::Pending => {
            if !out.is_empty() {
                io.write_all(out).await?;
                out.clear();
                io.flush().await?;
            }
            poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        }
    };
    frame.transpose().map_err(body_failed)
}

/// Adds `data` then `suffix` after what `out` gathered: copied when small, else written at once
/// together with `out` in one vectored write.
async fn put<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    data: &[u8],
    suffix: &[u8],
) -> io::Result<()> {
    if data.len() < COPY_BELOW {
        out.extend_from_slice(data);
        out.extend_from_slice(suffix);
        if out.len() >= FLUSH_AT {
            io.write_all(out).await?;
            out.clear();
        }
        return Ok(());
    }
    let mut slices = [IoSlice::new(out), IoSlice::new(data), IoSlice::new(suffix)];
    let mut slices = &mut slices[..];
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = io.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    out.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn written(response: Response<ProxyBody>, asked: Asked) -> String {
        let mut io = Vec::new();
        write(&mut io, &mut Vec::new(), response, asked)
            .await
            .unwrap();
        String::from_utf8(io).unwrap()
    }

    const PLAIN: Asked = Asked {
        head: false,
        trailers: false,
        close: false,
    };

    #[tokio::test]
    async fn length_framing_replaces_the_header_and_adds_a_date() {
        let response = Response::builder()
            .header("x-a", "1")
            .header("content-length", "99")
            .body(ProxyBody::full("hello"))
            .unwrap();
        let text = written(
            response,
            Asked {
                close: true,
                ..PLAIN
            },
        )
        .await;
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: "),
            "{text}"
        );
        assert!(
            text.ends_with(" GMT\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn head_and_bodiless_statuses_keep_their_headers() {
        let response = Response::builder()
            .header("content-length", "5")
            .header("date", "x")
            .body(ProxyBody::Empty)
            .unwrap();
        let text = written(
            response,
            Asked {
                head: true,
                ..PLAIN
            },
        )
        .await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn big_pieces_are_written_in_place() {
        let big = vec![b'x'; 3 * COPY_BELOW];
        let response = Response::builder()
            .header("date", "x")
            .body(ProxyBody::full(big.clone()))
            .unwrap();
        let text = written(response, PLAIN).await;
        let expected = format!(
            "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: {}\r\n\r\n{}",
            big.len(),
            String::from_utf8(big).unwrap()
        );
        assert_eq!(text, expected);
    }
}
