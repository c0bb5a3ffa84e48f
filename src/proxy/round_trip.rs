//! The round tripper: picks an endpoint, sends, and on a failure that provably left the request
//! untouched (connect refused or timed out, TLS failure, connection not ready) tries another
//! endpoint, up to `max_attempts` (capped by the pool size).

use super::{ProxyError, forwarded, target};
use crate::balance::{self, Attempts, PickError};
use crate::body::ProxyBody;
use crate::registry::Registry;
use crate::routing::Route;
use crate::upstream::{EndpointInFlight, SendError, Upstream, UpstreamError};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

/// Attempt limits.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Tries per request, capped by the number of endpoints.
    pub max_attempts: usize,
    /// In-flight requests per endpoint; 0 = unlimited.
    pub max_conns_per_backend: usize,
}

/// A response head from a backend, with what its body must hold on to.
pub struct Sent {
    /// The backend's response.
    pub response: Response<Incoming>,
    /// The HTTP/1.1 connection to give back when the body ends.
    pub pooled: Option<crate::upstream::Pooled>,
    /// The endpoint's in-flight count for this request.
    pub in_flight: EndpointInFlight,
}

/// Sends `req` to an endpoint of `route`, trying others while that is safe.
pub async fn send(
    upstream: &Upstream,
    registry: &dyn Registry,
    route: &Route,
    mut req: Request<ProxyBody>,
    settings: &RetrySettings,
    deadline: Option<Instant>,
) -> Result<Sent, ProxyError> {
    let max_attempts = settings
        .max_attempts
        .clamp(1, route.pool.endpoints.len().max(1));
    let mut attempts = Attempts::default();
    let mut last_error: Option<UpstreamError> = None;
    for attempt in 0..max_attempts {
        let (index, endpoint) =
            match balance::pick(route, &attempts, settings.max_conns_per_backend) {
                Ok(picked) => picked,
                Err(PickError::AllBusy) if last_error.is_none() => {
                    return Err(ProxyError::ConnectionLimit);
                }
                Err(_) => break,
            };
        attempts.record(index);
        forwarded::add_instance(req.headers_mut(), &endpoint, attempt == 0);
        target::for_endpoint(&mut req, &endpoint);
        let in_flight = EndpointInFlight::start(endpoint.clone());
        let result = match deadline {
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, upstream.send(&endpoint, req)).await {
                    Ok(result) => result,
                    Err(_) => {
                        let limit = deadline.saturating_duration_since(Instant::now());
                        registry.failure(route, &endpoint);
                        return Err(ProxyError::EndpointFailure(UpstreamError::Timeout(limit)));
                    }
                }
            }
            None => upstream.send(&endpoint, req).await,
        };
        match result {
            Ok((response, pooled)) => {
                return Ok(Sent {
                    response,
                    pooled,
                    in_flight,
                });
            }
            Err(SendError { error, request }) => {
                registry.failure(route, &endpoint);
                tracing::debug!(endpoint = %endpoint.spec.address, %error, "attempt failed");
                match request {
                    Some(unsent) => {
                        req = unsent;
                        last_error = Some(error);
                    }
                    None => return Err(ProxyError::from_attempt(error)),
                }
            }
        }
    }
    Err(last_error.map_or(ProxyError::NoEndpoints, ProxyError::EndpointFailure))
}
