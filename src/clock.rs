//! The router's monotonic clock in milliseconds: small enough to live in an atomic, never 0 (so
//! 0 can mean "never" in the timestamps that use it).

use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds since the first call, plus one.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}
