//! A named thread running one single-threaded tokio runtime (workers, the admin API, the
//! NATS and etcd sources).

use std::future::Future;
use std::thread::JoinHandle;

/// Spawns thread `name` and runs `future` on a current-thread runtime there until it ends.
/// The runtime is built inside the thread, so `future` must be `Send` but its tasks need not be.
pub fn spawn_runtime_thread<F>(name: String, future: F) -> std::io::Result<JoinHandle<()>>
where
    F: Future<Output = ()> + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(future),
                Err(error) => tracing::error!(%error, thread = %name, "cannot start a runtime"),
            }
        })
}
