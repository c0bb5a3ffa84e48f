//! The route table: an immutable snapshot, looked up by host and longest path prefix on whole
//! segments, with wildcard hosts and any-host routes. Built once per change, read lock-free.

use super::{HostPattern, Route};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Routes of one host pattern, by path prefix.
#[derive(Debug, Default)]
pub struct PathRoutes {
    by_path: HashMap<Box<str>, Arc<Route>>,
}

impl PathRoutes {
    /// Indexes the routes of one host pattern (a later route with the same path wins).
    pub fn new(routes: impl IntoIterator<Item = Arc<Route>>) -> PathRoutes {
        let by_path = routes
            .into_iter()
            .map(|route| (Box::from(route.uri.path.as_str()), route))
            .collect();
        PathRoutes { by_path }
    }

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

/// The routes of one host: most hosts have only a root route, kept inline so a lookup touches
/// one less allocation; hosts with path routes keep a shared [`PathRoutes`].
#[derive(Debug, Clone)]
enum HostRoutes {
    Root(Arc<Route>),
    Paths(Arc<PathRoutes>),
}

impl HostRoutes {
    fn new(routes: PathRoutes) -> HostRoutes {
        if routes.by_path.len() == 1
            && let Some(root) = routes.by_path.get("")
        {
            return HostRoutes::Root(root.clone());
        }
        HostRoutes::Paths(Arc::new(routes))
    }

    fn longest_match(&self, path: &str) -> Option<&Arc<Route>> {
        match self {
            HostRoutes::Root(route) => Some(route),
            HostRoutes::Paths(routes) => routes.longest_match(path),
        }
    }

    fn len(&self) -> usize {
        match self {
            HostRoutes::Root(_) => 1,
            HostRoutes::Paths(routes) => routes.by_path.len(),
        }
    }

    fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        let (root, paths) = match self {
            HostRoutes::Root(route) => (Some(route), None),
            HostRoutes::Paths(routes) => (None, Some(routes.by_path.values())),
        };
        root.into_iter().chain(paths.into_iter().flatten())
    }
}

/// Host maps are split in this many shards so that a change copies one shard, not the table.
const SHARDS: usize = 64;

/// Host -> routes, sharded by the host's hash; each shard shared between snapshots until a
/// change touches it.
#[derive(Debug, Clone)]
struct HostMap {
    shards: Vec<Arc<HashMap<Arc<str>, HostRoutes>>>,
    hosts: usize,
}

impl Default for HostMap {
    fn default() -> Self {
        HostMap {
            shards: vec![Arc::default(); SHARDS],
            hosts: 0,
        }
    }
}

impl HostMap {
    fn shard(host: &str) -> usize {
        let mut hasher = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut hasher, host.as_bytes());
        (std::hash::Hasher::finish(&hasher) >> 58) as usize % SHARDS
    }

    fn get(&self, host: &str) -> Option<&HostRoutes> {
        self.shards[Self::shard(host)].get(host)
    }

    /// Sets (or, when `routes` is empty, removes) `host`; returns the number of routes before.
    fn set(&mut self, host: &str, routes: PathRoutes) -> usize {
        let shard = Arc::make_mut(&mut self.shards[Self::shard(host)]);
        let routes_empty = routes.by_path.is_empty();
        let old = if routes_empty {
            shard.remove(host)
        } else {
            shard.insert(host.into(), HostRoutes::new(routes))
        };
        self.hosts = self.hosts + usize::from(!routes_empty) - usize::from(old.is_some());
        old.map_or(0, |old| old.len())
    }

    fn is_empty(&self) -> bool {
        self.hosts == 0
    }

    fn values(&self) -> impl Iterator<Item = &HostRoutes> {
        self.shards.iter().flat_map(|shard| shard.values())
    }
}

/// All routes, indexed by host pattern then path. Immutable: a change makes a new table that
/// shares every untouched part with the old one ([`RouteTable::with_hosts`]).
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    exact: HostMap,
    wildcard: HostMap,
    any_host: Arc<PathRoutes>,
    len: usize,
    /// The routes with an active health check, so the checker never scans the whole table.
    checked: Arc<Vec<Arc<Route>>>,
}

impl RouteTable {
    /// Indexes `routes`; a later route with the same uri replaces an earlier one.
    pub fn new(routes: impl IntoIterator<Item = Arc<Route>>) -> RouteTable {
        let mut by_host: HashMap<HostPattern, Vec<Arc<Route>>> = HashMap::default();
        for route in routes {
            by_host
                .entry(route.uri.host.clone())
                .or_default()
                .push(route);
        }
        RouteTable::default().with_hosts(
            by_host
                .into_iter()
                .map(|(host, routes)| (host, PathRoutes::new(routes))),
        )
    }

