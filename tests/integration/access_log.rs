//! The access log, on by default: one line per request with gorouter's fields, in text and
//! JSON, for a proxied request (bytes counted as they stream), a router-made error and a route
//! service call; values escaped; the file reopened on SIGUSR2 after a logrotate-style move.

use crate::process::{free_port, start_binary, wait_for_port};
use crate::route_services::{SECRET, start_route_service};
use crate::support::*;
use http::{Request, Response, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The lines of `path` once there are at least `count` (waits up to 5 s).
async fn lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} lines in {}: {text}",
            lines.len(),
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A backend answering 100,000 bytes in 10 chunks of unknown total length.
async fn big_backend() -> Backend {
    Backend::start(|_req| async {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..10 {
                let chunk = bytes::Bytes::from(vec![b'x'; 10_000]);
                if tx.send(hyper::body::Frame::data(chunk)).await.is_err() {
                    return;
                }
            }
        });
        Response::new(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_for_a_proxied_request_an_error_and_a_route_service_call() {
    let pki = TestPki::new();
    let http = free_port();
    let (_service, service_port) = start_route_service(http, &pki).await;
    let big = big_backend().await;
    let app = Backend::echo("app").await;
    let dir = temp_dir("access-log");
    let log = dir.join("access.json");
    let router = TestRouter::start(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:0\"\n\
         [access_log]\nformat = \"json\"\npath = \"{}\"\n\
         [route_services]\nsecret = \"{SECRET}\"\nca_file = \"{}\"\n\
         [[route]]\nuri = \"big.test\"\nbackends = [\"{}\"]\n\
         [[route]]\nuri = \"guarded.test\"\nbackends = [\"{}\"]\n\
         route_service_url = \"https://localhost:{service_port}/check\"\n",
        log.display(),
        pki.ca().display(),
        big.addr,
        app.addr,
    ));

    let req = Request::post("/download?x=1")
        .header("host", "big.test")
        .header("user-agent", "tester/1.0")
        .header("referer", "https://from.example/")
        .header("x-forwarded-for", "203.0.113.9")
        .body(full("0123456789"))
        .unwrap();
    let response = send(router.http, req).await;
    let request_id = response.headers()["x-vcap-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(text(response).await.len(), 100_000);
    let missing = get(&router, "nowhere.test", "/x").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let guarded = get(&router, "guarded.test", "/checked").await;
    assert_eq!(guarded.status(), StatusCode::OK);
    text(guarded).await;

    // The route service call makes two lines: the request to the service and its return.
    let lines = lines(&log, 4).await;
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let proxied = &entries[0];
    assert_eq!(proxied["method"], "POST");
    assert_eq!(proxied["uri"], "/download?x=1");
    assert_eq!(proxied["host"], "big.test");
    assert_eq!(proxied["protocol"], "HTTP/1.1");
    assert_eq!(proxied["status"], 200);
    assert_eq!(proxied["bytes_received"], 10);
    assert_eq!(proxied["bytes_sent"], 100_000, "counted as it streamed");
    assert_eq!(proxied["user_agent"], "tester/1.0");
    assert_eq!(proxied["referer"], "https://from.example/");
    assert_eq!(proxied["x_forwarded_for"], "203.0.113.9");
    assert_eq!(proxied["backend"], big.addr.to_string());
    assert_eq!(proxied["vcap_request_id"], request_id);
    assert_eq!(proxied["x_cf_routererror"], Value::Null);
    assert!(
        proxied["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(proxied["response_time"].as_f64().unwrap() > 0.0);
    assert!(proxied["time"].as_str().unwrap().ends_with('Z'));

    let error = &entries[1];
    assert_eq!(error["status"], 404);
    assert_eq!(error["x_cf_routererror"], "unknown_route");
    assert_eq!(error["backend"], Value::Null);

    let to_service = entries
        .iter()
        .find(|e| e["route_service"] != Value::Null)
        .expect("a line for the route service call");
    assert_eq!(to_service["host"], "guarded.test");
    assert_eq!(to_service["status"], 200);
    assert!(
        to_service["route_service"]
            .as_str()
            .unwrap()
            .contains("/check")
    );
    let returned = entries
        .iter()
        .find(|e| e["backend"] == app.addr.to_string())
        .expect("a line for the return trip to the app");
    assert_eq!(returned["uri"], "/checked");
    assert_eq!(returned["route_service"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_by_default_escaped_and_reopened_on_sigusr2() {
    let app = Backend::echo("app").await;
    let dir = temp_dir("access-text");
    let log = dir.join("access.log");
    let (http, admin) = (free_port(), free_port());
    let router = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n\
         [access_log]\npath = \"{}\"\n[[route]]\nuri = \"app.test\"\nbackends = [\"{}\"]\n",
        log.display(),
        app.addr
    ))
    .await;
    wait_for_port(http).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], http));
    let req = Request::get("/a?b=c")
        .header("host", "app.test")
        .header("user-agent", "evil\" injected:\"1")
        .body(full(""))
        .unwrap();
    assert_eq!(send(addr, req).await.status(), StatusCode::OK);
    let first = lines(&log, 1).await;
    let line = &first[0];
    assert!(line.starts_with("app.test - ["), "{line}");
    assert!(line.contains("] \"GET /a?b=c HTTP/1.1\" 200 0 "), "{line}");
    assert!(
        line.contains(r#" "evil\" injected:\"1" "#),
        "quotes escaped: {line}"
    );
    assert!(
        line.contains(&format!(" \"{}\" x_forwarded_for:\"-\"", app.addr)),
        "{line}"
    );
    for field in [
        "vcap_request_id:\"",
        "response_time:",
        "app_id:\"-\"",
        "x_cf_routererror:\"-\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }

    // HTTP/2: the host is the `:authority` and the target the `:path`, as the client sent them.
    let req = Request::get("http://app.test/h2?x=1")
        .body(full(""))
        .unwrap();
    assert_eq!(send_h2(addr, req).await.status(), StatusCode::OK);
    let h2 = &lines(&log, 2).await[1];
    assert!(h2.starts_with("app.test - ["), "{h2}");
    assert!(h2.contains("] \"GET /h2?x=1 HTTP/2.0\" 200 "), "{h2}");

    // logrotate: move the file, signal, and the next line goes to a new file.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    router.signal("USR2");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let req = Request::get("/after")
        .header("host", "app.test")
        .body(full(""))
        .unwrap();
    assert_eq!(send(addr, req).await.status(), StatusCode::OK);
    let fresh = lines(&log, 1).await;
    assert!(fresh[0].contains("GET /after"), "{fresh:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.lines().count(), 2, "{old}");
}
