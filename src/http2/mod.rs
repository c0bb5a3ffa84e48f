//! HTTP/2 wire helpers for the hand-written HTTP/2 server (`server::h2`): frame headers, types,
//! flags, settings and error codes (`frame`), and header compression (`hpack`).

pub mod frame;
pub mod hpack;
