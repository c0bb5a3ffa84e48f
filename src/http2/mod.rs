//! HTTP/2 wire helpers for the hand-written HTTP/2 server (`server::h2`): frame headers, types,
//! flags, settings and error codes (`frame`), header compression (`hpack`), and which fields
//! HTTP/2 does not carry (`connection_specific`).

pub mod frame;
pub mod hpack;

use http::{HeaderName, header};

/// Fields HTTP/2 does not carry (RFC 9113 section 8.2.2): a request with one is malformed, a
/// response leaves them out.
pub fn connection_specific(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::CONNECTION | header::TRANSFER_ENCODING | header::UPGRADE
    ) || name == "keep-alive"
        || name == "proxy-connection"
}
