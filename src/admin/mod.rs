//! The admin API on `listen.admin` (contract section 5): `/health`, `/routes`, `/metrics`, the
//! status page (`status`), and `POST /routes/register` / `POST /routes/unregister` with
//! gorouter's registration JSON, with an optional bearer token. Runs on its own thread so a
//! busy proxy never delays health checks.

mod status;

use crate::access_log::AccessLog;
use crate::body::ProxyBody;
use crate::clock::now_ms;
use crate::health::{PassiveHealth, Standing};
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::Metrics;
use crate::registry::{Action, Feed, SourceStats};
use crate::routing::Endpoint;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use tokio::net::TcpListener;

/// Largest registration body accepted (about 100,000 registrations).
const MAX_BODY: usize = 64 << 20;

/// What the admin API reads and writes.
#[derive(Clone)]
pub struct AdminState {
    /// The admin API's feed of the registry behind the route table.
    pub feed: Arc<Feed>,
    /// Every route source's counters (for `/metrics`).
    pub sources: Vec<Arc<SourceStats>>,
    /// The access log, when on (for `/metrics`).
    pub access_log: Option<Arc<AccessLog>>,
    /// Health follows the lifecycle phase.
    pub lifecycle: Arc<Lifecycle>,
    /// Bearer token; empty = no authentication.
    pub token: String,
    /// `/health` answers without the token.
    pub health_without_token: bool,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Serves the admin API on `listener` until the router stops.
pub fn spawn(
    listener: std::net::TcpListener,
    state: AdminState,
) -> std::io::Result<JoinHandle<()>> {
    crate::runtime_thread::spawn_runtime_thread("switchyard-admin".into(), serve(listener, state))
}

async fn serve(listener: std::net::TcpListener, state: AdminState) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => return tracing::error!(%error, "cannot register admin listener"),
    };
    let state = Arc::new(state);
    let lifecycle = state.lifecycle.clone();
    let stopping = lifecycle.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = conn.await {
                        tracing::debug!(%error, "admin connection ended");
                    }
                });
            }
            () = &mut stopping => return,
        }
    }
}

/// A JSON response.
fn json_response(status: StatusCode, value: &Value) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(format!("{value}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(status: StatusCode, reason: &str) -> Response<ProxyBody> {
    json_response(status, &json!({ "error": reason }))
}

fn authorized(state: &AdminState, req: &Request<Incoming>) -> bool {
    if state.token.is_empty() {
        return true;
    }
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == state.token)
}

/// The admin endpoints: path, methods, what it is (for the index at `/`).
const ENDPOINTS: [(&str, &str, &str); 8] = [
    ("/", "GET, HEAD", "this list"),
    ("/health", "GET, HEAD", "200 ok, or 503 while draining"),
    (
        "/routes",
        "GET, HEAD",
        "the route table with each endpoint's state",
    ),
    ("/metrics", "GET, HEAD", "Prometheus text"),
    (
        "/status",
        "GET, HEAD",
        "live status page (HTML; the page itself needs no token, its data does)",
    ),
    (
        "/status.json",
        "GET, HEAD",
        "what the status page shows, as JSON",
    ),
    (
        "/routes/register",
        "POST",
        "register endpoints (registration JSON, one or an array)",
    ),
    (
        "/routes/unregister",
        "POST",
        "unregister endpoints (the same JSON)",
    ),
];

