//! A route (uri + options) and its pool of endpoints.

use super::RouteUri;
use crate::config::{BackendConfig, BalancerKind, UpstreamProtocol};
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

/// One backend instance.
#[derive(Debug)]
pub struct Endpoint {
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
    /// Live counters.
    pub stats: EndpointStats,
    /// Prebuilt `X-CF-*` headers.
    pub headers: InstanceHeaders,
}

impl Endpoint {
    /// Builds an endpoint from a static backend entry.
    pub fn from_config(backend: &BackendConfig, protocol: UpstreamProtocol) -> Endpoint {
        let tls_name = backend.tls.then(|| {
            let name = backend.server_cert_domain_san.clone();
            Arc::from(name.unwrap_or_else(|| backend.address.ip().to_string()))
        });
        let instance_id = if backend.instance_id.is_empty() {
            backend.address.to_string()
        } else {
            backend.instance_id.clone()
        };
        Endpoint {
            headers: InstanceHeaders::new(&instance_id, &backend.app_id, &backend.instance_index),
            address: backend.address,
            tls_name,
            protocol,
            app_id: backend.app_id.clone(),
            instance_id,
            instance_index: backend.instance_index.clone(),
            tags: backend.tags.clone(),
            stats: EndpointStats::default(),
        }
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.stats.in_flight.load(Ordering::Relaxed)
    }
}

/// The endpoints of one route, with the round-robin cursor.
#[derive(Debug, Default)]
pub struct Pool {
    /// Endpoints in registration order.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Round-robin position, shared by all requests on this route.
    pub cursor: AtomicUsize,
}

impl Pool {
    /// A pool over these endpoints, its cursor starting at a random place (as gorouter's).
    pub fn new(endpoints: Vec<Arc<Endpoint>>) -> Pool {
        let start = if endpoints.is_empty() {
            0
        } else {
            fastrand::usize(..endpoints.len())
        };
        Pool {
            endpoints,
            cursor: AtomicUsize::new(start),
        }
    }

    /// True when the pool has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// A route: where requests matching `uri` go and how.
#[derive(Debug)]
pub struct Route {
    /// The uri requests are matched against.
    pub uri: RouteUri,
    /// Remove `uri.path` from the request path before forwarding.
    pub strip_prefix: bool,
    /// Balancer for this route.
    pub balancer: BalancerKind,
    /// Route service URL, when one is bound.
    pub route_service_url: Option<String>,
    /// The endpoints.
    pub pool: Pool,
}
