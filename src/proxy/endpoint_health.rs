//! What an attempt's result does to its endpoint's (shared, per-backend) health: an answer
//! re-admits an ejected endpoint; a failure of the endpoint's making ejects it, once per outage
//! (a failed probe ejects it again, for longer); a registered endpoint ejected
//! `remove_registered_after` times in a row is removed from its route. The start and the end
//! of an outage are logged at INFO (two lines per outage, however many requests it failed) and
//! counted.

use crate::balance::ProbeClaim;
use crate::clock::now_ms;
use crate::health::{EjectionPolicy, Failure};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::routing::{Endpoint, Route};
use std::fmt::Display;
use std::sync::atomic::Ordering;

/// Where attempt results are recorded.
pub struct HealthReport<'a> {
    /// Removes registered endpoints that keep failing.
    pub registry: &'a dyn Registry,
    /// Counts ejections, re-admissions and probes.
    pub metrics: &'a Metrics,
    /// Ejection lengths and the removal threshold.
    pub policy: &'a EjectionPolicy,
}

impl HealthReport<'_> {
    /// `endpoint` answered (a response head came back).
    pub fn answered(&self, endpoint: &Endpoint, probe: Option<ProbeClaim>) {
        if probe.is_some() {
            self.metrics.probe_result(true);
        }
        if let Some(out_for) = endpoint.health.passive.succeeded(now_ms) {
            self.metrics.readmitted();
            tracing::info!(
                endpoint = %endpoint.spec.address,
                out_ms = out_for.as_millis() as u64,
                "endpoint re-admitted: it answered"
            );
        }
    }

    /// An attempt to `endpoint` of `route` failed because of the endpoint (`cause`).
    pub fn failed(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        probe: Option<ProbeClaim>,
        cause: &dyn Display,
    ) {
        endpoint.stats.failures.fetch_add(1, Ordering::Relaxed);
        let failure = endpoint
            .health
            .passive
            .failed(self.policy, now_ms(), probe.is_some());
        if probe.is_some() {
            self.metrics.probe_result(false);
        }
        let Failure::Ejected {
            period,
            ejected_for,
        } = failure
        else {
            return;
        };
        let address = endpoint.spec.address;
        let ejected_ms = ejected_for.as_millis() as u64;
        if period == 1 {
            self.metrics.ejected();
            tracing::warn!(endpoint = %address, route = %route.uri, %cause, ejected_ms, "endpoint ejected");
        } else {
            tracing::debug!(endpoint = %address, %cause, period, ejected_ms, "probe failed: endpoint ejected again");
        }
        let limit = self.policy.remove_registered_after;
        if endpoint.lease.is_some() && limit > 0 && period == limit {
            tracing::warn!(endpoint = %address, route = %route.uri, ejections = period, "failing endpoint removed from its route");
            self.registry.delete(route.uri.clone(), address);
        }
    }
}
