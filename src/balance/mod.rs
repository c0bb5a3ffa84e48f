//! Endpoint selection: picks the endpoint for one attempt of a request with the route's
//! balancer (round-robin, random, least-connections, P2C over peak-EWMA latency, Maglev hash
//! on a header or cookie), skipping endpoints the request already tried, endpoints at their
//! connection limit and unhealthy ones. An endpoint whose ejection ran out is taken by one
//! request at a time, its probe ([`ProbeClaim`]). When every candidate is unhealthy it fails
//! open: a pool is never emptied by ejection.

use crate::clock::now_ms;
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

/// An endpoint the request asks for, by its index in the route's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Affinity {
    /// Any endpoint the balancer chooses.
    #[default]
    None,
    /// A sticky session's instance: taken for the first attempt unless it is at its
    /// connection limit (ejected or not, as gorouter: the session lives there); later attempts
    /// and a busy instance go to the balancer.
    Prefer(usize),
    /// Instance-targeted routing: this endpoint and no other.
    Only(usize),
}

/// The endpoints a request already tried.
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

    fn none(&self) -> bool {
        self.tried.is_empty()
    }
}

/// The endpoint chosen for an attempt.
#[derive(Debug)]
pub struct Picked {
    /// Its index in the route's pool.
    pub index: usize,
    /// The endpoint.
    pub endpoint: Arc<Endpoint>,
    /// True when every candidate was unhealthy and this one was taken anyway.
    pub failed_open: bool,
    /// Set when this attempt is the probe of an endpoint whose ejection ran out.
    pub probe: Option<ProbeClaim>,
}

/// The probe of a half-open endpoint, held by the one attempt that decides whether it is
/// re-admitted. Dropped undecided, it gives the probe back to the next request.
#[derive(Debug)]
pub struct ProbeClaim(Arc<Endpoint>);

impl Drop for ProbeClaim {
    fn drop(&mut self) {
        self.0.health.passive.release_probe();
    }
}

/// Picks an endpoint of `route` for the next attempt. `max_conns` = 0 means no limit; `hash`
/// is the request's hash key value (hash balancer; `None` falls back to round-robin);
/// `affinity` the instance the request asks for.
pub fn pick(
    route: &Route,
    attempts: &Attempts,
    max_conns: usize,
    hash: Option<u64>,
    affinity: Affinity,
) -> Result<Picked, PickError> {
    let endpoints = &route.pool.endpoints;
    let n = endpoints.len();
    if n == 0 {
        return Err(PickError::Exhausted);
    }
    let below_limit = |i: usize| max_conns == 0 || endpoints[i].in_flight() < max_conns;
    let candidate = |i: usize| !attempts.tried(i) && below_limit(i);
    let picked = |index: usize, failed_open: bool, probe: Option<ProbeClaim>| Picked {
        index,
        endpoint: endpoints[index].clone(),
        failed_open,
        probe,
    };
    match affinity {
        Affinity::Only(index) if index < n => {
            return match (attempts.tried(index), below_limit(index)) {
                (true, _) => Err(PickError::Exhausted),
                (false, false) => Err(PickError::AllBusy),
                (false, true) => Ok(picked(index, false, None)),
            };
        }
        Affinity::Prefer(index) if index < n && attempts.none() && below_limit(index) => {
            return Ok(picked(index, false, None));
        }
        _ => {}
    }
    let healthy = |i: usize| candidate(i) && !endpoints[i].health.unavailable();
    // Half-open endpoints another request claimed first.
    let mut claimed_elsewhere: Vec<usize> = Vec::new();
    while let Some(index) = choose(route, hash, |i| {
        healthy(i) && !claimed_elsewhere.contains(&i)
    }) {
        let passive = &endpoints[index].health.passive;
        if !passive.needs_probe() {
            return Ok(picked(index, false, None));
        }
        if passive.claim_probe(now_ms()) {
            let claim = ProbeClaim(endpoints[index].clone());
            return Ok(picked(index, false, Some(claim)));
        }
        if !passive.needs_probe() {
            return Ok(picked(index, false, None));
        }
        claimed_elsewhere.push(index);
    }
    match choose(route, hash, candidate) {
        Some(index) => Ok(picked(index, true, None)),
        None if (0..n).any(|i| !attempts.tried(i)) => Err(PickError::AllBusy),
        None => Err(PickError::Exhausted),
    }
}

