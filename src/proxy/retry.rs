//! Retry rules: which requests may reach a backend twice (idempotent methods or an
//! idempotency key, with an empty or buffered body), which failures leave them safe to resend
//! (no response head received), and a per-worker budget that keeps retries of sent requests
//! from amplifying an outage. Requests that never left the router (connect refused or timed
//! out, TLS failure) always move to the next endpoint: they add no load anywhere.

use crate::body::ProxyBody;
use crate::upstream::{H1Error, UpstreamError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use std::cell::Cell;

/// True for requests that may be sent twice: GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110
/// section 9.2.2), or any request carrying `Idempotency-Key` / `X-Idempotency-Key`.
pub fn idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}

/// True when a sent attempt failed before a response head arrived (connection closed or
/// reset, stream refused), so an idempotent request may go elsewhere. A response the backend
/// did send (even a malformed one), a timeout or the client's own body failing never qualify.
pub fn no_response(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Http(e) => !e.is_user() && !e.is_parse() && !e.is_parse_status(),
        UpstreamError::H1(e) => !matches!(e, H1Error::Protocol(_)),
        UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_) => {
            true
        }
        UpstreamError::Timeout(_) | UpstreamError::Upgrade(_) => false,
    }
}

/// A copy of a request that may be sent again after a backend may have seen it.
#[derive(Debug)]
pub struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl Replay {
    /// A copy of `req` when it is idempotent and its body is empty or buffered; else `None`.
    pub fn of(req: &Request<ProxyBody>) -> Option<Replay> {
        if !idempotent(req.method(), req.headers()) {
            return None;
        }
        let body = match req.body() {
            ProxyBody::Empty => None,
            ProxyBody::Full(bytes) => bytes.clone(),
            ProxyBody::Incoming(_)
            | ProxyBody::Http2(_)
            | ProxyBody::Upstream(_)
            | ProxyBody::Limited(_) => return None,
        };
        Some(Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            body,
        })
    }

    /// The request again.
    pub fn request(&self) -> Request<ProxyBody> {
        let mut req = Request::new(match &self.body {
            Some(bytes) => ProxyBody::full(bytes.clone()),
            None => ProxyBody::Empty,
        });
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Retries of sent requests allowed: `ratio` of requests plus `min_per_second`, per worker
/// thread (no shared counter on the request path).
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    /// Share of requests that may be retried.
    pub ratio: f64,
    /// Retries per second always allowed.
    pub min_per_second: u32,
}

thread_local! {
    /// Retry tokens of this thread, and when the floor last refilled them (`now_ms`); `None`
    /// until the thread's first request.
    static TOKENS: Cell<Option<(f64, u64)>> = const { Cell::new(None) };
}

impl RetryBudget {
    /// Most tokens saved up: ten seconds of the floor, at least 100.
    fn cap(&self) -> f64 {
        (f64::from(self.min_per_second) * 10.0).max(100.0)
    }

    /// Credits one request.
    pub fn deposit(&self) {
        TOKENS.with(|tokens| {
            let (balance, refilled) = tokens.get().unwrap_or_else(|| self.initial());
            tokens.set(Some(((balance + self.ratio).min(self.cap()), refilled)));
        });
    }

    /// A thread's starting tokens: one second of the floor.
    fn initial(&self) -> (f64, u64) {
        (f64::from(self.min_per_second), crate::routing::now_ms())
    }

    /// Takes one retry if the budget allows it.
    pub fn withdraw(&self) -> bool {
        let now = crate::routing::now_ms();
        TOKENS.with(|tokens| {
            let (balance, refilled) = tokens.get().unwrap_or_else(|| self.initial());
            let floor =
                now.saturating_sub(refilled) as f64 / 1000.0 * f64::from(self.min_per_second);
            let balance = (balance + floor).min(self.cap());
            let allowed = balance >= 1.0;
            tokens.set(Some((if allowed { balance - 1.0 } else { balance }, now)));
            allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_by_method_or_key() {
        let none = HeaderMap::new();
        assert!(idempotent(&Method::GET, &none));
        assert!(idempotent(&Method::PUT, &none));
        assert!(!idempotent(&Method::POST, &none));
        assert!(!idempotent(&Method::PATCH, &none));
        let mut keyed = HeaderMap::new();
        keyed.insert("idempotency-key", "abc".parse().unwrap());
        assert!(idempotent(&Method::POST, &keyed));
    }

    #[test]
    fn replay_only_for_idempotent_requests_with_known_bodies() {
        let get = Request::get("/x").body(ProxyBody::Empty).unwrap();
        assert!(Replay::of(&get).is_some());
        let put = Request::put("/x").body(ProxyBody::full("data")).unwrap();
        let again = Replay::of(&put).unwrap().request();
        assert_eq!(again.method(), Method::PUT);
        assert!(matches!(again.body(), ProxyBody::Full(Some(b)) if b == "data"));
        let post = Request::post("/x").body(ProxyBody::full("data")).unwrap();
        assert!(Replay::of(&post).is_none());
    }

    #[test]
    fn budget_allows_a_share_of_requests() {
        std::thread::spawn(|| {
            let budget = RetryBudget {
                ratio: 0.2,
                min_per_second: 0,
            };
            assert!(!budget.withdraw(), "no credit yet");
            for _ in 0..100 {
                budget.deposit();
            }
            let granted = (0..100).filter(|_| budget.withdraw()).count();
            assert!((19..=20).contains(&granted), "{granted}");
        })
        .join()
        .unwrap();
    }
}
