//! Headers the router adds on the way to the backend: `X-Forwarded-For/Proto/Host`,
//! `X-Request-Start`, `X-Vcap-Request-Id`, and the endpoint's `X-CF-*` instance headers.

use super::ClientConn;
use super::names::{
    X_CF_APPLICATIONID, X_CF_INSTANCEID, X_CF_INSTANCEINDEX, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO, X_REQUEST_START, X_VCAP_REQUEST_ID,
};
use crate::routing::Endpoint;
use http::header::{Entry, HOST};
use http::{HeaderMap, HeaderValue};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Adds the forwarding headers for a request from `client`. `authority` is the request's host
/// as the client wrote it (HTTP/2 `:authority` when there is no `Host`).
pub fn add(
    headers: &mut HeaderMap,
    client: &ClientConn,
    authority: Option<&str>,
    request_id: &HeaderValue,
) {
    append_forwarded_for(headers, client.ip_header());
    let proto = if client.tls() { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    // `entry`: one hash of the name for the check and the insert.
    let host = headers.get(HOST).cloned();
    if let Entry::Vacant(entry) = headers.entry(X_FORWARDED_HOST)
        && let Some(host) = host.or_else(|| authority.and_then(|a| a.parse().ok()))
    {
        entry.insert(host);
    }
    if let Entry::Vacant(entry) = headers.entry(X_REQUEST_START) {
        entry.insert(request_start());
    }
    headers.insert(X_VCAP_REQUEST_ID, request_id.clone());
}

thread_local! {
    /// The last `X-Request-Start` value made on this thread, and its millisecond.
    static REQUEST_START: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((0, HeaderValue::from_static("0"))) };
}

/// `X-Request-Start` for now: milliseconds since the epoch. Requests within one millisecond
/// share one value (a refcount, not an allocation each). Marked sensitive: it changes every
/// millisecond, so it is not worth an HPACK table entry.
fn request_start() -> HeaderValue {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    REQUEST_START.with_borrow_mut(|(at, value)| {
        if *at != millis {
            let mut fresh = HeaderValue::from(millis);
            fresh.set_sensitive(true);
            *at = millis;
            *value = fresh;
        }
        value.clone()
    })
}

/// Appends the client IP to `X-Forwarded-For`, folding several lines into one.
fn append_forwarded_for(headers: &mut HeaderMap, ip: &HeaderValue) {
    let mut prior = headers.get_all(&X_FORWARDED_FOR).iter();
    let Some(first) = prior.next() else {
        headers.insert(X_FORWARDED_FOR, ip.clone());
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for more in prior {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(more.as_bytes());
    }
    joined.extend_from_slice(b", ");
    joined.extend_from_slice(ip.as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// Sets the instance headers of the endpoint this attempt goes to; a retry (`first` false)
/// also clears what the previous endpoint set.
pub fn add_instance(headers: &mut HeaderMap, endpoint: &Endpoint, first: bool) {
    let instance = &endpoint.headers;
    headers.insert(X_CF_INSTANCEID, instance.instance_id.clone());
    for (name, value) in [
        (X_CF_APPLICATIONID, &instance.app_id),
        (X_CF_INSTANCEINDEX, &instance.instance_index),
    ] {
        match value {
            Some(value) => {
                headers.insert(name, value.clone());
            }
            None if !first => {
                headers.remove(name);
            }
            None => {}
        }
    }
}
