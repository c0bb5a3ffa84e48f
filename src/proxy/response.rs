//! Response handling: hop-by-hop headers removed, body streamed to the client with the lease
//! that returns the upstream connection when the body ends (and the access log record that is
//! written then).

use super::access_log::Logging;
use super::hop_by_hop;
use super::round_trip::Sent;
use crate::body::ProxyBody;
use crate::conn_state::ActiveRequest;
use crate::upstream::{ResponseLease, UpstreamBody};
use http::Response;
use tokio::time::Instant;

/// Turns a backend response into the client's response.
pub fn stream(
    sent: Sent,
    max_idle: usize,
    active: ActiveRequest,
    deadline: Instant,
    logging: Option<Logging>,
) -> Response<ProxyBody> {
    let Sent {
        response,
        pooled,
        in_flight,
    } = sent;
    let (mut parts, body) = response.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    let lease = ResponseLease::new(pooled, max_idle, in_flight, Some(active));
    let end = logging.map(|logging| logging.on_body_end(parts.status));
    let body = UpstreamBody::new(body, lease, Some(deadline), end);
    Response::from_parts(parts, ProxyBody::Upstream(Box::new(body)))
}
