//! Retry rules: what became of an attempt ([`Outcome`]), and whether the request goes to
//! another endpoint ([`decide`], a pure function). Requests that never reached a backend, or
//! that the backend provably did not process (HTTP/2 REFUSED_STREAM, streams above a GOAWAY's
//! last stream id), always move on: they add no work anywhere. Requests a backend may have
//! processed move on only when they may be processed twice (idempotent methods or an
//! idempotency key) and no response head came back, or the route retries the status, within a
//! per-worker budget that keeps retries from amplifying an outage.

use crate::body::ProxyBody;
use crate::upstream::{H1Error, SendError, UpstreamError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use std::cell::Cell;

/// What became of an attempt that gives the client no response of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Never reached the backend: connect or TLS failed, or a pooled connection was found
    /// closed before a byte was written.
    NotSent,
    /// Reached the backend, which provably did not process it (HTTP/2 REFUSED_STREAM, or a
    /// stream above the last stream id of the backend's GOAWAY).
    Refused,
    /// Sent; the connection failed before a response head came back.
    NoResponse,
    /// Sent; no response head within the attempt timeout.
    TimedOut,
    /// Answered with a status the route retries.
    RetryableStatus,
    /// Anything a resend cannot mend: a malformed response, the client's own body failing.
    Final,
}

/// What the round tripper does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the request to another endpoint; `budget`: the retry is paid from the budget.
    Retry { budget: bool },
    /// Give the client this attempt's result.
    Stop,
}

/// The retry decision. `idempotent`: the request may be processed twice; `resendable`: the
/// request is still whole or a copy of it was kept; `attempts_left`: another endpoint may
/// still be tried.
pub fn decide(
    outcome: Outcome,
    idempotent: bool,
    resendable: bool,
    attempts_left: bool,
) -> Decision {
    if !attempts_left || !resendable {
        return Decision::Stop;
    }
    match outcome {
        Outcome::NotSent | Outcome::Refused => Decision::Retry { budget: false },
        Outcome::NoResponse | Outcome::TimedOut | Outcome::RetryableStatus if idempotent => {
            Decision::Retry { budget: true }
        }
        _ => Decision::Stop,
    }
}

/// What became of an attempt that failed with `failure`.
pub fn outcome(failure: &SendError) -> Outcome {
    let error = &failure.error;
    if !failure.written {
        Outcome::NotSent
    } else if refused(error) {
        Outcome::Refused
    } else if no_response(error) {
        Outcome::NoResponse
    } else {
        Outcome::Final
    }
}

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
fn no_response(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Http(e) => !e.is_user() && !e.is_parse() && !e.is_parse_status(),
        UpstreamError::H1(e) => !matches!(e, H1Error::Protocol(_)),
        UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_) => {
            true
        }
        UpstreamError::Timeout(_) | UpstreamError::Upgrade(_) => false,
    }
}

/// True when an HTTP/2 backend said it did not process the stream: it reset it with
/// REFUSED_STREAM, or its GOAWAY's last stream id is below it (RFC 9113 sections 8.7 and
/// 6.8). The h2 library reports the latter as a GOAWAY error from the remote on exactly those
/// streams (streams at or below the last id fail otherwise if the connection breaks).
fn refused(error: &UpstreamError) -> bool {
    let UpstreamError::Http(error) = error else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        cause = error.source();
    }
    false
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
    /// A copy of `req` when its body is empty or buffered; else `None`.
    pub fn of(req: &Request<ProxyBody>) -> Option<Replay> {
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
        (f64::from(self.min_per_second), crate::clock::now_ms())
    }

    /// Takes one retry if the budget allows it.
    pub fn withdraw(&self) -> bool {
        let now = crate::clock::now_ms();
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
    fn replay_only_for_requests_with_known_bodies() {
        let get = Request::get("/x").body(ProxyBody::Empty).unwrap();
        assert!(Replay::of(&get).is_some());
        let put = Request::put("/x").body(ProxyBody::full("data")).unwrap();
        let again = Replay::of(&put).unwrap().request();
        assert_eq!(again.method(), Method::PUT);
        assert!(matches!(again.body(), ProxyBody::Full(Some(b)) if b == "data"));
        let post = Request::post("/x").body(ProxyBody::full("data")).unwrap();
        assert_eq!(Replay::of(&post).unwrap().request().method(), Method::POST);
    }

    /// Every outcome against (idempotent, resendable, attempts left).
    #[test]
    fn decision_table() {
        use Decision::{Retry, Stop};
        use Outcome::*;
        const FREE: Decision = Retry { budget: false };
        const PAID: Decision = Retry { budget: true };
        // (outcome, idempotent, resendable, attempts left, decision)
        let table = [
            (NotSent, false, true, true, FREE),
            (NotSent, true, true, true, FREE),
            (Refused, false, true, true, FREE),
            (Refused, true, true, true, FREE),
            (NoResponse, true, true, true, PAID),
            (NoResponse, false, true, true, Stop),
            (TimedOut, true, true, true, PAID),
            (TimedOut, false, true, true, Stop),
            (RetryableStatus, true, true, true, PAID),
            (RetryableStatus, false, true, true, Stop),
            (Final, true, true, true, Stop),
            (Final, false, true, true, Stop),
            // Nothing to send again, or nowhere to send it: stop, whatever happened.
            (NotSent, true, false, true, Stop),
            (Refused, false, false, true, Stop),
            (NoResponse, true, false, true, Stop),
            (NotSent, true, true, false, Stop),
            (Refused, true, true, false, Stop),
            (TimedOut, true, true, false, Stop),
        ];
        for (outcome, idempotent, resendable, left, expected) in table {
            assert_eq!(
                decide(outcome, idempotent, resendable, left),
                expected,
                "{outcome:?} idempotent={idempotent} resendable={resendable} left={left}"
            );
        }
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
