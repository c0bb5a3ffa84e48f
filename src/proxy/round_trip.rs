//! The round tripper: picks an endpoint, sends, records the result in the endpoint's health
//! (`endpoint_health`), and moves to another endpoint when `retry::decide` says so. Up to
//! `max_attempts`, capped by the pool size; each attempt within the request deadline and, when
//! one is set, the attempt timeout.

use super::context::RequestContext;
use super::endpoint_health::HealthReport;
use super::retry::{self, Decision, Outcome, Replay, RetryBudget};
use super::{ProxyError, forwarded};
use crate::balance::{self, Attempts, PickError};
use crate::body::ProxyBody;
use crate::clock::now_ms;
use crate::config::BalancerKind;
use crate::deadline::Deadline;
use crate::log_limit::LogLimit;
use crate::metrics::Metrics;
use crate::upstream::{EndpointInFlight, Pooled, ResponseBody, Upstream, UpstreamError};
use http::{Request, Response};
use std::pin::Pin;
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
    /// Time an endpoint has to send a response head, unless the route sets its own; `None` =
    /// only the request deadline.
    pub attempt_timeout: Option<Duration>,
    /// The request deadline's length (named in the 504 when it passes).
    pub request_timeout: Duration,
}

/// A response head from a backend, with what its body must hold on to.
pub struct Sent {
    /// The backend's response.
    pub response: Response<ResponseBody>,
    /// The HTTP/1.1 connection to give back when the body ends.
    pub pooled: Option<Pooled>,
    /// The endpoint's in-flight count for this request (`None` from a route service).
    pub in_flight: Option<EndpointInFlight>,
}

/// What the round tripper works with.
pub struct RoundTrip<'a> {
    /// Sends to endpoints.
    pub upstream: &'a Upstream,
    /// Records attempt results in endpoint health.
    pub health: HealthReport<'a>,
    /// Counts retries and fail-opens.
    pub metrics: &'a Metrics,
    /// Limits.
    pub settings: &'a RetrySettings,
}

