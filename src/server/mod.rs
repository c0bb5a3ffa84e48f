//! Accepting and serving client connections: listening sockets (`listener`), per-connection
//! timeout state (`conn_state`), serving one connection (`connection`: TLS, protocol choice,
//! timeouts, parking), the hand-written HTTP/1.1 server (`h1`), the hand-written HTTP/2 server
//! (`h2`) and the worker threads that run them (`worker`).

mod admission;
mod conn_state;
mod connection;
mod h1;
mod h2;
mod listener;
mod send_timeout;
mod thread;
mod worker;

pub use admission::{Admission, Admitted, Refused};
pub use conn_state::{ActiveRequest, ConnState, TrackedIo};
pub use connection::{ConnContext, PARK_AFTER, ServeSettings, serve};
#[cfg(fuzzing)]
pub use h1::fuzz_request_head;
pub use h2::RequestBody as Http2Body;
#[cfg(fuzzing)]
pub use h2::fuzz_connection;
pub use listener::{ListenError, bind_shared};
pub use send_timeout::SendTimeout;
pub use thread::spawn_runtime_thread;
pub use worker::{WorkerListeners, spawn_worker};
