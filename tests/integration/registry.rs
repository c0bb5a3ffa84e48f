//! The service registry: registration over the admin API (register, refresh, expire,
//! unregister, bad messages), config reload as a difference (connections survive), file watch,
//! concurrent registration under load, and a plugged-in route extractor.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn routes(router: &TestRouter) -> Value {
    let req = Request::get("/routes")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    json_body(send(router.admin, req).await).await
}

async fn status_of(router: &TestRouter, host: &str, path: &str) -> StatusCode {
    get(router, host, path).await.status()
}

async fn backend_of(router: &TestRouter, host: &str, path: &str) -> String {
    let response = get(router, host, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{host}{path}");
    json_body(response).await["backend"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refresh_unregister_over_the_admin_api() {
    let one = Backend::echo("one").await;
    let two = Backend::echo("two").await;
    let router = TestRouter::start(BASE);
    assert_eq!(
        status_of(&router, "app.test", "/").await,
        StatusCode::NOT_FOUND
    );

    let (status, applied) = admin_post(
        &router,
        "/routes/register",
        &registration(&one, &["App.Test"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["added"], 1);
    // Visible to the very next request, with the instance headers of the registration.
    let response = get(&router, "app.test", "/x").await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo = json_body(response).await;
    assert_eq!(seen(&echo, "x-cf-applicationid"), ["app-guid"]);
    assert_eq!(
        seen(&echo, "x-cf-instanceid"),
        [format!("instance-{}", one.addr.port())]
    );

    // An array registers several; a repeat only refreshes.
    let batch = json!([
        registration(&one, &["app.test"]),
        registration(&two, &["app.test"])
    ]);
    let (_, applied) = admin_post(&router, "/routes/register", &batch).await;
    assert_eq!(
        (applied["added"].as_u64(), applied["refreshed"].as_u64()),
        (Some(1), Some(1))
    );
    let mut seen_backends = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen_backends.insert(backend_of(&router, "app.test", "/").await);
    }
    assert_eq!(seen_backends.len(), 2, "{seen_backends:?}");

    let listed = routes(&router).await;
    let endpoints = listed["app.test"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{listed}");
    assert_eq!(endpoints[0]["tags"]["component"], "test");
    assert!(endpoints[0]["ttl"].as_u64().unwrap() > 100, "{listed}");

    let (_, applied) = admin_post(
        &router,
        "/routes/unregister",
        &registration(&one, &["app.test"]),
    )
    .await;
    assert_eq!(applied["removed"], 1);
    for _ in 0..3 {
        assert_eq!(backend_of(&router, "app.test", "/").await, "two");
    }
    admin_post(
        &router,
        "/routes/unregister",
        &registration(&two, &["app.test"]),
    )
    .await;
    assert_eq!(
        status_of(&router, "app.test", "/").await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_expire_unless_refreshed_and_config_routes_never_do() {
    let kept = Backend::echo("kept").await;
    let lapsed = Backend::echo("lapsed").await;
    let fixed = Backend::echo("fixed").await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[registry]\nprune_interval = \"100ms\"\n{}",
        route("fixed.test", &[&fixed])
    ));
    let short = |backend: &Backend, uri: &str| {
        let mut m = registration(backend, &[uri]);
        m["stale_threshold_in_seconds"] = json!(1);
        m
    };
    admin_post(&router, "/routes/register", &short(&kept, "kept.test")).await;
    admin_post(&router, "/routes/register", &short(&lapsed, "lapsed.test")).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1800) {
        admin_post(&router, "/routes/register", &short(&kept, "kept.test")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(backend_of(&router, "kept.test", "/").await, "kept");
    assert_eq!(
        status_of(&router, "lapsed.test", "/").await,
        StatusCode::NOT_FOUND,
        "an endpoint not refreshed within its threshold is pruned"
    );
    assert_eq!(backend_of(&router, "fixed.test", "/").await, "fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_a_400_naming_the_field_and_change_nothing() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::start(BASE);
    let good = registration(&backend, &["good.test"]);
    let with = |key: &str, value: Value| {
        let mut m = registration(&backend, &["bad.test"]);
        m[key] = value;
        m
    };
    let mut no_host = registration(&backend, &["bad.test"]);
    no_host.as_object_mut().unwrap().remove("host");
    let cases: Vec<(Value, &str)> = vec![
        (no_host, "host"),
        (with("port", json!(70000)), "port"),
        (with("port", json!(0)), "port"),
        (with("uris", json!([""])), "uris[0]"),
        (with("uris", json!([])), "uris"),
        (
            with("route_service_url", json!("http://rs.test")),
            "route_service_url",
        ),
        (with("host", json!("not an ip")), "host"),
        (
            json!([good.clone(), with("protocol", json!("gopher"))]),
            "[1].protocol",
        ),
    ];
    for (body, field) in cases {
        let (status, reason) = admin_post(&router, "/routes/register", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reason["field"], field, "{body} -> {reason}");
        assert!(!reason["error"].as_str().unwrap().is_empty());
    }
    let req = Request::post("/routes/register")
        .header("host", "admin")
        .body(full("{not json"))
        .unwrap();
    let response = send(router.admin, req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["field"], "body");

    assert_eq!(routes(&router).await, json!({}), "nothing was applied");
    assert_eq!(
        status_of(&router, "good.test", "/").await,
        StatusCode::NOT_FOUND,
        "a batch with one bad message applies nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_wildcards_and_longest_prefix() {
    let wild = Backend::echo("wild").await;
    let exact = Backend::echo("exact").await;
    let api = Backend::echo("api").await;
    let router = TestRouter::start(BASE);
    let batch = json!([
        registration(&wild, &["*.apps.test"]),
        registration(&exact, &["one.apps.test"]),
        registration(&api, &["one.apps.test/api", "*.apps.test/api/v2"]),
    ]);
    let (status, _) = admin_post(&router, "/routes/register", &batch).await;
    assert_eq!(status, StatusCode::OK);
    for (host, path, expected) in [
        ("one.apps.test", "/", "exact"),
        ("one.apps.test", "/api/x", "api"),
        ("one.apps.test", "/apix", "exact"),
        ("two.apps.test", "/", "wild"),
        ("deep.two.apps.test", "/api/v2/z", "api"),
        ("two.apps.test", "/api", "wild"),
    ] {
        assert_eq!(
            backend_of(&router, host, path).await,
            expected,
            "{host}{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_difference_and_open_connections_survive() {
    let backend = Backend::echo("b").await;
    let other = Backend::echo("other").await;
    let (ws_addr, _ws_closed) = ws_echo_backend().await;
    let dir = temp_dir("reload");
    let path = dir.join("switchyard.toml");
    let ws_route = format!("[[route]]\nuri = \"/ws\"\nbackends = [\"{ws_addr}\"]\n");
    let first = format!("{BASE}\n{}\n{ws_route}", route("app.test", &[&backend]));
    std::fs::write(&path, &first).unwrap();
    let router = TestRouter::start_config(switchyard::config::load_file(&path).unwrap());

    let mut keep_alive = KeepAlive::connect(router.http).await;
    assert_eq!(
        keep_alive.get("app.test", "/").await.status(),
        StatusCode::OK
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/chat", router.http))
        .await
        .unwrap();
    let requests_before = routes(&router).await["app.test"][0]["requests"]
        .as_u64()
        .unwrap();

    // Add a route and a second backend elsewhere; app.test is untouched.
    let second = format!("{first}\n{}", route("other.test", &[&other]));
    std::fs::write(&path, second).unwrap();
    router.router().reload(&path);
    assert_eq!(backend_of(&router, "other.test", "/").await, "other");

    let response = keep_alive.get("app.test", "/").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "keep-alive connection survives"
    );
    ws.send(tokio_tungstenite::tungstenite::Message::text("after"))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("websocket answers after the reload")
        .unwrap()
        .unwrap();
    assert_eq!(reply.to_text().unwrap(), "echo:after");
    let requests_after = routes(&router).await["app.test"][0]["requests"]
        .as_u64()
        .unwrap();
    assert_eq!(
        requests_after,
        requests_before + 1,
        "the untouched route kept its endpoint and counters"
    );

    // A broken file changes nothing.
    std::fs::write(&path, format!("{first}\n[[route]]\nuri = \"\"\n")).unwrap();
    router.router().reload(&path);
    assert_eq!(backend_of(&router, "other.test", "/").await, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_config_file_reloads_on_change() {
    let backend = Backend::echo("b").await;
    let dir = temp_dir("watch");
    let path = dir.join("switchyard.toml");
    let watch = "[registry]\nwatch_config = true\nwatch_interval = \"50ms\"\n";
    std::fs::write(&path, format!("{BASE}\n{watch}")).unwrap();
    let router = TestRouter::start_config(switchyard::config::load_file(&path).unwrap());
    assert_eq!(
        status_of(&router, "app.test", "/").await,
        StatusCode::NOT_FOUND
    );
    std::fs::write(
        &path,
        format!("{BASE}\n{watch}\n{}", route("app.test", &[&backend])),
    )
    .unwrap();
    let start = Instant::now();
    while status_of(&router, "app.test", "/").await != StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "file change not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registration_under_load_loses_no_request() {
    let fixed = Backend::echo("fixed").await;
    let registered = Backend::echo("registered").await;
    let router = Arc::new(TestRouter::with_routes(&route("fixed.test", &[&fixed])));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (router, failures, served, stop) = (
            router.clone(),
            failures.clone(),
            served.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut connection = KeepAlive::connect(router.http).await;
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let response = connection.get("fixed.test", "/").await;
                let ok = response.status() == StatusCode::OK;
                let _ = text(response).await;
                if ok {
                    served.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // 8 writers, each registering 50 batches of 20 routes, while the load runs.
    let mut writers = Vec::new();
    for writer in 0..8 {
        let router = router.clone();
        let port = registered.addr.port();
        writers.push(tokio::spawn(async move {
            for batch in 0..50 {
                let messages: Vec<Value> = (0..20)
                    .map(|i| {
                        json!({"host": "127.0.0.1", "port": port,
                               "uris": [format!("r{writer}-{batch}-{i}.test")]})
                    })
                    .collect();
                let (status, _) =
                    admin_post(&router, "/routes/register", &Value::Array(messages)).await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert!(served.load(Ordering::SeqCst) > 0);
    assert_eq!(
        routes(&router).await.as_object().unwrap().len(),
        8 * 50 * 20 + 1
    );
    for (writer, batch, i) in [(0, 0, 0), (7, 49, 19), (3, 25, 7)] {
        let host = format!("r{writer}-{batch}-{i}.test");
        assert_eq!(backend_of(&router, &host, "/").await, "registered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_guards_registration() {
    let backend = Backend::echo("b").await;
    let router = TestRouter::start(&format!("{BASE}\n[admin]\ntoken = \"s3cret\"\n"));
    let (status, reason) = admin_post(
        &router,
        "/routes/register",
        &registration(&backend, &["a.test"]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(reason["error"].is_string());
    let req = Request::post("/routes/register")
        .header("host", "admin")
        .header("authorization", "Bearer s3cret")
        .body(full(registration(&backend, &["a.test"]).to_string()))
        .unwrap();
    assert_eq!(send(router.admin, req).await.status(), StatusCode::OK);
    assert_eq!(backend_of(&router, "a.test", "/").await, "b");
}

/// Routes by the `X-Service` header instead of the host: a plugged-in extractor.
struct ByServiceHeader;

impl switchyard::proxy::RouteExtractor for ByServiceHeader {
    fn extract<'a>(
        &self,
        parts: &'a http::request::Parts,
    ) -> Option<switchyard::proxy::RouteQuery<'a>> {
        let service = parts.headers.get("x-service")?.to_str().ok()?;
        Some(switchyard::proxy::RouteQuery {
            host: service.into(),
            path: parts.uri.path().into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugged_in_extractor_routes_by_header() {
    let users = Backend::echo("users").await;
    let config =
        switchyard::config::Config::from_toml(&format!("{BASE}\n{}", route("users", &[&users])))
            .unwrap();
    let router = switchyard::RunningRouter::builder(config)
        .extractor(Arc::new(ByServiceHeader))
        .start()
        .unwrap();
    let req = Request::get("/anything")
        .header("host", "whatever.test")
        .header("x-service", "users")
        .body(full(""))
        .unwrap();
    let response = send(router.http_addr().unwrap(), req).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["backend"], "users");
    let req = Request::get("/")
        .header("host", "users")
        .body(full(""))
        .unwrap();
    let response = send(router.http_addr().unwrap(), req).await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "no header, no route key"
    );
    router.stop();
    router.wait();
}
