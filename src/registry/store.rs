//! The built-in registry: every route's endpoints by source (config file, registrations), and
//! the snapshot the request path reads.
//!
//! Writers change the state under a mutex and mark the touched hosts dirty; the snapshot is then
//! republished by copying the table's host map (reference counts) and rebuilding only the dirty
//! hosts. Concurrent writers coalesce: whoever publishes takes every pending change along, and
//! the others find their change already visible. A writer returns once its change is visible.
//! Refreshing an unchanged endpoint only renews its lease and publishes nothing.

use super::{Applied, Change, Registration, Registry, StaticRoute};
use crate::clock::now_ms;
use crate::config::BalancerKind;
use crate::config::HashKey;
use crate::health::HealthBook;
use crate::routing::{
    Endpoint, EndpointSpec, HostPattern, Lease, PathRoutes, Route, RouteOptions, RouteStats,
    RouteTable, RouteUri, Source,
};
use arc_swap::ArcSwap;
use indexmap::IndexMap;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Defaults and policies the store applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Balancer of routes that neither the config nor a registration sets.
    pub default_balancer: BalancerKind,
    /// Hash key of hash-balanced routes that do not set one.
    pub default_hash_key: Option<HashKey>,
}

impl Default for StoreSettings {
    /// Round-robin, no hash key.
    fn default() -> Self {
        StoreSettings {
            default_balancer: BalancerKind::RoundRobin,
            default_hash_key: None,
        }
    }
}

/// The router-wide defaults a route falls back on: balancer and hash key.
pub type RouteDefaults = (BalancerKind, Option<HashKey>);

/// One route's sources.
#[derive(Debug)]
struct RouteEntry {
    uri: RouteUri,
    /// From the config file, with its endpoints.
    config: Option<(StaticRoute, Vec<Arc<Endpoint>>)>,
    /// From registrations, by address, in registration order.
    registered: IndexMap<SocketAddr, Arc<Endpoint>>,
    /// Options of the last registration.
    options: RouteOptions,
    /// The route as published; `None` once something changed.
    built: Option<Arc<Route>>,
    /// The route's counts, kept while the entry lives.
    stats: Arc<RouteStats>,
}

impl RouteEntry {
    fn new(uri: RouteUri) -> RouteEntry {
        RouteEntry {
            uri,
            config: None,
            registered: IndexMap::new(),
            options: RouteOptions::default(),
            built: None,
            stats: Arc::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.config.is_none() && self.registered.is_empty()
    }

    /// The route: config endpoints first, then registered ones at other addresses. Options
    /// come from the config file when it names the route, else from the last registration.
    fn build(&mut self, defaults: &RouteDefaults) -> Arc<Route> {
        if let Some(route) = &self.built {
            return route.clone();
        }
        let (options, static_endpoints) = match &self.config {
            Some((config, endpoints)) => (&config.options, endpoints.as_slice()),
            None => (&self.options, &[][..]),
        };
        let mut endpoints = static_endpoints.to_vec();
        endpoints.extend(
            self.registered
                .iter()
                .filter(|(address, _)| {
                    !static_endpoints.iter().any(|e| e.spec.address == **address)
                })
                .map(|(_, endpoint)| endpoint.clone()),
        );
        let route = Arc::new(
            Route::new(
                self.uri.clone(),
                options.clone(),
                endpoints,
                defaults.0,
                defaults.1.as_ref(),
            )
            .with_stats(self.stats.clone()),
        );
        self.built = Some(route.clone());
        route
    }
}

/// Everything behind the store's mutex.
#[derive(Debug)]
struct State {
    settings: StoreSettings,
    /// Host pattern -> path -> entry.
    hosts: HashMap<HostPattern, HashMap<String, RouteEntry>>,
    dirty: HashSet<HostPattern>,
    /// One health record per backend, shared by its endpoints on every route.
    health: HealthBook,
    /// Bumped by every change that needs publishing.
    generation: u64,
    /// Sources that lost their connection: their endpoints do not expire meanwhile.
    away: [bool; Source::ALL.len()],
}

impl State {
    /// The entry of `uri`, made if missing. Looks up before inserting: a refresh (the common
    /// call, every heartbeat) then copies no strings.
    fn entry(&mut self, uri: &RouteUri) -> &mut RouteEntry {
        let known = self
            .hosts
            .get(&uri.host)
            .is_some_and(|paths| paths.contains_key(&uri.path));
        if !known {
            self.hosts
                .entry(uri.host.clone())
                .or_default()
                .insert(uri.path.clone(), RouteEntry::new(uri.clone()));
        }
        self.existing(uri)
            .expect("the entry exists: found or inserted above")
    }

