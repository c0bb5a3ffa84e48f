//! The binary: `check` errors with file, line and key; start-up failures; signals (graceful
//! stop on SIGTERM, drain on SIGUSR1, route reload on SIGHUP).

use crate::process::*;
use crate::support::*;
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_file_line_and_key_of_every_error() {
    let cases = [
        (
            "[proxy]\nconnect_timeout = \"5 parsecs\"\n",
            ":2: key `proxy.connect_timeout`",
        ),
        ("[server]\nworkerz = 2\n", ":2: key `server.workerz`"),
        (
            "[[route]]\nuri = \"a.test\"\nbackends = [\"nowhere\"]\n",
            ":3: key `route[0].backends[0]`",
        ),
        (
            "[[route]]\nuri = \"\"\nbackends = []\n",
            ":2: key `route[0].uri`",
        ),
        (
            "[listen]\nhttps = \"127.0.0.1:8443\"\n",
            ":2: key `listen.https`",
        ),
        (
            "[tls]\ncerts = [{ cert = \"missing.pem\", key = \"missing.key\" }]\n",
            ":2: key `tls.certs[0]`",
        ),
        ("[proxy\n", ":1: key `-`"),
    ];
    for (text, expected) in cases {
        let path = write_config(text);
        let out = run(BIN, &["check", "--config", path.to_str().unwrap()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(&format!("{}{expected}", path.display())),
            "{text}: expected {expected} in {stderr}"
        );
    }
    let path = write_config("[[route]]\nuri = \"a.test\"\nbackends = [\"127.0.0.1:9\"]\n");
    let out = run(BIN, &["check", "--config", path.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_with_one_clear_line_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let path = write_config(&format!(
        "[listen]\nhttp = \"{addr}\"\nadmin = \"127.0.0.1:0\"\n[server]\nworkers = 1\n"
    ));
    let out = run(BIN, &["run", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (listen.http)")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let backend = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        http::Response::new(full("finished"))
    })
    .await;
    let (http, admin) = (free_port(), free_port());
    let mut process = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n[server]\nworkers = 2\ndrain_timeout = \"5s\"\n{}",
        route("app.test", &[&backend])
    ))
    .await;
    wait_for_port(http).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let in_flight = tokio::spawn(async move {
        let req = http::Request::get("/")
            .header("host", "app.test")
            .body(full(""))
            .unwrap();
        text(send(addr, req).await).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    process.signal("TERM");
    assert_eq!(in_flight.await.unwrap(), "finished");
    assert_eq!(process.exit_code().await, Some(0));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_idle_keep_alive_connections_at_once() {
    // SIGTERM stops at once; SIGUSR1 drains (health 503) for `drain_wait`, then stops.
    idle_connections_close_at_stop("TERM", Duration::ZERO).await;
    idle_connections_close_at_stop("USR1", Duration::from_millis(300)).await;
}

async fn idle_connections_close_at_stop(signal: &str, drain_wait: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = Backend::echo("a").await;
    let (http, admin) = (free_port(), free_port());
    let mut process = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n[server]\nworkers = 1\ndrain_timeout = \"20s\"\ndrain_wait = \"{}ms\"\n{}",
        drain_wait.as_millis(),
        route("app.test", &[&backend])
    ))
    .await;
    wait_for_port(http).await;
    // One request each, then quiet: `parked` long enough to be parked (1 s), the others not.
    let request = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let mut answer = [0u8; 4096];
    let mut parked = tokio::net::TcpStream::connect(("127.0.0.1", http))
        .await
        .unwrap();
    parked.write_all(request).await.unwrap();
    assert!(parked.read(&mut answer).await.unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut fresh = tokio::net::TcpStream::connect(("127.0.0.1", http))
        .await
        .unwrap();
    fresh.write_all(request).await.unwrap();
    assert!(fresh.read(&mut answer).await.unwrap() > 0);
    // A chunked body: this connection is served by hyper (handed off), not the hand-written server.
    let mut hyper = tokio::net::TcpStream::connect(("127.0.0.1", http))
        .await
        .unwrap();
    hyper
        .write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
        .await
        .unwrap();
    assert!(hyper.read(&mut answer).await.unwrap() > 0);
    let stopped_at = std::time::Instant::now();
    process.signal(signal);
    tokio::time::sleep(drain_wait).await;
    for (name, conn) in [
        ("parked", &mut parked),
        ("fresh", &mut fresh),
        ("hyper", &mut hyper),
    ] {
        // Well under the 1 s after which a quiet connection is looked at anyway (parking).
        let read = tokio::time::timeout(Duration::from_millis(500), conn.read(&mut answer)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "{signal} {name}: idle connection not closed at stop: {read:?}"
        );
    }
    assert_eq!(process.exit_code().await, Some(0));
    assert!(
        stopped_at.elapsed() < drain_wait + Duration::from_secs(5),
        "exit waited for the drain timeout: {:?}",
        stopped_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_fails_health_first_then_stops() {
    let (http, admin) = (free_port(), free_port());
    let mut process = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n[server]\ndrain_wait = \"1s\"\ndrain_timeout = \"1s\"\n"
    ))
    .await;
    wait_for_port(admin).await;
    let health = || async move {
        let out = run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://127.0.0.1:{admin}/health"),
            ],
        )
        .await;
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(health().await, "200");
    process.signal("USR1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health().await, "503");
    assert_eq!(process.exit_code().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_routes_and_keeps_old_ones_on_error() {
    let one = Backend::echo("one").await;
    let two = Backend::echo("two").await;
    let (http, admin) = (free_port(), free_port());
    let head = format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n[server]\ndrain_timeout = \"300ms\"\n"
    );
    let path = write_config(&format!("{head}{}", route("app.test", &[&one])));
    let log = path.with_file_name("stderr.log");
    let child = tokio::process::Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(http).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let backend_of = || async move {
        let req = http::Request::get("/")
            .header("host", "app.test")
            .body(full(""))
            .unwrap();
        json_body(send(addr, req).await).await["backend"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(backend_of().await, "one");
    // The route changes, and so does a key only a restart applies: that one is named.
    let head = head.replace(
        "drain_timeout = \"300ms\"",
        "drain_timeout = \"300ms\"\nworkers = 1",
    );
    std::fs::write(&path, format!("{head}{}", route("app.test", &[&two]))).unwrap();
    process.signal("HUP");
    let start = std::time::Instant::now();
    while backend_of().await != "two" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "SIGHUP reload not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warned = std::time::Instant::now();
    let warning = loop {
        let logged = std::fs::read_to_string(&log).unwrap();
        let found = logged
            .lines()
            .find(|line| line.contains("take effect only after a restart"));
        if let Some(line) = found {
            break line.to_string();
        }
        assert!(
            warned.elapsed() < Duration::from_secs(2),
            "no restart warning in:\n{logged}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        warning.contains("WARN") && warning.contains("server.workers"),
        "{warning}"
    );
    std::fs::write(&path, format!("{head}[[route]]\nuri = \"bad host\"\n")).unwrap();
    process.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        backend_of().await,
        "two",
        "a bad reload keeps the old table"
    );
    process.signal("TERM");
}

/// The binary with one route on a new backend (returned: it serves while kept) and
/// `drain_wait`, its HTTP listener up.
async fn router_with_drain_wait(drain_wait: &str) -> (Process, std::net::SocketAddr, Backend) {
    let backend = Backend::echo("a").await;
    let (http, admin) = (free_port(), free_port());
    let process = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n\
         [server]\ndrain_wait = \"{drain_wait}\"\n{}",
        route("app.test", &[&backend])
    ))
    .await;
    wait_for_port(http).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], http));
    (process, addr, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_under_load_loses_no_request() {
    // 64 keep-alive clients keep sending. While draining (health 503, so a load balancer takes
    // the router out), every answer says `Connection: close` and the client goes, as a load
    // balancer's connection would. Before, the connections stayed open until the stop closed
    // them under the clients' next requests. A request sent and not answered is lost.
    let (mut process, addr, _backend) = router_with_drain_wait("1s").await;
    let clients: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async move {
                let (mut answered, mut closes, mut lost) = (0usize, 0usize, 0usize);
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut conn = KeepAlive::over(stream).await;
                while std::time::Instant::now() < deadline {
                    let req = http::Request::get("/")
                        .header("host", "app.test")
                        .body(full(""))
                        .unwrap();
                    let Some(response) = conn.send(req).await else {
                        lost += 1;
                        break;
                    };
                    let close = response
                        .headers()
                        .get("connection")
                        .is_some_and(|v| v == "close");
                    if text(response).await.is_empty() {
                        lost += 1;
                    }
                    answered += 1;
                    if close {
                        closes += 1;
                        break;
                    }
                }
                (answered, closes, lost)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.signal("USR1");
    let (mut answered, mut closes, mut lost) = (0, 0, 0);
    for client in clients {
        let (a, c, l) = client.await.unwrap();
        (answered, closes, lost) = (answered + a, closes + c, lost + l);
    }
    assert_eq!(process.exit_code().await, Some(0));
    assert!(answered > 200, "only {answered} answered");
    assert_eq!(
        closes, 64,
        "answers that said Connection: close while draining"
    );
    assert_eq!(lost, 0, "{lost} requests lost of {answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnecting_through_the_stop_lose_no_request() {
    // 64 clients that open a new connection for every request (as wrk does once each answer
    // says `Connection: close`) go on through the drain and the stop. A request is lost when
    // its connection was accepted and then closed without an answer: accepted but not yet read
    // at the stop, or left in the accept queue. A refused connection loses nothing (the client
    // sent nothing); that is how the stop ends each client.
    let (mut process, addr, _backend) = router_with_drain_wait("500ms").await;
    let clients: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut answered, mut lost) = (0usize, Vec::new());
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while std::time::Instant::now() < deadline {
                    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                        break;
                    };
                    let request = b"GET / HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n\r\n";
                    if stream.write_all(request).await.is_err() {
                        lost.push("write failed".to_string());
                        continue;
                    }
                    let mut response = Vec::new();
                    let read = tokio::time::timeout(
                        Duration::from_secs(10),
                        stream.read_to_end(&mut response),
                    )
                    .await;
                    match read {
                        Ok(Ok(_)) if response.starts_with(b"HTTP/1.1 200") => answered += 1,
                        other => lost.push(format!(
                            "{other:?}: {:?}",
                            String::from_utf8_lossy(&response)
                        )),
                    }
                }
                (answered, lost)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.signal("USR1");
    let (mut answered, mut lost) = (0, Vec::new());
    for client in clients {
        let (a, l) = client.await.unwrap();
        answered += a;
        lost.extend(l);
    }
    assert_eq!(process.exit_code().await, Some(0));
    assert!(answered > 500, "only {answered} answered");
    assert!(
        lost.is_empty(),
        "{} of {answered} lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_config_passes_check_as_it_is() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = run(BIN, &["check", "--config", path.to_str().unwrap()]).await;
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} examples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_by_pid_file_and_check_that_binds() {
    let one = Backend::echo("one").await;
    let two = Backend::echo("two").await;
    let (http, admin) = (free_port(), free_port());
    let head = format!("[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n");
    let path = write_config(&format!("{head}{}", route("app.test", &[&one])));
    let pid_file = path.with_file_name("switchyard.pid");
    let (config, pid) = (path.to_str().unwrap(), pid_file.to_str().unwrap());
    let child = tokio::process::Command::new(BIN)
        .args(["run", "--config", config, "--pid-file", pid])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut process = Process(child);
    wait_for_port(http).await;
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), process.pid().to_string());

    // The router's ports are taken now: `check --bind` says so; plain `check` does not look.
    let bound = run(BIN, &["check", "--config", config, "--bind"]).await;
    assert_eq!(bound.status.code(), Some(1));
    let said = String::from_utf8_lossy(&bound.stderr);
    assert!(
        said.contains(&format!("127.0.0.1:{http} (listen.http)")),
        "{said}"
    );
    assert!(
        run(BIN, &["check", "--config", config])
            .await
            .status
            .success()
    );

    std::fs::write(&path, format!("{head}{}", route("app.test", &[&two]))).unwrap();
    // Sent while the router may still be starting: it waits for it (it killed it before).
    let reloaded = run(BIN, &["reload", "--pid-file", pid]).await;
    assert!(
        reloaded.status.success(),
        "{}",
        String::from_utf8_lossy(&reloaded.stderr)
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], http));
    let start = std::time::Instant::now();
    loop {
        let req = http::Request::get("/")
            .header("host", "app.test")
            .body(full(""))
            .unwrap();
        if json_body(send(addr, req).await).await["backend"] == "two" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "reload not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.signal("TERM");
    assert_eq!(process.exit_code().await, Some(0));
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let free = run(BIN, &["check", "--config", config, "--bind"]).await;
    assert!(
        free.status.success(),
        "{}",
        String::from_utf8_lossy(&free.stderr)
    );
}
