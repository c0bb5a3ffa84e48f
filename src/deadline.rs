//! The request deadline (for the response head, and for a response body that is still
//! arriving) on a reused timer. A fresh tokio timer is put into the runtime's timer
//! wheel at its first poll and taken out again when dropped, under the driver's lock: ~450
//! instructions for every request. A timer kept from an earlier request of this thread is moved
//! to the later deadline in place (tokio extends a registered timer without touching the
//! wheel), so a busy worker keeps a handful of timers registered and re-aims them. A spare
//! keeps the waker of the task that polled it last (so that task's allocation) until it is
//! reused or its deadline passes: at most `SPARES` per thread.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

/// Timers kept per thread: about the requests a worker has in flight at once under load.
const SPARES: usize = 128;

/// This thread's spare timers and the runtime they belong to (a timer must be polled within
/// its own runtime: a thread that runs another runtime later drops them).
struct Spares {
    runtime: Option<Id>,
    timers: Vec<Pin<Box<Sleep>>>,
}

thread_local! {
    static SPARE: RefCell<Spares> = const {
        RefCell::new(Spares {
            runtime: None,
            timers: Vec::new(),
        })
    };
}

/// A timer for one deadline; it goes back to this thread's spares when dropped.
#[derive(Debug)]
pub struct Deadline {
    timer: Option<Pin<Box<Sleep>>>,
    runtime: Id,
}

impl Deadline {
    /// A timer that fires at `deadline`. Must be called within a tokio runtime.
    pub fn at(deadline: Instant) -> Deadline {
        let runtime = Handle::current().id();
        let spare = SPARE.with_borrow_mut(|spares| {
            if spares.runtime != Some(runtime) {
                spares.timers.clear();
                spares.runtime = Some(runtime);
            }
            spares.timers.pop()
        });
        let timer = match spare {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Deadline {
            timer: Some(timer),
            runtime,
        }
    }

    /// Ready once the deadline has passed.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        // A timer that fired is re-registered by its next reset anyway; one of another runtime
        // (the thread moved on) is let go.
        let _ = SPARE.try_with(|spare| {
            let mut spares = spare.borrow_mut();
            if spares.runtime == Some(self.runtime) && spares.timers.len() < SPARES {
                spares.timers.push(timer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reused_timers_fire_at_their_new_deadline() {
        let mut first = Deadline::at(Instant::now() + Duration::from_secs(900));
        assert!(std::future::poll_fn(|cx| Poll::Ready(first.poll(cx).is_pending())).await);
        drop(first);
        // The spare, registered for 900 s, is aimed at 50 ms (earlier); after it fired, at
        // 100 ms (later than that).
        for wait in [50, 100] {
            let begun = Instant::now();
            let mut deadline = Deadline::at(begun + Duration::from_millis(wait));
            std::future::poll_fn(|cx| deadline.poll(cx)).await;
            let took = begun.elapsed();
            assert!(took >= Duration::from_millis(wait), "{took:?}");
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
        assert_eq!(SPARE.with_borrow(|spares| spares.timers.len()), 1);
    }
}
