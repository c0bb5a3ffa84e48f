//! Gorouter's registration message (`router.register` / `router.unregister` JSON, contract
//! section 4): parsing, validation with a reason that names the field, and conversion to
//! registry changes. Unknown fields are ignored, as gorouter does.

use super::{Change, Registration};
use crate::config::HashKey;
use crate::config::{BalancerKind, UpstreamProtocol};
use crate::log_limit::LogLimit;
use crate::routing::{EndpointSpec, RouteOptions, RouteUri, Source, or_address};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A message that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{field}: {reason}")]
pub struct MessageError {
    /// Path of the field, such as `port` or `[2].uris[0]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl MessageError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> MessageError {
        MessageError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error for a message nested under `prefix` (such as `[2]`).
    pub fn within(mut self, prefix: &str) -> MessageError {
        if prefix.is_empty() {
            return self;
        }
        self.field = if self.field.is_empty() || self.field == "." {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// `options` of a registration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageOptions {
    /// Balancer for the route: `round-robin`, `least-connection(s)`, `random`, `p2c-ewma` or
    /// `hash` (with `hash_header`).
    #[serde(default)]
    pub loadbalancing: String,
    /// Header the hash balancer hashes (gorouter's `hash_header`).
    #[serde(default)]
    pub hash_header: String,
}

/// One `router.register` / `router.unregister` message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryMessage {
    /// Backend IP (or `localhost`).
    pub host: Option<String>,
    /// Plain-text port.
    pub port: Option<u16>,
    /// TLS port; when non-zero it wins and the endpoint is TLS.
    pub tls_port: Option<u16>,
    /// `http1` (default) or `http2`.
    #[serde(default)]
    pub protocol: String,
    /// Route uris.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Application id.
    #[serde(default)]
    pub app: String,
    /// Instance id.
    #[serde(default)]
    pub private_instance_id: String,
    /// Instance index.
    #[serde(default)]
    pub private_instance_index: String,
    /// Name the backend's certificate must carry (required with `tls_port`).
    #[serde(default)]
    pub server_cert_domain_san: String,
    /// Route service URL (https only).
    #[serde(default)]
    pub route_service_url: String,
    /// Time to live; 0 or more than the router's stale threshold means the threshold.
    #[serde(default)]
    pub stale_threshold_in_seconds: u64,
    /// Free-form tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Per-route options.
    #[serde(default)]
    pub options: MessageOptions,
    /// When the sender made the registration (ns since the epoch), for the update-lag metric.
    #[serde(default)]
    pub endpoint_updated_at_ns: Option<i64>,
}

/// Parses a body holding one message or an array of them; an error names the field (prefixed
/// with the array index).
pub fn parse_messages(body: &[u8]) -> Result<Vec<RegistryMessage>, MessageError> {
    // One object is what NATS and etcd carry, many per second: parse it straight away, and
    // take the slower path that names the field only for arrays and errors.
    if body.first() == Some(&b'{')
        && let Ok(message) = serde_json::from_slice::<RegistryMessage>(body)
    {
        return Ok(vec![message]);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| MessageError::new("body", format!("invalid JSON: {e}")))?;
    let parse_one = |value: serde_json::Value| {
        serde_path_to_error::deserialize::<_, RegistryMessage>(value).map_err(|e| {
            let field = e.path().to_string();
            let reason = e.into_inner().to_string();
            let reason = if reason.contains("expected u16") {
                format!("must be a port number from 1 to 65535 ({reason})")
            } else {
                reason
            };
            MessageError::new(field, reason)
        })
    };
    match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_one(item).map_err(|e| e.within(&format!("[{i}]"))))
            .collect(),
        value @ serde_json::Value::Object(_) => Ok(vec![parse_one(value)?]),
        _ => Err(MessageError::new(
            "body",
            "expected a registration object or an array of them",
        )),
    }
}

