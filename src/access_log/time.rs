//! The access log's timestamp: UTC in RFC 3339 with nanoseconds, as gorouter writes it
//! (`2026-12-02T05:30:00.123456789Z`). The date and time of day change once a second, so they
//! are formatted once a second ([`Stamps`]).

use crate::http1::lines::append;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Formats timestamps, reusing the text of the last second. Arrival times come from the
/// request's monotonic instant and one wall-clock reading per batch of lines, so the request
/// path reads no wall clock.
#[derive(Debug)]
pub struct Stamps {
    second: Option<u64>,
    text: Vec<u8>,
    /// The wall clock (nanoseconds since the epoch) and the monotonic clock, read together.
    clock: (u64, Instant),
}

impl Default for Stamps {
    fn default() -> Self {
        Stamps {
            second: None,
            text: Vec::new(),
            clock: read_clocks(),
        }
    }
}

/// Both clocks, the wall clock in nanoseconds since the epoch (0 before it).
fn read_clocks() -> (u64, Instant) {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH);
    (wall.unwrap_or_default().as_nanos() as u64, Instant::now())
}

impl Stamps {
    /// Reads both clocks again (once per batch).
    pub fn tick(&mut self) {
        self.clock = read_clocks();
    }

    /// Appends the wall-clock time of the monotonic instant `at` (before the last `tick`).
    pub fn write_instant(&mut self, out: &mut Vec<u8>, at: Instant) {
        let (wall, now) = self.clock;
        let before = now.saturating_duration_since(at).as_nanos() as u64;
        self.write(out, wall.saturating_sub(before));
    }

    /// Appends the time `nanos` after the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    pub fn write(&mut self, out: &mut Vec<u8>, nanos: u64) {
        let seconds = nanos / 1_000_000_000;
        if self.second != Some(seconds) {
            self.second = Some(seconds);
            self.text.clear();
            write_second(&mut self.text, seconds);
        }
        append(out, &self.text);
        out.push(b'.');
        digits(out, (nanos % 1_000_000_000) as u32, 9);
        out.push(b'Z');
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of `seconds` since the epoch.
fn write_second(out: &mut Vec<u8>, seconds: u64) {
    let (days, of_day) = (seconds / 86_400, (seconds % 86_400) as u32);
    let (year, month, day) = civil_from_days(days as i64);
    let parts = [
        (year.clamp(0, 9999) as u32, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3600, 2, b':'),
        (of_day / 60 % 60, 2, b':'),
    ];
    for (value, width, after) in parts {
        digits(out, value, width);
        out.push(after);
    }
    digits(out, of_day % 60, 2);
}

/// "00" to "99", for writing digits two at a time.
const PAIRS: [[u8; 2]; 100] = {
    let mut table = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        table[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    table
};

/// Appends the last `width` (at most 10) decimal digits of `value`, zero-padded.
pub fn digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let width = width.min(10);
    let mut text = [b'0'; 10];
    let mut end = width;
    while end >= 2 {
        text[end - 2..end].copy_from_slice(&PAIRS[(value % 100) as usize]);
        value /= 100;
        end -= 2;
    }
    if end == 1 {
        text[0] = b'0' + (value % 10) as u8;
    }
    append(out, &text[..width]);
}

/// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn digits_are_zero_padded_to_any_width() {
        let cases = [
            (7, 1, "7"),
            (42, 2, "42"),
            (5, 3, "005"),
            (2026, 4, "2026"),
            (42, 6, "000042"),
            (123_456_789, 9, "123456789"),
            (123_456_789, 4, "6789"),
            (4_294_967_295, 10, "4294967295"),
        ];
        for (value, width, expected) in cases {
            let mut out = Vec::new();
            digits(&mut out, value, width);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn an_instant_is_placed_before_the_wall_clock_read_with_it() {
        let now = Instant::now();
        let wall = 1_796_189_400 * 1_000_000_000;
        let mut stamps = Stamps {
            clock: (wall, now),
            ..Stamps::default()
        };
        let mut out = Vec::new();
        stamps.write_instant(&mut out, now - Duration::from_millis(1_500));
        assert_eq!(out, b"2026-12-02T05:29:58.500000000Z");
    }

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000000005Z"),
            (1_796_189_400, 123_456_789, "2026-12-02T05:30:00.123456789Z"),
            (1_796_189_400, 7, "2026-12-02T05:30:00.000000007Z"),
            (4_107_542_399, 999_999_999, "2100-02-28T23:59:59.999999999Z"),
        ];
        let mut stamps = Stamps::default();
        for (seconds, nanos, expected) in cases {
            let mut out = Vec::new();
            stamps.write(&mut out, seconds * 1_000_000_000 + nanos);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
