//! Registration at scale through the admin API, with traffic flowing (issue 4's targets):
//! `cargo bench --bench registry` starts an in-process router with one static route, keeps
//! keep-alive clients busy on it, posts 100,000 registrations (100 arrays of 1,000, gorouter's
//! JSON) and reports the time to apply them, requests served and failed meanwhile, and how soon
//! a registered route answers through the proxy.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchyard::RunningRouter;
use switchyard::config::Config;
use tokio::net::TcpListener;

const REGISTRATIONS: usize = 100_000;
const PER_POST: usize = 1_000;
const CLIENTS: usize = 8;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn call(sender: &mut Sender, req: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(req).await.expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

fn get(host: &str) -> Request<Full<Bytes>> {
    Request::get("/")
        .header("host", host)
        .body(Full::default())
        .expect("request")
}

fn register(body: String) -> Request<Full<Bytes>> {
    Request::post("/routes/register")
        .header("host", "admin")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

fn messages(port: u16, range: std::ops::Range<usize>) -> String {
    let items: Vec<String> = range
        .map(|i| {
            format!(
                r#"{{"host":"127.0.0.1","port":{port},"uris":["app-{i}.apps.example.com"],"app":"app-{i}","private_instance_id":"instance-{i}","private_instance_index":"0","stale_threshold_in_seconds":120,"tags":{{"component":"bench"}}}}"#
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"ok",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backend = backend().await;
    let config = Config::from_toml(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[server]\nworkers = 1\n\
         [[route]]\nuri = \"fixed.test\"\nbackends = [\"{backend}\"]\n"
    ))
    .expect("config");
    let router = RunningRouter::start(config).expect("router");
    let (http, admin) = (
        router.http_addr().expect("http"),
        router.admin_addr().expect("admin"),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..CLIENTS {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut sender = connect(http).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match call(&mut sender, get("fixed.test")).await.0 {
                    StatusCode::OK => served.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = served.load(Ordering::Relaxed);

    let bodies: Vec<String> = (0..REGISTRATIONS / PER_POST)
        .map(|k| messages(backend.port(), k * PER_POST..(k + 1) * PER_POST))
        .collect();
    let mut admin_sender = connect(admin).await;
    let mut proxy_sender = connect(http).await;
    let mut not_yet_visible = 0;
    let start = Instant::now();
    for (k, body) in bodies.into_iter().enumerate() {
        let (status, reply) = call(&mut admin_sender, register(body)).await;
        assert_eq!(status, StatusCode::OK, "{reply:?}");
        let last = format!("app-{}.apps.example.com", (k + 1) * PER_POST - 1);
        if call(&mut proxy_sender, get(&last)).await.0 != StatusCode::OK {
            not_yet_visible += 1;
        }
    }
    let elapsed = start.elapsed();
    let during = served.load(Ordering::Relaxed) - before;

    let mut visible = Vec::new();
    for i in 0..200 {
        let host = format!("late-{i}.apps.example.com");
        let body = format!(
            r#"{{"host":"127.0.0.1","port":{},"uris":["{host}"]}}"#,
            backend.port()
        );
        let start = Instant::now();
        call(&mut admin_sender, register(body)).await;
        while call(&mut proxy_sender, get(&host)).await.0 != StatusCode::OK {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{host} never became visible"
            );
        }
        visible.push(start.elapsed());
    }
    visible.sort();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    router.stop();
    router.wait();

    println!("| measure | value |\n|---|---|");
    println!(
        "| {REGISTRATIONS} registrations ({} POSTs of {PER_POST}) applied in | {:.0} ms ({:.0}k/s) |",
        REGISTRATIONS / PER_POST,
        elapsed.as_secs_f64() * 1e3,
        REGISTRATIONS as f64 / elapsed.as_secs_f64() / 1e3
    );
    println!("| requests served on a static route meanwhile | {during} |");
    println!(
        "| requests failed (whole run) | {} |",
        failed.load(Ordering::Relaxed)
    );
    println!(
        "| batches whose last route was not served right after the POST | {not_yet_visible} |"
    );
    println!(
        "| register -> first proxied 200, p50 / max (200 routes, table of 100k) | {:.2} ms / {:.2} ms |",
        percentile(&visible, 0.5).as_secs_f64() * 1e3,
        visible[visible.len() - 1].as_secs_f64() * 1e3
    );
}