impl RegistryMessage {
    /// The registrations this message makes for `source` (one per uri). `stale_threshold`
    /// caps the TTL; `None` = they never expire by time (the source removes them).
    pub fn registrations(
        self,
        source: Source,
        stale_threshold: Option<Duration>,
    ) -> Result<Vec<Change>, MessageError> {
        let (address, tls) = self.address()?;
        let uris = self.uris()?;
        let tls_name = if tls {
            if self.server_cert_domain_san.is_empty() {
                return Err(MessageError::new(
                    "server_cert_domain_san",
                    "required with tls_port (the name the backend's certificate carries)",
                ));
            }
            Some(Arc::from(self.server_cert_domain_san.as_str()))
        } else {
            None
        };
        let protocol = match self.protocol.as_str() {
            "" | "http1" => UpstreamProtocol::Http1,
            "http2" => UpstreamProtocol::Http2,
            other => {
                return Err(MessageError::new(
                    "protocol",
                    format!("unknown protocol {other:?}: use http1 or http2"),
                ));
            }
        };
        let route_service_url = match self.route_service_url.as_str() {
            "" => None,
            url if url.starts_with("https://") => Some(url.to_string()),
            url => {
                return Err(MessageError::new(
                    "route_service_url",
                    format!("{url:?} must start with https://"),
                ));
            }
        };
        let ttl = stale_threshold.map(|threshold| match self.stale_threshold_in_seconds {
            0 => threshold,
            seconds => Duration::from_secs(seconds).min(threshold),
        });
        let endpoint = EndpointSpec {
            address,
            tls_name,
            protocol,
            app_id: self.app,
            instance_id: or_address(&self.private_instance_id, address),
            instance_index: self.private_instance_index,
            tags: self.tags,
        };
        let hash_key = match self.options.hash_header.as_str() {
            "" => None,
            name => Some(
                HashKey::parse(&format!("header:{name}"))
                    .map_err(|e| MessageError::new("options.hash_header", e))?,
            ),
        };
        let options = RouteOptions {
            balancer: balancer(&self.options.loadbalancing),
            hash_key,
            route_service_url,
            ..RouteOptions::default()
        };
        // Most messages name one uri: the last registration takes the values, the others copy.
        let count = uris.len();
        let mut values = Some((endpoint, options));
        Ok(uris
            .into_iter()
            .enumerate()
            .filter_map(|(i, uri)| {
                let (endpoint, options) = if i + 1 == count {
                    values.take()?
                } else {
                    values.clone()?
                };
                Some(Change::Add(Box::new(Registration {
                    uri,
                    endpoint,
                    source,
                    ttl,
                    options,
                })))
            })
            .collect())
    }

    /// The removals this message asks for (its address on each of its uris).
    pub fn removals(&self) -> Result<Vec<Change>, MessageError> {
        let (address, _) = self.address()?;
        Ok(self
            .uris()?
            .into_iter()
            .map(|uri| Change::Delete { uri, address })
            .collect())
    }

    /// The endpoint's address (`tls_port` when set) and whether it is TLS.
    fn address(&self) -> Result<(SocketAddr, bool), MessageError> {
        let host = match self.host.as_deref().map(str::trim) {
            None | Some("") => return Err(MessageError::new("host", "required")),
            Some(host) => host,
        };
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST.into()
        } else {
            host.parse()
                .map_err(|_| MessageError::new("host", format!("{host:?} is not an IP address")))?
        };
        match (self.tls_port.filter(|&p| p != 0), self.port) {
            (Some(tls_port), _) => Ok((SocketAddr::new(ip, tls_port), true)),
            (None, Some(port)) if port != 0 => Ok((SocketAddr::new(ip, port), false)),
            (None, Some(_)) => Err(MessageError::new("port", "must be between 1 and 65535")),
            (None, None) => Err(MessageError::new("port", "required (or tls_port)")),
        }
    }

    fn uris(&self) -> Result<Vec<RouteUri>, MessageError> {
        if self.uris.is_empty() {
            return Err(MessageError::new("uris", "at least one uri is required"));
        }
        self.uris
            .iter()
            .enumerate()
            .map(|(i, uri)| {
                RouteUri::parse(uri).map_err(|e| MessageError::new(format!("uris[{i}]"), e))
            })
            .collect()
    }
}

