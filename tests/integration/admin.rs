//! The admin API: `/health`, `/routes`, `/metrics`, the index, bearer token (also from a file;
//! `/health` open by default), HEAD, `Allow` on 405, `WWW-Authenticate` on 401, JSON errors.

use crate::support::*;
use http::{Request, StatusCode};
use serde_json::json;

async fn admin_get(router: &TestRouter, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(path).header("host", "admin");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let response = send(router.admin, req.body(full("")).unwrap()).await;
    let status = response.status();
    (status, text(response).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_and_metrics() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::with_routes(&route("app.test/api", &[&backend]));
    assert_eq!(
        admin_get(&router, "/health", None).await,
        (StatusCode::OK, "ok\n".to_string())
    );

    let (status, body) = admin_get(&router, "/routes", None).await;
    assert_eq!(status, StatusCode::OK);
    let routes: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        routes["app.test/api"][0]["address"],
        backend.addr.to_string()
    );

    let mut client = KeepAlive::connect(router.http).await;
    for _ in 0..20 {
        text(client.get("app.test", "/api").await).await;
    }
    get(&router, "nowhere.test", "/").await;
    let (status, metrics) = admin_get(&router, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("switchyard_responses_total{class=\"2xx\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_responses_total{class=\"4xx\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_upstream_requests_total 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_upstream_connections_opened_total 1\n"),
        "one connection reused 20 times: {metrics}"
    );
    assert!(
        metrics.contains("switchyard_endpoint_requests_total{route=\"app.test/api\",endpoint=\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_json_errors() {
    let router = TestRouter::start(&format!("{BASE}[admin]\ntoken = \"s3cret\"\n"));
    let (status, body) = admin_get(&router, "/routes", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());
    assert_eq!(
        admin_get(&router, "/routes", Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin_get(&router, "/routes", Some("s3cret")).await.0,
        StatusCode::OK
    );
    let (status, body) = admin_get(&router, "/nope", Some("s3cret")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("\"error\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_without_the_token_head_allow_and_www_authenticate() {
    let dir = temp_dir("admin-token");
    std::fs::write(dir.join("token"), "from-file\n").unwrap();
    let config = dir.join("switchyard.toml");
    let toml = format!("{BASE}[admin]\ntoken_file = \"token\"\n");
    std::fs::write(&config, &toml).unwrap();
    let config = switchyard::config::load_file(&config).unwrap();
    let router = TestRouter::start_config(config);
    let request = |method: &str, path: &str, token: Option<&str>| {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "admin");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        send(router.admin, req.body(full("")).unwrap())
    };
    // A load balancer's probe needs no token, and may use HEAD.
    let health = request("GET", "/health", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let head = request("HEAD", "/health", None).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(text(head).await.is_empty());
    // Everything else needs the token from the file, and says how to give it.
    let denied = request("GET", "/routes", None).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        denied.headers()["www-authenticate"],
        "Bearer realm=\"switchyard admin\""
    );
    assert_eq!(
        request("HEAD", "/routes", Some("from-file")).await.status(),
        StatusCode::OK
    );
    // Wrong methods: 405 with Allow.
    for (method, path, allow) in [
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("GET", "/routes/register", "POST"),
    ] {
        let response = request(method, path, Some("from-file")).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
    // The index lists the endpoints.
    let index = json_body(request("GET", "/", Some("from-file")).await).await;
    for path in [
        "/health",
        "/routes",
        "/metrics",
        "/status",
        "/status.json",
        "/routes/register",
        "/routes/unregister",
    ] {
        assert!(index[path].is_string(), "{index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_can_require_the_token_too() {
    let router = TestRouter::start(&format!(
        "{BASE}[admin]\ntoken = \"s3cret\"\nhealth_without_token = false\n"
    ));
    assert_eq!(
        admin_get(&router, "/health", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin_get(&router, "/health", Some("s3cret")).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_prometheus_own_parser_and_count_known_traffic() {
    let backend = Backend::echo("a").await;
    let router = TestRouter::with_routes(&route("m.test", &[&backend]));
    let mut body_bytes = 0;
    for i in 0..5 {
        let response = get(&router, "m.test", &format!("/{}", "x".repeat(i * 100))).await;
        assert_eq!(response.status(), StatusCode::OK);
        body_bytes += text(response).await.len();
    }
    for _ in 0..2 {
        assert_eq!(
            get(&router, "nowhere.test", "/").await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let samples = scrape(&router).await;
    let value = |key: &str| {
        samples[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no sample {key} in {samples}"))
    };
    assert_eq!(value("switchyard_request_duration_seconds_count{}"), 7.0);
    assert_eq!(
        value("switchyard_request_duration_seconds_bucket{le=+Inf}"),
        7.0
    );
    assert_eq!(value("switchyard_responses_total{class=2xx}"), 5.0);
    assert_eq!(value("switchyard_responses_total{class=4xx}"), 2.0);
    assert_eq!(
        value(&format!(
            "switchyard_build_info{{version={}}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert_eq!(value("switchyard_access_log_dropped_total{}"), 0.0);
    assert!(value("process_resident_memory_bytes{}") > 0.0);
    assert!(value("process_open_fds{}") > 0.0);
    let endpoint = format!(
        "switchyard_endpoint_requests_total{{endpoint={},route=m.test}}",
        backend.addr
    );
    assert_eq!(value(&endpoint), 5.0);
    // The bodies as the client read them (echoes of paths of different lengths).
    assert!(body_bytes > 1000, "{body_bytes}");
    assert_eq!(
        value("switchyard_response_body_bytes_total{}"),
        body_bytes as f64
    );
    let endpoint_bytes = format!(
        "switchyard_endpoint_response_body_bytes_total{{endpoint={},route=m.test}}",
        backend.addr
    );
    assert_eq!(value(&endpoint_bytes), body_bytes as f64);
    // By route, with the unknown hosts on no route; the backend's timings; the connections.
    assert_eq!(
        value("switchyard_route_responses_total{class=2xx,route=m.test}"),
        5.0
    );
    assert_eq!(
        value("switchyard_route_request_duration_seconds_count{route=m.test}"),
        5.0
    );
    assert_eq!(
        value("switchyard_route_responses_total{class=2xx,route=(other)}"),
        0.0
    );
    assert_eq!(value("switchyard_upstream_response_seconds_count{}"), 5.0);
    assert!(value("switchyard_upstream_connect_seconds_count{}") >= 1.0);
    assert!(
        value("switchyard_client_connections_accepted_total{protocol=http/1.1,tls=false}") >= 1.0
    );
    assert_eq!(
        value("switchyard_client_connections_accepted_total{protocol=h2,tls=false}"),
        0.0
    );
}

/// `/metrics` as parsed by Prometheus' own parser (`tests/metrics/parse.py`): every sample as
/// `name{label=value,...}` (labels sorted) -> value.
async fn scrape(router: &TestRouter) -> serde_json::Value {
    let req = Request::get("/metrics")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    let text = text(send(router.admin, req).await).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/parse.py");
    let mut child = tokio::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text (scripts/test.sh installs it): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_route_series_stop_at_the_cap_and_the_rest_count_together() {
    let backend = Backend::echo("a").await;
    let router = TestRouter::start(&format!("{BASE}[admin]\nmetrics_route_series = 2\n"));
    let register =
        |host: &str| json!({"host": "127.0.0.1", "port": backend.addr.port(), "uris": [host]});
    for host in ["r1.test", "r2.test", "r3.test", "r4.test"] {
        let (status, _) = admin_post(&router, "/routes/register", &register(host)).await;
        assert_eq!(status, StatusCode::OK);
    }
    // r1 and r2 see traffic first and take the two series; r3 and r4 count together.
    for (host, requests) in [
        ("r1.test", 1),
        ("r2.test", 2),
        ("r3.test", 3),
        ("r4.test", 4),
    ] {
        for _ in 0..requests {
            assert_eq!(get(&router, host, "/").await.status(), StatusCode::OK);
        }
    }
    let samples = scrape(&router).await;
    let value = |key: &str| samples[key].as_f64();
    let responses = |route: &str| {
        value(&format!(
            "switchyard_route_responses_total{{class=2xx,route={route}}}"
        ))
    };
    assert_eq!(responses("r1.test"), Some(1.0));
    assert_eq!(responses("r2.test"), Some(2.0));
    assert_eq!(responses("r3.test"), None, "{samples}");
    assert_eq!(responses("(other)"), Some(7.0));
    assert_eq!(value("switchyard_route_series{}"), Some(2.0));
    let endpoint_series = samples
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| key.starts_with("switchyard_endpoint_requests_total"))
        .count();
    assert_eq!(
        endpoint_series, 2,
        "endpoints of routes with series only: {samples}"
    );
    // A route that leaves gives its series back: the next route with traffic takes it.
    let (status, _) = admin_post(&router, "/routes/unregister", &register("r1.test")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin_post(&router, "/routes/register", &register("r5.test")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&router, "r5.test", "/").await.status(), StatusCode::OK);
    let samples = scrape(&router).await;
    let value = |key: &str| samples[key].as_f64();
    assert_eq!(
        value("switchyard_route_responses_total{class=2xx,route=r5.test}"),
        Some(1.0),
        "{samples}"
    );
    assert_eq!(
        value("switchyard_route_responses_total{class=2xx,route=r1.test}"),
        None
    );
}
