//! The router's life: running, draining (`/health` says 503 but traffic still flows), stopping
//! (listeners closed, connections finish their requests). Also counts open client connections.

use crate::clock::now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a client connection that has not begun its first request when the router stops
/// may still send it: its client has just connected, and the request may be on its way (a
/// client reconnecting after `Connection: close` while draining). It is served, then closed.
pub const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Where the router is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Serving normally.
    Running,
    /// Health checks fail so load balancers move away; requests are still served.
    Draining,
    /// Listeners are closed; open connections finish what they have and close.
    Stopping,
}

/// Shared phase and connection count.
#[derive(Debug)]
pub struct Lifecycle {
    phase: watch::Sender<Phase>,
    /// The phase as a number: what readers look at (an atomic, not the channel's lock: it is read
    /// on the request path). The channel is for waiting on a change.
    now: AtomicU8,
    /// When the stop began (`clock::now_ms`); 0 before.
    stopped_at_ms: AtomicU64,
    connections: AtomicUsize,
    idle: Notify,
}

impl Lifecycle {
    /// A router that is running with no connection.
    pub fn new() -> Arc<Lifecycle> {
        Arc::new(Lifecycle {
            phase: watch::Sender::new(Phase::Running),
            now: AtomicU8::new(Phase::Running as u8),
            stopped_at_ms: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.now.load(Ordering::Acquire) {
            now if now == Phase::Running as u8 => Phase::Running,
            now if now == Phase::Draining as u8 => Phase::Draining,
            _ => Phase::Stopping,
        }
    }

    /// Moves to `phase` (never back to an earlier one).
    pub fn advance(&self, phase: Phase) {
        self.phase.send_if_modified(|current| {
            let later = phase as u8 > *current as u8;
            if later {
                *current = phase;
                if phase == Phase::Stopping {
                    self.stopped_at_ms.store(now_ms(), Ordering::Relaxed);
                }
                self.now.store(phase as u8, Ordering::Release);
            }
            later
        });
    }

    /// True once the router is stopping.
    pub fn is_stopping(&self) -> bool {
        self.phase() == Phase::Stopping
    }

    /// True when an idle client connection is to close for the stop: at once when it has
    /// served a request, after [`FIRST_REQUEST_GRACE`] when it has not begun one.
    pub fn closes_idle(&self, served_any: bool) -> bool {
        match self.stopped_at_ms.load(Ordering::Relaxed) {
            0 => false,
            at => {
                served_any || now_ms().saturating_sub(at) >= FIRST_REQUEST_GRACE.as_millis() as u64
            }
        }
    }

    /// True while the router serves normally (neither draining nor stopping).
    pub fn is_running(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Resolves once the router is stopping (at once if it already is).
    pub async fn stopping(&self) {
        let mut phase = self.phase.subscribe();
        // `wait_for` checks the current value first, so a stop that came earlier is not missed.
        let _ = phase.wait_for(|p| *p == Phase::Stopping).await;
    }

    /// Counts an open client connection (or upgraded tunnel) until the guard drops.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Open client connections and tunnels.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Waits until no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open_connections() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// An open client connection, counted until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Lifecycle>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The two counts a client connection is part of: the router's and its worker's.
pub type ConnGuards = (ConnectionGuard, ConnectionGuard);
