//! Routing (contract section 3): hosts, wildcards, longest prefix, any-host routes,
//! strip_prefix, round-robin, and the router's own error answers.

use crate::support::*;
use http::StatusCode;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_longest_prefix_on_whole_segments() {
    let root = Backend::echo("root").await;
    let api = Backend::echo("api").await;
    let router = TestRouter::with_routes(&format!(
        "{}{}",
        route("app.test", &[&root]),
        route("app.test/api", &[&api])
    ));
    for (path, expected) in [
        ("/", "root"),
        ("/api", "api"),
        ("/api/x?q=1", "api"),
        ("/apix", "root"),
        ("/API", "api"),
        ("/Api/X", "api"),
    ] {
        let echo = json_body(get(&router, "APP.test:80", path).await).await;
        assert_eq!(echo["backend"], expected, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_hosts_walk_up_and_exact_wins() {
    let wild = Backend::echo("wild").await;
    let exact = Backend::echo("exact").await;
    let router = TestRouter::with_routes(&format!(
        "{}{}",
        route("*.example.test", &[&wild]),
        route("www.example.test", &[&exact])
    ));
    for (host, expected) in [
        ("www.example.test", "exact"),
        ("a.example.test", "wild"),
        ("a.b.example.test", "wild"),
    ] {
        let echo = json_body(get(&router, host, "/").await).await;
        assert_eq!(echo["backend"], expected, "{host}");
    }
    let response = get(&router, "example.test", "/").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_host_service_version_route_with_strip_prefix() {
    let one = Backend::echo("one").await;
    let router = TestRouter::with_routes(&format!(
        "{}strip_prefix = true\n",
        route("/serviceone/v1", &[&one])
    ));
    let echo = json_body(get(&router, "anything.test", "/serviceone/v1/users?id=7").await).await;
    assert_eq!(echo["uri"], "/users?id=7");
    let echo = json_body(get(&router, "other.test", "/serviceone/v1").await).await;
    assert_eq!(echo["uri"], "/");
    let response = get(&router, "other.test", "/serviceone/v2/users").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let c = Backend::echo("c").await;
    let router = TestRouter::with_routes(&route("app.test", &[&a, &b, &c]));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        let echo = json_body(get(&router, "app.test", "/").await).await;
        *counts
            .entry(echo["backend"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (name, count) in &counts {
        assert_eq!(
            *count, 10,
            "round-robin gives each of 3 backends 10 of 30: {name} got {count}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_errors_carry_status_and_routererror_header() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"empty.test\"\nbackends = []\n[[route]]\nuri = \"dead.test\"\nbackends = [\"{dead}\"]\n"
    ));
    let cases = [
        ("nowhere.test", StatusCode::NOT_FOUND, "unknown_route"),
        (
            "empty.test",
            StatusCode::SERVICE_UNAVAILABLE,
            "no_endpoints",
        ),
        ("dead.test", StatusCode::BAD_GATEWAY, "endpoint_failure"),
    ];
    for (host, status, error) in cases {
        let response = get(&router, host, "/").await;
        assert_eq!(response.status(), status, "{host}");
        let header = response.headers()["x-cf-routererror"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(header.starts_with(error), "{host}: {header}");
        assert!(response.headers().contains_key("x-vcap-request-id"));
        let body = text(response).await;
        assert!(body.starts_with(&status.as_u16().to_string()), "{body}");
    }
    let response = get(&router, "nowhere.test", "/").await;
    assert!(
        text(response)
            .await
            .contains("Requested route ('nowhere.test') does not exist.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_go_to_the_next_endpoint() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let live = Backend::echo("live").await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"app.test\"\nbackends = [\"{dead}\", \"{}\"]\n",
        live.addr
    ));
    for _ in 0..10 {
        let response = get(&router, "app.test", "/").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
