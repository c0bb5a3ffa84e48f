//! One request as the access log tells it. The request path fills it with copies of the few
//! texts it shows (in one buffer: slices of the request would keep its whole read buffer alive
//! while the record waits for the writer) and references (the endpoint), and the writer thread
//! formats it, so a worker never formats or writes a line.

use super::AccessLog;
use crate::http1::lines::copy_into;
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

/// Bytes of texts a record holds in itself; longer texts take an allocation of their own.
const INLINE: usize = 192;

/// The texts of a request the log shows, copied into one buffer: in the record itself when
/// they fit (most requests), saving an allocation per request.
#[derive(Debug)]
pub struct LoggedText {
    bytes: Stored,
    /// Where each `Text` is in `bytes`, by its index; `None` when the request has none.
    spans: [Option<(u32, u32)>; 6],
}

#[derive(Debug)]
enum Stored {
    Inline([u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Default for LoggedText {
    fn default() -> Self {
        LoggedText {
            bytes: Stored::Inline([0; INLINE]),
            spans: [None; 6],
        }
    }
}

impl LoggedText {
    /// Copies the logged texts of a request to `uri` with `headers` (the first of each
    /// header) and returns its declared body length, the headers found in one pass (a request
    /// carries a handful of fields; five lookups by name cost more than one walk). Fills a
    /// record in place: a record moved after filling costs a copy of its inline texts.
    pub fn fill(&mut self, uri: &Uri, version: Version, headers: &HeaderMap) -> u64 {
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
        // HTTP/2 sends the target as `:path` and the host as `:authority` (the URI holds
        // both); an HTTP/1 target is logged as sent: absolute when it has a scheme.
        let absolute;
        let path = uri.path_and_query().map(|path| path.as_str().as_bytes());
        found[Text::Target as usize] = match (uri.scheme(), version) {
            (None, _) | (_, Version::HTTP_2) if path.is_some() => path,
            _ => {
                absolute = uri.to_string();
                Some(absolute.as_bytes())
            }
        };
        let authority = uri
            .authority()
            .map(|authority| authority.as_str().as_bytes());
        let host = &mut found[Text::Host as usize];
        *host = host.or(authority);
        let total: usize = found.iter().flatten().map(|text| text.len()).sum();
        if total > INLINE {
            self.bytes = Stored::Heap(vec![0; total].into_boxed_slice());
        }
        let mut spans = [None; 6];
        let buffer = self.buffer_mut();
        let mut at = 0;
        for (span, text) in spans.iter_mut().zip(found) {
            if let Some(text) = text {
                copy_into(&mut buffer[at..], text);
                *span = Some((at as u32, (at + text.len()) as u32));
                at += text.len();
            }
        }
        self.spans = spans;
        length
    }

    fn buffer(&self) -> &[u8] {
        match &self.bytes {
            Stored::Inline(bytes) => bytes,
            Stored::Heap(bytes) => bytes,
        }
    }

    fn buffer_mut(&mut self) -> &mut [u8] {
        match &mut self.bytes {
            Stored::Inline(bytes) => bytes,
            Stored::Heap(bytes) => bytes,
        }
    }

    /// Bytes held outside the record.
    pub fn held_bytes(&self) -> usize {
        match &self.bytes {
            Stored::Inline(_) => 0,
            Stored::Heap(bytes) => bytes.len(),
        }
    }

    /// The text `text`, if the request had it.
    pub fn get(&self, text: Text) -> Option<&[u8]> {
        let (start, end) = self.spans[text as usize]?;
        self.buffer().get(start as usize..end as usize)
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
    /// The log it goes to, taken when it is queued (a queued record must not keep its log).
    pub log: Option<Arc<AccessLog>>,
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
    ) -> Box<Record> {
        let mut record = Box::new(Record {
            started,
            method,
            version,
            text: LoggedText::default(),
            client,
            request_id,
            bytes_in: 0,
            endpoint: None,
            route_service: None,
            status: StatusCode::OK,
            router_error: None,
            bytes_out: 0,
            response_time: Duration::ZERO,
            log: None,
        });
        record.bytes_in = record.text.fill(uri, version, headers);
        record
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
    fn texts_are_copied_the_first_of_each_header_and_the_target_as_sent_long_ones_apart() {
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("app.test"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        let origin: Uri = "/a%2Fb?q=1".parse().unwrap();
        let mut text = LoggedText::default();
        let length = text.fill(&origin, Version::HTTP_11, &headers);
        assert_eq!(length, 42);
        assert_eq!(text.get(Text::Target), Some(&b"/a%2Fb?q=1"[..]));
        assert_eq!(text.get(Text::Host), Some(&b"app.test"[..]));
        assert_eq!(text.get(Text::XForwardedFor), Some(&b"10.0.0.1"[..]));
        assert_eq!(text.get(Text::UserAgent), None);
        assert_eq!(text.get(Text::Referer), None);
        assert_eq!(text.get(Text::XForwardedProto), None);
        let long = "b".repeat(300);
        headers.insert(header::USER_AGENT, HeaderValue::from_str(&long).unwrap());
        let mut text = LoggedText::default();
        text.fill(&origin, Version::HTTP_11, &headers);
        assert_eq!(text.held_bytes(), long.len() + 10 + 8 + 8);
        assert_eq!(text.get(Text::UserAgent), Some(long.as_bytes()));
        assert_eq!(text.get(Text::Target), Some(&b"/a%2Fb?q=1"[..]));
        assert_eq!(text.get(Text::XForwardedFor), Some(&b"10.0.0.1"[..]));
        let absolute: Uri = "http://app.test/x".parse().unwrap();
        let mut text = LoggedText::default();
        let length = text.fill(&absolute, Version::HTTP_11, &HeaderMap::new());
        assert_eq!(length, 0);
        assert_eq!(text.get(Text::Target), Some(&b"http://app.test/x"[..]));
        assert_eq!(text.get(Text::Host), Some(&b"app.test"[..]));
        let h2: Uri = "https://app.test:8443/y?z".parse().unwrap();
        let mut text = LoggedText::default();
        text.fill(&h2, Version::HTTP_2, &HeaderMap::new());
        assert_eq!(text.get(Text::Target), Some(&b"/y?z"[..]));
        assert_eq!(text.get(Text::Host), Some(&b"app.test:8443"[..]));
    }
}
