//! Background chores on their own thread (pruning, config file watch), stopped when the
//! [`Ticker`] handle is dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Stops its thread when dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }
}

/// Runs `tick` every `interval` on thread `name` until the returned [`Ticker`] is dropped.
pub fn spawn_every(
    name: &str,
    interval: Duration,
    mut tick: impl FnMut() + Send + 'static,
) -> std::io::Result<Ticker> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let shared = stop.clone();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let (stopped, wake) = &*shared;
            let mut guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                guard = match wake.wait_timeout_while(guard, interval, |stopped| !*stopped) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                if *guard {
                    return;
                }
                drop(guard);
                tick();
                guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
            }
        })?;
    Ok(Ticker { stop })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ticks_until_dropped() {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let ticker = spawn_every("test-ticker", Duration::from_millis(5), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        drop(ticker);
        let seen = count.load(Ordering::SeqCst);
        assert!(seen >= 2, "ticked {seen} times");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(count.load(Ordering::SeqCst), seen, "ticked after drop");
    }
}
