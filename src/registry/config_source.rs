//! The config file as a route source: its `[[route]]` entries as [`StaticRoute`]s, re-read on
//! SIGHUP ([`reload_from_file`]) or, when `[registry] watch_config` is on, whenever the file
//! changes ([`watch_file`]). A file with an error changes nothing; each error is logged.

use super::{RouteStore, Ticker, spawn_every};
use crate::config::{self, Config, RouteConfig};
use crate::routing::{EndpointSpec, RouteOptions, RouteUri};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A route from the config file: never expires, and its options win over registrations'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// The route.
    pub uri: RouteUri,
    /// How it forwards.
    pub options: RouteOptions,
    /// The backends, in file order.
    pub backends: Vec<EndpointSpec>,
}

impl StaticRoute {
    /// A route from a validated `[[route]]` entry (`None` if its uri does not parse).
    pub fn from_config(route: &RouteConfig) -> Option<StaticRoute> {
        Some(StaticRoute {
            uri: RouteUri::parse(route.uri.get_ref()).ok()?,
            options: RouteOptions {
                strip_prefix: route.strip_prefix,
                balancer: route.balancer,
                hash_key: route.hash_key.clone(),
                route_service_url: (!route.route_service_url.is_empty())
                    .then(|| route.route_service_url.clone()),
                health_check: route.health_check.clone(),
                retry_statuses: route.retry_statuses.clone(),
                max_request_body: route.max_request_body,
                attempt_timeout: route.attempt_timeout.map(|timeout| timeout.0),
            },
            backends: route
                .backends
                .iter()
                .map(|b| EndpointSpec::from_config(b, route.protocol))
                .collect(),
        })
    }
}

/// The static routes of a validated config.
pub fn static_routes(config: &Config) -> Vec<StaticRoute> {
    config
        .routes
        .iter()
        .filter_map(StaticRoute::from_config)
        .collect()
}

/// Re-reads `path` and applies its routes to `store` as a difference. On an error the store
/// is left as it was and every error is logged with file, line and key.
pub fn reload_from_file(store: &RouteStore, path: &Path) -> Result<usize, config::ConfigErrors> {
    match config::load_file(path) {
        Ok(config) => {
            let defaults = (config.proxy.balancer, config.proxy.hash_key.clone());
            let changed = store.set_static(defaults, static_routes(&config));
            tracing::info!(
                file = %path.display(),
                routes = config.routes.len(),
                changed,
                "config routes reloaded"
            );
            Ok(changed)
        }
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!(%error, "config reload rejected; keeping the current routes");
            }
            Err(errors)
        }
    }
}

/// Reloads `path` into `store` whenever its modification time or size changes, checking every
/// `interval`, until the returned [`Ticker`] is dropped.
pub fn watch_file(
    store: Arc<RouteStore>,
    path: PathBuf,
    interval: Duration,
) -> std::io::Result<Ticker> {
    let stamp = |path: &Path| -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut last = stamp(&path);
    spawn_every("switchyard-watch", interval, move || {
        let now = stamp(&path);
        if now != last {
            last = now;
            let _ = reload_from_file(&store, &path);
        }
    })
}
