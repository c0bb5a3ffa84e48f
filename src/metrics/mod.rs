//! Router-wide counters, rendered in Prometheus text format by the admin API (`/metrics`).
//! Counting a response costs a few relaxed atomic adds; endpoint counters live on the
//! endpoints, route counters on the routes, for at most `[admin] metrics_route_series` routes:
//! the rest are counted together as `route="(other)"`, and only routes with their own series
//! get per-endpoint series, so a table of 100,000 routes cannot make a scrape of millions of
//! lines.

mod process;

use crate::histogram::Histogram;

use crate::access_log::AccessLog;
use crate::lifecycle::Lifecycle;
use crate::registry::SourceStats;
use crate::routing::{Endpoint, ResponseCounts, Route, RouteTable, STATUS_CLASSES, SeriesSlots};
use http::StatusCode;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The label of the routes counted together.
const OTHER_ROUTES: &str = "(other)";

/// Reads one per-endpoint value.
type EndpointValue = fn(&Endpoint) -> u64;

/// Counters shared by every worker.
#[derive(Debug)]
pub struct Metrics {
    /// Every response: by status class, time from arrival to response head.
    responses: ResponseCounts,
    /// Routes that may have their own series.
    route_slots: SeriesSlots,
    /// Responses on routes without their own series.
    other_routes: ResponseCounts,
    /// Time to open a backend connection (TCP and TLS).
    upstream_connect: Histogram,
    /// Time from sending an attempt to its response head.
    upstream_response: Histogram,
    /// Client connections accepted and open, by protocol (`PROTOCOLS`).
    client_connections: [(AtomicU64, AtomicU64); 4],
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
}

/// Client connection protocols, as labels: HTTP version, TLS.
const PROTOCOLS: [(&str, &str); 4] = [
    ("http/1.1", "false"),
    ("h2", "false"),
    ("http/1.1", "true"),
    ("h2", "true"),
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(crate::config::DEFAULT_METRICS_ROUTE_SERIES)
    }
}

