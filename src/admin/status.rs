//! The status page (`/status`, one self-contained HTML file) and the snapshot it polls
//! (`/status.json`): the router's phase and counts, and each route with its endpoints' health,
//! in-flight requests, counts and latency buckets. The page computes rates and percentiles
//! from the difference between two snapshots.

use super::AdminState;
use crate::histogram::BOUNDS;
use crate::lifecycle::Phase;
use crate::routing::{ResponseCounts, Route, STATUS_CLASSES};
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;

/// The page: inline styles and script, nothing fetched but `/status.json`.
pub const PAGE: &str = include_str!("status.html");

/// Routes listed at most (routes with their own series first, busiest first); the page says
/// how many there are in all.
const MAX_ROUTES: usize = 1000;

/// The snapshot the page shows.
pub fn snapshot(state: &AdminState) -> Value {
    let table = state.feed.registry().snapshot();
    let now = crate::clock::now_ms();
    let mut routes: Vec<(&Route, u64)> = table
        .routes()
        .map(|route| {
            let requests = route
                .pool
                .endpoints
                .iter()
                .map(|e| e.stats.requests.load(Ordering::Relaxed))
                .sum();
            (&**route, requests)
        })
        .collect();
    routes.sort_by_key(|(route, requests)| (route.stats.counts().is_none(), u64::MAX - requests));
    let listed: Vec<Value> = routes
        .iter()
        .take(MAX_ROUTES)
        .map(|(route, requests)| {
            json!({
                "route": route.uri.to_string(),
                "balancer": route.balancer,
                "requests": requests,
                "counts": route.stats.counts().map(counts),
                "endpoints": route
                    .pool
                    .endpoints
                    .iter()
                    .map(|e| Value::Object(super::endpoint_state(e, now)))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let phase = match state.lifecycle.phase() {
        Phase::Running => "running",
        Phase::Draining => "draining",
        Phase::Stopping => "stopping",
    };
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "phase": phase,
        "clock_ms": now,
        "connections": state.lifecycle.open_connections(),
        "latency_bounds": BOUNDS,
        "counts": counts(state.metrics.responses()),
        "routes_total": routes.len(),
        "routes": listed,
    })
}

/// Responses by class and the latency buckets.
fn counts(counts: &ResponseCounts) -> Value {
    let classes: Map<String, Value> = STATUS_CLASSES
        .iter()
        .enumerate()
        .map(|(class, name)| (name.to_string(), json!(counts.responses(class))))
        .collect();
    json!({
        "responses": classes,
        "latency_buckets": counts.duration.counts(),
        "latency_sum": counts.duration.sum(),
    })
}
