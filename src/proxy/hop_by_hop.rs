//! Hop-by-hop headers (RFC 9110 section 7.6.1): removed in both directions in one scan, with
//! those named in `Connection`; `TE: trailers` survives; upgrades are re-announced explicitly.

use super::names::{
    HTTP2_SETTINGS, KEEP_ALIVE, PROXY_CONNECTION, X_CF_APPLICATIONID, X_CF_INSTANCEID,
    X_CF_INSTANCEINDEX, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_START,
    X_VCAP_REQUEST_ID,
};
use http::header::{
    CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Request};

/// Headers a client may not strip by naming them in `Connection` (they carry the router's own
/// information to the backend, or, for `Host`, what the request was routed by).
const PROTECTED: [HeaderName; 9] = [
    HOST,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_REQUEST_START,
    X_VCAP_REQUEST_ID,
    X_CF_APPLICATIONID,
    X_CF_INSTANCEID,
    X_CF_INSTANCEINDEX,
];

/// The hop-by-hop headers; `Connection` first.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    PROXY_CONNECTION,
    KEEP_ALIVE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
    HTTP2_SETTINGS,
];

/// Position of `name` in [`HOP_BY_HOP`] (a `match` on the name: cheaper than comparing nine
/// names; the test `index_matches_the_list` keeps the two in step).
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "proxy-connection" => 1,
        "keep-alive" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "transfer-encoding" => 6,
        "upgrade" => 7,
        "http2-settings" => 8,
        _ => return None,
    })
}

/// `Connection` tokens that name no extra header (or one removed anyway): skipping them
/// avoids parsing a header name for the common `keep-alive` and `close`.
fn is_connection_option(token: &str) -> bool {
    ["keep-alive", "close", "upgrade", "te"]
        .iter()
        .any(|option| token.eq_ignore_ascii_case(option))
}

fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// True when any `TE` value lists `trailers` (checked before stripping, as Go does).
pub fn wants_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(TE)
        .iter()
        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case("trailers")))
}

/// The protocol a HTTP/1.1 request asks to switch to (`Connection: upgrade` + `Upgrade`), with
/// `h2c` removed: h2c upgrades are never forwarded (request smuggling past route rules).
pub fn requested_upgrade<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != http::Version::HTTP_11 {
        return None;
    }
    let headers = req.headers();
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case("upgrade")));
    if !asks {
        return None;
    }
    let protocols: Vec<&str> = headers
        .get_all(UPGRADE)
        .iter()
        .flat_map(tokens)
        .filter(|t| !t.eq_ignore_ascii_case("h2c") && t.bytes().all(|b| b.is_ascii_graphic()))
        .collect();
    if protocols.is_empty() {
        return None;
    }
    HeaderValue::from_str(&protocols.join(", ")).ok()
}

/// True when every `Connection` value is a bare `keep-alive` or `close` (the common case: no
/// header named to strip, so no need to split the values into tokens).
fn only_options(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().all(|v| {
        let v = v.as_bytes();
        v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")
    })
}

/// Removes hop-by-hop headers and the headers named in `Connection`, in one scan of the
/// names (a `remove` only for what is present).
pub fn strip(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 && !only_options(headers) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(tokens)
            .filter(|token| !is_connection_option(token))
            .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
            .filter(|name| !PROTECTED.contains(name))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// Strips a request's hop-by-hop headers, keeping `TE: trailers` and an upgrade if asked.
/// An HTTP/2 client can always take trailers, so its requests announce `TE: trailers`.
pub fn strip_request(headers: &mut HeaderMap, upgrade: Option<&HeaderValue>, http2_client: bool) {
    let trailers = http2_client || wants_trailers(headers);
    strip(headers);
    if trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    if let Some(protocol) = upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_standard_and_named_headers() {
        let mut headers = HeaderMap::new();
        headers.append(CONNECTION, HeaderValue::from_static("close, X-Foo"));
        headers.append(CONNECTION, HeaderValue::from_static(""));
        headers.append(
            CONNECTION,
            HeaderValue::from_static("x-bar , X-Forwarded-For"),
        );
        headers.insert("x-foo", HeaderValue::from_static("1"));
        headers.insert("x-bar", HeaderValue::from_static("1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert("te", HeaderValue::from_static("gzip, trailers"));
        headers.insert("x-end-to-end", HeaderValue::from_static("1"));
        strip_request(&mut headers, None, false);
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(headers.get("te").unwrap(), "trailers");
        assert!(headers.contains_key("x-end-to-end"));
        assert!(
            headers.contains_key("x-forwarded-for"),
            "protected from Connection stripping"
        );
        for gone in [
            "connection",
            "x-foo",
            "x-bar",
            "keep-alive",
            "proxy-connection",
        ] {
            assert!(
                !names.contains(&gone),
                "{gone} should be stripped: {names:?}"
            );
        }
    }

    #[test]
    fn index_matches_the_list() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        assert_eq!(hop_by_hop_index(&HeaderName::from_static("x-other")), None);
    }

    #[test]
    fn h2c_is_never_an_upgrade() {
        let req = Request::builder()
            .header("connection", "Upgrade, HTTP2-Settings")
            .header("upgrade", "h2c")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req), None);
        let req = Request::builder()
            .header("connection", "upgrade")
            .header("upgrade", "websocket, H2C")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req).unwrap(), "websocket");
        let req = Request::builder()
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert_eq!(
            requested_upgrade(&req),
            None,
            "Upgrade without Connection: upgrade"
        );
    }
}
