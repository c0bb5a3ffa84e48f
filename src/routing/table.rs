//! The route table: an immutable snapshot, looked up by host and longest path prefix on whole
//! segments, with wildcard hosts and any-host routes. Built once per change, read lock-free.

use super::{HostPattern, Route};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Routes of one host pattern, by path prefix.
#[derive(Debug, Default)]
struct PathRoutes {
    by_path: HashMap<Box<str>, Arc<Route>>,
}

impl PathRoutes {
    /// The deepest route on `path` with endpoints; else the deepest route (an empty pool).
    fn longest_match(&self, path: &str) -> Option<&Arc<Route>> {
        if self.by_path.is_empty() {
            return None;
        }
        let mut candidate = path.trim_end_matches('/');
        let mut empty_match = None;
        loop {
            if let Some(route) = self.by_path.get(candidate) {
                if !route.pool.is_empty() {
                    return Some(route);
                }
                empty_match.get_or_insert(route);
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return empty_match,
            }
        }
    }
}

/// All routes, indexed for lookup.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<Box<str>, PathRoutes>,
    wildcard: HashMap<Box<str>, PathRoutes>,
    any_host: PathRoutes,
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Indexes `routes`; a later route with the same uri replaces an earlier one.
    pub fn new(routes: Vec<Arc<Route>>) -> RouteTable {
        let mut table = RouteTable::default();
        for route in &routes {
            let by_host = match &route.uri.host {
                HostPattern::Any => &mut table.any_host,
                HostPattern::Exact(host) => table.exact.entry(host.as_str().into()).or_default(),
                HostPattern::Wildcard(suffix) => {
                    table.wildcard.entry(suffix.as_str().into()).or_default()
                }
            };
            by_host
                .by_path
                .insert(route.uri.path.as_str().into(), route.clone());
        }
        table.routes = routes;
        table
    }

    /// Every route, in the order given.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Finds the route for a normalised host (lower-case, no port) and a request path.
    /// Exact host first, then wildcards walking up the domain, then any-host routes.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        if let Some(routes) = self.exact.get(host)
            && let Some(route) = routes.longest_match(path)
        {
            return Some(route);
        }
        if !self.wildcard.is_empty() {
            let mut rest = host;
            while let Some(dot) = rest.find('.') {
                rest = &rest[dot + 1..];
                if let Some(route) = self.wildcard.get(rest).and_then(|r| r.longest_match(path)) {
                    return Some(route);
                }
            }
        }
        self.any_host.longest_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, BalancerKind, UpstreamProtocol};
    use crate::routing::{Endpoint, Pool, RouteUri};

    fn route(uri: &str, backends: usize) -> Arc<Route> {
        let endpoints = (0..backends)
            .map(|i| {
                let backend = BackendConfig::plain(([127, 0, 0, 1], 9000 + i as u16).into());
                Arc::new(Endpoint::from_config(&backend, UpstreamProtocol::Http1))
            })
            .collect();
        Arc::new(Route {
            uri: RouteUri::parse(uri).unwrap(),
            strip_prefix: false,
            balancer: BalancerKind::RoundRobin,
            route_service_url: None,
            pool: Pool::new(endpoints),
        })
    }

    fn found(table: &RouteTable, host: &str, path: &str) -> Option<String> {
        table.lookup(host, path).map(|route| route.uri.to_string())
    }

    #[test]
    fn longest_prefix_on_whole_segments() {
        let table = RouteTable::new(vec![
            route("a.com", 1),
            route("a.com/api", 1),
            route("a.com/api/v2", 1),
        ]);
        assert_eq!(found(&table, "a.com", "/api").as_deref(), Some("a.com/api"));
        assert_eq!(
            found(&table, "a.com", "/api/").as_deref(),
            Some("a.com/api")
        );
        assert_eq!(
            found(&table, "a.com", "/api/x").as_deref(),
            Some("a.com/api")
        );
        assert_eq!(
            found(&table, "a.com", "/api/v2/x").as_deref(),
            Some("a.com/api/v2")
        );
        assert_eq!(found(&table, "a.com", "/apix").as_deref(), Some("a.com"));
        assert_eq!(found(&table, "a.com", "/").as_deref(), Some("a.com"));
        assert_eq!(found(&table, "b.com", "/api"), None);
    }

    #[test]
    fn empty_deeper_pool_falls_back_to_shallower() {
        let table = RouteTable::new(vec![route("a.com", 1), route("a.com/empty", 0)]);
        assert_eq!(found(&table, "a.com", "/empty/x").as_deref(), Some("a.com"));
        let table = RouteTable::new(vec![route("a.com/empty", 0)]);
        assert_eq!(
            found(&table, "a.com", "/empty/x").as_deref(),
            Some("a.com/empty")
        );
    }

    #[test]
    fn wildcards_walk_up_and_exact_wins() {
        let table = RouteTable::new(vec![
            route("*.example.com", 1),
            route("x.example.com", 1),
            route("*.b.example.com/p", 1),
        ]);
        assert_eq!(
            found(&table, "x.example.com", "/").as_deref(),
            Some("x.example.com")
        );
        assert_eq!(
            found(&table, "y.example.com", "/").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(
            found(&table, "a.b.example.com", "/p/q").as_deref(),
            Some("*.b.example.com/p")
        );
        assert_eq!(
            found(&table, "deep.a.b.example.com", "/z").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(found(&table, "example.com", "/"), None);
    }

    #[test]
    fn any_host_routes_match_every_host() {
        let table = RouteTable::new(vec![route("/serviceone/v1", 1), route("a.com", 1)]);
        assert_eq!(
            found(&table, "whatever", "/serviceone/v1/users").as_deref(),
            Some("/serviceone/v1")
        );
        assert_eq!(found(&table, "whatever", "/servicetwo"), None);
        assert_eq!(
            found(&table, "a.com", "/serviceone/v1").as_deref(),
            Some("a.com")
        );
    }
}
