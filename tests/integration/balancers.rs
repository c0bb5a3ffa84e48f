//! Balancers: random spreads within tolerance, least-connections counts upgraded connections,
//! P2C prefers the faster endpoint, consistent hashing keeps keys when an endpoint is added.

use crate::support::*;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

async fn backend_name(router: &TestRouter, host: &str, headers: &[(&str, &str)]) -> String {
    let mut req = Request::get("/").header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = send(router.http, req.body(full("")).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await
}

async fn named(name: &'static str) -> Backend {
    Backend::start(move |_req| async move { Response::new(full(name)) }).await
}

fn list(backends: &[&Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    list.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_spreads_within_a_quarter_of_even() {
    let (a, b, c) = (named("a").await, named("b").await, named("c").await);
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"r.test\"\nbackends = [{}]\nbalancer = \"random\"\n",
        list(&[&a, &b, &c])
    ));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..600 {
        *counts
            .entry(backend_name(&router, "r.test", &[]).await)
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for count in counts.values() {
        assert!((150..=250).contains(count), "{counts:?}");
    }
}

/// A backend that names itself on plain requests and accepts any upgrade, holding the upgraded
/// connection open.
async fn upgradable(name: &'static str) -> Backend {
    Backend::start(move |mut req| async move {
        if req.headers().contains_key("upgrade") {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(io) = on_upgrade.await {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    drop(io);
                }
            });
            let mut response = Response::new(full(""));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            response
                .headers_mut()
                .insert("upgrade", "tunnel".parse().unwrap());
            return response;
        }
        Response::new(full(name))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_sees_open_upgraded_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = (upgradable("a").await, upgradable("b").await);
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"lc.test\"\nbackends = [{}]\nbalancer = \"least-connections\"\n",
        list(&[&a, &b])
    ));
    let mut tunnel = tokio::net::TcpStream::connect(router.http).await.unwrap();
    tunnel
        .write_all(
            b"GET / HTTP/1.1\r\nHost: lc.test\r\nConnection: upgrade\r\nUpgrade: tunnel\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = vec![0u8; 1024];
    let n = tunnel.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    let listed = {
        let req = Request::get("/routes")
            .header("host", "a")
            .body(full(""))
            .unwrap();
        json_body(send(router.admin, req).await).await
    };
    let busy: Vec<&Value> = listed["lc.test"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["in_flight"] == 1)
        .collect();
    assert_eq!(busy.len(), 1, "the tunnel counts as in flight: {listed}");
    let tunnel_backend = if busy[0]["address"] == a.addr.to_string() {
        "a"
    } else {
        "b"
    };
    for _ in 0..10 {
        let name = backend_name(&router, "lc.test", &[]).await;
        assert_ne!(
            name, tunnel_backend,
            "requests avoid the endpoint holding the tunnel"
        );
    }
    drop(tunnel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_ewma_prefers_the_faster_endpoint() {
    let fast = named("fast").await;
    let slow = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Response::new(full("slow"))
    })
    .await;
    let router = TestRouter::with_routes(&format!(
        "[[route]]\nuri = \"p.test\"\nbackends = [{}]\nbalancer = \"p2c-ewma\"\n",
        list(&[&fast, &slow])
    ));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..60 {
        *counts
            .entry(backend_name(&router, "p.test", &[]).await)
            .or_default() += 1;
    }
    let fast_share = counts.get("fast").copied().unwrap_or(0);
    assert!(fast_share >= 54, "{counts:?}");
}

/// The backend serving `user` (hash on `x-user`), over a keep-alive connection.
async fn user_backend(connection: &mut KeepAlive, user: &str) -> String {
    let req = Request::get("/")
        .header("host", "h.test")
        .header("x-user", user)
        .body(full(""))
        .unwrap();
    text(connection.send(req).await.expect("response")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_keeps_keys_on_their_endpoint_when_one_is_added() {
    let mut backends = Vec::new();
    for i in 0..11 {
        let name: &'static str = Box::leak(format!("b{i}").into_boxed_str());
        backends.push(named(name).await);
    }
    let router = TestRouter::start(BASE);
    let registration = |i: usize| {
        json!({
            "host": "127.0.0.1", "port": backends[i].addr.port(), "uris": ["h.test"],
            "private_instance_id": format!("instance-{i}"),
            "options": {"loadbalancing": "hash", "hash_header": "x-user"},
        })
    };
    let post = |body: Value| {
        let req = Request::post("/routes/register")
            .header("host", "admin")
            .body(full(body.to_string()))
            .unwrap();
        send(router.admin, req)
    };
    let ten: Vec<Value> = (0..10).map(registration).collect();
    assert_eq!(post(Value::Array(ten)).await.status(), StatusCode::OK);
    let users: Vec<String> = (0..4000).map(|u| format!("user-{u}")).collect();
    let mut connection = KeepAlive::connect(router.http).await;
    let mut before = Vec::new();
    for user in &users {
        before.push(user_backend(&mut connection, user).await);
    }
    // The same user always lands on the same endpoint.
    assert_eq!(
        backend_name(&router, "h.test", &[("x-user", &users[0])]).await,
        before[0]
    );
    assert_eq!(post(registration(10)).await.status(), StatusCode::OK);
    let mut kept = 0;
    for (user, old) in users.iter().zip(&before) {
        if user_backend(&mut connection, user).await == *old {
            kept += 1;
        }
    }
    // The least any scheme can move is 1 key in 11 (kept 90.9%).
    assert!(kept >= 3600, "kept {kept} of 4000 users");
    // Without the header, requests still spread (round-robin fallback).
    let mut spread = std::collections::BTreeSet::new();
    for _ in 0..22 {
        spread.insert(backend_name(&router, "h.test", &[]).await);
    }
    assert!(spread.len() > 5, "{spread:?}");
}
