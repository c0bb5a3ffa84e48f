//! HTTP/1.1 wire helpers shared by the hand-written server (`server::h1`) and client
//! (`upstream::h1`): header fields of a parsed head as a `HeaderMap` whose values are slices
//! of the head's bytes (`fields`), header lines as bytes (`lines`), and the `Date` header value
//! (`date`).

pub mod date;
pub mod fields;
pub mod lines;
