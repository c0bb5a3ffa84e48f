//! Reading a config file: TOML syntax and types via serde (with the failing key's path),
//! then checks that need several keys at once. Every error names file, line and key.

use super::RouteUri;
use super::{BalancerKind, Config};
use crate::tls::load_certified_key;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Smallest `server.max_header_bytes`.
pub const MIN_HEADER_BYTES: usize = 8192;
/// Largest `server.max_header_bytes`: a request's fields must fit the header map's index (about
/// 24,000 distinct names, each at least 35 bytes of header list).
pub const MAX_HEADER_BYTES: usize = 512 * 1024;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as the operator named it.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is not tied to a line).
    pub line: usize,
    /// Dotted key path, such as `route[2].backends[0]`.
    pub key: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: key `{}`: {}",
            self.file.display(),
            self.line,
            self.key,
            self.message
        )
    }
}

/// Every problem found in a config file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Reads and validates the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            key: "-".to_string(),
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    load_str(&text, path)
}

/// Errors of types and keys reported from one file at most (each costs a parse).
const MAX_TYPE_ERRORS: usize = 20;

/// Parses and validates config text; `path` names it in errors and anchors relative paths.
/// Every error is reported at once, in file order: a key with a bad type or name is commented
/// out of a working copy (its lines blanked, so later lines keep their numbers) and the copy
/// is read again, until it reads; the checks then run on what was read.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let error_at = |span: Option<Range<usize>>, key: String, message: String| ConfigError {
        file: path.to_path_buf(),
        line: span.map_or(0, |s| line_of(text, s.start)),
        key,
        message,
    };
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut working = text.to_string();
    let read: Option<Config> = loop {
        let deserializer = match toml::Deserializer::parse(&working) {
            Ok(deserializer) => deserializer,
            Err(e) => {
                errors.push(error_at(e.span(), "-".into(), e.message().into()));
                break None;
            }
        };
        let e = match serde_path_to_error::deserialize(deserializer) {
            Ok(config) => break Some(config),
            Err(e) => e,
        };
        let key = e.path().to_string();
        let inner = e.into_inner();
        let span = inner.span();
        let error = error_at(span.clone(), key, inner.message().to_string());
        // A key missing where an earlier bad one was taken out follows from that one.
        if errors
            .iter()
            .any(|earlier| earlier.key.starts_with(&error.key))
            || errors.last() == Some(&error)
        {
            break None;
        }
        errors.push(error);
        match span {
            Some(span) if errors.len() < MAX_TYPE_ERRORS => comment_out(&mut working, span),
            _ => break None,
        }
    };
    if let Some(mut config) = read {
        config.source.path = path.to_path_buf();
        config.source.text = text.to_string();
        errors.extend(check(&config));
        if errors.is_empty() {
            return Ok(config);
        }
    }
    // In file order, whatever order the checks ran in (a stable sort keeps one line's errors
    // in check order).
    errors.sort_by_key(|error| error.line);
    Err(ConfigErrors(errors))
}

