//! Active health checks: for routes with a `health_check`, every endpoint is probed with
//! `GET <path>` every `interval`; `fall` failed probes in a row take it down (the balancer
//! skips it, failing open if all are down), `rise` good ones bring it back (the state is the
//! backend's [`ProbeState`](crate::health::ProbeState)). Probes run on their own thread and
//! connections, so they never queue behind client traffic.

use crate::body::ProxyBody;
use crate::clock::now_ms;
use crate::config::HealthCheck;
use crate::registry::{Registry, Ticker, spawn_every};
use crate::routing::{Endpoint, HostPattern, Route};
use crate::upstream::Upstream;
use http::header::{HOST, USER_AGENT};
use http::{HeaderValue, Request};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the checker looks for due probes.
const TICK: Duration = Duration::from_millis(100);

/// Starts probing the routes of `registry` through `upstream` (its own connections), until
/// the returned [`Ticker`] is dropped.
pub fn spawn_checker(registry: Arc<dyn Registry>, upstream: Upstream) -> std::io::Result<Ticker> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let upstream = Arc::new(upstream);
    spawn_every("switchyard-health", TICK, move || {
        runtime.block_on(probe_due(&*registry, &upstream));
    })
}

/// Runs every probe that is due, concurrently, each bounded by its timeout.
async fn probe_due(registry: &dyn Registry, upstream: &Arc<Upstream>) {
    let table = registry.snapshot();
    let now = now_ms();
    let mut probes = tokio::task::JoinSet::new();
    for route in table.checked_routes() {
        let Some(check) = &route.options.health_check else {
            continue;
        };
        for endpoint in &route.pool.endpoints {
            if endpoint.health.probe.due(now, check.interval.0) {
                let (route, endpoint, upstream) =
                    (route.clone(), endpoint.clone(), upstream.clone());
                let check = check.clone();
                probes.spawn(async move { probe(&route, &check, &endpoint, &upstream).await });
            }
        }
    }
    while probes.join_next().await.is_some() {}
}

async fn probe(route: &Route, check: &HealthCheck, endpoint: &Endpoint, upstream: &Upstream) {
    let host = match &route.uri.host {
        HostPattern::Exact(host) => host.clone(),
        _ => endpoint.spec.address.to_string(),
    };
    let mut req = Request::new(ProxyBody::Empty);
    *req.uri_mut() = match check.path.parse() {
        Ok(uri) => uri,
        Err(_) => return,
    };
    let headers = req.headers_mut();
    if let Ok(host) = HeaderValue::from_str(&host) {
        headers.insert(HOST, host);
    }
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static("switchyard-health-check"),
    );
    endpoint.target.shape(&mut req);
    let ok = match tokio::time::timeout(check.timeout.0, upstream.send(&endpoint.target, &mut req))
        .await
    {
        Ok(Ok((response, _))) => {
            response.status().is_success() || response.status().is_redirection()
        }
        _ => false,
    };
    let health = &endpoint.health;
    let down = health.down.load(Ordering::Relaxed);
    if let Some(now_down) = health.probe.record(ok, check, down) {
        health.down.store(now_down, Ordering::Relaxed);
        let address = endpoint.spec.address;
        if now_down {
            tracing::warn!(%address, route = %route.uri, path = %check.path, "health check: endpoint down");
        } else {
            tracing::info!(%address, route = %route.uri, "health check: endpoint up again");
        }
    }
}
