//! An HTTP/2 frame-level conformance suite in the spirit of h2spec (which cannot be installed
//! here): RFC 9113 sections 3-8 and RFC 7541, one case per rule, each run on h2c and on TLS
//! (ALPN `h2`). A case sends frames after a valid preface and SETTINGS, then a PING; what comes
//! back first decides: a GOAWAY (connection error), an RST_STREAM (stream error), a response
//! head (its `:status`), or the PING's acknowledgement (the frames were accepted or ignored).

use crate::raw_h2::{block_for, error_code, literal, post_block, raw_frame, read_frame};
use crate::support::*;
use std::sync::Arc;
use std::time::Duration;
use switchyard::http2::frame::{self, flag, kind, setting};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// What the server answered.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// GOAWAY with this code.
    GoAway(u32),
    /// RST_STREAM with this code.
    Reset(u32),
    /// A response head whose first byte is this HPACK representation (0x88 = `:status 200`).
    Status(u8),
    /// The probe PING was acknowledged and nothing else decided.
    Alive,
}

use Outcome::*;

const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const STREAM_CLOSED: u32 = 0x5;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;
const PROBE: &[u8; 8] = b"probe-01";

fn f(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    raw_frame(kind, flags, stream, payload)
}

/// GET / on app.test, then `extra` fields.
fn get(extra: &[u8]) -> Vec<u8> {
    block_for("/", extra)
}

/// A complete GET on stream `id`.
fn request(id: u32, extra: &[u8]) -> Vec<u8> {
    f(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        id,
        &get(extra),
    )
}

/// A POST on stream `id` whose body follows, with `extra` fields.
fn upload(id: u32, extra: &[u8]) -> Vec<u8> {
    f(
        kind::HEADERS,
        flag::END_HEADERS,
        id,
        &post_block("/", extra),
    )
}

