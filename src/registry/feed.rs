//! A source's way into a registry: registration messages in, changes applied, and the
//! source's own counters (messages, rejections, changes, connection, update lag). The admin
//! API, NATS and etcd all feed their registry through one of these.

use super::{Applied, Change, MessageError, Registry, parse_messages};
use crate::log_limit::LogLimit;
use crate::routing::Source;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `router.register`: add or refresh.
    Register,
    /// `router.unregister`: remove.
    Unregister,
}

/// One source's counters, for `/metrics`.
#[derive(Debug)]
pub struct SourceStats {
    /// The source they count.
    pub source: Source,
    /// Messages received.
    pub messages: AtomicU64,
    /// Messages refused (bad JSON, a bad field).
    pub rejected: AtomicU64,
    /// Endpoints added.
    pub added: AtomicU64,
    /// Endpoints whose data changed.
    pub updated: AtomicU64,
    /// Endpoints refreshed (heartbeats).
    pub refreshed: AtomicU64,
    /// Endpoints removed.
    pub removed: AtomicU64,
    /// Connected to its server now (sources without one: always true).
    pub connected: AtomicBool,
    /// Connections made (the first and every reconnect).
    pub connections: AtomicU64,
    /// Time from the sender's `endpoint_updated_at_ns` to the change, last seen (ms).
    pub lag_ms: AtomicU64,
}

impl SourceStats {
    fn new(source: Source) -> SourceStats {
        SourceStats {
            source,
            messages: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            added: AtomicU64::new(0),
            updated: AtomicU64::new(0),
            refreshed: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            connections: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
        }
    }
}

/// Feeds one registry from one source (see the module docs).
pub struct Feed {
    registry: Arc<dyn Registry>,
    source: Source,
    stale_threshold: Option<Duration>,
    stats: Arc<SourceStats>,
    rejections: LogLimit,
}

impl Feed {
    /// A feed of `registry` from `source`. Its registrations expire after at most
    /// `stale_threshold` unless refreshed; `None` when the source removes them itself.
    pub fn new(
        registry: Arc<dyn Registry>,
        source: Source,
        stale_threshold: Option<Duration>,
    ) -> Feed {
        Feed {
            registry,
            source,
            stale_threshold,
            stats: Arc::new(SourceStats::new(source)),
            rejections: LogLimit::new(10),
        }
    }

    /// The source this feed speaks for.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The source's counters.
    pub fn stats(&self) -> &Arc<SourceStats> {
        &self.stats
    }

    /// The registry fed.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The changes a body (one message or an array) asks for, all or none: a bad message is
    /// counted and logged (at most 10 lines a second) and the error names its field.
    pub fn changes(&self, action: Action, body: &[u8]) -> Result<Vec<Change>, MessageError> {
        let converted = parse_messages(body).and_then(|messages| {
            self.stats
                .messages
                .fetch_add(messages.len() as u64, Ordering::Relaxed);
            let mut changes = Vec::with_capacity(messages.len());
            let many = messages.len() > 1;
            for (i, message) in messages.into_iter().enumerate() {
                let named = |e: MessageError| if many { e.within(&format!("[{i}]")) } else { e };
                let sent = message.endpoint_updated_at_ns;
                let converted = match action {
                    Action::Register => message.registrations(self.source, self.stale_threshold),
                    Action::Unregister => message.removals(),
                };
                changes.extend(converted.map_err(named)?);
                if let Some(sent) = sent {
                    self.stats.lag_ms.store(lag_ms(sent), Ordering::Relaxed);
                }
            }
            Ok(changes)
        });
        if let Err(error) = &converted {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self.rejections.admit() {
                let body = String::from_utf8_lossy(&body[..body.len().min(200)]);
                tracing::warn!(
                    source = %self.source, %error, %body, suppressed,
                    "registration message rejected; nothing changed"
                );
            }
        }
        converted
    }

    /// Applies `changes` as one step and counts what they did.
    pub fn apply(&self, changes: Vec<Change>) -> Applied {
        if changes.is_empty() {
            return Applied::default();
        }
        let applied = self.registry.apply(changes);
        let stats = &self.stats;
        for (counter, n) in [
            (&stats.added, applied.added),
            (&stats.updated, applied.updated),
            (&stats.refreshed, applied.refreshed),
            (&stats.removed, applied.removed),
        ] {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
        applied
    }

    /// The source connected (`true`) or lost its connection: the registry keeps its
    /// endpoints while it is away and renews them when it is back.
    pub fn connected(&self, connected: bool) {
        self.stats.connected.store(connected, Ordering::Relaxed);
        if connected {
            self.stats.connections.fetch_add(1, Ordering::Relaxed);
        }
        self.registry.source_connected(self.source, connected);
    }
}

/// Milliseconds from `sent_ns` (since the epoch) to now; 0 for a time in the future.
fn lag_ms(sent_ns: i64) -> u64 {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    (now_ns.saturating_sub(sent_ns).max(0) / 1_000_000) as u64
}
