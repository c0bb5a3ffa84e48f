//! What a request must satisfy before it is routed, so that the router and the backend cannot
//! disagree about it: one `Host` without userinfo (RFC 9112 section 3.2, RFC 9110 section
//! 7.2); a request target with an authority (absolute form, HTTP/2 `:authority`) wins over
//! `Host`, which is rewritten to it for HTTP/1 clients (RFC 9112 section 3.2.2) and must agree
//! with it for HTTP/2 ones (RFC 9113 section 8.3.1); `chunked` is the only transfer coding
//! accepted (RFC 9112 section 6.1: others are answered 501, as nginx does).

use super::error::ProxyError;
use http::header::{HOST, TRANSFER_ENCODING};
use http::{HeaderValue, Request, Version};

/// Checks `req`, rewriting `Host` to the target's authority where one was given.
pub fn check<B>(req: &mut Request<B>) -> Result<(), ProxyError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Host field"));
    }
    if host.is_some_and(|host| !plain_authority(host.as_bytes())) {
        return Err(ProxyError::BadRequest("Host is not a plain host[:port]"));
    }
    if let Some(authority) = req.uri().authority() {
        if !plain_authority(authority.as_str().as_bytes()) {
            return Err(ProxyError::BadRequest(
                "request target's authority has userinfo",
            ));
        }
        let agrees = host.is_none_or(|h| {
            h.as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
        });
        if !agrees {
            if req.version() == Version::HTTP_2 {
                return Err(ProxyError::BadRequest("host differs from :authority"));
            }
            let value = HeaderValue::from_str(authority.as_str())
                .map_err(|_| ProxyError::BadRequest("bad authority"))?;
            req.headers_mut().insert(HOST, value);
        }
    }
    if req.headers().contains_key(TRANSFER_ENCODING) && !only_chunked(req) {
        return Err(ProxyError::UnsupportedTransferCoding);
    }
    Ok(())
}

/// True for `host[:port]` without userinfo, spaces or list separators.
fn plain_authority(value: &[u8]) -> bool {
    !value
        .iter()
        .any(|&b| matches!(b, b'@' | b',' | b' ' | b'\t'))
}

/// True when the request's transfer codings are exactly `chunked`, once.
fn only_chunked<B>(req: &Request<B>) -> bool {
    let mut codings = req
        .headers()
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    codings
        .next()
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
        && codings.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Host` after the check, or the error's status and router error.
    type Checked = Result<Option<String>, String>;
    type Fields = Vec<(&'static str, &'static str)>;

    fn checked(version: Version, target: &str, fields: &[(&str, &str)]) -> Checked {
        let mut req = Request::builder().version(version).uri(target);
        for (name, value) in fields {
            req = req.header(*name, *value);
        }
        let mut req = req.body(()).unwrap();
        match check(&mut req) {
            Ok(()) => Ok(req.headers().get(HOST).map(|h| h.to_str().unwrap().into())),
            Err(error) => Err(format!(
                "{} {}",
                error.status().as_u16(),
                error.router_error().unwrap_or_default()
            )),
        }
    }

    #[test]
    fn host_and_authority_rules() {
        let h1 = Version::HTTP_11;
        let h2 = Version::HTTP_2;
        let bad = Err("400 bad_request".to_string());
        let cases: Vec<(Version, &str, Fields, Checked)> = vec![
            (
                h1,
                "/p",
                vec![("host", "a.test")],
                Ok(Some("a.test".into())),
            ),
            (
                h1,
                "/p",
                vec![("host", "a.test"), ("host", "b.test")],
                bad.clone(),
            ),
            (
                h1,
                "/p",
                vec![("host", "a.test"), ("host", "a.test")],
                bad.clone(),
            ),
            (h1, "/p", vec![("host", "evil.test@a.test")], bad.clone()),
            (h1, "/p", vec![("host", "a.test, b.test")], bad.clone()),
            (
                h1,
                "http://a.test/p",
                vec![("host", "b.test")],
                Ok(Some("a.test".into())),
            ),
            (h1, "http://a.test:81/p", vec![], Ok(None)),
            (
                h1,
                "http://A.test/p",
                vec![("host", "a.TEST")],
                Ok(Some("a.TEST".into())),
            ),
            (
                h1,
                "http://u@a.test/p",
                vec![("host", "a.test")],
                bad.clone(),
            ),
            (h2, "http://a.test/p", vec![("host", "b.test")], bad.clone()),
            (
                h2,
                "http://a.test/p",
                vec![("host", "a.test")],
                Ok(Some("a.test".into())),
            ),
            (h2, "http://a.test/p", vec![], Ok(None)),
        ];
        for (version, target, fields, want) in cases {
            assert_eq!(
                checked(version, target, &fields),
                want,
                "{target} {fields:?}"
            );
        }
    }

    #[test]
    fn only_chunked_is_a_transfer_coding() {
        let h1 = Version::HTTP_11;
        let host = ("host", "a.test");
        let ok = Ok(Some("a.test".to_string()));
        let no = Err("501 unsupported_transfer_encoding".to_string());
        for (codings, want) in [
            (vec!["chunked"], ok.clone()),
            (vec!["Chunked"], ok.clone()),
            (vec!["gzip, chunked"], no.clone()),
            (vec!["cow, chunked"], no.clone()),
            (vec!["identity", "chunked"], no.clone()),
            (vec!["chunked", "chunked"], no.clone()),
            (vec!["gzip"], no.clone()),
        ] {
            let mut fields = vec![host];
            fields.extend(codings.iter().map(|c| ("transfer-encoding", *c)));
            assert_eq!(checked(h1, "/", &fields), want, "{codings:?}");
        }
    }
}
