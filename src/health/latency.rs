//! Peak-EWMA latency (as linkerd and Finagle use for P2C): a slower sample takes effect at
//! once, faster ones decay the estimate over `DECAY`. Lock-free; races lose a sample at worst.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time constant of the decay.
const DECAY: Duration = Duration::from_secs(10);

/// A peak-sensitive moving average of response-head latency.
#[derive(Debug, Default)]
pub struct PeakEwma {
    /// Microseconds, as `f64` bits.
    micros: AtomicU64,
    /// When last updated (`now_ms`).
    updated_ms: AtomicU64,
}

impl PeakEwma {
    /// Adds a sample observed at `now_ms`.
    pub fn observe(&self, sample: Duration, now_ms: u64) {
        let sample = sample.as_secs_f64() * 1e6;
        let current = self.estimate_micros();
        let next = if sample >= current {
            sample
        } else {
            let elapsed = now_ms.saturating_sub(self.updated_ms.load(Ordering::Relaxed));
            let weight = (-(elapsed as f64) / DECAY.as_millis() as f64).exp();
            current * weight + sample * (1.0 - weight)
        };
        self.micros.store(next.to_bits(), Ordering::Relaxed);
        self.updated_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The current estimate in microseconds (0 before any sample).
    pub fn estimate_micros(&self) -> f64 {
        f64::from_bits(self.micros.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_at_once_and_decays_slowly() {
        let ewma = PeakEwma::default();
        ewma.observe(Duration::from_millis(1), 0);
        assert_eq!(ewma.estimate_micros(), 1000.0);
        ewma.observe(Duration::from_millis(50), 10);
        assert_eq!(ewma.estimate_micros(), 50_000.0);
        ewma.observe(Duration::from_millis(1), 1010);
        let after_one_second = ewma.estimate_micros();
        assert!(after_one_second > 40_000.0 && after_one_second < 50_000.0);
        ewma.observe(Duration::from_millis(1), 61_010);
        assert!(ewma.estimate_micros() < 2_000.0);
    }
}
