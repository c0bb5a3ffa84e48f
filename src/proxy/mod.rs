//! The request path, one module per stage, sharing one `RequestContext` (`context`) once the
//! route is known. Request phase: trace context and request id (`trace_context`,
//! `request_id`) -> request rules
//! (`request_check`) -> instance asked for (`instance`) -> route lookup (`lookup`) -> route
//! service, first pass or return trip (`route_service`) -> sticky session (`sticky`) ->
//! hop-by-hop cleanup (`hop_by_hop`) -> forwarding headers
//! (`forwarded`) -> origin-form target (`origin_form`) -> body limit and buffering
//! (`body_limit`) -> endpoint selection and attempts (`round_trip`, each within the request's
//! `deadline`, results recorded by `endpoint_health`, retries decided by `retry`). Response
//! phase: sticky cookie (`sticky`) -> response handling (`response`, `upgrade`); errors map to
//! responses in `error`. The access log record (`access_log`) is begun first and finished when
//! the response ends.

mod access_log;
mod body_limit;
mod client;
mod context;
mod endpoint_health;
mod error;
mod forwarded;
mod hop_by_hop;
mod instance;
mod lookup;
pub mod names;
mod origin_form;
mod request_check;
mod request_id;
mod response;
mod retry;
mod round_trip;
mod route_service;
mod sticky;
mod trace_context;
mod upgrade;

pub use client::ClientConn;
pub use error::ProxyError;
pub use lookup::{HostAndPath, RouteExtractor, RouteQuery};
use names::X_VCAP_REQUEST_ID;
pub use retry::RetryBudget;
pub use round_trip::RetrySettings;

use crate::access_log::AccessLog;
use crate::body::ProxyBody;
use crate::conn_state::ActiveRequest;
use crate::health::EjectionPolicy;
use crate::log_limit::LogLimit;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::routing::{self, Route};
use crate::upstream::Upstream;
use crate::upstream::UpstreamError;
use context::{RequestContext, RequestEnd};
use http::{Method, Request, Response};
use hyper::body::Body;
use route_service::Passage;
pub use route_service::RouteServices;
use std::sync::Arc;
use std::time::Duration;
pub use trace_context::TraceSettings;

/// Headers the router adds to a request on its way upstream (forwarding headers, request id
/// and start, instance headers, `TE`).
pub(crate) const ADDED_HEADERS: usize = 8;

/// Per-request limits.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Attempts and connection limits.
    pub retry: RetrySettings,
    /// Time for the whole backend exchange (headers and body).
    pub request_timeout: Duration,
    /// Largest request body (with a Content-Length) buffered so that an idempotent request can
    /// be resent after a backend may have seen it; 0 = never buffer.
    pub retry_buffer: usize,
    /// Largest request body unless the route says otherwise; 0 = unlimited.
    pub max_request_body: u64,
    /// How long failing endpoints stay out.
    pub ejection: EjectionPolicy,
    /// Application session cookies that make a session sticky (`JSESSIONID`).
    pub sticky_cookies: Vec<String>,
    /// Route services, when a secret is configured.
    pub route_services: Option<Arc<RouteServices>>,
    /// Trace headers kept or started.
    pub tracing: TraceSettings,
    /// The access log, when on.
    pub access_log: Option<Arc<AccessLog>>,
}

/// The reverse proxy: turns a client request into a backend request and back.
pub struct Proxy {
    registry: Arc<dyn Registry>,
    extractor: Arc<dyn RouteExtractor>,
    upstream: Upstream,
    settings: ProxySettings,
    metrics: Arc<Metrics>,
}

impl Proxy {
    /// A proxy routing with `extractor` over `registry`, sending through `upstream`.
    pub fn new(
        registry: Arc<dyn Registry>,
        extractor: Arc<dyn RouteExtractor>,
        upstream: Upstream,
        settings: ProxySettings,
        metrics: Arc<Metrics>,
    ) -> Proxy {
        Proxy {
            registry,
            extractor,
            upstream,
            settings,
            metrics,
        }
    }

