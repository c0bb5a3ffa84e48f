//! Sticky sessions, as gorouter's. Request phase: a request carrying an application session
//! cookie (`cookie_names`, default `JSESSIONID`) *and* `__VCAP_ID__` asks for that instance
//! (a `__VCAP_ID__` alone is ignored). Response phase: when the response sets an application
//! session cookie, or the request's sticky instance was not the one that answered, the router
//! adds `__VCAP_ID__=<instance id>` (HttpOnly, `Path` = the route's path, `Secure`, `SameSite`,
//! `Expires`, `Max-Age` and `Partitioned` copied from the application cookie) unless the backend
//! set one itself.

use super::context::RequestContext;
use crate::balance::Affinity;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// The router's cookie: the instance id of the endpoint a session lives on.
pub const VCAP_ID: &str = "__VCAP_ID__";

/// Request phase: reads the sticky session the request carries into `ctx` and, when its
/// instance is in the route, asks for it.
pub fn read(ctx: &mut RequestContext, headers: &HeaderMap, cookie_names: &[String]) {
    if cookie_names.is_empty() || !headers.contains_key(COOKIE) {
        return;
    }
    let mut session = false;
    let mut instance = None;
    for (name, value) in headers.get_all(COOKIE).iter().flat_map(pairs) {
        if name == VCAP_ID {
            instance = Some(value);
        } else if cookie_names.iter().any(|n| n == name) {
            session = true;
        }
    }
    let Some(instance) = instance.filter(|_| session) else {
        return;
    };
    // gorouter finds a session's instance by its id or by its `host:port`.
    let address = instance.parse::<std::net::SocketAddr>().ok();
    if ctx.affinity == Affinity::None
        && let Some(index) = ctx
            .route
            .pool
            .endpoints
            .iter()
            .position(|e| e.spec.instance_id == instance || Some(e.spec.address) == address)
    {
        ctx.affinity = Affinity::Prefer(index);
    }
    ctx.sticky_instance = Some(instance.to_owned());
}

/// Response phase: adds the `__VCAP_ID__` cookie for the endpoint that answered when the
/// session needs one (never for a route service's answer).
pub fn write(ctx: &RequestContext, headers: &mut HeaderMap, cookie_names: &[String]) {
    let Some(served_by) = &ctx.served_by else {
        return;
    };
    if cookie_names.is_empty() {
        return;
    }
    let instance = &served_by.spec.instance_id;
    let mut app_cookie = None;
    for value in headers.get_all(SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let name = text.split(['=', ';']).next().unwrap_or("").trim();
        if name == VCAP_ID {
            return;
        }
        if app_cookie.is_none() && cookie_names.iter().any(|n| n == name) {
            app_cookie = Some(text.to_owned());
        }
    }
    let moved = ctx
        .sticky_instance
        .as_ref()
        .is_some_and(|sticky| sticky != instance);
    if app_cookie.is_none() && !moved {
        return;
    }
    let path = match ctx.route.uri.path.as_str() {
        "" => "/",
        path => path,
    };
    if let Some(cookie) = vcap_cookie(instance, path, app_cookie.as_deref()) {
        headers.append(SET_COOKIE, cookie);
    }
}

/// `__VCAP_ID__=<instance>` with `path`, HttpOnly, and the attributes gorouter copies from the
/// application's `Set-Cookie` (when there is one). `None` when the instance id cannot be a
/// cookie value.
fn vcap_cookie(instance: &str, path: &str, app_cookie: Option<&str>) -> Option<HeaderValue> {
    let valid = |text: &str| {
        text.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
    };
    if instance.is_empty() || !valid(instance) || !valid(path) {
        return None;
    }
    let mut cookie = format!("{VCAP_ID}={instance}; Path={path}; HttpOnly");
    for attribute in app_cookie.into_iter().flat_map(|c| c.split(';').skip(1)) {
        let attribute = attribute.trim();
        let key = attribute.split('=').next().unwrap_or("").trim();
        let copied = ["Secure", "SameSite", "Expires", "Max-Age", "Partitioned"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key));
        if copied {
            cookie.push_str("; ");
            cookie.push_str(attribute);
        }
    }
    HeaderValue::from_str(&cookie).ok()
}

/// The `name=value` pairs of a `Cookie` header value.
fn pairs(value: &HeaderValue) -> impl Iterator<Item = (&str, &str)> {
    value
        .to_str()
        .unwrap_or("")
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (application Set-Cookie, the router's cookie)
    #[test]
    fn the_router_cookie_copies_gorouters_attributes() {
        let table = [
            (None, "__VCAP_ID__=i-1; Path=/api; HttpOnly"),
            (
                Some("JSESSIONID=abc; Path=/x; Secure; SameSite=Lax; Max-Age=60; Domain=a.test"),
                "__VCAP_ID__=i-1; Path=/api; HttpOnly; Secure; SameSite=Lax; Max-Age=60",
            ),
            (
                Some(
                    "JSESSIONID=abc; expires=Wed, 21 Oct 2026 07:28:00 GMT; Partitioned; HttpOnly",
                ),
                "__VCAP_ID__=i-1; Path=/api; HttpOnly; expires=Wed, 21 Oct 2026 07:28:00 GMT; Partitioned",
            ),
        ];
        for (app, expected) in table {
            let cookie = vcap_cookie("i-1", "/api", app).unwrap();
            assert_eq!(cookie, expected, "{app:?}");
        }
        assert!(vcap_cookie("a;b", "/", None).is_none());
        assert!(vcap_cookie("", "/", None).is_none());
    }
}
