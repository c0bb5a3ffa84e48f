//! What a client may make one connection cost without getting anything done: two budgets whose
//! overdraft ends the connection with GOAWAY `ENHANCE_YOUR_CALM`.
//!
//! - **Resets**: streams that end in a reset, whether the client sent the RST_STREAM ("rapid
//!   reset", CVE-2023-44487) or made the server send one with a frame that breaks a stream's
//!   rules ("MadeYouReset", CVE-2025-8671), or opened a stream past the concurrency limit. Each
//!   costs a request started, perhaps a backend exchange. At most [`MAX_RESETS`] per 10 s
//!   (`admission::RESET_PERIOD`, shared with the per-address count).
//! - **Idle frames**: frames the server must handle that carry no request, no body byte and no
//!   needed window: PING, SETTINGS, PRIORITY, unknown types, empty DATA, WINDOW_UPDATE, frames for
//!   closed streams. The budget holds [`IDLE_FRAMES`]; each costs one, and it refills by one for
//!   each stream opened and each DATA frame with bytes received, by two for each DATA frame sent
//!   (a gRPC client's bandwidth-probing PINGs and a browser's WINDOW_UPDATEs, of the stream and
//!   of the connection, follow the data they are about), and by [`IDLE_REFILL_PER_SECOND`] with
//!   time (keep-alive PINGs on a quiet connection).

use super::{ConnError, protocol};
use crate::http2::frame::Reason;
use crate::server::admission::PeriodCount;
use std::time::Instant;

/// Stream resets allowed per period of the server's `RESET_PERIOD` (10 s).
pub const MAX_RESETS: u32 = 500;
/// Idle frames a connection may send in a burst.
pub const IDLE_FRAMES: i64 = 1000;
/// Idle frames a connection regains per second.
pub const IDLE_REFILL_PER_SECOND: i64 = 10;

/// A connection's two budgets.
pub(super) struct Calm {
    resets: PeriodCount,
    idle_left: i64,
    idle_checked: Instant,
}

impl Calm {
    pub(super) fn new() -> Calm {
        let now = Instant::now();
        Calm {
            resets: PeriodCount::new(now),
            idle_left: IDLE_FRAMES,
            idle_checked: now,
        }
    }

    /// A stream ended in a reset.
    pub(super) fn reset(&mut self) -> Result<(), ConnError> {
        match self.resets.add(Instant::now()) > MAX_RESETS {
            true => Err(protocol(Reason::EnhanceYourCalm, "too many stream resets")),
            false => Ok(()),
        }
    }

    /// A frame that got nothing done.
    pub(super) fn idle_frame(&mut self) -> Result<(), ConnError> {
        self.idle_left -= 1;
        if self.idle_left >= 0 {
            return Ok(());
        }
        // Overdrawn: see whether time has refilled it (the clock is read only here).
        let now = Instant::now();
        let seconds = now.duration_since(self.idle_checked).as_secs() as i64;
        if seconds > 0 {
            self.idle_checked = now;
            self.idle_left = (self.idle_left + seconds * IDLE_REFILL_PER_SECOND).min(IDLE_FRAMES);
        }
        match self.idle_left >= 0 {
            true => Ok(()),
            false => Err(protocol(Reason::EnhanceYourCalm, "too many idle frames")),
        }
    }

    /// `n` useful things happened (a stream opened, a DATA frame with bytes either way).
    pub(super) fn productive(&mut self, n: usize) {
        self.idle_left = (self.idle_left + n as i64).min(IDLE_FRAMES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::admission::RESET_PERIOD;
    use std::time::Duration;

    #[test]
    fn idle_frames_are_refused_past_the_burst_unless_work_refills_them() {
        let mut calm = Calm::new();
        for _ in 0..IDLE_FRAMES {
            calm.idle_frame().unwrap();
        }
        assert!(calm.idle_frame().is_err(), "one past the burst");

        // A frame of work between idle frames keeps the budget level indefinitely.
        let mut calm = Calm::new();
        for _ in 0..10 * IDLE_FRAMES {
            calm.productive(1);
            calm.idle_frame().unwrap();
        }
        // Work never banks more than the burst.
        for _ in 0..10 * IDLE_FRAMES {
            calm.productive(1);
        }
        for _ in 0..IDLE_FRAMES {
            calm.idle_frame().unwrap();
        }
        assert!(calm.idle_frame().is_err());
    }

    #[test]
    fn time_refills_idle_frames() {
        let mut calm = Calm::new();
        calm.idle_left = -1;
        calm.idle_checked -= Duration::from_secs(3);
        assert!(calm.idle_frame().is_ok(), "3 s refill 30");
        assert_eq!(calm.idle_left, 3 * IDLE_REFILL_PER_SECOND - 2);
    }

    #[test]
    fn resets_are_limited_per_period() {
        let mut calm = Calm::new();
        for _ in 0..MAX_RESETS {
            calm.reset().unwrap();
        }
        assert!(calm.reset().is_err());
        calm.resets = PeriodCount::new(Instant::now() - RESET_PERIOD - Duration::from_millis(1));
        assert!(calm.reset().is_ok(), "a new period starts afresh");
    }
}