/// Blanks the lines `span` touches and marks the first as a comment (line count unchanged).
fn comment_out(text: &mut String, span: Range<usize>) {
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let end = text[span.end.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i);
    let blanked: String = text[start..end]
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (0, _) => '#',
            (_, '\n' | '\r') => c,
            _ => ' ',
        })
        .collect();
    text.replace_range(start..end, &blanked);
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// 1-based line of the first `name = ...` assignment (for values that carry no span).
fn key_line(text: &str, name: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// The line of `name`, or of `parent` when `name` sits in an inline table on its line.
fn key_line_or(text: &str, name: &str, parent: &str) -> usize {
    match key_line(text, name) {
        0 => key_line(text, parent),
        line => line,
    }
}

/// Checks that span several keys or touch the file system.
fn check(config: &Config) -> Vec<ConfigError> {
    let text = &config.source.text;
    let file = &config.source.path;
    let mut errors = Vec::new();
    let mut push = |line: usize, key: String, message: String| {
        errors.push(ConfigError {
            file: file.clone(),
            line,
            key,
            message,
        })
    };
    let at = |span: Range<usize>| line_of(text, span.start);

    if config.listen.http.is_none() && config.listen.https.is_none() {
        push(
            key_line(text, "http"),
            "listen.http".into(),
            "no listener for clients: set listen.http or listen.https".into(),
        );
    }
    if let Some(https) = &config.listen.https {
        let has_certs = config.tls.as_ref().is_some_and(|t| !t.certs.is_empty());
        if !has_certs {
            push(
                at(https.span()),
                "listen.https".into(),
                "an HTTPS listener needs at least one certificate in [tls] certs".into(),
            );
        }
    }
    if let Some(tls) = &config.tls {
        for (i, cert) in tls.certs.iter().enumerate() {
            let entry = cert.get_ref();
            let (cert_path, key_path) = (config.resolve(&entry.cert), config.resolve(&entry.key));
            if let Err(e) = load_certified_key(&cert_path, &key_path) {
                push(at(cert.span()), format!("tls.certs[{i}]"), e.to_string());
            }
        }
    }
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&config.server.max_header_bytes) {
        push(
            key_line(text, "max_header_bytes"),
            "server.max_header_bytes".into(),
            format!("must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"),
        );
    }
    for (key, value) in [
        ("http2_keepalive", config.server.http2_keepalive),
        ("send_timeout", config.server.send_timeout),
    ] {
        if value.0.is_zero() {
            push(
                key_line(text, key),
                format!("server.{key}"),
                "must be more than 0s".into(),
            );
        }
    }
    if config.proxy.attempt_timeout.is_some_and(|t| t.0.is_zero()) {
        push(
            key_line(text, "attempt_timeout"),
            "proxy.attempt_timeout".into(),
            "must be more than 0s (leave it out for no attempt timeout)".into(),
        );
    }
    if config.proxy.max_attempts == 0 {
        push(
            key_line(text, "max_attempts"),
            "proxy.max_attempts".into(),
            "must be at least 1".into(),
        );
    }
    for (key, value) in [
        ("stale_threshold", config.registry.stale_threshold),
        ("prune_interval", config.registry.prune_interval),
        ("watch_interval", config.registry.watch_interval),
    ] {
        if value.0.is_zero() {
            push(
                key_line(text, key),
                format!("registry.{key}"),
                "must be more than 0s".into(),
            );
        }
    }
    if !config.admin.token.is_empty() && config.admin.token_file.is_some() {
        push(
            key_line(text, "token_file"),
            "admin.token_file".into(),
            "set token or token_file, not both".into(),
        );
    } else if let Err(e) = config.admin.effective_token(|p| config.resolve(p)) {
        push(
            key_line(text, "token_file"),
            "admin.token_file".into(),
            format!("cannot read it: {e}"),
        );
    }
    let ca_files = [
        (
            "backend_ca_file",
            "proxy.backend_ca_file",
            &config.proxy.backend_ca_file,
        ),
        (
            "ca_file",
            "route_services.ca_file",
            &config.route_services.ca_file,
        ),
    ];
    for (name, key, path) in ca_files {
        if let Some(ca) = path
            && let Err(e) = crate::tls::load_roots(&config.resolve(ca))
        {
            push(key_line(text, name), key.into(), e.to_string());
        }
    }

    let hash_without_key = |balancer: Option<BalancerKind>, key: bool| {
        balancer == Some(BalancerKind::Hash) && !key && config.proxy.hash_key.is_none()
    };
    if hash_without_key(Some(config.proxy.balancer), false) {
        push(
            key_line(text, "balancer"),
            "proxy.balancer".into(),
            "the hash balancer needs [proxy] hash_key (\"header:<name>\" or \"cookie:<name>\")"
                .into(),
        );
    }
    let mut seen = HashSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("route[{i}].uri");
        match RouteUri::parse(route.uri.get_ref()) {
            Ok(uri) => {
                if !seen.insert(uri.to_string()) {
                    push(at(route.uri.span()), key, format!("duplicate route {uri}"));
                }
            }
            Err(message) => push(at(route.uri.span()), key, message),
        }
        if hash_without_key(route.balancer, route.hash_key.is_some()) {
            push(
                at(route.uri.span()),
                format!("route[{i}].balancer"),
                "the hash balancer needs hash_key here or in [proxy]".into(),
            );
        }
        if let Some(check) = &route.health_check
            && (!check.path.starts_with('/') || check.rise == 0 || check.fall == 0)
        {
            push(
                at(route.uri.span()),
                format!("route[{i}].health_check"),
                "path must start with / and rise and fall must be at least 1".into(),
            );
        }
        if route.attempt_timeout.is_some_and(|t| t.0.is_zero()) {
            push(
                at(route.uri.span()),
                format!("route[{i}].attempt_timeout"),
                "must be more than 0s (leave it out for the [proxy] default)".into(),
            );
        }
        if !route.route_service_url.is_empty() && !route.route_service_url.starts_with("https://") {
            push(
                at(route.uri.span()),
                format!("route[{i}].route_service_url"),
                "must be an https:// URL".into(),
            );
        }
    }
    if let Some(nats) = &config.registry.nats {
        let servers = key_line_or(text, "servers", "nats");
        if nats.servers.is_empty() {
            push(
                servers,
                "registry.nats.servers".into(),
                "at least one server URL, such as \"nats://127.0.0.1:4222\"".into(),
            );
        }
        for (i, server) in nats.servers.iter().enumerate() {
            if let Err(error) = server.parse::<async_nats::ServerAddr>() {
                push(
                    servers,
                    format!("registry.nats.servers[{i}]"),
                    format!(
                        "{server:?} is not a NATS URL ({error}); for example \"nats://127.0.0.1:4222\""
                    ),
                );
            }
        }
        if nats.cert_file.is_some() != nats.key_file.is_some() {
            push(
                key_line(text, "cert_file").max(key_line(text, "key_file")),
                "registry.nats.cert_file".into(),
                "cert_file and key_file go together".into(),
            );
        }
        for (key, path) in [
            ("ca_file", &nats.ca_file),
            ("cert_file", &nats.cert_file),
            ("key_file", &nats.key_file),
        ] {
            if let Some(path) = path
                && let Err(error) = std::fs::File::open(config.resolve(path))
            {
                push(
                    key_line(text, key),
                    format!("registry.nats.{key}"),
                    format!("cannot read {}: {error}", config.resolve(path).display()),
                );
            }
        }
    }
    if let Some(etcd) = &config.registry.etcd {
        let endpoints = key_line_or(text, "endpoints", "etcd");
        if etcd.endpoints.is_empty() {
            push(
                endpoints,
                "registry.etcd.endpoints".into(),
                "at least one client URL, such as \"http://127.0.0.1:2379\"".into(),
            );
        }
        for (i, endpoint) in etcd.endpoints.iter().enumerate() {
            if !endpoint.starts_with("http://") {
                push(
                    endpoints,
                    format!("registry.etcd.endpoints[{i}]"),
                    format!(
                        "{endpoint:?}: use an http:// client URL such as \"http://127.0.0.1:2379\" (TLS to etcd is not supported)"
                    ),
                );
            }
        }
        if !etcd.prefix.ends_with('/') {
            push(
                key_line(text, "prefix"),
                "registry.etcd.prefix".into(),
                format!(
                    "{:?} must end with / (endpoints live under <prefix>routes/)",
                    etcd.prefix
                ),
            );
        }
    }
    errors
}

