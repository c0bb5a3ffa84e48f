//! Builds a route table from the config file's `[[route]]` entries.

use super::{Endpoint, Pool, Route, RouteTable, RouteUri};
use crate::config::{BalancerKind, RouteConfig};
use std::sync::Arc;

impl RouteTable {
    /// A table of the static routes (assumes the config passed validation).
    pub fn from_config(routes: &[RouteConfig], default_balancer: BalancerKind) -> RouteTable {
        let routes = routes
            .iter()
            .filter_map(|route| {
                let uri = RouteUri::parse(route.uri.get_ref()).ok()?;
                let endpoints = route
                    .backends
                    .iter()
                    .map(|b| Arc::new(Endpoint::from_config(b, route.protocol)))
                    .collect();
                Some(Arc::new(Route {
                    uri,
                    strip_prefix: route.strip_prefix,
                    balancer: route.balancer.unwrap_or(default_balancer),
                    route_service_url: (!route.route_service_url.is_empty())
                        .then(|| route.route_service_url.clone()),
                    pool: Pool::new(endpoints),
                }))
            })
            .collect();
        RouteTable::new(routes)
    }
}
