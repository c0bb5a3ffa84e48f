//! Passive health: an endpoint whose attempt fails is ejected for a backoff that doubles with
//! each consecutive failure (up to a ceiling) and is re-admitted when it runs out; the next
//! request to pick it is the probe. One success clears the record.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// How long failing endpoints stay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Ejection after the first failure; doubles with each further consecutive failure.
    pub base: Duration,
    /// Longest ejection.
    pub max: Duration,
    /// Consecutive failures after which a registered endpoint is removed from its route
    /// (it comes back with its next registration); 0 = never.
    pub remove_registered_after: u32,
}

impl Default for EjectionPolicy {
    /// 1 s doubling to 30 s; registered endpoints removed after 5 failures in a row.
    fn default() -> Self {
        EjectionPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            remove_registered_after: 5,
        }
    }
}

impl EjectionPolicy {
    /// The ejection after `failures` consecutive failures.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Failure record of one endpoint.
#[derive(Debug, Default)]
pub struct PassiveHealth {
    consecutive: AtomicU32,
    ejected_until_ms: AtomicU64,
    ejections: AtomicU64,
}

impl PassiveHealth {
    /// Records a failure at `now_ms`: ejects for the policy's backoff. Returns the consecutive
    /// failure count.
    pub fn failed(&self, policy: &EjectionPolicy, now_ms: u64) -> u32 {
        let failures = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        let until = now_ms + policy.backoff(failures).as_millis() as u64;
        self.ejected_until_ms.store(until.max(1), Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        failures
    }

    /// Records a success: clears the failure record (writes only when there is one).
    pub fn succeeded(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// True while ejected; reads the clock only when an ejection was ever recorded.
    pub fn ejected_at(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && until > now_ms()
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    /// Times this endpoint was ejected.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: EjectionPolicy = EjectionPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(5),
        remove_registered_after: 0,
    };

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let backoffs: Vec<u64> = (1..=5).map(|n| POLICY.backoff(n).as_secs()).collect();
        assert_eq!(backoffs, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn ejects_then_readmits_and_success_clears() {
        let health = PassiveHealth::default();
        assert!(!health.ejected_at(|| panic!("no clock read while healthy")));
        assert_eq!(health.failed(&POLICY, 1000), 1);
        assert!(health.ejected_at(|| 1500));
        assert!(!health.ejected_at(|| 2001));
        assert_eq!(health.failed(&POLICY, 2001), 2);
        assert!(health.ejected_at(|| 3500));
        health.succeeded();
        assert!(!health.ejected_at(|| 2002));
        assert_eq!(health.consecutive_failures(), 0);
        assert_eq!(health.ejections(), 2);
    }
}
