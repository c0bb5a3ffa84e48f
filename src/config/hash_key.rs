//! What the hash balancer hashes: a request header or a cookie (`header:<name>` or
//! `cookie:<name>` in the config file).

use http::header::{COOKIE, HeaderMap, HeaderName};
use serde::Deserialize;
use std::fmt;

/// FNV-1a, 64 bit: stable across processes and versions, so every router maps a key alike.
pub fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The request value that picks an endpoint under the hash balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The value of this header.
    Header(HeaderName),
    /// The value of this cookie.
    Cookie(String),
}

impl HashKey {
    /// Parses `header:<name>` or `cookie:<name>`.
    pub fn parse(text: &str) -> Result<HashKey, String> {
        let invalid = || {
            format!("invalid hash key {text:?}: expected \"header:<name>\" or \"cookie:<name>\"")
        };
        let (kind, name) = text.split_once(':').ok_or_else(invalid)?;
        let name = name.trim();
        match kind.trim() {
            "header" => HeaderName::from_bytes(name.as_bytes())
                .map(HashKey::Header)
                .map_err(|_| invalid()),
            "cookie" if !name.is_empty() => Ok(HashKey::Cookie(name.to_string())),
            _ => Err(invalid()),
        }
    }

    /// The hash of this key's value in `headers`, or `None` when the request lacks it.
    pub fn hash(&self, headers: &HeaderMap) -> Option<u64> {
        match self {
            HashKey::Header(name) => headers.get(name).map(|v| fnv1a(v.as_bytes(), 0)),
            HashKey::Cookie(name) => headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(key, _)| key == name)
                .map(|(_, value)| fnv1a(value.as_bytes(), 0)),
        }
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::Header(name) => write!(f, "header:{name}"),
            HashKey::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

impl<'de> Deserialize<'de> for HashKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HashKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HashKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hashes_headers_and_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "alice".parse().unwrap());
        headers.insert(COOKIE, "a=1; session=abc; b=2".parse().unwrap());
        let header = HashKey::parse("header:X-User").unwrap();
        let cookie = HashKey::parse("cookie:session").unwrap();
        assert_eq!(header.hash(&headers), Some(fnv1a(b"alice", 0)));
        assert_eq!(cookie.hash(&headers), Some(fnv1a(b"abc", 0)));
        assert_eq!(HashKey::parse("cookie:none").unwrap().hash(&headers), None);
        for bad in ["x-user", "header:", "cookie:", "query:x", "header:bad name"] {
            assert!(HashKey::parse(bad).is_err(), "{bad}");
        }
    }
}