    /// The router-wide counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The upstream client (for pool maintenance).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Handles one client request; never fails: errors become router responses. The body is
    /// hyper's (`ProxyBody::Incoming`), the HTTP/2 server's (`ProxyBody::Http2`) or, from the
    /// hand-written HTTP/1.1 server, already in memory (`Empty`, `Full`).
    pub async fn handle(
        &self,
        mut req: Request<ProxyBody>,
        client: Arc<ClientConn>,
        active: ActiveRequest,
    ) -> Response<ProxyBody> {
        let arrived = std::time::Instant::now();
        let request_id = match self.settings.tracing.enabled() {
            true => self.settings.tracing.apply(req.headers_mut()),
            false => request_id::new_request_id(),
        };
        let logging = access_log::begin(
            self.settings.access_log.as_ref(),
            arrived,
            &req,
            client.peer(),
            &request_id,
        );
        let mut end = RequestEnd {
            logging,
            route: None,
        };
        let forwarded = self
            .forward(req, client, active, &request_id, &mut end)
            .await;
        let mut response = match forwarded {
            Ok(response) => response,
            Err(error) => {
                log_error(&error);
                error.into_response()
            }
        };
        self.metrics
            .record_response(end.route.as_deref(), response.status(), arrived.elapsed());
        if let http::header::Entry::Vacant(entry) = response.headers_mut().entry(X_VCAP_REQUEST_ID)
        {
            entry.insert(request_id);
        }
        if let Some(logging) = end.logging {
            logging.finish_now(&response);
        }
        response
    }

    async fn forward(
        &self,
        mut req: Request<ProxyBody>,
        client: Arc<ClientConn>,
        active: ActiveRequest,
        request_id: &http::HeaderValue,
        end: &mut RequestEnd,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // Request phase: rules, route, the instance asked for, headers, body.
        if req.method() == Method::CONNECT {
            return Err(ProxyError::ConnectNotSupported);
        }
        request_check::check(&mut req)?;
        let upgrade = hop_by_hop::requested_upgrade(&req);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let cf_fields = names::CfFields::of(&parts.headers);
        let wanted = match cf_fields.instance {
            true => instance::Wanted::take(&mut parts.headers)?,
            false => None,
        };
        let route = match (
            lookup::route_for(&*self.registry, &*self.extractor, &parts),
            &wanted,
        ) {
            (Err(ProxyError::UnknownRoute(host)), Some(wanted)) => {
                return Err(wanted.unknown(&host));
            }
            (route, _) => route?,
        };
        end.route = Some(route.clone());
        let deadline = tokio::time::Instant::now() + self.settings.request_timeout;
        let mut ctx = RequestContext::new(request_id.clone(), client, route, deadline);
        if let Some(wanted) = &wanted {
            let host = routing::request_host(&parts).unwrap_or_default();
            instance::apply(&mut ctx, wanted, &host)?;
        }
        ctx.passage = route_service::check(
            &ctx,
            &mut parts,
            cf_fields.signature,
            upgrade.is_some(),
            self.settings.route_services.as_deref(),
            |host, path| self.registry.lookup(host, path),
        )?;
        if !matches!(ctx.passage, Passage::ToService(_)) {
            sticky::read(&mut ctx, &parts.headers, &self.settings.sticky_cookies);
        }
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        let http2_client = parts.version == http::Version::HTTP_2;
        // Room for the headers added below, made at once: a map growing one insert at a time
        // rehashes several times (HTTP/2 requests arrive in a map sized to what they carry; the
        // hand-written HTTP/1.1 server leaves room already).
        parts.headers.reserve(ADDED_HEADERS);
        hop_by_hop::strip_request(&mut parts.headers, upgrade.as_ref(), http2_client);
        forwarded::add(
            &mut parts.headers,
            &ctx.client,
            authority.as_deref(),
            &ctx.request_id,
        );
        origin_form::to_origin_form(&mut parts, &ctx.route, authority.as_deref());
        let limit = ctx
            .route
            .options
            .max_request_body
            .unwrap_or(self.settings.max_request_body);
        let body = body_limit::apply(body, limit)?;
        let body = match body {
            body if body.is_end_stream() => ProxyBody::Empty,
            body @ (ProxyBody::Incoming(_) | ProxyBody::Http2(_))
                if self.worth_buffering(&parts, &body, &ctx.route) =>
            {
                buffer(body, ctx.deadline).await?
            }
            body => body,
        };
        let round_trip = round_trip::RoundTrip {
            upstream: &self.upstream,
            health: endpoint_health::HealthReport {
                registry: &*self.registry,
                metrics: &self.metrics,
                policy: &self.settings.ejection,
            },
            metrics: &self.metrics,
            settings: &self.settings.retry,
        };
        let mut req = Request::from_parts(parts, body);
        let deadline = upgrade.is_none().then_some(ctx.deadline);
        let sent = match (&ctx.passage, self.settings.route_services.as_deref()) {
            (Passage::ToService(service), Some(services)) => {
                route_service::address_to_service(&mut req, service);
                let sending = route_service::send(&self.upstream, services, service, &mut req);
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, sending)
                        .await
                        .unwrap_or_else(|_| {
                            let limit = self.settings.request_timeout;
                            Err(ProxyError::EndpointFailure(UpstreamError::Timeout(limit)))
                        }),
                    None => sending.await,
                }
            }
            _ => round_trip.send(&ctx, &mut req, deadline).await,
        };
        // What is left of the request (its head, unless hyper took it) is done with.
        crate::http1::fields::recycle(std::mem::take(req.headers_mut()));
        let mut sent = sent?;

        // Response phase: no signature to the client (when route services are on: otherwise
        // the router makes none); the sticky cookie (not through a route service); then the
        // body or the tunnel.
        if self.settings.route_services.is_some() {
            sent.response
                .headers_mut()
                .remove(names::X_CF_PROXY_SIGNATURE);
        }
        ctx.served_by = sent.in_flight.as_ref().map(|f| f.endpoint().clone());
        if let Some(logging) = &mut end.logging {
            let service = match &ctx.passage {
                Passage::ToService(service) => Some(service),
                _ => None,
            };
            logging.answered_by(ctx.served_by.as_ref(), service);
        }
        sticky::write(
            &ctx,
            sent.response.headers_mut(),
            &self.settings.sticky_cookies,
        );
        match (upgrade, client_upgrade) {
            (Some(protocol), Some(client_upgrade)) => upgrade::finish(
                sent,
                &protocol,
                client_upgrade,
                ctx.client,
                active,
                ctx.deadline,
            ),
            _ => Ok(response::stream(
                sent,
                self.upstream.max_idle(),
                active,
                ctx.deadline,
                end.logging.take(),
            )),
        }
    }
}

