//! Reading a request head (httparse) and deciding who serves it: the hand-written server takes
//! plain HTTP/1.1 requests whose body, if any, has a Content-Length it can hold in memory;
//! anything else (chunked or large bodies, `Expect`, upgrades, `CONNECT`, HTTP/1.0, heads too
//! large or malformed) goes to hyper with the bytes read so far.

use crate::body::ProxyBody;
use crate::http1::fields::{self, Spans};
use bytes::{Bytes, BytesMut};
use http::{Method, Request, Uri, Version};

/// Largest request body read whole before the request is proxied (bigger ones stream through
/// hyper).
pub const BODY_IN_MEMORY: usize = 64 * 1024;

/// What the bytes read so far hold.
// Made and moved once per request: boxing the head would cost an allocation instead.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request for this server, split off the buffer; its body is still to be read.
    Complete(Head),
    /// Hyper serves the connection from here (it answers malformed heads as well).
    HandOff,
    /// A head that parsed but cannot become a request (bad target or field): answer 400.
    Bad,
}

/// A request head and what the server needs to know to answer it.
pub struct Head {
    /// The request, with an empty body.
    pub request: Request<ProxyBody>,
    /// Bytes of body that follow the head.
    pub body_len: usize,
    /// The client asked to close the connection after this request.
    pub close: bool,
    /// The client accepts trailers (`TE: trailers`).
    pub te_trailers: bool,
}

/// What the head's fields say about serving it.
#[derive(Default)]
struct Scan {
    body_len: Option<usize>,
    close: bool,
    te_trailers: bool,
    hand_off: bool,
    host: bool,
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

impl Scan {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            match crate::http1::content_length(value) {
                // A second Content-Length (even an equal one) is left to hyper's rules.
                Some(length) if self.body_len.is_none() && length <= BODY_IN_MEMORY as u64 => {
                    self.body_len = Some(length as usize)
                }
                // Anything but digits: hyper answers 400 (it reads lengths as strictly).
                _ => self.hand_off = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            self.hand_off = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in tokens(value) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.hand_off |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            self.host = true;
        } else if name.eq_ignore_ascii_case(b"te") {
            self.te_trailers |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"trailers"));
        }
    }
}

/// Parses a head at the start of `buf` (noting its fields in the connection's `spans`); a head
/// longer than `max_head` is handed off (hyper answers 431).
pub fn parse(buf: &mut BytesMut, max_head: usize, spans: &mut Spans) -> Parsed {
    let mut slots = fields::slots();
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Parsed::Partial,
        _ => return Parsed::HandOff,
    };
    let (Some(method), Some(path), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Parsed::HandOff;
    };
    if method == "CONNECT" {
        return Parsed::HandOff;
    }
    let mut scan = Scan::default();
    for field in parsed.headers.iter() {
        scan.field(field.name.as_bytes(), field.value);
    }
    if scan.hand_off {
        return Parsed::HandOff;
    }
    // Without a Host the request will be refused: at once, not after its body arrived.
    if !scan.host && scan.body_len.is_some_and(|len| len > 0) {
        return Parsed::Bad;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Bad;
    };
    let path_at = path.as_ptr() as usize - buf.as_ptr() as usize;
    let path_range = path_at..path_at + path.len();
    spans.record(buf, parsed.headers);
    let head: Bytes = buf.split_to(len).freeze();
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path_range)) else {
        return Parsed::Bad;
    };
    let Ok(headers) = spans.to_map(&head, crate::proxy::ADDED_HEADERS) else {
        return Parsed::Bad;
    };
    let mut request = Request::new(ProxyBody::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Complete(Head {
        request,
        body_len: scan.body_len.unwrap_or(0),
        close: scan.close,
        te_trailers: scan.te_trailers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(text);
        (parse(&mut buf, 64 * 1024, &mut Spans::new()), buf)
    }

    #[test]
    fn takes_plain_requests_and_leaves_the_body() {
        let (parsed, rest) = parse_text(
            "POST /a?b=1 HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\nConnection: close\r\n\
             TE: trailers\r\n\r\nhey",
        );
        let Parsed::Complete(head) = parsed else {
            panic!("not complete")
        };
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri(), "/a?b=1");
        assert_eq!(head.request.headers()["host"], "x.test");
        assert_eq!(
            (head.body_len, head.close, head.te_trailers),
            (3, true, true)
        );
        assert_eq!(&rest[..], b"hey");
    }

    #[test]
    fn hands_off_what_it_does_not_serve() {
        for text in [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            let (parsed, rest) = parse_text(text);
            assert!(matches!(parsed, Parsed::HandOff), "{text:?}");
            assert_eq!(&rest[..], text.as_bytes(), "bytes kept for hyper");
        }
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_go_to_hyper() {
        assert!(matches!(
            parse_text("GET / HTTP/1.1\r\nHost: a").0,
            Parsed::Partial
        ));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nX: 1234567890\r\n"[..]);
        assert!(matches!(
            parse(&mut buf, 16, &mut Spans::new()),
            Parsed::HandOff
        ));
    }
}
