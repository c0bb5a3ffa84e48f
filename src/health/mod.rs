//! Endpoint health, as state and pure decisions (the request path and the active checker,
//! `checker`, feed it): passive ejection after failures (`passive`), response latency
//! for the P2C balancer (`latency`), the active-check streak (`probe`). The state of one
//! backend (its [`Target`](crate::target::Target)) is one [`EndpointHealth`], shared through the
//! [`HealthBook`] by every route that uses the backend and kept across route-table snapshots:
//! a backend learned dead on one route is skipped on all of them.

mod book;
mod latency;
mod passive;
mod probe;

pub use book::HealthBook;
pub use latency::PeakEwma;
pub use passive::{EjectionPolicy, Failure, PassiveHealth, Standing};
pub use probe::ProbeState;

use crate::clock::now_ms;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the router knows about a backend's health.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    /// Failures and ejection (passive health).
    pub passive: PassiveHealth,
    /// Set by active checks after `fall` failed probes, cleared after `rise` good ones.
    pub down: AtomicBool,
    /// Active-check schedule and streak.
    pub probe: ProbeState,
    /// Response-head latency (P2C).
    pub latency: PeakEwma,
}

impl EndpointHealth {
    /// True when the balancer should prefer other endpoints (ejected, its half-open probe out,
    /// or checked down).
    pub fn unavailable(&self) -> bool {
        self.down.load(Ordering::Relaxed) || self.passive.unavailable(now_ms)
    }
}