fn setting_of(id: u16, value: u32) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&value.to_be_bytes());
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// The cases: (section, rule, frames, expected outcome).
fn cases() -> Vec<(&'static str, &'static str, Vec<u8>, Outcome)> {
    let end = flag::END_HEADERS | flag::END_STREAM;
    vec![
        (
            "4.1",
            "unknown frame types are ignored",
            f(0x20, 0, 0, b"whatever"),
            Alive,
        ),
        (
            "4.1",
            "unknown flags are ignored",
            f(kind::PING, 0xfe, 0, b"12345678"),
            Alive,
        ),
        (
            "4.2",
            "DATA over the maximum frame size",
            f(kind::DATA, 0, 1, &[0; 16_385]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "4.3",
            "an undecodable header block",
            f(kind::HEADERS, end, 1, &[0x80]),
            GoAway(COMPRESSION_ERROR),
        ),
        (
            "5.1",
            "DATA on an idle stream",
            f(kind::DATA, 0, 1, b"x"),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.1",
            "DATA on a half-closed (remote) stream",
            cat(&[request(1, &[]), f(kind::DATA, 0, 1, b"x")]),
            Reset(STREAM_CLOSED),
        ),
        (
            "5.1",
            "RST_STREAM on an idle stream",
            f(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.1",
            "WINDOW_UPDATE on an idle stream",
            f(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.1.1",
            "an even stream id",
            request(2, &[]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.1.1",
            "a stream id lower than one opened",
            cat(&[request(5, &[]), request(3, &[])]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.3.1",
            "a stream depending on itself (HEADERS)",
            f(
                kind::HEADERS,
                end | flag::PRIORITY,
                1,
                &cat(&[vec![0, 0, 0, 1, 16], get(&[])]),
            ),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.3.1",
            "a stream depending on itself (PRIORITY)",
            f(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 16]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "5.4.2",
            "frames after the server's reset are ignored",
            cat(&[
                upload(1, &[]),
                f(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0]),
                f(kind::DATA, 0, 1, b"late"),
            ]),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "6.1",
            "DATA on stream 0",
            f(kind::DATA, 0, 0, b"x"),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.1",
            "DATA with padding longer than the frame",
            cat(&[upload(1, &[]), f(kind::DATA, flag::PADDED, 1, &[9, 1, 2])]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.2",
            "HEADERS on stream 0",
            f(kind::HEADERS, end, 0, &get(&[])),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.2",
            "HEADERS with padding longer than the frame",
            f(kind::HEADERS, end | flag::PADDED, 1, &[200, 0x82]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.3",
            "PRIORITY on stream 0",
            f(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.3",
            "PRIORITY of the wrong length",
            f(kind::PRIORITY, 0, 1, &[0, 0, 0, 3]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.4",
            "RST_STREAM on stream 0",
            f(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.4",
            "RST_STREAM of the wrong length",
            cat(&[upload(1, &[]), f(kind::RST_STREAM, 0, 1, &[0, 0, 8])]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.5",
            "SETTINGS ACK with a payload",
            f(kind::SETTINGS, flag::ACK, 0, &[0; 6]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.5",
            "SETTINGS on a stream",
            f(kind::SETTINGS, 0, 1, &[]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.5",
            "SETTINGS not a multiple of 6",
            f(kind::SETTINGS, 0, 0, &[0; 5]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.5.2",
            "ENABLE_PUSH other than 0 or 1",
            f(kind::SETTINGS, 0, 0, &setting_of(setting::ENABLE_PUSH, 2)),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.5.2",
            "INITIAL_WINDOW_SIZE over 2^31-1",
            f(
                kind::SETTINGS,
                0,
                0,
                &setting_of(setting::INITIAL_WINDOW_SIZE, 1 << 31),
            ),
            GoAway(FLOW_CONTROL_ERROR),
        ),
        (
            "6.5.2",
            "MAX_FRAME_SIZE under 16384",
            f(
                kind::SETTINGS,
                0,
                0,
                &setting_of(setting::MAX_FRAME_SIZE, 16_383),
            ),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.5.2",
            "unknown settings are ignored",
            f(kind::SETTINGS, 0, 0, &setting_of(0x99, 7)),
            Alive,
        ),
        (
            "6.7",
            "PING on a stream",
            f(kind::PING, 0, 1, &[0; 8]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.7",
            "PING of the wrong length",
            f(kind::PING, 0, 0, &[0; 7]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.8",
            "GOAWAY on a stream",
            f(kind::GOAWAY, 0, 1, &[0; 8]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.9",
            "connection WINDOW_UPDATE of 0",
            f(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.9",
            "stream WINDOW_UPDATE of 0",
            cat(&[upload(1, &[]), f(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0])]),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "6.9",
            "WINDOW_UPDATE of the wrong length",
            f(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1]),
            GoAway(FRAME_SIZE_ERROR),
        ),
        (
            "6.9.1",
            "connection window over 2^31-1",
            f(kind::WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
            GoAway(FLOW_CONTROL_ERROR),
        ),
        (
            "6.9.1",
            "stream window over 2^31-1",
            cat(&[
                upload(1, &[]),
                f(kind::WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes()),
            ]),
            Reset(FLOW_CONTROL_ERROR),
        ),
        (
            "6.10",
            "CONTINUATION without HEADERS",
            f(kind::CONTINUATION, flag::END_HEADERS, 1, &get(&[])),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.10",
            "a header block interrupted",
            cat(&[
                f(kind::HEADERS, flag::END_STREAM, 1, &get(&[])),
                f(kind::PING, 0, 0, &[0; 8]),
            ]),
            GoAway(PROTOCOL_ERROR),
        ),
        (
            "6.10",
            "a header block in CONTINUATION frames",
            cat(&[
                f(kind::HEADERS, flag::END_STREAM, 1, &get(&[])[..3]),
                f(kind::CONTINUATION, flag::END_HEADERS, 1, &get(&[])[3..]),
            ]),
            Status(0x88),
        ),
        (
            "8.1",
            "content-length and DATA disagree",
            cat(&[
                upload(1, &literal("content-length", "5")),
                f(kind::DATA, flag::END_STREAM, 1, b"abc"),
            ]),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.1",
            "content-length not digits only",
            request(1, &literal("content-length", "+0")),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.2",
            "an upper-case field name",
            request(1, &literal("X-Upper", "1")),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.2.2",
            "a connection-specific field",
            request(1, &literal("connection", "close")),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.2.2",
            "te other than trailers",
            request(1, &literal("te", "gzip")),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.3",
            "a pseudo-header after a regular field",
            request(1, &[literal("x-a", "1"), vec![0x04, 1, b'/']].concat()),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.3.1",
            "no :path",
            f(
                kind::HEADERS,
                end,
                1,
                &[vec![0x82, 0x86, 0x01, 8], b"app.test".to_vec()].concat(),
            ),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.3.1",
            "a :status in a request",
            request(1, &[0x88]),
            Reset(PROTOCOL_ERROR),
        ),
        (
            "8.3.1",
            "host differing from :authority",
            request(1, &literal("host", "other.test")),
            Status(0x8c),
        ),
        (
            "8.4",
            "PUSH_PROMISE from a client",
            f(
                kind::PUSH_PROMISE,
                flag::END_HEADERS,
                1,
                &[0, 0, 0, 2, 0x82],
            ),
            GoAway(PROTOCOL_ERROR),
        ),
        ("8.1", "a valid request", request(1, &[]), Status(0x88)),
        (
            "RFC 7541 4.2",
            "a table size update over the limit",
            request(1, &[0x3f, 0xe1, 0x7f]),
            GoAway(COMPRESSION_ERROR),
        ),
        (
            "RFC 7541 6.1",
            "index 0",
            f(kind::HEADERS, end, 1, &[0x80]),
            GoAway(COMPRESSION_ERROR),
        ),
        (
            "RFC 7541 5.1",
            "an integer that overflows",
            f(
                kind::HEADERS,
                end,
                1,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            GoAway(COMPRESSION_ERROR),
        ),
        (
            "RFC 7541 5.2",
            "a Huffman string with bad padding",
            f(kind::HEADERS, end, 1, &[0x82, 0x86, 0x84, 0x01, 0x81, 0x00]),
            GoAway(COMPRESSION_ERROR),
        ),
        (
            "RFC 7541 C.4",
            "Huffman strings and the dynamic table",
            cat(&[
                f(
                    kind::HEADERS,
                    end,
                    1,
                    &hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"),
                ),
                f(kind::HEADERS, end, 3, &hex("828684be")),
            ]),
            Status(0x88),
        ),
    ]
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Sends `frames` then a probe PING; reads until an outcome (5 s at most).
async fn outcome<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    frames: &[u8],
) -> Option<Outcome> {
    socket.write_all(frame::PREFACE).await.ok()?;
    socket.write_all(&f(kind::SETTINGS, 0, 0, &[])).await.ok()?;
    socket.write_all(frames).await.ok()?;
    let _ = socket.write_all(&f(kind::PING, 0, 0, PROBE)).await;
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut alive = false;
    loop {
        let (head, payload) = match tokio::time::timeout_at(deadline, read_frame(&mut socket)).await
        {
            Ok(Some(frame)) => frame,
            // The probe came back and nothing else within a while: the frames were taken.
            Err(_) if alive => return Some(Alive),
            _ => return None,
        };
        match head.kind {
            kind::GOAWAY => return Some(GoAway(error_code(&payload, 4))),
            kind::RST_STREAM => return Some(Reset(error_code(&payload, 0))),
            kind::HEADERS if head.stream != 0 => {
                // A table size update may come first (0x20-0x3f).
                let first = payload.iter().find(|b| **b & 0xe0 != 0x20)?;
                return Some(Status(*first));
            }
            // A response may still be on its way from the backend: wait a little longer.
            kind::PING if head.has(flag::ACK) && payload == PROBE => {
                alive = true;
                deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            }
            _ => {}
        }
    }
}

async fn run_suite<S, C>(connect: C, transport: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: AsyncFn() -> S,
{
    let mut failures = Vec::new();
    let cases = cases();
    for (section, rule, frames, want) in &cases {
        let got = outcome(connect().await, frames).await;
        if got.as_ref() != Some(want) {
            failures.push(format!("  {section} {rule}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{transport}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_follows_rfc_9113_and_rfc_7541() {
    let backend = Backend::echo("echo").await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let addr = router.http;
    run_suite(
        async || tokio::net::TcpStream::connect(addr).await.unwrap(),
        "h2c",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_h2_follows_rfc_9113_and_rfc_7541() {
    let backend = Backend::echo("echo").await;
    let pki = TestPki::new();
    let leaf = pki.leaf("app", &["app.test"]);
    let router = https_router(&[leaf], &route("/", &[&backend]));
    let addr = router.https.unwrap();
    let roots = switchyard::tls::load_roots(&pki.ca()).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    run_suite(
        async || {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("app.test").unwrap();
            connector.connect(name, tcp).await.unwrap()
        },
        "TLS h2",
    )
    .await;
}
