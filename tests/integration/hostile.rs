//! Hostile clients against the real binary (one worker, default limits unless the limit is what
//! is tested): each test is one attack from the hardening review, measured where it is about
//! resources (the router's resident memory and CPU time, another client's answers).

use crate::process::*;
use crate::raw_h2::*;
use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard::http2::frame::{self, Head, flag, kind, setting};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A backend that answers `GET /bytes/N` with N bytes, `/hang` never, and anything else with
/// the number of body bytes it read; it counts the requests it got.
async fn counting_backend() -> (Backend, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let backend = Backend::start(move |req: Request<hyper::body::Incoming>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let path = req.uri().path().to_owned();
            if path == "/hang" {
                std::future::pending::<()>().await;
            }
            if let Some(n) = path.strip_prefix("/bytes/") {
                return hyper::Response::new(full(vec![b'x'; n.parse().unwrap()]));
            }
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            hyper::Response::new(full(format!("{}", body.map_or(0, |b| b.len()))))
        }
    })
    .await;
    (backend, count)
}

/// The status of `GET path` on `app.test` over a new HTTP/1.1 connection.
async fn status_of(http: SocketAddr, path: &str) -> u16 {
    let req = Request::get(path)
        .header("host", "app.test")
        .body(full(""))
        .unwrap();
    send(http, req).await.status().as_u16()
}

