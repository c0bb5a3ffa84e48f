//! Starting and stopping a whole router: listeners, worker threads, admin API, registry.
//! This is the embedding entry point: `RunningRouter::start(config)`, or
//! `RunningRouter::builder(config)` to plug in your own registry or route extractor.

use crate::access_log::{AccessLog, Destination};
use crate::admin;
use crate::checker;
use crate::config::Config;
use crate::health::EjectionPolicy;
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::Metrics;
use crate::proxy::{
    HostAndPath, Proxy, ProxySettings, RetryBudget, RetrySettings, RouteExtractor, RouteServices,
    TraceSettings,
};
use crate::registry::{
    self, Feed, Registry, RouteStore, SourceHandle, SourceStats, StartMessage, StoreSettings,
    Ticker, spawn_every, static_routes,
};
use crate::route_service::{Resolver, Signer};
use crate::routing::Source;
use crate::server::{ListenError, ServeSettings, WorkerListeners, bind_shared, spawn_worker};
use crate::tls::{self, BackendTls, TlsError, UpstreamTls};
use crate::upstream::{Upstream, UpstreamSettings};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// Why a router could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be opened (port in use, bad address).
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// A certificate, key or CA file could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The access log file could not be opened.
    #[error("access_log.path {path}: {error}")]
    AccessLog {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

/// A router that is serving.
pub struct RunningRouter {
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    lifecycle: Arc<Lifecycle>,
    registry: Arc<dyn Registry>,
    store: Option<Arc<RouteStore>>,
    drain_wait: Duration,
    workers: Vec<JoinHandle<()>>,
    admin_thread: Option<JoinHandle<()>>,
    access_log: Option<Arc<AccessLog>>,
    /// The config file's text as the router started with it (to tell what a reload leaves out).
    config_text: String,
    _sources: Vec<SourceHandle>,
    _chores: Vec<Ticker>,
}

/// A router to start, with the parts a library user may replace.
pub struct RouterBuilder {
    config: Config,
    registry: Option<Arc<dyn Registry>>,
    extractor: Arc<dyn RouteExtractor>,
}

impl RouterBuilder {
    /// Routes with `registry` instead of the built-in [`RouteStore`]. The config file's
    /// `[[route]]` entries, their reload and expiry pruning are then the registry's business;
    /// the admin API's register/unregister call its [`Registry::apply`].
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> RouterBuilder {
        self.registry = Some(registry);
        self
    }

    /// Looks routes up by what `extractor` takes from each request (default: host and path).
    pub fn extractor(mut self, extractor: Arc<dyn RouteExtractor>) -> RouterBuilder {
        self.extractor = extractor;
        self
    }

    /// Opens the listeners and starts serving.
    pub fn start(self) -> Result<RunningRouter, StartError> {
        RunningRouter::start_parts(self)
    }
}

/// The built-in registry with the config's routes, its pruner and (if asked) the file watch.
fn start_store(config: &Config) -> std::io::Result<(Arc<RouteStore>, Vec<Ticker>)> {
    let store = Arc::new(RouteStore::new(
        store_settings(config),
        static_routes(config),
    ));
    let pruned = Arc::downgrade(&store);
    let mut chores = vec![spawn_every(
        "switchyard-prune",
        config.registry.prune_interval.0,
        move || {
            if let Some(store) = pruned.upgrade() {
                store.prune();
            }
        },
    )?];
    if config.registry.watch_config && config.source.path.is_file() {
        chores.push(registry::watch_file(
            store.clone(),
            config.source.path.clone(),
            config.registry.watch_interval.0,
        )?);
    }
    Ok((store, chores))
}

/// The route sources beside the config file: the admin API's feed, and NATS and etcd when
/// configured, all feeding `registry`.
struct Sources {
    admin: Arc<Feed>,
    stats: Vec<Arc<SourceStats>>,
    running: Vec<SourceHandle>,
}

fn start_sources(
    config: &Config,
    registry: &Arc<dyn Registry>,
    http: Option<SocketAddr>,
) -> std::io::Result<Sources> {
    let stale = config.registry.stale_threshold.0;
    let admin = Arc::new(Feed::new(registry.clone(), Source::Admin, Some(stale)));
    let mut stats = vec![admin.stats().clone()];
    let mut running = Vec::new();
    if let Some(nats) = &config.registry.nats {
        let feed = Feed::new(registry.clone(), Source::Nats, Some(stale));
        stats.push(feed.stats().clone());
        let start = StartMessage::new(nats, http.map(|address| address.ip()), stale);
        running.push(registry::spawn_nats(
            nats,
            |p| config.resolve(p),
            feed,
            start,
        )?);
    }
    if let Some(etcd) = &config.registry.etcd {
        let feed = Feed::new(registry.clone(), Source::Etcd, None);
        stats.push(feed.stats().clone());
        running.push(registry::spawn_etcd(etcd, feed)?);
    }
    Ok(Sources {
        admin,
        stats,
        running,
    })
}

/// The access log, when `[access_log] enabled`.
fn start_access_log(config: &Config) -> Result<Option<Arc<AccessLog>>, StartError> {
    let settings = &config.access_log;
    if !settings.enabled {
        return Ok(None);
    }
    let destination = match settings.path.as_os_str() {
        path if path == "-" => Destination::Stdout,
        _ => Destination::File(config.resolve(&settings.path)),
    };
    let path = settings.path.display().to_string();
    let log = AccessLog::start(destination, settings.format)
        .map_err(|error| StartError::AccessLog { path, error })?;
    Ok(Some(Arc::new(log)))
}

fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl RunningRouter {
    /// Opens the listeners and starts serving `config` with the built-in registry.
    pub fn start(config: Config) -> Result<RunningRouter, StartError> {
        RunningRouter::builder(config).start()
    }

    /// A router for `config` whose parts can be replaced before it starts.
    pub fn builder(config: Config) -> RouterBuilder {
        RouterBuilder {
            config,
            registry: None,
            extractor: Arc::new(HostAndPath),
        }
    }

    fn start_parts(parts: RouterBuilder) -> Result<RunningRouter, StartError> {
        let config = parts.config;
        let workers = worker_count(config.server.workers);
        let http = match config.listen.http {
            Some(address) => bind_shared("listen.http", address, workers)?,
            None => Vec::new(),
        };
        let https = match &config.listen.https {
            Some(address) => bind_shared("listen.https", address.get_ref().0, workers)?,
            None => Vec::new(),
        };
        let acceptor = match &config.tls {
            Some(tls_config) if !https.is_empty() => {
                let certs = tls_config
                    .certs
                    .iter()
                    .map(|c| {
                        let c = c.get_ref();
                        tls::load_certified_key(&config.resolve(&c.cert), &config.resolve(&c.key))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(TlsAcceptor::from(tls::server_config(certs)))
            }
            _ => None,
        };
        let admin_listener = match config.listen.admin {
            Some(address) => Some(bind_shared("listen.admin", address, 1)?.remove(0)),
            None => None,
        };
        let roots = match &config.proxy.backend_ca_file {
            Some(path) => Some(tls::load_roots(&config.resolve(path))?),
            None => None,
        };
        let route_service_roots = match &config.route_services.ca_file {
            Some(path) => Some(tls::load_roots(&config.resolve(path))?),
            None => None,
        };

        let local = |l: &Vec<std::net::TcpListener>| l.first().and_then(|l| l.local_addr().ok());
        let (http_addr, https_addr) = (local(&http), local(&https));
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let (registry, store, mut chores) = match parts.registry {
            Some(registry) => (registry, None, Vec::new()),
            None => {
                let (store, chores) = start_store(&config)?;
                (store.clone() as Arc<dyn Registry>, Some(store), chores)
            }
        };
        let sources = start_sources(&config, &registry, http_addr)?;
        let access_log = start_access_log(&config)?;
        let lifecycle = Lifecycle::new();
        let metrics = Arc::new(Metrics::new(config.admin.metrics_route_series));
        let settings = Arc::new(ServeSettings::new(&config.server));
        let upstream_settings = upstream_settings(&config);
        let backend_tls = UpstreamTls {
            backends: BackendTls::new(roots),
            route_services: BackendTls::new(route_service_roots),
        };
        // Health probes get their own connections and counters, so they never skew the
        // reuse ratio of client traffic.
        let probes = Upstream::new(
            upstream_settings.clone(),
            backend_tls.clone(),
            Arc::new(Metrics::default()),
        );
        chores.push(checker::spawn_checker(registry.clone(), probes)?);
        let upstream = Upstream::new(upstream_settings, backend_tls, metrics.clone());
        let proxy = Arc::new(Proxy::new(
            registry.clone(),
            parts.extractor,
            upstream,
            ProxySettings {
                access_log: access_log.clone(),
                ..proxy_settings(&config)
            },
            metrics.clone(),
        ));

        let mut http = http.into_iter();
        let mut https = https.into_iter();
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let listeners = WorkerListeners {
                http: http.next(),
                https: https.next().zip(acceptor.clone()),
            };
            handles.push(spawn_worker(
                index,
                listeners,
                proxy.clone(),
                settings.clone(),
                lifecycle.clone(),
                config.server.drain_timeout.0,
            )?);
        }
        let admin_thread = match admin_listener {
            Some(listener) => Some(admin::spawn(
                listener,
                admin::AdminState {
                    feed: sources.admin.clone(),
                    sources: sources.stats.clone(),
                    access_log: access_log.clone(),
                    lifecycle: lifecycle.clone(),
                    token: config
                        .admin
                        .effective_token(|p| config.resolve(p))
                        .unwrap_or_default(),
                    health_without_token: config.admin.health_without_token,
                    metrics: metrics.clone(),
                },
            )?),
            None => None,
        };
        let shown = |address: Option<SocketAddr>| address.map_or("off".into(), |a| a.to_string());
        tracing::info!(
            http = %shown(http_addr),
            https = %shown(https_addr),
            admin = %shown(admin_addr),
            workers,
            routes = config.routes.len(),
            "switchyard is serving"
        );
        Ok(RunningRouter {
            http: http_addr,
            https: https_addr,
            admin: admin_addr,
            lifecycle,
            registry,
            store,
            drain_wait: config.server.drain_wait.0,
            workers: handles,
            admin_thread,
            access_log,
            config_text: config.source.text.clone(),
            _sources: sources.running,
            _chores: chores,
        })
    }

    /// Address of the plain HTTP listener.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// Address of the HTTPS listener.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The registry the router reads (to add or delete endpoints from the embedding program).
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// Re-reads the routes of the config file at `path` and applies the difference (listeners
    /// and limits need a restart). A file with an error changes nothing; its errors are logged.
    /// Does nothing with a plugged-in registry.
    pub fn reload(&self, path: &Path) {
        let Some(store) = &self.store else {
            return;
        };
        if registry::reload_from_file(store, path).is_err() {
            return;
        }
        let next = std::fs::read_to_string(path).unwrap_or_default();
        let changed = crate::config::changed_keys(&self.config_text, &next);
        if !changed.is_empty() {
            tracing::warn!(
                keys = %changed.join(", "),
                "config changes that take effect only after a restart (SIGHUP applies routes, [proxy] balancer and hash_key)"
            );
        }
    }

    /// Stops accepting; open connections finish their requests (up to the drain timeout).
    pub fn stop(&self) {
        self.lifecycle.advance(Phase::Stopping);
    }

    /// `/health` turns 503 now; after `drain_wait` the router stops as with [`Self::stop`].
    pub fn drain(&self) {
        self.lifecycle.advance(Phase::Draining);
        let lifecycle = self.lifecycle.clone();
        let wait = self.drain_wait;
        std::thread::spawn(move || {
            std::thread::sleep(wait);
            lifecycle.advance(Phase::Stopping);
        });
    }

    /// True once every worker has finished.
    pub fn is_finished(&self) -> bool {
        self.workers.iter().all(|w| w.is_finished())
    }

    /// Waits until the router has stopped and drained.
    pub fn wait(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
        if let Some(admin) = self.admin_thread {
            let _ = admin.join();
        }
        if let Some(log) = &self.access_log {
            log.close();
        }
    }

    /// Reopens the access log file (after logrotate moved it).
    pub fn reopen_logs(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
        }
    }
}

/// The built-in registry's settings from the config.
fn store_settings(config: &Config) -> StoreSettings {
    StoreSettings {
        default_balancer: config.proxy.balancer,
        default_hash_key: config.proxy.hash_key.clone(),
    }
}

/// Backend connection settings from the config.
fn upstream_settings(config: &Config) -> UpstreamSettings {
    UpstreamSettings {
        connect_timeout: config.proxy.connect_timeout.0,
        idle_timeout: config.proxy.upstream_idle_timeout.0,
        max_idle: config.proxy.max_idle_per_backend,
    }
}

/// Route services from the config: present when a secret is set.
fn route_services(config: &Config) -> Option<Arc<RouteServices>> {
    let settings = &config.route_services;
    (!settings.secret.is_empty()).then(|| {
        let previous = Some(settings.secret_decrypt_only.as_str());
        Arc::new(RouteServices {
            signer: Signer::new(&settings.secret, previous, settings.timeout.0),
            resolver: Resolver::default(),
            strict: settings.strict_signature_validation,
            websockets: settings.websockets,
        })
    })
}

/// Per-request limits from the config.
fn proxy_settings(config: &Config) -> ProxySettings {
    ProxySettings {
        retry: RetrySettings {
            max_attempts: config.proxy.max_attempts,
            max_conns_per_backend: config.proxy.max_conns_per_backend,
            budget: RetryBudget {
                ratio: config.proxy.retry_budget,
                min_per_second: config.proxy.retry_budget_min_per_second,
            },
            attempt_timeout: config.proxy.attempt_timeout.map(|timeout| timeout.0),
            request_timeout: config.proxy.request_timeout.0,
        },
        ejection: EjectionPolicy {
            base: config.health.eject_base.0,
            max: config.health.eject_max.0,
            remove_registered_after: config.health.remove_registered_after,
        },
        sticky_cookies: config.sticky_sessions.cookie_names.clone(),
        route_services: route_services(config),
        tracing: TraceSettings {
            w3c: config.tracing.w3c,
            zipkin: config.tracing.zipkin,
        },
        request_timeout: config.proxy.request_timeout.0,
        retry_buffer: config.proxy.retry_buffer,
        max_request_body: config.proxy.max_request_body,
        access_log: None,
    }
}

/// Fuzzing entry (`cargo fuzz`, built with `--cfg fuzzing`): what a client connection of a
/// router with default settings and no routes gets (every request is answered 404).
#[cfg(fuzzing)]
pub fn fuzz_context() -> crate::server::ConnContext {
    let config = Config::from_toml("").expect("the empty config is valid");
    let registry: Arc<dyn Registry> =
        Arc::new(RouteStore::new(store_settings(&config), Vec::new()));
    let metrics = Arc::new(Metrics::default());
    let upstream = Upstream::new(
        upstream_settings(&config),
        UpstreamTls {
            backends: BackendTls::new(None),
            route_services: BackendTls::new(None),
        },
        metrics.clone(),
    );
    let proxy = Proxy::new(
        registry,
        Arc::new(crate::proxy::HostAndPath),
        upstream,
        proxy_settings(&config),
        metrics,
    );
    crate::server::ConnContext {
        proxy: Arc::new(proxy),
        settings: Arc::new(ServeSettings::new(&config.server)),
        lifecycle: Lifecycle::new(),
    }
}
