//! The TOML config file: its types (this file), loading with file/line/key errors (`load`),
//! backend entries (`backend`) and durations (`duration`).

mod backend;
mod duration;
mod hash_key;
mod listen;
mod load;
mod restart;
mod route_uri;

pub use backend::BackendConfig;
pub use duration::ConfigDuration;
pub use hash_key::{HashKey, fnv1a};
pub use listen::ListenAddr;
pub use load::{ConfigError, ConfigErrors, load_file, load_str};
pub use restart::changed_keys;
pub use route_uri::{HostPattern, RouteUri};

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// The whole config file. Every section is optional; see `README.md` for each key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener addresses.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Certificates for the HTTPS listener, chosen by SNI.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Runtime settings (threads, client-side limits, drain).
    #[serde(default)]
    pub server: ServerConfig,
    /// Admin API settings.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Forwarding settings shared by all routes.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Sticky-session cookie names (contract section 7).
    #[serde(default)]
    pub sticky_sessions: StickySessionsConfig,
    /// Route-service settings (contract section 8).
    #[serde(default)]
    pub route_services: RouteServicesConfig,
    /// Trace headers.
    #[serde(default)]
    pub tracing: TracingConfig,
    /// Shared registries (NATS, etcd).
    #[serde(default)]
    pub registry: RegistryConfig,
    /// One line per request.
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// Passive health: ejection of failing endpoints.
    #[serde(default)]
    pub health: HealthConfig,
    /// Static routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// Where this config was read from (for error messages and relative paths); not a key.
    #[serde(skip)]
    pub source: ConfigSource,
}

/// The file a config came from, with its text, so later checks can name a line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// Path as given by the operator (or a label such as `<inline>`).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// `[listen]`: where the router accepts connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Plain HTTP/1.1 + h2c (prior knowledge); `"off"` = none.
    #[serde(default = "default_http", deserialize_with = "listen::optional")]
    pub http: Option<SocketAddr>,
    /// HTTPS with ALPN h2 + http/1.1; needs `[tls]`.
    pub https: Option<Spanned<ListenAddr>>,
    /// Admin API (`/health`, `/routes`, ...); `"off"` = none.
    #[serde(default = "default_admin", deserialize_with = "listen::optional")]
    pub admin: Option<SocketAddr>,
}

fn default_http() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
}

fn default_admin() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8082)))
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            http: default_http(),
            https: None,
            admin: default_admin(),
        }
    }
}

/// `[tls]`: server certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// One or more certificate/key pairs; the SNI name picks one, the first is the default.
    pub certs: Vec<Spanned<CertConfig>>,
}

/// One certificate chain and its private key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[server]`: runtime and client-side limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Runtime threads, each with its own listener socket (`SO_REUSEPORT`); 0 = number of cores.
    pub workers: usize,
    /// Time a client has to send a complete request head once it starts one (slowloris guard).
    pub header_read_timeout: ConfigDuration,
    /// Idle time after which a keep-alive client connection with no request in flight is closed.
    pub idle_timeout: ConfigDuration,
    /// Largest request head accepted (request line + headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Time allowed for in-flight requests to finish after SIGTERM/SIGINT.
    pub drain_timeout: ConfigDuration,
    /// After SIGUSR1, how long `/health` reports 503 before the listeners close.
    pub drain_wait: ConfigDuration,
    /// Time a TLS client has to finish its handshake.
    pub tls_handshake_timeout: ConfigDuration,
    /// HTTP/2: with streams open and the client silent this long, it is sent a PING; silent
    /// for another period, the connection is closed.
    pub http2_keepalive: ConfigDuration,
    /// A response that cannot be sent this long (the client's flow-control window or socket
    /// stays full) is abandoned: the HTTP/2 stream is reset, the HTTP/1.1 connection closed,
    /// and the backend exchange ends (as nginx's `send_timeout`).
    pub send_timeout: ConfigDuration,
    /// Client connections open at once across the router; more are closed as they arrive.
    /// 0 = unlimited.
    pub max_connections: usize,
    /// Client connections open at once from one IP address; 0 = unlimited.
    pub max_connections_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            workers: 0,
            header_read_timeout: ConfigDuration(Duration::from_secs(10)),
            idle_timeout: ConfigDuration(Duration::from_secs(90)),
            max_header_bytes: 64 * 1024,
            drain_timeout: ConfigDuration(Duration::from_secs(30)),
            drain_wait: ConfigDuration(Duration::from_secs(0)),
            tls_handshake_timeout: ConfigDuration(Duration::from_secs(10)),
            http2_keepalive: ConfigDuration(Duration::from_secs(30)),
            send_timeout: ConfigDuration(Duration::from_secs(60)),
            max_connections: 100_000,
            max_connections_per_ip: 1_000,
        }
    }
}

