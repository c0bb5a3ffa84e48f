//! The hand-written HTTP/2 server: flow control both ways under small client windows, many
//! streams on one connection, cancellation, graceful stop, and its answers to broken or hostile
//! clients, over real sockets (hyper's client, and raw frames where a client library would not
//! misbehave).

use crate::raw_h2::*;
use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::http2::frame::{self, flag, kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A backend that answers `GET /bytes/N` with N patterned bytes and any other request with the
/// number of body bytes it received and their checksum; `/slow` waits a while first, `/early`
/// answers at once without reading the body.
async fn sized_backend() -> Backend {
    Backend::start(|req: Request<hyper::body::Incoming>| async move {
        let path = req.uri().path().to_owned();
        if path == "/slow" {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if path == "/early" {
            return hyper::Response::new(full("early"));
        }
        if let Some(n) = path.strip_prefix("/bytes/") {
            let n: usize = n.parse().unwrap();
            let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            return hyper::Response::new(full(body));
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let sum: u64 = body.iter().map(|&b| b as u64).sum();
        hyper::Response::new(full(format!("{} {sum}", body.len())))
    })
    .await
}

/// An h2c connection whose windows are the protocol's 64 KiB defaults (no growth).
async fn small_window_client(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .adaptive_window(false)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Awaits every task, each within 30 s.
async fn finish_all(tasks: Vec<tokio::task::JoinHandle<()>>, what: &str) {
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap_or_else(|_| panic!("{what} finish"))
            .unwrap();
    }
}

/// `count` uploads of 300 KB at once on `client`'s connection, upload `i` made of bytes of
/// value `i` in 10 KB pieces; each answer checked against the byte count and sum.
async fn concurrent_uploads(client: &hyper::client::conn::http2::SendRequest<TestBody>, count: u8) {
    let mut tasks = Vec::new();
    for i in 0..count {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (tx, body) = channel_body();
            let req = Request::post("http://app.test/upload").body(body).unwrap();
            let sending = tokio::spawn(async move {
                let piece = Bytes::from(vec![i; 10_000]);
                for _ in 0..30 {
                    tx.send(hyper::body::Frame::data(piece.clone()))
                        .await
                        .unwrap();
                }
            });
            let response = client.send_request(req).await.unwrap();
            sending.await.unwrap();
            assert_eq!(
                text(response).await,
                format!("300000 {}", 300_000 * i as u64),
                "upload {i}"
            );
        }));
    }
    finish_all(tasks, "uploads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_both_ways_on_one_connection_under_small_windows() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let client = small_window_client(router.http).await;
    const SIZE: usize = 3 * 1024 * 1024 + 17;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            // A download...
            let req = Request::get("http://app.test/bytes/".to_owned() + &SIZE.to_string())
                .body(full(""))
                .unwrap();
            let response = client.send_request(req).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.len(), SIZE, "download {i}");
            assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            // ...and an upload streamed in pieces, larger than every window.
            let (tx, body) = channel_body();
            let req = Request::post("http://app.test/upload").body(body).unwrap();
            let sending = tokio::spawn(async move {
                let piece = Bytes::from(vec![3u8; 20_000]);
                for _ in 0..(SIZE / 20_000) {
                    tx.send(hyper::body::Frame::data(piece.clone()))
                        .await
                        .unwrap();
                }
            });
            let response = client.send_request(req).await.unwrap();
            sending.await.unwrap();
            let n = SIZE / 20_000 * 20_000;
            assert_eq!(text(response).await, format!("{n} {}", n * 3), "upload {i}");
        }));
    }
    finish_all(tasks, "transfers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_upload_ends_lets_the_client_finish_sending() {
    // The backend answers without reading the body. The router drops the rest of the upload
    // and keeps giving its window back (as nginx discards an unread body), so a client that
    // goes on sending is not stuck on a full window or reset.
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut client = small_window_client(router.http).await;
    let (tx, body) = channel_body();
    let req = Request::post("http://app.test/early").body(body).unwrap();
    let response = client.send_request(req);
    let piece = Bytes::from(vec![b'u'; 16_384]);
    tx.send(hyper::body::Frame::data(piece.clone()))
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("the early answer arrives")
        .unwrap();
    assert_eq!(text(response).await, "early");
    // 800 KB more (past the stream's window, under the 1 MiB the router drops at most): all of
    // it is taken.
    let sending = async {
        for _ in 0..50 {
            tx.send(hyper::body::Frame::data(piece.clone()))
                .await
                .unwrap();
        }
        drop(tx);
    };
    tokio::time::timeout(Duration::from_secs(10), sending)
        .await
        .expect("the rest of the upload is taken");
    let req = Request::get("http://app.test/bytes/3")
        .body(full(""))
        .unwrap();
    let response = client.send_request(req).await.unwrap();
    assert_eq!(text(response).await.len(), 3, "the connection goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_uploads_share_the_connection_window() {
    // 50 uploads of 300 KB at once on one connection: together far past the connection's
    // 1 MiB window, so they finish only if every read byte's window comes back.
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let client = small_window_client(router.http).await;
    concurrent_uploads(&client, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_to_an_http2_backend_share_the_connection_window() {
    // The same through hyper's HTTP/2 client to an h2c backend (the body is read by another
    // task there): 20 uploads of 300 KB at once.
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&format!(
        "{}protocol = \"http2\"\n",
        route("/", &[&backend])
    ));
    let client = small_window_client(router.http).await;
    concurrent_uploads(&client, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_downloads_share_the_client_window() {
    // 50 downloads of 200 KB at once into a client whose connection window is 64 KiB: the
    // router's streams wait for the connection's window in turn, and every one completes.
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let client = small_window_client(router.http).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let size = 200_000 + i;
            let req = Request::get(format!("http://app.test/bytes/{size}"))
                .body(full(""))
                .unwrap();
            let response = client.send_request(req).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.len(), size, "download {i}");
            assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        }));
    }
    finish_all(tasks, "downloads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_transfers_leak_no_window() {
    // 120 uploads and downloads of random sizes on one connection, a third of them dropped
    // part-way (RST_STREAM). Window owed by a cancelled stream must come back to the
    // connection: a 3 MB upload on the same connection afterwards still goes through.
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let client = small_window_client(router.http).await;
    let mut rng = fastrand::Rng::with_seed(11);
    let mut tasks = Vec::new();
    for i in 0..120 {
        let mut client = client.clone();
        let (upload, size, cancel_after) = (rng.bool(), rng.usize(1..400_000), rng.u64(0..30));
        let cancel = i % 3 == 0;
        let transfer = tokio::spawn(async move {
            if upload {
                let (tx, body) = channel_body();
                let req = Request::post("http://app.test/upload").body(body).unwrap();
                tokio::spawn(async move {
                    for _ in 0..size / 10_000 {
                        let piece = Bytes::from(vec![1u8; 10_000]);
                        if tx.send(hyper::body::Frame::data(piece)).await.is_err() {
                            return;
                        }
                    }
                });
                let response = client.send_request(req).await.unwrap();
                let _ = text(response).await;
            } else {
                let req = Request::get(format!("http://app.test/bytes/{size}"))
                    .body(full(""))
                    .unwrap();
                let response = client.send_request(req).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body.len(), size);
            }
        });
        if cancel {
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(cancel_after)).await;
                transfer.abort();
            }));
        } else {
            tasks.push(tokio::spawn(async move { transfer.await.unwrap() }));
        }
    }
    finish_all(tasks, "transfers").await;
    let (tx, body) = channel_body();
    let req = Request::post("http://app.test/upload").body(body).unwrap();
    let mut last = client.clone();
    let response = tokio::spawn(async move { last.send_request(req).await });
    let sending = async {
        for _ in 0..300 {
            tx.send(hyper::body::Frame::data(Bytes::from(vec![2u8; 10_000])))
                .await
                .unwrap();
        }
        drop(tx);
    };
    tokio::time::timeout(Duration::from_secs(10), sending)
        .await
        .expect("the connection window is whole");
    let response = response.await.unwrap().unwrap();
    assert_eq!(text(response).await, "3000000 6000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_requests_than_the_stream_limit_all_answered_on_one_connection() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let client = small_window_client(router.http).await;
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post("http://app.test/slow")
                .body(full("xy"))
                .unwrap();
            text(client.send_request(req).await.unwrap()).await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap(),
            format!("2 {}", b'x' as u64 + b'y' as u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_cancels_its_upstream_exchange() {
    // A backend that reads a request and never answers; it reports when the router hangs up.
    let (addr, request_seen, closed) = silent_backend().await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"/\"\nbackends = [\"{addr}\"]\n"
    ));
    let mut client = small_window_client(router.http).await;
    let req = Request::get("http://app.test/hang").body(full("")).unwrap();
    let pending = tokio::spawn(async move { client.send_request(req).await });
    tokio::time::timeout(Duration::from_secs(5), request_seen)
        .await
        .expect("the request reaches the backend")
        .unwrap();
    // Dropping the request sends RST_STREAM(CANCEL).
    pending.abort();
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the router closes the upstream connection")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_sends_goaway_and_lets_open_streams_finish() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut client = small_window_client(router.http).await;
    let req = Request::post("http://app.test/slow")
        .body(full("abc"))
        .unwrap();
    let in_flight = tokio::spawn(async move {
        let response = client.send_request(req).await;
        (response.map(|r| r.status()), client)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    router.router().stop();
    let (status, mut client) = in_flight.await.unwrap();
    assert_eq!(status.unwrap(), 200, "the open stream finished");
    // After the GOAWAY the connection takes no new request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let req = Request::get("http://app.test/bytes/1")
        .body(full(""))
        .unwrap();
    assert!(client.send_request(req).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_clients_get_goaway_with_the_right_code() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let end = flag::END_HEADERS | flag::END_STREAM;
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        (
            "bad HPACK index",
            raw_frame(kind::HEADERS, end, 1, &[0x80]),
            0x9,
        ),
        ("DATA on stream 0", raw_frame(kind::DATA, 0, 0, b"x"), 0x1),
        (
            "connection window overflow",
            raw_frame(kind::WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
            0x3,
        ),
        (
            "frame on an idle stream",
            raw_frame(kind::DATA, 0, 9, b"x"),
            0x1,
        ),
        (
            "CONTINUATION without HEADERS",
            raw_frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]),
            0x1,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut socket = raw_h2(router.http).await;
        socket.write_all(&bytes).await.unwrap();
        let (_, payload) = read_until(&mut socket, &[kind::GOAWAY])
            .await
            .unwrap_or_else(|| panic!("{what}: no GOAWAY"));
        assert_eq!(error_code(&payload, 4), code, "{what}");
    }
    // No SETTINGS first.
    let mut socket = TcpStream::connect(router.http).await.unwrap();
    socket.write_all(frame::PREFACE).await.unwrap();
    socket
        .write_all(&raw_frame(kind::PING, 0, 0, &[0; 8]))
        .await
        .unwrap();
    let (_, payload) = read_until(&mut socket, &[kind::GOAWAY]).await.unwrap();
    assert_eq!(error_code(&payload, 4), 0x1);
    let errors = metric(router.admin, "switchyard_http2_connection_errors_total").await;
    assert_eq!(errors, 6.0, "each connection error is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut socket = raw_h2(router.http).await;
    // `expect` is static entry 35: literal without indexing, 4-bit index 15 + 20.
    let mut expect = vec![0x0f, 20, 12];
    expect.extend_from_slice(b"100-continue");
    let block = post_block("/upload", &expect);
    socket
        .write_all(&raw_frame(kind::HEADERS, flag::END_HEADERS, 1, &block))
        .await
        .unwrap();
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS, kind::GOAWAY])
        .await
        .unwrap();
    assert_eq!(
        (head.kind, head.flags & flag::END_STREAM),
        (kind::HEADERS, 0)
    );
    assert_eq!(&payload[..5], &[0x08, 3, b'1', b'0', b'0'], ":status 100");
    socket
        .write_all(&raw_frame(kind::DATA, flag::END_STREAM, 1, b"abc"))
        .await
        .unwrap();
    let (_, payload) = read_until(&mut socket, &[kind::HEADERS]).await.unwrap();
    assert_eq!(payload[0], 0x88, ":status 200");
    let (_, body) = read_until(&mut socket, &[kind::DATA]).await.unwrap();
    assert_eq!(
        body,
        format!("3 {}", b'a' as u64 + b'b' as u64 + b'c' as u64).as_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_limit_are_refused_and_counted() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut socket = raw_h2(router.http).await;
    let end = flag::END_HEADERS | flag::END_STREAM;
    let mut burst = Vec::new();
    for i in 0..201u32 {
        burst.extend(raw_frame(
            kind::HEADERS,
            end,
            2 * i + 1,
            &block_for("/slow", &[]),
        ));
    }
    socket.write_all(&burst).await.unwrap();
    let (head, payload) = read_until(&mut socket, &[kind::RST_STREAM]).await.unwrap();
    assert_eq!(
        (head.stream, error_code(&payload, 0)),
        (401, 0x7),
        "REFUSED_STREAM"
    );
    let refused = metric(router.admin, "switchyard_http2_streams_refused_total").await;
    assert_eq!(refused, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_resets_its_stream_and_the_connection_goes_on() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut socket = raw_h2(router.http).await;
    let end = flag::END_HEADERS | flag::END_STREAM;
    // An uppercase field name is malformed in HTTP/2.
    let mut bad = get_block(&[0x00, 3]);
    bad.extend_from_slice(b"X-A");
    bad.extend_from_slice(&[1, b'1']);
    socket
        .write_all(&raw_frame(kind::HEADERS, end, 1, &bad))
        .await
        .unwrap();
    let (head, payload) = read_until(&mut socket, &[kind::RST_STREAM, kind::HEADERS])
        .await
        .unwrap();
    assert_eq!((head.kind, head.stream), (kind::RST_STREAM, 1));
    assert_eq!(error_code(&payload, 0), 0x1);
    // The next request on the same connection is answered.
    socket
        .write_all(&raw_frame(kind::HEADERS, end, 3, &get_block(&[])))
        .await
        .unwrap();
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS, kind::GOAWAY])
        .await
        .unwrap();
    assert_eq!((head.kind, head.stream), (kind::HEADERS, 3));
    assert_eq!(payload[0], 0x88, ":status 200 from the static table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_rapid_resets_get_enhance_your_calm() {
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let end = flag::END_HEADERS | flag::END_STREAM;
    // A 70 KB field (over the 64 KiB default limit), in HEADERS plus CONTINUATION frames.
    let mut socket = raw_h2(router.http).await;
    const LEN: usize = 70_000;
    let mut big = get_block(&[0x00, 5]);
    big.extend_from_slice(b"x-big");
    // The value's length as an HPACK integer with a 7-bit prefix.
    big.push(0x7f);
    let mut rest = LEN - 127;
    while rest >= 0x80 {
        big.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    big.push(rest as u8);
    big.extend(std::iter::repeat_n(b'a', LEN));
    send_block(&mut socket, 1, &big).await;
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS, kind::GOAWAY])
        .await
        .unwrap();
    assert_eq!(head.kind, kind::HEADERS);
    // :status 431 is not in the static table: literal, name index 8, "431".
    assert_eq!(&payload[..5], &[0x08, 3, b'4', b'3', b'1']);

    // 34,000 distinct short fields in 200 KB: a header list of 1.2 MB, far over the 64 KiB
    // limit (a header map could not even index that many names): the connection ends.
    let mut bomb = get_block(&[]);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    for i in 0..34_000usize {
        let name = [
            alphabet[i % 36],
            alphabet[i / 36 % 36],
            alphabet[i / 1296 % 36],
        ];
        bomb.extend_from_slice(&[0x00, 3]);
        bomb.extend_from_slice(&name);
        bomb.push(0x00);
    }
    send_block(&mut socket, 3, &bomb).await;
    let (head, payload) = read_until(&mut socket, &[kind::HEADERS, kind::GOAWAY])
        .await
        .unwrap();
    assert_eq!(head.kind, kind::GOAWAY);
    assert_eq!(error_code(&payload, 4), 0xb, "ENHANCE_YOUR_CALM");

    // Requests reset as soon as they are sent, over and over.
    let mut socket = raw_h2(router.http).await;
    let mut burst = Vec::new();
    for i in 0..600u32 {
        let id = 2 * i + 1;
        burst.extend(raw_frame(kind::HEADERS, end, id, &get_block(&[])));
        burst.extend(raw_frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = socket.write_all(&burst).await;
    let (_, payload) = read_until(&mut socket, &[kind::GOAWAY]).await.unwrap();
    assert_eq!(error_code(&payload, 4), 0xb, "ENHANCE_YOUR_CALM");
    let resets = metric(router.admin, "switchyard_http2_client_resets_total").await;
    assert!(resets > 500.0, "{resets}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_with_open_streams_is_pinged_then_dropped() {
    // A backend that never answers, and a 200 ms keep-alive period.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let router = TestRouter::start(&format!(
        "{BASE}http2_keepalive = \"200ms\"\n[[route]]\nuri = \"/\"\nbackends = [\"{addr}\"]\n"
    ));
    // A client that answers PINGs (hyper's) keeps its waiting stream past several periods.
    let mut client = small_window_client(router.http).await;
    let req = Request::get("http://app.test/wait").body(full("")).unwrap();
    let waiting = tokio::spawn(async move { client.send_request(req).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!waiting.is_finished(), "a live client keeps its stream");
    waiting.abort();
    // A raw client that opens a stream and then reads nothing more and answers nothing.
    let mut socket = raw_h2(router.http).await;
    let end = flag::END_HEADERS | flag::END_STREAM;
    socket
        .write_all(&raw_frame(kind::HEADERS, end, 1, &get_block(&[])))
        .await
        .unwrap();
    let (head, _) = read_until(&mut socket, &[kind::PING]).await.unwrap();
    assert!(!head.has(flag::ACK), "the router pings");
    // Unanswered: within the next period the connection ends (GOAWAY, then EOF).
    let started = std::time::Instant::now();
    let (_, payload) = read_until(&mut socket, &[kind::GOAWAY]).await.unwrap();
    assert_eq!(error_code(&payload, 4), 0);
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.read_to_end(&mut rest)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tls_h2_response_reaches_a_slow_reader_whole() {
    // curl reads at a limited rate, so the router's socket fills and the TLS layer keeps what
    // it could not write: it must be flushed once the socket drains, not left behind.
    let backend = sized_backend().await;
    let pki = TestPki::new();
    let leaf = pki.leaf("h2tls", &["app.test"]);
    let router = https_router(&[leaf], &route("/", &[&backend]));
    let port = router.https.unwrap().port();
    let resolve = format!("app.test:{port}:127.0.0.1");
    const SIZE: usize = 8 * 1024 * 1024;
    let out = run(
        "curl",
        &[
            "-sS",
            "--http2",
            "-m",
            "30",
            "--limit-rate",
            "16M",
            "--cacert",
            &pki.ca().display().to_string(),
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{size_download}",
            &format!("https://app.test:{port}/bytes/{SIZE}"),
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("2 200 {SIZE}"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_never_panic_the_server() {
    // Seeded random frames (every type, random flags, streams and payloads, some valid HPACK)
    // on 2,000 connections; a panic anywhere in the router is counted by the hook.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    let backend = sized_backend().await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let mut socket = raw_h2(router.http).await;
        let mut bytes = Vec::new();
        for _ in 0..rng.usize(1..12) {
            let kind = rng.u8(0..11);
            let stream = match rng.u8(0..4) {
                0 => 0,
                1 => rng.u32(0..20),
                _ => 1 + 2 * rng.u32(0..5),
            };
            let flags = rng.u8(..);
            let payload: Vec<u8> = match rng.u8(0..3) {
                0 => get_block(&[]),
                1 => (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect(),
                _ => (0..rng.usize(0..8)).map(|_| rng.u8(..)).collect(),
            };
            bytes.extend(raw_frame(kind, flags, stream, &payload));
        }
        let _ = socket.write_all(&bytes).await;
        let mut sink = vec![0u8; 65536];
        let _ = tokio::time::timeout(Duration::from_millis(20), socket.read(&mut sink)).await;
    }
    assert_eq!(PANICS.load(std::sync::atomic::Ordering::SeqCst), 0);
    // And the server still serves.
    let mut client = small_window_client(router.http).await;
    let req = Request::get("http://app.test/bytes/5")
        .body(full(""))
        .unwrap();
    let response = client.send_request(req).await.unwrap();
    assert_eq!(text(response).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_sent_goaway_before_it_closes() {
    let backend = sized_backend().await;
    let router = TestRouter::start(&format!(
        "{BASE}idle_timeout = \"500ms\"\n{}",
        route("/", &[&backend])
    ));
    let mut socket = raw_h2(router.http).await;
    let end = flag::END_HEADERS | flag::END_STREAM;
    socket
        .write_all(&raw_frame(kind::HEADERS, end, 1, &get_block(&[])))
        .await
        .unwrap();
    let (head, _) = read_until(&mut socket, &[kind::HEADERS]).await.unwrap();
    assert_eq!(head.stream, 1);
    let started = std::time::Instant::now();
    let (_, payload) = read_until(&mut socket, &[kind::GOAWAY])
        .await
        .expect("GOAWAY before the close");
    assert_eq!((error_code(&payload, 0), error_code(&payload, 4)), (1, 0));
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.read_to_end(&mut rest)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed after the GOAWAY"
    );
}
