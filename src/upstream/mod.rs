//! The upstream side: connecting to endpoints (`connect`, `io`), the per-thread pool of
//! keep-alive connections (`pool`), the hand-written HTTP/1.1 client for requests whose body is
//! in memory (`h1`), and sending one request to one endpoint (`Upstream::send`); streaming
//! request bodies, upgrades and HTTP/2 go through hyper.

mod connect;
mod h1;
mod io;
mod lease;
mod pool;
mod response_body;

pub use lease::{EndpointInFlight, ResponseLease};
pub use pool::Pooled;
pub use response_body::{BodyTimeout, UpstreamBody};

use crate::body::{BodyError, ProxyBody};
use crate::config::UpstreamProtocol;
use crate::metrics::Metrics;
use crate::target::Target;
use crate::tls::UpstreamTls;
use bytes::Bytes;
use connect::Connector;
pub use h1::H1Error;
#[cfg(fuzzing)]
pub use h1::{fuzz_chunked, fuzz_response_head};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pool::Sender;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why one attempt to one endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed (refused, unreachable, ...).
    #[error("dial {0}")]
    Connect(std::io::Error),
    /// TCP connect or TLS handshake did not finish in time.
    #[error("dial timeout after {0:?}")]
    ConnectTimeout(Duration),
    /// The TLS handshake with the backend failed.
    #[error("tls handshake: {0}")]
    Tls(std::io::Error),
    /// The HTTP exchange failed (hyper's client).
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// The HTTP exchange failed (the hand-written HTTP/1.1 client).
    #[error("{0}")]
    H1(#[from] H1Error),
    /// No response headers within the request timeout.
    #[error("backend did not respond within {0:?}")]
    Timeout(Duration),
    /// The backend answered an upgrade with another protocol, or not with 101.
    #[error("upgrade failed: {0}")]
    Upgrade(String),
}

impl UpstreamError {
    /// True when no request byte can have reached the backend (connect and TLS failures).
    pub fn before_request(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_)
        )
    }
}

/// A failed send. The caller's request is still whole when `kept` (never written: it may go
/// anywhere; or written by the hand-written client, which sends from a reference: resend only
/// if that is safe); otherwise hyper took it and what is left is an empty placeholder.
#[derive(Debug)]
pub struct SendError {
    /// What failed.
    pub error: UpstreamError,
    /// The caller's request is still the whole request.
    pub kept: bool,
    /// True when request bytes may have reached the backend.
    pub written: bool,
}

/// A backend's response body, from hyper's client or the hand-written one.
#[derive(Debug)]
pub enum ResponseBody {
    /// From hyper (HTTP/2, upgrades, streamed request bodies).
    Hyper(Incoming),
    /// Read straight off a hand-driven HTTP/1.1 connection.
    Raw(h1::RawBody),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ResponseBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ResponseBody::Raw(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Hyper(body) => body.is_end_stream(),
            ResponseBody::Raw(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Hyper(body) => body.size_hint(),
            ResponseBody::Raw(body) => body.size_hint(),
        }
    }
}

/// A response head and, for hyper's HTTP/1.1 client, the connection to give back at its end.
pub type Answer = (Response<ResponseBody>, Option<Pooled>);

/// Settings for reaching backends.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// TCP connect + TLS handshake limit.
    pub connect_timeout: Duration,
    /// Idle connections older than this are not reused.
    pub idle_timeout: Duration,
    /// Idle connections kept per backend per thread.
    pub max_idle: usize,
}

/// Sends requests to endpoints over pooled connections.
#[derive(Debug)]
pub struct Upstream {
    connector: Connector,
    settings: UpstreamSettings,
}

impl Upstream {
    /// A client with these settings and TLS trust; new connections are counted in `metrics`.
    pub fn new(settings: UpstreamSettings, tls: UpstreamTls, metrics: Arc<Metrics>) -> Upstream {
        Upstream {
            connector: Connector::new(tls, settings.connect_timeout, metrics),
            settings,
        }
    }

    /// Sends `req` to `endpoint`. On success returns the response head and the connection to
    /// give back when the response body ends (HTTP/1.1; HTTP/2 connections stay shared). The
    /// request is borrowed, not moved: the hand-written client sends it from where it is, and
    /// hyper's paths take it out (and put it back when hyper hands it back unsent).
    pub async fn send(
        &self,
        target: &Target,
        req: &mut Request<ProxyBody>,
    ) -> Result<Answer, SendError> {
        let key = target.clone();
        match target.protocol {
            UpstreamProtocol::Http1 if Self::keeps_request(target, req) => {
                self.send_raw(target, key, req).await
            }
            UpstreamProtocol::Http1 => {
                let sent = self.send_http1(target, key, req).await?;
                Ok((sent.0.map(ResponseBody::Hyper), sent.1))
            }
            UpstreamProtocol::Http2 => {
                let sent = self.send_http2(target, key, req).await?;
                Ok((sent.0.map(ResponseBody::Hyper), sent.1))
            }
        }
    }

