//! Route-service host names to addresses: the system resolver's answer is kept for `TTL`
//! (IPv4 addresses first), looked up again after it, and kept past it when a new lookup fails,
//! so a resolver outage does not take route services down with it.

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer is used before it is looked up again.
const TTL: Duration = Duration::from_secs(30);

/// Most names kept; the cache is emptied past it (route-service names are few).
const MAX_NAMES: usize = 1024;

type Addresses = Arc<[SocketAddr]>;

/// A caching resolver for route-service hosts.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, u16), (Instant, Addresses)>>,
}

impl Resolver {
    /// The addresses of `host` (a name, an IP address, or a bracketed IPv6 address) at `port`.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Addresses> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(Arc::from([SocketAddr::new(ip, port)]));
        }
        let key = (host.to_ascii_lowercase(), port);
        let cached = self.lock().get(&key).cloned();
        if let Some((at, addresses)) = &cached
            && at.elapsed() < TTL
        {
            return Ok(addresses.clone());
        }
        let looked_up = tokio::net::lookup_host((host, port)).await.map(|found| {
            let mut addresses: Vec<SocketAddr> = found.collect();
            addresses.sort_by_key(SocketAddr::is_ipv6);
            addresses.dedup();
            addresses
        });
        match looked_up {
            Ok(addresses) if !addresses.is_empty() => {
                let addresses: Addresses = addresses.into();
                let mut cache = self.lock();
                if cache.len() >= MAX_NAMES {
                    cache.clear();
                }
                cache.insert(key, (Instant::now(), addresses.clone()));
                Ok(addresses)
            }
            failed => match cached {
                Some((_, stale)) => Ok(stale),
                None => Err(failed.err().unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                })),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u16), (Instant, Addresses)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_names_and_failures() {
        let resolver = Resolver::default();
        let v4 = resolver.resolve("127.0.0.1", 443).await.unwrap();
        assert_eq!(&*v4, [SocketAddr::from(([127, 0, 0, 1], 443))]);
        let v6 = resolver.resolve("[::1]", 8443).await.unwrap();
        assert!(v6[0].is_ipv6());
        let local = resolver.resolve("localhost", 8443).await.unwrap();
        assert!(
            local[0].ip().is_loopback() && local[0].is_ipv4(),
            "{local:?}"
        );
        assert!(resolver.resolve("no-such-host.invalid", 443).await.is_err());
    }
}
