//! The process' own figures under Prometheus' standard names, read from `/proc/self` when
//! `/metrics` is asked: CPU time, resident memory, open descriptors and start time.

use std::fmt::Write;

/// Writes `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`
/// and `process_start_time_seconds` (each left out where `/proc` cannot tell).
pub fn render(out: &mut String) {
    // Clock ticks and pages as Linux sets them on every platform this runs on.
    const TICKS: f64 = 100.0;
    const PAGE: u64 = 4096;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), counted from `state` = 0.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let mut family = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            super::family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    };
    let cpu = field(11)
        .zip(field(12))
        .map(|(user, system)| (user + system) / TICKS);
    family(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        cpu,
    );
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| (pages * PAGE) as f64);
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory, in bytes.",
        rss,
    );
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as f64);
    family("process_open_fds", "gauge", "Open file descriptors.", fds);
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
        stat.lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())
    });
    let start = boot
        .zip(field(19))
        .map(|(boot, ticks)| boot + ticks / TICKS);
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time since the epoch, in seconds.",
        start,
    );
}
