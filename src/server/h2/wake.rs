//! Waking one stream inside its connection's task. Every stream's futures (the proxy's handling
//! of the request, then the response body) are polled by the connection itself, each with a
//! waker of its own: waking it queues the stream's id and wakes the connection's task, which
//! then polls just the streams queued. No task per stream, no lock shared with other tasks but
//! this queue's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

/// The streams of one connection that were woken, and the connection task's waker.
#[derive(Default)]
pub struct ReadyQueue {
    inner: Mutex<Inner>,
    /// Set while the connection is polling: it drains the queue before it returns, so a stream
    /// woken meanwhile need not wake the task again.
    polling: AtomicBool,
}

#[derive(Default)]
struct Inner {
    ids: Vec<u32>,
    waker: Option<Waker>,
}

impl ReadyQueue {
    /// Remembers the connection task's waker and marks the connection as polling.
    pub fn start_polling(&self, waker: &Waker) {
        self.polling.store(true, Ordering::SeqCst);
        let mut inner = self.lock();
        if !inner.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            inner.waker = Some(waker.clone());
        }
    }

    /// Marks the connection as about to wait; false (and still polling) if a stream was queued
    /// in the meantime.
    pub fn stop_polling(&self) -> bool {
        self.polling.store(false, Ordering::SeqCst);
        if self.lock().ids.is_empty() {
            return true;
        }
        self.polling.store(true, Ordering::SeqCst);
        false
    }

    /// Moves the queued ids into `into`.
    pub fn take(&self, into: &mut Vec<u32>) {
        let mut inner = self.lock();
        into.append(&mut inner.ids);
    }

    fn push(&self, id: u32) {
        let waker = {
            let mut inner = self.lock();
            inner.ids.push(id);
            if self.polling.load(Ordering::SeqCst) {
                None
            } else {
                inner.waker.clone()
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The waker of one stream.
pub struct StreamWaker {
    id: u32,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl StreamWaker {
    /// A waker for stream `id` of the connection that owns `queue`.
    pub fn new(id: u32, queue: &Arc<ReadyQueue>) -> Arc<StreamWaker> {
        Arc::new(StreamWaker {
            id,
            queued: AtomicBool::new(false),
            queue: queue.clone(),
        })
    }

    /// Called by the connection before it polls the stream: a wake from now on queues it again.
    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::SeqCst);
    }
}

impl Wake for StreamWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.queue.push(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_queued_once_until_polled_again() {
        let queue = Arc::new(ReadyQueue::default());
        let stream = StreamWaker::new(7, &queue);
        let waker = Waker::from(stream.clone());
        waker.wake_by_ref();
        waker.wake_by_ref();
        let mut ids = Vec::new();
        queue.take(&mut ids);
        assert_eq!(ids, [7]);
        stream.unqueue();
        waker.wake_by_ref();
        assert!(
            !queue.stop_polling(),
            "a queued stream keeps the connection polling"
        );
        ids.clear();
        queue.take(&mut ids);
        assert_eq!(ids, [7]);
        assert!(queue.stop_polling());
    }
}
