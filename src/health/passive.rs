//! Passive health, counted in outages rather than failed attempts. The first failed attempt
//! ejects the endpoint for `base`; failures during an ejection change nothing (a dead backend
//! under load fails many requests at once, but it is one outage). When the ejection runs out
//! the endpoint is half-open: the next request to pick it becomes the probe, the only request
//! sent there until it ends. A probe answered re-admits the endpoint; a probe failed ejects it
//! again for twice as long, up to `max`. Any answer from the endpoint re-admits it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// How long failing endpoints stay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// The first ejection of an outage; doubles with each failed probe.
    pub base: Duration,
    /// Longest ejection.
    pub max: Duration,
    /// Ejections in a row (the first plus failed probes) after which a registered endpoint is
    /// removed from its route (it comes back with its next registration); 0 = never.
    pub remove_registered_after: u32,
}

impl Default for EjectionPolicy {
    /// 250 ms doubling to 1 s (a restarted backend serves again within about a second);
    /// registered endpoints removed after 5 ejections in a row.
    fn default() -> Self {
        EjectionPolicy {
            base: Duration::from_millis(250),
            max: Duration::from_secs(1),
            remove_registered_after: 5,
        }
    }
}

impl EjectionPolicy {
    /// The length of the `period`-th ejection in a row (1 = the first).
    pub fn backoff(&self, period: u32) -> Duration {
        let doublings = period.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Where an endpoint stands with passive health at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Takes traffic.
    Admitted,
    /// Out until the ejection ends, `remaining_ms` from now.
    Ejected { remaining_ms: u64 },
    /// The ejection ended: the next request to pick it probes it.
    HalfOpen,
    /// A probe request is out and decides.
    Probing,
}

/// What a failed attempt did to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing: the endpoint was already out (an outage is counted once).
    Absorbed,
    /// Ejected: `period` = ejections in a row (1 = a new outage), for `ejected_for`.
    Ejected { period: u32, ejected_for: Duration },
}

/// The passive-health record of one endpoint.
#[derive(Debug, Default)]
pub struct PassiveHealth {
    /// 0 while admitted; else when the current ejection ends (`now_ms` clock, never 0).
    ejected_until_ms: AtomicU64,
    /// When the current outage began.
    outage_since_ms: AtomicU64,
    /// Ejections in a row in the current outage.
    period: AtomicU32,
    /// A probe request is out.
    probing: AtomicBool,
    /// Outages begun, in total.
    outages: AtomicU64,
}

impl PassiveHealth {
    /// Records a failed attempt at `now_ms`. `probe` says whether the attempt was this
    /// endpoint's probe; a failure that is not one only counts while the endpoint is admitted.
    pub fn failed(&self, policy: &EjectionPolicy, now_ms: u64, probe: bool) -> Failure {
        if probe {
            let period = self.period.fetch_add(1, Ordering::Relaxed) + 1;
            let ejected_for = policy.backoff(period);
            self.eject_until(now_ms, ejected_for);
            self.probing.store(false, Ordering::Release);
            return Failure::Ejected {
                period,
                ejected_for,
            };
        }
        let ejected_for = policy.backoff(1);
        let until = (now_ms + ejected_for.as_millis() as u64).max(1);
        let admitted = self
            .ejected_until_ms
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if !admitted {
            return Failure::Absorbed;
        }
        self.period.store(1, Ordering::Relaxed);
        self.outage_since_ms.store(now_ms, Ordering::Relaxed);
        self.outages.fetch_add(1, Ordering::Relaxed);
        Failure::Ejected {
            period: 1,
            ejected_for,
        }
    }

    fn eject_until(&self, now_ms: u64, ejected_for: Duration) {
        let until = (now_ms + ejected_for.as_millis() as u64).max(1);
        self.ejected_until_ms.store(until, Ordering::Release);
    }

    /// Records an answered attempt: re-admits the endpoint if it was out, and then returns how
    /// long the outage lasted (until `now_ms`). One relaxed load, and no clock read, when it was
    /// admitted.
    pub fn succeeded(&self, now_ms: impl FnOnce() -> u64) -> Option<Duration> {
        if self.ejected_until_ms.load(Ordering::Relaxed) == 0 {
            return None;
        }
        if self.ejected_until_ms.swap(0, Ordering::AcqRel) == 0 {
            return None;
        }
        self.period.store(0, Ordering::Relaxed);
        self.probing.store(false, Ordering::Release);
        let since = self.outage_since_ms.load(Ordering::Relaxed);
        Some(Duration::from_millis(now_ms().saturating_sub(since)))
    }

