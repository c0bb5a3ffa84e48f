//! The request target sent upstream: origin-form (`/path?query`), the route prefix removed when
//! the route says `strip_prefix`, `Host` kept as the client sent it. (HTTP/2 endpoints then get
//! the absolute form: [`Target::shape`](crate::target::Target::shape).)

use crate::routing::Route;
use http::header::HOST;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Uri};

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
    // The route's path is lower-case; the request's matched it ignoring case.
    let Some(rest) = path
        .get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &path[prefix.len()..])
    else {
        return original.clone();
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let rebuilt = match original.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    PathAndQuery::try_from(rebuilt).unwrap_or_else(|_| original.clone())
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
        let pq = PathAndQuery::from_static("/ServiceOne/V1/Users");
        assert_eq!(strip_prefix(&pq, "/serviceone/v1").as_str(), "/Users");
    }
}
