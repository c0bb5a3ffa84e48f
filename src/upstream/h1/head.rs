//! Reading a response head (httparse) and deciding how its body is framed (RFC 9112
//! section 6.3) and whether the connection can serve another request.

use super::H1Error;
use crate::http1::fields::{self, Spans};
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// Headers the router may add to a response (request id, date).
const ADDED: usize = 2;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the backend closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields, in order.
    pub headers: HeaderMap,
    /// Body framing.
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a complete head at the start of `buf`, removing it (noting its fields in the
/// connection's `spans`); `Ok(None)` when more bytes are needed.
pub fn parse(
    buf: &mut BytesMut,
    method: &Method,
    spans: &mut Spans,
) -> Result<Option<Head>, H1Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut slots = fields::slots();
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let len = match parsed {
        // However the head arrived, in one read or many, it may not exceed the limit.
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => {
            return Err(H1Error::Protocol("response head too large".into()));
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(H1Error::Protocol("response head too large".into()));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(H1Error::Protocol(format!("bad response head: {e}"))),
    };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| H1Error::Protocol(format!("bad status code {code}")))?;
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    spans.record(buf, response.headers);
    let head: Bytes = buf.split_to(len).freeze();
    let mut headers = spans
        .to_map(&head, ADDED)
        .map_err(|e| H1Error::Protocol(e.to_string()))?;
    let framing = framing(status, method, &headers)?;
    if headers.contains_key(TRANSFER_ENCODING) {
        // Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3): a length passed on
        // beside a re-framed body would be a lie to the client.
        headers.remove(CONTENT_LENGTH);
    }
    let keep_alive = keep_alive(version, &headers) && framing != Framing::UntilClose;
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

fn framing(status: StatusCode, method: &Method, headers: &HeaderMap) -> Result<Framing, H1Error> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        let chunked_last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty())
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        return Ok(if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let parsed = crate::http1::content_length(part.trim_ascii())
                .ok_or_else(|| H1Error::Protocol(format!("bad content-length {value:?}")))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(H1Error::Protocol(
                    "conflicting content-length values".into(),
                ));
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep = false;
    for value in headers.get_all(CONNECTION) {
        for token in value.to_str().unwrap_or("").split(',').map(str::trim) {
            close |= token.eq_ignore_ascii_case("close");
            keep |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    !close && (version == Version::HTTP_11 || keep)
}

/// Fuzzing entry (`cargo fuzz`, built with `--cfg fuzzing`): parses `input` as a response head
/// to a GET and to a HEAD.
#[cfg(fuzzing)]
pub fn fuzz_response_head(input: &[u8]) {
    for method in [Method::GET, Method::HEAD] {
        let _ = parse(&mut BytesMut::from(input), &method, &mut Spans::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, method: Method) -> Result<Option<Head>, H1Error> {
        parse(&mut BytesMut::from(text), &method, &mut Spans::new())
    }

    #[test]
    fn frames_bodies_by_the_rules() {
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let h = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", Method::HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head(
            "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), false));
    }

    #[test]
    fn transfer_encoding_drops_content_length() {
        let text = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n";
        let h = head(text, Method::GET).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.headers.contains_key(CONTENT_LENGTH));
    }

    #[test]
    fn partial_and_bad_heads() {
        assert!(
            head("HTTP/1.1 200 OK\r\ncontent-le", Method::GET)
                .unwrap()
                .is_none()
        );
        assert!(
            head(
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                Method::GET
            )
            .is_err()
        );
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", Method::GET).is_err());
        assert!(head("garbage\r\n\r\n", Method::GET).is_err());
    }
}
