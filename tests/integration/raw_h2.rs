//! A raw HTTP/2 client for tests that break the rules on purpose: frames written by hand,
//! header blocks of static-table indexes and raw literals, frames read back one by one.

use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::http2::frame::{self, Head, flag, kind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw HTTP/2 client connection: preface and empty SETTINGS sent.
pub async fn raw_h2(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(frame::PREFACE).await.unwrap();
    socket
        .write_all(&raw_frame(kind::SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    socket
}

pub fn raw_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame::head(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out.to_vec()
}

/// A GET for `/bytes/1` on `app.test` as an HPACK block (static indexes and raw literals).
pub fn get_block(extra: &[u8]) -> Vec<u8> {
    block_for("/bytes/1", extra)
}

/// A GET for `path` on `app.test`, then the fields in `extra`, as an HPACK block.
pub fn block_for(path: &str, extra: &[u8]) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend_from_slice(&[0x04, path.len() as u8]); // :path, literal without indexing
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 8]); // :authority
    block.extend_from_slice(b"app.test");
    block.extend_from_slice(extra);
    block
}

/// A POST for `path` on `app.test`, then the fields in `extra`, as an HPACK block.
pub fn post_block(path: &str, extra: &[u8]) -> Vec<u8> {
    let mut block = block_for(path, extra);
    block[0] = 0x83; // :method POST
    block
}

/// A literal field without indexing, new name (both raw, under 127 bytes each).
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127);
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// Sends a request's header block (ending the stream) in HEADERS and CONTINUATION frames.
pub async fn send_block(socket: &mut TcpStream, stream: u32, block: &[u8]) {
    let mut pieces = block.chunks(16_000).peekable();
    let mut first = true;
    while let Some(piece) = pieces.next() {
        let (kind, mut flags) = match first {
            true => (kind::HEADERS, flag::END_STREAM),
            false => (kind::CONTINUATION, 0),
        };
        if pieces.peek().is_none() {
            flags |= flag::END_HEADERS;
        }
        socket
            .write_all(&raw_frame(kind, flags, stream, piece))
            .await
            .unwrap();
        first = false;
    }
}

/// The next frame, unless `deadline` passes or the connection ends first.
pub async fn next_frame(
    socket: &mut TcpStream,
    deadline: tokio::time::Instant,
) -> Option<(Head, Vec<u8>)> {
    tokio::time::timeout_at(deadline, read_frame(socket))
        .await
        .ok()?
}

/// The next frame on any connection (plain or TLS); `None` when it ends first.
pub async fn read_frame<S: AsyncRead + Unpin>(socket: &mut S) -> Option<(Head, Vec<u8>)> {
    let mut head = [0u8; frame::HEADER_LEN];
    socket.read_exact(&mut head).await.ok()?;
    let head = Head::parse(&head);
    let mut payload = vec![0u8; head.len];
    socket.read_exact(&mut payload).await.ok()?;
    Some((head, payload))
}

/// Reads frames until one of `want` arrives (or the connection ends, or 5 s pass); returns it.
pub async fn read_until(socket: &mut TcpStream, want: &[u8]) -> Option<(Head, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (head, payload) = next_frame(socket, deadline).await?;
        if want.contains(&head.kind) {
            return Some((head, payload));
        }
    }
}

/// `count` GETs of `path` (static-table indexes and raw literals) on streams 1, 3, 5, ...
pub fn open_streams(count: u32, path: &str) -> Vec<u8> {
    let block = block_for(path, &[]);
    (0..count)
        .flat_map(|i| {
            raw_frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                2 * i + 1,
                &block,
            )
        })
        .collect()
}

pub fn error_code(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(payload[at..at + 4].try_into().unwrap())
}