/// Reads frames until the connection ends (or `limit` passes); the GOAWAY code, if one came.
async fn goaway_code(socket: &mut TcpStream, limit: Duration) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (head, payload) = next_frame(socket, deadline).await?;
        if head.kind == kind::GOAWAY {
            return Some(error_code(&payload, 4));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_data_frames_do_not_pin_read_buffers() {
    // Two endpoints, so an idempotent request with a small Content-Length is read whole first.
    let (one, _) = counting_backend().await;
    let (two, _) = counting_backend().await;
    let (router, http, _) = start_router("", &route("/", &[&one, &two])).await;
    let mut socket = raw_h2(http).await;
    // Stream 1: a PUT that declares 64 KiB and gets one byte per frame. Stream 3: an upload
    // whose 16 KiB frames fill the read buffers between those bytes (all within flow control).
    let mut put = block_for("/put", &literal("content-length", "65536"));
    put.splice(0..1, [0x02, 3, b'P', b'U', b'T']); // :method PUT, a literal
    socket
        .write_all(&raw_frame(kind::HEADERS, flag::END_HEADERS, 1, &put))
        .await
        .unwrap();
    let put = post_block("/sink", &[]);
    socket
        .write_all(&raw_frame(kind::HEADERS, flag::END_HEADERS, 3, &put))
        .await
        .unwrap();
    let (mut reader, mut writer) = socket.into_split();
    // Window the router has given: the connection's and stream 3's (its SETTINGS announce
    // 256 KiB per stream).
    let conn_window = Arc::new(AtomicI64::new(65_535));
    let stream_window = Arc::new(AtomicI64::new(256 * 1024));
    let more = Arc::new(tokio::sync::Notify::new());
    let (conn, stream, told) = (conn_window.clone(), stream_window.clone(), more.clone());
    tokio::spawn(async move {
        loop {
            let mut head = [0u8; frame::HEADER_LEN];
            if reader.read_exact(&mut head).await.is_err() {
                return;
            }
            let head = Head::parse(&head);
            let mut payload = vec![0u8; head.len];
            if reader.read_exact(&mut payload).await.is_err() {
                return;
            }
            if head.kind == kind::WINDOW_UPDATE {
                let add = error_code(&payload, 0) as i64;
                match head.stream {
                    0 => conn.fetch_add(add, Ordering::SeqCst),
                    3 => stream.fetch_add(add, Ordering::SeqCst),
                    _ => 0,
                };
                told.notify_one();
            }
        }
    });
    let filler = raw_frame(kind::DATA, 0, 3, &[b'f'; 16_384]);
    let byte = raw_frame(kind::DATA, 0, 1, b"b");
    let mut rss_before = 0.0;
    const UNITS: usize = 5_000;
    for unit in 0..UNITS {
        if unit == 100 {
            rss_before = router.rss_mib();
        }
        while conn_window.load(Ordering::SeqCst) < 16_385
            || stream_window.load(Ordering::SeqCst) < 16_384
        {
            let wait = tokio::time::timeout(Duration::from_secs(5), more.notified());
            assert!(wait.await.is_ok(), "window stalled");
        }
        conn_window.fetch_sub(16_385, Ordering::SeqCst);
        stream_window.fetch_sub(16_384, Ordering::SeqCst);
        writer.write_all(&byte).await.unwrap();
        writer.write_all(&filler).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = router.rss_mib() - rss_before;
    eprintln!("one-byte DATA frames: RSS +{grown:.1} MiB for {UNITS} body bytes");
    // Each byte pinned a 16+ KiB read buffer before: 5,000 bytes held ~160 MiB.
    assert!(
        grown < 40.0,
        "RSS grew {grown:.1} MiB for {UNITS} body bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_floods_cost_one_pass_per_frame() {
    let (backend, _) = counting_backend().await;
    let (router, http, _) = start_router("", &route("/", &[&backend])).await;
    let mut socket = raw_h2(http).await;
    // 200 streams waiting on a backend that never answers.
    let opens = open_streams(200, "/hang");
    socket.write_all(&opens).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = router.cpu_seconds();
    // 100 SETTINGS frames of 2,730 INITIAL_WINDOW_SIZE entries each.
    let mut flood = Vec::new();
    for i in 0..100u32 {
        let mut payload = Vec::new();
        for j in 0..2_730u32 {
            payload.extend_from_slice(&setting::INITIAL_WINDOW_SIZE.to_be_bytes());
            payload.extend_from_slice(&(65_535 + (i + j) % 2).to_be_bytes());
        }
        flood.extend(raw_frame(kind::SETTINGS, 0, 0, &payload));
    }
    let started = Instant::now();
    socket.write_all(&flood).await.unwrap();
    let mut acks = 0;
    while acks < 101 {
        let (head, _) = read_until(&mut socket, &[kind::SETTINGS])
            .await
            .expect("every SETTINGS frame acknowledged");
        acks += usize::from(head.has(flag::ACK));
    }
    let took = started.elapsed();
    let cpu = router.cpu_seconds() - cpu_before;
    eprintln!("SETTINGS flood: {cpu:.2} s of CPU, acknowledged after {took:?}");
    // Before, each entry meant a pass over the 200 streams, each queued once per entry:
    // 4.8 s of CPU in a release build.
    assert!(cpu < 1.0, "{cpu:.2} s of CPU for 100 SETTINGS frames");
    assert!(took < Duration::from_secs(3), "acknowledged after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_window_clients_give_backend_places_back_after_send_timeout() {
    let (backend, _) = counting_backend().await;
    // The send timeout is the subject: 1 s instead of 60.
    let (_router, http, _) = start_router("send_timeout = \"1s\"", &route("/", &[&backend])).await;
    let mut attackers = Vec::new();
    for _ in 0..3 {
        let mut socket = TcpStream::connect(http).await.unwrap();
        socket.write_all(frame::PREFACE).await.unwrap();
        let mut zero = setting::INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
        zero.extend_from_slice(&0u32.to_be_bytes());
        socket
            .write_all(&raw_frame(kind::SETTINGS, 0, 0, &zero))
            .await
            .unwrap();
        let opens = open_streams(200, "/bytes/1048576");
        socket.write_all(&opens).await.unwrap();
        attackers.push(socket);
    }
    // 600 responses stalled, over the 500 places `max_conns_per_backend` gives the backend.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = loop {
        let status = status_of(http, "/bytes/10").await;
        if status == 200 || started.elapsed() > Duration::from_secs(6) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        status,
        200,
        "another client still refused after {:?}",
        started.elapsed()
    );
    // The stalled streams were reset (CANCEL).
    let mut cancelled = 0;
    while let Some((head, payload)) = read_until(&mut attackers[0], &[kind::RST_STREAM]).await {
        if head.kind == kind::RST_STREAM && error_code(&payload, 0) == 0x8 {
            cancelled += 1;
        }
        if cancelled == 200 {
            break;
        }
    }
    assert!(cancelled >= 150, "{cancelled} streams reset");
}

/// The frame that makes the server reset stream `id`.
type Provoke = fn(u32) -> Vec<u8>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_the_client_provokes_end_the_connection() {
    // CVE-2025-8671 ("MadeYouReset"): frames that make the server reset streams it has
    // started handling, so that the client's own reset budget never moves.
    let (backend, requests) = counting_backend().await;
    let (_router, http, _) = start_router("", &route("/", &[&backend])).await;
    let provokers: [(&str, Provoke); 2] = [
        ("WINDOW_UPDATE of 0 on the stream", |id| {
            raw_frame(kind::WINDOW_UPDATE, 0, id, &0u32.to_be_bytes())
        }),
        ("DATA beyond the declared content-length", |id| {
            raw_frame(kind::DATA, flag::END_STREAM, id, b"too long")
        }),
    ];
    for (what, provoke) in provokers {
        requests.store(0, Ordering::SeqCst);
        let mut socket = raw_h2(http).await;
        let mut burst = Vec::new();
        for i in 0..1_000u32 {
            let id = 2 * i + 1;
            let block = post_block("/hang", &literal("content-length", "1"));
            burst.extend(raw_frame(kind::HEADERS, flag::END_HEADERS, id, &block));
            burst.extend(provoke(id));
        }
        let _ = socket.write_all(&burst).await;
        let code = goaway_code(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(code, Some(0xb), "{what}: ENHANCE_YOUR_CALM");
        let sent = requests.load(Ordering::SeqCst);
        assert!(sent <= 510, "{what}: {sent} requests reached the backend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_list_far_over_the_limit_ends_the_connection() {
    let (backend, _) = counting_backend().await;
    let (router, http, _) = start_router("", &route("/", &[&backend])).await;
    let mut socket = raw_h2(http).await;
    // A 4,000-byte value into the dynamic table (literal with incremental indexing).
    let mut first = block_for("/bytes/1", &[0x40, 3]);
    first.extend_from_slice(b"x-b");
    first.extend_from_slice(&[
        0x7f,
        (4_000 - 127) as u8 & 0x7f | 0x80,
        ((4_000 - 127) >> 7) as u8,
    ]);
    first.extend(std::iter::repeat_n(b'a', 4_000));
    send_block(&mut socket, 1, &first).await;
    let (head, _) = read_until(&mut socket, &[kind::HEADERS]).await.unwrap();
    assert_eq!(head.stream, 1, "the first request is answered");
    // Then 16,000 one-byte references to it: 64 MB of header list from 16 KB.
    let cpu_before = router.cpu_seconds();
    let mut bomb = get_block(&[]);
    bomb.extend(std::iter::repeat_n(0xbe, 16_000));
    send_block(&mut socket, 3, &bomb).await;
    let code = goaway_code(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(
        code,
        Some(0xb),
        "ENHANCE_YOUR_CALM, not a 431 on a kept connection"
    );
    let cpu = router.cpu_seconds() - cpu_before;
    assert!(cpu < 0.5, "{cpu:.2} s of CPU for one block");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_frames_that_do_nothing_end_the_connection() {
    let (backend, _) = counting_backend().await;
    let (_router, http, _) = start_router("", &route("/", &[&backend])).await;
    let end = flag::END_HEADERS | flag::END_STREAM;
    let floods: [(&str, Vec<u8>, Vec<u8>); 7] = [
        ("PING", vec![], raw_frame(kind::PING, 0, 0, &[0; 8])),
        ("SETTINGS", vec![], raw_frame(kind::SETTINGS, 0, 0, &[])),
        (
            "empty DATA",
            raw_frame(
                kind::HEADERS,
                flag::END_HEADERS,
                1,
                &post_block("/hang", &[]),
            ),
            raw_frame(kind::DATA, 0, 1, &[]),
        ),
        (
            "PRIORITY",
            vec![],
            raw_frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]),
        ),
        ("unknown type", vec![], raw_frame(0x20, 0, 0, &[0; 8])),
        (
            "RST_STREAM on a closed stream",
            raw_frame(kind::HEADERS, end, 1, &get_block(&[])),
            raw_frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()),
        ),
        (
            "WINDOW_UPDATE",
            vec![],
            raw_frame(kind::WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes()),
        ),
    ];
    for (what, setup, frame) in floods {
        let mut socket = raw_h2(http).await;
        socket.write_all(&setup).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let flood: Vec<u8> = std::iter::repeat_n(frame, 2_000).flatten().collect();
        let _ = socket.write_all(&flood).await;
        let code = goaway_code(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(code, Some(0xb), "{what}: ENHANCE_YOUR_CALM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_header_block_is_cut_at_header_read_timeout() {
    let (backend, _) = counting_backend().await;
    // The timeout is the subject: 1 s instead of 10.
    let (_router, http, _) =
        start_router("header_read_timeout = \"1s\"", &route("/", &[&backend])).await;
    for open_stream in [false, true] {
        let mut socket = raw_h2(http).await;
        if open_stream {
            // A request in flight does not lift the limit.
            send_block(&mut socket, 1, &block_for("/hang", &[])).await;
        }
        let block = get_block(&[]);
        socket
            .write_all(&raw_frame(kind::HEADERS, flag::END_STREAM, 3, &block))
            .await
            .unwrap();
        let started = Instant::now();
        let _ = goaway_code(&mut socket, Duration::from_secs(6)).await;
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(1), socket.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "connection still open (stream open: {open_stream})"
        );
        let took = started.elapsed();
        assert!(
            took > Duration::from_millis(800) && took < Duration::from_secs(4),
            "closed after {took:?} (stream open: {open_stream})"
        );
    }
}

/// A backend that answers every request with an endless chunked body of 16-byte chunks,
/// written as fast as the router takes them.
async fn endless_small_chunks() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                let batch: Vec<u8> = std::iter::repeat_n(&b"10\r\n0123456789abcdef\r\n"[..], 1_000)
                    .flatten()
                    .copied()
                    .collect();
                while stream.write_all(&batch).await.is_ok() {}
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_of_small_chunks_keep_memory_flat() {
    let backend = endless_small_chunks().await;
    let routes = format!("[[route]]\nuri = \"/\"\nbackends = [\"{backend}\"]\n");
    let (router, http, _) = start_router("", &routes).await;
    let rss_before = router.rss_mib();
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut socket = TcpStream::connect(http).await.unwrap();
        socket
            .write_all(b"GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        readers.push(socket);
    }
    // The clients read nothing for 3 s: the backend keeps writing for as long as the router
    // takes its bytes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = router.rss_mib() - rss_before;
    eprintln!("4 stalled readers of small chunks: RSS +{grown:.1} MiB");
    assert!(grown < 30.0, "RSS grew {grown:.1} MiB");
    // They still get a well-formed start.
    let mut start = [0u8; 64];
    readers[0].read_exact(&mut start).await.unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_client_that_stops_reading_is_cut_after_send_timeout() {
    let backend = endless_small_chunks().await;
    let routes = format!("[[route]]\nuri = \"/\"\nbackends = [\"{backend}\"]\n");
    // The send timeout is the subject: 1 s instead of 60.
    let (_router, http, _) = start_router("send_timeout = \"1s\"", &routes).await;
    // The hand-written server, and hyper's (which serves HTTP/1.0, chunked uploads, upgrades).
    for request in [
        &b"GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n"[..],
        b"GET /big HTTP/1.0\r\nHost: app.test\r\n\r\n",
    ] {
        let mut socket = TcpStream::connect(http).await.unwrap();
        socket.write_all(request).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        // What the router wrote before giving up is still there to read, then the end.
        let mut buf = vec![0u8; 1 << 16];
        let read_all = async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(5), read_all).await;
        let what = String::from_utf8_lossy(&request[..17]);
        assert!(ended.is_ok(), "{what}: the connection was not closed");
    }
}

/// The status line and the backend's JSON (when it answered) of a raw HTTP/1.1 request.
async fn raw_exchange(http: SocketAddr, request: &[u8]) -> (String, Option<serde_json::Value>) {
    let answer = raw(http, request, Duration::from_secs(3)).await;
    let status = answer.lines().next().unwrap_or("").to_string();
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body);
    let json = body
        .and_then(|body| serde_json::from_str(body.trim_start_matches(|c: char| c != '{')).ok());
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_content_length_and_transfer_coding_rules() {
    let backend = Backend::echo("echo").await;
    let (_router, http, _) = start_router("", &route("/", &[&backend])).await;
    // The absolute form's authority is what the request is routed by and what the backend
    // is told.
    let (status, echo) = raw_exchange(
        http,
        b"GET http://a.test/p HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(seen(&echo.unwrap(), "host"), ["a.test"]);
    // A client cannot strip Host with `Connection: Host`.
    let (status, echo) = raw_exchange(
        http,
        b"GET /p HTTP/1.1\r\nHost: a.test\r\nConnection: Host, close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(seen(&echo.unwrap(), "host"), ["a.test"]);
    for (what, request, code) in [
        ("two Hosts", &b"GET /p HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"[..], " 400 "),
        ("userinfo in Host", b"GET /p HTTP/1.1\r\nHost: evil.test@a.test\r\n\r\n", " 400 "),
        (
            "Content-Length: +44",
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: +44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n",
            " 400 ",
        ),
        (
            "gzip, chunked",
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            " 501 ",
        ),
    ] {
        let (status, _) = raw_exchange(http, request).await;
        assert!(status.contains(code), "{what}: {status}");
    }
    // No Host and a body announced: refused at once, not after the body (which never comes).
    let started = Instant::now();
    let (status, _) = raw_exchange(http, b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n").await;
    assert!(status.contains(" 400 "), "{status}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // HTTP/2: `host` must agree with `:authority`.
    let mut socket = raw_h2(http).await;
    send_block(&mut socket, 1, &get_block(&literal("host", "b.test"))).await;
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS]).await.unwrap();
    assert_eq!(head.stream, 1);
    assert_eq!(&payload[..1], &[0x8c], ":status 400 from the static table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_are_held_to_the_same_framing_rules() {
    let mut big_head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n".to_vec();
    for i in 0..2_000 {
        big_head.extend_from_slice(format!("x-filler-{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    big_head.extend_from_slice(b"\r\n");
    let big_head: &'static [u8] = Box::leak(big_head.into_boxed_slice());
    for (what, reply) in [
        (
            "Content-Length: +5",
            &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"[..],
        ),
        (
            "chunk size +5",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        ),
        ("a 100 KB head", big_head),
    ] {
        let backend = raw_backend(reply, RawEnd::Close).await;
        let routes = format!("[[route]]\nuri = \"/\"\nbackends = [\"{backend}\"]\n");
        let (_router, http, _) = start_router("", &routes).await;
        let answer = raw(
            http,
            b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
            Duration::from_secs(3),
        )
        .await;
        let status = answer.lines().next().unwrap_or("");
        // A bad chunk size is found after the head went out: the response is cut short.
        let refused = status.contains(" 502 ")
            || (what == "chunk size +5" && !answer.contains("\r\n0\r\n\r\n"));
        assert!(refused, "{what}: {answer:.200}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limits_are_closed_and_counted() {
    let backend = Backend::echo("echo").await;
    // The limits are the subject: 5 in all, then 5 per address (instead of 100,000 and 1,000).
    for limit in ["max_connections", "max_connections_per_ip"] {
        let (_router, http, admin) =
            start_router(&format!("{limit} = 5"), &route("/", &[&backend])).await;
        let mut held = Vec::new();
        for _ in 0..5 {
            let mut socket = TcpStream::connect(http).await.unwrap();
            socket
                .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 12];
            socket.read_exact(&mut buf).await.unwrap();
            held.push(socket);
        }
        let mut sixth = TcpStream::connect(http).await.unwrap();
        let _ = sixth
            .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await;
        let mut buf = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(2), sixth.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "{limit}: the sixth connection was served"
        );
        let counted = format!("switchyard_client_connections_refused_total{{limit=\"{limit}\"}}");
        assert_eq!(metric(admin, &counted).await, 1.0, "{limit}");
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let req = Request::get("/")
            .header("host", "a.test")
            .body(full(""))
            .unwrap();
        let status = send(http, req).await.status();
        assert_eq!(status, 200, "{limit}: places are given back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_header_bytes_has_a_ceiling() {
    let path = write_config("[server]\nmax_header_bytes = 2097152\n");
    let out = run(BIN, &["check", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("server.max_header_bytes") && stderr.contains("524288"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_the_route_limit_get_413() {
    let (backend, requests) = counting_backend().await;
    let routes = format!(
        "{}max_request_body = 1000\n{}",
        route("/small", &[&backend]),
        route("/", &[&backend])
    );
    let (_router, http, _) = start_router("", &routes).await;
    let post = |path: &str, body: TestBody| {
        Request::post(path)
            .header("host", "app.test")
            .body(body)
            .unwrap()
    };
    // Declared too long: refused before any backend sees it.
    let response = send(http, post("/small", full(vec![b'x'; 2_000]))).await;
    assert_eq!(response.status(), 413);
    assert_eq!(requests.load(Ordering::SeqCst), 0);
    assert_eq!(
        send(http, post("/small", full(vec![b'x'; 1_000])))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(http, post("/other", full(vec![b'x'; 2_000])))
            .await
            .status(),
        200,
        "other routes are not limited"
    );
    // Chunked, no length: cut off once past the limit.
    let (tx, body) = channel_body();
    let sending = tokio::spawn(async move {
        for _ in 0..10 {
            if tx
                .send(hyper::body::Frame::data(Bytes::from(vec![b'x'; 500])))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let response = send(http, post("/small", body)).await;
    assert_eq!(response.status(), 413);
    let _ = sending.await;
    // HTTP/2 without content-length.
    let mut socket = raw_h2(http).await;
    let block = post_block("/small", &[]);
    socket
        .write_all(&raw_frame(kind::HEADERS, flag::END_HEADERS, 1, &block))
        .await
        .unwrap();
    socket
        .write_all(&raw_frame(kind::DATA, flag::END_STREAM, 1, &[b'x'; 1_500]))
        .await
        .unwrap();
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS]).await.unwrap();
    assert_eq!(head.stream, 1);
    assert_eq!(&payload[..5], &[0x08, 3, b'4', b'1', b'3'], ":status 413");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_also_limited_per_address_across_connections() {
    // A rapid-reset client that stays under each connection's 500 and reconnects.
    let (backend, _) = counting_backend().await;
    let (_router, http, _) = start_router("", &route("/", &[&backend])).await;
    let mut calmed = None;
    for round in 0..6 {
        let mut socket = raw_h2(http).await;
        let mut burst = Vec::new();
        for i in 0..450u32 {
            let id = 2 * i + 1;
            let block = block_for("/bytes/1", &[]);
            burst.extend(raw_frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                id,
                &block,
            ));
            burst.extend(raw_frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
        }
        burst.extend(raw_frame(kind::PING, 0, 0, b"roundend"));
        let _ = socket.write_all(&burst).await;
        let (head, payload) = read_until(&mut socket, &[kind::GOAWAY, kind::PING])
            .await
            .expect("an answer to the burst");
        if head.kind == kind::GOAWAY {
            assert_eq!(error_code(&payload, 4), 0xb, "ENHANCE_YOUR_CALM");
            calmed = Some(round);
            break;
        }
    }
    // 450 per connection: the fifth connection passes the address's 2,000.
    assert_eq!(calmed, Some(4), "GOAWAY on the fifth connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_access_log_holds_bounded_memory_and_does_not_hold_the_stop() {
    // The log goes to a pipe nobody reads: the writer blocks once the pipe is full, and every
    // record waits. Clients send 32 KiB headers: 8,000 waiting records would hold 256 MiB of
    // them; the queue takes 32 MiB of request texts, drops (and counts) the rest.
    let (backend, _) = counting_backend().await;
    let dir = temp_dir("stalled-log");
    let fifo = dir.join("access.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opened for reading (without blocking) and never read.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let routes = format!(
        "[access_log]\npath = \"{}\"\n[[route]]\nuri = \"/\"\nbackends = [\"{}\"]\n",
        fifo.display(),
        backend.addr
    );
    let (router, http, admin) = start_router("", &routes).await;
    let rss_before = router.rss_mib();
    let agent = "a".repeat(32 * 1024);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let mut conn = KeepAlive::connect(http).await;
                for _ in 0..1_000 {
                    let req = Request::get("/")
                        .header("host", "app.test")
                        .header("user-agent", agent.as_str())
                        .body(full(""))
                        .unwrap();
                    let response = conn.send(req).await.expect("answered");
                    assert_eq!(response.status(), 200);
                    let _ = response.into_body().collect().await;
                }
            })
        })
        .collect();
    for client in clients {
        tokio::time::timeout(Duration::from_secs(120), client)
            .await
            .expect("8,000 requests within 120 s")
            .unwrap();
    }
    let grown = router.rss_mib() - rss_before;
    eprintln!("8,000 records of 32 KiB headers behind a stalled log: RSS +{grown:.1} MiB");
    assert!(grown < 120.0, "RSS grew {grown:.1} MiB");
    let dropped = metric(admin, "switchyard_access_log_dropped_total").await;
    assert!(dropped > 4_000.0, "{dropped} records dropped");
    // The writer is still blocked: the stop waits for it a few seconds, not forever.
    let mut router = router;
    router.signal("TERM");
    assert_eq!(router.exit_code().await, Some(0));
}
