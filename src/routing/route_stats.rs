//! A route's response counts and latency, for `/metrics` and the status page. Only a bounded
//! number of routes get their own (`SeriesSlots`): the first to see traffic, while the limit
//! allows; the others are counted together by the caller. A route keeps its slot across table
//! updates and gives it back when it leaves the table.

use crate::histogram::Histogram;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Status classes counted: 1xx..5xx and anything else.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// The index in `STATUS_CLASSES` of `status`.
pub fn status_class(status: http::StatusCode) -> usize {
    (status.as_u16() / 100).saturating_sub(1).min(5) as usize
}

/// Responses by status class and the time to their head.
#[derive(Debug, Default)]
pub struct ResponseCounts {
    /// Responses by `STATUS_CLASSES`.
    pub responses: [AtomicU64; 6],
    /// From arrival to response head.
    pub duration: Histogram,
}

impl ResponseCounts {
    /// Counts one response.
    pub fn record(&self, status: http::StatusCode, duration: Duration) {
        self.responses[status_class(status)].fetch_add(1, Ordering::Relaxed);
        self.duration.observe(duration);
    }

    /// Responses of class `class` (an index in `STATUS_CLASSES`).
    pub fn responses(&self, class: usize) -> u64 {
        self.responses[class].load(Ordering::Relaxed)
    }
}

/// How many routes may have their own counts.
#[derive(Debug)]
pub struct SeriesSlots {
    limit: usize,
    taken: Arc<AtomicUsize>,
}

impl SeriesSlots {
    /// At most `limit` routes with their own counts.
    pub fn new(limit: usize) -> SeriesSlots {
        SeriesSlots {
            limit,
            taken: Arc::default(),
        }
    }

    /// Routes holding a slot.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    fn claim(&self) -> Option<Slot> {
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |taken| {
                (taken < self.limit).then_some(taken + 1)
            })
            .ok()
            .map(|_| Slot(self.taken.clone()))
    }
}

/// A slot held; given back when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A route's counts, decided at its first response: its own when a slot was free, else none.
#[derive(Debug, Default)]
pub struct RouteStats {
    own: OnceLock<Option<(Slot, Box<ResponseCounts>)>>,
}

impl RouteStats {
    /// The route's own counts, claiming a slot of `slots` at the first call.
    pub fn counts_or_claim(&self, slots: &SeriesSlots) -> Option<&ResponseCounts> {
        let own = self.own.get_or_init(|| {
            slots
                .claim()
                .map(|slot| (slot, Box::<ResponseCounts>::default()))
        });
        own.as_ref().map(|(_, counts)| &**counts)
    }

    /// The route's own counts, if it has a slot.
    pub fn counts(&self) -> Option<&ResponseCounts> {
        self.own.get()?.as_ref().map(|(_, counts)| &**counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn status_classes() {
        for (status, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (503, "5xx"),
            (999, "other"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(STATUS_CLASSES[status_class(status)], class, "{status}");
        }
    }

    #[test]
    fn slots_go_to_the_first_routes_and_come_back_when_a_route_leaves() {
        let slots = SeriesSlots::new(2);
        let routes: Vec<RouteStats> = (0..3).map(|_| RouteStats::default()).collect();
        assert!(routes[0].counts().is_none(), "no slot before traffic");
        assert!(routes[0].counts_or_claim(&slots).is_some());
        assert!(routes[1].counts_or_claim(&slots).is_some());
        assert!(
            routes[2].counts_or_claim(&slots).is_none(),
            "over the limit"
        );
        assert!(routes[2].counts_or_claim(&slots).is_none(), "decided once");
        assert_eq!(slots.taken(), 2);
        let mut routes = routes;
        routes.remove(0);
        assert_eq!(slots.taken(), 1);
        let late = RouteStats::default();
        assert!(
            late.counts_or_claim(&slots).is_some(),
            "a freed slot is reused"
        );
        assert!(SeriesSlots::new(0).claim().is_none());
    }
}
