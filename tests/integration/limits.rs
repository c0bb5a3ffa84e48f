//! Client-side limits and bad input: slow headers, idle connections, oversized heads,
//! malformed requests, a backend that resets mid-body, a client that leaves mid-upload.

use crate::support::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn limited_router(backend: &Backend) -> TestRouter {
    TestRouter::start(&format!(
        r#"
[listen]
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
[server]
workers = 1
drain_timeout = "300ms"
header_read_timeout = "500ms"
idle_timeout = "700ms"
max_header_bytes = 8192
{}"#,
        route("app.test", &[backend])
    ))
}

/// Reads until the peer closes; returns how long that took.
async fn time_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_head_is_cut_at_header_read_timeout() {
    let backend = Backend::echo("b").await;
    let router = limited_router(&backend);
    let mut stream = tokio::net::TcpStream::connect(router.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app")
        .await
        .unwrap();
    let closed = time_until_closed(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("slowloris connection closed");
    assert!(
        closed < Duration::from_millis(3000),
        "closed after {closed:?}"
    );
    assert_eq!(backend.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_closed_after_idle_timeout() {
    let backend = Backend::echo("b").await;
    let router = limited_router(&backend);
    let mut stream = tokio::net::TcpStream::connect(router.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = time_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("idle connection closed");
    assert!(
        closed >= Duration::from_millis(400) && closed < Duration::from_millis(3500),
        "closed after {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_request_is_not_cut_by_idle_timeout() {
    let backend = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        http::Response::new(full("slow but fine"))
    })
    .await;
    let router = limited_router(&backend);
    let response = get(&router, "app.test", "/").await;
    assert_eq!(text(response).await, "slow but fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_gets_431() {
    let backend = Backend::echo("b").await;
    let router = limited_router(&backend);
    let big = "x".repeat(20_000);
    let request = format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n");
    let reply = raw(router.http, request.as_bytes(), Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply:.100}");
    assert_eq!(backend.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_the_router_keeps_serving() {
    let backend = Backend::echo("b").await;
    let router = limited_router(&backend);
    let bad: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nBad Header: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for request in bad {
        let reply = raw(router.http, request, Duration::from_secs(2)).await;
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
            "{:?} -> {reply:.80}",
            String::from_utf8_lossy(request)
        );
    }
    let response = get(&router, "app.test", "/").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_host_gets_400_empty_host() {
    let backend = Backend::echo("b").await;
    let router = limited_router(&backend);
    let reply = raw(
        router.http,
        b"GET / HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply
            .to_lowercase()
            .contains("x-cf-routererror: empty_host"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_reset_mid_body_aborts_client_and_router_survives() {
    let addr = raw_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        RawEnd::Reset,
    )
    .await;
    let good = Backend::echo("good").await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"reset.test\"\nbackends = [\"{addr}\"]\n{}",
        route("good.test", &[&good])
    ));
    for _ in 0..3 {
        let response = get(&router, "reset.test", "/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.into_body().collect().await.is_err(),
            "truncated body must be an error"
        );
    }
    assert_eq!(
        get(&router, "good.test", "/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_upload_does_not_hurt_the_router() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel::<bool>(4);
    let backend = Backend::start(move |req| {
        let seen_tx = seen_tx.clone();
        async move {
            let complete = req.into_body().collect().await.is_ok();
            let _ = seen_tx.send(complete).await;
            http::Response::new(full("done"))
        }
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let mut stream = tokio::net::TcpStream::connect(router.http).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[b'x'; 10_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let complete = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !complete,
        "the backend must see an incomplete body, not a short complete one"
    );
    let req = Request::post("/")
        .header("host", "app.test")
        .body(full("small"))
        .unwrap();
    assert_eq!(text(send(router.http, req).await).await, "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_keep_alive_connection_serves_its_next_request() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let mut client = KeepAlive::connect(router.http).await;
    for round in 0..3 {
        let echo = json_body(client.get("app.test", &format!("/round/{round}")).await).await;
        assert_eq!(echo["uri"], format!("/round/{round}"));
        // Longer than the park threshold: the router drops its HTTP state, keeps the socket.
        tokio::time::sleep(switchyard::server::PARK_AFTER + Duration::from_millis(700)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_all_answered_in_order() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let mut request = Vec::new();
    for i in 0..3 {
        request
            .extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: app.test\r\n\r\n").as_bytes());
    }
    request.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    let reply = raw(router.http, &request, Duration::from_secs(5)).await;
    let positions: Vec<usize> = ["/p0", "/p1", "/p2", "/last"]
        .iter()
        .map(|p| {
            reply
                .find(&format!("\"uri\":\"{p}\""))
                .unwrap_or(usize::MAX)
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions[3] != usize::MAX,
        "{reply}"
    );
}