impl RoundTrip<'_> {
    /// Sends `req` to an endpoint of the request's route (the instance it asks for first, or
    /// only), trying others while that is safe. `deadline` bounds the whole exchange (`None`
    /// for upgrades).
    pub async fn send(
        &self,
        ctx: &RequestContext,
        req: &mut Request<ProxyBody>,
        deadline: Option<Instant>,
    ) -> Result<Sent, ProxyError> {
        let route = &*ctx.route;
        let settings = self.settings;
        let max_attempts = settings
            .max_attempts
            .clamp(1, route.pool.endpoints.len().max(1));
        // Only requests whose body is in memory are timed per attempt: a backend may answer a
        // streamed upload (a gRPC client stream) only once it has read all of it.
        let attempt_timeout = route
            .options
            .attempt_timeout
            .or(settings.attempt_timeout)
            .filter(|_| matches!(req.body(), ProxyBody::Empty | ProxyBody::Full(_)));
        let idempotent = retry::idempotent(req.method(), req.headers());
        // A copy to resend is made only when needed: the hand-written HTTP/1.1 client leaves a
        // failed request whole, so only hyper's paths (HTTP/2, upgrades, which take the request)
        // and status retries (the answered request is gone) need one.
        let mut replay: Option<Replay> = None;
        let copy_always = !route.options.retry_statuses.is_empty() && idempotent;
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
            let limit = settings.max_conns_per_backend;
            let picked = match balance::pick(route, &attempts, limit, hash, ctx.affinity) {
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
            let (endpoint, probe) = (picked.endpoint, picked.probe);
            forwarded::add_instance(req.headers_mut(), &endpoint, attempt == 0);
            endpoint.target.shape(req);
            let keeps_request = Upstream::keeps_request(&endpoint.target, req);
            if max_attempts > 1 && replay.is_none() && (copy_always || !keeps_request) {
                replay = Replay::of(req);
            }
            let in_flight = EndpointInFlight::start(endpoint.clone());
            let started = std::time::Instant::now();
            let attempt_deadline = match attempt_timeout {
                Some(timeout) => {
                    let cap = Instant::now() + timeout;
                    Some(deadline.map_or(cap, |deadline| deadline.min(cap)))
                }
                None => deadline,
            };
            // Pinned where it is made (not moved into a `Timeout`): the send future is large.
            let result = {
                let sending = std::pin::pin!(self.upstream.send(&endpoint.target, req));
                within(attempt_deadline, sending).await
            };
            let attempts_left = attempt + 1 < max_attempts;
            let (outcome, error, kept) = match result {
                Some(Ok((response, pooled))) => {
                    self.health.answered(&endpoint, probe);
                    let took = started.elapsed();
                    self.metrics.observe_upstream_response(took);
                    if route.balancer == BalancerKind::P2cEwma {
                        endpoint.health.latency.observe(took, now_ms());
                    }
                    let sent = Sent {
                        response,
                        pooled,
                        in_flight: Some(in_flight),
                    };
                    let status = sent.response.status().as_u16();
                    if route.options.retry_statuses.contains(&status)
                        && let Some(replay) = &replay
                        && self.retry(Outcome::RetryableStatus, idempotent, true, attempts_left)
                    {
                        tracing::debug!(endpoint = %endpoint.spec.address, status, "retrying status");
                        *req = replay.request();
                        answered = Some(sent);
                        continue;
                    }
                    return Ok(sent);
                }
                Some(Err(failure)) => {
                    if matches!(&failure.error, UpstreamError::Http(e) if e.is_user()) {
                        drop(probe);
                    } else {
                        self.health.failed(route, &endpoint, probe, &failure.error);
                    }
                    static ATTEMPTS: LogLimit = LogLimit::new(10);
                    if let Some(suppressed) = ATTEMPTS.admit() {
                        tracing::warn!(endpoint = %endpoint.spec.address, route = %route.uri, error = %failure.error, suppressed, "attempt failed");
                    }
                    (retry::outcome(&failure), failure.error, failure.kept)
                }
                None if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                    let error = UpstreamError::Timeout(settings.request_timeout);
                    self.health.failed(route, &endpoint, probe, &error);
                    return Err(ProxyError::EndpointFailure(error));
                }
                None => {
                    let error = UpstreamError::Timeout(attempt_timeout.unwrap_or_default());
                    self.health.failed(route, &endpoint, probe, &error);
                    (Outcome::TimedOut, error, keeps_request)
                }
            };
            let resendable = kept || replay.is_some();
            if !self.retry(outcome, idempotent, resendable, attempts_left) {
                return answered.ok_or_else(|| ProxyError::from_attempt(error));
            }
            if !kept && let Some(replay) = &replay {
                *req = replay.request();
            }
            last_error = Some(error);
        }
        match (answered, last_error) {
            (Some(sent), _) => Ok(sent),
            (None, Some(error)) => Err(ProxyError::EndpointFailure(error)),
            (None, None) => Err(ProxyError::NoEndpoints),
        }
    }

    /// True when the request goes to another endpoint after `outcome` (and the budget pays
    /// for it when it must).
    fn retry(&self, outcome: Outcome, idempotent: bool, resendable: bool, left: bool) -> bool {
        match retry::decide(outcome, idempotent, resendable, left) {
            Decision::Retry { budget: false } => true,
            Decision::Retry { budget: true } => self.budget_allows(),
            Decision::Stop => false,
        }
    }

    fn budget_allows(&self) -> bool {
        let allowed = self.settings.budget.withdraw();
        if !allowed {
            self.metrics.retry_denied();
            static DENIED: LogLimit = LogLimit::new(1);
            if let Some(suppressed) = DENIED.admit() {
                tracing::warn!(
                    suppressed,
                    "retry denied: the retry budget is spent (retry_budget)"
                );
            }
        }
        allowed
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
