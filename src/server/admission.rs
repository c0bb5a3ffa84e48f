//! How many client connections may be open at once: across the router and from one IP address
//! (`[server] max_connections`, `max_connections_per_ip`). A connection over either limit is
//! closed as soon as it is accepted, before anything is read from it, and counted
//! (`switchyard_client_connections_refused_total`). One instance is shared by every worker.
//!
//! It also counts HTTP/2 stream resets per address across connections: each connection has a
//! budget of its own (`h2::calm`), and a client that spends it and reconnects must not get a
//! fresh one each time ([`MAX_RESETS_PER_IP`] per [`RESET_PERIOD`]).

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shards of the per-address counts (accepts on different workers rarely share a lock).
const SHARDS: usize = 16;
/// HTTP/2 stream resets one address may cause per [`RESET_PERIOD`], over all its connections.
pub const MAX_RESETS_PER_IP: u32 = 2_000;
/// See [`MAX_RESETS_PER_IP`].
pub const RESET_PERIOD: Duration = Duration::from_secs(10);
/// Addresses whose reset counts are kept before stale ones are swept out of a shard.
const SWEEP_OVER: usize = 4_096;

/// Open client connections, in all and per address.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: [Mutex<FxHashMap<IpAddr, usize>>; SHARDS],
    /// Stream resets per address in the current period.
    resets: [Mutex<FxHashMap<IpAddr, PeriodCount>>; SHARDS],
}

/// Events counted over a period of [`RESET_PERIOD`], starting again when one has passed (the
/// per-connection reset budget in `h2::calm` counts this way too).
#[derive(Debug, Clone, Copy)]
pub struct PeriodCount {
    since: Instant,
    count: u32,
}

impl PeriodCount {
    /// A period starting at `now`, nothing counted.
    pub fn new(now: Instant) -> PeriodCount {
        PeriodCount {
            since: now,
            count: 0,
        }
    }

    /// Counts one event at `now`; the count in the current period, that event included.
    pub fn add(&mut self, now: Instant) -> u32 {
        if !self.current(now) {
            *self = PeriodCount::new(now);
        }
        self.count += 1;
        self.count
    }

    /// True while the period that started at `since` lasts.
    fn current(&self, now: Instant) -> bool {
        now.duration_since(self.since) <= RESET_PERIOD
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` were open.
    Total,
    /// `max_connections_per_ip` were open from its address.
    PerIp,
}

impl Admission {
    /// Limits of `max_total` and `max_per_ip` connections (0 = unlimited).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: std::array::from_fn(|_| Mutex::new(FxHashMap::default())),
            resets: std::array::from_fn(|_| Mutex::new(FxHashMap::default())),
        })
    }

    /// Counts an HTTP/2 stream reset caused by `ip`; false once the address is over
    /// [`MAX_RESETS_PER_IP`] in the current period.
    pub fn reset_by(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut shard = lock(&self.resets[shard_of(ip)]);
        if shard.len() > SWEEP_OVER {
            shard.retain(|_, resets| resets.current(now));
        }
        let resets = shard.entry(ip).or_insert(PeriodCount::new(now));
        resets.add(now) <= MAX_RESETS_PER_IP
    }

    /// Admits a connection from `ip`, counted until the guard drops; or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let total = self.total.fetch_add(1, Ordering::Relaxed);
        if self.max_total != 0 && total >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Total);
        }
        if self.max_per_ip != 0 {
            let mut shard = self.shard(ip);
            let count = shard.entry(ip).or_insert(0);
            if *count >= self.max_per_ip {
                drop(shard);
                self.total.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::PerIp);
            }
            *count += 1;
        }
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    fn shard(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, FxHashMap<IpAddr, usize>> {
        lock(&self.per_ip[shard_of(ip)])
    }
}

fn shard_of(ip: IpAddr) -> usize {
    let hash = match ip {
        IpAddr::V4(v4) => u32::from(v4) as usize,
        IpAddr::V6(v6) => u128::from(v6) as usize,
    };
    hash % SHARDS
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An admitted connection; dropping it frees its places.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let admission = &self.admission;
        admission.total.fetch_sub(1, Ordering::Relaxed);
        if admission.max_per_ip != 0 {
            let mut shard = admission.shard(self.ip);
            if let Some(count) = shard.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    shard.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_all_and_per_address() {
        let admission = Admission::new(3, 2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refused::PerIp);
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).unwrap_err(), Refused::Total);
        drop(first);
        let _again = admission.admit(a).unwrap();
        assert_eq!(admission.total.load(Ordering::Relaxed), 3);

        for _ in 0..MAX_RESETS_PER_IP {
            assert!(admission.reset_by(a));
        }
        assert!(!admission.reset_by(a), "over the budget");
        assert!(admission.reset_by(b), "another address has its own");

        let unlimited = Admission::new(0, 0);
        let held: Vec<_> = (0..1000).map(|_| unlimited.admit(a).unwrap()).collect();
        drop(held);
        assert_eq!(unlimited.total.load(Ordering::Relaxed), 0);
    }
}