    fn existing(&mut self, uri: &RouteUri) -> Option<&mut RouteEntry> {
        self.hosts.get_mut(&uri.host)?.get_mut(&uri.path)
    }

    /// Marks `uri` changed and drops its entry if nothing feeds it any more.
    fn touched(&mut self, uri: &RouteUri) {
        self.dirty.insert(uri.host.clone());
        self.generation += 1;
        let Some(paths) = self.hosts.get_mut(&uri.host) else {
            return;
        };
        if let Some(entry) = paths.get_mut(&uri.path) {
            entry.built = None;
            if entry.is_empty() {
                paths.remove(&uri.path);
            }
        }
        if paths.is_empty() {
            self.hosts.remove(&uri.host);
        }
    }

    fn add(&mut self, registration: Registration, applied: &mut Applied) {
        let Registration {
            uri,
            endpoint: spec,
            source,
            ttl,
            options,
        } = registration;
        let entry = self.entry(&uri);
        let mut changed = false;
        if entry.options != options {
            entry.options = options;
            changed = true;
        }
        let address = spec.address;
        match entry.registered.get(&address) {
            Some(existing)
                if existing.spec == spec
                    && existing.source == source
                    && existing.lease.as_ref().map(|l| l.ttl) == ttl =>
            {
                if let Some(lease) = &existing.lease {
                    lease.refresh();
                }
                applied.refreshed += 1;
            }
            previous => {
                if previous.is_some() {
                    applied.updated += 1;
                } else {
                    applied.added += 1;
                }
                let health = self.health.record(&spec.target());
                let endpoint = Arc::new(Endpoint::new(spec, source, ttl.map(Lease::new), health));
                self.entry(&uri).registered.insert(address, endpoint);
                changed = true;
            }
        }
        if changed {
            self.touched(&uri);
        }
    }

    fn delete(&mut self, uri: &RouteUri, address: SocketAddr, applied: &mut Applied) {
        let Some(entry) = self.existing(uri) else {
            return;
        };
        if entry.registered.shift_remove(&address).is_some() {
            applied.removed += 1;
            self.touched(uri);
        }
    }

    /// Removes registered endpoints whose lease ran out at `now`, except those of a source
    /// that is away; returns how many.
    fn prune(&mut self, now: u64) -> usize {
        let mut expired_uris = Vec::new();
        let mut removed = 0;
        let away = self.away;
        for paths in self.hosts.values_mut() {
            for entry in paths.values_mut() {
                let before = entry.registered.len();
                entry.registered.retain(|_, e| {
                    away[e.source.index()]
                        || !e.lease.as_ref().is_some_and(|lease| lease.expired(now))
                });
                if entry.registered.len() != before {
                    removed += before - entry.registered.len();
                    expired_uris.push(entry.uri.clone());
                }
            }
        }
        for uri in &expired_uris {
            self.touched(uri);
        }
        removed
    }

    /// Replaces the config file's routes, keeping every unchanged route and endpoint as it is.
    fn set_static(&mut self, routes: Vec<StaticRoute>) -> usize {
        let mut changed = 0;
        let mut keep = HashSet::default();
        for route in routes {
            keep.insert(route.uri.clone());
            let uri = route.uri.clone();
            let unchanged = self
                .existing(&uri)
                .and_then(|entry| entry.config.as_ref())
                .is_some_and(|(old, _)| *old == route);
            if unchanged {
                continue;
            }
            let old = self
                .existing(&uri)
                .and_then(|entry| entry.config.take())
                .map_or_else(Vec::new, |(_, endpoints)| endpoints);
            let endpoints = route
                .backends
                .iter()
                .map(|spec| self.reuse_or_new(&old, spec))
                .collect();
            self.entry(&uri).config = Some((route, endpoints));
            self.touched(&uri);
            changed += 1;
        }
        let gone: Vec<RouteUri> = self
            .hosts
            .values()
            .flat_map(|paths| paths.values())
            .filter(|entry| entry.config.is_some() && !keep.contains(&entry.uri))
            .map(|entry| entry.uri.clone())
            .collect();
        for uri in gone {
            if let Some(entry) = self.existing(&uri) {
                entry.config = None;
            }
            self.touched(&uri);
            changed += 1;
        }
        changed
    }

