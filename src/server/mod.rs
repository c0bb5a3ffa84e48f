//! Accepting and serving client connections: listening sockets (`listener`), serving one
//! connection (its timeout state is [`crate::conn_state`]) (`connection`: TLS, protocol choice,
//! timeouts, parking), the hand-written HTTP/1.1 server (`h1`), the hand-written HTTP/2 server
//! (`h2`) and the worker threads that run them (`worker`).

mod admission;
mod connection;
mod h1;
mod h2;
mod listener;
mod send_timeout;
mod worker;

pub use crate::conn_state::{ActiveRequest, ConnState, TrackedIo};
pub use admission::{Admission, Admitted, Refused};
pub use connection::{ConnContext, PARK_AFTER, ServeSettings, serve};
#[cfg(fuzzing)]
pub use h1::fuzz_request_head;
#[cfg(fuzzing)]
pub use h2::fuzz_connection;
pub use listener::{ListenError, bind_shared};
pub use send_timeout::SendTimeout;
pub use worker::{WorkerListeners, spawn_worker};
