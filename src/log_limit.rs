//! A budget of log lines per second, so that a flood of bad input (messages, failures) costs
//! a few lines and a count instead of one line each.

use crate::clock::now_ms;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines held back by every limit in the process (for `/metrics`: the count a burst's last
/// held-back lines would otherwise only report with the next admitted line).
static HELD_BACK: AtomicU64 = AtomicU64::new(0);

/// Lines held back so far by every limit in the process.
pub fn held_back_total() -> u64 {
    HELD_BACK.load(Ordering::Relaxed)
}

/// Admits at most `per_second` lines in each second; the next admitted line learns how many
/// were held back since the last one.
#[derive(Debug)]
pub struct LogLimit {
    per_second: u32,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    second: u64,
    admitted: u32,
    suppressed: u64,
}

impl LogLimit {
    /// A budget of `per_second` lines.
    pub const fn new(per_second: u32) -> LogLimit {
        LogLimit {
            per_second,
            window: Mutex::new(Window {
                second: 0,
                admitted: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(lines held back since the last admitted one)` when a line may be written now.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(now_ms() / 1000)
    }

    fn admit_at(&self, second: u64) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.second != second {
            window.second = second;
            window.admitted = 0;
        }
        if window.admitted >= self.per_second {
            window.suppressed += 1;
            HELD_BACK.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        window.admitted += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_budget_each_second_and_counts_the_rest() {
        let before = held_back_total();
        let limit = LogLimit::new(2);
        let seen: Vec<Option<u64>> = [1, 1, 1, 1, 2, 2, 2, 5]
            .into_iter()
            .map(|second| limit.admit_at(second))
            .collect();
        assert_eq!(
            seen,
            [
                Some(0),
                Some(0),
                None,
                None,
                Some(2),
                Some(0),
                None,
                Some(1)
            ]
        );
        // Other tests of this process may hold lines back meanwhile: at least these three.
        assert!(held_back_total() - before >= 3);
    }
}
