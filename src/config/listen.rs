//! Listen addresses in the config: `"127.0.0.1:8080"`, `"[::1]:8080"`, `":8080"` (every
//! interface, as nginx's `listen 8080`), `"localhost:8080"` (a name, resolved when the config
//! is read; IPv4 first), or `"off"` for a listener that can be switched off.

use serde::{Deserialize, Deserializer};
use std::net::{SocketAddr, ToSocketAddrs};

/// A listen address read from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

const FORMS: &str = "write \"ip:port\", \":port\" (every interface), \"host:port\"";

impl ListenAddr {
    /// Parses one of the forms above (not `"off"`).
    pub fn parse(text: &str) -> Result<ListenAddr, String> {
        let text = text.trim();
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr(address));
        }
        if let Some(port) = text.strip_prefix(':') {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("bad port in {text:?}: {FORMS}"))?;
            return Ok(ListenAddr(SocketAddr::from(([0, 0, 0, 0], port))));
        }
        if !text.contains(':') {
            return Err(format!("{text:?} has no port: {FORMS}"));
        }
        let mut found: Vec<SocketAddr> = text
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {text:?} ({e}): {FORMS}"))?
            .collect();
        found.sort_by_key(SocketAddr::is_ipv6);
        found
            .first()
            .map(|address| ListenAddr(*address))
            .ok_or_else(|| format!("{text:?} resolves to no address"))
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ListenAddr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A listener that may be switched off with `"off"`.
pub fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim() == "off" {
        return Ok(None);
    }
    let address = ListenAddr::parse(&text)
        .map_err(|e| serde::de::Error::custom(format!("{e}, or \"off\"")))?;
    Ok(Some(address.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_operators_write() {
        let table = [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]:8080", "[::1]:8080"),
            (":8080", "0.0.0.0:8080"),
            ("localhost:8080", "127.0.0.1:8080"),
        ];
        for (text, expected) in table {
            assert_eq!(
                ListenAddr::parse(text).unwrap().0.to_string(),
                expected,
                "{text}"
            );
        }
        for bad in [
            "8080",
            ":http",
            "localhost",
            "no-such-host.invalid:80",
            ":99999",
        ] {
            assert!(ListenAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
