//! Leases of registered endpoints: a time to live, refreshed by each identical registration and
//! checked by the pruner. Refreshing is one atomic store, so heartbeats never rebuild the table.

use crate::clock::now_ms;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a registered endpoint lives unless refreshed.
#[derive(Debug)]
pub struct Lease {
    /// Time to live after the last refresh.
    pub ttl: Duration,
    refreshed_ms: AtomicU64,
}

impl Lease {
    /// A lease starting now.
    pub fn new(ttl: Duration) -> Lease {
        Lease {
            ttl,
            refreshed_ms: AtomicU64::new(now_ms()),
        }
    }

    /// Restarts the lease from now.
    pub fn refresh(&self) {
        self.refreshed_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Time left before the lease expires, at `now` (from [`now_ms`]).
    pub fn remaining(&self, now: u64) -> Duration {
        let expires = self.refreshed_ms.load(Ordering::Relaxed) + self.ttl.as_millis() as u64;
        Duration::from_millis(expires.saturating_sub(now))
    }

    /// True once the lease has run out at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.remaining(now).is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_ttl_unless_refreshed() {
        let lease = Lease::new(Duration::from_millis(50));
        let start = now_ms();
        assert!(!lease.expired(start));
        assert!(lease.expired(start + 60));
        std::thread::sleep(Duration::from_millis(20));
        lease.refresh();
        assert!(!lease.expired(start + 60));
    }
}