/// `[admin]`: admin API settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token required on admin requests when non-empty.
    pub token: String,
    /// A file holding the token (its first line), instead of `token`.
    pub token_file: Option<PathBuf>,
    /// `/health` answers without the token (load balancers' probes cannot send one).
    pub health_without_token: bool,
    /// Routes with their own series in `/metrics` (the first to see traffic); the others are
    /// counted together as `route="(other)"`.
    pub metrics_route_series: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: String::new(),
            token_file: None,
            health_without_token: true,
            metrics_route_series: DEFAULT_METRICS_ROUTE_SERIES,
        }
    }
}

/// Routes with their own series in `/metrics` unless `[admin] metrics_route_series` says.
pub const DEFAULT_METRICS_ROUTE_SERIES: usize = 1000;

/// The environment variable that holds the admin token when the config gives none.
pub const ADMIN_TOKEN_VAR: &str = "SWITCHYARD_ADMIN_TOKEN";

impl AdminConfig {
    /// The token in effect: `token`, else the first line of `token_file` (a path relative to
    /// the config file, resolved by `resolve`), else `$SWITCHYARD_ADMIN_TOKEN`; empty = none.
    pub fn effective_token(
        &self,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> std::io::Result<String> {
        if !self.token.is_empty() {
            return Ok(self.token.clone());
        }
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(resolve(path))?;
            return Ok(text.lines().next().unwrap_or("").trim().to_owned());
        }
        Ok(std::env::var(ADMIN_TOKEN_VAR).unwrap_or_default())
    }
}

/// Load-balancing algorithm names accepted in config and registration messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalancerKind {
    /// Rotate through endpoints (gorouter's default).
    #[default]
    RoundRobin,
    /// Pick uniformly at random.
    Random,
    /// Fewest requests in flight (counted until the response body ends).
    LeastConnections,
    /// Power of two choices over peak-EWMA latency.
    P2cEwma,
    /// Consistent hashing on a header or cookie.
    Hash,
}

/// Upstream protocol of a route's backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 (h2c in plain text, ALPN h2 over TLS); needed for gRPC backends.
    Http2,
}

/// `[proxy]`: forwarding settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Default balancer for routes that do not set one.
    pub balancer: BalancerKind,
    /// Tries per request, capped by the number of endpoints.
    pub max_attempts: usize,
    /// Time to open a TCP connection (and finish TLS) to a backend.
    pub connect_timeout: ConfigDuration,
    /// Time for the whole backend exchange, response body included (not for upgrades).
    pub request_timeout: ConfigDuration,
    /// In-flight requests per backend per router; 0 = unlimited.
    pub max_conns_per_backend: usize,
    /// Idle keep-alive connections kept per backend per worker.
    pub max_idle_per_backend: usize,
    /// Idle upstream connections older than this are closed instead of reused.
    pub upstream_idle_timeout: ConfigDuration,
    /// PEM bundle trusted for backends' TLS (`tls_port`); empty = system roots.
    pub backend_ca_file: Option<PathBuf>,
    /// What the hash balancer hashes, for routes that do not say.
    pub hash_key: Option<HashKey>,
    /// Request bodies up to this size (with a Content-Length) are buffered when the request
    /// may be retried after it was sent (idempotent methods); 0 = never buffer.
    pub retry_buffer: usize,
    /// Largest request body accepted, in bytes (413 past it); 0 = unlimited.
    pub max_request_body: u64,
    /// Retries of requests that reached a backend, as a share of requests (per worker).
    pub retry_budget: f64,
    /// Retries per second always allowed on top of the budget (per worker).
    pub retry_budget_min_per_second: u32,
    /// Time an endpoint has to send a response head before an idempotent request goes to
    /// another endpoint (and any other request is answered 504); unset = only
    /// `request_timeout` applies.
    pub attempt_timeout: Option<ConfigDuration>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            balancer: BalancerKind::RoundRobin,
            max_attempts: 3,
            connect_timeout: ConfigDuration(Duration::from_secs(5)),
            request_timeout: ConfigDuration(Duration::from_secs(900)),
            max_conns_per_backend: 500,
            max_idle_per_backend: 512,
            upstream_idle_timeout: ConfigDuration(Duration::from_secs(60)),
            backend_ca_file: None,
            hash_key: None,
            retry_buffer: 64 * 1024,
            max_request_body: 0,
            retry_budget: 0.2,
            retry_budget_min_per_second: 10,
            attempt_timeout: None,
        }
    }
}