impl Config {
    /// Parses config text that is not backed by a file (tests, embedding).
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        load_str(text, Path::new("<inline>"))
    }

    /// Resolves a path from the config relative to the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.source.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn first_error(text: &str) -> ConfigError {
        load_str(text, Path::new("t.toml")).unwrap_err().0.remove(0)
    }

    #[test]
    fn names_line_and_key_of_a_bad_duration() {
        let e = first_error("[proxy]\nmax_attempts = 2\nconnect_timeout = \"5 parsecs\"\n");
        assert_eq!((e.line, e.key.as_str()), (3, "proxy.connect_timeout"));
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn names_line_and_key_of_a_bad_backend() {
        let e = first_error("[[route]]\nuri = \"a.com\"\nbackends = [\"127.0.0.1:1\", \"nope\"]\n");
        assert_eq!((e.line, e.key.as_str()), (3, "route[0].backends[1]"));
        assert!(e.message.contains("nope"), "{e}");
    }

    #[test]
    fn names_unknown_keys() {
        let e = first_error("[server]\nworkerz = 2\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("workerz"), "{e}");
    }

    #[test]
    fn rejects_bad_route_uri_with_line() {
        let e = first_error("\n[[route]]\nuri = \"bad host/x\"\nbackends = []\n");
        assert_eq!((e.line, e.key.as_str()), (3, "route[0].uri"));
    }

    #[test]
    fn rejects_https_without_certs() {
        let e = first_error("[listen]\nhttps = \"127.0.0.1:8443\"\n");
        assert_eq!((e.line, e.key.as_str()), (2, "listen.https"));
    }

    #[test]
    fn hash_balancer_needs_a_key_and_checks_are_validated() {
        let e = first_error("[[route]]\nuri = \"a.com\"\nbalancer = \"hash\"\n");
        assert_eq!((e.line, e.key.as_str()), (2, "route[0].balancer"));
        let e = first_error("[proxy]\nhash_key = \"query:x\"\n");
        assert_eq!((e.line, e.key.as_str()), (2, "proxy.hash_key"));
        let e = first_error("[[route]]\nuri = \"a.com\"\nhealth_check = { path = \"healthz\" }\n");
        assert_eq!(e.key, "route[0].health_check");
        assert!(
            load_str(
                "[proxy]\nhash_key = \"cookie:s\"\n[[route]]\nuri = \"a.com\"\nbalancer = \"hash\"\n",
                Path::new("t.toml")
            )
            .is_ok()
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = first_error("[proxy]\nmax_attempts = = 3\n");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn accepts_the_contract_sketch() {
        let text = r#"
[listen]
http = "127.0.0.1:8080"
admin = "127.0.0.1:8082"
[server]
workers = 2
[admin]
token = ""
[proxy]
balancer = "round-robin"
max_attempts = 3
connect_timeout = "5s"
request_timeout = "900s"
max_conns_per_backend = 500
[sticky_sessions]
cookie_names = ["JSESSIONID"]
[route_services]
secret = ""
timeout = "60s"
[registry]
nats = { servers = ["nats://127.0.0.1:4222"] }
etcd = { endpoints = ["http://127.0.0.1:2379"], prefix = "/switchyard/" }
[[route]]
uri = "app.example.com/api"
backends = ["127.0.0.1:9001", { address = "127.0.0.1:9002", instance_id = "i-2" }]
protocol = "http1"
strip_prefix = false
balancer = "least-connections"
route_service_url = ""
"#;
        let config = load_str(text, Path::new("t.toml")).unwrap();
        let nats = config.registry.nats.as_ref().unwrap();
        assert_eq!(nats.servers, ["nats://127.0.0.1:4222"]);
        assert_eq!(nats.register_interval.0, Duration::from_secs(20));
        let etcd = config.registry.etcd.as_ref().unwrap();
        assert_eq!(etcd.prefix, "/switchyard/");
        assert_eq!(config.routes[0].backends.len(), 2);
        assert_eq!(config.routes[0].backends[1].instance_id, "i-2");
    }

    #[test]
    fn shared_registries_are_checked() {
        let text = "[registry.nats]\nservers = [\"nats://127.0.0.1:4222\", \"http://[x\"]\n\
                    ca_file = \"/nonexistent/ca.pem\"\ncert_file = \"c.pem\"\n\
                    [registry.etcd]\nendpoints = [\"https://127.0.0.1:2379\"]\nprefix = \"/sy\"\n";
        let errors = load_str(text, Path::new("t.toml")).unwrap_err().0;
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
        let expected = [
            (2, "registry.nats.servers[1]"),
            (3, "registry.nats.ca_file"),
            (4, "registry.nats.cert_file"),
            (4, "registry.nats.cert_file"),
            (6, "registry.etcd.endpoints[0]"),
            (7, "registry.etcd.prefix"),
        ];
        assert_eq!(found, expected, "{errors:?}");
    }

    #[test]
    fn route_service_urls_must_be_https() {
        let text = "[[route]]\nuri = \"a.test\"\nroute_service_url = \"http://rs.test\"\n";
        let errors = load_str(text, Path::new("t.toml")).unwrap_err().0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["route[0].route_service_url"]);
    }

    #[test]
    fn admin_token_from_one_place() {
        let both = "[admin]\ntoken = \"a\"\ntoken_file = \"t\"\n";
        let errors = load_str(both, Path::new("t.toml")).unwrap_err().0;
        assert_eq!(
            (errors[0].key.as_str(), errors[0].line),
            ("admin.token_file", 3)
        );
        let missing = "[admin]\ntoken_file = \"/nonexistent/token\"\n";
        let errors = load_str(missing, Path::new("t.toml")).unwrap_err().0;
        assert!(
            errors[0].message.starts_with("cannot read it"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn listeners_take_short_forms_and_switch_off() {
        let config = load_str(
            "[listen]\nhttp = \":18080\"\nadmin = \"off\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(config.listen.http.unwrap().to_string(), "0.0.0.0:18080");
        assert_eq!(config.listen.admin, None);
        let errors = load_str("[listen]\nhttp = \"off\"\n", Path::new("t.toml"))
            .unwrap_err()
            .0;
        assert_eq!((errors[0].line, errors[0].key.as_str()), (2, "listen.http"));
        let errors = load_str("[listen]\nhttp = \"8080\"\n", Path::new("t.toml"))
            .unwrap_err()
            .0;
        assert!(
            errors[0].message.contains("\":port\""),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn every_check_error_at_once_in_file_order() {
        // The checks run proxy, then routes, then registry; the file says registry first.
        let text = "[registry]\nnats = { servers = [] }\n[proxy]\nmax_attempts = 0\n\
                    [[route]]\nuri = \"a b\"\n";
        let errors = load_str(text, Path::new("t.toml")).unwrap_err().0;
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
        let expected = [
            (2, "registry.nats.servers"),
            (4, "proxy.max_attempts"),
            (6, "route[0].uri"),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn every_type_and_key_error_at_once_in_file_order() {
        // serde reads `server`'s keys in name order and stops at the first error.
        let text = "[server]\nworkerz = 1\nidle_timeout = 90\n[proxy]\nmax_attempts = 0\n\
                    [[route]]\nuri = \"a\"\nbackends = [\n  \"127.0.0.1:1\",\n  \"nope\",\n]\n";
        let errors = load_str(text, Path::new("t.toml")).unwrap_err().0;
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
        let expected = [
            (2, "server.workerz"),
            (3, "server.idle_timeout"),
            (5, "proxy.max_attempts"),
            (10, "route[0].backends[1]"),
        ];
        assert_eq!(found, expected, "{errors:?}");
        // A bad key taken out can leave its table short of a required key: that is not
        // reported as a second problem.
        let text = "[[route]]\nuri = \"a\"\nbackends = [\"nope\"]\n[server]\nworkers = \"x\"\n";
        let errors = load_str(text, Path::new("t.toml")).unwrap_err().0;
        let found: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            found,
            ["route[0].backends[0]", "server.workers"],
            "{errors:?}"
        );
    }
}