/// The balancer a registration asks for; an unknown name is ignored (logged), as gorouter
/// does, so a newer platform's option never takes a route down.
fn balancer(name: &str) -> Option<BalancerKind> {
    match name {
        "" => None,
        "round-robin" => Some(BalancerKind::RoundRobin),
        "least-connection" | "least-connections" => Some(BalancerKind::LeastConnections),
        "random" => Some(BalancerKind::Random),
        "p2c-ewma" => Some(BalancerKind::P2cEwma),
        "hash" => Some(BalancerKind::Hash),
        other => {
            static UNKNOWN: LogLimit = LogLimit::new(1);
            if let Some(suppressed) = UNKNOWN.admit() {
                tracing::warn!(
                    balancer = other,
                    suppressed,
                    "registration asks for an unknown balancer; using the default"
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(body: &str) -> MessageError {
        match parse_messages(body.as_bytes()) {
            Err(error) => error,
            Ok(messages) => messages
                .into_iter()
                .find_map(|m| {
                    m.registrations(Source::Admin, Some(Duration::from_secs(120)))
                        .err()
                })
                .expect("an error"),
        }
    }

    #[test]
    fn gorouter_example_parses() {
        let body = r#"{"host":"10.0.1.11","port":61000,"tls_port":61002,"protocol":"http1",
            "uris":["myapp.apps.example.com","myapp.apps.example.com/api"],
            "app":"b78f","private_instance_id":"425c","private_instance_index":"2",
            "server_cert_domain_san":"425c","isolation_segment":"","availability_zone":"z1",
            "stale_threshold_in_seconds":30,"tags":{"component":"route-emitter"},
            "options":{"loadbalancing":"least-connection"}}"#;
        let messages = parse_messages(body.as_bytes()).unwrap();
        let changes = messages[0]
            .clone()
            .registrations(Source::Admin, Some(Duration::from_secs(120)))
            .unwrap();
        assert_eq!(changes.len(), 2);
        let Change::Add(reg) = &changes[1] else {
            panic!("not an add")
        };
        assert_eq!(reg.uri.to_string(), "myapp.apps.example.com/api");
        assert_eq!(reg.endpoint.address.to_string(), "10.0.1.11:61002");
        assert_eq!(reg.endpoint.tls_name.as_deref(), Some("425c"));
        assert_eq!(reg.ttl, Some(Duration::from_secs(30)));
        assert_eq!(reg.options.balancer, Some(BalancerKind::LeastConnections));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"port":1,"uris":["a.com"]}"#, "host"),
            (r#"{"host":"127.0.0.1","uris":["a.com"]}"#, "port"),
            (
                r#"{"host":"127.0.0.1","port":70000,"uris":["a.com"]}"#,
                "port",
            ),
            (r#"{"host":"127.0.0.1","port":1,"uris":[""]}"#, "uris[0]"),
            (r#"{"host":"127.0.0.1","port":1}"#, "uris"),
            (
                r#"{"host":"127.0.0.1","port":1,"uris":["a.com"],"route_service_url":"http://x"}"#,
                "route_service_url",
            ),
            (
                r#"[{"host":"127.0.0.1","port":1,"uris":["a"]},{"host":"127.0.0.1","port":"x"}]"#,
                "[1].port",
            ),
            ("{not json", "body"),
        ];
        for (body, field) in cases {
            assert_eq!(first_error(body).field, field, "for {body}");
        }
    }

    #[test]
    fn ttl_can_only_be_lowered() {
        let body =
            r#"{"host":"127.0.0.1","port":1,"uris":["a.com"],"stale_threshold_in_seconds":999}"#;
        let messages = parse_messages(body.as_bytes()).unwrap();
        let changes = messages[0]
            .clone()
            .registrations(Source::Admin, Some(Duration::from_secs(120)))
            .unwrap();
        let Change::Add(reg) = &changes[0] else {
            panic!("not an add")
        };
        assert_eq!(reg.ttl, Some(Duration::from_secs(120)));
    }
}
