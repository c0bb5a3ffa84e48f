//! Route lookup for a request: its host (port stripped, lower-cased) and path.

use super::ProxyError;
use crate::routing::{Route, RouteTable, request_host};
use http::Request;
use std::sync::Arc;

/// The route serving `req`, or the error to answer with.
pub fn route_for<B>(table: &RouteTable, req: &Request<B>) -> Result<Arc<Route>, ProxyError> {
    let host = request_host(req).ok_or(ProxyError::EmptyHost)?;
    let route = table
        .lookup(&host, req.uri().path())
        .ok_or_else(|| ProxyError::UnknownRoute(host.into_owned()))?;
    if route.pool.is_empty() {
        return Err(ProxyError::NoEndpoints);
    }
    Ok(route.clone())
}
