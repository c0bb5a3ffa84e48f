//! What gorouter does for apps: sticky sessions (`JSESSIONID` + `__VCAP_ID__`), instance-targeted
//! routing (`X-CF-App-Instance`, `X-CF-Process-Instance`), and routes with a route service bound
//! answered 502 `route_service_unsupported` when route services are off (never sent straight to
//! the app), trace context (W3C and B3) kept across the router.

use crate::support::*;
use http::{Request, StatusCode};
use serde_json::{Value, json};

const APP: &str = "1bf2e7f6-2d1d-41ec-501c-c70b2e8c3e7d";
const PROCESS: &str = "5c6f3a52-0d8b-4b4e-9d3a-2f1e0c9b8a71";

/// An echo backend that starts a session on `/app/login` (and on `/app/own` also sets its own
/// `__VCAP_ID__`).
async fn app_backend(name: &'static str) -> Backend {
    Backend::start(move |req: Request<hyper::body::Incoming>| async move {
        let path = req.uri().path().to_owned();
        let mut response = echo_response(name, req).await;
        let headers = response.headers_mut();
        if path.ends_with("/login") || path.ends_with("/own") {
            let session = "JSESSIONID=s1; Path=/; Secure; SameSite=Lax; Max-Age=600";
            headers.append("set-cookie", session.parse().unwrap());
        }
        if path.ends_with("/own") {
            headers.append("set-cookie", "__VCAP_ID__=mine; Path=/".parse().unwrap());
        }
        response
    })
    .await
}

/// Registers `backend` for `uri` as instance `index` of the test app.
fn registration(backend: &Backend, uri: &str, index: usize) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": backend.addr.port(),
        "uris": [uri],
        "app": APP,
        "private_instance_id": format!("instance-{index}"),
        "private_instance_index": index.to_string(),
        "tags": {"process_id": PROCESS},
    })
}

