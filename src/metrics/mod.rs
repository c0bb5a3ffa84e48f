//! Router-wide counters, rendered in Prometheus text format by the admin API (`/metrics`).
//! Counting costs one relaxed atomic add per response; endpoint counters live on the endpoints.

mod histogram;
mod process;

pub use histogram::Histogram;

use crate::access_log::AccessLog;
use crate::lifecycle::Lifecycle;
use crate::registry::SourceStats;
use crate::routing::{Endpoint, RouteTable};
use http::StatusCode;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Reads one per-endpoint value.
type EndpointValue = fn(&Endpoint) -> u64;

/// Counters shared by every worker.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 6],
    upstream_connections: AtomicU64,
    retries: AtomicU64,
    retries_denied: AtomicU64,
    fail_open: AtomicU64,
    http2_refused: AtomicU64,
    http2_client_resets: AtomicU64,
    http2_connection_errors: AtomicU64,
    /// Client connections refused over `max_connections` and over `max_connections_per_ip`.
    connections_refused: [AtomicU64; 2],
    ejections: AtomicU64,
    readmissions: AtomicU64,
    /// Probes of half-open endpoints that failed, and that were answered.
    probes: [AtomicU64; 2],
    /// From a request's arrival to its response head.
    request_duration: Histogram,
}

impl Metrics {
    /// Records the time from a request's arrival to its response head.
    pub fn observe_request(&self, duration: std::time::Duration) {
        self.request_duration.observe(duration);
    }

