//! Router-wide counters, rendered in Prometheus text format by the admin API (`/metrics`).
//! Counting costs one relaxed atomic add per response; endpoint counters live on the endpoints.

use crate::lifecycle::Lifecycle;
use crate::routing::RouteTable;
use http::StatusCode;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Counters shared by every worker.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 6],
    upstream_connections: AtomicU64,
}

impl Metrics {
    /// Counts a response sent to a client.
    pub fn record_status(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).saturating_sub(1).min(5) as usize;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new connection to a backend.
    pub fn upstream_connection_opened(&self) {
        self.upstream_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters, the table and the lifecycle.
    pub fn render(&self, table: &RouteTable, lifecycle: &Lifecycle) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            "switchyard_responses_total",
            "counter",
            "Responses sent to clients, by status class.",
        );
        let mut text = String::new();
        for (class, count) in CLASSES.iter().zip(&self.responses) {
            let _ = writeln!(
                text,
                "switchyard_responses_total{{class=\"{class}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str(&text);
        let opened = self.upstream_connections.load(Ordering::Relaxed);
        let mut requests = 0u64;
        let mut endpoints = String::new();
        for route in table.routes() {
            for endpoint in &route.pool.endpoints {
                let sent = endpoint.stats.requests.load(Ordering::Relaxed);
                requests += sent;
                let labels = format!(
                    "route=\"{}\",endpoint=\"{}\"",
                    escape(&route.uri.to_string()),
                    endpoint.address
                );
                let failures = endpoint.stats.failures.load(Ordering::Relaxed);
                let _ = writeln!(
                    endpoints,
                    "switchyard_endpoint_requests_total{{{labels}}} {sent}"
                );
                let _ = writeln!(
                    endpoints,
                    "switchyard_endpoint_failures_total{{{labels}}} {failures}"
                );
                let _ = writeln!(
                    endpoints,
                    "switchyard_endpoint_in_flight{{{labels}}} {}",
                    endpoint.in_flight()
                );
            }
        }
        let mut line = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        line(
            "switchyard_upstream_connections_opened_total",
            "counter",
            "Connections opened to backends.",
            opened.to_string(),
        );
        line(
            "switchyard_upstream_requests_total",
            "counter",
            "Requests sent to the endpoints of the current routes.",
            requests.to_string(),
        );
        let reuse = if requests == 0 {
            1.0
        } else {
            1.0 - (opened.min(requests) as f64 / requests as f64)
        };
        line(
            "switchyard_upstream_connection_reuse_ratio",
            "gauge",
            "1 - connections opened / requests sent.",
            format!("{reuse:.6}"),
        );
        line(
            "switchyard_client_connections",
            "gauge",
            "Open client connections and tunnels.",
            lifecycle.open_connections().to_string(),
        );
        line(
            "switchyard_routes",
            "gauge",
            "Routes in the table.",
            table.routes().len().to_string(),
        );
        out.push_str("# HELP switchyard_endpoint_requests_total Requests sent to an endpoint.\n# TYPE switchyard_endpoint_requests_total counter\n");
        out.push_str("# HELP switchyard_endpoint_failures_total Failed attempts to an endpoint.\n# TYPE switchyard_endpoint_failures_total counter\n");
        out.push_str("# HELP switchyard_endpoint_in_flight Requests in flight to an endpoint.\n# TYPE switchyard_endpoint_in_flight gauge\n");
        out.push_str(&endpoints);
        out
    }
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