    /// True when requests should go elsewhere: ejected, or half-open with its probe out. Reads
    /// the clock only when the endpoint is out.
    pub fn unavailable(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && (until > now_ms() || self.probing.load(Ordering::Acquire))
    }

    /// True when the endpoint is out or half-open (a request picking it must claim the probe).
    pub fn needs_probe(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) != 0
    }

    /// Claims the probe of a half-open endpoint at `now_ms`; false when it is still ejected or
    /// another request holds the probe.
    pub fn claim_probe(&self, now_ms: u64) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Acquire);
        until != 0
            && until <= now_ms
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Gives the probe back undecided (the request ended without an answer or a failure of
    /// the endpoint's making): the next request to pick the endpoint probes it.
    pub fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// The endpoint's standing at `now_ms`.
    pub fn standing(&self, now_ms: u64) -> Standing {
        match self.ejected_until_ms.load(Ordering::Acquire) {
            0 => Standing::Admitted,
            until if until > now_ms => Standing::Ejected {
                remaining_ms: until - now_ms,
            },
            _ if self.probing.load(Ordering::Acquire) => Standing::Probing,
            _ => Standing::HalfOpen,
        }
    }

    /// Outages begun, in total (an outage is one ejection however many attempts it failed).
    pub fn ejections(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// Ejections in a row in the current outage (0 while admitted).
    pub fn period(&self) -> u32 {
        self.period.load(Ordering::Relaxed)
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

    fn ejected(period: u32, secs: u64) -> Failure {
        Failure::Ejected {
            period,
            ejected_for: Duration::from_secs(secs),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let backoffs: Vec<u64> = (1..=5).map(|n| POLICY.backoff(n).as_secs()).collect();
        assert_eq!(backoffs, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn an_outage_is_one_ejection_however_many_attempts_fail() {
        let health = PassiveHealth::default();
        assert!(!health.unavailable(|| panic!("no clock read while admitted")));
        assert_eq!(health.failed(&POLICY, 1000, false), ejected(1, 1));
        for now in [1000, 1001, 1500, 1999] {
            assert_eq!(health.failed(&POLICY, now, false), Failure::Absorbed);
        }
        assert!(health.unavailable(|| 1999));
        assert_eq!(
            health.standing(1500),
            Standing::Ejected { remaining_ms: 500 }
        );
        assert_eq!(health.ejections(), 1);
    }

    /// (time, event, standing after): the half-open cycle of one outage.
    #[test]
    fn half_open_lets_one_probe_decide() {
        let health = PassiveHealth::default();
        health.failed(&POLICY, 0, false);
        assert!(!health.claim_probe(999), "still ejected");
        assert!(
            !health.unavailable(|| 1000),
            "half-open: a request may probe"
        );
        assert_eq!(health.standing(1000), Standing::HalfOpen);
        assert!(health.claim_probe(1000));
        assert!(!health.claim_probe(1000), "one probe at a time");
        assert!(health.unavailable(|| 1000), "others go elsewhere");
        assert_eq!(health.standing(1000), Standing::Probing);
        // A stale failure (not the probe) changes nothing.
        assert_eq!(health.failed(&POLICY, 1001, false), Failure::Absorbed);
        // The probe fails: out twice as long.
        assert_eq!(health.failed(&POLICY, 1010, true), ejected(2, 2));
        assert_eq!(
            health.standing(1010),
            Standing::Ejected { remaining_ms: 2000 }
        );
        assert!(health.claim_probe(3010));
        assert_eq!(health.failed(&POLICY, 3010, true), ejected(3, 4));
        assert!(health.claim_probe(7010));
        assert_eq!(health.failed(&POLICY, 7010, true), ejected(4, 5));
        // An abandoned probe frees the slot for the next request.
        assert!(health.claim_probe(12_010));
        health.release_probe();
        assert!(health.claim_probe(12_020));
        // The probe answers: admitted, the outage lasted since the first failure.
        assert_eq!(
            health.succeeded(|| 12_100),
            Some(Duration::from_millis(12_100))
        );
        assert_eq!(health.standing(12_100), Standing::Admitted);
        assert_eq!(
            health.succeeded(|| panic!("no clock read while admitted")),
            None
        );
        assert_eq!(health.period(), 0);
        // The next outage starts again at the base.
        assert_eq!(health.failed(&POLICY, 20_000, false), ejected(1, 1));
        assert_eq!(health.ejections(), 2);
    }
}
