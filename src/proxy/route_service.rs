//! Route services (gorouter's), a request-phase stage. A request to a route with a route
//! service goes there first, carrying `X-CF-Forwarded-Url` (where it was going) and the
//! signature headers; the route service sends it back through the router, which recognises the
//! return trip by its signature, checks it (a key it knows, not expired, the same route) and
//! sends it on to the app without the three headers. The signature never reaches a client or
//! an app. Requests to the route service go over pooled connections to its resolved addresses
//! (gorouter opens a new connection per attempt), verified against `[route_services] ca_file`
//! or the system roots, and are retried as backend requests are.

use super::ProxyError;
use super::context::RequestContext;
use super::names::{X_CF_FORWARDED_URL, X_CF_PROXY_METADATA, X_CF_PROXY_SIGNATURE};
use super::retry::{self, Decision, Replay};
use super::round_trip::Sent;
use crate::body::ProxyBody;
use crate::config::UpstreamProtocol;
use crate::route_service::{Resolver, Signer};
use crate::routing::Route;
use crate::target::{Target, Trust};
use crate::upstream::{Upstream, UpstreamError};
use http::header::HOST;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Uri};
use std::sync::Arc;
use std::time::SystemTime;

/// Attempts at a route service per request (gorouter's `route_services.max_attempts`).
const MAX_ATTEMPTS: usize = 3;

/// Route services as configured (present only when a secret is set).
#[derive(Debug)]
pub struct RouteServices {
    /// Signs and checks.
    pub signer: Signer,
    /// Route-service host names to addresses.
    pub resolver: Resolver,
    /// Check signatures on routes without a route service too.
    pub strict: bool,
    /// Let WebSocket upgrades through route services.
    pub websockets: bool,
}

/// Where the stage sends a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Passage {
    /// To the app; no route service involved.
    #[default]
    Direct,
    /// First pass: to the route service at this URL.
    ToService(Uri),
    /// Back from the route service with a valid signature: to the app.
    Returned,
}

/// The request phase: decides the passage of a request to `ctx.route` (`signed`: it carries
/// `X-CF-Proxy-Signature`) and sets or removes the route-service headers. `lookup` finds the
/// route of a signed URL's host and path.
pub fn check(
    ctx: &RequestContext,
    parts: &mut Parts,
    signed: bool,
    upgrade: bool,
    services: Option<&RouteServices>,
    lookup: impl Fn(&str, &str) -> Option<Arc<Route>>,
) -> Result<Passage, ProxyError> {
    let Some(url) = &ctx.route.options.route_service_url else {
        if signed && let Some(services) = services.filter(|s| s.strict) {
            open(services, &parts.headers).map_err(|error| ProxyError::RouteServiceSignature {
                error,
                strict: true,
            })?;
        }
        return Ok(Passage::Direct);
    };
    let Some(services) = services else {
        return Err(ProxyError::RouteServiceUnsupported);
    };
    if upgrade && !services.websockets {
        return Err(ProxyError::RouteServiceWebsocket);
    }
    if signed {
        let forwarded =
            open(services, &parts.headers).map_err(|error| ProxyError::RouteServiceSignature {
                error,
                strict: false,
            })?;
        if !same_route(&forwarded, &ctx.route, lookup) {
            return Err(ProxyError::RouteServiceSignature {
                error: crate::route_service::SignatureError::Invalid("signed for another route"),
                strict: false,
            });
        }
        for name in [
            X_CF_FORWARDED_URL,
            X_CF_PROXY_SIGNATURE,
            X_CF_PROXY_METADATA,
        ] {
            parts.headers.remove(name);
        }
        return Ok(Passage::Returned);
    }
    let service: Uri = url.parse().map_err(|_| ProxyError::RouteServiceSigning)?;
    let host = crate::routing::request_host(parts).unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let forwarded = format!("https://{host}{path}");
    let signed = services.signer.sign(&forwarded, SystemTime::now());
    let value =
        |text: &str| HeaderValue::from_str(text).map_err(|_| ProxyError::RouteServiceSigning);
    let headers = &mut parts.headers;
    headers.insert(X_CF_FORWARDED_URL, value(&forwarded)?);
    headers.insert(X_CF_PROXY_SIGNATURE, value(&signed.signature)?);
    headers.insert(X_CF_PROXY_METADATA, value(&signed.metadata)?);
    Ok(Passage::ToService(service))
}

fn open(
    services: &RouteServices,
    headers: &HeaderMap,
) -> Result<String, crate::route_service::SignatureError> {
    let get = |name| headers.get(name).map_or(&b""[..], HeaderValue::as_bytes);
    services.signer.open(
        get(X_CF_PROXY_SIGNATURE),
        get(X_CF_PROXY_METADATA),
        SystemTime::now(),
    )
}

/// True when the signed URL's host and path lead to `route` (the route service may change the
/// path or query within the route, not leave it).
fn same_route(
    forwarded: &str,
    route: &Route,
    lookup: impl Fn(&str, &str) -> Option<Arc<Route>>,
) -> bool {
    let Ok(uri) = forwarded.parse::<Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    lookup(&host, uri.path()).is_some_and(|found| found.uri == route.uri)
}

/// The request as it goes to the route service at `service`: its path, query and `Host`.
pub fn address_to_service(req: &mut Request<ProxyBody>, service: &Uri) {
    let path = service
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::from(path);
    if let Some(authority) = service.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, host);
    }
}

/// Sends `req` to the route service at `service`, over its resolved addresses in turn, trying
/// again when that is safe (as for backends).
pub async fn send(
    upstream: &Upstream,
    services: &RouteServices,
    service: &Uri,
    req: &mut Request<ProxyBody>,
) -> Result<Sent, ProxyError> {
    let host = service.host().unwrap_or("");
    let port = service.port_u16().unwrap_or(443);
    let addresses = services
        .resolver
        .resolve(host, port)
        .await
        .map_err(|e| ProxyError::EndpointFailure(UpstreamError::Connect(e)))?;
    let name: Arc<str> = Arc::from(host.trim_start_matches('[').trim_end_matches(']'));
    let target_at = |attempt: usize| Target {
        address: addresses[attempt % addresses.len()],
        protocol: UpstreamProtocol::Http1,
        tls_name: Some(name.clone()),
        trust: Trust::RouteServices,
    };
    let idempotent = retry::idempotent(req.method(), req.headers());
    // As for backends, a copy only when the sender takes the request (hyper's paths).
    let replay = match Upstream::keeps_request(&target_at(0), req) {
        true => None,
        false => Replay::of(req),
    };
    let mut last = None;
    for attempt in 0..MAX_ATTEMPTS {
        let target = target_at(attempt);
        target.shape(req);
        match upstream.send(&target, req).await {
            Ok((response, pooled)) => {
                return Ok(Sent {
                    response,
                    pooled,
                    in_flight: None,
                });
            }
            Err(failure) => {
                tracing::debug!(service = %service, error = %failure.error, "route service attempt failed");
                let outcome = retry::outcome(&failure);
                let resendable = failure.kept || replay.is_some();
                let left = attempt + 1 < MAX_ATTEMPTS;
                if retry::decide(outcome, idempotent, resendable, left) == Decision::Stop {
                    return Err(ProxyError::from_attempt(failure.error));
                }
                if !failure.kept
                    && let Some(replay) = &replay
                {
                    *req = replay.request();
                }
                last = Some(failure.error);
            }
        }
    }
    Err(last.map_or(ProxyError::NoEndpoints, ProxyError::EndpointFailure))
}