/// `[sticky_sessions]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StickySessionsConfig {
    /// Application cookies that start a sticky session.
    pub cookie_names: Vec<String>,
}

impl Default for StickySessionsConfig {
    fn default() -> Self {
        StickySessionsConfig {
            cookie_names: vec!["JSESSIONID".to_string()],
        }
    }
}

/// `[tracing]`: trace headers kept when present and started when not (gorouter's
/// `enable_w3c` and `enable_zipkin`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// W3C `traceparent` and `tracestate`.
    pub w3c: bool,
    /// Zipkin B3 (`b3`, `X-B3-TraceId`, `X-B3-SpanId`).
    pub zipkin: bool,
}

/// `[route_services]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteServicesConfig {
    /// Shared secret for signatures; empty disables route services.
    pub secret: String,
    /// The previous secret, still accepted on the way back from a route service (rotation).
    pub secret_decrypt_only: String,
    /// Lifetime of a signature.
    pub timeout: ConfigDuration,
    /// PEM bundle trusted for route services' TLS.
    pub ca_file: Option<PathBuf>,
    /// Check signatures on requests to routes without a route service too (400 invalid, 504
    /// expired).
    pub strict_signature_validation: bool,
    /// Let WebSocket upgrades through route services (else 503).
    pub websockets: bool,
}

impl Default for RouteServicesConfig {
    fn default() -> Self {
        RouteServicesConfig {
            secret: String::new(),
            secret_decrypt_only: String::new(),
            timeout: ConfigDuration(Duration::from_secs(60)),
            ca_file: None,
            strict_signature_validation: false,
            websockets: true,
        }
    }
}

/// `[health]`: passive health (ejection of endpoints whose attempts fail).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Ejection after the first failed attempt of an outage; doubles with each failed probe.
    pub eject_base: ConfigDuration,
    /// Longest ejection.
    pub eject_max: ConfigDuration,
    /// Ejections in a row (the first and failed probes) that remove a registered endpoint
    /// (back with its next registration); 0 = never.
    pub remove_registered_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            eject_base: ConfigDuration(Duration::from_millis(250)),
            eject_max: ConfigDuration(Duration::from_secs(1)),
            remove_registered_after: 5,
        }
    }
}

/// `health_check` of a route: probe every endpoint with `GET path`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Path to GET; a 2xx or 3xx answer is healthy.
    pub path: String,
    /// Time between probes of one endpoint.
    #[serde(default = "default_check_interval")]
    pub interval: ConfigDuration,
    /// Time a probe may take.
    #[serde(default = "default_check_timeout")]
    pub timeout: ConfigDuration,
    /// Good probes in a row that bring a down endpoint back.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failed probes in a row that take an endpoint down.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_check_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(5))
}

fn default_check_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(2))
}

fn default_rise() -> u32 {
    2
}

fn default_fall() -> u32 {
    3
}

