//! Where and how the router reaches a backend: the address it connects to, the protocol it
//! speaks there and the TLS name it verifies. Endpoints, health records and connection pools
//! are all keyed by it; anything that sends a request upstream (a route's endpoint, a health
//! probe) names one.

use crate::config::UpstreamProtocol;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;

/// An upstream target. Two targets are the same backend when all three parts are equal: a
/// connection verified for one TLS name never serves a target expecting another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Address connected to.
    pub address: SocketAddr,
    /// Protocol spoken.
    pub protocol: UpstreamProtocol,
    /// `Some(name)`: connect with TLS and verify the certificate for `name`.
    pub tls_name: Option<Arc<str>>,
    /// Which roots verify that certificate.
    pub trust: Trust,
}

/// The roots a target's TLS certificate is verified against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Trust {
    /// `[proxy] backend_ca_file`, or the system's roots.
    #[default]
    Backends,
    /// `[route_services] ca_file`, or the system's roots.
    RouteServices,
}

impl Target {
    /// A plain-text target.
    pub fn plain(address: SocketAddr, protocol: UpstreamProtocol) -> Target {
        Target {
            address,
            protocol,
            tls_name: None,
            trust: Trust::Backends,
        }
    }

    /// Gives `req` the version and request-target form of this target's protocol: origin form
    /// with `Host` for HTTP/1.1, absolute form (`:scheme`, `:authority`) for HTTP/2.
    pub fn shape<B>(&self, req: &mut http::Request<B>) {
        match self.protocol {
            UpstreamProtocol::Http1 => {
                *req.version_mut() = Version::HTTP_11;
                if let Some(authority) = req.uri().authority().cloned() {
                    if !req.headers().contains_key(HOST)
                        && let Ok(host) = HeaderValue::from_str(authority.as_str())
                    {
                        req.headers_mut().insert(HOST, host);
                    }
                    let origin = req.uri().path_and_query().cloned();
                    *req.uri_mut() =
                        Uri::from(origin.unwrap_or_else(|| PathAndQuery::from_static("/")));
                }
            }
            UpstreamProtocol::Http2 => {
                *req.version_mut() = Version::HTTP_2;
                let authority = req
                    .headers_mut()
                    .remove(HOST)
                    .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                    .or_else(|| req.uri().authority().cloned())
                    .unwrap_or_else(|| {
                        Authority::try_from(self.address.to_string()).expect("socket address")
                    });
                let scheme = if self.tls_name.is_some() {
                    Scheme::HTTPS
                } else {
                    Scheme::HTTP
                };
                let mut uri = http::uri::Parts::default();
                uri.scheme = Some(scheme);
                uri.authority = Some(authority);
                uri.path_and_query = req.uri().path_and_query().cloned();
                if let Ok(uri) = Uri::from_parts(uri) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
}