/// The route's balancer over the endpoints for which `ok` holds.
fn choose(route: &Route, hash: Option<u64>, ok: impl Fn(usize) -> bool) -> Option<usize> {
    let pool = &route.pool;
    let n = pool.endpoints.len();
    let round_robin = || scan(pool.cursor.fetch_add(1, Ordering::Relaxed), n, &ok);
    match route.balancer {
        BalancerKind::RoundRobin => round_robin(),
        BalancerKind::Random => scan(fastrand::usize(..n), n, &ok),
        BalancerKind::LeastConnections => least_connections(&pool.endpoints, &ok),
        BalancerKind::P2cEwma => power_of_two(&pool.endpoints, &ok),
        BalancerKind::Hash => match (hash, &pool.maglev) {
            (Some(hash), Some(maglev)) => maglev.walk(hash).find(|&i| ok(i)),
            _ => round_robin(),
        },
    }
}

/// The first endpoint from `start` on (modulo `n`) for which `ok` holds.
fn scan(start: usize, n: usize, ok: &impl Fn(usize) -> bool) -> Option<usize> {
    (0..n).map(|k| (start + k) % n).find(|&i| ok(i))
}

/// The endpoint with the fewest requests in flight; ties broken at random.
fn least_connections(endpoints: &[Arc<Endpoint>], ok: &impl Fn(usize) -> bool) -> Option<usize> {
    let n = endpoints.len();
    let start = fastrand::usize(..n);
    (0..n)
        .map(|k| (start + k) % n)
        .filter(|&i| ok(i))
        .min_by_key(|&i| endpoints[i].in_flight())
}

/// Two endpoints at random; the one with the lower latency x (in flight + 1) wins.
fn power_of_two(endpoints: &[Arc<Endpoint>], ok: &impl Fn(usize) -> bool) -> Option<usize> {
    let n = endpoints.len();
    let first = scan(fastrand::usize(..n), n, ok)?;
    let Some(second) = scan(fastrand::usize(..n), n, &|i| i != first && ok(i)) else {
        return Some(first);
    };
    let cost = |i: usize| {
        let endpoint = &endpoints[i];
        endpoint.health.latency.estimate_micros() * (endpoint.in_flight() + 1) as f64
    };
    Some(if cost(second) < cost(first) {
        second
    } else {
        first
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::EjectionPolicy;
    use crate::routing::{EndpointSpec, RouteOptions, RouteUri, Source};

    fn route(ports: &[u16]) -> Route {
        let endpoints = ports
            .iter()
            .map(|&port| {
                let spec = EndpointSpec::loopback(port);
                Arc::new(Endpoint::new(
                    spec,
                    Source::Config,
                    None,
                    Default::default(),
                ))
            })
            .collect();
        let uri = RouteUri::parse("a.test").unwrap();
        Route::new(
            uri,
            RouteOptions::default(),
            endpoints,
            BalancerKind::RoundRobin,
            None,
        )
    }

    #[test]
    fn a_half_open_endpoint_takes_one_probe_at_a_time() {
        let route = route(&[1, 2]);
        let passive = &route.pool.endpoints[0].health.passive;
        let policy = EjectionPolicy {
            base: std::time::Duration::from_millis(1),
            ..EjectionPolicy::default()
        };
        passive.failed(&policy, now_ms(), false);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let pick = || pick(&route, &Attempts::default(), 0, None, Affinity::None).unwrap();
        // Round-robin reaches the half-open endpoint within two picks; that pick is its probe.
        let probe = (0..2)
            .map(|_| pick())
            .find(|picked| picked.index == 0)
            .expect("the half-open endpoint was picked");
        assert!(probe.probe.is_some() && !probe.failed_open);
        for _ in 0..4 {
            let other = pick();
            assert_eq!(other.index, 1, "no second request while the probe is out");
            assert!(other.probe.is_none());
        }
        // Dropped undecided: the next request to pick it probes it.
        drop(probe);
        let again = (0..2).map(|_| pick()).find(|picked| picked.index == 0);
        assert!(again.is_some_and(|picked| picked.probe.is_some()));
        // With only the probed endpoint left to try, the pool fails open (no probe claim).
        let mut tried = Attempts::default();
        tried.record(1);
        let claim = (0..2)
            .map(|_| pick())
            .find(|picked| picked.index == 0)
            .unwrap();
        let open = super::pick(&route, &tried, 0, None, Affinity::None).unwrap();
        assert_eq!((open.index, open.failed_open), (0, true));
        assert!(open.probe.is_none());
        drop(claim);
    }
}