/// `[access_log]`: one line per request, on by default (as nginx's and gorouter's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConfig {
    /// Write the access log.
    pub enabled: bool,
    /// `text` (gorouter's layout) or `json`.
    pub format: AccessLogFormat,
    /// `"-"` = standard output; otherwise a file, appended to and reopened on SIGHUP and
    /// SIGUSR2 (relative paths are relative to the config file).
    pub path: PathBuf,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            format: AccessLogFormat::Text,
            path: PathBuf::from("-"),
        }
    }
}

/// How access log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// gorouter's layout: `host - [time] "METHOD uri PROTO" status ... key:"value" ...`.
    #[default]
    Text,
    /// One JSON object per line, the same fields by name.
    Json,
}

/// `[registry]`: registration expiry, config file watching, shared stores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Time to live of a registered endpoint unless refreshed (messages may only lower it).
    pub stale_threshold: ConfigDuration,
    /// How often expired registrations are removed.
    pub prune_interval: ConfigDuration,
    /// Re-read the config file's routes when the file changes (as on SIGHUP).
    pub watch_config: bool,
    /// How often a watched config file is checked for changes.
    pub watch_interval: ConfigDuration,
    /// NATS servers carrying gorouter's `router.register` messages.
    pub nats: Option<NatsConfig>,
    /// etcd endpoints holding one key per endpoint.
    pub etcd: Option<EtcdConfig>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            stale_threshold: ConfigDuration(Duration::from_secs(120)),
            prune_interval: ConfigDuration(Duration::from_secs(30)),
            watch_config: false,
            watch_interval: ConfigDuration(Duration::from_secs(1)),
            nats: None,
            etcd: None,
        }
    }
}

/// `[registry.nats]`: gorouter's registration protocol over NATS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs, such as `nats://127.0.0.1:4222` (`tls://` requires TLS; `user:pass@` may
    /// come in the URL). The client moves to the next one when a server goes away.
    pub servers: Vec<String>,
    /// User name (with `password`).
    #[serde(default)]
    pub user: String,
    /// Password of `user`.
    #[serde(default)]
    pub password: String,
    /// Authentication token (instead of user and password).
    #[serde(default)]
    pub token: String,
    /// Require TLS on every server.
    #[serde(default)]
    pub tls: bool,
    /// PEM bundle trusted for the servers' certificates (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`, for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// How often clients should re-register, advertised in `router.start` and greet replies
    /// (gorouter's `minimumRegisterIntervalInSeconds`).
    #[serde(default = "default_register_interval")]
    pub register_interval: ConfigDuration,
}

fn default_register_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(20))
}

/// `[registry.etcd]`: one key per endpoint, tied to a lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client URLs, such as `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix; endpoints live under `<prefix>routes/`.
    #[serde(default = "default_etcd_prefix")]
    pub prefix: String,
    /// User name (with `password`), when etcd's authentication is on.
    #[serde(default)]
    pub user: String,
    /// Password of `user`.
    #[serde(default)]
    pub password: String,
}

fn default_etcd_prefix() -> String {
    "/switchyard/".to_string()
}

/// One `[[route]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `host[/path]`, `*.domain[/path]` or `/path` (any host).
    pub uri: Spanned<String>,
    /// Backend addresses (`"ip:port"`) or tables with TLS and instance data.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    /// Upstream protocol for these backends.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Remove the route's path prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Balancer for this route (overrides `[proxy] balancer`).
    pub balancer: Option<BalancerKind>,
    /// Route service URL (https only).
    #[serde(default)]
    pub route_service_url: String,
    /// What the hash balancer hashes (overrides `[proxy] hash_key`).
    pub hash_key: Option<HashKey>,
    /// Active health check of the route's endpoints.
    pub health_check: Option<HealthCheck>,
    /// Response statuses retried on another endpoint (idempotent requests only).
    #[serde(default)]
    pub retry_statuses: Vec<u16>,
    /// Largest request body for this route (overrides `[proxy] max_request_body`; 0 =
    /// unlimited).
    pub max_request_body: Option<u64>,
    /// Time an endpoint has to answer before an idempotent request moves on (overrides
    /// `[proxy] attempt_timeout`).
    pub attempt_timeout: Option<ConfigDuration>,
}
