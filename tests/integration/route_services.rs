//! Route services against a real one: a Python HTTPS route service (`tests/route_service/`)
//! that opens the router's signature with its own crypto, checks it, and sends the request
//! back through the router. Tampered, expired and other-route signatures are refused as
//! gorouter refuses them, and the three headers never reach the app or the client.

use crate::process::free_port;
use crate::support::*;
use http::{Request, StatusCode};

pub const SECRET: &str = "route-service-secret";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/route_service/route_service.py"
);

/// The route service, sending requests back to the router's port `router_port`; its port.
pub async fn start_route_service(router_port: u16, pki: &TestPki) -> (tokio::process::Child, u16) {
    let python = python();
    let probe = run(&python, &["-c", "import cryptography"]).await;
    assert!(
        probe.status.success(),
        "{python} cannot import cryptography; run scripts/test.sh (it installs it)"
    );
    let (cert, key) = pki.leaf("route-service", &["localhost"]);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let port = router_port.to_string();
    python_server(&[SCRIPT, "serve", &port, SECRET, cert, key]).await
}

/// A signature made by the test's route-service code for `url`, `seconds_ago`.
async fn python_signature(secret: &str, url: &str, seconds_ago: u32) -> (String, String) {
    let output = run(
        &python(),
        &[SCRIPT, "sign", secret, url, &seconds_ago.to_string()],
    )
    .await;
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().into(), lines.next().unwrap().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_route_service_sees_every_request_and_the_app_never_sees_the_signature() {
    let pki = TestPki::new();
    let http = free_port();
    let (_service, service_port) = start_route_service(http, &pki).await;
    let app = Backend::echo("app").await;
    let other = Backend::echo("other").await;
    let router = TestRouter::start(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:0\"\n\
         [route_services]\nsecret = \"{SECRET}\"\nca_file = \"{}\"\n\
         [[route]]\nuri = \"app.test\"\nbackends = [\"{}\"]\n\
         route_service_url = \"https://localhost:{service_port}/check?from=router\"\n\
         [[route]]\nuri = \"other.test\"\nbackends = [\"{}\"]\n",
        pki.ca().display(),
        app.addr,
        other.addr
    ));

    // Through the route service and back to the app, GET and POST.
    for n in 0..10 {
        let req = Request::post(format!("/orders/{n}?q=1"))
            .header("host", "app.test")
            .body(full(format!("order {n}")))
            .unwrap();
        let response = send(router.http, req).await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_eq!(response.headers()["x-route-service"], "seen");
        assert!(!response.headers().contains_key("x-cf-proxy-signature"));
        let echo = json_body(response).await;
        assert_eq!(echo["backend"], "app");
        assert_eq!(echo["uri"], format!("/orders/{n}?q=1"));
        assert_eq!(echo["body"], format!("order {n}"));
        assert_eq!(seen(&echo, "x-route-service"), ["seen"]);
        for header in [
            "x-cf-proxy-signature",
            "x-cf-proxy-metadata",
            "x-cf-forwarded-url",
        ] {
            assert!(seen(&echo, header).is_empty(), "{header} reached the app");
        }
    }
    // Pooled: ten requests, a handful of connections (gorouter opens one per attempt).
    let opened = metric(router.admin, "switchyard_upstream_connections_opened_total").await;
    assert!(
        opened <= 6.0,
        "{opened} upstream connections for 10 requests"
    );

    // The way back, forged: refused as gorouter refuses it, never reaching the app.
    let url = "https://app.test/orders/1";
    let fresh = python_signature(SECRET, url, 0).await;
    let expired = python_signature(SECRET, url, 120).await;
    let wrong_key = python_signature("another-secret", url, 0).await;
    let other_route = python_signature(SECRET, "https://other.test/x", 0).await;
    let mut tampered = fresh.clone();
    tampered.0.replace_range(
        4..6,
        if &tampered.0[4..6] == "AA" {
            "BB"
        } else {
            "AA"
        },
    );
    for (name, (signature, metadata), status) in [
        ("expired", expired, StatusCode::GATEWAY_TIMEOUT),
        ("tampered", tampered, StatusCode::BAD_GATEWAY),
        ("another key", wrong_key, StatusCode::BAD_GATEWAY),
        ("another route", other_route, StatusCode::BAD_GATEWAY),
        ("valid", fresh, StatusCode::OK),
    ] {
        let req = Request::get("/orders/1")
            .header("host", "app.test")
            .header("x-cf-forwarded-url", url)
            .header("x-cf-proxy-signature", signature)
            .header("x-cf-proxy-metadata", metadata)
            .body(full(""))
            .unwrap();
        let response = send(router.http, req).await;
        assert_eq!(response.status(), status, "{name}");
        assert!(
            !response.headers().contains_key("x-cf-routererror"),
            "{name}"
        );
        let body = text(response).await;
        if status == StatusCode::OK {
            assert!(body.contains("\"backend\":\"app\""), "{body}");
        } else {
            assert!(
                body.contains("Failed to validate Route Service Signature"),
                "{name}: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_validation_checks_stray_signatures_on_other_routes() {
    let app = Backend::echo("app").await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[route_services]\nsecret = \"{SECRET}\"\nstrict_signature_validation = true\n{}",
        route("plain.test", &[&app])
    ));
    let url = "https://plain.test/";
    let fresh = python_signature(SECRET, url, 0).await;
    let expired = python_signature(SECRET, url, 120).await;
    let forged = python_signature("another-secret", url, 0).await;
    for (name, (signature, metadata), status, error) in [
        ("valid", fresh, 200, None),
        (
            "expired",
            expired,
            504,
            Some("expired_route_service_signature"),
        ),
        (
            "forged",
            forged,
            400,
            Some("invalid_route_service_signature"),
        ),
    ] {
        let req = Request::get("/")
            .header("host", "plain.test")
            .header("x-cf-proxy-signature", signature)
            .header("x-cf-proxy-metadata", metadata)
            .body(full(""))
            .unwrap();
        let response = send(router.http, req).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let got = response.headers().get("x-cf-routererror");
        assert_eq!(got.map(|v| v.to_str().unwrap()), error, "{name}");
    }
    // Without strict validation a stray signature is the app's business (as gorouter).
    let lax = TestRouter::start(&format!(
        "{BASE}\n[route_services]\nsecret = \"{SECRET}\"\n{}",
        route("plain.test", &[&app])
    ));
    let req = Request::get("/")
        .header("host", "plain.test")
        .header("x-cf-proxy-signature", "garbage")
        .body(full(""))
        .unwrap();
    assert_eq!(send(lax.http, req).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_to_a_route_service_route_can_be_refused() {
    let app = Backend::echo("app").await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[route_services]\nsecret = \"{SECRET}\"\nwebsockets = false\n\
         [[route]]\nuri = \"ws.test\"\nbackends = [\"{}\"]\n\
         route_service_url = \"https://localhost:1/check\"\n",
        app.addr
    ));
    let req = Request::get("/chat")
        .header("host", "ws.test")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(full(""))
        .unwrap();
    let response = send(router.http, req).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["x-cf-routererror"],
        "route_service_unsupported"
    );
    assert_eq!(app.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_goes_through_the_route_service_and_on_to_the_app() {
    use futures_util::{SinkExt, StreamExt};
    let pki = TestPki::new();
    let http = free_port();
    let (mut service, service_port) = start_route_service(http, &pki).await;
    let (app, closed) = ws_echo_backend().await;
    let _router = TestRouter::start(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:0\"\n\
         [route_services]\nsecret = \"{SECRET}\"\nca_file = \"{}\"\n\
         [[route]]\nuri = \"/ws\"\nbackends = [\"{app}\"]\n\
         route_service_url = \"https://localhost:{service_port}/check\"\n",
        pki.ca().display()
    ));
    let (mut ws, response) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{http}/ws/chat"))
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..3 {
        let message = tokio_tungstenite::tungstenite::Message::text(format!("m{i}"));
        ws.send(message).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.to_text().unwrap(), format!("echo:m{i}"));
    }
    ws.close(None).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), closed)
        .await
        .expect("the app saw the close")
        .unwrap();
    // The route service was on the way: without it, no WebSocket.
    service.kill().await.unwrap();
    let refused = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{http}/ws/chat")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        }
        other => panic!("expected a 502, got {other:?}"),
    }
}
