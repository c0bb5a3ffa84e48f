//! A latency histogram with fixed buckets, observed with two relaxed atomic adds and written
//! as Prometheus' cumulative `_bucket`, `_sum` and `_count` samples.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus' defaults, from 1 ms).
pub const BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Counts per bucket (the last is `+Inf`) and the sum of the observations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = BOUNDS.partition_point(|&bound| bound < seconds);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    /// Sum of the observations, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Observations per bucket (not cumulative; the last past `BOUNDS`).
    pub fn counts(&self) -> [u64; BOUNDS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// Writes the samples of `name` with `labels` (`key="value",` each, or empty) before `le`.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            match BOUNDS.get(i) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum();
        let labels = labels.trim_end_matches(',');
        let labels = match labels {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let _ = writeln!(
            out,
            "{name}_sum{labels} {sum}\n{name}_count{labels} {cumulative}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let histogram = Histogram::default();
        for ms in [0, 1, 3, 200, 20_000] {
            histogram.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        histogram.write(&mut out, "t", "");
        for expected in [
            "t_bucket{le=\"0.001\"} 2",
            "t_bucket{le=\"0.005\"} 3",
            "t_bucket{le=\"0.25\"} 4",
            "t_bucket{le=\"10\"} 4",
            "t_bucket{le=\"+Inf\"} 5",
            "t_sum 20.204",
            "t_count 5",
        ] {
            assert!(
                out.lines().any(|line| line == expected),
                "{expected} in\n{out}"
            );
        }
    }

    #[test]
    fn counts_per_bucket_and_labels_before_le() {
        let histogram = Histogram::default();
        for ms in [2, 2, 2, 40, 20_000] {
            histogram.observe(Duration::from_millis(ms));
        }
        assert_eq!(histogram.counts(), [0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        let mut out = String::new();
        histogram.write(&mut out, "t", "route=\"a\",");
        assert!(
            out.contains("t_bucket{route=\"a\",le=\"0.0025\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_count{route=\"a\"} 5\n"), "{out}");
    }
}
