//! Endpoint selection: picks the endpoint for one attempt of a request, skipping endpoints the
//! request already tried and endpoints at their connection limit.

use crate::config::BalancerKind;
use crate::routing::{Endpoint, Route};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Why no endpoint could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// Every endpoint was already tried (or the pool is empty).
    Exhausted,
    /// Every untried endpoint is at its connection limit.
    AllBusy,
}

/// What the balancer needs to know about the request so far.
#[derive(Debug, Default)]
pub struct Attempts {
    tried: Vec<usize>,
}

impl Attempts {
    /// Records that the endpoint at `index` was tried.
    pub fn record(&mut self, index: usize) {
        self.tried.push(index);
    }

    fn tried(&self, index: usize) -> bool {
        self.tried.contains(&index)
    }
}

/// Picks an endpoint of `route` for the next attempt. `max_conns` = 0 means no limit.
pub fn pick(
    route: &Route,
    attempts: &Attempts,
    max_conns: usize,
) -> Result<(usize, Arc<Endpoint>), PickError> {
    let endpoints = &route.pool.endpoints;
    let n = endpoints.len();
    if n == 0 {
        return Err(PickError::Exhausted);
    }
    let eligible = |i: usize| !attempts.tried(i);
    let free = |i: usize| max_conns == 0 || endpoints[i].in_flight() < max_conns;
    let chosen = match route.balancer {
        BalancerKind::LeastConnections => least_connections(endpoints, &eligible, &free),
        BalancerKind::Random => scan(fastrand::usize(..n), n, &eligible, &free),
        _ => scan(
            route.pool.cursor.fetch_add(1, Ordering::Relaxed),
            n,
            &eligible,
            &free,
        ),
    };
    match chosen {
        Some(i) => Ok((i, endpoints[i].clone())),
        None if (0..n).any(eligible) => Err(PickError::AllBusy),
        None => Err(PickError::Exhausted),
    }
}

/// The first eligible, non-full endpoint from `start` on (round-robin and random).
fn scan(
    start: usize,
    n: usize,
    eligible: &impl Fn(usize) -> bool,
    free: &impl Fn(usize) -> bool,
) -> Option<usize> {
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| eligible(i) && free(i))
}

/// The eligible endpoint with the fewest requests in flight; ties broken at random.
fn least_connections(
    endpoints: &[Arc<Endpoint>],
    eligible: &impl Fn(usize) -> bool,
    free: &impl Fn(usize) -> bool,
) -> Option<usize> {
    let n = endpoints.len();
    let start = fastrand::usize(..n);
    (0..n)
        .map(|k| (start + k) % n)
        .filter(|&i| eligible(i) && free(i))
        .min_by_key(|&i| endpoints[i].in_flight())
}