    /// Counts a response sent to a client.
    pub fn record_status(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).saturating_sub(1).min(5) as usize;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an attempt after the first.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a retry the budget refused.
    pub fn retry_denied(&self) {
        self.retries_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a pick that took an unhealthy endpoint because no healthy one was left.
    pub fn pool_failed_open(&self) {
        self.fail_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an HTTP/2 stream refused over the concurrent-stream limit.
    pub fn http2_stream_refused(&self) {
        self.http2_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an HTTP/2 stream the client reset before its response was complete.
    pub fn http2_client_reset(&self) {
        self.http2_client_resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an HTTP/2 connection closed for a protocol error (a GOAWAY with an error code).
    pub fn http2_connection_error(&self) {
        self.http2_connection_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client connection closed at once for being over `max_connections`, or (with
    /// `per_ip`) over `max_connections_per_ip`.
    pub fn client_connection_refused(&self, per_ip: bool) {
        self.connections_refused[usize::from(per_ip)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an endpoint ejected at the start of an outage.
    pub fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an ejected endpoint re-admitted.
    pub fn readmitted(&self) {
        self.readmissions.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the result of a half-open endpoint's probe request.
    pub fn probe_result(&self, answered: bool) {
        self.probes[usize::from(answered)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new connection to a backend.
    pub fn upstream_connection_opened(&self) {
        self.upstream_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters, the table, the lifecycle and the
    /// route sources.
    pub fn render(
        &self,
        table: &RouteTable,
        lifecycle: &Lifecycle,
        sources: &[Arc<SourceStats>],
        access_log: Option<&AccessLog>,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP switchyard_build_info The running version.\n# TYPE switchyard_build_info gauge\n\
             switchyard_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        process::render(&mut out);
        self.request_duration.render(
            &mut out,
            "switchyard_request_duration_seconds",
            "Time from a request's arrival to its response head (router answers included).",
        );
        render_sources(&mut out, sources);
        if let Some(log) = access_log {
            for (name, help, value) in [
                (
                    "switchyard_access_log_lines_total",
                    "Access log lines written.",
                    log.written(),
                ),
                (
                    "switchyard_access_log_dropped_total",
                    "Access log lines dropped because the writer could not keep up.",
                    log.dropped(),
                ),
            ] {
                family(&mut out, name, "counter", help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        labelled(
            &mut out,
            ("switchyard_responses_total", "class"),
            "Responses sent to clients, by status class.",
            CLASSES.iter().zip(&self.responses),
        );
        labelled(
            &mut out,
            ("switchyard_client_connections_refused_total", "limit"),
            "Client connections closed as accepted: over max_connections, or max_connections_per_ip.",
            ["max_connections", "max_connections_per_ip"]
                .iter()
                .zip(&self.connections_refused),
        );
        labelled(
            &mut out,
            ("switchyard_ejection_probes_total", "result"),
            "Requests sent as the probe of an endpoint whose ejection ran out, by result.",
            ["failed", "answered"].iter().zip(&self.probes),
        );
        let opened = self.upstream_connections.load(Ordering::Relaxed);
        let requests: u64 = table
            .routes()
            .flat_map(|route| &route.pool.endpoints)
            .map(|endpoint| endpoint.stats.requests.load(Ordering::Relaxed))
            .sum();
        let reuse = if requests == 0 {
            1.0
        } else {
            1.0 - (opened.min(requests) as f64 / requests as f64)
        };
        let endpoints: usize = table.routes().map(|route| route.pool.endpoints.len()).sum();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        let single: [(&str, &str, &str, String); 14] = [
            (
                "switchyard_upstream_connections_opened_total",
                "counter",
                "Connections opened to backends.",
                opened.to_string(),
            ),
            (
                "switchyard_upstream_requests_total",
                "counter",
                "Requests sent to the endpoints of the current routes.",
                requests.to_string(),
            ),
            (
                "switchyard_upstream_connection_reuse_ratio",
                "gauge",
                "1 - connections opened / requests sent.",
                format!("{reuse:.6}"),
            ),
            (
                "switchyard_retries_total",
                "counter",
                "Attempts after the first (another endpoint tried).",
                load(&self.retries),
            ),
            (
                "switchyard_retries_denied_total",
                "counter",
                "Retries the retry budget refused.",
                load(&self.retries_denied),
            ),
            (
                "switchyard_ejections_total",
                "counter",
                "Outages begun: endpoints ejected after a failed attempt (a backend on several routes counts once).",
                load(&self.ejections),
            ),
            (
                "switchyard_readmissions_total",
                "counter",
                "Ejected endpoints re-admitted after an answer.",
                load(&self.readmissions),
            ),
            (
                "switchyard_pool_fail_open_total",
                "counter",
                "Picks that took an unhealthy endpoint because the pool had no healthy one.",
                load(&self.fail_open),
            ),
            (
                "switchyard_http2_streams_refused_total",
                "counter",
                "HTTP/2 streams refused (REFUSED_STREAM) over the concurrent-stream limit.",
                load(&self.http2_refused),
            ),
            (
                "switchyard_http2_client_resets_total",
                "counter",
                "HTTP/2 streams the client reset before their response was complete.",
                load(&self.http2_client_resets),
            ),
            (
                "switchyard_http2_connection_errors_total",
                "counter",
                "HTTP/2 connections closed for a protocol error (GOAWAY with an error code).",
                load(&self.http2_connection_errors),
            ),
            (
                "switchyard_client_connections",
                "gauge",
                "Open client connections and tunnels.",
                lifecycle.open_connections().to_string(),
            ),
            (
                "switchyard_routes",
                "gauge",
                "Routes in the table.",
                table.len().to_string(),
            ),
            (
                "switchyard_endpoints",
                "gauge",
                "Endpoints in the table (an endpoint on two routes counts twice).",
                endpoints.to_string(),
            ),
        ];
        for (name, kind, help, value) in single {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        let per_endpoint: [(&str, &str, &str, EndpointValue); 5] = [
            (
                "switchyard_endpoint_requests_total",
                "counter",
                "Requests sent to an endpoint.",
                |e| e.stats.requests.load(Ordering::Relaxed),
            ),
            (
                "switchyard_endpoint_failures_total",
                "counter",
                "Failed attempts to an endpoint.",
                |e| e.stats.failures.load(Ordering::Relaxed),
            ),
            (
                "switchyard_endpoint_in_flight",
                "gauge",
                "Requests in flight to an endpoint.",
                |e| e.in_flight() as u64,
            ),
            (
                "switchyard_endpoint_healthy",
                "gauge",
                "1 when an endpoint is neither ejected nor failing its health check.",
                |e| u64::from(!e.health.unavailable()),
            ),
            (
                "switchyard_endpoint_ejections_total",
                "counter",
                "Outages of an endpoint's backend (ejections after a failed attempt; failures during one do not count).",
                |e| e.health.passive.ejections(),
            ),
        ];
        for (name, kind, help, value) in per_endpoint {
            family(&mut out, name, kind, help);
            for route in table.routes() {
                let uri = escape(&route.uri.to_string());
                for endpoint in &route.pool.endpoints {
                    let (address, value) = (endpoint.spec.address, value(endpoint));
                    let _ = writeln!(
                        out,
                        "{name}{{route=\"{uri}\",endpoint=\"{address}\"}} {value}"
                    );
                }
            }
        }
        out
    }
}

/// The route sources' families: messages, rejections, changes by action, connection state
/// and update lag, each labelled by source.
fn render_sources(out: &mut String, sources: &[Arc<SourceStats>]) {
    type SourceValue = fn(&SourceStats) -> String;
    fn load(counter: &AtomicU64) -> String {
        counter.load(Ordering::Relaxed).to_string()
    }
    let families: [(&str, &str, &str, SourceValue); 5] = [
        (
            "switchyard_registry_messages_total",
            "counter",
            "Registration messages received, by source.",
            |s| load(&s.messages),
        ),
        (
            "switchyard_registry_messages_rejected_total",
            "counter",
            "Registration messages refused as invalid (nothing changed), by source.",
            |s| load(&s.rejected),
        ),
        (
            "switchyard_registry_connected",
            "gauge",
            "1 while a source is connected to its server (NATS, etcd).",
            |s| u8::from(s.connected.load(Ordering::Relaxed)).to_string(),
        ),
        (
            "switchyard_registry_connections_total",
            "counter",
            "Connections a source made to its server (the first and every reconnect).",
            |s| load(&s.connections),
        ),
        (
            "switchyard_registry_update_lag_seconds",
            "gauge",
            "Time from a registration's endpoint_updated_at_ns to its change, last seen.",
            |s| format!("{:.3}", s.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0),
        ),
    ];
    for (name, kind, help, value) in families {
        family(out, name, kind, help);
        for stats in sources {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\"}} {}",
                stats.source,
                value(stats)
            );
        }
    }
    let name = "switchyard_registry_changes_total";
    family(
        out,
        name,
        "counter",
        "Endpoint changes applied, by source and action (refreshed = a heartbeat).",
    );
    for stats in sources {
        for (action, counter) in [
            ("added", &stats.added),
            ("updated", &stats.updated),
            ("refreshed", &stats.refreshed),
            ("removed", &stats.removed),
        ] {
            let (source, count) = (stats.source, counter.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "{name}{{source=\"{source}\",action=\"{action}\"}} {count}"
            );
        }
    }
}

/// Writes a counter family with one label, its samples right after its `# TYPE` line.
fn labelled<'a>(
    out: &mut String,
    (name, label): (&str, &str),
    help: &str,
    samples: impl Iterator<Item = (&'a &'a str, &'a AtomicU64)>,
) {
    family(out, name, "counter", help);
    for (value, count) in samples {
        let count = count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
