//! The request target sent upstream: origin-form (`/path?query`), the route prefix removed when
//! the route says `strip_prefix`, `Host` kept as the client sent it; HTTP/2 endpoints get the
//! absolute form (`:scheme` + `:authority`) instead.

use crate::routing::{Endpoint, Route};
use http::header::HOST;
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri, Version};

/// Rewrites the target to origin-form and makes sure `Host` is set.
pub fn to_origin_form(parts: &mut Parts, route: &Route, authority: Option<&str>) {
    if !parts.headers.contains_key(HOST)
        && let Some(value) = authority.and_then(|a| HeaderValue::from_str(a).ok())
    {
        parts.headers.insert(HOST, value);
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path_and_query = if route.options.strip_prefix && !route.uri.path.is_empty() {
        strip_prefix(&path_and_query, &route.uri.path)
    } else {
        path_and_query
    };
    parts.uri = Uri::from(path_and_query);
}

fn strip_prefix(original: &PathAndQuery, prefix: &str) -> PathAndQuery {
    let path = original.path();
    let Some(rest) = path.strip_prefix(prefix) else {
        return original.clone();
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let rebuilt = match original.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    PathAndQuery::try_from(rebuilt).unwrap_or_else(|_| original.clone())
}

/// Sets version and target form for the endpoint's protocol.
pub fn for_endpoint<B>(req: &mut http::Request<B>, endpoint: &Endpoint) {
    match endpoint.spec.protocol {
        crate::config::UpstreamProtocol::Http1 => {
            *req.version_mut() = Version::HTTP_11;
            if let Some(authority) = req.uri().authority().cloned() {
                if !req.headers().contains_key(HOST)
                    && let Ok(host) = HeaderValue::from_str(authority.as_str())
                {
                    req.headers_mut().insert(HOST, host);
                }
                let origin = req.uri().path_and_query().cloned();
                *req.uri_mut() =
                    Uri::from(origin.unwrap_or_else(|| PathAndQuery::from_static("/")));
            }
        }
        crate::config::UpstreamProtocol::Http2 => {
            *req.version_mut() = Version::HTTP_2;
            let authority = req
                .headers_mut()
                .remove(HOST)
                .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                .or_else(|| req.uri().authority().cloned())
                .unwrap_or_else(|| {
                    Authority::try_from(endpoint.spec.address.to_string()).expect("socket address")
                });
            let scheme = if endpoint.spec.tls_name.is_some() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            };
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(scheme);
            uri.authority = Some(authority);
            uri.path_and_query = req.uri().path_and_query().cloned();
            if let Ok(uri) = Uri::from_parts(uri) {
                *req.uri_mut() = uri;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_whole_prefix_and_keeps_query() {
        let pq = PathAndQuery::from_static("/serviceone/v1/users?id=7");
        assert_eq!(strip_prefix(&pq, "/serviceone/v1").as_str(), "/users?id=7");
        let pq = PathAndQuery::from_static("/serviceone/v1?x=1");
        assert_eq!(strip_prefix(&pq, "/serviceone/v1").as_str(), "/?x=1");
        let pq = PathAndQuery::from_static("/serviceone/v1/a%2Fb");
        assert_eq!(strip_prefix(&pq, "/serviceone/v1").as_str(), "/a%2Fb");
    }
}
