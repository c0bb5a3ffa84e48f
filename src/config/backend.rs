//! A backend entry in a `[[route]]`: either `"ip:port"` or a table with TLS and instance data.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// One backend of a static route.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Where to connect.
    pub address: SocketAddr,
    /// Connect with TLS, verifying the certificate against `server_cert_domain_san`.
    pub tls: bool,
    /// Name the backend's certificate must carry (defaults to the address's IP).
    pub server_cert_domain_san: Option<String>,
    /// Application id (sent as `X-CF-ApplicationID`).
    pub app_id: String,
    /// Instance id (sent as `X-CF-InstanceID`; used for sticky sessions).
    pub instance_id: String,
    /// Instance index (sent as `X-CF-InstanceIndex`).
    pub instance_index: String,
    /// Free-form tags shown in `/routes`.
    pub tags: BTreeMap<String, String>,
}

impl BackendConfig {
    /// A plain-HTTP backend with no instance data.
    pub fn plain(address: SocketAddr) -> Self {
        BackendConfig {
            address,
            tls: false,
            server_cert_domain_san: None,
            app_id: String::new(),
            instance_id: String::new(),
            instance_index: String::new(),
            tags: BTreeMap::new(),
        }
    }
}

/// Resolves `host:port` (an IP literal or a name resolved once, at load time).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!(
            "invalid backend address {text:?}: expected host:port"
        ));
    }
    text.to_socket_addrs()
        .map_err(|e| format!("invalid backend address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("backend address {text:?} resolved to nothing"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendTable {
    address: String,
    #[serde(default)]
    tls: bool,
    server_cert_domain_san: Option<String>,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    instance_index: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for BackendConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BackendVisitor;

        impl<'de> Visitor<'de> for BackendVisitor {
            type Value = BackendConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"ip:port\" or a table with `address`")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<BackendConfig, E> {
                parse_address(text)
                    .map(BackendConfig::plain)
                    .map_err(E::custom)
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<BackendConfig, M::Error> {
                let table = BackendTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let address = parse_address(&table.address).map_err(de::Error::custom)?;
                Ok(BackendConfig {
                    address,
                    tls: table.tls,
                    server_cert_domain_san: table.server_cert_domain_san,
                    app_id: table.app_id,
                    instance_id: table.instance_id,
                    instance_index: table.instance_index,
                    tags: table.tags,
                })
            }
        }

        deserializer.deserialize_any(BackendVisitor)
    }
}
