//! A route (uri + options) and its pool of endpoints.

use super::route_stats::RouteStats;
use super::{Lease, Maglev, RouteUri, Source};
use crate::config::HashKey;
use crate::config::{BackendConfig, BalancerKind, HealthCheck, UpstreamProtocol};
use crate::health::EndpointHealth;
use crate::target::{Target, Trust};
use http::HeaderValue;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counters an endpoint keeps across route-table snapshots.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Requests sent to this endpoint whose response has not ended yet.
    pub in_flight: AtomicUsize,
    /// Requests sent to this endpoint in total.
    pub requests: AtomicU64,
    /// Attempts to this endpoint that failed.
    pub failures: AtomicU64,
    /// Response body bytes from this endpoint sent to clients.
    pub bytes_out: AtomicU64,
}

/// The instance headers of an endpoint, built once (a clone per request is a refcount).
#[derive(Debug, Clone)]
pub struct InstanceHeaders {
    /// `X-CF-InstanceID`.
    pub instance_id: HeaderValue,
    /// `X-CF-ApplicationID`, when known.
    pub app_id: Option<HeaderValue>,
    /// `X-CF-InstanceIndex`, when known.
    pub instance_index: Option<HeaderValue>,
}

impl InstanceHeaders {
    fn new(instance_id: &str, app_id: &str, instance_index: &str) -> InstanceHeaders {
        let value = |text: &str| {
            (!text.is_empty())
                .then(|| HeaderValue::from_str(text).ok())
                .flatten()
        };
        InstanceHeaders {
            instance_id: value(instance_id).unwrap_or_else(|| HeaderValue::from_static("-")),
            app_id: value(app_id),
            instance_index: value(instance_index),
        }
    }
}

/// What an endpoint is: where it lives and what it says about itself (all but its counters).
/// Two registrations with equal specs are the same endpoint (a refresh, not a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Where to connect.
    pub address: SocketAddr,
    /// `Some(name)` to connect with TLS and verify the certificate for `name`.
    pub tls_name: Option<Arc<str>>,
    /// Upstream protocol.
    pub protocol: UpstreamProtocol,
    /// Application id (`X-CF-ApplicationID`).
    pub app_id: String,
    /// Instance id (`X-CF-InstanceID`); `address` when none was registered.
    pub instance_id: String,
    /// Instance index (`X-CF-InstanceIndex`).
    pub instance_index: String,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
}

impl EndpointSpec {
    /// The spec of a static backend entry.
    pub fn from_config(backend: &BackendConfig, protocol: UpstreamProtocol) -> EndpointSpec {
        let tls_name = backend.tls.then(|| {
            let name = backend.server_cert_domain_san.clone();
            Arc::from(name.unwrap_or_else(|| backend.address.ip().to_string()))
        });
        EndpointSpec {
            address: backend.address,
            tls_name,
            protocol,
            app_id: backend.app_id.clone(),
            instance_id: or_address(&backend.instance_id, backend.address),
            instance_index: backend.instance_index.clone(),
            tags: backend.tags.clone(),
        }
    }
}