/// Three instances of the app registered for `apps.test/app`.
async fn three_instances() -> (TestRouter, Vec<Backend>) {
    let router = TestRouter::start(BASE);
    let mut backends = Vec::new();
    for (index, name) in ["a", "b", "c"].into_iter().enumerate() {
        let backend = app_backend(name).await;
        let (status, _) = admin_post(
            &router,
            "/routes/register",
            &registration(&backend, "apps.test/app", index),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        backends.push(backend);
    }
    (router, backends)
}

async fn request(
    router: &TestRouter,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<hyper::body::Incoming> {
    let mut req = Request::get(path).header("host", "apps.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(router.http, req.body(full("")).unwrap()).await
}

fn set_cookies(response: &http::Response<hyper::body::Incoming>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_sessions_keep_a_client_on_its_instance_until_it_is_gone() {
    let (router, backends) = three_instances().await;
    let login = request(&router, "/app/login", &[]).await;
    let cookies = set_cookies(&login);
    let served_by = json_body(login).await["headers"].clone();
    let instance = served_by
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-cf-instanceid")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cookies,
        [
            "JSESSIONID=s1; Path=/; Secure; SameSite=Lax; Max-Age=600".to_string(),
            format!(
                "__VCAP_ID__={instance}; Path=/app; HttpOnly; Secure; SameSite=Lax; Max-Age=600"
            ),
        ]
    );

    // Both cookies: every request on that instance, and no new cookie.
    let both = format!("JSESSIONID=s1; __VCAP_ID__={instance}");
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let response = request(&router, "/app/work", &[("cookie", &both)]).await;
        assert!(set_cookies(&response).is_empty());
        names.insert(
            json_body(response).await["backend"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(names.len(), 1, "{names:?}");

    // `__VCAP_ID__` alone is not a session (as gorouter): round-robin over all three.
    let alone = format!("__VCAP_ID__={instance}");
    let mut spread = std::collections::BTreeSet::new();
    for _ in 0..9 {
        let response = request(&router, "/app/work", &[("cookie", &alone)]).await;
        spread.insert(
            json_body(response).await["backend"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(spread.len(), 3, "{spread:?}");

    // The instance unregistered: the next request lands elsewhere, with a new cookie.
    let index: usize = instance.trim_start_matches("instance-").parse().unwrap();
    let gone = &backends[index];
    admin_post(
        &router,
        "/routes/unregister",
        &registration(gone, "apps.test/app", index),
    )
    .await;
    let response = request(&router, "/app/work", &[("cookie", &both)]).await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].starts_with("__VCAP_ID__=instance-"),
        "{cookies:?}"
    );
    assert!(
        !cookies[0].starts_with(&format!("__VCAP_ID__={instance};")),
        "{cookies:?}"
    );
    assert!(cookies[0].ends_with("; Path=/app; HttpOnly"), "{cookies:?}");

    // A backend's own `__VCAP_ID__` is never overwritten.
    let own = request(&router, "/app/own", &[]).await;
    let cookies = set_cookies(&own);
    assert_eq!(
        cookies
            .iter()
            .filter(|c| c.starts_with("__VCAP_ID__"))
            .count(),
        1
    );
    assert!(
        cookies.contains(&"__VCAP_ID__=mine; Path=/".to_string()),
        "{cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_headers_target_one_instance_and_are_removed() {
    let (router, _backends) = three_instances().await;
    for (header, value, expected) in [
        ("x-cf-app-instance", format!("{APP}:1"), "b"),
        ("x-cf-app-instance", format!("{APP}:2"), "c"),
        ("x-cf-process-instance", format!("{PROCESS}:0"), "a"),
    ] {
        for _ in 0..5 {
            let response = request(&router, "/app/x", &[(header, &value)]).await;
            assert_eq!(response.status(), StatusCode::OK);
            let echo = json_body(response).await;
            assert_eq!(echo["backend"], expected, "{header}: {value}");
            assert!(seen(&echo, header).is_empty(), "{header} reached the app");
        }
    }
    // Malformed: 400 naming the header; unknown instance: 400 unknown_route naming it.
    for (header, value, status, error) in [
        (
            "x-cf-app-instance",
            "nope:1".to_string(),
            400,
            "invalid_cf_app_instance_header",
        ),
        (
            "x-cf-process-instance",
            "nope".to_string(),
            400,
            "invalid_cf_process_instance_header",
        ),
        (
            "x-cf-app-instance",
            format!("{APP}:7"),
            400,
            "unknown_route",
        ),
    ] {
        let response = request(&router, "/app/x", &[(header, &value)]).await;
        assert_eq!(response.status().as_u16(), status, "{header}: {value}");
        assert_eq!(response.headers()["x-cf-routererror"], error);
        if error == "unknown_route" {
            let body = text(response).await;
            assert!(
                body.contains(&format!("Requested instance ('7') with guid ('{APP}') does not exist for route ('apps.test')")),
                "{body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_service_route_is_never_sent_straight_to_the_app() {
    let router = TestRouter::start(BASE);
    let backend = Backend::echo("app").await;
    let mut message = registration(&backend, "guarded.test", 0);
    message["route_service_url"] = json!("https://auth.example.com/check");
    let (status, _) = admin_post(&router, "/routes/register", &message).await;
    assert_eq!(status, StatusCode::OK);
    let response = get(&router, "guarded.test", "/").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.headers()["x-cf-routererror"],
        "route_service_unsupported"
    );
    assert_eq!(backend.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_keeps_its_trace_id_across_the_router() {
    let backend = Backend::echo("app").await;
    let traced = TestRouter::start(&format!(
        "{BASE}\n[tracing]\nw3c = true\nzipkin = true\n{}",
        route("trace.test", &[&backend])
    ));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace}-00f067aa0ba902b7-01");
    let req = Request::get("/")
        .header("host", "trace.test")
        .header("traceparent", &incoming)
        .header("tracestate", "congo=t61")
        .body(full(""))
        .unwrap();
    let response = send(traced.http, req).await;
    let request_id = response.headers()["x-vcap-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(request_id, "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
    let echo = json_body(response).await;
    let parent = &seen(&echo, "traceparent")[0];
    assert!(
        parent.starts_with(&format!("00-{trace}-")) && parent.ends_with("-01"),
        "{parent}"
    );
    assert_ne!(*parent, incoming, "a new parent id for this hop");
    let state = &seen(&echo, "tracestate")[0];
    assert_eq!(*state, format!("switchyard={},congo=t61", &parent[36..52]));
    assert_eq!(seen(&echo, "x-vcap-request-id"), [request_id]);
    // B3 started for a request without one, on the same trace as its W3C context.
    let echo = json_body(get(&traced, "trace.test", "/").await).await;
    let b3_trace = &seen(&echo, "x-b3-traceid")[0];
    assert_eq!(b3_trace.len(), 32);
    assert_eq!(&seen(&echo, "traceparent")[0][3..35], b3_trace.as_str());

    // Off (the default): trace headers pass through untouched, none is started.
    let plain = TestRouter::with_routes(&route("trace.test", &[&backend]));
    let req = Request::get("/")
        .header("host", "trace.test")
        .header("traceparent", &incoming)
        .body(full(""))
        .unwrap();
    let echo = json_body(send(plain.http, req).await).await;
    assert_eq!(seen(&echo, "traceparent"), [incoming]);
    assert!(seen(&echo, "x-b3-traceid").is_empty());
}
