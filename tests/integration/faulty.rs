//! Backends for failure tests: one that counts what it was sent and can be killed and
//! restarted, and raw ones that read a request and never answer it.

use crate::support::*;
use http::{Request, Response};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Request ids each backend has seen, by id (shared by all backends of a test).
pub type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// A killable backend that records each request's `x-test-id` and answers after `delay`.
pub async fn counting_backend(name: &'static str, seen: Seen, delay: Duration) -> KillableBackend {
    KillableBackend::start(move |req: Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            let id = req
                .headers()
                .get("x-test-id")
                .map(|v| v.to_str().unwrap().to_string());
            let _ = req.into_body().collect().await;
            if let Some(id) = id {
                *seen.lock().unwrap().entry(id).or_default() += 1;
            }
            tokio::time::sleep(delay).await;
            Response::new(full(name))
        }
    })
    .await
}

pub fn backends_toml(addrs: &[std::net::SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    list.join(", ")
}

/// What a [`never_answering`] does after reading a request.
#[derive(Clone, Copy)]
pub enum Silence {
    /// Reset the connection without a response byte.
    Reset,
    /// Keep the connection open and never answer.
    Hang,
}

/// A raw backend that reads each request and never answers it; returns its address and the
/// number of requests it read.
pub async fn never_answering(then: Silence) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                if stream.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match then {
                    Silence::Reset => {
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    }
                    Silence::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (addr, requests)
}