    /// The same endpoint (counters and all) if `old` has one with this spec, else a new one.
    fn reuse_or_new(&mut self, old: &[Arc<Endpoint>], spec: &EndpointSpec) -> Arc<Endpoint> {
        if let Some(endpoint) = old.iter().find(|endpoint| endpoint.spec == *spec) {
            return endpoint.clone();
        }
        let health = self.health.record(&spec.target());
        Arc::new(Endpoint::new(spec.clone(), Source::Config, None, health))
    }

    /// Marks every route changed (after a default changed).
    fn touch_all(&mut self) {
        for (host, paths) in &mut self.hosts {
            self.dirty.insert(host.clone());
            for entry in paths.values_mut() {
                entry.built = None;
            }
        }
        self.generation += 1;
    }

    /// The dirty hosts' routes as they are now.
    fn take_dirty(&mut self) -> Vec<(HostPattern, PathRoutes)> {
        let defaults = (
            self.settings.default_balancer,
            self.settings.default_hash_key.clone(),
        );
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|host| {
                let routes = match self.hosts.get_mut(&host) {
                    Some(paths) => PathRoutes::new(paths.values_mut().map(|e| e.build(&defaults))),
                    None => PathRoutes::default(),
                };
                (host, routes)
            })
            .collect()
    }
}

/// The built-in registry (see the module docs).
#[derive(Debug)]
pub struct RouteStore {
    table: ArcSwap<RouteTable>,
    state: Mutex<State>,
    publishing: Mutex<()>,
    published: AtomicU64,
}

impl RouteStore {
    /// A store holding `routes` from the config file.
    pub fn new(settings: StoreSettings, routes: Vec<StaticRoute>) -> RouteStore {
        let defaults = (settings.default_balancer, settings.default_hash_key.clone());
        let store = RouteStore {
            table: ArcSwap::default(),
            state: Mutex::new(State {
                settings,
                hosts: HashMap::default(),
                dirty: HashSet::default(),
                health: HealthBook::default(),
                generation: 0,
                away: [false; Source::ALL.len()],
            }),
            publishing: Mutex::new(()),
            published: AtomicU64::new(0),
        };
        store.set_static(defaults, routes);
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the config file's routes with `routes` as a difference: unchanged routes keep
    /// their endpoints, pools and counters. Returns how many routes changed.
    pub fn set_static(&self, defaults: RouteDefaults, routes: Vec<StaticRoute>) -> usize {
        let (changed, generation) = {
            let mut state = self.lock();
            let (balancer, hash_key) = defaults;
            if state.settings.default_balancer != balancer
                || state.settings.default_hash_key != hash_key
            {
                state.settings.default_balancer = balancer;
                state.settings.default_hash_key = hash_key;
                state.touch_all();
            }
            let changed = state.set_static(routes);
            (changed, state.generation)
        };
        self.publish(generation);
        changed
    }

    /// Removes every registered endpoint whose lease ran out; returns how many.
    pub fn prune(&self) -> usize {
        let (removed, generation) = {
            let mut state = self.lock();
            let removed = state.prune(now_ms());
            (removed, state.generation)
        };
        if removed > 0 {
            self.publish(generation);
            tracing::info!(removed, "expired endpoints pruned");
        }
        removed
    }

    /// Makes every change up to `generation` visible to requests.
    fn publish(&self, generation: u64) {
        let _publisher = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        if self.published.load(Ordering::Acquire) >= generation {
            return;
        }
        let (changes, generation) = {
            let mut state = self.lock();
            (state.take_dirty(), state.generation)
        };
        let next = self.table.load().with_hosts(changes);
        self.table.store(Arc::new(next));
        self.published.store(generation, Ordering::Release);
    }
}

impl Registry for RouteStore {
    fn apply(&self, changes: Vec<Change>) -> Applied {
        let mut applied = Applied::default();
        let generation = {
            let mut state = self.lock();
            for change in changes {
                match change {
                    Change::Add(registration) => state.add(*registration, &mut applied),
                    Change::Delete { uri, address } => state.delete(&uri, address, &mut applied),
                }
            }
            state.generation
        };
        self.publish(generation);
        applied
    }

