//! The round tripper: picks an endpoint, sends, and moves to another endpoint when that is
//! safe (see `retry`): always for failures before the request left the router, and for
//! idempotent requests with a replayable body when no response head came back (within the
//! retry budget), or when the route retries the status the backend answered. Every failed
//! attempt is reported to the registry (passive health). Up to `max_attempts`, capped by the
//! pool size.

use super::deadline::Deadline;
use super::retry::{self, Replay, RetryBudget};
use super::{ProxyError, forwarded, target};
use crate::balance::{self, Attempts, PickError};
use crate::body::ProxyBody;
use crate::config::BalancerKind;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::routing::{Endpoint, Route, now_ms};
use crate::upstream::{EndpointInFlight, Pooled, ResponseBody, SendError, Upstream, UpstreamError};
use http::{Request, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// Attempt limits.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Tries per request, capped by the number of endpoints.
    pub max_attempts: usize,
    /// In-flight requests per endpoint; 0 = unlimited.
    pub max_conns_per_backend: usize,
    /// Budget for retries of requests that reached a backend.
    pub budget: RetryBudget,
}

/// A response head from a backend, with what its body must hold on to.
pub struct Sent {
    /// The backend's response.
    pub response: Response<ResponseBody>,
    /// The HTTP/1.1 connection to give back when the body ends.
    pub pooled: Option<Pooled>,
    /// The endpoint's in-flight count for this request.
    pub in_flight: EndpointInFlight,
}

/// What the round tripper works with.
pub struct RoundTrip<'a> {
    /// Sends to endpoints.
    pub upstream: &'a Upstream,
    /// Hears about failures.
    pub registry: &'a dyn Registry,
    /// Counts retries and fail-opens.
    pub metrics: &'a Metrics,
    /// Limits.
    pub settings: &'a RetrySettings,
}

impl RoundTrip<'_> {
    /// Sends `req` to an endpoint of `route`, trying others while that is safe. `deadline`
    /// bounds the whole exchange (`None` for upgrades).
    pub async fn send(
        &self,
        route: &Route,
        req: &mut Request<ProxyBody>,
        deadline: Option<Instant>,
    ) -> Result<Sent, ProxyError> {
        let settings = self.settings;
        let max_attempts = settings
            .max_attempts
            .clamp(1, route.pool.endpoints.len().max(1));
        // A copy to resend is made only when needed: the hand-written HTTP/1.1 client leaves a
        // failed request whole, so only hyper's paths (HTTP/2, upgrades, which take the request)
        // and status retries (the answered request is gone) need one.
        let mut replay: Option<Replay> = None;
        let copy_always = !route.options.retry_statuses.is_empty();
        let hash = match (&route.hash_key, route.balancer) {
            (Some(key), BalancerKind::Hash) => key.hash(req.headers()),
            _ => None,
        };
        settings.budget.deposit();
        let mut attempts = Attempts::default();
        let mut last_error: Option<UpstreamError> = None;
        let mut answered: Option<Sent> = None;
        // The request stays with the caller for every attempt: senders borrow it.
        for attempt in 0..max_attempts {
            let picked = match balance::pick(route, &attempts, settings.max_conns_per_backend, hash)
            {
                Ok(picked) => picked,
                Err(PickError::AllBusy) if last_error.is_none() && answered.is_none() => {
                    return Err(ProxyError::ConnectionLimit);
                }
                Err(_) => break,
            };
            if picked.failed_open {
                self.metrics.pool_failed_open();
            }
            if attempt > 0 {
                self.metrics.retried();
            }
            attempts.record(picked.index);
            let endpoint = picked.endpoint;
            forwarded::add_instance(req.headers_mut(), &endpoint, attempt == 0);
            target::for_endpoint(req, &endpoint);
            if max_attempts > 1
                && replay.is_none()
                && (copy_always || !Upstream::keeps_request(&endpoint, req))
            {
                replay = Replay::of(req);
            }
            let in_flight = EndpointInFlight::start(endpoint.clone());
            let started = (route.balancer == BalancerKind::P2cEwma).then(std::time::Instant::now);
            // Pinned where it is made (not moved into a `Timeout`): the send future is large.
            let result = {
                let sending = std::pin::pin!(self.upstream.send(&endpoint, req));
                within(deadline, sending).await
            };
            let Some(result) = result else {
                let limit = deadline.map_or(Duration::ZERO, |deadline| {
                    deadline.saturating_duration_since(Instant::now())
                });
                self.registry.failure(route, &endpoint);
                return Err(ProxyError::EndpointFailure(UpstreamError::Timeout(limit)));
            };
            match result {
                Ok((response, pooled)) => {
                    endpoint.health.passive.succeeded();
                    if let Some(started) = started {
                        endpoint.health.latency.observe(started.elapsed(), now_ms());
                    }
                    let sent = Sent {
                        response,
                        pooled,
                        in_flight,
                    };
                    let status = sent.response.status().as_u16();
                    match &replay {
                        Some(replay)
                            if route.options.retry_statuses.contains(&status)
                                && attempt + 1 < max_attempts
                                && self.budget_allows() =>
                        {
                            tracing::debug!(endpoint = %endpoint.spec.address, status, "retrying status");
                            *req = replay.request();
                            answered = Some(sent);
                        }
                        _ => return Ok(sent),
                    }
                }
                Err(SendError {
                    error,
                    kept,
                    written,
                }) => {
                    self.attempt_failed(route, &endpoint, &error);
                    let resendable = retry::no_response(&error) && attempt + 1 < max_attempts;
                    let resend = if kept && !written {
                        true
                    } else if kept {
                        resendable
                            && retry::idempotent(req.method(), req.headers())
                            && self.budget_allows()
                    } else if resendable
                        && let Some(replay) = &replay
                        && self.budget_allows()
                    {
                        *req = replay.request();
                        true
                    } else {
                        false
                    };
                    if !resend {
                        return answered.ok_or_else(|| ProxyError::from_attempt(error));
                    }
                    last_error = Some(error);
                }
            }
        }
        match (answered, last_error) {
            (Some(sent), _) => Ok(sent),
            (None, Some(error)) => Err(ProxyError::EndpointFailure(error)),
            (None, None) => Err(ProxyError::NoEndpoints),
        }
    }

    fn budget_allows(&self) -> bool {
        let allowed = self.settings.budget.withdraw();
        if !allowed {
            self.metrics.retry_denied();
        }
        allowed
    }

    /// Reports a failed attempt, unless the client's own body broke it.
    fn attempt_failed(&self, route: &Route, endpoint: &Arc<Endpoint>, error: &UpstreamError) {
        if !matches!(error, UpstreamError::Http(e) if e.is_user()) {
            self.registry.failure(route, endpoint);
        }
        tracing::debug!(endpoint = %endpoint.spec.address, %error, "attempt failed");
    }
}

/// Awaits `future` until `deadline` (`None`: no limit); `None` when the deadline came first.
async fn within<F: Future>(
    deadline: Option<Instant>,
    mut future: Pin<&mut F>,
) -> Option<F::Output> {
    let Some(deadline) = deadline else {
        return Some(future.await);
    };
    let mut timer = Deadline::at(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.poll(cx).map(|()| None)
    })
    .await
}
