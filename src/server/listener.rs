//! Listening sockets. Every worker gets its own socket on the same address (`SO_REUSEPORT`), so
//! the kernel spreads connections across workers and no accept is shared between threads.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// A listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} ({key}): {source}")]
pub struct ListenError {
    /// Config key that named the address.
    pub key: &'static str,
    /// The address.
    pub address: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

fn bind_one(address: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Opens `count` sockets on `address` (port 0 resolves once, then all share that port).
pub fn bind_shared(
    key: &'static str,
    address: SocketAddr,
    count: usize,
) -> Result<Vec<TcpListener>, ListenError> {
    let error = |source| ListenError {
        key,
        address,
        source,
    };
    let first = bind_one(address, count > 1).map_err(error)?;
    let bound = first.local_addr().map_err(error)?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(bound, true).map_err(error)?);
    }
    Ok(sockets)
}
