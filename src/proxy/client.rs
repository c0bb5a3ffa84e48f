//! What the request path knows about the client connection.

use crate::lifecycle::ConnGuards;
use http::HeaderValue;
use std::net::SocketAddr;

/// The client side of a connection, shared by its requests (and by an upgraded tunnel, which
/// keeps the connection counted while it lives).
#[derive(Debug)]
pub struct ClientConn {
    peer: SocketAddr,
    tls: bool,
    ip_header: HeaderValue,
    _guards: ConnGuards,
}

impl ClientConn {
    /// A client at `peer`, over TLS or not.
    pub fn new(peer: SocketAddr, tls: bool, guards: ConnGuards) -> ClientConn {
        let ip_header = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        ClientConn {
            peer,
            tls,
            ip_header,
            _guards: guards,
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// True for HTTPS connections.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The client's IP, ready for `X-Forwarded-For`.
    pub fn ip_header(&self) -> &HeaderValue {
        &self.ip_header
    }
}
