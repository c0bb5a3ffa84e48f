//! Fleets of routers: routes from real NATS (gorouter's messages) and etcd servers. Register,
//! route, unregister; expiry by time to live and by lease; greet and start messages; bad
//! messages; servers restarted under traffic; etcd history compacted; two routers sharing
//! both.

use crate::process::{Process, start_router};
use crate::shared_servers::{EtcdServer, NatsServer};
use crate::support::*;
use futures_util::StreamExt;
use http::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A registration of `backend` for `uris` living `ttl_seconds` (0: the router's threshold).
fn message(backend: &Backend, uris: &[&str], ttl_seconds: u64) -> Value {
    let mut message = registration(backend, uris);
    message["stale_threshold_in_seconds"] = json!(ttl_seconds);
    message
}

/// Polls `check` every 20 ms until it holds; panics after `limit` naming `what`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A router under test: in-process or the real binary.
trait At {
    fn http(&self) -> SocketAddr;
    fn admin(&self) -> SocketAddr;
}

impl At for TestRouter {
    fn http(&self) -> SocketAddr {
        self.http
    }
    fn admin(&self) -> SocketAddr {
        self.admin
    }
}

/// The binary, with its HTTP and admin addresses.
type Binary = (Process, SocketAddr, SocketAddr);

impl At for Binary {
    fn http(&self) -> SocketAddr {
        self.1
    }
    fn admin(&self) -> SocketAddr {
        self.2
    }
}

async fn get_host(router: &impl At, host: &str) -> http::Response<hyper::body::Incoming> {
    let req = http::Request::get("/")
        .header("host", host)
        .body(full(""))
        .unwrap();
    send(router.http(), req).await
}

async fn status(router: &impl At, host: &str) -> StatusCode {
    get_host(router, host).await.status()
}

async fn served_by(router: &impl At, host: &str) -> Option<String> {
    let response = get_host(router, host).await;
    if response.status() != StatusCode::OK {
        return None;
    }
    json_body(response).await["backend"]
        .as_str()
        .map(str::to_string)
}

/// The source of each endpoint of `uri` in `/routes`.
async fn sources(router: &impl At, uri: &str) -> Vec<String> {
    let req = http::Request::get("/routes")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    let routes = json_body(send(router.admin(), req).await).await;
    routes[uri].as_array().map_or(Vec::new(), |endpoints| {
        endpoints
            .iter()
            .map(|e| e["source"].as_str().unwrap().to_string())
            .collect()
    })
}

async fn source_metric(router: &impl At, name: &str, source: &str) -> f64 {
    let req = http::Request::get("/metrics")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    let body = text(send(router.admin(), req).await).await;
    let prefix = format!("{name}{{source=\"{source}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

fn nats_router(nats: &NatsServer, extra: &str) -> TestRouter {
    TestRouter::start(&format!(
        "{BASE}\n[registry]\n{extra}\n[registry.nats]\nservers = [\"{}\"]\n",
        nats.url()
    ))
}

async fn connected(router: &impl At, source: &str) {
    eventually(Duration::from_secs(10), "source connected", || async {
        source_metric(router, "switchyard_registry_connected", source).await == 1.0
    })
    .await;
}

async fn publish(client: &async_nats::Client, subject: &'static str, body: &Value) {
    client
        .publish(subject, body.to_string().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_register_route_unregister_greet_and_bad_messages() {
    let nats = NatsServer::start();
    let backend = Backend::echo("nats-one").await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut starts = client.subscribe("router.start").await.unwrap();
    client.flush().await.unwrap();

    let router = nats_router(&nats, "");
    let start: Value = tokio::time::timeout(Duration::from_secs(10), starts.next())
        .await
        .expect("router.start published at start")
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .unwrap();
    assert_eq!(start["minimumRegisterIntervalInSeconds"], 20);
    assert_eq!(start["pruneThresholdInSeconds"], 120);
    assert_eq!(start["hosts"], json!(["127.0.0.1"]));
    assert!(start["id"].as_str().unwrap().starts_with("0-"), "{start}");
    connected(&router, "nats").await;

    let greet = client.request("router.greet", "".into()).await.unwrap();
    let greeted: Value = serde_json::from_slice(&greet.payload).unwrap();
    assert_eq!(greeted, start, "the greet reply is the start message");

    publish(
        &client,
        "router.register",
        &message(&backend, &["nats.test"], 0),
    )
    .await;
    eventually(Duration::from_secs(5), "registered route", || async {
        served_by(&router, "nats.test").await.as_deref() == Some("nats-one")
    })
    .await;
    assert_eq!(sources(&router, "nats.test").await, ["nats"]);

    // Bad messages are counted and change nothing; other subjects are ignored.
    let rejected = "switchyard_registry_messages_rejected_total";
    for bad in [
        json!("{not json"),
        json!({"host": "127.0.0.1", "port": 0, "uris": ["nats.test"]}),
        json!({"host": "127.0.0.1", "port": 1, "uris": ["bad uri"]}),
    ] {
        let body = bad.as_str().map_or(bad.to_string(), str::to_string);
        client
            .publish("router.register", body.into())
            .await
            .unwrap();
    }
    publish(
        &client,
        "router.other",
        &message(&backend, &["other.test"], 0),
    )
    .await;
    eventually(Duration::from_secs(5), "rejections counted", || async {
        source_metric(&router, rejected, "nats").await == 3.0
    })
    .await;
    assert_eq!(
        served_by(&router, "nats.test").await.as_deref(),
        Some("nats-one")
    );
    assert_eq!(status(&router, "other.test").await, StatusCode::NOT_FOUND);
    assert_eq!(source_metric(&router, rejected, "admin").await, 0.0);

    publish(
        &client,
        "router.unregister",
        &message(&backend, &["nats.test"], 0),
    )
    .await;
    eventually(Duration::from_secs(5), "unregistered route", || async {
        status(&router, "nats.test").await == StatusCode::NOT_FOUND
    })
    .await;
    let added = metric(router.admin, "switchyard_registry_changes_total").await;
    assert_eq!(added, 2.0, "one added, one removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_with_a_user_and_password() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("nats", &["localhost", "127.0.0.1"]);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let options = [
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--user",
        "router",
        "--pass",
        "s3cret",
    ];
    let nats = NatsServer::start_with(&options);
    let backend = Backend::echo("secure").await;
    let url = format!("tls://localhost:{}", nats.port);
    let config = |password: &str| {
        format!(
            "{BASE}\n[registry.nats]\nservers = [\"{url}\"]\nuser = \"router\"\n\
             password = \"{password}\"\ntls = true\nca_file = \"{}\"\n",
            pki.ca().display()
        )
    };
    let wrong = TestRouter::start(&config("wrong"));
    let router = TestRouter::start(&config("s3cret"));
    connected(&router, "nats").await;
    let client = async_nats::ConnectOptions::new()
        .user_and_password("router".into(), "s3cret".into())
        .add_root_certificates(pki.ca())
        .require_tls(true)
        .connect(url.as_str())
        .await
        .unwrap();
    publish(
        &client,
        "router.register",
        &message(&backend, &["secure.test"], 0),
    )
    .await;
    eventually(Duration::from_secs(5), "registered over TLS", || async {
        served_by(&router, "secure.test").await.as_deref() == Some("secure")
    })
    .await;
    assert_eq!(
        source_metric(&wrong, "switchyard_registry_connected", "nats").await,
        0.0
    );
    assert_eq!(
        status(&wrong, "secure.test").await,
        StatusCode::NOT_FOUND,
        "wrong password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_registrations_expire_after_their_time_to_live() {
    let nats = NatsServer::start();
    let backend = Backend::echo("short").await;
    let router = nats_router(&nats, "prune_interval = \"100ms\"");
    connected(&router, "nats").await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    // Timed from before the publish: the lease starts when the router applies it, later.
    let published = Instant::now();
    publish(
        &client,
        "router.register",
        &message(&backend, &["short.test"], 1),
    )
    .await;
    eventually(Duration::from_secs(5), "registered", || async {
        status(&router, "short.test").await == StatusCode::OK
    })
    .await;
    eventually(Duration::from_secs(5), "expired", || async {
        status(&router, "short.test").await == StatusCode::NOT_FOUND
    })
    .await;
    let lived = published.elapsed();
    assert!(
        lived >= Duration::from_millis(990),
        "expired after {lived:?}, TTL 1 s"
    );
}

/// Keeps registering `backend` for `uri` every 300 ms (a 1 s time to live) until `stop`.
fn heartbeat(
    client: async_nats::Client,
    backend: &Backend,
    uri: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let body = message(backend, &[uri], 1).to_string();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let _ = client.publish("router.register", body.clone().into()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// GETs `host` over and over until `stop` (at most 60 s): (answered, failed).
fn traffic(
    router: &TestRouter,
    host: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let http = router.http;
    tokio::spawn(async move {
        let (mut answered, mut failed) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let req = http::Request::get("/")
                .header("host", host)
                .body(full(""))
                .unwrap();
            let response = send(http, req).await;
            match response.status() {
                StatusCode::OK => answered += 1,
                other => failed.push(format!(
                    "{other} {:?}",
                    response.headers().get("x-cf-routererror")
                )),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (answered, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_under_traffic_loses_no_route_and_no_request() {
    let mut nats = NatsServer::start();
    let backend = Backend::echo("steady").await;
    // Registrations live 1 s and the pruner runs every 100 ms: an outage of 2 s would empty
    // the table if pruning went on while NATS is away.
    let router = nats_router(&nats, "prune_interval = \"100ms\"");
    connected(&router, "nats").await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut starts = client.subscribe("router.start").await.unwrap();
    client.flush().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let beats = heartbeat(client.clone(), &backend, "steady.test", stop.clone());
    eventually(Duration::from_secs(5), "registered", || async {
        status(&router, "steady.test").await == StatusCode::OK
    })
    .await;
    let load = traffic(&router, "steady.test", stop.clone());

    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.kill();
    eventually(Duration::from_secs(5), "router sees NATS gone", || async {
        source_metric(&router, "switchyard_registry_connected", "nats").await == 0.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status(&router, "steady.test").await,
        StatusCode::OK,
        "kept while away"
    );
    nats.restart();
    connected(&router, "nats").await;
    let again = tokio::time::timeout(Duration::from_secs(10), starts.next()).await;
    assert!(
        matches!(again, Ok(Some(_))),
        "router.start published after the reconnect"
    );
    assert_eq!(
        source_metric(&router, "switchyard_registry_connections_total", "nats").await,
        2.0
    );

    // New registrations work after the outage.
    let fresh = Backend::echo("fresh").await;
    publish(
        &client,
        "router.register",
        &message(&fresh, &["fresh.test"], 0),
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "registered after the outage",
        || async { served_by(&router, "fresh.test").await.as_deref() == Some("fresh") },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    beats.await.unwrap();
    let (answered, failed) = load.await.unwrap();
    assert!(answered > 50, "only {answered} requests answered");
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

fn etcd_router(etcd: &EtcdServer) -> TestRouter {
    TestRouter::start(&format!(
        "{BASE}\n[registry.etcd]\nendpoints = [\"{}\"]\n",
        etcd.url()
    ))
}

const ROUTES: &str = "/switchyard/routes/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_register_route_delete_lease_expiry_and_bad_values() {
    let etcd = EtcdServer::start();
    let one = Backend::echo("etcd-one").await;
    let two = Backend::echo("etcd-two").await;
    // A key written before the router starts is loaded.
    etcd.put(
        &format!("{ROUTES}one"),
        &message(&one, &["etcd.test"], 0).to_string(),
        None,
    );
    let router = etcd_router(&etcd);
    connected(&router, "etcd").await;
    eventually(Duration::from_secs(5), "loaded", || async {
        served_by(&router, "etcd.test").await.as_deref() == Some("etcd-one")
    })
    .await;
    assert_eq!(sources(&router, "etcd.test").await, ["etcd"]);

    // Watched: a key with a 2 s lease nobody keeps alive comes, then goes with its lease.
    // Timed from before the grant: etcd expires the lease at least 2 s after it.
    let granted = Instant::now();
    let lease = etcd.grant(2);
    etcd.put(
        &format!("{ROUTES}two"),
        &message(&two, &["lease.test"], 0).to_string(),
        Some(&lease),
    );
    eventually(Duration::from_secs(5), "watched", || async {
        served_by(&router, "lease.test").await.as_deref() == Some("etcd-two")
    })
    .await;
    eventually(Duration::from_secs(10), "lease expired", || async {
        status(&router, "lease.test").await == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        granted.elapsed() >= Duration::from_millis(1900),
        "gone {:?} after the grant of a 2 s lease",
        granted.elapsed()
    );

    // A bad value is counted and changes nothing, not even the key's old registration.
    etcd.put(&format!("{ROUTES}one"), "{not json", None);
    eventually(Duration::from_secs(5), "rejection counted", || async {
        source_metric(
            &router,
            "switchyard_registry_messages_rejected_total",
            "etcd",
        )
        .await
            == 1.0
    })
    .await;
    assert_eq!(
        served_by(&router, "etcd.test").await.as_deref(),
        Some("etcd-one")
    );

    let (ok, _) = etcd.etcdctl(&["del", &format!("{ROUTES}one")]);
    assert!(ok);
    eventually(Duration::from_secs(5), "deleted", || async {
        status(&router, "etcd.test").await == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_and_compaction_resume_the_watch_without_losing_or_doubling() {
    let mut etcd = EtcdServer::start();
    let kept = Backend::echo("kept").await;
    let gone = Backend::echo("gone").await;
    let later = Backend::echo("later").await;
    etcd.put(
        &format!("{ROUTES}kept"),
        &message(&kept, &["kept.test"], 0).to_string(),
        None,
    );
    etcd.put(
        &format!("{ROUTES}gone"),
        &message(&gone, &["gone.test"], 0).to_string(),
        None,
    );
    let router = etcd_router(&etcd);
    connected(&router, "etcd").await;
    eventually(Duration::from_secs(5), "loaded", || async {
        status(&router, "gone.test").await == StatusCode::OK
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(&router, "kept.test", stop.clone());

    etcd.kill();
    eventually(Duration::from_secs(10), "router sees etcd gone", || async {
        source_metric(&router, "switchyard_registry_connected", "etcd").await == 0.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&router, "kept.test").await,
        StatusCode::OK,
        "kept while away"
    );
    etcd.restart();
    // Deleted around the reconnect: gone whether the router sees it in the reload or the watch.
    let (ok, _) = etcd.etcdctl(&["del", &format!("{ROUTES}gone")]);
    assert!(ok);
    connected(&router, "etcd").await;
    eventually(Duration::from_secs(5), "deletion seen", || async {
        status(&router, "gone.test").await == StatusCode::NOT_FOUND
    })
    .await;

    // Compact the whole history, then keep writing: the watch still follows.
    for i in 0..5 {
        etcd.put(
            &format!("{ROUTES}churn"),
            &message(&later, &[&format!("churn{i}.test")], 0).to_string(),
            None,
        );
    }
    let (ok, status_out) = etcd.etcdctl(&["endpoint", "status", "-w", "json"]);
    assert!(ok);
    let revision =
        serde_json::from_str::<Value>(&status_out).unwrap()[0]["Status"]["header"]["revision"]
            .as_i64()
            .unwrap();
    let (ok, out) = etcd.etcdctl(&["compact", &revision.to_string()]);
    assert!(ok, "compact: {out}");
    etcd.put(
        &format!("{ROUTES}later"),
        &message(&later, &["later.test"], 0).to_string(),
        None,
    );
    eventually(
        Duration::from_secs(5),
        "watched after compaction",
        || async { served_by(&router, "later.test").await.as_deref() == Some("later") },
    )
    .await;
    assert_eq!(
        status(&router, "churn3.test").await,
        StatusCode::NOT_FOUND,
        "replaced by churn4"
    );
    assert_eq!(status(&router, "churn4.test").await, StatusCode::OK);

    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.unwrap();
    assert!(answered > 20, "only {answered} answered");
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(
        sources(&router, "kept.test").await,
        ["etcd"],
        "one endpoint, not doubled"
    );
    assert_eq!(sources(&router, "later.test").await, ["etcd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_router_processes_share_one_nats_and_one_etcd() {
    let nats = NatsServer::start();
    let etcd = EtcdServer::start();
    let over_nats = Backend::echo("over-nats").await;
    let over_etcd = Backend::echo("over-etcd").await;
    let registries = format!(
        "[registry.nats]\nservers = [\"{}\"]\n[registry.etcd]\nendpoints = [\"{}\"]\n",
        nats.url(),
        etcd.url()
    );
    let first: Binary = start_router("", &registries).await;
    let second: Binary = start_router("", &registries).await;
    for router in [&first, &second] {
        connected(router, "nats").await;
        connected(router, "etcd").await;
    }
    let client = async_nats::connect(nats.url()).await.unwrap();
    publish(
        &client,
        "router.register",
        &message(&over_nats, &["a.fleet.test"], 0),
    )
    .await;
    let value = message(&over_etcd, &["b.fleet.test"], 0).to_string();
    etcd.put(&format!("{ROUTES}b"), &value, None);
    for router in [&first, &second] {
        for (host, name) in [("a.fleet.test", "over-nats"), ("b.fleet.test", "over-etcd")] {
            eventually(Duration::from_secs(5), host, || async {
                served_by(router, host).await.as_deref() == Some(name)
            })
            .await;
        }
    }
    // Both see the removal too.
    publish(
        &client,
        "router.unregister",
        &message(&over_nats, &["a.fleet.test"], 0),
    )
    .await;
    for router in [&first, &second] {
        eventually(Duration::from_secs(5), "unregistered", || async {
            status(router, "a.fleet.test").await == StatusCode::NOT_FOUND
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_loads_a_prefix_larger_than_one_response() {
    let etcd = EtcdServer::start();
    let backend = Backend::echo("paged").await;
    let mut client = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    // 2,500 keys of about 2 KiB: 5 MiB, more than one gRPC message may carry (4 MiB).
    let keys = 2_500;
    let pad = "x".repeat(2_000);
    for first in (0..keys).step_by(100) {
        let puts: Vec<etcd_client::TxnOp> = (first..first + 100)
            .map(|i| {
                let mut value = message(&backend, &[&format!("app-{i}.paged.test")], 0);
                value["tags"] = json!({ "pad": pad });
                etcd_client::TxnOp::put(format!("{ROUTES}{i:05}"), value.to_string(), None)
            })
            .collect();
        client
            .txn(etcd_client::Txn::new().and_then(puts))
            .await
            .unwrap();
    }
    let router = etcd_router(&etcd);
    connected(&router, "etcd").await;
    let routes = metric(router.admin, "switchyard_routes").await;
    assert_eq!(routes, keys as f64, "every key loaded");
    assert_eq!(
        served_by(&router, "app-2499.paged.test").await.as_deref(),
        Some("paged")
    );
}
