//! One request's state from its request phase to its response phase: what the stages learn
//! about it (its route, the instance it asks for, its sticky session) and what the response
//! phase needs (the endpoint that answered). Stages read and write this one value instead of
//! passing loose arguments.

use super::ClientConn;
use super::route_service::Passage;
use crate::balance::Affinity;
use crate::routing::{Endpoint, Route};
use http::HeaderValue;
use std::sync::Arc;
use tokio::time::Instant;

/// What the end of a request needs, whichever stage it ended at: its access log record (until
/// a streamed response body takes it) and its route, once known (for the route's counts).
pub struct RequestEnd {
    /// The access log record, when the log is on.
    pub logging: Option<super::access_log::Logging>,
    /// The route the request matched.
    pub route: Option<Arc<Route>>,
}

/// A request on its way through the proxy, once its route is known.
pub struct RequestContext {
    /// `X-Vcap-Request-Id`.
    pub request_id: HeaderValue,
    /// The client connection it came on.
    pub client: Arc<ClientConn>,
    /// The route it matched.
    pub route: Arc<Route>,
    /// When the backend exchange must be over.
    pub deadline: Instant,
    /// The instance it asks for (instance routing, sticky session).
    pub affinity: Affinity,
    /// The sticky session it carried: the instance id in its `__VCAP_ID__`, when it also
    /// carried an application session cookie.
    pub sticky_instance: Option<String>,
    /// Where the route-service stage sends it.
    pub passage: Passage,
    /// The endpoint whose response the client gets (`None` for a route service's answer or
    /// before the response phase).
    pub served_by: Option<Arc<Endpoint>>,
}

impl RequestContext {
    /// The context of a request that matched `route`.
    pub fn new(
        request_id: HeaderValue,
        client: Arc<ClientConn>,
        route: Arc<Route>,
        deadline: Instant,
    ) -> RequestContext {
        RequestContext {
            request_id,
            client,
            route,
            deadline,
            affinity: Affinity::None,
            sticky_instance: None,
            passage: Passage::Direct,
            served_by: None,
        }
    }
}