    /// A copy of this table where each given host pattern has exactly the given routes (none
    /// removes the host). Untouched shards are shared, so a change costs a copy of the shards
    /// it touches, not a rebuild of every route.
    pub fn with_hosts(
        &self,
        changes: impl IntoIterator<Item = (HostPattern, PathRoutes)>,
    ) -> RouteTable {
        let mut next = self.clone();
        for (host, routes) in changes {
            let had_checks = next.checked.iter().any(|r| r.uri.host == host);
            let new_checks = routes
                .by_path
                .values()
                .filter(|r| r.options.health_check.is_some());
            if had_checks || new_checks.clone().next().is_some() {
                let checked = Arc::make_mut(&mut next.checked);
                checked.retain(|r| r.uri.host != host);
                checked.extend(new_checks.cloned());
            }
            let added = routes.by_path.len();
            let removed = match host {
                HostPattern::Any => {
                    let old = next.any_host.by_path.len();
                    next.any_host = Arc::new(routes);
                    old
                }
                HostPattern::Exact(host) => next.exact.set(&host, routes),
                HostPattern::Wildcard(suffix) => next.wildcard.set(&suffix, routes),
            };
            next.len = next.len + added - removed;
        }
        next
    }

    /// The routes that have an active health check.
    pub fn checked_routes(&self) -> &[Arc<Route>] {
        &self.checked
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table has no route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .flat_map(HostRoutes::routes)
            .chain(self.any_host.by_path.values())
    }

    /// Finds the route for a normalised host (lower-case, no port) and a request path.
    /// Exact host first, then wildcards walking up the domain, then any-host routes.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        // Route paths are kept lower-case (as gorouter's route keys): match a request path the
        // same way, copying it only when it has an upper-case letter.
        let lowered;
        let path = if path.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = path.to_ascii_lowercase();
            lowered.as_str()
        } else {
            path
        };
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
    use crate::routing::{Endpoint, EndpointSpec, RouteOptions, RouteUri, Source};

    fn route(uri: &str, backends: usize) -> Arc<Route> {
        let endpoints = (0..backends)
            .map(|i| {
                let backend = BackendConfig::plain(([127, 0, 0, 1], 9000 + i as u16).into());
                let spec = EndpointSpec::from_config(&backend, UpstreamProtocol::Http1);
                Arc::new(Endpoint::new(
                    spec,
                    Source::Config,
                    None,
                    Default::default(),
                ))
            })
            .collect();
        Arc::new(Route::new(
            RouteUri::parse(uri).unwrap(),
            RouteOptions::default(),
            endpoints,
            BalancerKind::RoundRobin,
            None,
        ))
    }

    fn found(table: &RouteTable, host: &str, path: &str) -> Option<String> {
        table.lookup(host, path).map(|route| route.uri.to_string())
    }

    /// Paths match ignoring case and one trailing `/`, as gorouter's route keys.
    #[test]
    fn paths_match_ignoring_case() {
        let table = RouteTable::new(vec![route("a.com", 1), route("a.com/Api/V2", 1)]);
        for path in ["/api/v2", "/API/V2", "/Api/v2/", "/api/V2/users"] {
            assert_eq!(
                found(&table, "a.com", path).as_deref(),
                Some("a.com/api/v2"),
                "{path}"
            );
        }
        assert_eq!(found(&table, "a.com", "/api").as_deref(), Some("a.com"));
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
    fn with_hosts_replaces_and_removes_only_named_hosts() {
        let table = RouteTable::new(vec![
            route("a.com", 1),
            route("a.com/x", 1),
            route("b.com", 1),
        ]);
        assert_eq!(table.len(), 3);
        let host = |h: &str| HostPattern::Exact(h.into());
        let next = table.with_hosts([
            (host("a.com"), PathRoutes::new([route("a.com/y", 1)])),
            (host("b.com"), PathRoutes::default()),
            (host("c.com"), PathRoutes::new([route("c.com", 1)])),
        ]);
        assert_eq!(next.len(), 2);
        assert_eq!(found(&next, "a.com", "/x"), None);
        assert_eq!(found(&next, "a.com", "/y").as_deref(), Some("a.com/y"));
        assert_eq!(found(&next, "b.com", "/"), None);
        assert_eq!(found(&next, "c.com", "/").as_deref(), Some("c.com"));
        assert_eq!(found(&table, "a.com", "/x").as_deref(), Some("a.com/x"));
    }

    #[test]
    fn checked_routes_follow_changes() {
        let checked = |uri: &str| {
            let mut route = Arc::try_unwrap(route(uri, 1)).unwrap();
            route.options.health_check = Some(crate::config::HealthCheck {
                path: "/health".into(),
                interval: crate::config::ConfigDuration(std::time::Duration::from_secs(1)),
                timeout: crate::config::ConfigDuration(std::time::Duration::from_secs(1)),
                rise: 1,
                fall: 1,
            });
            Arc::new(route)
        };
        let names = |table: &RouteTable| -> Vec<String> {
            let mut names: Vec<String> = table
                .checked_routes()
                .iter()
                .map(|r| r.uri.to_string())
                .collect();
            names.sort();
            names
        };
        let table = RouteTable::new(vec![
            checked("a.com"),
            checked("b.com/x"),
            route("c.com", 1),
        ]);
        assert_eq!(names(&table), ["a.com", "b.com/x"]);
        let host = |h: &str| HostPattern::Exact(h.into());
        let next = table.with_hosts([
            (host("a.com"), PathRoutes::new([route("a.com", 1)])),
            (host("c.com"), PathRoutes::new([checked("c.com")])),
        ]);
        assert_eq!(names(&next), ["b.com/x", "c.com"]);
        assert_eq!(
            names(&table),
            ["a.com", "b.com/x"],
            "the old snapshot is untouched"
        );
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
