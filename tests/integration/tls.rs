//! TLS: the HTTPS listener (ALPN h2 + http/1.1, certificates by SNI) and TLS to backends
//! verified against `server_cert_domain_san`.

use crate::support::*;
use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;

fn two_cert_router(pki: &TestPki, routes: &str) -> TestRouter {
    let a = pki.leaf("a", &["a.test"]);
    let b = pki.leaf("b", &["b.test", "*.b.test"]);
    https_router(&[a, b], routes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_alpn_h2_and_http1_with_sni_certificates() {
    let backend = Backend::echo("b").await;
    let pki = TestPki::new();
    let router = two_cert_router(&pki, &route("/", &[&backend]));
    let port = router.https.unwrap().port();
    let ca = pki.ca().display().to_string();
    for host in ["a.test", "b.test", "x.b.test"] {
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let url = format!("https://{host}:{port}/");
            let resolve = format!("{host}:{port}:127.0.0.1");
            let out = run(
                "curl",
                &[
                    "-sS",
                    flag,
                    "--cacert",
                    &ca,
                    "--resolve",
                    &resolve,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                    &url,
                ],
            )
            .await;
            // curl verifies the served certificate against `host`: a wrong SNI choice fails here.
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{version} 200"),
                "{host} {flag}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // X-Forwarded-Proto says https on the TLS listener.
    let resolve = format!("a.test:{port}:127.0.0.1");
    let out = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            &format!("https://a.test:{port}/"),
        ],
    )
    .await;
    let echo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["https"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_tls_connection_serves_its_next_request() {
    let backend = Backend::echo("b").await;
    let pki = TestPki::new();
    let router = two_cert_router(&pki, &route("/", &[&backend]));
    let roots = switchyard::tls::load_roots(&pki.ca()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(router.https.unwrap())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("a.test").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut client = KeepAlive::over(tls).await;
    // First a chunked upload, which the hand-written server hands to hyper: hyper's connection
    // is not parked over TLS (its socket could not be taken back), so it must stay open too.
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        let _ = tx
            .send(hyper::body::Frame::data(bytes::Bytes::from_static(b"up")))
            .await;
    });
    let upload = Request::post("/upload")
        .header("host", "a.test")
        .body(body)
        .unwrap();
    let echo = json_body(client.send(upload).await.expect("upload answered")).await;
    assert_eq!(echo["uri"], "/upload");
    tokio::time::sleep(switchyard::server::PARK_AFTER + Duration::from_millis(700)).await;
    for round in 0..3 {
        let path = format!("/round/{round}");
        let answer = client.get("a.test", &path);
        let answer = tokio::time::timeout(Duration::from_secs(10), answer).await;
        let echo = json_body(answer.expect("no answer on the parked connection")).await;
        assert_eq!(echo["uri"], format!("/round/{round}"));
        assert_eq!(seen(&echo, "x-forwarded-proto"), ["https"]);
        // Longer than the park threshold: the router drops its HTTP state and keeps the TLS
        // session, which must still decrypt the next request.
        tokio::time::sleep(switchyard::server::PARK_AFTER + Duration::from_millis(700)).await;
    }
}

/// A TLS backend (HTTP/1.1 and h2 by ALPN) with a certificate for `name`.
async fn tls_backend(pki: &TestPki, name: &str) -> std::net::SocketAddr {
    let (cert, key) = pki.leaf(&format!("backend-{name}"), &[name]);
    let certified = switchyard::tls::load_certified_key(&cert, &key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(switchyard::tls::server_config(vec![certified]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let alpn = stream
                    .get_ref()
                    .1
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                let alpn = Arc::new(alpn.unwrap_or_default());
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let alpn = alpn.clone();
                    async move {
                        let body = format!("tls backend, alpn {alpn}, {:?}", req.version());
                        Ok::<_, std::convert::Infallible>(Response::new(full(body)))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_backends_verified_against_server_cert_domain_san() {
    let pki = TestPki::new();
    let good = tls_backend(&pki, "backend.internal").await;
    let ca = pki.ca().display().to_string();
    let router = TestRouter::start(&format!(
        r#"{BASE}
[proxy]
backend_ca_file = "{ca}"
[[route]]
uri = "good.test"
backends = [{{ address = "{good}", tls = true, server_cert_domain_san = "backend.internal" }}]
[[route]]
uri = "h2.test"
protocol = "http2"
backends = [{{ address = "{good}", tls = true, server_cert_domain_san = "backend.internal" }}]
[[route]]
uri = "wrong-name.test"
backends = [{{ address = "{good}", tls = true, server_cert_domain_san = "other.internal" }}]
"#
    ));
    let response = get(&router, "good.test", "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "tls backend, alpn http/1.1, HTTP/1.1");
    let response = get(&router, "h2.test", "/").await;
    assert_eq!(text(response).await, "tls backend, alpn h2, HTTP/2.0");
    let response = get(&router, "wrong-name.test", "/").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let error = response.headers()["x-cf-routererror"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(error.contains("tls"), "{error}");
}
