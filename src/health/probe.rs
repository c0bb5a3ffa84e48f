//! The active-check state of a backend: when it is probed next and its streak of results.
//! `fall` failed probes in a row take it down, `rise` good ones bring it back (the active checker,
//! `checker`, runs the probes).

use crate::config::HealthCheck;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Probe schedule and result streak of one endpoint.
#[derive(Debug, Default)]
pub struct ProbeState {
    next_ms: AtomicU64,
    /// Good probes in a row (positive) or failed ones (negative).
    streak: AtomicI64,
}

impl ProbeState {
    /// True when a probe is due at `now`; if so, schedules the next one.
    pub fn due(&self, now: u64, interval: Duration) -> bool {
        if self.next_ms.load(Ordering::Relaxed) > now {
            return false;
        }
        self.next_ms
            .store(now + interval.as_millis() as u64, Ordering::Relaxed);
        true
    }

    /// Records a probe result; returns the endpoint's new `down` state when it changes.
    pub fn record(&self, ok: bool, check: &HealthCheck, down: bool) -> Option<bool> {
        let streak = self.streak.load(Ordering::Relaxed);
        let streak = match (ok, streak) {
            (true, s) => s.max(0) + 1,
            (false, s) => s.min(0) - 1,
        };
        self.streak.store(streak, Ordering::Relaxed);
        match down {
            true if streak >= i64::from(check.rise) => Some(false),
            false if -streak >= i64::from(check.fall) => Some(true),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;

    #[test]
    fn falls_and_rises_after_streaks() {
        let check = HealthCheck {
            path: "/health".into(),
            interval: ConfigDuration(Duration::from_secs(1)),
            timeout: ConfigDuration(Duration::from_secs(1)),
            rise: 2,
            fall: 3,
        };
        let state = ProbeState::default();
        assert_eq!(state.record(false, &check, false), None);
        assert_eq!(state.record(false, &check, false), None);
        assert_eq!(state.record(false, &check, false), Some(true));
        assert_eq!(state.record(true, &check, true), None);
        assert_eq!(state.record(true, &check, true), Some(false));
        assert!(state.due(0, Duration::from_secs(1)));
        assert!(!state.due(500, Duration::from_secs(1)));
        assert!(state.due(1000, Duration::from_secs(1)));
    }
}
