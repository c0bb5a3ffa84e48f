//! Endpoint health: passive ejection after failures (`passive`), response latency for the P2C
//! balancer (`latency`), and optional active checks per route (`active`). The state lives in
//! each endpoint's [`EndpointHealth`], so it survives route-table snapshots.

mod active;
mod latency;
mod passive;

pub use active::{ProbeState, spawn_checker};
pub use latency::PeakEwma;
pub use passive::{EjectionPolicy, PassiveHealth};

use crate::routing::now_ms;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the router knows about an endpoint's health.
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
    /// True when the balancer should prefer other endpoints (ejected or checked down).
    pub fn unavailable(&self) -> bool {
        self.down.load(Ordering::Relaxed) || self.passive.ejected_at(now_ms)
    }
}