/// Server-side failures (5xx: no endpoint, every attempt failed, timeouts) at WARN, at most
/// 10 lines a second with a count of those held back, so a dead backend under load costs a
/// few lines; the client's mistakes (4xx) at DEBUG.
fn log_error(error: &ProxyError) {
    static FAILURES: LogLimit = LogLimit::new(10);
    if !error.status().is_server_error() {
        return tracing::debug!(%error, "router answered with an error");
    }
    if let Some(suppressed) = FAILURES.admit() {
        tracing::warn!(%error, status = error.status().as_u16(), suppressed, "request failed");
    }
}

impl Proxy {
    /// True when the body should be read whole before sending: the request could be resent
    /// (idempotent, more than one endpoint to try) and its declared length fits the buffer.
    fn worth_buffering(
        &self,
        parts: &http::request::Parts,
        body: &ProxyBody,
        route: &Route,
    ) -> bool {
        let fits = body
            .size_hint()
            .exact()
            .is_some_and(|len| len <= self.settings.retry_buffer as u64);
        fits && self.settings.retry.max_attempts > 1
            && route.pool.endpoints.len() > 1
            && retry::idempotent(&parts.method, &parts.headers)
    }
}

/// Reads a (small, length-declared) client body whole, within the request deadline, into one
/// buffer of its declared size (a list of the pieces as they came would cost memory per piece:
/// a client can send a body one byte per frame).
async fn buffer(
    mut body: ProxyBody,
    deadline: tokio::time::Instant,
) -> Result<ProxyBody, ProxyError> {
    use http_body_util::BodyExt;
    let declared = body.size_hint().exact().unwrap_or(0) as usize;
    let read = async {
        let mut whole = bytes::BytesMut::with_capacity(declared);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                whole.extend_from_slice(&data);
            }
        }
        Ok::<_, crate::body::BodyError>(whole.freeze())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(whole)) => Ok(ProxyBody::full(whole)),
        Ok(Err(error)) => Err(ProxyError::ClientBody(error)),
        Err(_) => Err(ProxyError::ClientBody(Box::new(UpstreamError::Timeout(
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )))),
    }
}
