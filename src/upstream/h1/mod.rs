//! A hand-written HTTP/1.1 client for the common case: a request whose body is empty or
//! already in memory, and no upgrade. It runs in the request's own task: the request is written
//! with one write, the response head is parsed with httparse, and the body is read off the
//! socket by whoever polls it (`body`). hyper's client spends a second task, a channel and a
//! oneshot per request on the same exchange; the profile showed that as the largest share of
//! the router's instructions (`README.md`, Performance). Streaming request bodies and upgrades
//! still go through hyper.

mod body;
mod encode;
mod head;

pub use body::RawBody;
#[cfg(fuzzing)]
pub use body::fuzz_chunked;
#[cfg(fuzzing)]
pub use head::fuzz_response_head;

use super::io::Io;
use crate::http1::fields::Spans;
use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// Why an exchange on a hand-driven connection failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The backend closed the connection before the message was complete.
    #[error("connection closed before the response was complete")]
    Closed,
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The backend's bytes are not valid HTTP/1.1.
    #[error("{0}")]
    Protocol(String),
}

/// An HTTP/1.1 connection to a backend, with its read buffer.
#[derive(Debug)]
pub struct Conn {
    io: Io,
    buf: BytesMut,
    /// Where the fields of the response head being parsed sit (kept here: too big to move).
    spans: Spans,
    out: Vec<u8>,
    /// How much to ask the socket for: doubles while reads fill it (large bodies), halves
    /// when they do not, between `READ` and `MAX_READ` (hyper's adaptive strategy).
    read_size: usize,
}

/// Initial read buffer; grows while reads fill it (large bodies), up to `MAX_READ`.
const READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;

impl Conn {
    /// A connection over `io`.
    pub fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::with_capacity(READ),
            spans: Spans::new(),
            out: Vec::new(),
            read_size: READ,
        }
    }

    /// True when the backend closed this idle connection or sent something unasked. Looks
    /// without waiting (a no-op waker): no system call unless the socket was flagged readable.
    pub fn is_stale(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        poll_fill(self, &mut cx).is_ready()
    }
}

/// Reads what the socket has into the connection's buffer; `Ok(0)` at end of stream.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    conn.buf.reserve(conn.read_size);
    let asked = conn.buf.capacity() - conn.buf.len();
    let read = std::task::ready!(tokio_util::io::poll_read_buf(
        Pin::new(&mut conn.io),
        cx,
        &mut conn.buf
    ));
    if let Ok(n) = read {
        conn.read_size = if n >= asked {
            (conn.read_size * 2).min(MAX_READ)
        } else if n < conn.read_size / 2 {
            (conn.read_size / 2).max(READ)
        } else {
            conn.read_size
        };
    }
    Poll::Ready(read)
}

/// A failed exchange; `unsent` when not one byte of the request reached the socket.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: H1Error,
    /// No request byte was written, so the request may go anywhere else.
    pub unsent: bool,
}

/// Sends `req` (with `body`, its bytes when it has any in memory) on `conn` and reads the
/// response head. The response body reads the rest from the connection and gives the
/// connection back to the pool at its end. The request stays the caller's (to resend).
pub async fn send<B>(
    mut conn: Box<Conn>,
    req: &Request<B>,
    body: Option<&Bytes>,
    key: super::Target,
    max_idle: usize,
) -> Result<Response<RawBody>, Failure> {
    let sent = |error: H1Error| Failure {
        error,
        unsent: false,
    };
    conn.out.clear();
    encode::request(req, body, &mut conn.out);
    let mut written = 0;
    while written < conn.out.len() {
        let Conn { io, out, .. } = &mut *conn;
        let result =
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, &out[written..])).await;
        match result {
            Ok(n) if n > 0 => written += n,
            Ok(_) => {
                return Err(Failure {
                    error: H1Error::Closed,
                    unsent: written == 0,
                });
            }
            Err(error) => {
                return Err(Failure {
                    error: H1Error::Io(error),
                    unsent: written == 0,
                });
            }
        }
    }
    let head = loop {
        let Conn { buf, spans, .. } = &mut *conn;
        match head::parse(buf, req.method(), spans).map_err(sent)? {
            Some(head) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                return Err(sent(H1Error::Protocol(
                    "101 Switching Protocols to a request that asked for no upgrade".into(),
                )));
            }
            Some(head) if head.status.is_informational() => continue,
            Some(head) => break head,
            None => {}
        }
        match std::future::poll_fn(|cx| poll_fill(&mut conn, cx)).await {
            Ok(0) => return Err(sent(H1Error::Closed)),
            Ok(_) => {}
            Err(error) => return Err(sent(H1Error::Io(error))),
        }
    };
    let body = RawBody::new(conn, head.framing, head.keep_alive, key, max_idle);
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamProtocol;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that answers one request with `reply`, one byte at a time.
    async fn trickling_backend(reply: &'static [u8]) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            for byte in reply {
                stream.write_all(&[*byte]).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
        });
        addr
    }

    async fn exchange(reply: &'static [u8]) -> (Response<RawBody>, Bytes, Option<http::HeaderMap>) {
        let addr = trickling_backend(reply).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let conn = Box::new(Conn::new(Io::Tcp(tcp)));
        let key = crate::target::Target::plain(addr, UpstreamProtocol::Http1);
        let req = http::Request::get("/")
            .header("host", "t")
            .body(())
            .unwrap();
        let mut response = send(conn, &req, None, key, 4).await.unwrap();
        let collected = response.body_mut().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (response, collected.to_bytes(), trailers)
    }

    #[tokio::test]
    async fn bodies_arriving_a_byte_at_a_time() {
        let (response, body, _) = exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello",
        )
        .await;
        assert_eq!(
            (response.status().as_u16(), &body[..]),
            (201, &b"hello"[..])
        );
        let (_, body, trailers) = exchange(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nwiki\r\n9;x=y\r\npedia in \r\n0\r\nx-t: 1\r\n\r\n",
        )
        .await;
        assert_eq!(&body[..], b"wikipedia in ");
        assert_eq!(trailers.unwrap()["x-t"], "1");
        let (_, body, _) = exchange(b"HTTP/1.0 200 OK\r\n\r\nuntil the end").await;
        assert_eq!(&body[..], b"until the end");
    }
}
