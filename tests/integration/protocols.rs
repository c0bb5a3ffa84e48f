//! Trailers, 1xx, upgrades (WebSocket and others), h2c smuggling, HTTP/2 upstreams, gRPC.

use crate::support::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend whose response body is "body" followed by trailer `x-checksum: abc`.
async fn trailer_backend() -> Backend {
    Backend::start(|req| async move {
        let _ = req.into_body().collect().await;
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            let _ = tx.send(Frame::data(Bytes::from_static(b"body"))).await;
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", "abc".parse().unwrap());
            let _ = tx.send(Frame::trailers(trailers)).await;
        });
        let mut response = Response::new(body);
        response
            .headers_mut()
            .insert("trailer", "x-checksum".parse().unwrap());
        response
    })
    .await
}

async fn collect_trailers(response: Response<hyper::body::Incoming>) -> (Bytes, Option<HeaderMap>) {
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes(), trailers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i36_response_trailers_forwarded_over_http1_and_h2c() {
    let h1 = trailer_backend().await;
    let h2 = trailer_backend().await;
    let router = TestRouter::with_routes(&format!(
        "{}{}protocol = \"http2\"\n",
        route("h1.test", &[&h1]),
        route("h2.test", &[&h2])
    ));
    for host in ["h1.test", "h2.test"] {
        // HTTP/1.1 client announcing it accepts trailers.
        let req = Request::get("/")
            .header("host", host)
            .header("te", "trailers")
            .body(full(""))
            .unwrap();
        let (body, trailers) = collect_trailers(send(router.http, req).await).await;
        assert_eq!(body, "body", "{host}");
        assert_eq!(
            trailers.expect("h1 trailers")["x-checksum"],
            "abc",
            "{host} over HTTP/1.1"
        );
        // h2c client.
        let req = Request::get(format!("http://{host}/"))
            .body(full(""))
            .unwrap();
        let (body, trailers) = collect_trailers(send_h2(router.http, req).await).await;
        assert_eq!(body, "body");
        assert_eq!(
            trailers.expect("h2 trailers")["x-checksum"],
            "abc",
            "{host} over h2c"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i37_request_trailers_forwarded_to_http2_backend() {
    let backend = Backend::echo("h2").await;
    let router = TestRouter::with_routes(&format!(
        "{}protocol = \"http2\"\n",
        route("app.test", &[&backend])
    ));
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        let _ = tx.send(Frame::data(Bytes::from_static(b"payload"))).await;
        let mut trailers = HeaderMap::new();
        trailers.insert("x-request-trailer", "yes".parse().unwrap());
        let _ = tx.send(Frame::trailers(trailers)).await;
    });
    let req = Request::post("http://app.test/").body(body).unwrap();
    let echo = json_body(send_h2(router.http, req).await).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo["trailers"][0][0], "x-request-trailer", "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j41_expect_100_continue_end_to_end() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::with_routes(&route("app.test", &[&backend]));
    let dir = temp_dir("expect");
    let file = dir.join("body");
    std::fs::write(&file, vec![b'x'; 5000]).unwrap();
    let out = run(
        "curl",
        &[
            "-sv",
            "--http1.1",
            "-H",
            "Host: app.test",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &format!("@{}", file.display()),
            &router.url("/"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP/1.1 100 Continue"), "{stderr}");
    let echo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echo["body_len"], 5000);
}

/// A raw backend that accepts `Upgrade: foo` by answering `Upgrade: <answer>`, then, after
/// the client half-closes, sends back what it read and closes.
async fn raw_upgrade_backend(answer: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let reply = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {answer}\r\n\r\n"
                );
                stream.write_all(reply.as_bytes()).await.unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                stream.write_all(b"after-eof:").await.unwrap();
                stream.write_all(&got).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k43_k45_upgrade_case_insensitive_with_half_close_both_ways() {
    let addr = raw_upgrade_backend("FOO").await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"app.test\"\nbackends = [\"{addr}\"]\n"
    ));
    let mut client = tokio::net::TcpStream::connect(router.http).await.unwrap();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            client.read(&mut byte).await.unwrap(),
            1,
            "head so far: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: foo"), "{head}");
    client.write_all(b"ping").await.unwrap();
    client.shutdown().await.unwrap(); // half-close: the backend must see EOF
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .expect("backend's reply and close reach the client")
        .unwrap();
    assert_eq!(rest, b"after-eof:ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k43_upgrade_to_another_protocol_is_a_502() {
    let addr = raw_upgrade_backend("bar").await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"app.test\"\nbackends = [\"{addr}\"]\n"
    ));
    let reply = raw(
        router.http,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 502"), "{reply}");
    assert!(
        reply
            .to_lowercase()
            .contains("x-cf-routererror: endpoint_failure"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k42_k44_websocket_end_to_end_and_close_propagates() {
    let (addr, closed_rx) = ws_echo_backend().await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"/ws\"\nbackends = [\"{addr}\"]\n"
    ));
    let (mut ws, response) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/chat", router.http))
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..3 {
        ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
            "m{i}"
        )))
        .await
        .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.to_text().unwrap(), format!("echo:m{i}"));
    }
    ws.close(None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("backend saw the close")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k47_h2c_upgrade_never_forwarded() {
    let (_backend, router) = {
        let backend = Backend::echo("b").await;
        let router = TestRouter::with_routes(&route("app.test", &[&backend]));
        (backend, router)
    };
    for (connection, upgrade) in [
        ("Upgrade, HTTP2-Settings", "h2c"),
        ("upgrade", " H2C "),
        ("Upgrade", "h2c, websocket-not-really"),
    ] {
        let req = Request::get("/")
            .header("host", "app.test")
            .header("connection", connection)
            .header("upgrade", upgrade)
            .header("http2-settings", "AAMAAABkAAQAAP__")
            .body(full(""))
            .unwrap();
        let response = send(router.http, req).await;
        if upgrade.contains("websocket") {
            // The remainder is a (bogus) upgrade the echo backend does not accept: a plain 200.
            assert_eq!(response.status(), StatusCode::OK);
            let echo = json_body(response).await;
            assert_eq!(seen(&echo, "upgrade"), ["websocket-not-really"]);
            assert!(seen(&echo, "http2-settings").is_empty());
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK, "{upgrade}");
        let echo = json_body(response).await;
        for name in ["upgrade", "connection", "http2-settings"] {
            assert!(
                seen(&echo, name).is_empty(),
                "{name} forwarded for {upgrade:?}: {echo}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l49_http2_on_both_sides() {
    let backend = Backend::echo("h2").await;
    let router = TestRouter::with_routes(&format!(
        "{}protocol = \"http2\"\n",
        route("app.test", &[&backend])
    ));
    let req = Request::get("http://app.test/x?y=1")
        .header("x-end", "1")
        .body(full(""))
        .unwrap();
    let response = send_h2(router.http, req).await;
    assert_eq!(response.version(), http::Version::HTTP_2);
    let echo = json_body(response).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["uri"], "http://app.test/x?y=1");
    assert_eq!(seen(&echo, "x-end"), ["1"]);
    // HTTP/1.1 in, HTTP/2 out: the Host becomes the :authority.
    let echo = json_body(get(&router, "app.test", "/z").await).await;
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["uri"], "http://app.test/z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_http1_clients_share_one_port_via_curl() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::with_routes(&route("/", &[&backend]));
    for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
        let out = run(
            "curl",
            &[
                "-s",
                flag,
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                &router.url("/"),
            ],
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{version} 200")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_and_streaming_through_h2c_and_tls() {
    let python = python();
    let probe = run(&python, &["-c", "import grpc"]).await;
    assert!(
        probe.status.success(),
        "{python} cannot import grpc; run scripts/test.sh (it installs grpcio): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/echo.py");
    let (mut server, port) = python_server(&[script, "server"]).await;

    let pki = TestPki::new();
    let router = https_router(
        &[pki.leaf("router", &["grpc.test"])],
        &format!(
            "[[route]]\nuri = \"/echo.Echo\"\nbackends = [\"127.0.0.1:{port}\"]\nprotocol = \"http2\"\n"
        ),
    );
    let out = run(&python, &[script, "client", &router.http.to_string()]).await;
    assert!(
        out.status.success(),
        "h2c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let https = router.https.unwrap().to_string();
    let ca = pki.ca().display().to_string();
    let out = run(
        &python,
        &[script, "client", &https, "--tls", &ca, "grpc.test"],
    )
    .await;
    assert!(
        out.status.success(),
        "tls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    drop(server.stdin.take());
    let _ = server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_heads_skipped_and_close_delimited_bodies_read_to_the_end() {
    let hints = raw_backend(
        b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        RawEnd::Close,
    )
    .await;
    let until_close = raw_backend(b"HTTP/1.1 200 OK\r\n\r\nread until close", RawEnd::Close).await;
    let chunked = raw_backend(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n",
        RawEnd::Close,
    )
    .await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"hints.test\"\nbackends = [\"{hints}\"]\n\
         [[route]]\nuri = \"close.test\"\nbackends = [\"{until_close}\"]\n\
         [[route]]\nuri = \"chunked.test\"\nbackends = [\"{chunked}\"]\n"
    ));
    let response = get(&router, "hints.test", "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "ok");
    let response = get(&router, "close.test", "/").await;
    assert_eq!(text(response).await, "read until close");
    let req = Request::get("/")
        .header("host", "chunked.test")
        .header("te", "trailers")
        .body(full(""))
        .unwrap();
    let collected = send(router.http, req)
        .await
        .into_body()
        .collect()
        .await
        .unwrap();
    let trailers = collected.trailers().cloned();
    assert_eq!(collected.to_bytes(), "abcde");
    assert_eq!(trailers.unwrap()["x-sum"], "5");
}