    fn lookup(&self, host: &str, path: &str) -> Option<Arc<Route>> {
        self.table.load().lookup(host, path).cloned()
    }

    fn snapshot(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    fn source_connected(&self, source: Source, connected: bool) {
        let mut state = self.lock();
        state.away[source.index()] = !connected;
        if connected {
            let leases = state
                .hosts
                .values()
                .flat_map(|paths| paths.values())
                .flat_map(|entry| entry.registered.values())
                .filter(|endpoint| endpoint.source == source)
                .filter_map(|endpoint| endpoint.lease.as_ref());
            leases.for_each(Lease::refresh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    fn spec(port: u16) -> EndpointSpec {
        EndpointSpec::loopback(port)
    }

    fn registration(uri: &str, port: u16, ttl: Option<Duration>) -> Change {
        registration_from(Source::Admin, uri, port, ttl)
    }

    fn registration_from(source: Source, uri: &str, port: u16, ttl: Option<Duration>) -> Change {
        Change::Add(Box::new(Registration {
            uri: RouteUri::parse(uri).unwrap(),
            endpoint: spec(port),
            source,
            ttl,
            options: RouteOptions::default(),
        }))
    }

    fn store(routes: Vec<StaticRoute>) -> RouteStore {
        let settings = StoreSettings::default();
        RouteStore::new(settings, routes)
    }

    fn static_route(uri: &str, ports: &[u16]) -> StaticRoute {
        StaticRoute {
            uri: RouteUri::parse(uri).unwrap(),
            options: RouteOptions::default(),
            backends: ports.iter().map(|&p| spec(p)).collect(),
        }
    }

    use crate::registry::ports;

    #[test]
    fn routes_share_the_health_of_a_backend_across_sources_and_reloads() {
        let store = store(vec![
            static_route("a.test", &[1, 2]),
            static_route("b.test", &[1]),
        ]);
        store.apply(vec![registration(
            "c.test",
            1,
            Some(Duration::from_secs(60)),
        )]);
        let health = |uri: &str, port: u16| {
            let route = store.lookup(uri, "/").unwrap();
            let endpoint = route
                .pool
                .endpoints
                .iter()
                .find(|e| e.spec.address.port() == port);
            endpoint.unwrap().health.clone()
        };
        let shared = health("a.test", 1);
        assert!(Arc::ptr_eq(&shared, &health("b.test", 1)));
        assert!(Arc::ptr_eq(&shared, &health("c.test", 1)));
        assert!(!Arc::ptr_eq(&shared, &health("a.test", 2)));
        // A reload that changes a.test keeps the backend's record.
        let settings = StoreSettings::default();
        let defaults = (settings.default_balancer, settings.default_hash_key);
        store.set_static(defaults, vec![static_route("a.test", &[1, 3])]);
        assert!(Arc::ptr_eq(&shared, &health("a.test", 1)));
    }

    #[test]
    fn add_refresh_delete() {
        let store = store(Vec::new());
        let applied = store.apply(vec![
            registration("a.com", 1, None),
            registration("a.com", 2, None),
        ]);
        assert_eq!(applied.added, 2);
        assert_eq!(ports(&store, "a.com", "/"), [1, 2]);
        let before = store.snapshot();
        let applied = store.apply(vec![registration("a.com", 1, None)]);
        assert_eq!(applied.refreshed, 1);
        assert!(
            Arc::ptr_eq(&before, &store.snapshot()),
            "a refresh republished"
        );
        store.delete(RouteUri::parse("a.com").unwrap(), spec(1).address);
        assert_eq!(ports(&store, "a.com", "/"), [2]);
        store.delete(RouteUri::parse("a.com").unwrap(), spec(2).address);
        assert!(
            store.lookup("a.com", "/").is_none(),
            "an emptied route is removed"
        );
        assert_eq!(store.snapshot().len(), 0);
    }

    #[test]
    fn expired_leases_are_pruned_and_static_routes_stay() {
        let store = store(vec![static_route("a.com", &[1])]);
        store.apply(vec![
            registration("a.com", 2, Some(Duration::from_millis(1))),
            registration("b.com", 3, Some(Duration::from_millis(1))),
            registration("b.com", 4, Some(Duration::from_secs(60))),
        ]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.prune(), 2);
        assert_eq!(ports(&store, "a.com", "/"), [1]);
        assert_eq!(ports(&store, "b.com", "/"), [4]);
    }

    #[test]
    fn a_source_away_keeps_its_endpoints_and_they_start_afresh_on_its_return() {
        let store = store(Vec::new());
        let ttl = Some(Duration::from_millis(200));
        store.apply(vec![
            registration_from(Source::Nats, "a.com", 1, ttl),
            registration_from(Source::Admin, "a.com", 2, ttl),
        ]);
        store.source_connected(Source::Nats, false);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(store.prune(), 1, "only the admin endpoint expires");
        assert_eq!(ports(&store, "a.com", "/"), [1]);
        store.source_connected(Source::Nats, true);
        assert_eq!(store.prune(), 0, "renewed on return");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(store.prune(), 1, "expires once it is not refreshed");
        assert!(store.lookup("a.com", "/").is_none());
    }

    #[test]
    fn a_registration_from_another_source_takes_the_endpoint_over() {
        let store = store(Vec::new());
        let ttl = Some(Duration::from_secs(10));
        let applied = store.apply(vec![
            registration_from(Source::Admin, "a.com", 1, ttl),
            registration_from(Source::Nats, "a.com", 1, ttl),
            registration_from(Source::Nats, "a.com", 1, ttl),
        ]);
        assert_eq!(
            (applied.added, applied.updated, applied.refreshed),
            (1, 1, 1)
        );
        let route = store.lookup("a.com", "/").unwrap();
        assert_eq!(route.pool.endpoints[0].source, Source::Nats);
    }

    #[test]
    fn reload_keeps_unchanged_routes_and_endpoints() {
        let store = store(vec![
            static_route("a.com", &[1, 2]),
            static_route("b.com", &[3]),
        ]);
        let a = store.lookup("a.com", "/").unwrap();
        let b = store.lookup("b.com", "/").unwrap();
        let changed = store.set_static(
            (BalancerKind::RoundRobin, None),
            vec![
                static_route("a.com", &[1, 2]),
                static_route("b.com", &[3, 4]),
            ],
        );
        assert_eq!(changed, 1);
        assert!(Arc::ptr_eq(&a, &store.lookup("a.com", "/").unwrap()));
        let b2 = store.lookup("b.com", "/").unwrap();
        assert!(Arc::ptr_eq(&b.pool.endpoints[0], &b2.pool.endpoints[0]));
        assert_eq!(ports(&store, "b.com", "/"), [3, 4]);
        store.set_static(
            (BalancerKind::RoundRobin, None),
            vec![static_route("b.com", &[3])],
        );
        assert!(store.lookup("a.com", "/").is_none());
    }

    #[test]
    fn registrations_join_static_routes_and_outlive_their_removal() {
        let store = store(vec![static_route("a.com", &[1])]);
        store.apply(vec![
            registration("a.com", 1, None),
            registration("a.com", 2, None),
        ]);
        assert_eq!(ports(&store, "a.com", "/"), [1, 2], "no duplicate address");
        store.set_static((BalancerKind::RoundRobin, None), Vec::new());
        assert_eq!(ports(&store, "a.com", "/"), [1, 2]);
    }

    #[test]
    fn default_balancer_change_rebuilds_routes() {
        let store = store(vec![static_route("a.com", &[1])]);
        store.set_static(
            (BalancerKind::Random, None),
            vec![static_route("a.com", &[1])],
        );
        assert_eq!(
            store.lookup("a.com", "/").unwrap().balancer,
            BalancerKind::Random
        );
    }
}
