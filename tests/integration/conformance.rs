//! Go `httputil.ReverseProxy` conformance items (research/go-reverseproxy-conformance.md),
//! one test per item, named after it.

use crate::support::*;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use std::time::Duration;

async fn echo_router() -> (Backend, TestRouter) {
    let backend = Backend::echo("b1").await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    (backend, router)
}

// A. Hop-by-hop headers and Connection

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a01_request_hop_by_hop_headers_removed() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("connection", "keep-alive, te")
        .header("proxy-connection", "keep-alive")
        .header("keep-alive", "timeout=5")
        .header("upgrade", "foo")
        .header("te", "gzip")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "upgrade",
        "te",
        "http2-settings",
        "proxy-authorization",
        "transfer-encoding",
    ] {
        assert!(
            seen(&echo, name).is_empty(),
            "{name} reached the backend: {echo}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a02_response_hop_by_hop_headers_removed() {
    let backend = Backend::start(|_req| async {
        let mut response = Response::new(full("gone"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        let h = response.headers_mut();
        h.insert("upgrade", "foo".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("proxy-authenticate", "Basic".parse().unwrap());
        h.insert("x-end-to-end", "kept".parse().unwrap());
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let response = get(&router, "app.test", "/").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for name in ["upgrade", "keep-alive", "proxy-authenticate"] {
        assert!(
            !response.headers().contains_key(name),
            "{name} reached the client"
        );
    }
    assert_eq!(response.headers()["x-end-to-end"], "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a03_connection_named_headers_removed_from_request() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("connection", "Upgrade, X-Fake-Connection-Token")
        .header("connection", "X-Some-Conn-Header")
        .header("x-fake-connection-token", "1")
        .header("x-some-conn-header", "2")
        .header("x-kept", "3")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert!(seen(&echo, "x-fake-connection-token").is_empty(), "{echo}");
    assert!(seen(&echo, "x-some-conn-header").is_empty(), "{echo}");
    assert_eq!(seen(&echo, "x-kept"), ["3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a04_connection_named_headers_removed_from_response() {
    let backend = Backend::start(|_req| async {
        let mut response = Response::new(full("ok"));
        let h = response.headers_mut();
        h.append("connection", "x-hOP, ClOsE".parse().unwrap());
        h.append("connection", "X-Other".parse().unwrap());
        h.insert("x-hop", "1".parse().unwrap());
        h.insert("x-other", "1".parse().unwrap());
        h.insert("x-extension", "kept".parse().unwrap());
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    for http2 in [false, true] {
        let req = Request::get("http://app.test/").body(full("")).unwrap();
        let response = if http2 {
            send_h2(router.http, req).await
        } else {
            send(router.http, req).await
        };
        let h = response.headers();
        assert!(
            !h.contains_key("x-hop") && !h.contains_key("x-other"),
            "http2={http2}: {h:?}"
        );
        assert_eq!(
            h.get("x-extension").map(|v| v.to_str().unwrap()),
            Some("kept"),
            "http2={http2}: {h:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a05_empty_connection_values_tolerated() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("connection", "")
        .header("connection", "X-Some-Conn-Header")
        .header("x-some-conn-header", "1")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert!(seen(&echo, "connection").is_empty());
    assert!(seen(&echo, "x-some-conn-header").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a06_te_trailers_kept() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("connection", "close, TE")
        .header("te", "foo")
        .header("te", "bar, trailers")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(seen(&echo, "te"), ["trailers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a07_client_connection_close_not_sent_upstream() {
    let (backend, router) = echo_router().await;
    for _ in 0..3 {
        let req = Request::get("/")
            .header("host", "app.test")
            .header("connection", "close")
            .body(full(""))
            .unwrap();
        let echo = json_body(send(router.http, req).await).await;
        assert!(seen(&echo, "connection").is_empty());
    }
    // Two workers may each open one connection; without reuse there would be three.
    assert!(
        backend.connections() <= 2,
        "upstream connections: {}",
        backend.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a08_upstream_connections_reused_and_close_honoured() {
    let (backend, router) = echo_router().await;
    let stream = tokio::net::TcpStream::connect(router.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..5 {
        sender.ready().await.unwrap();
        let req = Request::get("/")
            .header("host", "app.test")
            .body(full(""))
            .unwrap();
        text(sender.send_request(req).await.unwrap()).await;
    }
    assert_eq!(
        backend.connections(),
        1,
        "one client connection, one upstream connection"
    );

    let closing = Backend::start(|_req| async {
        let mut response = Response::new(full("bye"));
        response
            .headers_mut()
            .insert("connection", "X-Hop, close".parse().unwrap());
        response.headers_mut().insert("x-hop", "1".parse().unwrap());
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&closing]));
    for _ in 0..3 {
        let response = get(&router, "app.test", "/").await;
        assert!(!response.headers().contains_key("x-hop"));
        assert_eq!(text(response).await, "bye");
    }
    assert_eq!(
        closing.connections(),
        3,
        "close from upstream ends that connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a09_end_to_end_headers_pass_untouched() {
    let backend = Backend::start(|req| async move {
        let values: Vec<_> = req
            .headers()
            .get_all("x-multi-value")
            .iter()
            .cloned()
            .collect();
        let mut response = Response::new(full(format!("{}", values.len())));
        let h = response.headers_mut();
        h.append("set-cookie", "a=1".parse().unwrap());
        h.append("set-cookie", "b=2".parse().unwrap());
        h.insert("trailers", "not-special".parse().unwrap());
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-multi-value", "1")
        .header("x-multi-value", "2")
        .body(full(""))
        .unwrap();
    let response = send(router.http, req).await;
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(response.headers()["trailers"], "not-special");
    assert_eq!(text(response).await, "2");
}

// B. Forwarding headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b10_x_forwarded_for_holds_client_ip() {
    let (_backend, router) = echo_router().await;
    let echo = json_body(get(&router, "app.test", "/").await).await;
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b11_x_forwarded_for_appends_and_folds() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-for", "10.0.0.2, 10.0.0.3")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(
        seen(&echo, "x-forwarded-for"),
        ["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b14_x_forwarded_proto_host_and_request_start_set() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test:8080")
        .header("x-forwarded-proto", "https")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(
        seen(&echo, "x-forwarded-proto"),
        ["http"],
        "client value is not trusted"
    );
    assert_eq!(seen(&echo, "x-forwarded-host"), ["app.test:8080"]);
    let start: u64 = seen(&echo, "x-request-start")[0].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now.abs_diff(start) < 10_000,
        "X-Request-Start {start} vs now {now}"
    );

    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-request-start", "1234")
        .header("x-forwarded-host", "original.test")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(
        seen(&echo, "x-request-start"),
        ["1234"],
        "kept when present"
    );
    assert_eq!(
        seen(&echo, "x-forwarded-host"),
        ["original.test"],
        "kept when present"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b15_request_id_overwritten_upstream_and_echoed() {
    let (_backend, router) = echo_router().await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-vcap-request-id", "client-chosen")
        .body(full(""))
        .unwrap();
    let response = send(router.http, req).await;
    let echoed = response.headers()["x-vcap-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let echo = json_body(response).await;
    let upstream = seen(&echo, "x-vcap-request-id");
    assert_eq!(upstream.len(), 1);
    assert_ne!(upstream[0], "client-chosen");
    assert_eq!(upstream[0].len(), 36, "a UUID");
    assert_eq!(
        echoed, upstream[0],
        "the client sees the id the backend saw"
    );
}

// C. Host, path and query

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c16_inbound_host_kept() {
    let (_backend, router) = echo_router().await;
    let echo = json_body(get(&router, "App.Test:1234", "/").await).await;
    assert_eq!(seen(&echo, "host"), ["App.Test:1234"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c19_raw_path_and_query_forwarded_unchanged() {
    let (_backend, router) = echo_router().await;
    let echo = json_body(get(&router, "app.test", "/a%2Fb/c//d?x=1&y=%zz;z").await).await;
    assert_eq!(echo["uri"], "/a%2Fb/c//d?x=1&y=%zz;z");
}

// D. User-Agent

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d23_no_synthetic_user_agent() {
    let (_backend, router) = echo_router().await;
    let echo = json_body(get(&router, "app.test", "/").await).await;
    assert!(seen(&echo, "user-agent").is_empty(), "{echo}");
    let req = Request::get("/")
        .header("host", "app.test")
        .header("user-agent", "explicit UA")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(seen(&echo, "user-agent"), ["explicit UA"]);
}

// E. Bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e24_get_without_body_gains_no_body() {
    let (_backend, router) = echo_router().await;
    let echo = json_body(get(&router, "app.test", "/").await).await;
    assert!(seen(&echo, "transfer-encoding").is_empty());
    assert!(seen(&echo, "content-length").is_empty(), "{echo}");
    let req = Request::post("/")
        .header("host", "app.test")
        .header("content-length", "0")
        .body(full(""))
        .unwrap();
    let echo = json_body(send(router.http, req).await).await;
    assert_eq!(echo["body_len"], 0);
    assert!(seen(&echo, "transfer-encoding").is_empty(), "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e25_large_upload_streams_intact() {
    let backend = Backend::start(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let sum: u64 = body.iter().map(|&b| b as u64).sum();
        Response::new(full(format!("{} {}", body.len(), sum)))
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let sum: u64 = data.iter().map(|&b| b as u64).sum();
    let req = Request::post("/")
        .header("host", "app.test")
        .body(full(data))
        .unwrap();
    assert_eq!(
        text(send(router.http, req).await).await,
        format!("1048576 {sum}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e27_short_upstream_body_aborts_client_connection() {
    // A raw backend that promises 100 bytes, sends 10 and closes.
    let addr = raw_backend(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
        RawEnd::Close,
    )
    .await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"app.test\"\nbackends = [\"{addr}\"]\n"
    ));
    let response = get(&router, "app.test", "/").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "headers were already on their way"
    );
    let body = response.into_body().collect().await;
    assert!(
        body.is_err(),
        "the client must see an error, not a clean short body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e29_content_length_preserved_on_head_204_304_and_zero() {
    let backend = Backend::start(|req| async move {
        let (status, length) = match req.uri().path() {
            "/204" => (StatusCode::NO_CONTENT, None),
            "/304" => (StatusCode::NOT_MODIFIED, Some("42")),
            "/zero" => (StatusCode::OK, Some("0")),
            _ => (StatusCode::OK, Some("5")),
        };
        let body = if req.method() == http::Method::HEAD || length != Some("5") {
            ""
        } else {
            "hello"
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = status;
        if let Some(length) = length {
            response
                .headers_mut()
                .insert("content-length", length.parse().unwrap());
        }
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let head = Request::head("/")
        .header("host", "app.test")
        .body(full(""))
        .unwrap();
    let response = send(router.http, head).await;
    assert_eq!(
        response
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap()),
        Some("5"),
        "{response:?}"
    );
    assert_eq!(text(response).await, "");
    let response = get(&router, "app.test", "/204").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!response.headers().contains_key("content-length"));
    assert!(!response.headers().contains_key("transfer-encoding"));
    let response = get(&router, "app.test", "/304").await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(!response.headers().contains_key("transfer-encoding"));
    assert_eq!(text(response).await, "");
    let response = get(&router, "app.test", "/zero").await;
    assert_eq!(response.headers()["content-length"], "0");
    assert!(!response.headers().contains_key("transfer-encoding"));
}

// F. Status codes and errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f30_backend_status_passes_through() {
    let backend = Backend::start(|_req| async {
        let mut response = Response::new(full("teapot"));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let response = get(&router, "app.test", "/").await;
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert!(!response.headers().contains_key("x-cf-routererror"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f31_unreachable_or_hanging_up_backend_gives_502() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Hangs up after reading the request, without a byte of answer.
    let hangup = raw_backend(b"", RawEnd::Close).await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"refused.test\"\nbackends = [\"{unused}\"]\n[[route]]\nuri = \"hangup.test\"\nbackends = [\"{hangup}\"]\n"
    ));
    for host in ["refused.test", "hangup.test"] {
        let response = get(&router, host, "/").await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{host}");
        let error = response.headers()["x-cf-routererror"].to_str().unwrap();
        assert!(error.starts_with("endpoint_failure"), "{host}: {error}");
    }
}

// G. Cancellation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g33_client_going_away_cancels_upstream_request() {
    let (addr, got_request_rx, closed_rx) = silent_backend().await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"app.test\"\nbackends = [\"{addr}\"]\n"
    ));
    let client = tokio::spawn({
        let http = router.http;
        async move {
            let req = Request::get("/")
                .header("host", "app.test")
                .body(full(""))
                .unwrap();
            send(http, req).await
        }
    });
    tokio::time::timeout(Duration::from_secs(5), got_request_rx)
        .await
        .unwrap()
        .unwrap();
    client.abort();
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("backend connection closed after the client left")
        .unwrap();
}

// H. Streaming

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h35_server_sent_events_flushed_at_once() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release = std::sync::Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let backend = Backend::start(move |_req| {
        let release = release.lock().unwrap().take();
        async move {
            let stream = async_stream(release);
            let mut response = Response::new(stream);
            response.headers_mut().insert(
                "content-type",
                "text/event-stream; charset=utf-8".parse().unwrap(),
            );
            response
        }
    })
    .await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let mut body = get(&router, "app.test", "/").await.into_body();
    let first = tokio::time::timeout(Duration::from_secs(3), body.frame())
        .await
        .expect("first event arrives before the stream ends")
        .unwrap()
        .unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        Bytes::from_static(b"data: one\n\n")
    );
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, Bytes::from_static(b"data: two\n\n"));
}

/// A body sending one event, waiting for `release`, then a second event.
fn async_stream(release: Option<tokio::sync::oneshot::Receiver<()>>) -> TestBody {
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        let _ = tx
            .send(Frame::data(Bytes::from_static(b"data: one\n\n")))
            .await;
        if let Some(release) = release {
            let _ = release.await;
        }
        let _ = tx
            .send(Frame::data(Bytes::from_static(b"data: two\n\n")))
            .await;
    });
    body
}
