//! The routing host of a request: `Host` (HTTP/1) or `:authority` (HTTP/2), port stripped,
//! lower-cased.

use http::Request;
use std::borrow::Cow;

/// The request's host for route lookup, or `None` when it has none.
pub fn request_host<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req.headers().get(http::header::HOST)?.to_str().ok()?,
    };
    let host = strip_port(raw.rsplit('@').next().unwrap_or(raw));
    if host.is_empty() {
        return None;
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(value: &str) -> Option<String> {
        let req = Request::builder().header("host", value).body(()).unwrap();
        request_host(&req).map(|h| h.into_owned())
    }

    #[test]
    fn strips_port_and_lowercases() {
        assert_eq!(
            host_of("App.Example.COM:8080").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn prefers_authority() {
        let req = Request::builder()
            .uri("http://b.example.com/x")
            .header("host", "a.example.com")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).unwrap(), "b.example.com");
    }
}
