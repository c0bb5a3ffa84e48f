//! Route lookup for a request: a [`RouteExtractor`] says what to look up (by default the host,
//! port stripped and lower-cased, and the path), the registry says which route serves it.

use super::ProxyError;
use crate::registry::Registry;
use crate::routing::{Route, request_host};
use http::request::Parts;
use std::borrow::Cow;
use std::sync::Arc;

/// What a request is routed by: a normalised host (lower-case, no port) and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuery<'a> {
    /// Host to match route hosts against.
    pub host: Cow<'a, str>,
    /// Path to match route path prefixes against.
    pub path: Cow<'a, str>,
}

/// Turns a request into the key its route is looked up by (the seed article's
/// `ExtractNameVersion`). Plug in your own to route by a header, a cookie, a path scheme...
pub trait RouteExtractor: Send + Sync + 'static {
    /// The lookup key for `parts`; `None` answers 400 `empty_host`.
    fn extract<'a>(&self, parts: &'a Parts) -> Option<RouteQuery<'a>>;
}

/// The default extractor: `Host` (or the HTTP/2 `:authority`) and the request path.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostAndPath;

impl RouteExtractor for HostAndPath {
    fn extract<'a>(&self, parts: &'a Parts) -> Option<RouteQuery<'a>> {
        Some(RouteQuery {
            host: request_host(parts)?,
            path: Cow::Borrowed(parts.uri.path()),
        })
    }
}

/// The route serving the request, or the error to answer with.
pub fn route_for(
    registry: &dyn Registry,
    extractor: &dyn RouteExtractor,
    parts: &Parts,
) -> Result<Arc<Route>, ProxyError> {
    let query = extractor.extract(parts).ok_or(ProxyError::EmptyHost)?;
    let route = registry
        .lookup(&query.host, &query.path)
        .ok_or_else(|| ProxyError::UnknownRoute(query.host.into_owned()))?;
    if route.pool.is_empty() {
        return Err(ProxyError::NoEndpoints);
    }
    Ok(route)
}