    /// True when `req` to `endpoint` goes through the hand-written HTTP/1.1 client, which
    /// leaves the request whole on failure (so no copy is needed to resend it).
    pub fn keeps_request(target: &Target, req: &Request<ProxyBody>) -> bool {
        target.protocol == UpstreamProtocol::Http1
            && matches!(req.body(), ProxyBody::Empty | ProxyBody::Full(_))
            && !req.headers().contains_key(http::header::UPGRADE)
    }

    /// The hand-written client: an idle connection that is still open (or a new one), one
    /// write, the response head. A pooled connection found closed before a byte was written is
    /// dropped for the next one.
    async fn send_raw(
        &self,
        target: &Target,
        key: Target,
        req: &Request<ProxyBody>,
    ) -> Result<Answer, SendError> {
        let bytes = match req.body() {
            ProxyBody::Full(bytes) => bytes.as_ref(),
            _ => None,
        };
        loop {
            let (conn, reused) = match pool::take_raw(&key, self.settings.idle_timeout) {
                Some(conn) => (conn, true),
                None => match Box::pin(self.connector.open(target)).await {
                    Ok(io) => (Box::new(h1::Conn::new(io)), false),
                    Err(error) => return Err(unsent(error)),
                },
            };
            match h1::send(conn, req, bytes, key.clone(), self.settings.max_idle).await {
                Ok(response) => return Ok((response.map(ResponseBody::Raw), None)),
                Err(failure) if failure.unsent && reused => continue,
                Err(failure) => {
                    return Err(SendError {
                        error: UpstreamError::H1(failure.error),
                        kept: true,
                        written: !failure.unsent,
                    });
                }
            }
        }
    }

    async fn send_http1(
        &self,
        target: &Target,
        key: Target,
        slot: &mut Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Option<Pooled>), SendError> {
        let mut req = std::mem::take(slot);
        // An idle connection may have been closed by the backend a moment ago: when hyper hands
        // the request back unsent, try the next idle one, then a fresh connection.
        while let Some(mut sender) = pool::take_http1(&key, self.settings.idle_timeout).await {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, Some(Pooled::new(key, sender)))),
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(hyper_error(e.into_error(), None, slot)),
                },
            }
        }
        // Boxed: the connect future (TCP + TLS handshake) is large, and inlining it would make
        // every send future that size, costing a memcpy on each move (measured).
        let mut sender = match Box::pin(self.connector.connect(target)).await {
            Ok(Sender::Http1(sender)) => sender,
            Ok(Sender::Http2(_)) => unreachable!("an http1 endpoint yields http1 connections"),
            Err(error) => {
                *slot = req;
                return Err(unsent(error));
            }
        };
        match sender.try_send_request(req).await {
            Ok(response) => Ok((response, Some(Pooled::new(key, sender)))),
            Err(mut e) => {
                let back = e.take_message();
                Err(hyper_error(e.into_error(), back, slot))
            }
        }
    }

    async fn send_http2(
        &self,
        target: &Target,
        key: Target,
        slot: &mut Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Option<Pooled>), SendError> {
        let mut sender = match pool::shared_http2(&key) {
            Some(sender) => sender,
            None => match Box::pin(self.connector.connect(target)).await {
                Ok(Sender::Http2(sender)) => {
                    pool::share_http2(key, sender.clone());
                    sender
                }
                Ok(Sender::Http1(_)) => unreachable!("an http2 endpoint yields http2 connections"),
                Err(error) => return Err(unsent(error)),
            },
        };
        match sender.try_send_request(std::mem::take(slot)).await {
            Ok(response) => Ok((response, None)),
            Err(mut e) => {
                let back = e.take_message();
                Err(hyper_error(e.into_error(), back, slot))
            }
        }
    }

    /// Closes idle connections that expired or that their backend closed (run periodically).
    pub fn sweep_idle(&self) {
        pool::sweep(self.settings.idle_timeout, self.settings.max_idle);
    }

    /// Idle connections kept per backend per thread.
    pub fn max_idle(&self) -> usize {
        self.settings.max_idle
    }
}

/// A failure before the request was written anywhere (it is still the caller's).
fn unsent(error: UpstreamError) -> SendError {
    SendError {
        error,
        kept: true,
        written: false,
    }
}

/// A failure of hyper's client; the request it handed back (unsent) goes back into `slot`.
fn hyper_error(
    error: hyper::Error,
    back: Option<Request<ProxyBody>>,
    slot: &mut Request<ProxyBody>,
) -> SendError {
    let kept = back.is_some();
    if let Some(back) = back {
        *slot = back;
    }
    SendError {
        error: UpstreamError::Http(error),
        kept,
        written: !kept,
    }
}
