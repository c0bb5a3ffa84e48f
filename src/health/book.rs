//! The health records of all backends, one per backend, so that every route using a backend
//! shares what is known about it.

use super::EndpointHealth;
use crate::target::Target;
use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, Weak};

/// Health records by backend. Records are held by the endpoints that use them; the book only
/// finds them again, so a backend no route uses any more is forgotten.
#[derive(Debug, Default)]
pub struct HealthBook {
    records: HashMap<Target, Weak<EndpointHealth>>,
    /// Size at which dead entries are swept next.
    sweep_at: usize,
}

/// Fewest entries before the book sweeps dead ones.
const MIN_SWEEP: usize = 1024;

impl HealthBook {
    /// The record of `target`: the one its other endpoints share, or a new one.
    pub fn record(&mut self, target: &Target) -> Arc<EndpointHealth> {
        if let Some(health) = self.records.get(target).and_then(Weak::upgrade) {
            return health;
        }
        if self.records.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.records.retain(|_, record| record.strong_count() > 0);
            self.sweep_at = self.records.len() * 2;
        }
        let health = Arc::new(EndpointHealth::default());
        self.records.insert(target.clone(), Arc::downgrade(&health));
        health
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamProtocol;
    use std::net::SocketAddr;

    fn key(port: u16, protocol: UpstreamProtocol, tls: Option<&str>) -> Target {
        Target {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            protocol,
            tls_name: tls.map(Arc::from),
            trust: Default::default(),
        }
    }

    #[test]
    fn one_record_per_backend_while_used() {
        let mut book = HealthBook::default();
        let a = book.record(&key(1, UpstreamProtocol::Http1, None));
        let again = book.record(&key(1, UpstreamProtocol::Http1, None));
        assert!(Arc::ptr_eq(&a, &again));
        for other in [
            key(2, UpstreamProtocol::Http1, None),
            key(1, UpstreamProtocol::Http2, None),
            key(1, UpstreamProtocol::Http1, Some("a.test")),
        ] {
            assert!(!Arc::ptr_eq(&a, &book.record(&other)));
        }
        drop((a, again));
        let fresh = book.record(&key(1, UpstreamProtocol::Http1, None));
        assert_eq!(fresh.passive.ejections(), 0);
    }

    #[test]
    fn dead_records_are_swept() {
        let mut book = HealthBook::default();
        for port in 0..10_000 {
            drop(book.record(&key(port, UpstreamProtocol::Http1, None)));
        }
        assert!(book.records.len() <= MIN_SWEEP, "{}", book.records.len());
    }
}
