//! Never lose a request: the chaos test (backends killed and restarted under load), classified
//! retries (GET replayed, POST never sent twice), hostile backends (hang, reset before the
//! response, slow), passive ejection, active health checks and status retries.

use crate::faulty::*;
use crate::support::*;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    gets: AtomicUsize,
    get_failures: AtomicUsize,
    posts: AtomicUsize,
    post_failures: AtomicUsize,
}

/// Requests the router has sent to `backend` on route `chaos.test` (from `/routes`).
async fn served_by(router: &TestRouter, backend: std::net::SocketAddr) -> u64 {
    let req = Request::get("/routes")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    let listed = json_body(send(router.admin, req).await).await;
    listed["chaos.test"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == backend.to_string())
        .map_or(0, |e| e["requests"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// With the default settings: no GET fails, no POST is delivered twice, and each restarted
/// backend serves again within 2 s.
async fn chaos_kill_and_restart_backends_under_load() {
    let seen: Seen = Arc::default();
    let delay = Duration::from_millis(2);
    let a = counting_backend("a", seen.clone(), delay).await;
    let b = counting_backend("b", seen.clone(), delay).await;
    let c = counting_backend("c", seen.clone(), delay).await;
    let router = Arc::new(TestRouter::start(&format!(
        "{BASE}\n[[route]]\nuri = \"chaos.test\"\nbackends = [{}]\n",
        backends_toml(&[a.addr, b.addr, c.addr])
    )));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (router, tally, stop, next_id) =
            (router.clone(), tally.clone(), stop.clone(), next_id.clone());
        clients.push(tokio::spawn(async move {
            let mut connection = KeepAlive::connect(router.http).await;
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 50_000 {
                sent += 1;
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let post = id % 2 == 1;
                let req = Request::builder()
                    .method(if post { "POST" } else { "GET" })
                    .uri("/work")
                    .header("host", "chaos.test")
                    .header(
                        "x-test-id",
                        format!("{}-{id}", if post { "post" } else { "get" }),
                    )
                    .body(full(if post { "payload" } else { "" }))
                    .unwrap();
                let ok = match connection.send(req).await {
                    Some(response) => {
                        let ok = response.status() == StatusCode::OK;
                        ok && response.into_body().collect().await.is_ok()
                    }
                    None => false,
                };
                let (count, failures) = if post {
                    (&tally.posts, &tally.post_failures)
                } else {
                    (&tally.gets, &tally.get_failures)
                };
                count.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                    connection = KeepAlive::connect(router.http).await;
                }
            }
        }));
    }
    let comeback = |backend: std::net::SocketAddr| {
        let router = router.clone();
        async move {
            let before = served_by(&router, backend).await;
            let start = Instant::now();
            while served_by(&router, backend).await <= before + 5 {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{backend} never came back"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            start.elapsed()
        }
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.restart().await;
    let a_back = comeback(a.addr).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    b.restart().await;
    let b_back = comeback(b.addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let duplicates = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, n)| id.starts_with("post") && **n > 1)
        .count();
    let retries = metric(router.admin, "switchyard_retries_total").await;
    let denied = metric(router.admin, "switchyard_retries_denied_total").await;
    let (gets, get_failures) = (
        tally.gets.load(Ordering::Relaxed),
        tally.get_failures.load(Ordering::Relaxed),
    );
    let (posts, post_failures) = (
        tally.posts.load(Ordering::Relaxed),
        tally.post_failures.load(Ordering::Relaxed),
    );
    eprintln!(
        "chaos: GETs {gets} (failed {get_failures}), POSTs {posts} (failed {post_failures}), \
         POSTs delivered twice {duplicates}, retries {retries}, retries denied {denied}, \
         back after restart: a {a_back:?}, b {b_back:?}"
    );
    assert!(
        gets > 1000 && posts > 1000,
        "too little load: {gets} GETs, {posts} POSTs"
    );
    assert_eq!(get_failures, 0, "a GET failed");
    assert_eq!(duplicates, 0, "a POST reached a backend twice");
    for (name, back) in [("a", a_back), ("b", b_back)] {
        assert!(
            back < Duration::from_secs(2),
            "restarted {name} took {back:?} to serve again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_response_retries_get_but_never_post() {
    let seen: Seen = Arc::default();
    let (resetter, _) = never_answering(Silence::Reset).await;
    let good = counting_backend("good", seen.clone(), Duration::ZERO).await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[[route]]\nuri = \"r.test\"\nbackends = [{}]\nbalancer = \"round-robin\"\n",
        backends_toml(&[resetter, good.addr])
    ));
    for i in 0..6 {
        let response = get(&router, "r.test", "/").await;
        assert_eq!(response.status(), StatusCode::OK, "GET {i}");
        assert_eq!(text(response).await, "good");
    }
    let mut statuses = Vec::new();
    for i in 0..6 {
        let req = Request::post("/")
            .header("host", "r.test")
            .header("x-test-id", format!("post-{i}"))
            .body(full("x"))
            .unwrap();
        statuses.push(send(router.http, req).await.status().as_u16());
    }
    // The resetting endpoint is ejected after its first failure, so later requests (and the
    // POSTs) avoid it; a POST that did hit it would be a 502, never a resend.
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 502),
        "{statuses:?}"
    );
    assert!(seen.lock().unwrap().values().all(|&n| n == 1));
    // A PUT with a small body is idempotent: buffered and replayed.
    let router2 = TestRouter::start(&format!(
        "{BASE}\n[health]\neject_base = \"1ms\"\neject_max = \"1ms\"\n\
         [[route]]\nuri = \"r.test\"\nbackends = [{}]\n",
        backends_toml(&[resetter, good.addr])
    ));
    for i in 0..6 {
        let req = Request::put("/")
            .header("host", "r.test")
            .body(full(format!("body-{i}")))
            .unwrap();
        assert_eq!(
            send(router2.http, req).await.status(),
            StatusCode::OK,
            "PUT {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_to_a_resetting_backend_is_a_502_and_sent_once() {
    let (addr, attempts) = never_answering(Silence::Reset).await;
    // Only the resetting backend: the POST must not move on after it was sent.
    let router = TestRouter::start(&format!(
        "{BASE}\n[[route]]\nuri = \"p.test\"\nbackends = [\"{addr}\"]\n"
    ));
    let req = Request::post("/")
        .header("host", "p.test")
        .body(full("once"))
        .unwrap();
    let response = send(router.http, req).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response.headers()["x-cf-routererror"]
            .to_str()
            .unwrap()
            .starts_with("endpoint_failure")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "the POST was sent exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_slow_backends_within_the_timeouts() {
    let (hanger, _) = never_answering(Silence::Hang).await;
    let slow = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Response::new(full("slow"))
    })
    .await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[proxy]\nrequest_timeout = \"1s\"\n\
         [[route]]\nuri = \"hang.test\"\nbackends = [\"{hanger}\"]\n\
         [[route]]\nuri = \"slow.test\"\nbackends = [\"{}\"]\n",
        slow.addr
    ));
    let start = Instant::now();
    let response = get(&router, "hang.test", "/").await;
    let waited = start.elapsed();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let start = Instant::now();
    let response = get(&router, "slow.test", "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "slow");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_endpoint_is_ejected_then_readmitted_and_the_pool_fails_open() {
    let seen: Seen = Arc::default();
    let live = counting_backend("live", seen.clone(), Duration::ZERO).await;
    let dead = counting_backend("dead", seen, Duration::ZERO).await;
    dead.kill();
    let router = TestRouter::start(&format!(
        "{BASE}\n[health]\neject_base = \"300ms\"\neject_max = \"300ms\"\n\
         [[route]]\nuri = \"e.test\"\nbackends = [{}]\n\
         [[route]]\nuri = \"alone.test\"\nbackends = [\"{}\"]\n",
        backends_toml(&[live.addr, dead.addr]),
        dead.addr
    ));
    for _ in 0..10 {
        assert_eq!(get(&router, "e.test", "/").await.status(), StatusCode::OK);
    }
    let ejections = metric(router.admin, "switchyard_ejections_total").await;
    let listed = text(
        send(
            router.admin,
            Request::get("/metrics")
                .header("host", "a")
                .body(full(""))
                .unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(
        ejections, 1.0,
        "ejected once, then skipped while ejected: {listed}"
    );
    // Health is kept by backend: the dead one is out on alone.test too, never tried there.
    assert_eq!(
        metric(router.admin, "switchyard_endpoint_healthy").await,
        1.0
    );

    // A pool whose only endpoint is ejected still tries it (fail open) and says so.
    assert_eq!(
        get(&router, "alone.test", "/").await.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        get(&router, "alone.test", "/").await.status(),
        StatusCode::BAD_GATEWAY
    );
    assert!(metric(router.admin, "switchyard_pool_fail_open_total").await >= 1.0);

    // Restarted, it takes traffic again once its ejection ran out.
    dead.restart().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut backends = std::collections::BTreeSet::new();
    for _ in 0..6 {
        backends.insert(text(get(&router, "e.test", "/").await).await);
    }
    assert_eq!(backends.len(), 2, "{backends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_check_takes_endpoints_down_and_up() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let sick = Backend::start(move |req| {
        let flag = flag.clone();
        async move {
            let ok = flag.load(Ordering::SeqCst);
            let mut response = Response::new(full("sick"));
            if req.uri().path() == "/healthz" && !ok {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            response
        }
    })
    .await;
    let fine = Backend::start(|_req| async { Response::new(full("fine")) }).await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[[route]]\nuri = \"h.test\"\nbackends = [{}]\n\
         health_check = {{ path = \"/healthz\", interval = \"50ms\", timeout = \"1s\", rise = 2, fall = 2 }}\n",
        backends_toml(&[sick.addr, fine.addr])
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..10 {
        assert_eq!(text(get(&router, "h.test", "/").await).await, "fine");
    }
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        seen.insert(text(get(&router, "h.test", "/").await).await);
    }
    assert_eq!(seen.len(), 2, "back in rotation: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_retried_only_when_the_route_opts_in() {
    let unavailable = Backend::start(|_req| async {
        let mut response = Response::new(full("busy"));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    })
    .await;
    let fine = Backend::start(|_req| async { Response::new(full("fine")) }).await;
    let backends = backends_toml(&[unavailable.addr, fine.addr]);
    let router = TestRouter::start(&format!(
        "{BASE}\n[[route]]\nuri = \"opt.test\"\nbackends = [{backends}]\nretry_statuses = [503]\n\
         [[route]]\nuri = \"plain.test\"\nbackends = [{backends}]\n"
    ));
    for _ in 0..6 {
        assert_eq!(get(&router, "opt.test", "/").await.status(), StatusCode::OK);
    }
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..6 {
            out.push(get(&router, "plain.test", "/").await.status().as_u16());
        }
        out
    };
    assert!(
        statuses.contains(&503),
        "passed through without opt-in: {statuses:?}"
    );
    let mut posts = Vec::new();
    for _ in 0..6 {
        let req = Request::post("/")
            .header("host", "opt.test")
            .body(full("x"))
            .unwrap();
        posts.push(send(router.http, req).await.status().as_u16());
    }
    assert!(posts.contains(&503), "a POST is never retried: {posts:?}");
}