/// An open client connection, counted by protocol until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counters with per-route series for at most `[admin] metrics_route_series` routes.
    pub fn new(route_series: usize) -> Metrics {
        Metrics {
            responses: ResponseCounts::default(),
            route_slots: SeriesSlots::new(route_series),
            other_routes: ResponseCounts::default(),
            upstream_connect: Histogram::default(),
            upstream_response: Histogram::default(),
            client_connections: Default::default(),
            upstream_connections: AtomicU64::default(),
            retries: AtomicU64::default(),
            retries_denied: AtomicU64::default(),
            fail_open: AtomicU64::default(),
            http2_refused: AtomicU64::default(),
            http2_client_resets: AtomicU64::default(),
            http2_connection_errors: AtomicU64::default(),
            connections_refused: Default::default(),
            ejections: AtomicU64::default(),
            readmissions: AtomicU64::default(),
            probes: Default::default(),
        }
    }

    /// Counts a response sent to a client `duration` after the request arrived, on its
    /// route's counts too when it had one.
    pub fn record_response(&self, route: Option<&Route>, status: StatusCode, duration: Duration) {
        self.responses.record(status, duration);
        if let Some(route) = route {
            match route.stats.counts_or_claim(&self.route_slots) {
                Some(counts) => counts.record(status, duration),
                None => self.other_routes.record(status, duration),
            }
        }
    }

    /// Every response's counts.
    pub fn responses(&self) -> &ResponseCounts {
        &self.responses
    }

    /// Counts a client connection (HTTP/2 or not, over TLS or not) while it is open.
    pub fn client_connection(&self, http2: bool, tls: bool) -> OpenConnection<'_> {
        let (accepted, open) = &self.client_connections[usize::from(tls) * 2 + usize::from(http2)];
        accepted.fetch_add(1, Ordering::Relaxed);
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(open)
    }

    /// Records the time to open a backend connection.
    pub fn observe_upstream_connect(&self, duration: Duration) {
        self.upstream_connect.observe(duration);
    }

    /// Records the time from sending an attempt to its response head.
    pub fn observe_upstream_response(&self, duration: Duration) {
        self.upstream_response.observe(duration);
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
        family(
            &mut out,
            "switchyard_build_info",
            "gauge",
            "The running version.",
        );
        let version = env!("CARGO_PKG_VERSION");
        let _ = writeln!(out, "switchyard_build_info{{version=\"{version}\"}} 1");
        process::render(&mut out);
        for (name, help, histogram) in [
            (
                "switchyard_request_duration_seconds",
                "Time from a request's arrival to its response head (router answers included).",
                &self.responses.duration,
            ),
            (
                "switchyard_upstream_connect_seconds",
                "Time to open a connection to a backend (TCP, and TLS when used).",
                &self.upstream_connect,
            ),
            (
                "switchyard_upstream_response_seconds",
                "Time from sending an attempt to a backend to its response head.",
                &self.upstream_response,
            ),
        ] {
            family(&mut out, name, "histogram", help);
            histogram.write(&mut out, name, "");
        }
        self.render_routes(&mut out, table);
        self.render_client_connections(&mut out);
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
            STATUS_CLASSES.iter().zip(&self.responses.responses),
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
        // One walk of the table: its endpoints, their requests and response bytes.
        let (endpoints, requests, bytes_out) =
            table.routes().flat_map(|route| &route.pool.endpoints).fold(
                (0usize, 0u64, 0u64),
                |(count, requests, bytes), endpoint| {
                    let stats = &endpoint.stats;
                    (
                        count + 1,
                        requests + stats.requests.load(Ordering::Relaxed),
                        bytes + stats.bytes_out.load(Ordering::Relaxed),
                    )
                },
            );
        let reuse = if requests == 0 {
            1.0
        } else {
            1.0 - (opened.min(requests) as f64 / requests as f64)
        };
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        let single: [(&str, &str, &str, String); 16] = [
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
                "switchyard_response_body_bytes_total",
                "counter",
                "Response body bytes from the endpoints of the current routes sent to clients.",
                bytes_out.to_string(),
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
                "switchyard_log_lines_held_back_total",
                "counter",
                "Error log lines held back by their per-second limits (failed attempts and requests, rejected messages, ...).",
                crate::log_limit::held_back_total().to_string(),
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
        let per_endpoint: [(&str, &str, &str, EndpointValue); 6] = [
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
                "switchyard_endpoint_response_body_bytes_total",
                "counter",
                "Response body bytes from an endpoint sent to clients.",
                |e| e.stats.bytes_out.load(Ordering::Relaxed),
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
            for route in table
                .routes()
                .filter(|route| route.stats.counts().is_some())
            {
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

impl Metrics {
    /// Responses by route and status class and their duration, for the routes with their own
    /// series and the others together.
    fn render_routes(&self, out: &mut String, table: &RouteTable) {
        let mut routes: Vec<(String, &ResponseCounts)> = table
            .routes()
            .filter_map(|route| Some((escape(&route.uri.to_string()), route.stats.counts()?)))
            .collect();
        routes.push((OTHER_ROUTES.to_owned(), &self.other_routes));
        let name = "switchyard_route_responses_total";
        family(
            out,
            name,
            "counter",
            "Responses by route and status class (route=\"(other)\": routes past [admin] metrics_route_series).",
        );
        for (route, counts) in &routes {
            for (class, label) in STATUS_CLASSES.iter().enumerate() {
                let count = counts.responses(class);
                let _ = writeln!(out, "{name}{{route=\"{route}\",class=\"{label}\"}} {count}");
            }
        }
        let name = "switchyard_route_request_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time from a request's arrival to its response head, by route.",
        );
        for (route, counts) in &routes {
            counts
                .duration
                .write(out, name, &format!("route=\"{route}\","));
        }
        let name = "switchyard_route_series";
        family(
            out,
            name,
            "gauge",
            "Routes with their own series (at most [admin] metrics_route_series).",
        );
        let _ = writeln!(out, "{name} {}", self.route_slots.taken());
    }

    /// Client connections accepted and open, by protocol and TLS.
    fn render_client_connections(&self, out: &mut String) {
        for (name, kind, help, open) in [
            (
                "switchyard_client_connections_accepted_total",
                "counter",
                "Client connections accepted, by protocol.",
                false,
            ),
            (
                "switchyard_client_connections_open",
                "gauge",
                "Client connections open, by protocol (tunnels not included).",
                true,
            ),
        ] {
            family(out, name, kind, help);
            for ((protocol, tls), (accepted, opened)) in
                PROTOCOLS.iter().zip(&self.client_connections)
            {
                let value = if open { opened } else { accepted }.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{protocol=\"{protocol}\",tls=\"{tls}\"}} {value}"
                );
            }
        }
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
