//! The routing host of a request: `Host` (HTTP/1) or `:authority` (HTTP/2), port stripped,
//! lower-cased.

use http::request::Parts;
use std::borrow::Cow;

/// The request's host for route lookup, or `None` when it has none.
pub fn request_host(parts: &Parts) -> Option<Cow<'_, str>> {
    let raw = match parts.uri.authority() {
        Some(authority) => authority.as_str(),
        None => parts.headers.get(http::header::HOST)?.to_str().ok()?,
    };
    // A host with userinfo (`user@host`) never gets here: the proxy refuses it first
    // (`proxy::request_check`).
    let host = strip_port(raw);
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
    match host.bytes().rposition(|b| b == b':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn host_of(value: &str) -> Option<String> {
        let (parts, ()) = Request::builder()
            .header("host", value)
            .body(())
            .unwrap()
            .into_parts();
        request_host(&parts).map(|h| h.into_owned())
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
        let (parts, ()) = Request::builder()
            .uri("http://b.example.com/x")
            .header("host", "a.example.com")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(request_host(&parts).unwrap(), "b.example.com");
    }
}
