//! The service registry: the seed article's four calls (add, delete, failure, lookup) as one
//! trait, [`Registry`], and the built-in implementation, [`RouteStore`], which every source
//! feeds: the config file (`config_source`: reload on SIGHUP or file change, applied as a
//! difference), registration messages (`message`: gorouter's JSON, from the admin API) and
//! expiry (`ticker` runs the pruner). The request path reads an immutable snapshot.

mod config_source;
mod etcd_source;
mod feed;
mod message;
mod nats_source;
mod source_thread;
mod store;
mod ticker;

pub use config_source::{StaticRoute, reload_from_file, static_routes, watch_file};
pub use etcd_source::spawn_etcd;
pub use feed::{Action, Feed, SourceStats};
pub use message::{MessageError, RegistryMessage, parse_messages};
pub use nats_source::{StartMessage, spawn_nats};
pub use source_thread::SourceHandle;
pub use store::{RouteDefaults, RouteStore, StoreSettings};
pub use ticker::{Ticker, spawn_every};

use crate::routing::{EndpointSpec, Route, RouteOptions, RouteTable, RouteUri, Source};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// An endpoint to add to a route (or to refresh, when an equal one is there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The route.
    pub uri: RouteUri,
    /// The endpoint.
    pub endpoint: EndpointSpec,
    /// Who registered it.
    pub source: Source,
    /// Time to live unless refreshed; `None` = until deleted.
    pub ttl: Option<Duration>,
    /// Route options the registration asks for (balancer, hash key, route service); the last
    /// registration of a route wins, and a config-file route's own options win over all.
    pub options: RouteOptions,
}

/// One change to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Adds or refreshes an endpoint.
    Add(Box<Registration>),
    /// Removes the endpoint at `address` from `uri`.
    Delete {
        /// The route.
        uri: RouteUri,
        /// The endpoint's address.
        address: SocketAddr,
    },
}

/// What a batch of changes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// New endpoints.
    pub added: usize,
    /// Endpoints whose data changed.
    pub updated: usize,
    /// Endpoints only refreshed (lease renewed).
    pub refreshed: usize,
    /// Endpoints removed.
    pub removed: usize,
}

/// A service registry. The router calls `lookup` on every request (and `delete` on a
/// registered endpoint that keeps failing); sources call `apply`. Implementations must make `lookup` cheap and lock-free
/// (the built-in [`RouteStore`] reads an immutable snapshot).
pub trait Registry: Send + Sync + 'static {
    /// Applies `changes` as one step: a request sees all of them or none.
    fn apply(&self, changes: Vec<Change>) -> Applied;

    /// Adds or refreshes one endpoint.
    fn add(&self, registration: Registration) -> Applied {
        self.apply(vec![Change::Add(Box::new(registration))])
    }

    /// Removes one endpoint.
    fn delete(&self, uri: RouteUri, address: SocketAddr) -> Applied {
        self.apply(vec![Change::Delete { uri, address }])
    }

    /// The route for a normalised host (lower-case, no port) and a request path.
    fn lookup(&self, host: &str, path: &str) -> Option<Arc<Route>>;

    /// The whole table as it is now (for `/routes` and `/metrics`).
    fn snapshot(&self) -> Arc<RouteTable>;

    /// A source lost (`false`) or regained (`true`) its connection. While a source is away its
    /// endpoints must not expire, since their refreshes cannot arrive; on its return their
    /// leases start afresh (gorouter does both for NATS). The default does nothing.
    fn source_connected(&self, source: Source, connected: bool) {
        let _ = (source, connected);
    }
}

/// The ports of the endpoints `store` routes `host` and `path` to (tests).
#[cfg(test)]
fn ports(store: &RouteStore, host: &str, path: &str) -> Vec<u16> {
    store.lookup(host, path).map_or(Vec::new(), |route| {
        route
            .pool
            .endpoints
            .iter()
            .map(|e| e.spec.address.port())
            .collect()
    })
}