impl EndpointSpec {
    /// A plain HTTP/1.1 endpoint on `127.0.0.1:port` with no instance data (unit tests).
    #[cfg(test)]
    pub(crate) fn loopback(port: u16) -> EndpointSpec {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        EndpointSpec {
            address,
            tls_name: None,
            protocol: UpstreamProtocol::Http1,
            app_id: String::new(),
            instance_id: address.to_string(),
            instance_index: String::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Where and how the router reaches this endpoint.
    pub fn target(&self) -> Target {
        Target {
            address: self.address,
            protocol: self.protocol,
            tls_name: self.tls_name.clone(),
            trust: Trust::Backends,
        }
    }
}

/// `id`, or the address when `id` is empty.
pub fn or_address(id: &str, address: SocketAddr) -> String {
    if id.is_empty() {
        address.to_string()
    } else {
        id.to_string()
    }
}

/// One backend instance of a route.
#[derive(Debug)]
pub struct Endpoint {
    /// What the endpoint is.
    pub spec: EndpointSpec,
    /// Where requests to it go (from `spec`).
    pub target: Target,
    /// The source that wrote it.
    pub source: Source,
    /// `Some` for endpoints that expire unless refreshed; `None` for config entries and
    /// endpoints whose source expires them (etcd's leases).
    pub lease: Option<Lease>,
    /// Live counters.
    pub stats: EndpointStats,
    /// Ejection, active-check state and latency, shared with every endpoint of the same
    /// backend on other routes.
    pub health: Arc<EndpointHealth>,
    /// Prebuilt `X-CF-*` headers.
    pub headers: InstanceHeaders,
}

impl Endpoint {
    /// An endpoint from `source` with fresh counters and the backend's `health` record.
    pub fn new(
        spec: EndpointSpec,
        source: Source,
        lease: Option<Lease>,
        health: Arc<EndpointHealth>,
    ) -> Endpoint {
        Endpoint {
            source,
            headers: InstanceHeaders::new(&spec.instance_id, &spec.app_id, &spec.instance_index),
            target: spec.target(),
            spec,
            lease,
            stats: EndpointStats::default(),
            health,
        }
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.stats.in_flight.load(Ordering::Relaxed)
    }
}

/// The endpoints of one route, with the round-robin cursor and, for the hash balancer, the
/// Maglev table.
#[derive(Debug, Default)]
pub struct Pool {
    /// Endpoints in registration order.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Round-robin position, shared by all requests on this route.
    pub cursor: AtomicUsize,
    /// Consistent-hash table (hash balancer only).
    pub maglev: Option<Maglev>,
}

impl Pool {
    /// A pool over these endpoints for `balancer`, its cursor starting at a random place (as
    /// gorouter's).
    pub fn new(endpoints: Vec<Arc<Endpoint>>, balancer: BalancerKind) -> Pool {
        let start = if endpoints.is_empty() {
            0
        } else {
            fastrand::usize(..endpoints.len())
        };
        let maglev = (balancer == BalancerKind::Hash)
            .then(|| Maglev::new(endpoints.iter().map(|e| e.spec.instance_id.as_str())));
        Pool {
            endpoints,
            cursor: AtomicUsize::new(start),
            maglev,
        }
    }

    /// True when the pool has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// How a route forwards, as the config file or a registration says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteOptions {
    /// Remove `uri.path` from the request path before forwarding.
    pub strip_prefix: bool,
    /// Balancer; `None` = the router's default.
    pub balancer: Option<BalancerKind>,
    /// What the hash balancer hashes; `None` = the router's default.
    pub hash_key: Option<HashKey>,
    /// Route service URL, when one is bound.
    pub route_service_url: Option<String>,
    /// Active health check of the endpoints.
    pub health_check: Option<HealthCheck>,
    /// Response statuses retried on another endpoint (idempotent requests only).
    pub retry_statuses: Vec<u16>,
    /// Largest request body; `None` = the router's default.
    pub max_request_body: Option<u64>,
    /// Time an endpoint has to answer an attempt; `None` = the router's default.
    pub attempt_timeout: Option<std::time::Duration>,
}

/// A route: where requests matching `uri` go and how.
#[derive(Debug)]
pub struct Route {
    /// The uri requests are matched against.
    pub uri: RouteUri,
    /// The balancer in effect.
    pub balancer: BalancerKind,
    /// What the hash balancer hashes, in effect.
    pub hash_key: Option<HashKey>,
    /// The route's options.
    pub options: RouteOptions,
    /// The endpoints.
    pub pool: Pool,
    /// Responses and latency, kept by the registry across table updates.
    pub stats: Arc<RouteStats>,
}

impl Route {
    /// A route over `endpoints`; `None` options fall back to `default_balancer` and
    /// `default_hash_key`.
    pub fn new(
        uri: RouteUri,
        options: RouteOptions,
        endpoints: Vec<Arc<Endpoint>>,
        default_balancer: BalancerKind,
        default_hash_key: Option<&HashKey>,
    ) -> Route {
        let balancer = options.balancer.unwrap_or(default_balancer);
        let hash_key = options
            .hash_key
            .clone()
            .or_else(|| default_hash_key.cloned());
        Route {
            uri,
            balancer,
            hash_key,
            pool: Pool::new(endpoints, balancer),
            options,
            stats: Arc::default(),
        }
    }

    /// The route with `stats` (its counts so far) instead of new ones.
    pub fn with_stats(mut self, stats: Arc<RouteStats>) -> Route {
        self.stats = stats;
        self
    }
}
