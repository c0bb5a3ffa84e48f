//! One request as the access log tells it. The request path fills it with cheap copies
//! (header values and the URI share their bytes; the endpoint is a reference) and the writer
//! thread formats it, so a worker never formats or writes a line.

use crate::routing::Endpoint;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request headers the log shows.
#[derive(Debug, Default)]
pub struct LoggedHeaders {
    /// `Host` (or the HTTP/2 authority).
    pub host: Option<HeaderValue>,
    /// `Referer`.
    pub referer: Option<HeaderValue>,
    /// `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// `X-Forwarded-For` as the client sent it.
    pub x_forwarded_for: Option<HeaderValue>,
    /// `X-Forwarded-Proto` as the client sent it.
    pub x_forwarded_proto: Option<HeaderValue>,
}

impl LoggedHeaders {
    /// The logged headers of `headers` and the declared body length, in one pass (a request
    /// carries a handful of fields; five lookups by name cost more than one walk).
    pub fn of(headers: &HeaderMap) -> (LoggedHeaders, u64) {
        let mut logged = LoggedHeaders::default();
        let mut length = 0;
        for (name, value) in headers {
            let slot = match name.as_str() {
                "host" => &mut logged.host,
                "referer" => &mut logged.referer,
                "user-agent" => &mut logged.user_agent,
                "x-forwarded-for" => &mut logged.x_forwarded_for,
                "x-forwarded-proto" => &mut logged.x_forwarded_proto,
                "content-length" => {
                    length = value
                        .to_str()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        (logged, length)
    }
}

/// One access log entry.
#[derive(Debug)]
pub struct Record {
    /// When the request arrived (for the timestamp and the response time).
    pub started: Instant,
    /// Request method.
    pub method: Method,
    /// Request target.
    pub uri: Uri,
    /// Protocol version.
    pub version: Version,
    /// The logged request headers.
    pub headers: LoggedHeaders,
    /// The client's address.
    pub client: SocketAddr,
    /// `X-Vcap-Request-Id`.
    pub request_id: HeaderValue,
    /// Request body bytes, as declared (`Content-Length`; 0 when streamed without one).
    pub bytes_in: u64,
    /// The endpoint that answered, if any.
    pub endpoint: Option<Arc<Endpoint>>,
    /// The route service the request went to, if it did.
    pub route_service: Option<Uri>,
    /// Response status.
    pub status: StatusCode,
    /// `X-Cf-Routererror` of a router-made answer.
    pub router_error: Option<HeaderValue>,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From arrival to the last byte of the response (or to the tunnel's start).
    pub response_time: Duration,
}

impl Record {
    /// A record of a request that arrived at `started`.
    pub fn start(
        started: Instant,
        method: Method,
        uri: Uri,
        version: Version,
        headers: &HeaderMap,
        client: SocketAddr,
        request_id: HeaderValue,
    ) -> Record {
        let (logged, bytes_in) = LoggedHeaders::of(headers);
        Record {
            started,
            method,
            uri,
            version,
            headers: logged,
            client,
            request_id,
            bytes_in,
            endpoint: None,
            route_service: None,
            status: StatusCode::OK,
            router_error: None,
            bytes_out: 0,
            response_time: Duration::ZERO,
        }
    }

    /// The response ended after `bytes_out` body bytes: the response time is taken now.
    pub fn finish(&mut self, bytes_out: u64) {
        self.bytes_out = bytes_out;
        self.response_time = self.started.elapsed();
    }
}
