//! One request as the access log tells it. The request path fills it with copies of the few
//! texts it shows (in one buffer: slices of the request would keep its whole read buffer alive
//! while the record waits for the writer) and references (the endpoint), and the writer thread
//! formats it, so a worker never formats or writes a line.

use crate::routing::Endpoint;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version, header};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A text of the request the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// The request target as the client sent it.
    Target,
    /// `Host` (or the HTTP/2 authority).
    Host,
    /// `Referer`.
    Referer,
    /// `User-Agent`.
    UserAgent,
    /// `X-Forwarded-For` as the client sent it.
    XForwardedFor,
    /// `X-Forwarded-Proto` as the client sent it.
    XForwardedProto,
}

/// The texts of a request the log shows, copied into one buffer.
#[derive(Debug, Default)]
pub struct LoggedText {
    bytes: Vec<u8>,
    /// Where each `Text` is in `bytes`, by its index; `None` when the request has none.
    spans: [Option<(u32, u32)>; 6],
}

impl LoggedText {
    /// The logged texts of a request to `uri` with `headers` (the first of each header) and
    /// its declared body length, the headers found in one pass (a request carries a handful
    /// of fields; five lookups by name cost more than one walk).
    pub fn of(uri: &Uri, headers: &HeaderMap) -> (LoggedText, u64) {
        let mut found: [Option<&[u8]>; 6] = [None; 6];
        let mut length = 0;
        for (name, value) in headers {
            let text = if name == header::HOST {
                Text::Host
            } else if name == header::USER_AGENT {
                Text::UserAgent
            } else if name == header::REFERER {
                Text::Referer
            } else if name == header::CONTENT_LENGTH {
                length = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                continue;
            } else {
                match name.as_str() {
                    "x-forwarded-for" => Text::XForwardedFor,
                    "x-forwarded-proto" => Text::XForwardedProto,
                    _ => continue,
                }
            };
            found[text as usize].get_or_insert(value.as_bytes());
        }
        let absolute;
        found[Text::Target as usize] = Some(match (uri.scheme(), uri.path_and_query()) {
            (None, Some(path)) => path.as_str().as_bytes(),
            _ => {
                absolute = uri.to_string();
                absolute.as_bytes()
            }
        });
        let mut logged = LoggedText {
            bytes: Vec::with_capacity(found.iter().flatten().map(|text| text.len()).sum()),
            spans: [None; 6],
        };
        for (span, text) in logged.spans.iter_mut().zip(found) {
            if let Some(text) = text {
                let start = logged.bytes.len() as u32;
                logged.bytes.extend_from_slice(text);
                *span = Some((start, logged.bytes.len() as u32));
            }
        }
        (logged, length)
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The text `text`, if the request had it.
    pub fn get(&self, text: Text) -> Option<&[u8]> {
        let (start, end) = self.spans[text as usize]?;
        self.bytes.get(start as usize..end as usize)
    }
}

/// One access log entry.
#[derive(Debug)]
pub struct Record {
    /// When the request arrived (for the timestamp and the response time).
    pub started: Instant,
    /// Request method.
    pub method: Method,
    /// Protocol version.
    pub version: Version,
    /// The target and headers shown.
    pub text: LoggedText,
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
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
        client: SocketAddr,
        request_id: HeaderValue,
    ) -> Record {
        let (text, bytes_in) = LoggedText::of(uri, headers);
        Record {
            started,
            method,
            version,
            text,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_copied_the_first_of_each_header_and_the_target_as_sent() {
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("app.test"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        let origin: Uri = "/a%2Fb?q=1".parse().unwrap();
        let (text, length) = LoggedText::of(&origin, &headers);
        assert_eq!(length, 42);
        assert_eq!(text.get(Text::Target), Some(&b"/a%2Fb?q=1"[..]));
        assert_eq!(text.get(Text::Host), Some(&b"app.test"[..]));
        assert_eq!(text.get(Text::XForwardedFor), Some(&b"10.0.0.1"[..]));
        assert_eq!(text.get(Text::UserAgent), None);
        assert_eq!(text.get(Text::Referer), None);
        assert_eq!(text.get(Text::XForwardedProto), None);
        let absolute: Uri = "http://app.test/x".parse().unwrap();
        let (text, length) = LoggedText::of(&absolute, &HeaderMap::new());
        assert_eq!(length, 0);
        assert_eq!(text.get(Text::Target), Some(&b"http://app.test/x"[..]));
    }
}
