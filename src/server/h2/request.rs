//! A request head from decoded header fields, checked as RFC 9113 section 8 asks: pseudo-header
//! fields first, once each, the required ones present, no connection-specific fields, `te` only
//! `trailers`; cookies split over several fields joined back into one (section 8.2.3).

use crate::http2::hpack::{Field, Pseudo};
use bytes::{BufMut, Bytes, BytesMut};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version, header};

/// A request head that breaks the rules: the stream is reset with `PROTOCOL_ERROR`.
#[derive(Debug)]
pub struct Malformed;

/// Collects one header block's fields.
pub struct HeadBuilder {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: bool,
    headers: HeaderMap,
    cookies: Vec<HeaderValue>,
    regular_seen: bool,
    malformed: bool,
    /// The header list's size (names, values, 32 per field).
    size: usize,
    /// The most `size` may reach: past it fields are only counted, not kept (a small block
    /// can name a large table entry many times over).
    limit: usize,
}

impl HeadBuilder {
    /// An empty head of at most `limit` bytes; `reserve` is room for fields the router adds
    /// later.
    pub fn new(limit: usize, reserve: usize) -> HeadBuilder {
        HeadBuilder {
            method: None,
            scheme: None,
            authority: None,
            path: None,
            protocol: false,
            headers: crate::http1::fields::spare_map(8 + reserve),
            cookies: Vec::new(),
            regular_seen: false,
            malformed: false,
            size: 0,
            limit,
        }
    }

    /// True when the header list went over its limit (431 for a request).
    pub fn too_large(&self) -> bool {
        self.size > self.limit
    }

    /// Adds one field of a request head.
    pub fn push(&mut self, field: Field, size: usize) {
        self.size = self.size.saturating_add(size);
        if self.too_large() {
            return;
        }
        match field {
            Field::Pseudo(kind, value) => {
                let slot = match kind {
                    Pseudo::Method => &mut self.method,
                    Pseudo::Scheme => &mut self.scheme,
                    Pseudo::Authority => &mut self.authority,
                    Pseudo::Path => &mut self.path,
                    Pseudo::Protocol => {
                        self.protocol = true;
                        return;
                    }
                    Pseudo::Status => {
                        self.malformed = true;
                        return;
                    }
                };
                if self.regular_seen || slot.is_some() {
                    self.malformed = true;
                }
                *slot = Some(value);
            }
            Field::Header(name, value) => {
                self.regular_seen = true;
                match name {
                    header::COOKIE => self.cookies.push(value),
                    header::TE if value != "trailers" => self.malformed = true,
                    _ if crate::http2::connection_specific(&name) => self.malformed = true,
                    _ => {
                        self.headers.append(name, value);
                    }
                }
            }
            Field::Invalid => self.malformed = true,
        }
    }

    /// The request head, or why it is malformed.
    pub fn finish(mut self) -> Result<Request<()>, Malformed> {
        if self.malformed || self.protocol {
            // `:protocol` (extended CONNECT) is not offered, so a client must not send it.
            return Err(Malformed);
        }
        let method = self.method.ok_or(Malformed)?;
        let method = Method::from_bytes(&method).map_err(|_| Malformed)?;
        let authority = match self.authority {
            Some(authority) => {
                Some(Authority::from_maybe_shared(authority).map_err(|_| Malformed)?)
            }
            None => None,
        };
        let mut parts = http::uri::Parts::default();
        if method == Method::CONNECT {
            if self.scheme.is_some() || self.path.is_some() || authority.is_none() {
                return Err(Malformed);
            }
            parts.authority = authority;
        } else {
            let (Some(scheme), Some(path)) = (self.scheme, self.path) else {
                return Err(Malformed);
            };
            if path.is_empty() {
                return Err(Malformed);
            }
            // Without `:authority` (a `host` field then names the target) the URI is the path.
            if let Some(authority) = authority {
                parts.scheme = Some(Scheme::try_from(&scheme[..]).map_err(|_| Malformed)?);
                parts.authority = Some(authority);
            }
            parts.path_and_query =
                Some(PathAndQuery::from_maybe_shared(path).map_err(|_| Malformed)?);
        }
        match self.cookies.len() {
            0 => {}
            1 => {
                let cookie = self.cookies.pop().ok_or(Malformed)?;
                self.headers.insert(header::COOKIE, cookie);
            }
            _ => {
                let mut joined = BytesMut::new();
                for (i, cookie) in self.cookies.iter().enumerate() {
                    if i > 0 {
                        joined.put_slice(b"; ");
                    }
                    joined.put_slice(cookie.as_bytes());
                }
                let joined =
                    HeaderValue::from_maybe_shared(joined.freeze()).map_err(|_| Malformed)?;
                self.headers.insert(header::COOKIE, joined);
            }
        }
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = Uri::from_parts(parts).map_err(|_| Malformed)?;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.headers;
        Ok(request)
    }

