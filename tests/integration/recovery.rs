//! Recovery with the default settings: health is learned once per backend (not per route), a
//! hung backend costs an idempotent request no more than `attempt_timeout`, and an HTTP/2
//! backend that provably did not process a request (REFUSED_STREAM, GOAWAY below its stream)
//! has it resent, whatever the method.

use crate::faulty::*;
use crate::process::{Process, free_port, start_binary_logging, wait_for_port};
use crate::support::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `/routes` as JSON.
async fn routes(router: &TestRouter) -> serde_json::Value {
    let req = Request::get("/routes")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    json_body(send(router.admin, req).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_behind_twenty_routes_is_learned_dead_once_and_back_everywhere() {
    let seen: Seen = Arc::default();
    let live = counting_backend("live", seen.clone(), Duration::ZERO).await;
    let shared = counting_backend("shared", seen, Duration::ZERO).await;
    let routes_toml: String = (0..20)
        .map(|i| {
            format!(
                "[[route]]\nuri = \"r{i}.test\"\nbackends = [{}]\n",
                backends_toml(&[live.addr, shared.addr])
            )
        })
        .collect();
    let router = TestRouter::start(&format!("{BASE}\n{routes_toml}"));
    shared.kill();
    for i in 0..20 {
        for _ in 0..2 {
            let response = get(&router, &format!("r{i}.test"), "/").await;
            assert_eq!(response.status(), StatusCode::OK, "r{i}.test");
        }
    }
    let failures = metric(router.admin, "switchyard_endpoint_failures_total").await;
    let ejections = metric(router.admin, "switchyard_ejections_total").await;
    assert_eq!(
        (failures, ejections),
        (1.0, 1.0),
        "one failed attempt taught all twenty routes"
    );
    let listed = routes(&router).await;
    let standing = listed["r7.test"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == shared.addr.to_string())
        .unwrap()["ejection"]
        .clone();
    assert!(
        ["ejected", "half_open"].contains(&standing["state"].as_str().unwrap()),
        "{standing}"
    );
    assert!(
        standing["next_probe_in_ms"].as_u64().unwrap() <= 250,
        "{standing}"
    );

    // Restarted, it serves on every route within 2 s.
    shared.restart().await;
    let restarted = Instant::now();
    let mut back_on = std::collections::BTreeSet::new();
    while back_on.len() < 20 {
        assert!(
            restarted.elapsed() < Duration::from_secs(2),
            "back on {} of 20 routes after 2 s",
            back_on.len()
        );
        for i in 0..20 {
            if text(get(&router, &format!("r{i}.test"), "/").await).await == "shared" {
                back_on.insert(i);
            }
        }
    }
    eprintln!(
        "back on all 20 routes {:?} after restart",
        restarted.elapsed()
    );
    assert_eq!(
        metric(router.admin, "switchyard_readmissions_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_two_lines_however_many_requests_it_failed() {
    let seen: Seen = Arc::default();
    let live = counting_backend("live", seen.clone(), Duration::ZERO).await;
    let dead = counting_backend("dead", seen, Duration::ZERO).await;
    dead.kill();
    let log = temp_dir("outage-log").join("stderr.jsonl");
    let (_router, router, admin) = logging_router(
        &format!(
            "[[route]]\nuri = \"log.test\"\nbackends = [{}]\n",
            backends_toml(&[live.addr, dead.addr])
        ),
        &log,
    )
    .await;
    let get = || {
        let req = Request::get("/")
            .header("host", "log.test")
            .body(full(""))
            .unwrap();
        send(router, req)
    };
    // 200 requests over 1.5 s: the dead backend is probed several times and stays out.
    for _ in 0..200 {
        assert_eq!(get().await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_micros(7500)).await;
    }
    dead.restart().await;
    let restarted = Instant::now();
    while text(get().await).await != "dead" {
        assert!(restarted.elapsed() < Duration::from_secs(2), "never back");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let about = |message: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|line| line["fields"]["message"] == message)
            .collect()
    };
    let (ejected, readmitted) = (
        about("endpoint ejected"),
        about("endpoint re-admitted: it answered"),
    );
    assert_eq!((ejected.len(), readmitted.len()), (1, 1), "{lines:#?}");
    let (ejected, readmitted) = (&ejected[0], &readmitted[0]);
    assert_eq!(ejected["level"], "WARN");
    assert_eq!(readmitted["level"], "INFO");
    assert_eq!(ejected["fields"]["endpoint"], dead.addr.to_string());
    assert!(
        ejected["fields"]["cause"]
            .as_str()
            .unwrap()
            .starts_with("dial"),
        "{ejected}"
    );
    assert_eq!(readmitted["fields"]["endpoint"], dead.addr.to_string());
    let out_ms = readmitted["fields"]["out_ms"].as_u64().unwrap();
    assert!(out_ms >= 1500, "out for {out_ms} ms");
    let probes = metric(admin, "switchyard_ejection_probes_total").await;
    assert!(probes >= 2.0, "{probes} probes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_under_load_logs_a_bounded_number_of_warn_lines() {
    let seen: Seen = Arc::default();
    let dead = counting_backend("dead", seen, Duration::ZERO).await;
    dead.kill();
    let log = temp_dir("dead-log").join("stderr.jsonl");
    let (router_process, router, admin) = logging_router(
        &format!(
            "[[route]]\nuri = \"dead.test\"\nbackends = [{}]\n",
            backends_toml(&[dead.addr])
        ),
        &log,
    )
    .await;
    // 8 clients, 2,000 failed requests in all.
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..250 {
                    let req = Request::get("/")
                        .header("host", "dead.test")
                        .body(full(""))
                        .unwrap();
                    assert!(send(router, req).await.status().is_server_error());
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    // One more failure in a later second: its lines report how many were held back (the
    // count travels with the next admitted line).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let req = Request::get("/")
        .header("host", "dead.test")
        .body(full(""))
        .unwrap();
    assert!(send(router, req).await.status().is_server_error());
    let seconds = started.elapsed().as_secs_f64().ceil() as usize + 1;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let warnings: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["level"] == "WARN")
        .collect();
    // Each kind of line (failed attempt, failed request) at most 10 a second, plus the
    // ejection.
    let bound = 2 * 10 * seconds + 2;
    assert!(!warnings.is_empty(), "no WARN line for a dead backend");
    assert!(
        warnings.len() <= bound,
        "{} WARN lines over {seconds} s (bound {bound})",
        warnings.len()
    );
    let held_back: u64 = warnings
        .iter()
        .filter_map(|line| line["fields"]["suppressed"].as_u64())
        .sum();
    assert!(
        held_back > 0,
        "the lines held back are counted: {warnings:#?}"
    );
    // And counted in /metrics, where no later line is needed to learn of them.
    let total = metric(admin, "switchyard_log_lines_held_back_total").await as u64;
    assert!(
        total >= held_back,
        "{total} held back in /metrics, {held_back} reported"
    );
    drop(router_process);
}

/// Sends `req` to the router with a client-side limit.
async fn timed(router: &TestRouter, req: Request<TestBody>) -> (StatusCode, Duration) {
    let start = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), send(router.http, req))
        .await
        .expect("answered within 5 s");
    (response.status(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_backend_costs_a_get_one_attempt_timeout_and_a_post_a_504() {
    let seen: Seen = Arc::default();
    let (hung, reads) = never_answering(Silence::Hang).await;
    let live = counting_backend("live", seen.clone(), Duration::ZERO).await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[proxy]\nattempt_timeout = \"300ms\"\n\
         [[route]]\nuri = \"hung.test\"\nbackends = [{}]\n",
        backends_toml(&[hung, live.addr])
    ));
    // GETs: each answered by the live endpoint, the ones that met the hung endpoint first
    // after one attempt timeout. A pause after those lets the hung endpoint's ejection run out.
    let mut through_hung = 0;
    for n in 0..8 {
        if through_hung > 1 {
            break;
        }
        let before = reads.load(Ordering::SeqCst);
        let req = Request::get("/")
            .header("host", "hung.test")
            .body(full(""))
            .unwrap();
        let (status, took) = timed(&router, req).await;
        assert_eq!(status, StatusCode::OK, "GET {n}");
        assert!(took < Duration::from_millis(1300), "GET {n}: {took:?}");
        if reads.load(Ordering::SeqCst) > before {
            through_hung += 1;
            assert!(took >= Duration::from_millis(300), "GET {n}: {took:?}");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    assert!(through_hung > 0, "no GET met the hung endpoint");

    // POSTs: answered by the live endpoint, or 504 from the hung one; never sent twice.
    let mut timed_out = 0;
    for n in 0..8 {
        if timed_out > 1 {
            break;
        }
        let before = reads.load(Ordering::SeqCst);
        let req = Request::post("/")
            .header("host", "hung.test")
            .header("x-test-id", format!("post-{n}"))
            .body(full("payload"))
            .unwrap();
        let (status, took) = timed(&router, req).await;
        let hung_read = reads.load(Ordering::SeqCst) - before;
        let live_read = seen.lock().unwrap().get(&format!("post-{n}")).copied();
        match status {
            StatusCode::GATEWAY_TIMEOUT => {
                timed_out += 1;
                assert_eq!((hung_read, live_read), (1, None), "POST {n}");
                assert!(took < Duration::from_millis(1300), "POST {n}: {took:?}");
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            StatusCode::OK => assert_eq!((hung_read, live_read), (0, Some(1)), "POST {n}"),
            other => panic!("POST {n}: {other}"),
        }
    }
    assert!(timed_out > 0, "no POST met the hung endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_upload_is_not_cut_by_the_attempt_timeout() {
    let seen: Seen = Arc::default();
    let backend = counting_backend("read it all", seen.clone(), Duration::ZERO).await;
    let router = TestRouter::start(&format!(
        "{BASE}\n[proxy]\nattempt_timeout = \"200ms\"\n\
         [[route]]\nuri = \"upload.test\"\nbackends = [{}]\n",
        backends_toml(&[backend.addr])
    ));
    // Chunked, over 1 s: the backend answers once it has read the last chunk.
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let chunk = hyper::body::Frame::data(Bytes::from_static(b"chunk"));
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let req = Request::put("/")
        .header("host", "upload.test")
        .header("x-test-id", "upload")
        .body(body)
        .unwrap();
    let (status, took) = timed(&router, req).await;
    assert_eq!(status, StatusCode::OK, "after {took:?}");
    assert!(took >= Duration::from_secs(1));
    assert_eq!(seen.lock().unwrap().get("upload"), Some(&1));
}

/// How an [`h2_backend`] treats the streams it is sent.
#[derive(Clone, Copy)]
enum Refuse {
    /// Serve every stream.
    Never,
    /// Reset every stream with REFUSED_STREAM before reading it.
    Stream,
}

/// An HTTP/2 backend (h2c, prior knowledge) that answers 200 with the request body after
/// counting it, or refuses as `refuse` says. Returns its address, the bodies it processed and
/// the streams it refused.
async fn h2_backend(
    refuse: Refuse,
) -> (
    std::net::SocketAddr,
    Arc<std::sync::Mutex<Vec<Bytes>>>,
    Arc<AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let processed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (bodies, refusals) = (processed.clone(), refused.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (bodies, refusals) = (bodies.clone(), refusals.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    match refuse {
                        Refuse::Stream => {
                            refusals.fetch_add(1, Ordering::SeqCst);
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                            continue;
                        }
                        Refuse::Never => {}
                    }
                    let (bodies, mut body) = (bodies.clone(), req.into_body());
                    tokio::spawn(async move {
                        let mut whole = Vec::new();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            whole.extend_from_slice(&chunk);
                        }
                        let whole = Bytes::from(whole);
                        bodies.lock().unwrap().push(whole.clone());
                        let response = http::Response::new(());
                        if let Ok(mut send) = respond.send_response(response, false) {
                            let _ = send.send_data(whole, true);
                        }
                    });
                }
            });
        }
    });
    (addr, processed, refused)
}

/// A raw HTTP/2 backend that answers each connection's first request with GOAWAY(last stream
/// id 0, NO_ERROR): it processed none. Returns its address and the requests it turned away.
async fn goaway_backend() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut preface = [0u8; 24];
                stream.read_exact(&mut preface).await?;
                stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await?;
                loop {
                    let mut head = [0u8; 9];
                    stream.read_exact(&mut head).await?;
                    let len = usize::from(head[0]) << 16
                        | usize::from(head[1]) << 8
                        | usize::from(head[2]);
                    let mut payload = vec![0u8; len];
                    stream.read_exact(&mut payload).await?;
                    match (head[3], head[4] & 1) {
                        (4, 0) => stream.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await?,
                        (1, _) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let goaway = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                            stream.write_all(&goaway).await?;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            return Ok::<_, std::io::Error>(());
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_refused_streams_are_resent_whatever_the_method() {
    for goaway in [false, true] {
        let (refuser, refusals) = if goaway {
            goaway_backend().await
        } else {
            let (addr, _, refusals) = h2_backend(Refuse::Stream).await;
            (addr, refusals)
        };
        let (good, processed, _) = h2_backend(Refuse::Never).await;
        let router = TestRouter::start(&format!(
            "{BASE}\n[[route]]\nuri = \"h2.test\"\nprotocol = \"http2\"\nbackends = [{}]\n",
            backends_toml(&[refuser, good])
        ));
        // Round-robin from a random start: within a few POSTs one meets the refusing
        // endpoint first (the pause lets its ejection run out).
        let mut n = 0;
        while refusals.load(Ordering::SeqCst) == 0 {
            assert!(n < 12, "no POST met the refusing endpoint");
            let body = format!("post {n}");
            let req = Request::post("/")
                .header("host", "h2.test")
                .body(full(body.clone()))
                .unwrap();
            let response = send(router.http, req).await;
            assert_eq!(response.status(), StatusCode::OK, "POST {n}");
            assert_eq!(text(response).await, body);
            n += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let processed = processed.lock().unwrap().clone();
        assert_eq!(
            processed.len(),
            n,
            "each POST processed once: {processed:?}"
        );
    }
}

/// The binary with its default settings and `routes`, its error log as JSON lines in `log`;
/// its HTTP and admin addresses.
async fn logging_router(routes: &str, log: &std::path::Path) -> (Process, SocketAddr, SocketAddr) {
    let (http, admin) = (free_port(), free_port());
    let process = start_binary_logging(
        &format!("[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n{routes}"),
        log,
    )
    .await;
    wait_for_port(http).await;
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    (process, addr(http), addr(admin))
}
