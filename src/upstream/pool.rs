//! Keep-alive connections, one pool per thread (a worker's runtime never shares them, so no
//! lock): idle HTTP/1.1 connections per endpoint, and one shared HTTP/2 connection per endpoint.

use super::h1::Conn;
use crate::body::ProxyBody;
use crate::target::Target;
use hyper::client::conn::{http1, http2};
use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// A freshly opened connection.
pub(super) enum Sender {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

/// An HTTP/1.1 connection in use, to be given back when its response ends.
#[derive(Debug)]
pub struct Pooled {
    key: Target,
    sender: http1::SendRequest<ProxyBody>,
}

impl Pooled {
    pub(super) fn new(key: Target, sender: http1::SendRequest<ProxyBody>) -> Pooled {
        Pooled { key, sender }
    }

    /// Gives the connection back to this thread's pool (up to `max_idle` per endpoint).
    pub(crate) fn release(self, max_idle: usize) {
        if self.sender.is_closed() {
            return;
        }
        POOL.with_borrow_mut(|pool| {
            let idle = pool.http1.entry(self.key).or_default();
            if idle.len() < max_idle {
                idle.push(Idle {
                    sender: self.sender,
                    since: Instant::now(),
                });
            }
        });
    }
}

struct Idle {
    sender: http1::SendRequest<ProxyBody>,
    since: Instant,
}

/// An idle hand-driven HTTP/1.1 connection.
struct IdleRaw {
    conn: Box<Conn>,
    since: Instant,
}

#[derive(Default)]
struct LocalPool {
    http1: HashMap<Target, Vec<Idle>>,
    raw: HashMap<Target, Vec<IdleRaw>>,
    http2: HashMap<Target, http2::SendRequest<ProxyBody>>,
}

thread_local! {
    static POOL: RefCell<LocalPool> = RefCell::new(LocalPool::default());
}

/// The most recently used live idle connection to `key`, ready for a request.
pub(super) async fn take_http1(
    key: &Target,
    idle_timeout: Duration,
) -> Option<http1::SendRequest<ProxyBody>> {
    loop {
        let idle = POOL.with_borrow_mut(|pool| pool.http1.get_mut(key)?.pop())?;
        if idle.since.elapsed() > idle_timeout || idle.sender.is_closed() {
            continue;
        }
        let mut sender = idle.sender;
        if sender.is_ready() || sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
}

/// The most recently used idle hand-driven connection to `key` that is still open.
pub(super) fn take_raw(key: &Target, idle_timeout: Duration) -> Option<Box<Conn>> {
    loop {
        let mut idle = POOL.with_borrow_mut(|pool| pool.raw.get_mut(key)?.pop())?;
        if idle.since.elapsed() <= idle_timeout && !idle.conn.is_stale() {
            return Some(idle.conn);
        }
    }
}

/// Gives a hand-driven connection back to this thread's pool (up to `max_idle` per endpoint).
pub(super) fn release_raw(key: Target, conn: Box<Conn>, max_idle: usize) {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.raw.entry(key).or_default();
        if idle.len() < max_idle {
            idle.push(IdleRaw {
                conn,
                since: Instant::now(),
            });
        }
    });
}

/// This thread's live HTTP/2 connection to `key`, if any.
pub(super) fn shared_http2(key: &Target) -> Option<http2::SendRequest<ProxyBody>> {
    POOL.with_borrow_mut(|pool| {
        let sender = pool.http2.get(key)?;
        if sender.is_closed() {
            pool.http2.remove(key);
            return None;
        }
        Some(sender.clone())
    })
}

/// Makes `sender` this thread's HTTP/2 connection to `key`.
pub(super) fn share_http2(key: Target, sender: http2::SendRequest<ProxyBody>) {
    POOL.with_borrow_mut(|pool| pool.http2.insert(key, sender));
}

/// Drops expired and closed idle connections of this thread.
pub(super) fn sweep(idle_timeout: Duration, max_idle: usize) {
    POOL.with_borrow_mut(|pool| {
        pool.http1.retain(|_, idle| {
            idle.retain(|c| c.since.elapsed() <= idle_timeout && !c.sender.is_closed());
            idle.truncate(max_idle);
            !idle.is_empty()
        });
        pool.raw.retain(|_, idle| {
            idle.retain_mut(|c| c.since.elapsed() <= idle_timeout && !c.conn.is_stale());
            idle.truncate(max_idle);
            !idle.is_empty()
        });
        pool.http2.retain(|_, sender| !sender.is_closed());
    });
}