    /// The fields of a trailer block, or why it is malformed (pseudo-header fields, or over
    /// the limit).
    pub fn finish_trailers(self) -> Result<HeaderMap, Malformed> {
        let pseudo = self.method.is_some()
            || self.scheme.is_some()
            || self.authority.is_some()
            || self.path.is_some()
            || self.protocol;
        if self.malformed || pseudo || self.too_large() {
            return Err(Malformed);
        }
        let mut headers = self.headers;
        for cookie in self.cookies {
            headers.append(header::COOKIE, cookie);
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn pseudo(kind: Pseudo, value: &'static str) -> Field {
        Field::Pseudo(kind, Bytes::from_static(value.as_bytes()))
    }

    fn regular(name: &'static str, value: &'static str) -> Field {
        Field::Header(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    }

    fn build(fields: Vec<Field>) -> Result<Request<()>, Malformed> {
        let mut head = HeadBuilder::new(usize::MAX, 0);
        for field in fields {
            head.push(field, 0);
        }
        head.finish()
    }

    fn get() -> Vec<Field> {
        vec![
            pseudo(Pseudo::Method, "GET"),
            pseudo(Pseudo::Scheme, "https"),
            pseudo(Pseudo::Authority, "example.com:8443"),
            pseudo(Pseudo::Path, "/a?b=c"),
        ]
    }

    #[test]
    fn a_valid_head_becomes_a_request_with_cookies_joined() {
        let mut fields = get();
        fields.push(regular("cookie", "a=1"));
        fields.push(regular("x-one", "1"));
        fields.push(regular("cookie", "b=2"));
        fields.push(regular("te", "trailers"));
        let request = build(fields).unwrap();
        assert_eq!(request.uri(), "https://example.com:8443/a?b=c");
        assert_eq!(request.version(), Version::HTTP_2);
        assert_eq!(request.headers()["cookie"], "a=1; b=2");
        assert_eq!(request.headers()["x-one"], "1");
    }

    #[test]
    fn without_authority_the_uri_is_the_path() {
        let mut fields = get();
        fields.remove(2);
        fields.push(regular("host", "example.com"));
        let request = build(fields).unwrap();
        assert_eq!(request.uri(), "/a?b=c");
        assert_eq!(request.headers()["host"], "example.com");
    }

    #[test]
    fn malformed_heads_are_refused() {
        let cases: Vec<(&str, Vec<Field>)> = vec![
            ("no method", get().into_iter().skip(1).collect()),
            ("no path", get().into_iter().take(3).collect()),
            ("pseudo after regular", {
                let mut f = vec![regular("x", "1")];
                f.extend(get());
                f
            }),
            ("duplicate pseudo", {
                let mut f = get();
                f.push(pseudo(Pseudo::Path, "/again"));
                f
            }),
            ("status in a request", {
                let mut f = get();
                f.insert(0, pseudo(Pseudo::Status, "200"));
                f
            }),
            ("connection field", {
                let mut f = get();
                f.push(regular("connection", "close"));
                f
            }),
            ("te other than trailers", {
                let mut f = get();
                f.push(regular("te", "gzip"));
                f
            }),
            ("invalid field", {
                let mut f = get();
                f.push(Field::Invalid);
                f
            }),
            ("empty path", {
                let mut f = get();
                f[3] = pseudo(Pseudo::Path, "");
                f
            }),
        ];
        for (what, fields) in cases {
            assert!(build(fields).is_err(), "{what}");
        }
    }

    #[test]
    fn fields_past_the_limit_are_counted_not_kept() {
        let mut head = HeadBuilder::new(1000, 0);
        for field in get() {
            head.push(field, 40);
        }
        // A field that names a large table entry, many times over.
        for _ in 0..100_000 {
            head.push(regular("x-big", "v"), 4000);
        }
        assert!(head.too_large());
        assert!(head.headers.len() <= 1);
    }

    #[test]
    fn trailers_refuse_pseudo_fields() {
        let mut head = HeadBuilder::new(usize::MAX, 0);
        head.push(regular("grpc-status", "0"), 0);
        assert_eq!(head.finish_trailers().unwrap()["grpc-status"], "0");
        let mut head = HeadBuilder::new(usize::MAX, 0);
        head.push(pseudo(Pseudo::Path, "/"), 0);
        assert!(head.finish_trailers().is_err());
    }
}