async fn handle(state: &AdminState, req: Request<Incoming>) -> Response<ProxyBody> {
    let path = req.uri().path().to_owned();
    let Some(&(_, allowed, _)) = ENDPOINTS.iter().find(|(p, _, _)| *p == path) else {
        return error_response(
            StatusCode::NOT_FOUND,
            &format!("no admin endpoint at {path} (GET / lists them)"),
        );
    };
    // The page holds no data (it asks for the token and sends it with its requests).
    let public = (path == "/health" && state.health_without_token) || path == "/status";
    if !public && !authorized(state, &req) {
        let mut response =
            error_response(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"switchyard admin\""),
        );
        return response;
    }
    // HEAD is GET without the body (the HTTP layer leaves the body out).
    let method = match *req.method() {
        Method::HEAD => Method::GET,
        ref method => method.clone(),
    };
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} takes {allowed}"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return response;
    }
    match path.as_str() {
        "/" => {
            let list: serde_json::Map<String, Value> = ENDPOINTS
                .iter()
                .map(|(path, methods, what)| {
                    (path.to_string(), json!(format!("{methods}: {what}")))
                })
                .collect();
            json_response(StatusCode::OK, &Value::Object(list))
        }
        "/health" => health(state),
        "/status" => status_page(),
        "/status.json" => json_response(StatusCode::OK, &status::snapshot(state)),
        "/routes" => json_response(StatusCode::OK, &routes(state)),
        "/routes/register" => change_routes(state, req, Action::Register).await,
        "/routes/unregister" => change_routes(state, req, Action::Unregister).await,
        "/metrics" => {
            let table = state.feed.registry().snapshot();
            let text = state.metrics.render(
                &table,
                &state.lifecycle,
                &state.sources,
                state.access_log.as_deref(),
            );
            let mut response = Response::new(ProxyBody::full(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        _ => error_response(StatusCode::NOT_FOUND, "no such admin endpoint"),
    }
}

/// The page, allowed to load nothing but its own inline script and style and `/status.json`.
fn status_page() -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(status::PAGE));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

fn health(state: &AdminState) -> Response<ProxyBody> {
    let (status, text) = match state.lifecycle.phase() {
        Phase::Running => (StatusCode::OK, "ok\n"),
        Phase::Draining | Phase::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
    };
    let mut response = Response::new(ProxyBody::full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Reads a registration body and applies every message's changes, or none when any message is
/// bad (400 with the field at fault).
async fn change_routes(
    state: &AdminState,
    req: Request<Incoming>,
    action: Action,
) -> Response<ProxyBody> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            let reason = format!("cannot read the body (at most {MAX_BODY} bytes): {error}");
            return error_response(StatusCode::BAD_REQUEST, &reason);
        }
    };
    match state.feed.changes(action, &body) {
        Ok(changes) => {
            let applied = state.feed.apply(changes);
            let (added, updated, removed) = (applied.added, applied.updated, applied.removed);
            if added + updated + removed > 0 {
                tracing::info!(added, updated, removed, "routes changed over the admin API");
            }
            json_response(StatusCode::OK, &json!(applied))
        }
        Err(error) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": error.to_string(), "field": error.field, "reason": error.reason }),
        ),
    }
}

/// An endpoint's passive-health standing: `admitted`; `ejected` with the ejections in a row
/// and the milliseconds until a request may probe it; `half_open` (the next request probes
/// it); `probing` (a probe is out).
fn ejection(passive: &PassiveHealth, now: u64) -> Value {
    match passive.standing(now) {
        Standing::Admitted => json!({"state": "admitted"}),
        Standing::Ejected { remaining_ms } => json!({
            "state": "ejected",
            "period": passive.period(),
            "next_probe_in_ms": remaining_ms,
        }),
        Standing::HalfOpen => {
            json!({"state": "half_open", "period": passive.period(), "next_probe_in_ms": 0})
        }
        Standing::Probing => json!({"state": "probing", "period": passive.period()}),
    }
}

/// What `/routes` and the status page show of every endpoint: where it is, where it came
/// from, its traffic and its health.
fn endpoint_state(e: &Endpoint, now: u64) -> serde_json::Map<String, Value> {
    [
        ("address", json!(e.spec.address.to_string())),
        ("source", json!(e.source)),
        ("in_flight", json!(e.in_flight())),
        ("requests", json!(e.stats.requests.load(Ordering::Relaxed))),
        ("failures", json!(e.stats.failures.load(Ordering::Relaxed))),
        ("healthy", json!(!e.health.unavailable())),
        ("checked_down", json!(e.health.down.load(Ordering::Relaxed))),
        ("ejection", ejection(&e.health.passive, now)),
        ("ejections", json!(e.health.passive.ejections())),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

fn routes(state: &AdminState) -> Value {
    let table = state.feed.registry().snapshot();
    let now = now_ms();
    let mut out = serde_json::Map::new();
    for route in table.routes() {
        let endpoints: Vec<Value> = route
            .pool
            .endpoints
            .iter()
            .map(|e| {
                let spec = &e.spec;
                let mut fields = endpoint_state(e, now);
                fields.extend([
                    ("tls".into(), json!(spec.tls_name.is_some())),
                    (
                        "server_cert_domain_san".into(),
                        json!(spec.tls_name.as_deref()),
                    ),
                    ("protocol".into(), json!(spec.protocol)),
                    ("app_id".into(), json!(spec.app_id)),
                    ("private_instance_id".into(), json!(spec.instance_id)),
                    ("private_instance_index".into(), json!(spec.instance_index)),
                    ("tags".into(), json!(spec.tags)),
                    (
                        "ttl".into(),
                        json!(e.lease.as_ref().map(|l| l.remaining(now).as_secs())),
                    ),
                    ("load_balancing_algorithm".into(), json!(route.balancer)),
                    ("hash_key".into(), json!(route.hash_key)),
                    ("strip_prefix".into(), json!(route.options.strip_prefix)),
                    (
                        "route_service_url".into(),
                        json!(route.options.route_service_url),
                    ),
                ]);
                Value::Object(fields)
            })
            .collect();
        out.insert(route.uri.to_string(), Value::Array(endpoints));
    }
    Value::Object(out)
}
