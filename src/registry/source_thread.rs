//! The lifecycle of a connected route source (NATS, etcd): it runs on its own thread with its
//! own runtime, reconnects by itself, and stops when its [`SourceHandle`] is dropped.

use crate::runtime_thread::spawn_runtime_thread;
use std::future::Future;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// A running source; dropping it stops the source and waits for its thread.
#[derive(Debug)]
pub struct SourceHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Runs `source` on thread `name` until the returned handle is dropped (or it ends).
pub fn spawn_source(
    name: &str,
    source: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SourceHandle> {
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = spawn_runtime_thread(name.to_string(), async move {
        tokio::select! {
            _ = stopped => {}
            () = source => {}
        }
    })?;
    Ok(SourceHandle {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
